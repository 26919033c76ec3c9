"""Simulate learning agents under a mechanism: vmap over episodes, scan over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .counterfactual import action_mask, step_counterfactuals
from .data import Trajectories
from .learners import check_bias

__all__ = ["simulate", "simulate_arrays", "simulate_compiled"]


def simulate_arrays(
    mechanism: Any,
    params: Any,
    learner: Any,
    n_episodes: int,
    T: int,
    key: jax.Array,
    n_actions: Sequence[int] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Simulate as :func:`simulate` does, jittable: ``(actions int[M, T, n], payoffs float[M, T, n])``.

    ``payoffs[m, t, i]`` is agent i's realised payoff at step t (noise-free).
    """
    n_actions = tuple(int(k) for k in (n_actions or mechanism.n_actions))
    mask = jnp.asarray(action_mask(n_actions))
    cf_of = step_counterfactuals(mechanism, params, n_actions)
    dtype = jnp.result_type(float)

    def sample(key, log_pi):
        return jax.random.categorical(key, log_pi, axis=-1).astype(jnp.int32)

    def episode(key):
        keys = jax.random.split(key, T)
        state = learner.init_state(mask, dtype)
        a0 = sample(keys[0], learner.log_policy(state, mask))

        def step(carry, key_t):
            state, a = carry
            cf = cf_of(a)  # [n, K]
            realised = jnp.take_along_axis(cf, a[:, None], axis=-1)[:, 0]
            state = learner.update(state, cf, a)
            a_next = sample(key_t, learner.log_policy(state, mask))
            return (state, a_next), (a, realised)

        (state, a_last), (acts, pays) = jax.lax.scan(step, (state, a0), keys[1:])
        last_pay = jnp.take_along_axis(cf_of(a_last), a_last[:, None], axis=-1)[:, 0]
        actions = jnp.concatenate([acts, a_last[None]], axis=0)
        payoffs = jnp.concatenate([pays, last_pay[None]], axis=0)
        return actions, payoffs

    return jax.vmap(episode)(jax.random.split(key, n_episodes))


_simulate_jit = jax.jit(simulate_arrays, static_argnames=("mechanism", "n_episodes", "T", "n_actions"))


def simulate_compiled(
    mechanism: Any,
    params: Any,
    learner: Any,
    n_episodes: int,
    T: int,
    key: jax.Array,
    n_actions: Sequence[int] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Run :func:`simulate_arrays` compiled once per (mechanism, sizes): ``(actions, payoffs)``.

    The mechanism, ``n_episodes``, ``T`` and ``n_actions`` are static arguments of one jitted
    program, so repeated calls with new parameters, learners or keys reuse it. A mechanism
    that cannot be hashed runs :func:`simulate_arrays` as it is. Returns
    ``actions: int[M, T, n]`` and ``payoffs: float[M, T, n]``.
    """
    n_actions = None if n_actions is None else tuple(int(k) for k in n_actions)
    try:
        hash(mechanism)
    except TypeError:
        return simulate_arrays(mechanism, params, learner, n_episodes, T, key, n_actions)
    return _simulate_jit(mechanism, params, learner, int(n_episodes), int(T), key, n_actions)


def simulate(
    mechanism: Any,
    params: Any,
    learner: Any,
    n_episodes: int,
    T: int,
    key: jax.Array | int,
    *,
    n_actions: Sequence[int] | None = None,
    record_payoffs: bool = False,
) -> Trajectories:
    """Simulate ``n_episodes`` episodes of ``T`` steps of learning agents.

    First actions come from the learner's initial policy (uniform-ish for ``q0 = 0``);
    then at each step the learner sees the counterfactual payoffs of the realised joint
    action, updates, and samples the next joint action.

    Parameters
    ----------
    mechanism, params : the payoff mechanism and its parameters.
    learner : e.g. ``LogitQ(alpha, beta, eps)``.
    n_episodes, T : int
        M episodes of T >= 2 steps.
    key : PRNG key or int seed.
    n_actions : K_i, if the mechanism does not carry them.
    record_payoffs : bool
        Store the realised payoffs in ``Trajectories.payoffs`` (off by default, since
        observed payoffs change what a fit identifies).

    Returns
    -------
    Trajectories with ``actions: int[M, T, n]``.
    """
    if n_actions is None and getattr(mechanism, "n_actions", None) is None:
        raise ValueError("this mechanism carries no n_actions; pass n_actions=(K_1, ..., K_n).")
    n_actions = tuple(int(k) for k in (n_actions or mechanism.n_actions))
    if not isinstance(n_episodes, int | np.integer) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer; got {n_episodes!r}.")
    if not isinstance(T, int | np.integer) or T < 2:
        raise ValueError(f"T must be an integer >= 2; got {T!r}.")
    check = getattr(learner, "check", None)
    if callable(check):
        check(len(n_actions))
    check_bias(learner, len(n_actions), n_actions)
    if isinstance(key, int | np.integer):
        key = jax.random.key(int(key))
    actions, payoffs = _simulate_jit(mechanism, params, learner, int(n_episodes), int(T), key, n_actions)
    return Trajectories(
        np.asarray(actions),
        n_actions,
        payoffs=np.asarray(payoffs, dtype=np.float64) if record_payoffs else None,
    )
