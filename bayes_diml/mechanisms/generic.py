"""User-defined mechanisms: linear in features, or any pure JAX function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._util import broadcast_covariates, check_n_actions, matmul, optional_covariate_names
from .base import vmap_joint

__all__ = ["Linear", "Function"]


@dataclass(frozen=True, eq=False)
class Linear:
    """Payoffs linear in features of the joint action: ``payoff_i(a) = features(a)[i] @ weights``.

    Params: ``{"weights": float[F]}``.

    Parameters
    ----------
    features : callable or array
        Either a pure JAX function ``int[n] -> float[n, F]`` of one joint action, or a
        feature table ``float[K_1, ..., K_n, n, F]``.
    n_actions : sequence of int, optional
        ``K_i``; taken from the feature table when one is given, else from the data.
    init_scale : float
        ``init`` draws weights ``N(0, init_scale^2)``.
    """

    features: Callable[[jax.Array], jax.Array] | Any
    n_actions: tuple[int, ...] | None = None
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        if callable(self.features):
            if self.n_actions is not None:
                object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))
            n = None if self.n_actions is None else len(self.n_actions)
            if n is not None:
                shape = jax.eval_shape(self.features, jax.ShapeDtypeStruct((n,), jnp.int32)).shape
                if len(shape) != 2 or shape[0] != n:
                    raise ValueError(
                        f"features must map int[n] to float[n, F]; got output shape {shape} for n = {n}."
                    )
        else:
            table = np.asarray(self.features, dtype=float)
            if table.ndim < 3 or table.shape[-2] != table.ndim - 2:
                raise ValueError(f"a feature table must have shape (K_1, ..., K_n, n, F); got {table.shape}.")
            k = tuple(int(v) for v in table.shape[:-2])
            if self.n_actions is not None and check_n_actions(self.n_actions) != k:
                raise ValueError(f"n_actions {self.n_actions} does not match the feature table's {k}.")
            object.__setattr__(self, "n_actions", k)
            object.__setattr__(self, "features", jnp.asarray(table))

    @property
    def n_features(self) -> int:
        """F, the number of features."""
        if callable(self.features):
            if self.n_actions is None:
                raise ValueError(
                    "Linear with a feature function needs n_actions=(K_1, ..., K_n) to know the "
                    "number of features; give it when constructing the mechanism."
                )
            n = len(self.n_actions)
            return int(jax.eval_shape(self.features, jax.ShapeDtypeStruct((n,), jnp.int32)).shape[-1])
        return int(self.features.shape[-1])

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Weights ``N(0, init_scale^2)``: ``{"weights": float[F]}``."""
        return {"weights": self.init_scale * jax.random.normal(key, (self.n_features,))}

    def payoffs(self, params: dict[str, jax.Array], joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n]."""
        joint = jnp.asarray(joint)
        if callable(self.features):
            feats = vmap_joint(lambda _, a: self.features(a), None, joint)
        else:
            feats = self.features[tuple(joint[..., i] for i in range(joint.shape[-1]))]
        return matmul(feats, params["weights"])


@dataclass(frozen=True, eq=False)
class Function:
    """Any pure JAX payoff function as a mechanism, optionally of episode covariates.

    Parameters
    ----------
    fn : callable
        ``fn(params, joint)``: ``int[n] -> float[n]`` for one joint action (or
        ``int[..., n] -> float[..., n]`` with ``batched=True``). With ``covariate_names``,
        ``fn(params, joint, x)`` with the episode's covariates ``x: float[C]`` (batched:
        ``joint: int[..., n]`` and ``x: float[..., C]`` with the same leading shape).
    init : callable
        ``init(key) -> params``, a pytree of arrays.
    n_actions : sequence of int, optional
        ``K_i``; taken from the data when omitted.
    batched : bool
        Whether ``fn`` already handles leading batch dimensions.
    covariate_names : sequence of str
        The covariates ``fn`` takes, in the order of ``x`` (matched by name to the data's
        ``covariate_names``; the data may hold more). Empty (default): ``fn(params, joint)``.
    """

    fn: Callable[..., jax.Array]
    init: Callable[[jax.Array], Any]
    n_actions: Sequence[int] | None = None
    batched: bool = False
    covariate_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not callable(self.fn) or not callable(self.init):
            raise ValueError("Function(fn, init) needs two callables: fn(params, joint) and init(key).")
        if self.n_actions is not None:
            object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))
        object.__setattr__(self, "covariate_names", optional_covariate_names(self.covariate_names))

    @property
    def n_covariates(self) -> int:
        """Number of covariates C (0 without covariates)."""
        return len(self.covariate_names)

    def payoffs(self, params: Any, joint: jax.Array, covariates: Any = None) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n].

        With ``covariate_names``: at ``covariates: float[..., C]`` (broadcast against the joint
        actions' leading shape; default: every covariate 0).
        """
        joint = jnp.asarray(joint)
        if not self.covariate_names:
            if covariates is not None:
                raise ValueError(
                    "this Function takes no covariates; build it with covariate_names=(...) and "
                    "fn(params, joint, x) to make its payoffs depend on them."
                )
            if self.batched:
                return self.fn(params, joint)
            return vmap_joint(self.fn, params, joint)
        C = self.n_covariates
        lead, x = broadcast_covariates(covariates, self.covariate_names, joint.shape, jnp.result_type(float))
        joint = jnp.broadcast_to(joint, (*lead, joint.shape[-1]))
        if self.batched:
            out = self.fn(params, joint, x)
        else:
            flat = jax.vmap(self.fn, in_axes=(None, 0, 0))(
                params, joint.reshape(-1, joint.shape[-1]), x.reshape(-1, C)
            )
            out = flat.reshape(*lead, *flat.shape[1:])
        if jnp.shape(out) != joint.shape:
            per = "joint: int[..., n], x: float[..., C]" if self.batched else "joint: int[n], x: float[C]"
            want = "float[..., n]" if self.batched else "float[n]"
            got = jnp.shape(out) if self.batched else jnp.shape(out)[len(lead) :]
            raise ValueError(
                f"Function fn(params, {per}) must return {want} with n = {joint.shape[-1]} (one payoff "
                f"per agent); it returned shape {got}."
            )
        return out
