"""A payoff table whose cells move linearly with episode-level covariates (context)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_labels, check_n_actions, check_positive
from .tabular import Tabular

__all__ = ["CovariateTabular", "covariate_vector"]


def covariate_vector(names: tuple[str, ...], covariates: Any) -> np.ndarray:
    """Return ``{"name": value}`` as float64[C] in the order of ``names``.

    Raises
    ------
    ValueError
        naming unknown, missing or non-finite covariates, or values that are not numbers.
    """
    if not isinstance(covariates, Mapping):
        raise ValueError(f"covariates must be a mapping {{name: value}}; got {covariates!r}.")
    given = {str(k): v for k, v in covariates.items()}
    unknown = sorted(set(given) - set(names))
    missing = [c for c in names if c not in given]
    if unknown or missing:
        parts = [f"unknown covariate(s) {', '.join(map(repr, unknown))}"] if unknown else []
        parts += [f"missing covariate(s) {', '.join(map(repr, missing))}"] if missing else []
        raise ValueError(f"{'; '.join(parts)}; the mechanism's covariates are {', '.join(map(repr, names))}.")
    try:
        x = np.array([float(given[c]) for c in names], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"covariate values must be numbers; got {given!r}.") from exc
    bad = [c for c, v in zip(names, x, strict=True) if not np.isfinite(v)]
    if bad:
        raise ValueError(f"covariate(s) {', '.join(map(repr, bad))} must be finite; got {given!r}.")
    return x


@dataclass(frozen=True)
class CovariateTabular:
    """``payoff_i(a; x) = table[a, i] + sum_c x_c * slopes[c, a, i]`` in an episode with covariates ``x``.

    Params: ``{"table": float[K_1, ..., K_n, n], "slopes": float[C, K_1, ..., K_n, n]}``, the
    slopes' first axis in the order of ``covariate_names`` (matched by name to the data's
    ``covariate_names``). ``payoffs(params, joint)`` gives the payoffs at ``x = 0`` (the
    table); ``payoffs(params, joint, covariates=x)`` with ``x: float[..., C]`` (broadcast
    against ``joint: int[..., n]``) at ``x``. The counterfactual plan of data with covariates
    (``bayes_diml.counterfactual.covariate_plan``) holds the data's distinct covariate
    rows as ``contexts: float[G, C]`` and its points as ``int[U, n + 1]`` (actions, context
    code), so every episode's payoffs come from one call.

    The Bayesian model samples the centred table and the centred slopes in the gauge-free
    coordinates of ``Tabular`` (``u{i}_free`` and ``u{i}_slope`` ``float[C, ...]``); the slopes
    have ``N(0, slope_prior^2)`` priors. Only payoff differences within an agent's own actions
    are modelled; payoff levels (and how they move with ``x``) are not.

    Attributes
    ----------
    n_actions : tuple of int
        ``K_i`` per agent.
    covariate_names : tuple of str
        The covariates, in the order of the slopes' first axis.
    init_scale : float
        Scale of the ``N(0, init_scale^2)`` draws of :meth:`init` (table and slopes).
    slope_prior : float
        Scale of the normal prior on every free slope coordinate.
    """

    n_actions: tuple[int, ...]
    covariate_names: tuple[str, ...]
    init_scale: float = 1.0
    slope_prior: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))
        object.__setattr__(
            self, "covariate_names", check_labels("covariate_names", self.covariate_names, "name")
        )
        check_positive("slope_prior", self.slope_prior)

    @property
    def n_agents(self) -> int:
        """Number of agents n."""
        return len(self.n_actions)

    @property
    def n_covariates(self) -> int:
        """Number of covariates C."""
        return len(self.covariate_names)

    @property
    def table_shape(self) -> tuple[int, ...]:
        """(K_1, ..., K_n, n)."""
        return (*self.n_actions, self.n_agents)

    @property
    def tabular(self) -> Tabular:
        """The mechanism of the table at one covariate value (see :meth:`context_params`)."""
        return Tabular(self.n_actions, self.init_scale)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Random table and slopes ``N(0, init_scale^2)``."""
        k1, k2 = jax.random.split(key)
        return {
            "table": self.init_scale * jax.random.normal(k1, self.table_shape),
            "slopes": self.init_scale * jax.random.normal(k2, (self.n_covariates, *self.table_shape)),
        }

    def payoffs(self, params: dict[str, jax.Array], joint: jax.Array, covariates: Any = None) -> jax.Array:
        """Payoffs ``int[..., n] -> float[..., n]`` at ``covariates: float[..., C]`` (default 0)."""
        joint = jnp.asarray(joint)
        if joint.shape[-1] != self.n_agents:
            raise ValueError(
                f"CovariateTabular.payoffs needs joint int[..., n] with n = {self.n_agents}; got shape "
                f"{joint.shape}. Pass the covariates as covariates=float[..., C]."
            )
        index = tuple(joint[..., i] for i in range(self.n_agents))
        base = params["table"][index]
        if covariates is None:
            return base
        x = jnp.asarray(covariates, dtype=base.dtype)
        if x.shape[-1:] != (self.n_covariates,):
            raise ValueError(
                f"covariates must be float[..., C] with C = {self.n_covariates} "
                f"({', '.join(self.covariate_names)}); got shape {x.shape}."
            )
        slopes = jnp.moveaxis(params["slopes"], 0, -1)[index]  # [..., n, C]
        return base + (slopes * x[..., None, :]).sum(-1)  # elementwise: exact on every device

    def covariate_vector(self, covariates: Mapping[str, float]) -> np.ndarray:
        """Return ``{"name": value}`` as float64[C] ordered as ``covariate_names`` (ValueError: bad names)."""
        return covariate_vector(self.covariate_names, covariates)

    def context_params(self, params: dict[str, jax.Array], covariates: Any) -> dict[str, jax.Array]:
        """Params of :attr:`tabular` at one covariate value: ``{"table": float[K_1, ..., K_n, n]}``.

        ``covariates``: ``{"name": value}`` or ``float[C]`` in the order of ``covariate_names``.
        """
        x = self.covariate_vector(covariates) if isinstance(covariates, Mapping) else covariates
        x = jnp.asarray(x, dtype=jnp.asarray(params["table"]).dtype)
        if x.shape != (self.n_covariates,):
            raise ValueError(
                f"covariates must be float[C] with C = {self.n_covariates}; got shape {x.shape}."
            )
        return {"table": params["table"] + jnp.tensordot(x, params["slopes"], axes=1)}
