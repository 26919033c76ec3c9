"""``bayes-diml compare | ppc``: predictive checks of fits (ELPD comparison, behaviour-space check)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from bayes_diml.cli.console import emit_json, fmt, percent, stderr, stdout, user_errors, visible_warnings
from bayes_diml.cli.options import check_out, json_option, load_fit, prob_option
from bayes_diml.inference import compare

__all__ = ["compare_command", "ppc_command"]


@click.command("compare")
@click.argument("fit_paths", metavar="FIT1 FIT2 ...", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--ic",
    type=click.Choice(["loo", "lfo"]),
    default="loo",
    show_default=True,
    help="loo: PSIS-LOO with whole episodes left out (a new episode); lfo: PSIS leave-future-out "
    "of one-step-ahead predictions (the future of these episodes; refits the model).",
)
@click.option(
    "--min-steps", type=click.IntRange(min=1), default=None, help="LFO: steps in the first training set."
)
@json_option
@user_errors
def compare_command(fit_paths: tuple[Path, ...], ic: str, min_steps: int | None, as_json: bool) -> None:
    """Compare fits of the same data by expected log predictive density (ArviZ compare).

    Each FIT is named by its file stem. Columns: rank, elpd, elpd_diff (to the best) with its
    standard error dse, weight (stacking), p (effective parameters), max Pareto k. With --json,
    stdout holds a JSON list of these rows, best first, each with its model name.
    """
    if len(fit_paths) < 2:
        raise click.UsageError("compare needs at least two fits: bayes-diml compare FIT1 FIT2 ...")
    names = [p.stem for p in fit_paths]
    if len(set(names)) != len(names):
        names = [str(p) for p in fit_paths]
    err = stderr()
    with visible_warnings(err):
        posts = {name: load_fit(p) for name, p in zip(names, fit_paths, strict=True)}
        options = {} if min_steps is None else {"min_steps": min_steps}
        table = compare(posts, ic=ic, **options)
    wanted = ("rank", "elpd", "se", "elpd_diff", "dse", "weight", "p", "max_pareto_k")
    cols = [c for c in wanted if c in table]
    if as_json:
        emit_json(
            [{"model": str(name), **{c: float(row[c]) for c in cols}} for name, row in table.iterrows()]
        )
        return
    what = "PSIS-LOO, episodes left out" if ic == "loo" else "PSIS-LFO, one step ahead"
    out = Table(title=f"Model comparison ({what}; best first)", title_justify="left")
    out.add_column("model", justify="left")
    for c in cols:
        out.add_column(c, justify="right")
    for name, row in table.iterrows():
        out.add_row(escape(str(name)), *(fmt(row[c], 4) for c in cols))
    console = stdout()
    console.print(out)
    console.print(
        "elpd_diff < 0 by several dse: the model predicts clearly worse than the best. "
        "Pareto k > 0.7: the estimate for that fit is unreliable.",
        soft_wrap=True,
    )


@click.command("ppc")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("ppc.png"),
    show_default=True,
    help="Figure file (.png, .pdf or .svg).",
)
@click.option("--draws", type=click.IntRange(min=10), default=200, show_default=True, help="Posterior draws.")
@prob_option
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@user_errors
def ppc_command(fit_path: Path, out: Path, draws: int, prob: float, seed: int, as_json: bool) -> None:
    """Posterior-predictive check in behaviour space: action frequencies over time and switching rates.

    Simulates as many episodes as the data per posterior draw and writes a figure of the data
    against the simulated bands; prints per agent the switching rates and p-values (--json: a
    JSON list of per-agent rows).
    """
    out = check_out(out, (".png", ".pdf", ".svg"))
    err = stderr()
    with visible_warnings(err):
        post = load_fit(fit_path)
        check = post.ppc_behaviour(n_draws=draws, prob=prob, seed=seed)
        check.save(out)
    frame = check.summary()
    if as_json:
        emit_json([{"agent": int(a), **{c: float(v) for c, v in row.items()}} for a, row in frame.iterrows()])
        return
    table = Table(title=f"Behaviour check ({percent(prob)} bands, {draws} draws)", title_justify="left")
    for c in ("agent", *frame.columns):
        table.add_column(c, justify="right")
    for a, row in frame.iterrows():
        table.add_row(str(a), *(fmt(v, 3) for v in row))
    console = stdout()
    console.print(table)
    verdict = "[yellow]misfit flagged[/]" if check.misfit else "no misfit flagged"
    console.print(f"{verdict}; figure written to {out}.", soft_wrap=True)
