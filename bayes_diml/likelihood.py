"""The exact unrolled log-likelihood of learning trajectories (DIML eq. 5).

``log p(tau) = sum_{t=1}^{T-1} sum_i log pi_i(t+1)(a_i(t+1))``: the learner state starts
at its initial value in every episode, the first action is not scored, whole episodes
are used (no truncation window, no state reset), and padded steps of ragged episodes are
never scored.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .counterfactual import evaluate_plan, plan_for
from .data import Trajectories

__all__ = ["log_likelihood", "log_policies", "scan_log_policies"]


def _check_data(data: Any) -> Trajectories:
    if not isinstance(data, Trajectories):
        raise TypeError(
            f"data must be bayes_diml.Trajectories; got {type(data).__name__}. "
            "Wrap arrays with Trajectories(actions, n_actions)."
        )
    return data


def _check_learner(learner: Any, n_agents: int) -> None:
    for method in ("init_state", "update", "log_policy"):
        if not callable(getattr(learner, method, None)):
            raise TypeError(
                f"learner must offer init_state, update and log_policy (e.g. LogitQ); "
                f"{type(learner).__name__} lacks {method}."
            )
    check = getattr(learner, "check", None)
    if callable(check):
        check(n_agents)


def scan_log_policies(
    learner: Any,
    counterfactual: jax.Array,
    actions: jax.Array,
    action_mask: jax.Array,
    next_actions: jax.Array | None = None,
) -> jax.Array:
    """Run the learner over time with one ``lax.scan``.

    Parameters
    ----------
    learner : Learner
    counterfactual : float[M, S, n, K]
        Counterfactual payoffs of steps ``t = 0..S-1``.
    actions : int[M, S, n]
        Realised actions at those steps.
    action_mask : bool[n, K]
    next_actions : int[M, S, n], optional
        If given, return only the log-probability of these actions, float[M, S, n];
        otherwise the full log-policy float[M, S, n, K] for the step after each ``t``.
    """
    dtype = counterfactual.dtype
    M = counterfactual.shape[0]
    q0 = learner.init_state(action_mask, dtype)
    state0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (M, *x.shape)), q0)
    xs = (jnp.swapaxes(counterfactual, 0, 1), jnp.swapaxes(actions, 0, 1))
    if next_actions is not None:
        xs = xs + (jnp.swapaxes(next_actions, 0, 1),)

    def step(state, inputs):
        state = learner.update(state, inputs[0], inputs[1])
        log_pi = learner.log_policy(state, action_mask)
        if next_actions is not None:
            log_pi = jnp.take_along_axis(log_pi, inputs[2][..., None], axis=-1)[..., 0]
        return state, log_pi

    _, out = jax.lax.scan(step, state0, xs)
    return jnp.swapaxes(out, 0, 1)


def log_policies(mechanism: Any, params: Any, learner: Any, data: Trajectories) -> jax.Array:
    """Log-probabilities of the action at ``t+1`` given the history to ``t``: float[M, T-1, n, K].

    Entries for padded actions are ``-inf``; padded steps hold unscored values.
    """
    data = _check_data(data)
    _check_learner(learner, data.n_agents)
    plan = plan_for(mechanism, data)
    cf = evaluate_plan(mechanism, params, plan)
    return scan_log_policies(learner, cf, jnp.asarray(data.actions[:, :-1]), jnp.asarray(plan.action_mask))


def log_likelihood(
    mechanism: Any, params: Any, learner: Any, data: Trajectories, per_step: bool = False
) -> jax.Array:
    """Exact log-likelihood of whole episodes under a learner and a mechanism.

    Parameters
    ----------
    mechanism : Mechanism
    params : pytree
        Mechanism parameters (``mechanism.init(key)`` structure).
    learner : Learner
        e.g. ``LogitQ(alpha, beta, eps)``; parameters may be traced (for gradients).
    data : Trajectories
        ``actions: int[M, T, n]`` with optional ragged ``lengths``.
    per_step : bool
        If True, return float[M, T-1, n]: the log-probability of ``a_i(t+1)`` for
        ``t = 0..T-2``, zero on padding. Otherwise the sum over all scored terms.

    Returns
    -------
    float[] or float[M, T-1, n]

    Notes
    -----
    The mechanism is called once per evaluation, on the batch of joint actions (or
    count vectors) that the data fix in advance; the learner runs as one ``lax.scan``
    over time, vectorised over episodes. Works under ``jit``, ``grad`` and ``vmap`` and
    in the float precision JAX is configured for.
    """
    data = _check_data(data)
    _check_learner(learner, data.n_agents)
    plan = plan_for(mechanism, data)
    cf = evaluate_plan(mechanism, params, plan)
    actions = jnp.asarray(data.actions)
    per = scan_log_policies(learner, cf, actions[:, :-1], jnp.asarray(plan.action_mask), actions[:, 1:])
    scored = jnp.asarray(np.broadcast_to(data.scored_mask[:, :, None], per.shape))
    per = jnp.where(scored, per, 0.0)
    return per if per_step else per.sum()
