"""The learner's action bias (habit) as a model site: gauge-fixed per agent, Normal prior.

A learner whose ``bias`` field is ``"infer"`` gets, for every agent i, a bias ``b_i`` over its
``K_i`` actions that is added to its logits (:func:`bayes_diml.learners.policy.add_bias`).
Only differences ``b_i[k] - b_i[j]`` enter the policy (adding a constant per agent is a
gauge), so ``b_i`` is sampled in the sum-to-zero subspace of ``R^{K_i}``, as the ``Tabular``
mechanism's centred payoffs are: ``b_i = H_{K_i} z_i`` with ``H_K`` the orthonormal basis
:func:`~bayes_diml.mechanisms.base.sum_to_zero_basis` and

- ``bias_free`` float[n, K - 1] (latent): ``z_i ~ Normal(0, Priors.bias)`` on its first
  ``K_i - 1`` entries (``K`` the largest action count; the entries of agents with fewer
  actions beyond ``K_i - 1`` are not used and keep their prior);
- ``bias`` float[n, K] (deterministic): ``b_i`` on agent i's actions, 0 on padded ones.

So ``b_i`` is isotropic Normal(0, s^2) inside the subspace: ``Var b_i[k] = s^2 (1 - 1 / K_i)``
and ``Var(b_i[k] - b_i[j]) = 2 s^2``. The bias is in logit units, not multiplied by the
temperature: it is identified even where the temperature and the payoff scale are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_diml.mechanisms.base import sum_to_zero_basis
from bayes_diml.precision import FULL_PRECISION

from .priors import INFER, Priors

__all__ = [
    "BIAS",
    "BIAS_FREE",
    "infers_bias",
    "bias_basis",
    "bias_free_shape",
    "bias_from_free",
    "free_from_bias",
    "sample_bias",
]

#: The learner field, and the deterministic site, of the action bias.
BIAS = "bias"
#: The latent site of the action bias: its gauge-free coordinates.
BIAS_FREE = "bias_free"


def infers_bias(learner: Any) -> bool:
    """Tell whether the learner spec infers its action bias (``bias="infer"``)."""
    bias = getattr(learner, BIAS, 0.0)
    return isinstance(bias, str) and bias == INFER


def bias_free_shape(n_actions: Sequence[int]) -> tuple[int, int]:
    """Return the shape ``(n, K - 1)`` of the ``bias_free`` site (``K = max K_i``)."""
    return len(n_actions), max(int(k) for k in n_actions) - 1


def bias_basis(n_actions: Sequence[int]) -> np.ndarray:
    """Return ``B: float[n, K, K - 1]`` with ``b_i = B[i] z_i``: ``H_{K_i}`` in the top-left block, else 0."""
    n, free = bias_free_shape(n_actions)
    basis = np.zeros((n, free + 1, free))
    for i, k in enumerate(n_actions):
        basis[i, : int(k), : int(k) - 1] = sum_to_zero_basis(int(k))
    return basis


def bias_from_free(free: Any, n_actions: Sequence[int]) -> jax.Array:
    """Return the bias ``float[..., n, K]`` of gauge-free coordinates ``free: float[..., n, K - 1]``.

    Each agent's bias sums to zero over its ``K_i`` actions and is 0 on padded ones.
    """
    free = jnp.asarray(free)
    basis = jnp.asarray(bias_basis(n_actions), dtype=free.dtype)
    return jnp.einsum("...ij,ikj->...ik", free, basis, precision=FULL_PRECISION)


def free_from_bias(bias: Any, n_actions: Sequence[int]) -> np.ndarray:
    """Return the gauge-free coordinates ``float[..., n, K - 1]`` of a bias ``float[..., n, K]``.

    The inverse of :func:`bias_from_free` up to the gauge: each agent's bias is centred over
    its ``K_i`` actions first (padded entries ignored).
    """
    bias = np.asarray(bias, dtype=float)
    n, free = bias_free_shape(n_actions)
    out = np.zeros((*bias.shape[:-2], n, free))
    for i, k in enumerate(int(k) for k in n_actions):
        b = bias[..., i, :k]
        centred = b - b.mean(axis=-1, keepdims=True)
        out[..., i, : k - 1] = centred @ sum_to_zero_basis(k)
    return out


def sample_bias(priors: Priors, n_actions: Sequence[int]) -> jax.Array:
    """Sample ``bias_free`` (Normal(0, ``priors.bias``)) and record ``bias``; returns float[n, K].

    Call inside a NumPyro model.
    """
    shape = bias_free_shape(n_actions)
    free = numpyro.sample(BIAS_FREE, dist.Normal(0.0, float(priors.bias)).expand(shape).to_event(2))
    return numpyro.deterministic(BIAS, bias_from_free(free, n_actions))
