"""``bayes-diml payoffs``: a fit's centred payoff table, its pairs, group contrasts, covariate effects.

A grouped fit answers for one group (``--group G``), a covariate fit for the table at one
covariate value (``--at NAME=VALUE``, :mod:`bayes_diml.cli.context`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from bayes_diml.cli.console import (
    emit_json,
    fmt,
    note,
    percent,
    stderr,
    stdout,
    table_recorded,
    user_errors,
    visible_warnings,
)
from bayes_diml.cli.context import context_options, select_context
from bayes_diml.cli.options import check_out, json_option, load_fit, prob_option
from bayes_diml.inference import StackedPosterior
from bayes_diml.labels import labels_to_npz
from bayes_diml.learners import temperature_name
from bayes_diml.mechanisms import CovariateTabular, GroupedTabular
from bayes_diml.models import REPORT_TABLE_LIMIT
from bayes_diml.registry import short_n_actions

__all__ = ["payoffs"]

#: Appended to select_context's messages: what else a grouped or covariate fit's table can be.
_GROUP_HINT = " for one group's table or --contrast A:B for the difference between two groups"
_COVARIATE_HINT = " for the table there, or --covariate-effects for the slopes"


def _abstention_note(post: Any, err: Any) -> None:
    if isinstance(post, StackedPosterior) and post.abstains:
        note(err, f"[bold yellow]Note:[/] {escape(post.message)}")


def _confounding_note(post: Any, err: Any, what: str) -> None:
    if getattr(post, "confounded", False):
        t = temperature_name(post.learner)
        note(
            err,
            f"[bold yellow]Note:[/] {t} and the payoff scale are confounded in this fit: {what.format(t=t)}",
        )


@click.command("payoffs")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@prob_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output .npz file (with --pairs: .csv).",
)
@click.option(
    "--pairs",
    is_flag=True,
    help="Write one CSV row per agent, opponent profile and pair of own actions a < b instead: "
    "agent, opponents, a, b, mean, lower, upper, prob_greater, support, units.",
)
@context_options
@click.option(
    "--contrast",
    default=None,
    metavar="A:B",
    help="A grouped fit: write a CSV of centred payoff in group A minus group B, one row per agent and "
    "joint action: agent, joint, mean, lower, upper, prob_positive, support_a, support_b, units.",
)
@click.option(
    "--covariate-effects",
    is_flag=True,
    help="A covariate fit (fit --mechanism covariate): write a CSV of each centred payoff's change per "
    "unit of each covariate: agent, joint, covariate, mean, lower, upper, prob_positive, units.",
)
@json_option
@user_errors
def payoffs(
    fit_path: Path,
    prob: float,
    out: Path,
    pairs: bool,
    group: str | None,
    at: dict[str, float],
    contrast: str | None,
    covariate_effects: bool,
    as_json: bool,
) -> None:
    """Write the centred payoff table of a fit: mean, lower, upper, support of shape (K_1, ..., K_n, n).

    Cell [a_1, ..., a_n, i] holds u_i(a) - mean_k u_i(k, a_-i) (posterior mean and equal-tailed
    interval); support says whether the opponent profile a_-i was observed. When the data carry
    agent and action labels, the key 'labels' holds them as JSON. With --pairs, a CSV of
    u_i(a, a_-i) - u_i(b, a_-i) for every agent, opponent profile and a < b (named by the labels
    when there are any), with the posterior probability that it is positive (from joint draws).
    With --json, stdout holds one JSON object describing what was written (the table itself is
    in the file).

    A grouped fit (`fit --group-by`) has one table per group: --group G writes group G's table
    (or --pairs), --contrast A:B a CSV of the difference A - B per agent and joint action with
    the posterior probability that it is positive (with --json: its rows). A stacked fit of
    groups (`--learner-family auto`) answers both averaged over the learner families.

    A covariate fit (`fit --mechanism covariate`) has a table that moves with its covariates:
    --at NAME=VALUE writes the table (or --pairs) at that value (every covariate, e.g. --at
    price=1,week=2); --covariate-effects writes a CSV of each centred payoff's change per unit
    of each covariate with the posterior probability that it is positive.
    """
    if covariate_effects:
        if group is not None or pairs or contrast is not None or at:
            raise click.UsageError(
                "--covariate-effects writes its own CSV: give it without --group, --pairs, --contrast, --at."
            )
        _write_covariate_effects(fit_path, prob, out, as_json)
        return
    if contrast is not None:
        if group is not None or pairs or at:
            raise click.UsageError(
                "--contrast writes its own CSV: give it without --group, --pairs and --at."
            )
        _write_contrast(fit_path, contrast, prob, out, as_json)
        return
    if pairs:
        _write_pairs(fit_path, prob, out, as_json, group, at)
        return
    check_out(out, (".npz",))
    err = stderr()
    with visible_warnings(err):
        post = _select(load_fit(fit_path), group, at)
        k = tuple(post.data.n_actions)
        cells = math.prod(k) * len(k)
        if not table_recorded(post.best if isinstance(post, StackedPosterior) else post):
            raise click.ClickException(
                f"the game is too large for a payoff table: n_actions = {short_n_actions(k)} gives "
                f"prod K_i x n = {cells:,} cells (limit {REPORT_TABLE_LIMIT:,}). Use the Python API "
                "Posterior.payoff_differences(joint=...) for chosen joint actions."
            )
        table = post.payoff_table(prob)
    arrays = {
        "mean": np.asarray(table["mean"], dtype=np.float64),
        "lower": np.asarray(table["lower"], dtype=np.float64),
        "upper": np.asarray(table["upper"], dtype=np.float64),
        "support": np.asarray(table["support"], dtype=bool),
    }
    arrays |= labels_to_npz(post.data.labels)  # as in a data .npz
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    sup = arrays["support"]
    confounded = bool(getattr(post, "confounded", False))
    if as_json:
        emit_json(
            {
                "out": out,
                "prob": prob,
                "shape": sup.shape,
                "cells": sup.size,
                "supported_cells": int(sup.sum()),
                "confounded": confounded,
            }
        )
    else:
        click.echo(
            f"Wrote {out}: mean, lower, upper ({percent(prob)}) and support of shape {sup.shape}; "
            f"{int(sup.sum()):,} of {sup.size:,} cells have an observed opponent profile."
        )
    _abstention_note(post, err)
    _confounding_note(post, err, "the table is in the prior's units; only {t} x payoffs is identified.")


def _write_covariate_effects(fit_path: Path, prob: float, out: Path, as_json: bool) -> None:
    """Write ``post.covariate_effects(prob)`` as CSV; print one line (or, with --json, the rows)."""
    check_out(out, (".csv",))
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        if isinstance(post, StackedPosterior) and post.context == "covariate":
            raise click.UsageError(
                "--covariate-effects reports one family's slopes; a stacked fit (--learner-family auto) "
                "answers at a covariate value: --at NAME=VALUE."
            )
        if not isinstance(getattr(post, "mechanism", None), CovariateTabular):
            raise click.UsageError(
                "--covariate-effects applies to a covariate fit (fit --mechanism covariate --covariates "
                "NAMES); this fit has none."
            )
        frame = post.covariate_effects(prob)
    frame.to_csv(out, index=False)
    sure = ((frame["lower"] > 0) | (frame["upper"] < 0)).to_numpy()
    if as_json:
        emit_json(
            {
                "out": out,
                "prob": prob,
                "covariates": list(post.mechanism.covariate_names),
                "rows": frame.to_dict(orient="records"),
                "intervals_excluding_zero": int(sure.sum()),
                "units": str(frame["units"].iloc[0]) if len(frame) else None,
            }
        )
    else:
        click.echo(
            f"Wrote {out}: {len(frame):,} slopes (agent, joint action, covariate) of the centred payoffs "
            f"with {percent(prob)} intervals; {int(sure.sum()):,} intervals exclude 0."
        )
    _confounding_note(
        post,
        err,
        "the slopes are in the identified units {t} x payoff (column units), so their signs keep "
        "their meaning.",
    )


def _group_names(post: Any) -> tuple[str, ...]:
    """Return the groups of a grouped fit or of a stacked fit of groups (learner-family auto), else ()."""
    mech = post.best.mechanism if isinstance(post, StackedPosterior) else getattr(post, "mechanism", None)
    return tuple(mech.groups) if isinstance(mech, GroupedTabular) else ()


def _select(post: Any, group: str | None, at: dict[str, float] | None) -> Any:
    """Return the fit, one group's posterior (--group) or the table at a covariate value (--at)."""
    return select_context(post, group, at, group_hint=_GROUP_HINT, covariate_hint=_COVARIATE_HINT)


