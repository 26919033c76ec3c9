"""What every command prints with: rich consoles, one-line errors, visible warnings, number formats.

Bad input (missing or unreadable files, wrong suffixes, bad values, a mechanism that does not
fit the data) ends in a one-line error and a non-zero exit code, never a traceback
(:func:`user_errors`). Warnings of the package (confounding, convergence) are printed to stderr
so that they stay visible and never mix with machine-readable output (:func:`visible_warnings`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bayes_diml.inference import FitError, Posterior
from bayes_diml.learners import LogitQ, parameter_names
from bayes_diml.memory import MemoryLimitError

__all__ = [
    "stdout",
    "stderr",
    "user_errors",
    "visible_warnings",
    "fmt",
    "fmt_values",
    "percent",
    "finite",
    "game_text",
    "stats_table",
    "frame_rows",
    "diagnostics_line",
    "post_header",
    "table_recorded",
]

_STAT_COLUMNS = ("mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "contraction")
_SHORT_LABELS = {
    "prior only (opponent profile never observed)": "prior only",
    "identified (beta x payoff)": "identified",
    "confounded with payoff scale": "confounded",
}


def stdout() -> Console:
    """Return a rich console on stdout (no highlighting)."""
    return Console(highlight=False)


def stderr() -> Console:
    """Return a rich console on stderr (no highlighting)."""
    return Console(stderr=True, highlight=False)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = f"missing entry {exc.args[0]!r}"
    return text or type(exc).__name__


def user_errors(fn: Callable) -> Callable:
    """Turn the package's input errors into a one-line click error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except ImportError as exc:  # e.g. zarr not installed for a .zarr fit
            raise click.ClickException(f"a required package is missing: {_one_line(exc)}") from None
        except (ValueError, TypeError, KeyError, OSError, FitError) as exc:  # DataError is a ValueError
            raise click.ClickException(_one_line(exc)) from None
        except MemoryLimitError as exc:  # the memory guard, raised before allocating
            raise click.ClickException(_one_line(exc)) from None

    return wrapper


