"""Regret matching (Hart and Mas-Colell, 2000) on discounted regrets, with a smoothed positive part."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from bayes_diml.learners import base
from bayes_diml.learners.parameters import (
    ALPHA,
    BETA,
    EPS,
    check_parameters,
    scaled,
    temperature_name,
)
from bayes_diml.learners.policy import add_bias, log_softplus, per_agent

__all__ = ["RegretMatching"]


class RegretMatching(NamedTuple):
    """Regret matching (Hart and Mas-Colell, 2000) with discounted regrets and a smooth positive part.

    ``R_i(k) <- (1 - alpha) R_i(k) + alpha [u_i(k, a_-i(t)) - u_i(a_i(t), a_-i(t))]`` with
    ``R_i = q0`` at each episode's first step, and
    ``pi_i(k) = (1 - eps) softplus(beta R_i(k)) / sum_j softplus(beta R_i(j)) + eps / K_i``
    over agent i's ``K_i`` actions (``softplus(x) = log(1 + e^x)``). As ``beta -> inf`` the
    greedy part is proportional to ``max(R_i(k), 0)`` (regret matching); at ``R_i = 0`` it is
    uniform. A softmax of ``beta R_i`` would be LogitQ's policy: ``R_i`` differs from LogitQ's
    ``Q_i`` by a term common to every own action.

    Attributes
    ----------
    alpha : float[] or float[n]
        Discount rate of the regrets in (0, 1].
    beta : float[] or float[n]
        Sharpness of the positive part, >= 0 (0: uniform play).
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    q0 : float[], float[n] or float[n, K]
        Initial regrets.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to the log-weights ``log softplus(beta R_i)``
        before they are normalised (only differences between an agent's actions matter; 0,
        the default: none).
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

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Return the regrets R at an episode's first step: float[n, K]."""
        return base.initial_scores(self.q0, action_mask, dtype or jnp.result_type(float))

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """Return ``(1 - alpha) R + alpha (u(., a_-i) - u(a_i, a_-i))``: float[..., n, K]."""
        alpha = per_agent(self.alpha, state.dtype)
        regret = counterfactual - base.realised(counterfactual, actions)
        return state + alpha * (regret - state)

    def scores(self, state: jax.Array) -> jax.Array:
        """Return the regrets R: float[..., n, K]."""
        return state

    def logits(self, state: jax.Array) -> jax.Array:
        """Return ``log softplus(beta R) + bias``, whose softmax is the greedy part: float[..., n, K].

        The policy (``log_policy``, ``log_prob``: the shared ``bayes_diml.learners.base``
        functions) is ``(1 - eps) softmax(logits) + eps / K_i``: with ``bias = 0`` the greedy
        part is ``softplus(beta R) / sum(softplus(beta R))``, with a bias
        ``e^b softplus(beta R) / sum(e^b softplus(beta R))``.
        """
        beta = per_agent(getattr(self, temperature_name(self)), state.dtype)
        return add_bias(log_softplus(beta * state), self.bias)

    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