def _parse_contrast(text: str) -> tuple[str, str]:
    """Split ``A:B`` into its two group names (each non-empty)."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise click.BadParameter(
            f"expected two group names as A:B (e.g. treatment:control); got {text!r}.",
            param_hint="--contrast",
        )
    return parts[0].strip(), parts[1].strip()


def _write_contrast(fit_path: Path, text: str, prob: float, out: Path, as_json: bool) -> None:
    """Write ``post.contrast(A, B, prob)`` as CSV; print a short table (or, with --json, the rows)."""
    group_a, group_b = _parse_contrast(text)
    if group_a == group_b:
        raise click.BadParameter(
            f"the two groups are the same ({group_a!r}); name two groups.", param_hint="--contrast"
        )
    check_out(out, (".csv",))
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        groups = _group_names(post)
        if not groups:
            raise click.UsageError(
                "--contrast applies to a grouped fit (fit --group-by COLUMN); this fit is not grouped."
            )
        unknown = [g for g in (group_a, group_b) if g not in groups]
        if unknown:
            raise click.BadParameter(
                f"unknown group {unknown[0]!r}; the groups are {', '.join(groups)}.", param_hint="--contrast"
            )
        frame = post.contrast(group_a, group_b, prob)
    first = ["agent", "joint", "mean", "lower", "upper", "prob_positive"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame.to_csv(out, index=False)
    sure = ((frame["lower"] > 0) | (frame["upper"] < 0)).to_numpy()
    summary_line = (
        f"{group_a} - {group_b}: {int(sure.sum())} of {len(frame)} intervals ({percent(prob)}) exclude 0."
    )
    if as_json:
        rows = frame.to_dict(orient="records")
        emit_json(
            {
                "out": out,
                "prob": prob,
                "group_a": group_a,
                "group_b": group_b,
                "rows": rows,
                "intervals_excluding_zero": int(sure.sum()),
                "units": str(frame["units"].iloc[0]) if len(frame) else None,
            }
        )
        return
    console = stdout()
    console.print(f"Wrote {out}: centred payoff in group {group_a} minus group {group_b}.", soft_wrap=True)
    shown = Table(title=f"Contrast {group_a} - {group_b} ({percent(prob)} intervals)", title_justify="left")
    for col in ("agent", "joint", "mean", "lower", "upper", "P(>0)", "support"):
        shown.add_column(col, justify="left" if col in ("joint", "support") else "right")
    limit = 20
    for j, row in enumerate(frame.itertuples(index=False)):
        if j >= limit:
            break
        style = "bold" if sure[j] else None
        support = {(True, True): "both", (True, False): "A only", (False, True): "B only"}.get(
            (bool(row.support_a), bool(row.support_b)), "neither"
        )
        shown.add_row(
            str(row.agent),
            row.joint,
            fmt(row.mean),
            fmt(row.lower),
            fmt(row.upper),
            fmt(row.prob_positive),
            support,
            style=style,
        )
    console.print(shown)
    if len(frame) > limit:
        console.print(f"(first {limit} of {len(frame)} rows; all are in {out})")
    console.print(summary_line + " Rows in bold exclude 0.", soft_wrap=True)
    units = str(frame["units"].iloc[0]) if len(frame) else "payoff"
    if units != "payoff":
        note(err, f"[bold yellow]Note:[/] the differences are in the identified units {units}.")
    _abstention_note(post, err)


def _write_pairs(
    fit_path: Path,
    prob: float,
    out: Path,
    as_json: bool,
    group: str | None = None,
    at: dict[str, float] | None = None,
) -> None:
    check_out(out, (".csv",))
    err = stderr()
    with visible_warnings(err):
        post = _select(load_fit(fit_path), group, at)
        frame = post.payoff_pairs(prob)
    frame.to_csv(out, index=False)
    sure = (frame["lower"] > 0) | (frame["upper"] < 0)
    if as_json:
        emit_json(
            {
                "out": out,
                "prob": prob,
                "pairs": len(frame),
                "supported_pairs": int(frame["support"].sum()),
                "intervals_excluding_zero": int(sure.sum()),
                "confounded": bool(getattr(post, "confounded", False)),
            }
        )
    else:
        click.echo(
            f"Wrote {out}: {len(frame):,} pairs (agent, opponent profile, a < b) with {percent(prob)} "
            f"intervals; {int(frame['support'].sum()):,} have an observed opponent profile; "
            f"{int(sure.sum()):,} intervals exclude 0."
        )
    _abstention_note(post, err)
    _confounding_note(
        post,
        err,
        "the differences are in the identified units {t} x payoff (column units), so their signs and "
        "prob_greater keep their meaning.",
    )
