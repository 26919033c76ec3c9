"""Economic mechanisms of the DIML experiments and their parametric families.

- ``Congestion`` (E2) and ``StructuredCongestion`` (its StructMLE family),
- ``PublicGoods`` (E3) and ``StructuredPublicGoods`` (its StructMLE family).

All four are anonymous: the payoff depends on the own action and the counts of the
others' actions, so they also offer ``count_payoffs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._util import FULL_PRECISION, check_positive_int, matmul, mlp_apply, mlp_init
from .base import GaugeFreeLeaves, sum_to_zero_basis

__all__ = ["Congestion", "StructuredCongestion", "PublicGoods", "StructuredPublicGoods"]


def _own_count(own: jax.Array, counts: jax.Array) -> jax.Array:
    """Return counts[..., own]: the number of others on the own action. own: int[...], counts: [..., K]."""
    own = jnp.asarray(own)
    shape = jnp.broadcast_shapes(own.shape, counts.shape[:-1])
    counts = jnp.broadcast_to(counts, (*shape, counts.shape[-1]))
    return jnp.take_along_axis(counts, jnp.broadcast_to(own, shape)[..., None], axis=-1)[..., 0]


def _others_counts(joint: jax.Array, n_choices: int, dtype) -> jax.Array:
    """For each agent, the counts of the others' actions: int[..., n] -> float[..., n, K]."""
    own = jax.nn.one_hot(joint, n_choices, dtype=dtype)
    return own.sum(-2, keepdims=True) - own


@dataclass(frozen=True)
class _Anonymous:
    """Shared structure of the anonymous mechanisms: n agents with the same K choices."""

    n_agents: int
    n_choices: int

    def __post_init__(self) -> None:
        check_positive_int("n_agents", self.n_agents)
        check_positive_int("n_choices", self.n_choices)

    @property
    def n_actions(self) -> tuple[int, ...]:
        """(K,) * n."""
        return (self.n_choices,) * self.n_agents

    def _dtype(self, params) -> jnp.dtype:
        return jax.tree_util.tree_leaves(params)[0].dtype

    def payoffs(self, params, joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n]."""
        joint = jnp.asarray(joint)
        return self.count_payoffs(params, joint, _others_counts(joint, self.n_choices, self._dtype(params)))


@dataclass(frozen=True)
class Congestion(_Anonymous):
    """Congestion game with tolls (experiment E2).

    ``payoff_i = -(c1[a_i] load + c2[a_i] load^2) + toll[a_i] load`` where ``load`` is
    the number of agents (including i) on route ``a_i``. ``init`` draws the reference's
    truth: ``c1 ~ U(0.1, 0.4)``, ``c2 ~ U(0.05, 0.15)``, ``toll ~ U(0, 0.2)``.

    Params: ``{"c1": float[K], "c2": float[K], "toll": float[K]}``.
    """

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Draw the E2 ground truth."""
        k1, k2, k3 = jax.random.split(key, 3)
        K = self.n_choices
        return {
            "c1": jax.random.uniform(k1, (K,), minval=0.1, maxval=0.4),
            "c2": jax.random.uniform(k2, (K,), minval=0.05, maxval=0.15),
            "toll": jax.random.uniform(k3, (K,), minval=0.0, maxval=0.2),
        }

    def count_payoffs(self, params, own: jax.Array, opponent_counts: jax.Array) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] -> float[...]."""
        load = _own_count(own, opponent_counts) + 1.0
        c1, c2, toll = (params[k][own] for k in ("c1", "c2", "toll"))
        return -(c1 * load + c2 * load**2) + toll * load


def _load_frames(n_agents: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotation of ``(b, w1, w2)`` that decorrelates the congestion basis, and the gauge complement.

    ``U: float[3, 3]``: eigenvectors of ``V^T V`` with ``V = [1, load, load^2]`` over the loads
    ``1..n`` (so ``theta_k = U phi_k`` has a diagonal design Gram matrix). ``C: float[3, 2]``: an
    orthonormal basis of the complement of ``u0 = U[0]`` (the ``b`` row), in which the mean over
    routes of ``phi`` must lie for ``b`` to sum to zero.
    """
    load = np.arange(1, n_agents + 1, dtype=float)
    V = np.stack([np.ones_like(load), load, load**2], axis=1)
    _, U = np.linalg.eigh(V.T @ V)
    U = U * np.sign(U[np.argmax(np.abs(U), axis=0), range(3)])  # deterministic signs
    q, _ = np.linalg.qr(np.column_stack([U[0], np.eye(3)]))
    return U, q[:, 1:3]


