"""``bayes-diml summary | identify``: what a saved fit says about the payoffs and the learner.

``bayes-diml payoffs`` lives in :mod:`bayes_diml.cli.payoffs`.
"""

from __future__ import annotations

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
    percent,
    post_header,
    stats_table,
    stderr,
    stdout,
    table_recorded,
    user_errors,
    visible_warnings,
)
from bayes_diml.cli.context import context_options, select_context
from bayes_diml.cli.options import json_option, load_fit, prob_option
from bayes_diml.inference import StackedPosterior
from bayes_diml.learners import temperature_name
from bayes_diml.models import REPORT_TABLE_LIMIT

__all__ = ["summary", "identify"]


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


@click.command("identify")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@context_options
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
def identify(
    fit_path: Path, group: str | None, at: dict[str, float], as_json: bool, prior_draws: int, max_cells: int
) -> None:
    """What the data determine: support, prior-posterior contraction and labels, flat directions.

    Payoff cells are 'played', 'counterfactual only' or 'not observed'; every quantity gets a
    contraction 1 - posterior var / prior var and a label (well identified / weakly identified /
    prior-driven). The least-determined likelihood directions (Hessian eigenvectors) are named by
    parameter with what would identify them.

    A grouped fit needs --group G, a covariate fit --at NAME=VALUE: the table of that group or at
    that covariate value, compared with its own prior (shared table and group deviation; table
    and x-weighted slopes). Flat directions need one table for all episodes: none at --at.
    """  # noqa: D401 (the --help text, kept as it is)
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        stacked = post if isinstance(post, StackedPosterior) else None
        if stacked is not None:  # identification of the best learner family; the verdict comes first
            post = stacked.best
        post = select_context(post, group, at)
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
        context = {"group": group} if group is not None else ({"covariates": at} if at else {})
        emit_json({"quantities": frame_rows(table), "flat_directions": flat, **extra, **context})
        return
    console = stdout()
    if stacked is not None:
        console.print(f"verdict: {stacked.verdict}: {escape(stacked.message)}", soft_wrap=True)
        console.print(f"Identification of the best learner family, {stacked.info['best_learner']!r}:")
    console.print(escape(post_header(post)), soft_wrap=True)
    if group is not None or at:
        what = (
            f"group {group}"
            if group is not None
            else "covariates " + ", ".join(f"{k}={v:g}" for k, v in at.items())
        )
        console.print(
            f"The payoff table of {escape(what)}, compared with its own prior (sd "
            f"{post.priors.mechanism_scale:.3g} per free coordinate).",
            soft_wrap=True,
        )
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
