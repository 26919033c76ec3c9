"""State-conditioned (Markov) logit-Q learning: one score row per opponents' last profile."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import base
from bayes_diml.learners.parameters import ALPHA, BETA, EPS, check_parameters, scaled
from bayes_diml.learners.policy import per_agent

__all__ = ["MarkovQ", "MarkovState", "MAX_OPPONENT_PROFILES", "opponent_profile_index"]

#: Largest number of opponent profiles ``S = K^(n-1)`` (rows of each agent's score table).
MAX_OPPONENT_PROFILES = 4096


class MarkovState(NamedTuple):
    """State of :class:`MarkovQ` (leaves with leading axes ``[...]``, e.g. episodes and steps).

    Attributes
    ----------
    scores : float[..., n, K]
        The row of the table the next action is drawn from, ``Q_i[s_i]``.
    table : float[..., n, S + 1, K]
        Scores per opponent profile; row ``S`` is the start of an episode (no profile yet).
    profile : int[..., n]
        Each agent's current state ``s_i``: the opponents' last profile (``S`` at the start).
    """

    scores: jax.Array
    table: jax.Array
    profile: jax.Array


def _radix(n_agents: int, K: int) -> np.ndarray:
    """Return ``W: int[n, n]`` with ``s_i = sum_j W[i, j] a_j`` the index of ``a_-i`` in base K."""
    w = np.zeros((n_agents, n_agents), dtype=np.int32)
    for i in range(n_agents):
        for j in range(n_agents):
            if j != i:
                w[i, j] = K ** (j - (j > i))
    return w


def opponent_profile_index(actions: jax.Array, K: int) -> jax.Array:
    """Return each agent's opponents' profile ``a_-i`` as an index ``< K^(n-1)``: int[..., n] -> int[..., n].

    Base-K digits of the other agents' actions in agent order (with unequal action counts
    every agent is padded to the largest, ``K``).
    """
    w = jnp.asarray(_radix(actions.shape[-1], K))
    return jnp.sum(actions[..., None, :].astype(jnp.int32) * w, axis=-1, dtype=jnp.int32)


def _n_profiles(n_agents: int, K: int) -> int:
    """Return ``S = K^(n-1)``, the rows of a score table (without the start row); checks its size."""
    S = K ** (n_agents - 1)
    if S > MAX_OPPONENT_PROFILES:
        raise ValueError(
            f"MarkovQ keeps one score row per opponent profile: {K}^{n_agents - 1} = {S} rows per agent "
            f"exceed MAX_OPPONENT_PROFILES = {MAX_OPPONENT_PROFILES}; use it for games with few agents."
        )
    return S


class MarkovQ(NamedTuple):
    """State-conditioned (Markov) logit-Q learning: scores per opponents' last profile.

    Agent i's state at step t is ``s_t = a_-i(t-1)`` (a dedicated start state at an episode's
    first step); ``Q_i[s_t, k] <- (1 - alpha) Q_i[s_t, k] + alpha u_i(k, a_-i(t))`` for every own
    action ``k``, other states unchanged; the policy at step t+1 is
    ``pi_i = (1 - eps) softmax(beta Q_i[a_-i(t)]) + eps / K_i``. Every row starts at ``q0``.
    With ``S = K^(n-1)`` opponent profiles (K the largest action count) the state holds
    ``n (S + 1) K`` scores, so this family suits games with few agents.

    Attributes
    ----------
    alpha : float[] or float[n]
        Learning rate in (0, 1].
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    q0 : float[], float[n] or float[n, K]
        Initial scores of every row.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to each agent's logits before the softmax
        (only differences between an agent's actions matter; 0, the default: none).
    """

    alpha: Any
    beta: Any
    eps: Any
    q0: Any = 0.0
    bias: Any = 0.0

    PARAMETERS = (
        ALPHA,
        BETA,
        EPS,
    )
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> MarkovState:
        """Return the state at an episode's first step: every row ``q0``, profile ``S`` (the start row)."""
        dtype = dtype or jnp.result_type(float)
        n, K = action_mask.shape
        S = _n_profiles(n, K)
        scores = base.initial_scores(self.q0, action_mask, dtype)
        table = jnp.broadcast_to(scores[:, None, :], (n, S + 1, K))
        return MarkovState(scores, table, jnp.full((n,), S, dtype=jnp.int32))

    def update(self, state: MarkovState, counterfactual: jax.Array, actions: jax.Array) -> MarkovState:
        """Move the current state's row towards ``u(., a_-i(t))``, then move to the state ``a_-i(t)``."""
        table = state.table
        rows, K = table.shape[-2:]
        alpha = per_agent(self.alpha, table.dtype)[..., None]  # against [..., n, S + 1, K]
        current = jax.nn.one_hot(state.profile, rows, dtype=table.dtype)[..., None]  # [..., n, S + 1, 1]
        table = table + alpha * current * (counterfactual[..., None, :] - table)
        profile = opponent_profile_index(actions, K)
        following = jax.nn.one_hot(profile, rows, dtype=table.dtype)[..., None]
        return MarkovState(jnp.sum(following * table, axis=-2), table, profile)

    def scores(self, state: MarkovState) -> jax.Array:
        """Return the scores the softmax weighs by ``beta``: the row ``Q_i[s_i]``, float[..., n, K]."""
        return state.scores

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