@contextlib.contextmanager
def visible_warnings(console: Console) -> Iterator[None]:
    """Collect warnings raised inside and print the user-facing ones (UserWarning) to ``console``.

    Deprecation and numeric RuntimeWarnings of the libraries are dropped: they are not about
    the user's fit. Identical messages are printed once.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                if not issubclass(w.category, UserWarning):
                    continue
                text = " ".join(str(w.message).split())
                if text in seen:
                    continue
                seen.add(text)
                console.print(
                    f"[bold yellow]Warning ({w.category.__name__}):[/] {escape(text)}", soft_wrap=True
                )


def fmt(x: Any, digits: int = 4) -> str:
    """Return a number with ``digits`` significant digits; ``-`` for None, NaN and infinities."""
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def fmt_values(x: Any) -> str:
    """Return a scalar as :func:`fmt`, per-agent values as ``[a, b, ...]``."""
    arr = np.asarray(x, dtype=float)
    return fmt(arr) if arr.ndim == 0 else "[" + ", ".join(fmt(v) for v in arr) + "]"


def _fmt_stat(column: str, x: Any) -> str:
    if not finite(x):
        return "-"
    if column == "r_hat":
        return f"{float(x):.3f}"
    if column == "ess_bulk":
        return f"{float(x):.0f}"
    return fmt(x, 3)


def percent(prob: float) -> str:
    """Return a probability as a percentage, e.g. ``90%``."""
    return f"{100 * prob:g}%"


def finite(x: Any) -> bool:
    """Return whether ``x`` is a finite number."""
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def game_text(k: tuple[int, ...]) -> str:
    """Return the size of a game with action counts ``k``, e.g. ``4 agents x 5 actions``."""
    k = tuple(k)
    if len(set(k)) == 1:
        return f"{len(k)} agents x {k[0]} actions"
    return f"{len(k)} agents with {k} actions"


def _learner_text(learner: LogitQ) -> str:
    prefix = "" if isinstance(learner, LogitQ) else f"{type(learner).__name__}: "
    parts = []
    for name in parameter_names(learner):
        v = getattr(learner, name)
        if isinstance(v, str):
            parts.append(f"{name} {v.replace('_', ' ')}")
        else:
            arr = np.asarray(v, dtype=float)
            val = fmt(arr) if arr.ndim == 0 else "[" + ", ".join(fmt(x) for x in arr) + "]"
            parts.append(f"{name} = {val} (fixed)")
    bias = getattr(learner, "bias", 0.0)
    if isinstance(bias, str):
        parts.append(f"action bias {bias}")
    elif np.any(np.asarray(bias, dtype=float) != 0.0):
        parts.append("action bias (fixed)")
    return prefix + ", ".join(parts)


def stats_table(
    rows: dict[str, dict[str, Any]],
    title: str | None,
    *,
    cells: bool = False,
    label: bool = False,
) -> Table:
    """Return a rich table of ``{name: {mean, sd, lower, upper, r_hat, ess_bulk[, label]}}``.

    Columns without any finite value (sd, intervals and diagnostics of a MAP fit) are left out.
    ``cells``: names are ``var[a_1, ..., a_n, i]`` and are shown as profile and agent columns.
    """
    columns = [c for c in _STAT_COLUMNS if any(finite(r.get(c)) for r in rows.values())]
    table = Table(title=title, title_justify="left")
    if cells:
        table.add_column("profile a", no_wrap=True)
        table.add_column("agent", justify="right")
    else:
        table.add_column("parameter", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    if label:
        table.add_column("label")
    for name, row in rows.items():
        if cells:
            idx = name[name.index("[") + 1 : -1].split(", ")
            first = ["(" + ",".join(idx[:-1]) + ")", idx[-1]]
        else:
            first = [name]
        values = [_fmt_stat(c, row.get(c)) for c in columns]
        text = str(row.get("label", ""))
        labels = [escape(_SHORT_LABELS.get(text, text))] if label else []
        table.add_row(*(escape(f) for f in first), *values, *labels)
    return table


def frame_rows(frame: Any) -> dict[str, dict[str, Any]]:
    """Return the rows of a pandas frame as ``{index: {column: value}}``."""
    return {str(name): dict(row) for name, row in frame.iterrows()}


def diagnostics_line(post: Posterior) -> str | None:
    """Return one line of NUTS or MAP diagnostics of a fit, or None for other methods."""
    info = post.info
    if post.method == "nuts":
        parts = [f"divergences {int(info.get('divergences', 0))}"]
        if "max_r_hat" in info:
            parts.append(f"max R-hat {fmt(info['max_r_hat'])}")
        if "min_ess_bulk" in info:
            parts.append(f"min bulk ESS {fmt(info['min_ess_bulk'], 3)}")
        where = f", within each of {info['n_bags']} bags" if info.get("robust") == "bagging" else ""
        return f"NUTS diagnostics (identified quantities{where}): " + ", ".join(parts)
    if post.method == "map" and "converged" in info:
        lj = info.get("restart_log_joints") or []
        spread = f", restarts' log joints {', '.join(fmt(v, 6) for v in lj)}" if len(lj) > 1 else ""
        return f"MAP: converged {'yes' if info['converged'] else 'NO'}{spread}"
    return None


def post_header(post: Posterior) -> str:
    """Return one line naming a fit's mechanism, method, data, draws and learner."""
    draws = f"{post.n_draws} draw{'s' if post.n_draws != 1 else ''}"
    return (
        f"{type(post.mechanism).__name__} fitted by {post.method.upper()} to {post.data!r} ({draws}); "
        f"learner: {_learner_text(post.learner)}."
    )


def table_recorded(post: Posterior) -> bool:
    """Return whether the fit recorded the centred payoff table."""
    return "centred_payoffs" in post.idata["posterior"].data_vars
