"""``bayes-diml summary | payoffs | identify``: what a saved fit says about the payoffs and the learner."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from bayes_diml.cli.console import (
    diagnostics_line,
    emit_json,
    fmt,
    frame_rows,
    game_text,
    note,
    percent,
    post_header,
    stats_table,
    stderr,
    stdout,
    table_recorded,
    user_errors,
    visible_warnings,
)
from bayes_diml.cli.options import check_out, json_option, load_fit, prob_option
from bayes_diml.inference import StackedPosterior
from bayes_diml.labels import labels_to_npz
from bayes_diml.learners import temperature_name
from bayes_diml.mechanisms import CovariateTabular
from bayes_diml.models import REPORT_TABLE_LIMIT
from bayes_diml.registry import short_n_actions

__all__ = ["summary", "payoffs", "identify"]


def _cell_rows(frame: Any) -> np.ndarray:
    idx = [str(i) for i in frame.index]
    return np.array([i.startswith(("centred_payoffs[", "scaled_payoffs[")) for i in idx], dtype=bool)


@click.command("summary")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@prob_option
@json_option
@click.option("--all", "show_all", is_flag=True, help="Show every payoff cell.")
@click.option(
    "--max-cells", type=click.IntRange(min=0), default=20, show_default=True, help="Payoff cells shown."
)
@user_errors
def summary(fit_path: Path, prob: float, as_json: bool, show_all: bool, max_cells: int) -> None:
    """Summarise a fit: learner parameters and gauge-free payoffs with credible intervals.

    With --json, stdout holds exactly one JSON object mapping each scalar parameter (alpha, beta,
    eps, or alpha[0], alpha[1], ... per agent; payoff_noise if payoffs were observed) to its mean,
    sd, lower, upper, r_hat and ess_bulk (null where undefined).
    """
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        if isinstance(post, StackedPosterior):
            _stacked_summary(post, prob, as_json)
            return
        if as_json:
            emit_json(post.scalar_summary(prob))
            return
        frame = post.summary(prob)
    console = stdout()
    console.print(escape(post_header(post)), soft_wrap=True)
    if post.confounded:
        t = temperature_name(post.learner)
        console.print(
            f"[yellow]{t} and the payoff scale are confounded in this fit:[/] only {t} x payoff "
            "differences ('scaled_payoffs') is identified.",
            soft_wrap=True,
        )
    line = diagnostics_line(post)
    if line:
        console.print(line)
    if frame.empty:
        console.print("No inferred scalar parameters and no recorded payoff table.")
        return
    cells = _cell_rows(frame)
    scalars = frame[~cells]
    if len(scalars):
        console.print(stats_table(frame_rows(scalars), f"Parameters ({percent(prob)} intervals)", label=True))
    if np.isfinite(frame["contraction"].to_numpy(dtype=float)).any():
        console.print(
            "contraction = 1 - posterior variance / prior variance; labels: well identified (>= 0.5), "
            "weakly identified, prior-driven (< 0.1): the prior, not the data, sets a prior-driven "
            "quantity. `bayes-diml identify FIT` lists flat directions and prior sensitivity.",
            soft_wrap=True,
        )
    if not cells.any():
        if not table_recorded(post):
            console.print(
                f"The payoff table of this game ({game_text(post.data.n_actions)}) is too large to record "
                f"(more than {REPORT_TABLE_LIMIT:,} cells); use the Python API "
                "Posterior.payoff_differences(joint=...) for chosen profiles.",
                soft_wrap=True,
            )
        return
    pay = frame[cells]
    var = np.array([str(i).split("[", 1)[0] for i in pay.index])
    counts = Table(title="Payoff cells by label", title_justify="left")
    for col, just in (("variable", "left"), ("label", "left"), ("cells", "right")):
        counts.add_column(col, justify=just)
    for (v, label), n in pay.groupby([var, pay["label"].to_numpy()]).size().items():
        counts.add_row(v, str(label), f"{n:,}")
    console.print(counts)
    main_var = "scaled_payoffs" if (post.confounded and "scaled_payoffs" in set(var)) else "centred_payoffs"
    for v in sorted(set(var)) if show_all else [main_var]:
        sel = pay[var == v]
        if show_all:
            shown, note = sel, f"all {len(sel):,} cells"
        else:
            supported = sel[sel["support"].to_numpy(dtype=bool)]
            shown = supported.iloc[:max_cells]
            note = (
                f"first {len(shown):,} of {len(supported):,} cells with an observed opponent profile "
                f"(--all shows all {len(pay):,} payoff rows)"
            )
        rows = frame_rows(shown)
        what = (
            f"{temperature_name(post.learner)} x (u_i(a) - mean_k u_i(k, a_-i))"
            if v == "scaled_payoffs"
            else "u_i(a) - mean_k u_i(k, a_-i)"
        )
        console.print(f"[bold]{v}[/] = {what} ({percent(prob)} intervals): {note}", soft_wrap=True)
        console.print(stats_table(rows, None, cells=True, label=True))


def _stacked_summary(post: StackedPosterior, prob: float, as_json: bool) -> None:
    """Print a stacked fit's candidates table, verdict and payoff intervals (or them as JSON)."""
    if as_json:
        rows = frame_rows(post.summary(prob).astype(object))
        emit_json({"verdict": post.verdict, "message": post.message, "candidates": rows})
        return
    console = stdout()
    console.print(escape(post.report(prob)), soft_wrap=True)
    if post.abstains:
        console.print(f"[bold yellow]{escape(post.message)}[/]", soft_wrap=True)


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
@click.option(
    "--group",
    default=None,
    metavar="G",
    help="A grouped fit (fit --group-by): write the table (or --pairs) of group G.",
)
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
    the posterior probability that it is positive (with --json: its rows).

    A covariate fit (`fit --mechanism covariate`) has a table that moves with its covariates:
    --covariate-effects writes a CSV of each centred payoff's change per unit of each covariate
    with the posterior probability that it is positive (the table at a covariate value: the
    Python API's Posterior.payoff_table(covariates=...)).
    """
    if covariate_effects:
        if group is not None or pairs or contrast is not None:
            raise click.UsageError(
                "--covariate-effects writes its own CSV: give it without --group, --pairs, --contrast."
            )
        _write_covariate_effects(fit_path, prob, out, as_json)
        return
    if contrast is not None:
        if group is not None or pairs:
            raise click.UsageError("--contrast writes its own CSV: give it without --group and --pairs.")
        _write_contrast(fit_path, contrast, prob, out, as_json)
        return
    if pairs:
        _write_pairs(fit_path, prob, out, as_json, group)
        return
    check_out(out, (".npz",))
    err = stderr()
    with visible_warnings(err):
        post = _select_group(load_fit(fit_path), group)
        _check_one_table(post)
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


def _check_one_table(post: Any) -> None:
    """Refuse a covariate fit's table (it moves with the covariates), naming --covariate-effects."""
    mech = getattr(post, "mechanism", None)
    if isinstance(mech, CovariateTabular):
        raise click.UsageError(
            f"this fit's payoff table moves with the covariates {', '.join(mech.covariate_names)}: pass "
            "--covariate-effects (the table at a covariate value: Posterior.payoff_table(covariates=...))."
        )


def _write_covariate_effects(fit_path: Path, prob: float, out: Path, as_json: bool) -> None:
    """Write ``post.covariate_effects(prob)`` as CSV; print one line (or, with --json, the rows)."""
    check_out(out, (".csv",))
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
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
    return tuple(post.mechanism.groups) if getattr(post, "grouped", False) else ()


def _select_group(post: Any, group: str | None) -> Any:
    """Return the fit itself, or with --group the posterior of that group of a grouped fit."""
    groups = _group_names(post)
    if group is None:
        if groups:
            raise click.UsageError(
                f"this fit has one payoff table per group ({', '.join(groups)}): pass --group G for one "
                "group's table or --contrast A:B for the difference between two groups."
            )
        return post
    if not groups:
        raise click.UsageError(
            "--group applies to a grouped fit (fit --group-by COLUMN); this fit is not grouped."
        )
    if group not in groups:
        raise click.BadParameter(
            f"unknown group {group!r}; the groups are {', '.join(groups)}.", param_hint="--group"
        )
    return post.for_group(group)


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


def _write_pairs(fit_path: Path, prob: float, out: Path, as_json: bool, group: str | None = None) -> None:
    check_out(out, (".csv",))
    err = stderr()
    with visible_warnings(err):
        post = _select_group(load_fit(fit_path), group)
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


@click.command("identify")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@json_option
@click.option(
    "--prior-draws",
    type=click.IntRange(min=100),
    default=4000,
    show_default=True,
    help="Prior draws for the contraction estimate.",
)
@click.option(
    "--max-cells",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Payoff cells listed (the counts by support and label cover all).",
)
@user_errors
def identify(fit_path: Path, as_json: bool, prior_draws: int, max_cells: int) -> None:
    """What the data determine: support, prior-posterior contraction and labels, flat directions.

    Payoff cells are 'played', 'counterfactual only' or 'not observed'; every quantity gets a
    contraction 1 - posterior var / prior var and a label (well identified / weakly identified /
    prior-driven). The least-determined likelihood directions (Hessian eigenvectors) are named by
    parameter with what would identify them.
    """  # noqa: D401 (the --help text, kept as it is)
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        stacked = post if isinstance(post, StackedPosterior) else None
        if stacked is not None:  # identification of the best learner family; the verdict comes first
            post = stacked.best
        if post.n_draws < 4:
            raise click.ClickException(
                "identification needs posterior draws; refit with --method nuts, svi or laplace."
            )
        table = post.identification(num_prior_draws=prior_draws)
        try:
            flat = post.flat_directions(k=3)
        except ValueError:
            flat = []
    if as_json:
        extra = (
            {}
            if stacked is None
            else {
                "verdict": stacked.verdict,
                "message": stacked.message,
                "family": stacked.info["best_learner"],
            }
        )
        emit_json({"quantities": frame_rows(table), "flat_directions": flat, **extra})
        return
    console = stdout()
    if stacked is not None:
        console.print(f"verdict: {stacked.verdict}: {escape(stacked.message)}", soft_wrap=True)
        console.print(f"Identification of the best learner family, {stacked.info['best_learner']!r}:")
    console.print(escape(post_header(post)), soft_wrap=True)
    cells = np.array([str(i).startswith("centred_payoffs[") for i in table.index])
    out = Table(title="Identification", title_justify="left")
    for col in ("quantity", "support", "prior sd", "posterior sd", "contraction", "label"):
        out.add_column(col, justify="left" if col in ("quantity", "support", "label") else "right")
    shown = pd.concat([table[~cells], table[cells].iloc[:max_cells]])
    for name, row in shown.iterrows():
        out.add_row(
            str(name),
            row["support"],
            fmt(row["prior_sd"]),
            fmt(row["posterior_sd"]),
            fmt(row["contraction"]),
            row["label"],
        )
    console.print(out)
    if cells.any():
        counts = Table(title="Payoff cells by support and label", title_justify="left")
        for col in ("support", "label", "cells"):
            counts.add_column(col, justify="right" if col == "cells" else "left")
        for (sup, lab), n in table[cells].groupby(["support", "label"]).size().items():
            counts.add_row(sup, lab, f"{n:,}")
        console.print(counts)
    notes = sorted({n for n in table["note"] if n})
    for text in notes:
        console.print(f"[yellow]Note:[/] {escape(text)}", soft_wrap=True)
    for j, d in enumerate(flat):
        comps = ", ".join(f"{name} {w:+.2f}" for name, w in d["components"])
        console.print(
            f"Flat direction {j + 1}: curvature {d['eigenvalue']:.3g} ({d['relative']:.2e} of the largest): "
            f"{escape(comps)}; {escape(d['hint'])}",
            soft_wrap=True,
        )
