"""Hedge (exponential weights) on cumulative counterfactual payoffs."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import base
from bayes_diml.learners.parameters import EPS, Parameter, check_parameters, scaled

__all__ = ["Hedge"]


class Hedge(NamedTuple):
    """Exponential weights (Hedge) on cumulative counterfactual payoffs.

    ``S_i(t) = q0_i + sum_{s <= t} u_i(., a_-i(s))`` and
    ``pi_i = (1 - eps) softmax(eta S_i) + eps / K_i``. Hedge has no learning rate alpha:
    ``scaled(beta=c)`` multiplies ``eta``, and ``alpha`` must stay 1.

    Attributes
    ----------
    eta : float[] or float[n]
        Learning rate (inverse temperature of the cumulative scores), >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1] (default 0: plain Hedge).
    q0 : float[], float[n] or float[n, K]
        Initial cumulative scores.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to each agent's logits before the softmax
        (only differences between an agent's actions matter; 0, the default: none).
    """

    eta: Any
    eps: Any = 0.0
    q0: Any = 0.0
    bias: Any = 0.0

    PARAMETERS = (Parameter("eta", 0.0, np.inf), EPS)
    TEMPERATURE = "eta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Return the cumulative scores at an episode's first step: float[n, K]."""
        return base.initial_scores(self.q0, action_mask, dtype or jnp.result_type(float))

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """Return ``S + u``: float[..., n, K] (``actions`` unused: full feedback)."""
        return state + counterfactual

    def scores(self, state: jax.Array) -> jax.Array:
        """Return the scores the softmax weighs by ``eta``: S itself, float[..., n, K]."""
        return state

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
