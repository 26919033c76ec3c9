"""Experience-weighted attraction (Camerer and Ho, 1999), which nests LogitQ, FP and Hedge."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import base
from bayes_diml.learners.parameters import EPS, Parameter, check_parameters, scaled
from bayes_diml.learners.policy import per_agent

__all__ = ["EWA"]


class EWA(NamedTuple):
    """Experience-weighted attraction (Camerer and Ho, 1999).

    ``N(t) = rho N(t-1) + 1`` with ``N(0) = n0``;
    ``A_j(t) = (phi N(t-1) A_j(t-1) + [delta + (1 - delta) 1{j = a_i(t)}] u_i(j, a_-i(t))) / N(t)``
    with ``A(0) = q0``; ``pi_i = (1 - eps) softmax(lam A_i) + eps / K_i``. EWA has no
    learning rate alpha: ``scaled(beta=c)`` multiplies ``lam``, and ``alpha`` must stay 1.

    Nestings (exact): ``delta = 1, phi = rho = 1 - alpha, n0 = 1 / alpha`` is ``LogitQ(alpha,
    lam, eps)``; ``delta = 1, phi = rho = 1`` is ``FictitiousPlay(lam, eps, prior_weight=n0)``;
    ``delta = 1, phi = 1, rho = 0, n0 = 1`` is ``Hedge(lam, eps)``.

    Attributes
    ----------
    phi : float[] or float[n]
        Decay of past attractions, in [0, 1].
    delta : float[] or float[n]
        Weight of forgone (counterfactual) payoffs, in [0, 1].
    rho : float[] or float[n]
        Decay of the experience weight, in [0, 1].
    lam : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1] (default 0).
    n0 : float[] or float[n]
        Initial experience weight ``N(0) >= 0`` (default 1).
    q0 : float[], float[n] or float[n, K]
        Initial attractions.
    bias : float[] or float[n, K]
        Action bias (habit) in logit units, added to each agent's logits before the softmax
        (only differences between an agent's actions matter; 0, the default: none).
    """

    phi: Any
    delta: Any
    rho: Any
    lam: Any
    eps: Any = 0.0
    n0: Any = 1.0
    q0: Any = 0.0
    bias: Any = 0.0

    PARAMETERS = (
        Parameter("phi", 0.0, 1.0),
        Parameter("delta", 0.0, 1.0),
        Parameter("rho", 0.0, 1.0),
        Parameter("lam", 0.0, np.inf),
        EPS,
        Parameter("n0", 0.0, np.inf),
    )
    TEMPERATURE = "lam"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """Return ``(A float[n, K], N float[n, 1])`` at an episode's first step."""
        dtype = dtype or jnp.result_type(float)
        n0 = jnp.broadcast_to(per_agent(self.n0, dtype), (action_mask.shape[0], 1)).astype(dtype)
        return base.initial_scores(self.q0, action_mask, dtype), n0

    def update(self, state: tuple, counterfactual: jax.Array, actions: jax.Array) -> tuple:
        """Return ``(A, N)`` after one EWA step; the realised actions ``int[..., n]`` get full weight."""
        attractions, experience = state
        dtype = attractions.dtype
        phi, delta, rho = (per_agent(v, dtype) for v in (self.phi, self.delta, self.rho))
        new_experience = rho * experience + 1.0
        weight = delta + (1.0 - delta) * base.played(actions, attractions.shape[-1], dtype)
        new = (phi * experience * attractions + weight * counterfactual) / new_experience
        return new, new_experience

    def scores(self, state: tuple) -> jax.Array:
        """Return the scores the softmax weighs by ``lam``: the attractions A, float[..., n, K]."""
        return state[0]

    logits = base.logits
    log_policy = base.log_policy
    log_prob = base.log_prob
    check = check_parameters
    replace = base.replace
    scaled = scaled
