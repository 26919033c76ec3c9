"""``bayes-diml paper``: reproduce the paper's experiments (:mod:`bayes_diml.studies.experiments`)."""

from __future__ import annotations

from pathlib import Path

import click

from bayes_diml.cli.console import stdout, user_errors
from bayes_diml.cli.options import check_out
from bayes_diml.studies import experiments as ex

__all__ = ["paper"]


@click.command("paper")
@click.argument("experiments", nargs=-1, required=True)
@click.option("--seeds", default="0,1,2,3,4", show_default=True, help="Comma-separated seeds.")
@click.option("--methods", default=None, help="Comma-separated methods (default: the standard set).")
@click.option(
    "--out",
    "out_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results.csv"),
    show_default=True,
    help="Results CSV (rows appended; a rerun skips finished rows).",
)
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Figure-1-like PNG."
)
@click.option("--quick", is_flag=True, help="Tiny settings (for a smoke run).")
@click.option("--no-progress", is_flag=True, help="Hide progress.")
@user_errors
def paper(
    experiments: tuple[str, ...],
    seeds: str,
    methods: str | None,
    out_csv: Path,
    plot: Path | None,
    quick: bool,
    no_progress: bool,
) -> None:
    """Reproduce the paper's experiments.

    EXPERIMENTS: e1, e2, e3, e7 (all five reference settings), e7:40x10 (one setting), or all.
    """
    names = ["e1", "e2", "e3", "e7"] if list(experiments) == ["all"] else list(experiments)
    try:
        seed_list = [int(v) for v in seeds.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--seeds must be comma-separated integers; got {seeds!r}.") from None
    method_list = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
    check_out(out_csv, (".csv",))
    results = ex.run_paper(names, seed_list, method_list, out_csv, quick=quick, progress=not no_progress)
    console = stdout()
    console.print(ex.format_table(ex.summarize(results)), soft_wrap=True)
    if plot is not None:
        ex.plot_figure1(results, plot)
        console.print(f"Wrote {plot}.")
