"""Logit-Q learning (DIML eq. 2-3): exponentially weighted counterfactual payoffs."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from bayes_diml.learners import base
from bayes_diml.learners.parameters import ALPHA, BETA, EPS, check_parameters, scaled
from bayes_diml.learners.policy import per_agent

__all__ = ["LogitQ"]


class LogitQ(NamedTuple):
    """Logit-Q learning (DIML eq. 2-3).

    ``Q_i <- (1 - alpha) Q_i + alpha u_i(., a_-i(t))`` and
    ``pi_i = (1 - eps) softmax(beta Q_i) + eps / K_i``, with ``Q_i = q0`` at each
    episode's first step.

    Attributes
    ----------
    alpha : float[] or float[n]
        Learning rate in (0, 1].
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    q0 : float[], float[n] or float[n, K]
        Initial scores.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to each agent's logits before the softmax
        (only differences between an agent's actions matter; 0, the default: none).
    """

    alpha: Any
    beta: Any
    eps: Any
    q0: Any = 0.0
    bias: Any = 0.0

    # inferable parameters with their ranges, and the one confounded with the payoff scale
    PARAMETERS = (
        ALPHA,
        BETA,
        EPS,
    )
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Return Q at an episode's first step: float[n, K] (0 on padded actions)."""
        return base.initial_scores(self.q0, action_mask, dtype or jnp.result_type(float))

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """Return ``(1 - alpha) Q + alpha u``: float[..., n, K] (``actions`` unused: full feedback)."""
        a, b = self.linear_update(state.dtype)
        return a * state + b * counterfactual

    def linear_update(self, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """Return ``(a, b)`` with ``update(Q, u, actions) = a Q + b u`` for every ``actions``.

        Both broadcast against float[n, K] (``1 - alpha`` and ``alpha`` per agent). The
        likelihood runs such learners through ``bayes_diml.recurrence.linear_recurrence``.
        """
        alpha = per_agent(self.alpha, dtype)
        return 1.0 - alpha, alpha

    def scores(self, state: jax.Array) -> jax.Array:
        """Return the scores the softmax weighs by ``beta``: Q itself, float[..., n, K]."""
        return state

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
