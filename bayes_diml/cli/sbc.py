"""``bayes-diml sbc``: simulation-based calibration (:func:`bayes_diml.studies.calibration.sbc`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from bayes_diml import mechanisms
from bayes_diml.cli.console import emit_json, fmt, note, quiet, stderr, stdout, user_errors, visible_warnings
from bayes_diml.cli.options import AliasedChoice, deprecated_alias, json_option
from bayes_diml.studies.calibration import sbc

#: ``--simulator`` (CLI, learner-family spelling) -> the API's simulator name.
_SIMULATORS = {"logitq": "logit_q", "bandit": "bandit_q", "hedge": "hedge"}
#: Defaults of the draws and steps flags by method.
_DEFAULT_SAMPLES = {"nuts": 300, "svi": 1000, "laplace": 1000}

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
    type=AliasedChoice(
        ["nuts", "svi", "laplace"],
        aliases={"svi_lowrank": "svi_lowrank"},
        spellings={"svi_lowrank": "--method svi --guide lowrank"},
    ),
    default="nuts",
    show_default=True,
    help="Inference method of every fit (as `fit --method`).",
)
@click.option(
    "--guide",
    type=click.Choice(["normal", "lowrank"]),
    default="normal",
    show_default=True,
    help="SVI guide: normal (AutoNormal) or lowrank (AutoLowRankMultivariateNormal, see --rank).",
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
    type=AliasedChoice(list(_SIMULATORS), aliases={"logit_q": "logitq", "bandit_q": "bandit"}),
    default="logitq",
    show_default=True,
    help="Data-generating learner family (as `simulate --learner-family`); the fits assume logitq, so "
    "others make a misspecification study.",
)
@click.option(
    "--num-warmup", type=click.IntRange(min=1), default=300, show_default=True, help="NUTS warm-up."
)
@click.option(
    "--num-samples",
    type=click.IntRange(min=1),
    default=None,
    help="NUTS draws per chain (default 300); SVI/Laplace draws (default 1000).",
)
@click.option("--num-chains", type=click.IntRange(min=1), default=2, show_default=True, help="NUTS chains.")
@click.option("--max-tree-depth", type=click.IntRange(min=1), default=8, show_default=True, help="NUTS.")
@click.option("--num-steps", type=click.IntRange(min=1), default=2000, show_default=True, help="SVI steps.")
@deprecated_alias("--warmup", "--num-warmup", "num_warmup", type=click.IntRange(min=1))
@deprecated_alias("--samples", "--num-samples", "num_samples", type=click.IntRange(min=1))
@deprecated_alias("--draws", "--num-samples", "num_samples", type=click.IntRange(min=1))
@deprecated_alias("--chains", "--num-chains", "num_chains", type=click.IntRange(min=1))
@deprecated_alias("--svi-steps", "--num-steps", "num_steps", type=click.IntRange(min=1))
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
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@json_option
@user_errors
def sbc_command(
    game: str,
    method: str,
    guide: str,
    n_datasets: int,
    M: int,
    T: int,
    seed: int,
    observe_payoffs: bool,
    fix: tuple[str, ...],
    simulator: str,
    num_warmup: int,
    num_samples: int | None,
    num_chains: int,
    max_tree_depth: int,
    num_steps: int,
    rank: int | None,
    n_ranks: int,
    chunk_size: int,
    engine: str,
    workers: int,
    out: Path,
    plot: Path | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Simulation-based calibration: prior draws -> simulated data -> fits -> ranks and coverage.

    Writes the ranks, the coverage of 50/80/90/95% intervals (with binomial bands) and
    rank-uniformity p-values to --out (JSON; partial results go to OUT.partial.jsonl as they
    finish, and a rerun resumes from them) and ECDF-difference and coverage panels to --plot.
    Prints the coverage rates and the smallest rank-uniformity p-value per quantity; with --json,
    stdout holds them as one JSON object: n_datasets, flagged, quantities.
    """
    if out.suffix != ".json":
        raise click.ClickException(f"--out must end in .json; got {out}.")
    learner: dict[str, Any] = {}
    for item in fix:
        name, _, value = item.partition("=")
        if name not in ("alpha", "beta", "eps") or not value:
            raise click.ClickException(f"--fix takes alpha=..., beta=... or eps=...; got {item!r}.")
        learner[name] = float(value)
    if method == "svi_lowrank":  # the deprecated spelling of --method svi --guide lowrank
        method, guide = "svi", "lowrank"
    samples = _DEFAULT_SAMPLES[method] if num_samples is None else num_samples
    if method == "nuts":
        options = {
            "num_warmup": num_warmup,
            "num_samples": samples,
            "num_chains": num_chains,
            "max_tree_depth": max_tree_depth,
        }
    elif method == "laplace":
        options = {"num_draws": samples}
    else:
        options = {"num_steps": num_steps, "num_draws": samples}
        if rank is not None:
            options["rank"] = rank
    if guide == "lowrank":
        if method != "svi":
            raise click.UsageError("--guide applies to --method svi.")
        method = "svi_lowrank"
    elif rank is not None:
        raise click.UsageError("--rank applies to --guide lowrank.")
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
            simulator=_SIMULATORS[simulator],
            n_ranks=n_ranks,
            chunk_size=chunk_size,
            engine=engine,
            workers=workers,
            progress=not (no_progress or quiet()),
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
    if as_json:
        emit_json({"n_datasets": res.n_datasets, "flagged": res.flagged(), "quantities": rows})
    else:
        _print_rows(res.n_datasets, res.flagged(), rows)
    note(stderr(), f"Wrote {out}" + (f" and {plot}" if plot else "") + ".")


def _print_rows(n_datasets: int, flagged: list[str], rows: dict[str, dict[str, float]]) -> None:
    """Print the coverage table of an SBC run and the quantities it flags."""
    table = Table(title=f"SBC: interval coverage over {n_datasets} data sets", title_justify="left")
    columns = list(next(iter(rows.values()), {}))
    for col in ("quantity", *columns):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    for q, row in rows.items():
        table.add_row(escape(q), *(fmt(row[c], 3) for c in columns))
    console = stdout()
    console.print(table)
    console.print(
        f"flagged: {escape(', '.join(flagged))}" if flagged else "No quantity flagged.", soft_wrap=True
    )
