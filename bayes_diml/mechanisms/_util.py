"""Private helpers shared by mechanism modules: validation and small MLPs as plain pytrees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.precision import FULL_PRECISION, matmul

__all__ = ["FULL_PRECISION", "matmul"]  # re-exported for the mechanism modules


def check_n_actions(n_actions: Sequence[int] | int, n_agents: int | None = None) -> tuple[int, ...]:
    """Normalise ``n_actions`` to a tuple of positive ints, with a clear error."""
    if isinstance(n_actions, int | np.integer):
        if n_agents is None:
            raise ValueError(f"n_actions must be a sequence of K_i, one per agent; got {n_actions}.")
        n_actions = (int(n_actions),) * n_agents
    try:
        out = tuple(int(k) for k in n_actions)
    except TypeError as exc:
        raise ValueError(f"n_actions must be a sequence of ints; got {n_actions!r}.") from exc
    if not out:
        raise ValueError("n_actions is empty: a mechanism needs at least one agent.")
    if any(k < 1 for k in out) or any(k != float(v) for k, v in zip(out, n_actions, strict=True)):
        raise ValueError(f"n_actions must hold integers >= 1; got {tuple(n_actions)}.")
    return out


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    """An int >= minimum, or a ValueError naming ``name``."""
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_labels(name: str, labels: Sequence[str], noun: str = "label") -> tuple[str, ...]:
    """A non-empty tuple of distinct strings (``groups``, ``covariate_names``); ValueError naming ``name``."""
    if isinstance(labels, str) or not hasattr(labels, "__iter__"):
        raise ValueError(f"{name} must be a sequence of {noun}s; got {labels!r}.")
    out = tuple(str(v) for v in labels)
    if not out:
        raise ValueError(f"{name} must hold at least one {noun}.")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must be distinct; got {out}.")
    return out


def optional_covariate_names(names: Any) -> tuple[str, ...]:
    """``covariate_names`` of a mechanism that may take none: () for None or empty, else checked labels."""
    names = () if names is None else names
    if isinstance(names, str) or not hasattr(names, "__iter__") or tuple(names):
        names = check_labels("covariate_names", names, "name")
    return tuple(names)


def check_positive(name: str, value: float) -> None:
    """Raise a ValueError naming ``name`` unless ``value > 0`` (a prior scale)."""
    if not float(value) > 0:
        raise ValueError(f"{name} must be > 0; got {value}.")


def broadcast_covariates(
    covariates: Any, names: tuple[str, ...], joint_shape: tuple[int, ...], dtype: Any
) -> tuple[tuple[int, ...], jax.Array]:
    """Check ``covariates: float[..., C]`` (None: every covariate 0) and broadcast them.

    ``joint_shape`` is that of the joint actions ``int[..., n]``; returns the common leading
    shape and ``x: float[*lead, C]``. ValueError naming C and the covariates for a wrong last axis.
    """
    C = len(names)
    x = jnp.zeros((C,), dtype) if covariates is None else jnp.asarray(covariates, dtype=dtype)
    if x.shape[-1:] != (C,):
        raise ValueError(
            f"covariates must be float[..., C] with C = {C} ({', '.join(names)}); got shape {x.shape}."
        )
    lead = tuple(jnp.broadcast_shapes(tuple(joint_shape[:-1]), x.shape[:-1]))
    return lead, jnp.broadcast_to(x, (*lead, C))


def torch_linear_init(key: jax.Array, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    """PyTorch's default ``nn.Linear`` init: weight and bias ~ U(+-1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)
    kw, kb = jax.random.split(key)
    return {
        "w": jax.random.uniform(kw, (fan_in, fan_out), minval=-bound, maxval=bound),
        "b": jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound),
    }


def mlp_init(key: jax.Array, sizes: Sequence[int]) -> list[dict[str, jax.Array]]:
    """Layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with PyTorch's default init."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [torch_linear_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def mlp_apply(layers: Sequence[dict[str, jax.Array]], x: jax.Array, activation) -> jax.Array:
    """Affine layers with ``activation`` between them (none after the last): [..., in] -> [..., out]."""
    for layer in layers[:-1]:
        x = activation(matmul(x, layer["w"]) + layer["b"])
    return matmul(x, layers[-1]["w"]) + layers[-1]["b"]


def one_hot_counts(joint: jax.Array, n_actions: int, dtype=None) -> jax.Array:
    """Counts of each action in a joint action: int[..., n] -> float[..., K]."""
    return jax.nn.one_hot(joint, n_actions, dtype=dtype or jnp.result_type(float)).sum(-2)
