"""``bayes-diml paper``: reproduce the paper's experiments (:mod:`bayes_diml.studies.experiments`)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from bayes_diml.cli.console import debug, emit_json, frame_rows, quiet, stdout, user_errors
from bayes_diml.cli.options import check_out, json_option
from bayes_diml.optional import require
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
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Fit the rows as Dask tasks on a local cluster of this many processes (bayes-diml[sweep]).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Fit the rows as Dask tasks on a running Dask scheduler, e.g. tcp://host:8786.",
)
@json_option
@user_errors
def paper(
    experiments: tuple[str, ...],
    seeds: str,
    methods: str | None,
    out_csv: Path,
    plot: Path | None,
    quick: bool,
    no_progress: bool,
    workers: int | None,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Reproduce the paper's experiments.

    EXPERIMENTS: e1, e2, e3, e7 (all five reference settings), e7:40x10 (one setting), or all.
    With --json, progress goes to stderr and stdout holds a JSON list of the summary rows (one
    per experiment, setting and method). --workers N or --scheduler ADDRESS run each row as a
    Dask task; the CSV is still written row by row, so a rerun resumes either way.
    """
    if workers is not None and scheduler is not None:
        raise click.UsageError(
            "--workers and --scheduler are mutually exclusive: --workers N starts a local cluster, "
            "--scheduler ADDRESS uses a running one."
        )
    names = ["e1", "e2", "e3", "e7"] if list(experiments) == ["all"] else list(experiments)
    try:
        seed_list = [int(v) for v in seeds.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--seeds must be comma-separated integers; got {seeds!r}.") from None
    method_list = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
    check_out(out_csv, (".csv",))
    progress = not (no_progress or quiet())
    with contextlib.ExitStack() as stack:
        client = None
        if scheduler is not None:
            distributed = require("dask.distributed", "sweep", "bayes-diml paper --scheduler")
            client = stack.enter_context(distributed.Client(scheduler))
        if as_json:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        try:
            results = ex.run_paper(
                names,
                seed_list,
                method_list,
                out_csv,
                quick=quick,
                progress=progress,
                workers=workers,
                client=client,
            )
        except ex.RowFailed as exc:  # a fit that crashed: one line (--debug shows the traceback)
            if debug():
                raise
            raise click.ClickException(" ".join(str(exc).split())) from None
        if plot is not None:
            ex.plot_figure1(results, plot)
    if as_json:
        emit_json(list(frame_rows(ex.summarize(results).reset_index(drop=True)).values()))
        return
    console = stdout()
    console.print(ex.format_table(ex.summarize(results)), soft_wrap=True)
    if plot is not None:
        console.print(f"Wrote {plot}.")
