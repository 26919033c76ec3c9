"""``bayes-diml demo``: the end-to-end demo of :mod:`bayes_diml.studies.demo`."""

from __future__ import annotations

from pathlib import Path

import click

from bayes_diml.cli.console import emit_json, quiet, stderr, stdout, user_errors, visible_warnings
from bayes_diml.cli.options import json_option
from bayes_diml.studies.demo import run_demo

__all__ = ["demo"]


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bayes-diml-demo"),
    show_default=True,
    help="Folder for the plot, the fit and the data.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Tiny data and sampler settings (a smoke test, not a result).")
@click.option("--no-progress", is_flag=True, help="Hide the NUTS progress bar.")
@json_option
@user_errors
def demo(out_dir: Path, seed: int, quick: bool, no_progress: bool, as_json: bool) -> None:
    """Simulate E2 (4 agents x 5 routes), fit the congestion family by NUTS, check it against the truth.

    With --json the narration goes to stderr and stdout holds one JSON object: coverage,
    num_cells, diagnostics, fit_path, data_path, plot_path.
    """
    res = run_demo(
        out_dir,
        seed=seed,
        quick=quick,
        progress=not (no_progress or quiet()),
        console=stderr() if as_json else stdout(),
        fit_warnings=visible_warnings,
    )
    if as_json:
        emit_json(
            {
                "coverage": res.coverage,
                "num_cells": res.num_cells,
                "diagnostics": res.diagnostics,
                "fit_path": res.fit_path,
                "data_path": res.data_path,
                "plot_path": res.plot_path,
            }
        )
