"""The exact unrolled log-likelihood of learning trajectories (DIML eq. 5).

``log p(tau) = sum_{t=1}^{T-1} sum_i log pi_i(t+1)(a_i(t+1))``: the learner state starts
at its initial value in every episode, the first action is not scored, whole episodes
are used (no truncation window, no state reset), and padded steps of ragged episodes are
never scored.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .counterfactual import CounterfactualPlan, evaluate_plan, plan_for
from .data import Trajectories
from .learners import check_bias
from .recurrence import linear_recurrence, resolve_recurrence
from .sharding import shard_episodes

__all__ = [
    "log_likelihood",
    "log_policies",
    "scan_log_policies",
    "scan_states",
    "action_log_prob",
    "auto_segment_length",
    "AUTO_SEGMENT_ELEMENTS",
]


def _check_data(data: Any) -> Trajectories:
    if not isinstance(data, Trajectories):
        raise TypeError(
            f"data must be bayes_diml.Trajectories; got {type(data).__name__}. "
            "Wrap arrays with Trajectories(actions, n_actions)."
        )
    return data


def _data_plan(mechanism: Any, data: Trajectories, plan: CounterfactualPlan | None) -> CounterfactualPlan:
    """Return ``plan`` after checking that it covers ``data``, or build one for ``data``."""
    if plan is None:
        return plan_for(mechanism, data)
    M, T, n = data.actions.shape
    if tuple(plan.index.shape[:3]) != (M, T - 1, n):
        raise ValueError(
            f"the plan covers steps of shape {tuple(plan.index.shape[:3])} but the data need "
            f"(M, T-1, n) = {(M, T - 1, n)}; build it with plan_for(mechanism, data)."
        )
    return plan


def _check_learner(learner: Any, n_agents: int, n_actions: Any = None) -> None:
    for method in ("init_state", "update", "log_policy"):
        if not callable(getattr(learner, method, None)):
            raise TypeError(
                f"learner must offer init_state, update and log_policy (e.g. LogitQ); "
                f"{type(learner).__name__} lacks {method}."
            )
    check = getattr(learner, "check", None)
    if callable(check):
        check(n_agents)
    check_bias(learner, n_agents, n_actions)


def scan_log_policies(
    learner: Any,
    counterfactual: jax.Array,
    actions: jax.Array,
    action_mask: jax.Array,
    next_actions: jax.Array | None = None,
    segment_length: int | None = None,
    recurrence: str = "auto",
) -> jax.Array:
    """Run the learner over time with one ``lax.scan`` (or checkpointed segments of it).

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
    segment_length : int, optional
        Gradient checkpointing over time. ``0``: one plain scan (reverse mode stores every
        step). ``L >= 1``: an outer scan over segments of ``L`` steps, each a
        ``jax.checkpoint``-ed inner scan, so reverse mode stores one state per segment plus
        one segment's intermediates and recomputes each segment's forward pass once; steps
        beyond the last whole segment run as a final shorter segment, so any length is exact.
        ``None`` (default): :func:`auto_segment_length`.
    recurrence : {"auto", "sequential", "associative"}
        How a learner with a linear update (LogitQ) runs over time:
        ``bayes_diml.recurrence.linear_recurrence`` (``"auto"``: sequential on the CPU,
        associative on a GPU or TPU). Same value and gradient to float rounding.
    """

    def finish(states, nxt):
        if nxt is None:  # the whole log-policy
            return learner.log_policy(states, action_mask)
        return action_log_prob(learner, states, action_mask, nxt)

    return _scan(
        learner,
        counterfactual,
        actions,
        action_mask,
        segment_length,
        finish,
        next_actions,
        recurrence=recurrence,
    )


def scan_states(
    learner: Any,
    counterfactual: jax.Array,
    actions: jax.Array,
    action_mask: jax.Array,
    segment_length: int | None = None,
    recurrence: str = "auto",
) -> Any:
    """Return the learner's state after each step: leaves with leading axes ``[M, S]``.

    Same recursion as ``bayes_diml.likelihood.scan_log_policies`` (``counterfactual: float[M, S, n, K]``,
    ``actions: int[M, S, n]``), returning the states themselves (float[M, S, n, K] for
    LogitQ), so that a caller can score only the actions it needs
    (:class:`bayes_diml.models.LearnerPolicy`).
    """
    return _scan(
        learner, counterfactual, actions, action_mask, segment_length, lambda st, _: st, recurrence=recurrence
    )


def _scan(
    learner, counterfactual, actions, action_mask, segment_length, finish, extra=None, *, recurrence="auto"
):
    """Run the learner's state recursion over time, ``finish(states, extra)`` applied per segment.

    Only the recursion is sequential: it is scanned, then ``finish`` evaluates all of the
    segment's states at once (vectorised; much cheaper than inside the scan body). Outputs
    (pytrees) come back with leading axes ``[M, S]``; ``extra: [M, S, ...]`` is split with them.
    """
    recurrence = resolve_recurrence(recurrence)
    M, n_steps = counterfactual.shape[:2]
    q0 = learner.init_state(action_mask, counterfactual.dtype)
    # the scan carries each state leaf as [M, -1] (and the payoffs as [S, M, n * K]); the
    # step reshapes to the learner's [M, n, K] and back, which XLA makes free. Trailing
    # axes of a few actions vectorise poorly in a loop body (1.2x on the whole likelihood's
    # value+grad of a 3 x 4 game, benchmarks/likelihood.py)
    leaves0, treedef = jax.tree_util.tree_flatten(q0)
    shapes = [(M, *x.shape) for x in leaves0]
    state0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (M, *x.shape)).reshape(M, -1), q0)
    cf_shape = counterfactual.shape[:1] + counterfactual.shape[2:]
    xs = (jnp.swapaxes(counterfactual, 0, 1).reshape(n_steps, M, -1), jnp.swapaxes(actions, 0, 1))
    xs = xs + ((jnp.swapaxes(extra, 0, 1),) if extra is not None else ())

    def unflatten(tree, lead):
        leaves = jax.tree_util.tree_leaves(tree)
        return treedef.unflatten([x.reshape(*lead, *shp) for x, shp in zip(leaves, shapes, strict=True)])

    def flatten(tree):
        return jax.tree_util.tree_map(lambda x: x.reshape(M, -1), tree)

    linear = _linear_coefficients(learner, leaves0, counterfactual.dtype)

    def run(state, inputs):
        def step(s, x):
            s = learner.update(unflatten(s, ()), x[0].reshape(cf_shape), x[1])
            s = flatten(s)
            return s, s

        if linear is not None:  # Q <- a Q + b u: a recursion with a cheaper derivative
            states = linear_recurrence(state, *linear, inputs[0], recurrence)
            state = states[-1]
        else:
            state, states = jax.lax.scan(step, state, inputs[:2])
        length = jax.tree_util.tree_leaves(states)[0].shape[0]
        return state, finish(unflatten(states, (length,)), inputs[2] if extra is not None else None)

    if segment_length is None:
        segment_length = auto_segment_length(n_steps, M * math.prod(counterfactual.shape[2:]))
    out = _segmented_scan(run, state0, xs, n_steps, int(segment_length))
    return jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), out)


def _linear_coefficients(learner: Any, leaves: list, dtype: Any) -> tuple[jax.Array, jax.Array] | None:
    """Return ``(a, b)`` flattened to float[n * K] when the learner's update is ``a Q + b u``, else None."""
    linear_update = getattr(learner, "linear_update", None)
    if not callable(linear_update) or len(leaves) != 1:
        return None
    shape = leaves[0].shape  # (n, K)
    coefficients = linear_update(dtype)
    try:
        if any(jnp.broadcast_shapes(jnp.shape(c), shape) != shape for c in coefficients):
            return None
    except ValueError:
        return None
    return tuple(jnp.broadcast_to(jnp.asarray(c, dtype), shape).reshape(-1) for c in coefficients)


