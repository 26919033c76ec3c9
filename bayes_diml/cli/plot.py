"""``bayes-diml plot``: diagnostic figures of a saved fit with arviz-plots."""

from __future__ import annotations

from pathlib import Path

import click
import matplotlib.pyplot as plt
from rich.markup import escape

from bayes_diml.cli.console import emit_json, note, stderr, user_errors, visible_warnings
from bayes_diml.cli.options import check_out, json_option, load_fit, prob_option
from bayes_diml.inference import StackedPosterior
from bayes_diml.inference.plots import GROUP_KINDS, KINDS, MAX_CELLS

__all__ = ["plot_command"]

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


@click.command("plot")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS + GROUP_KINDS), required=True, help="Which diagnostic plot.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Figure file (.png, .pdf or .svg).",
)
@click.option(
    "--max-cells",
    type=click.IntRange(min=0),
    default=MAX_CELLS,
    show_default=True,
    help="Payoff cells shown (those with an observed opponent profile).",
)
@click.option(
    "--draws",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Posterior-predictive data sets for --kind ppc (when the fit holds none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --kind ppc simulation.")
@click.option(
    "--contrast",
    default=None,
    metavar="B:A",
    help="With --kind contrast (a grouped fit): plot centred payoff in group B minus group A.",
)
@prob_option
@json_option
@user_errors
def plot_command(
    fit_path: Path,
    kind: str,
    out: Path,
    max_cells: int,
    draws: int,
    seed: int,
    contrast: str | None,
    prob: float,
    as_json: bool,
) -> None:
    """Write a diagnostic figure of a fit (arviz-plots), in the data's agent and action labels.

    \b
    trace, rank, ess  learner parameters and centred payoffs u_i(a) - mean_k u_i(k, a_-i) of the
                      cells whose opponent profile was observed (needs draws: nuts, svi, laplace)
    forest            those centred payoffs (temperature x payoff where the scale is confounded)
    pareto-k          Pareto k of leave-one-episode-out PSIS (needs draws)
    ppc               rootogram per agent: action counts in the data against posterior-predictive
                      data sets
    contrast          a grouped fit (fit --group-by): centred payoff in group B minus group A
                      (--contrast B:A), one row per agent and joint action, from joint draws;
                      mean, 50% and --prob intervals, a line at 0

    With --json, stdout holds one JSON object describing what was written.
    """  # noqa: D301 (click's \b keeps the table's line breaks)
    groups = _contrast_groups(kind, contrast)
    out = check_out(out, FIGURE_SUFFIXES)
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        learner = None
        if isinstance(post, StackedPosterior):
            learner = str(post.info["best_learner"])
            what = f"a stacked fit: plotting its best learner family, {escape(learner)!r}."
            note(err, f"[bold yellow]Note:[/] {what}")
            post = post.best
        if groups is None:
            pc = post.plot(kind, max_cells=max_cells, ppc_draws=draws, seed=seed)
        else:
            pc = post.plot(kind, groups=groups, prob=prob)
        pc.savefig(out, dpi=120)
        plt.close(pc.viz["figure"].item())  # arviz-plots made it with pyplot: free it
    if as_json:
        doc = {"out": out, "fit": fit_path, "kind": kind, "stacked_best_learner": learner}
        if groups is not None:
            doc |= {"group_b": groups[0], "group_a": groups[1], "prob": prob}
        emit_json(doc)
    else:
        what = kind if groups is None else f"contrast ({groups[0]} - {groups[1]})"
        click.echo(f"Wrote {out}: {what} plot of {fit_path}.")


def _contrast_groups(kind: str, text: str | None) -> tuple[str, str] | None:
    """``(B, A)`` from ``--contrast B:A`` for ``--kind contrast``; None for the other kinds."""
    if kind not in GROUP_KINDS:
        if text is not None:
            raise click.UsageError(f"--contrast applies to --kind contrast, not --kind {kind}.")
        return None
    if text is None:
        raise click.UsageError("--kind contrast needs --contrast B:A (two group labels: B minus A).")
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise click.BadParameter(
            f"expected two group names as B:A (e.g. treatment:control); got {text!r}.",
            param_hint="--contrast",
        )
    b, a = parts[0].strip(), parts[1].strip()
    if a == b:
        raise click.BadParameter(
            f"the two groups are the same ({a!r}); name two groups.", param_hint="--contrast"
        )
    return b, a
