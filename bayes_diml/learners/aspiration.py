"""Aspiration learning: Bush-Mosteller reinforcement of the played action against an adaptive aspiration."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import base
from bayes_diml.learners.parameters import ALPHA, BETA, EPS, Parameter, check_parameters, scaled
from bayes_diml.learners.policy import per_agent

__all__ = ["Aspiration"]


class Aspiration(NamedTuple):
    """Aspiration learning (Bush-Mosteller reinforcement with an adaptive aspiration level).

    Bandit feedback only: with ``r = u_i(a_i(t), a_-i(t))`` the realised payoff,
    ``P_i[a_i(t)] <- P_i[a_i(t)] + alpha (r - A_i)`` (the other actions' propensities stay),
    then ``A_i <- (1 - h) A_i + h r``; ``pi_i = (1 - eps) softmax(beta P_i) + eps / K_i``, with
    ``P_i = q0`` and ``A_i = a0`` at each episode's first step. Payoff *levels* enter
    (``r - A``), so :func:`~bayes_diml.learners.registry.uses_payoff_levels` is True.

    Attributes
    ----------
    alpha : float[] or float[n]
        Reinforcement rate in (0, 1].
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    h : float[] or float[n]
        Aspiration adaptation rate in [0, 1] (0: the aspiration stays at ``a0``).
    a0 : float[] or float[n]
        Initial aspiration (fixed, not inferred).
    q0 : float[], float[n] or float[n, K]
        Initial propensities.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to each agent's logits before the softmax
        (only differences between an agent's actions matter; 0, the default: none).
    """

    alpha: Any
    beta: Any
    eps: Any
    h: Any
    a0: Any = 0.0
    q0: Any = 0.0
    bias: Any = 0.0

    PARAMETERS = (
        ALPHA,
        BETA,
        EPS,
        Parameter("h", 0.0, 1.0),
    )
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """Return ``(P float[n, K], A float[n, 1])`` at an episode's first step."""
        dtype = dtype or jnp.result_type(float)
        aspiration = base.initial_per_agent(self.a0, action_mask.shape[0], dtype)
        return base.initial_scores(self.q0, action_mask, dtype), aspiration

    def update(self, state: tuple, counterfactual: jax.Array, actions: jax.Array) -> tuple:
        """Return ``(P, A)`` after one step: the played action's propensity moves by ``alpha (r - A)``."""
        propensities, aspiration = state
        dtype = propensities.dtype
        alpha, h = per_agent(self.alpha, dtype), per_agent(self.h, dtype)
        reward = base.realised(counterfactual, actions)  # [..., n, 1]
        played = base.played(actions, propensities.shape[-1], dtype)
        propensities = propensities + alpha * played * (reward - aspiration)
        return propensities, (1.0 - h) * aspiration + h * reward

    def scores(self, state: tuple) -> jax.Array:
        """Return the scores the softmax weighs by ``beta``: the propensities P, float[..., n, K]."""
        return state[0]

    def check(self, n_agents: int) -> Aspiration:
        """Validate the parameters (:func:`~bayes_diml.learners.parameters.check_parameters`) and ``a0``."""
        check_parameters(self, n_agents)
        if isinstance(self.a0, str):
            raise ValueError(f"Aspiration.a0 = {self.a0!r}: the initial aspiration is fixed; give a number.")
        if not isinstance(self.a0, jax.core.Tracer):
            a0 = np.asarray(self.a0, dtype=float)
            if a0.ndim > 1 or (a0.ndim == 1 and a0.shape[0] != n_agents):
                raise ValueError(
                    f"Aspiration.a0 must be a scalar or have shape (n,) = ({n_agents},); got {a0.shape}."
                )
            if not np.all(np.isfinite(a0)):
                raise ValueError(f"Aspiration.a0 must be finite; got {self.a0!r}.")
        return self

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    replace = base.replace
    scaled = scaled
