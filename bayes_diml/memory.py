"""Memory guard: refuse a counterfactual plan that will not fit in memory, before allocating it.

The likelihood evaluates the mechanism once on a plan (see :mod:`bayes_diml.counterfactual`)
and gathers a counterfactual tensor ``float[M, T-1, n, K]``; building the plan (NumPy, host
memory) and differentiating the learner's scan (device memory) need several arrays of that
size. :func:`check_plan_memory` estimates those bytes from the shapes alone and raises
:class:`MemoryLimitError` when they exceed the memory available, naming the cheaper path.

The limit is, in order: :func:`memory_limit` / :func:`set_memory_limit` (a context or a
process-wide setting), the environment variable ``BAYES_DIML_MEMORY_LIMIT`` (bytes, or with
a unit: ``"512MB"``, ``"4GiB"``), else the memory available now (``psutil`` on CPU, the
accelerator's free memory otherwise).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

__all__ = [
    "MemoryLimitError",
    "PlanMemory",
    "estimate_plan_memory",
    "check_plan_memory",
    "available_memory",
    "set_memory_limit",
    "memory_limit",
    "parse_bytes",
]

ENV_VAR = "BAYES_DIML_MEMORY_LIMIT"
#: Copies of the counterfactual tensor alive while the value and gradient are computed
#: (the tensor, the learner state per step kept for reverse mode, the log-policies and
#: their cotangents); a deliberate over-estimate rather than a measurement.
DEVICE_COPIES = 5
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_limit_override: int | None = None


class MemoryLimitError(MemoryError):
    """A plan or counterfactual tensor would not fit in memory (raised before allocating)."""


class PlanMemory(NamedTuple):
    """Estimated bytes of one likelihood evaluation with its gradient.

    Attributes
    ----------
    kind : str
        Plan kind: ``"table"``, ``"count"`` or ``"joint"``.
    cf_shape : tuple of int
        ``(M, T-1, n, K)``, the counterfactual tensor.
    cf_bytes : int
        Bytes of the counterfactual tensor in the float precision JAX uses.
    host_bytes : int
        Peak bytes of building the plan with NumPy.
    device_bytes : int
        Bytes of the value-and-gradient evaluation (``DEVICE_COPIES`` tensors).
    """

    kind: str
    cf_shape: tuple[int, ...]
    cf_bytes: int
    host_bytes: int
    device_bytes: int

    @property
    def total_bytes(self) -> int:
        """Host plus device bytes (they share memory on a CPU backend)."""
        return self.host_bytes + self.device_bytes


def parse_bytes(value: str | int | float) -> int:
    """``"512MB"``, ``"4GiB"``, ``"1e9"`` or a number of bytes -> int bytes."""
    if isinstance(value, int | float | np.integer | np.floating):
        nbytes = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(value))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(
                f"memory limit {value!r} is not a size; use bytes or a number with a unit "
                "(KB, MB, GB, KiB, MiB, GiB), e.g. '4GiB'."
            )
        try:
            nbytes = float(match.group(1)) * _UNITS[unit]
        except ValueError:
            raise ValueError(f"memory limit {value!r} is not a size.") from None
    if not nbytes > 0 or not math.isfinite(nbytes):
        raise ValueError(f"memory limit must be a positive number of bytes; got {value!r}.")
    return int(nbytes)


def set_memory_limit(nbytes: str | int | None) -> None:
    """Set the process-wide memory limit (bytes or ``"4GiB"``); ``None`` restores the default."""
    global _limit_override
    _limit_override = None if nbytes is None else parse_bytes(nbytes)


@contextlib.contextmanager
def memory_limit(nbytes: str | int | None) -> Iterator[None]:
    """Context in which the memory limit is ``nbytes`` (``None``: the default)."""
    global _limit_override
    saved = _limit_override
    set_memory_limit(nbytes)
    try:
        yield
    finally:
        _limit_override = saved


def available_memory() -> tuple[int, str]:
    """``(bytes, where the number comes from)`` that a fit may use now."""
    if _limit_override is not None:
        return _limit_override, "set_memory_limit"
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_bytes(env), f"${ENV_VAR}"
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            return free, f"free memory of {device.device_kind}"
    import psutil

    return int(psutil.virtual_memory().available), "available system memory"


def _itemsize() -> int:
    import jax

    return 8 if jax.config.jax_enable_x64 else 4


def estimate_plan_memory(kind: str, shape: tuple[int, int, int], n_actions: tuple[int, ...]) -> PlanMemory:
    """Bytes of building plan ``kind`` for ``actions: int[M, T, n]`` and evaluating it with a gradient.

    Host (NumPy) peaks, in int64 elements of ``E = M (T-1) n K``: table 4 E (index, the flat
    offsets and their masked copy); count 2 E int32 one-hots plus 3 E for the unique rows;
    joint 2 n E for the counterfactual joint actions plus 4 E for their codes and sort.
    """
    M, T, n = (int(v) for v in shape)
    K = max(int(k) for k in n_actions)
    elems = M * max(T - 1, 0) * n * K
    if kind == "table":
        host = 4 * 8 * elems
    elif kind == "count":
        host = 2 * 4 * elems + 3 * 8 * elems
    elif kind == "joint":
        host = 2 * 8 * elems * n + 4 * 8 * elems
    else:
        raise ValueError(f"unknown plan kind {kind!r}; use 'table', 'count' or 'joint'.")
    cf = _itemsize() * elems
    return PlanMemory(kind, (M, max(T - 1, 0), n, K), cf, host, DEVICE_COPIES * cf)


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def _advice(kind: str, has_count: bool) -> str:
    parts = []
    if kind != "count":
        parts.append(
            "for an anonymous game (payoffs depend on how many opponents play each action) use a "
            "mechanism with count_payoffs (SymmetricCount, Congestion, PublicGoods): its 'count' plan "
            "evaluates one row per distinct opponent-count vector"
            if not has_count
            else "this mechanism has count_payoffs: with equal K_i its 'count' plan applies"
        )
    parts.append(
        "fit fewer episodes at a time (data.subset(...), or method='svi' with batch_size=B, which "
        "evaluates B episodes per step) or shorter episodes, since memory grows with M x (T-1)"
    )
    parts.append(f"or raise the limit with bayes_diml.memory.set_memory_limit(...) / ${ENV_VAR}")
    return "; ".join(parts) + "."


def check_plan_memory(
    mechanism: object, shape: tuple[int, int, int], n_actions: tuple[int, ...], kind: str
) -> PlanMemory:
    """Raise :class:`MemoryLimitError` if plan ``kind`` for ``actions: int[M, T, n]`` will not fit.

    Called by :func:`bayes_diml.counterfactual.plan_for` (which builds the plans of
    ``log_likelihood`` and of ``ModelSpec``) before the plan is built.
    """
    est = estimate_plan_memory(kind, shape, n_actions)
    limit, source = available_memory()
    if est.total_bytes <= limit:
        return est
    M, S, n, K = est.cf_shape
    has_count = callable(getattr(mechanism, "count_payoffs", None)) and len(set(n_actions)) == 1
    raise MemoryLimitError(
        f"the likelihood of {M} episodes x {S + 1} steps x {n} agents x {K} actions would need about "
        f"{_gib(est.total_bytes)} ({kind!r} plan: {_gib(est.host_bytes)} to build it; the counterfactual "
        f"tensor float[M, T-1, n, K] = [{M}, {S}, {n}, {K}] takes {_gib(est.cf_bytes)}, about "
        f"{_gib(est.device_bytes)} with its gradient), more than the {_gib(limit)} of {source}. "
        "Nothing was allocated. " + _advice(kind, has_count)
    )
