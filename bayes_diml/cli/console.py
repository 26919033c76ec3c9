"""What every command prints with: rich consoles, one-line errors, visible warnings, number formats.

Bad input (missing or unreadable files, wrong suffixes, bad values, a mechanism that does not
fit the data) ends in a one-line error and a non-zero exit code, never a traceback
(:func:`user_errors`; ``--debug`` shows the traceback instead). Warnings of the package
(confounding, convergence) are printed to stderr so that they stay visible and never mix with
machine-readable output (:func:`visible_warnings`); ``--json`` output goes through
:func:`emit_json`. The exit codes are listed in :data:`EXIT_CODES`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bayes_diml.inference import ConvergenceWarning, FitError, Posterior
from bayes_diml.learners import LogitQ, parameter_names
from bayes_diml.memory import MemoryLimitError

__all__ = [
    "EXIT_CODES",
    "QUIET",
    "DEBUG",
    "StrictFailure",
    "quiet",
    "debug",
    "note",
    "stdout",
    "stderr",
    "user_errors",
    "visible_warnings",
    "warning_records",
    "strict_check",
    "json_ready",
    "emit_json",
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


#: Exit codes of every command (shown in ``bayes-diml --help``, README and docs/cli.md).
EXIT_CODES = (
    (0, "success"),
    (1, "error in the input or the data (one-line message; --debug shows the traceback)"),
    (2, "usage error: unknown flag, missing argument, bad value (click's)"),
    (3, "fit --strict: the fit failed its convergence checks (a ConvergenceWarning)"),
)
#: Keys in click's ``Context.meta`` (shared by the group and its commands) of --quiet and --debug.
QUIET = "bayes_diml.quiet"
DEBUG = "bayes_diml.debug"


class StrictFailure(click.ClickException):
    """``--strict``: a fit finished with convergence problems (exit code 3)."""

    exit_code = 3


def _meta_flag(key: str) -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(key, False))


def quiet() -> bool:
    """Return whether --quiet was given (no progress bars, no notes; results and errors stay)."""
    return _meta_flag(QUIET)


def debug() -> bool:
    """Return whether --debug was given (errors show their full traceback)."""
    return _meta_flag(DEBUG)


def note(console: Console, text: str) -> None:
    """Print an informational note (rich markup) to ``console`` unless --quiet was given."""
    if not quiet():
        console.print(text, soft_wrap=True)


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
    """Turn the package's input errors into a one-line click error (exit code 1).

    With --debug the original exception propagates and Python prints its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except ImportError as exc:  # e.g. zarr not installed for a .zarr fit
            if debug():
                raise
            raise click.ClickException(f"a required package is missing: {_one_line(exc)}") from None
        except (ValueError, TypeError, KeyError, OSError, FitError, MemoryLimitError) as exc:
            # DataError is a ValueError; MemoryLimitError is the memory guard, raised before allocating
            if debug():
                raise
            raise click.ClickException(_one_line(exc)) from None

    return wrapper


@contextlib.contextmanager
def visible_warnings(console: Console) -> Iterator[list[warnings.WarningMessage]]:
    """Collect warnings raised inside and print the user-facing ones (UserWarning) to ``console``.

    Deprecation and numeric RuntimeWarnings of the libraries are dropped: they are not about
    the user's fit. Identical messages are printed once. Yields a list that holds, once the
    block has ended, the warnings printed (for :func:`strict_check` and ``--json``).
    """
    shown: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield shown
        finally:
            seen = set()
            for w in caught:
                if not issubclass(w.category, UserWarning):
                    continue
                text = " ".join(str(w.message).split())
                if text in seen:
                    continue
                seen.add(text)
                shown.append(w)
                console.print(
                    f"[bold yellow]Warning ({w.category.__name__}):[/] {escape(text)}", soft_wrap=True
                )


def warning_records(shown: list[warnings.WarningMessage]) -> list[dict[str, str]]:
    """Return the warnings :func:`visible_warnings` printed as ``[{category, message}]`` (for --json)."""
    return [{"category": w.category.__name__, "message": " ".join(str(w.message).split())} for w in shown]


def strict_check(shown: list[warnings.WarningMessage], strict: bool) -> None:
    """Under --strict, end with exit code 3 if a :class:`ConvergenceWarning` was among ``shown``."""
    problems = [w for w in shown if issubclass(w.category, ConvergenceWarning)]
    if strict and problems:
        text = " ".join(str(problems[0].message).split())
        raise StrictFailure(f"--strict: the fit failed its convergence checks ({text})")


def json_ready(value: Any) -> Any:
    """Return ``value`` as plain JSON types: numpy numbers and arrays as numbers and lists, NaN as None.

    Mappings keep their order (keys as strings); tuples, lists and arrays become lists; paths
    become strings; infinite and NaN floats become None, so that the document is strict JSON.
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON.")


def emit_json(document: Any) -> None:
    """Print ``document`` as one JSON document on stdout (see :func:`json_ready`)."""
    click.echo(json.dumps(json_ready(document), indent=2, allow_nan=False))


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
        early = ""
        if "validation_trace" in info:  # early stopping on held-out episodes
            steps, per_action = int(info["map_steps"]), fmt(info["validation_per_action"], 6)
            early = f"; early stopping kept step {steps} (held-out log-likelihood {per_action} per action)"
        polish = ""
        if info.get("map_polish_steps"):
            steps, lbfgs = int(info["map_steps"]), int(info["map_polish_steps"])
            polish = f" after {steps} steps ({steps - lbfgs} Adam, {lbfgs} L-BFGS polishing)"
        return f"MAP: converged {'yes' if info['converged'] else 'NO'}{polish}{spread}{early}"
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