#: Automatic checkpointing starts when steps x state elements reach this (16 MiB of float32).
AUTO_SEGMENT_ELEMENTS = 2**22


def auto_segment_length(n_steps: int, state_size: int) -> int:
    """Default segment length: ``ceil(sqrt(n_steps))`` for long, large scans, else 0 (plain scan).

    Checkpointing costs one extra forward pass, so it is used only when the reverse pass
    would store ``n_steps * state_size >= AUTO_SEGMENT_ELEMENTS`` elements per saved array
    (``state_size`` = elements of one step's learner state, e.g. ``M * n * K``).
    """
    if n_steps < 4 or n_steps * state_size < AUTO_SEGMENT_ELEMENTS:
        return 0
    return math.isqrt(n_steps - 1) + 1


def action_log_prob(learner: Any, states: Any, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
    """Log-probabilities of ``actions: int[..., n]`` under the states' policies: float[..., n].

    Uses the learner's ``log_prob`` when it has one (computing only the needed entries),
    else picks the entries of ``log_policy``.
    """
    log_prob = getattr(learner, "log_prob", None)
    if callable(log_prob):
        return log_prob(states, action_mask, actions)
    log_pi = learner.log_policy(states, action_mask)
    return jnp.take_along_axis(log_pi, actions[..., None], axis=-1)[..., 0]


def _segmented_scan(run, state0, xs, n_steps: int, length: int):
    """``run(state0, xs)[1]`` over the leading (time) axis, checkpointed in segments.

    ``run(state, xs) -> (state, out)`` processes consecutive steps (a scan of its own).
    """
    if length < 0:
        raise ValueError(f"segment_length must be >= 0 (0 = no checkpointing); got {length}.")
    if length == 0 or length >= n_steps:
        return run(state0, xs)[1]
    inner = jax.checkpoint(run)
    n_seg = n_steps // length
    head = jax.tree_util.tree_map(lambda x: x[: n_seg * length].reshape(n_seg, length, *x.shape[1:]), xs)
    state, out = jax.lax.scan(inner, state0, head)
    out = jax.tree_util.tree_map(lambda y: y.reshape(n_seg * length, *y.shape[2:]), out)
    if n_seg * length == n_steps:
        return out
    tail = jax.tree_util.tree_map(lambda x: x[n_seg * length :], xs)
    _, rest = inner(state, tail)
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b], axis=0), out, rest)


