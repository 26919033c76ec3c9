"""Smoothed (logit) fictitious play: running averages of counterfactual payoffs."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import base
from bayes_diml.learners.parameters import BETA, EPS, Parameter, check_parameters, scaled
from bayes_diml.learners.policy import per_agent

__all__ = ["FictitiousPlay"]


class FictitiousPlay(NamedTuple):
    """Smoothed (logit) fictitious play.

    The expected payoff of each own action under the empirical distribution of the
    opponents' profiles is the running average of the counterfactual payoffs, with the
    initial value ``q0`` counted as ``prior_weight`` observations:
    ``V_i(t) = (w q0_i + sum_{s <= t} u_i(., a_-i(s))) / (w + t)``, and
    ``pi_i = (1 - eps) softmax(beta V_i) + eps / K_i`` (``V_i(0) = q0_i``). Fictitious play
    has no learning rate alpha: ``scaled`` multiplies beta and eps, and ``alpha`` must stay 1.

    Attributes
    ----------
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1] (default 0).
    prior_weight : float[] or float[n]
        Weight ``w >= 0`` of the initial value, in observations (default 1).
    q0 : float[], float[n] or float[n, K]
        Initial expected payoffs.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to each agent's logits before the softmax
        (only differences between an agent's actions matter; 0, the default: none).
    """

    beta: Any
    eps: Any = 0.0
    prior_weight: Any = 1.0
    q0: Any = 0.0
    bias: Any = 0.0

    PARAMETERS = (
        BETA,
        EPS,
        Parameter("prior_weight", 0.0, np.inf),
    )
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """Return ``(V float[n, K], t float[n, 1])`` at an episode's first step."""
        dtype = dtype or jnp.result_type(float)
        return base.initial_scores(self.q0, action_mask, dtype), jnp.zeros((action_mask.shape[0], 1), dtype)

    def update(self, state: tuple, counterfactual: jax.Array, actions: jax.Array) -> tuple:
        """Return ``V <- V + (u - V) / (w + t + 1)``, ``t <- t + 1`` (``actions`` unused)."""
        values, count = state
        w = per_agent(self.prior_weight, values.dtype)
        count = count + 1.0
        return values + (counterfactual - values) / (w + count), count

    def scores(self, state: tuple) -> jax.Array:
        """Return the scores the softmax weighs by ``beta``: the values V, float[..., n, K]."""
        return state[0]

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
