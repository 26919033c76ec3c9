"""``bayes-diml sbc``: simulation-based calibration (:func:`bayes_diml.studies.calibration.sbc`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bayes_diml import mechanisms
from bayes_diml.cli.console import stderr, user_errors, visible_warnings
from bayes_diml.studies.calibration import sbc

__all__ = ["sbc_command"]


def _game(value: str) -> tuple[int, ...]:
    try:
        k = tuple(int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"use K_1xK_2[x...], e.g. 2x2 or 3x3; got {value!r}.") from None
    if len(k) < 2 or min(k) < 2:
        raise click.BadParameter(f"need at least two agents with at least two actions each; got {value!r}.")
    return k


@click.command("sbc")
@click.option("--game", default="2x2", show_default=True, help="Tabular game K_1xK_2[x...].")
@click.option(
    "--method",
    type=click.Choice(["nuts", "svi", "svi_lowrank", "laplace"]),
    default="nuts",
    show_default=True,
)
@click.option("--n-datasets", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--episodes", "M", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--steps", "T", type=click.IntRange(min=2), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--payoffs", "observe_payoffs", is_flag=True, help="Observe noisy payoffs (identifies beta).")
@click.option(
    "--fix",
    multiple=True,
    metavar="NAME=VALUE",
    help="Hold a learner parameter fixed (alpha, beta or eps), e.g. --fix beta=3; others are inferred.",
)
@click.option(
    "--simulator",
    type=click.Choice(["logit_q", "bandit_q", "hedge"]),
    default="logit_q",
    show_default=True,
    help="Data-generating learner (others than logit_q: a misspecification study).",
)
@click.option("--warmup", type=click.IntRange(min=1), default=300, show_default=True, help="NUTS warm-up.")
@click.option(
    "--samples", type=click.IntRange(min=1), default=300, show_default=True, help="NUTS draws/chain."
)
@click.option("--chains", type=click.IntRange(min=1), default=2, show_default=True, help="NUTS chains.")
@click.option("--max-tree-depth", type=click.IntRange(min=1), default=8, show_default=True, help="NUTS.")
@click.option("--svi-steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--draws", type=click.IntRange(min=1), default=1000, show_default=True, help="SVI/Laplace draws."
)
@click.option("--rank", type=click.IntRange(min=1), default=None, help="Rank of the low-rank guide.")
@click.option(
    "--n-ranks", type=click.IntRange(min=1), default=99, show_default=True, help="Thinned draws per rank."
)
@click.option("--chunk-size", type=click.IntRange(min=1), default=25, show_default=True)
@click.option("--engine", type=click.Choice(["auto", "vmap", "fit"]), default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Dask workers.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Result JSON.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Figure (.png/.pdf)."
)
@click.option("--no-progress", is_flag=True)
@user_errors
def sbc_command(
    game: str,
    method: str,
    n_datasets: int,
    M: int,
    T: int,
    seed: int,
    observe_payoffs: bool,
    fix: tuple[str, ...],
    simulator: str,
    warmup: int,
    samples: int,
    chains: int,
    max_tree_depth: int,
    svi_steps: int,
    draws: int,
    rank: int | None,
    n_ranks: int,
    chunk_size: int,
    engine: str,
    workers: int,
    out: Path,
    plot: Path | None,
    no_progress: bool,
) -> None:
    """Simulation-based calibration: prior draws -> simulated data -> fits -> ranks and coverage.

    Writes the ranks, the coverage of 50/80/90/95% intervals (with binomial bands) and
    rank-uniformity p-values to --out (JSON; partial results go to OUT.partial.jsonl as they
    finish, and a rerun resumes from them) and ECDF-difference and coverage panels to --plot.
    """
    if out.suffix != ".json":
        raise click.ClickException(f"--out must end in .json; got {out}.")
    learner: dict[str, Any] = {}
    for item in fix:
        name, _, value = item.partition("=")
        if name not in ("alpha", "beta", "eps") or not value:
            raise click.ClickException(f"--fix takes alpha=..., beta=... or eps=...; got {item!r}.")
        learner[name] = float(value)
    if method == "nuts":
        options = {
            "num_warmup": warmup,
            "num_samples": samples,
            "num_chains": chains,
            "max_tree_depth": max_tree_depth,
        }
    elif method == "laplace":
        options = {"num_draws": draws}
    else:
        options = {"num_steps": svi_steps, "num_draws": draws}
        if rank is not None:
            options["rank"] = rank
    with visible_warnings(stderr()):
        res = sbc(
            mechanisms.Tabular(_game(game)),
            None,
            learner or None,
            n_datasets,
            M,
            T,
            method,
            seed,
            observe_payoffs=observe_payoffs,
            simulator=simulator,
            n_ranks=n_ranks,
            chunk_size=chunk_size,
            engine=engine,
            workers=workers,
            progress=not no_progress,
            out=out,
            **options,
        )
        if plot is not None:
            res.plot(plot)
    cov, uni = res.coverage(), res.uniformity()
    rows = {
        q: {**{p: round(c["rate"], 3) for p, c in cov[q].items()}, "p_unif": round(min(uni[q].values()), 4)}
        for q in res.quantities
    }
    click.echo(
        json.dumps({"n_datasets": res.n_datasets, "flagged": res.flagged(), "quantities": rows}, indent=1)
    )
    click.echo(f"Wrote {out}" + (f" and {plot}" if plot else "") + ".", err=True)