def log_policies(
    mechanism: Any,
    params: Any,
    learner: Any,
    data: Trajectories,
    *,
    segment_length: int | None = None,
    recurrence: str = "auto",
    plan: CounterfactualPlan | None = None,
) -> jax.Array:
    """Compute log-probabilities of the action at ``t+1`` given the history to ``t``.

    Returns float[M, T-1, n, K]: entries for padded actions are ``-inf``; padded steps hold
    unscored values. ``plan`` (``bayes_diml.counterfactual.plan_for``) is built for this
    call unless given: pass one to reuse it across calls on the same data.
    """
    data = _check_data(data)
    _check_learner(learner, data.n_agents, data.n_actions)
    resolve_recurrence(recurrence)  # a bad name fails here, before any work
    plan = _data_plan(mechanism, data, plan)
    cf = evaluate_plan(mechanism, params, plan)
    return scan_log_policies(
        learner,
        cf,
        jnp.asarray(data.actions[:, :-1]),
        jnp.asarray(plan.action_mask),
        segment_length=segment_length,
        recurrence=recurrence,
    )


def log_likelihood(
    mechanism: Any,
    params: Any,
    learner: Any,
    data: Trajectories,
    per_step: bool = False,
    *,
    segment_length: int | None = None,
    mesh: Any = None,
    recurrence: str = "auto",
    plan: CounterfactualPlan | None = None,
) -> jax.Array:
    """Compute the exact log-likelihood of whole episodes under a learner and a mechanism.

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
    segment_length : int, optional
        Checkpoint the time scan in segments of this many steps (``0``: never; ``None``:
        automatically for long, large scans); see ``bayes_diml.likelihood.scan_log_policies``. Value and
        gradient are the same either way; only peak memory and time change.
    mesh : jax.sharding.Mesh, optional
        Split the episode axis over the mesh's ``"episode"`` devices
        (``bayes_diml.sharding.episode_mesh``); same value, computed in parallel.
    recurrence : {"auto", "sequential", "associative"}
        How the linear Q recursion runs over time (``"auto"``: one scan step per time step on
        the CPU; a parallel prefix, ``O(log T)`` steps, on a GPU or TPU, where it is 3-20x
        faster); see ``bayes_diml.recurrence.linear_recurrence``.
    plan : CounterfactualPlan, optional
        The data's counterfactual plan (``bayes_diml.counterfactual.plan_for``); built
        for this call when not given (after the memory guard). Pass one to reuse it across
        calls on the same data (e.g. many parameter values).

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
    _check_learner(learner, data.n_agents, data.n_actions)
    resolve_recurrence(recurrence)  # a bad name fails here, before any work
    plan = _data_plan(mechanism, data, plan)
    cf = evaluate_plan(mechanism, params, plan)
    actions = jnp.asarray(data.actions)
    if mesh is not None:
        cf, actions = shard_episodes((cf, actions), mesh)
    per = scan_log_policies(
        learner,
        cf,
        actions[:, :-1],
        jnp.asarray(plan.action_mask),
        actions[:, 1:],
        segment_length=segment_length,
        recurrence=recurrence,
    )
    if not data.scored_mask.all():  # ragged episodes: padded steps are not scored
        per = jnp.where(jnp.asarray(data.scored_mask[:, :, None]), per, 0.0)
    return per if per_step else per.sum()
