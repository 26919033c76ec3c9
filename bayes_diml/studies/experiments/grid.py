"""The grid of the suite: experiment names to (experiment, setting) rows, and their environments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bayes_diml import environments
from bayes_diml.environments import E7_SETTINGS, Environment
from bayes_diml.studies.experiments.settings import (
    _FIXED_SETTINGS,
    DEFAULT_METHODS,
    EXPERIMENTS,
    METHODS,
    Settings,
)

__all__ = ["expand_experiments", "applicable", "make_environment"]


def expand_experiments(experiments: Iterable[str] | str) -> list[tuple[str, str]]:
    """Names -> (experiment, setting) pairs.

    ``"e1"``, ``"e2"``, ``"e3"``; ``"e7"`` means all five reference settings and
    ``"e7:40x10"`` one of them (any ``NxK``).
    """
    if isinstance(experiments, str):
        experiments = [experiments]
    out: list[tuple[str, str]] = []
    for raw in experiments:
        name = str(raw).lower().strip()
        base, _, setting = name.partition(":")
        if base not in EXPERIMENTS:
            raise ValueError(
                f"unknown experiment {raw!r}; choose from {', '.join(EXPERIMENTS)} "
                "(e7 settings as e7:40x10, e7:80x20, ...)."
            )
        if base != "e7":
            if setting and setting != _FIXED_SETTINGS[base]:
                raise ValueError(f"{base} has one setting ({_FIXED_SETTINGS[base]}); got {raw!r}.")
            out.append((base, _FIXED_SETTINGS[base]))
        elif not setting:
            out.extend(("e7", f"{n}x{k}") for n, k in E7_SETTINGS)
        else:
            _parse_e7(setting, raw)
            out.append(("e7", setting))
    return list(dict.fromkeys(out))


def _parse_e7(setting: str, raw: Any = None) -> tuple[int, int]:
    try:
        n, k = (int(v) for v in setting.split("x"))
    except ValueError:
        raise ValueError(
            f"E7 setting must look like 'e7:40x10' (n agents x K actions); got {raw!r}."
        ) from None
    return n, k


def applicable(experiment: str, method: str) -> bool:
    """Whether ``method`` is run on ``experiment`` (table methods need a small game)."""
    if method == "struct_mle":
        return experiment in ("e2", "e3")
    if method in ("tabular_mle", "joint_bc", "equilibrium", "nuts"):
        return experiment != "e7"
    return True


def _check_methods(methods: Iterable[str] | None) -> list[str]:
    methods = list(
        DEFAULT_METHODS if methods is None else ([methods] if isinstance(methods, str) else methods)
    )
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}.")
    return methods


def make_environment(experiment: str, setting: str, seed: int, settings: Settings) -> Environment:
    """Make the environment of one row (same data for every method of a seed)."""
    kw = {"n_episodes": settings.n_episodes, "T": settings.T}
    if experiment == "e7":
        n, k = _parse_e7(setting)
        return environments.make("e7", seed, n=n, K=k, **kw)
    return environments.make(experiment, seed, **kw)
