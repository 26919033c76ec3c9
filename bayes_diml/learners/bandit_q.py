"""Bandit Q-learning: only the played action's score moves, towards its realised payoff."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from bayes_diml.learners import base
from bayes_diml.learners.logit_q import LogitQ
from bayes_diml.learners.parameters import check_parameters, scaled
from bayes_diml.learners.policy import per_agent

__all__ = ["BanditQ"]


class BanditQ(NamedTuple):
    """Q-learning from the realised payoff only (no counterfactuals).

    ``Q_i(a_i) <- (1 - alpha) Q_i(a_i) + alpha u_i(a_i, a_-i(t))`` for the played action
    ``a_i = a_i(t)``; the other actions' scores stay. ``pi_i = (1 - eps) softmax(beta Q_i)
    + eps / K_i``; ``Q_i = q0`` at each episode's first step.

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

    PARAMETERS = LogitQ.PARAMETERS
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Return Q at an episode's first step: float[n, K]."""
        return base.initial_scores(self.q0, action_mask, dtype or jnp.result_type(float))

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """Move the played action's Q towards its realised payoff ``counterfactual[..., i, a_i]``."""
        alpha = per_agent(self.alpha, state.dtype)
        played = base.played(actions, state.shape[-1], state.dtype)
        return state + alpha * played * (counterfactual - state)

    def scores(self, state: jax.Array) -> jax.Array:
        """Return the scores the softmax weighs by ``beta``: Q itself, float[..., n, K]."""
        return state

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