@dataclass(frozen=True)
class StructuredCongestion(_Anonymous):
    """Parametric congestion family: ``payoff_i = b[a_i] + w1[a_i] load + w2[a_i] load^2``.

    Contains ``Congestion`` (``b = 0``, ``w1 = toll - c1``, ``w2 = -c2``; ``toll`` and
    ``c1`` are not separately identified). A common shift of all ``b`` is a gauge
    direction: it changes no likelihood.

    Params: ``{"b": float[K], "w1": float[K], "w2": float[K]}``; ``init`` draws N(0, 0.1^2).

    Identified parametrisation (``identified=True``, the default; used by the Bayesian
    model), an orthonormal change of coordinates of ``theta_k = (b_k, w1_k, w2_k)``:

    - each ``theta_k = U phi_k`` with ``U`` the eigenvectors of ``V^T V``, ``V = [1, load,
      load^2]`` over the loads ``1..n``: the coefficients of ``1, load, load^2`` are strongly
      collinear (load takes only n values), the rotated ones are not;
    - ``phi = H contrasts + 1 common^T C^T / sqrt(K)`` with ``H`` an orthonormal basis of the
      sum-to-zero subspace over routes and ``C`` one of the complement of ``U[0]``: route
      contrasts ``contrasts: float[K-1, 3]`` are free and the route mean ``common: float[2]``
      is restricted so that ``b`` sums to zero (the gauge direction is removed).

    The map is orthonormal, so an isotropic Normal prior on ``(contrasts, common)`` is the
    isotropic prior on ``(b, w1, w2)`` restricted to ``sum(b) = 0``: the posterior of payoff
    differences equals the raw parametrisation's. ``identified=False`` keeps the raw
    ``(b, w1, w2)`` (for comparison). On E2 (30 x 40 training data, one chain of 400 draws,
    diagonal mass) NUTS took 73 leapfrog steps per draw here against 270 with only ``b``
    sum-to-zero and 326 raw (see docs/identification.md).
    """

    init_scale: float = 0.1
    identified: bool = True

    def identified_sites(self) -> dict[str, tuple[int, ...]] | None:
        """Return identified parameters ``contrasts: float[K-1, 3]``, ``common: float[2]`` (None if raw)."""
        if not self.identified:
            return None
        return {"contrasts": (self.n_choices - 1, 3), "common": (2,)}

    def params_from_identified(self, sites: dict) -> dict[str, jax.Array]:
        """``(b, w1, w2)`` from the identified coordinates (``b`` sums to zero; batch dims allowed)."""
        contrasts = jnp.asarray(sites["contrasts"])
        dtype = contrasts.dtype
        U, C = _load_frames(self.n_agents)
        H = jnp.asarray(sum_to_zero_basis(self.n_choices), dtype)
        mean = matmul(jnp.asarray(sites["common"], dtype), jnp.asarray(C, dtype).T)  # [..., 3]
        phi = jnp.einsum("kr,...rj->...kj", H, contrasts, precision=FULL_PRECISION)
        phi = phi + mean[..., None, :] / np.sqrt(self.n_choices)
        theta = matmul(phi, jnp.asarray(U, dtype).T)  # [..., K, 3]
        return {"b": theta[..., 0], "w1": theta[..., 1], "w2": theta[..., 2]}

    def identified_from_params(self, params: dict) -> dict:
        """Return the identified coordinates of ``params`` (of its gauge-fixed part: ``b`` centred)."""
        theta = np.stack([np.asarray(params[k], dtype=float) for k in ("b", "w1", "w2")], axis=-1)
        theta[:, 0] -= theta[:, 0].mean()
        U, C = _load_frames(self.n_agents)
        phi = theta @ U
        H = sum_to_zero_basis(self.n_choices)
        return {"contrasts": H.T @ phi, "common": (phi.sum(0) / np.sqrt(self.n_choices)) @ C}

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Small random start for fitting."""
        keys = jax.random.split(key, 3)
        K = self.n_choices
        return {
            k: self.init_scale * jax.random.normal(kk, (K,))
            for k, kk in zip(("b", "w1", "w2"), keys, strict=True)
        }

    def count_payoffs(self, params, own: jax.Array, opponent_counts: jax.Array) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] -> float[...]."""
        load = _own_count(own, opponent_counts) + 1.0
        return params["b"][own] + params["w1"][own] * load + params["w2"][own] * load**2

    @staticmethod
    def params_from_congestion(params: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Return the member of this family equal to ``Congestion`` with ``params``."""
        return {
            "b": jnp.zeros_like(params["c1"]),
            "w1": params["toll"] - params["c1"],
            "w2": -params["c2"],
        }


@dataclass(frozen=True)
class PublicGoods(GaugeFreeLeaves, _Anonymous):
    """Public goods with a learned subsidy (experiment E3).

    With ``level = linspace(0, 1, K)[a_i]`` and ``total`` the sum of all agents' levels:
    ``payoff_i = 1 - exp(-benefit_rate total) - cost level^2 + subsidy(total, level)``,
    ``subsidy`` an MLP ``2 -> width tanh -> 1`` whose random init is the truth.

    Params: ``{"subsidy": [{"w", "b"}] * 2}``.
    """

    benefit_rate: float = 2.0
    cost: float = 0.8
    width: int = 64
    _gauge_leaves = ("subsidy.1.b",)  # the subsidy's output bias shifts every payoff alike
    fixed_units = True  # known constants (benefit, cost) fix the payoff scale

    @property
    def levels(self) -> jax.Array:
        """Contribution level of each action: float[K] = linspace(0, 1, K)."""
        return jnp.linspace(0.0, 1.0, self.n_choices)

    def init(self, key: jax.Array) -> dict:
        """Draw the E3 ground truth (the subsidy network)."""
        return {"subsidy": mlp_init(key, [2, self.width, 1])}

    def _total_level(self, own, opponent_counts, dtype):
        levels = self.levels.astype(dtype)
        own_level = levels[own]
        return matmul(jnp.asarray(opponent_counts, dtype), levels) + own_level, own_level

    def count_payoffs(self, params, own: jax.Array, opponent_counts: jax.Array) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] -> float[...]."""
        total, level = self._total_level(own, opponent_counts, self._dtype(params))
        total, level = jnp.broadcast_arrays(total, level)
        subsidy = mlp_apply(params["subsidy"], jnp.stack([total, level], -1), jnp.tanh)[..., 0]
        return 1.0 - jnp.exp(-self.benefit_rate * total) - self.cost * level**2 + subsidy


@dataclass(frozen=True)
class StructuredPublicGoods(PublicGoods):
    """Parametric public-goods family (StructMLE for E3).

    ``payoff_i = scale (1 - exp(-rate total)) - cost level^2 + subsidy(total, level)``
    with ``scale, rate, cost`` and the subsidy network all free. Contains ``PublicGoods``
    at ``scale = 1, rate = 2, cost = 0.8``.

    Params: ``{"scale": float[], "rate": float[], "cost": float[], "subsidy": [...]}``.
    """

    fixed_units = False  # a free scale: beta and the payoff scale are confounded

    def init(self, key: jax.Array) -> dict:
        """Neutral start: scale 1, rate 1, cost 0.5 and a random subsidy network."""
        return {
            "scale": jnp.asarray(1.0),
            "rate": jnp.asarray(1.0),
            "cost": jnp.asarray(0.5),
            "subsidy": mlp_init(key, [2, self.width, 1]),
        }

    def count_payoffs(self, params, own: jax.Array, opponent_counts: jax.Array) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] -> float[...]."""
        total, level = self._total_level(own, opponent_counts, self._dtype(params))
        total, level = jnp.broadcast_arrays(total, level)
        subsidy = mlp_apply(params["subsidy"], jnp.stack([total, level], -1), jnp.tanh)[..., 0]
        benefit = params["scale"] * (1.0 - jnp.exp(-params["rate"] * total))
        return benefit - params["cost"] * level**2 + subsidy

    def params_from_public_goods(self, params: dict) -> dict:
        """Return the member of this family equal to ``PublicGoods`` with ``params``."""
        return {
            "scale": jnp.asarray(1.0),
            "rate": jnp.asarray(self.benefit_rate),
            "cost": jnp.asarray(self.cost),
            "subsidy": params["subsidy"],
        }
