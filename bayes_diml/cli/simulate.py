"""``bayes-diml simulate``: trajectories of learners in one of the paper's environments."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bayes_diml import environments
from bayes_diml.cli.console import emit_json, fmt_values, game_text, user_errors
from bayes_diml.cli.options import (
    TRAJECTORY_SUFFIXES,
    build_learner,
    check_out,
    deprecated_alias,
    json_option,
    learner_options,
)
from bayes_diml.data import Trajectories
from bayes_diml.learners import LogitQ, family_name, parameter_names

__all__ = ["simulate", "SIMULATION_DEFAULTS"]

#: Data-generating values of ``simulate --learner-family`` (logitq: the environment's own).
SIMULATION_DEFAULTS = {
    "bandit": {"alpha": 0.25, "beta": 3.0, "eps": 0.06},
    "hedge": {"eta": 0.3, "eps": 0.06},
    "fp": {"beta": 3.0, "eps": 0.06, "prior_weight": 1.0},
    "ewa": {"phi": 0.9, "delta": 0.5, "rho": 0.9, "lam": 3.0, "eps": 0.06, "n0": 1.0},
    "aspiration": {"alpha": 0.25, "beta": 3.0, "eps": 0.06, "h": 0.2},
    "regret": {"alpha": 0.25, "beta": 3.0, "eps": 0.06},
    "markovq": {"alpha": 0.25, "beta": 3.0, "eps": 0.06},
}


@click.command("simulate")
@click.option(
    "--env",
    "env_name",
    type=click.Choice(environments.NAMES, case_sensitive=False),
    required=True,
    help="Experiment of the DIML paper: e1 neural 3x6, e2 congestion 4x5, e3 public goods 3x7, "
    "e7 symmetric n x K.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mechanism and data.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file: .npz, .csv or .parquet.",
)
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="Episodes M (default 60).")
@click.option("--steps", type=click.IntRange(min=2), default=None, help="Steps T per episode (default 60).")
@click.option("--n-agents", type=click.IntRange(min=2), default=None, help="Agents n (e7 only).")
@click.option("--n-actions", type=click.IntRange(min=1), default=None, help="Actions K per agent (e7 only).")
@deprecated_alias("--n", "--n-agents", "n_agents", type=click.IntRange(min=2))
@deprecated_alias("--K", "--n-actions", "n_actions", type=click.IntRange(min=1))
@click.option("--record-payoffs", is_flag=True, help="Store each agent's realised payoff at each step.")
@click.option(
    "--payoff-noise",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="SD",
    help="Add N(0, SD^2) noise to the recorded payoffs (implies --record-payoffs).",
)
@click.option("--alpha", default=None, help="Learning rate (logitq, bandit): number(s).")
@click.option("--beta", default=None, help="Inverse temperature (logitq, bandit, fp): number(s).")
@click.option("--eps", default=None, help="Exploration rate: number(s).")
@learner_options("number, or comma-separated numbers (one per agent)")
@json_option
@user_errors
def simulate(
    env_name: str,
    seed: int,
    out: Path,
    episodes: int | None,
    steps: int | None,
    n_agents: int | None,
    n_actions: int | None,
    record_payoffs: bool,
    payoff_noise: float | None,
    learner_family: str,
    as_json: bool,
    **learner_flags: str | None,
) -> None:
    """Simulate learners in one of the paper's environments and write the trajectories.

    The learner is the paper's logit-Q learner (alpha 0.25, beta 3, eps 0.06) unless
    --learner-family or parameter flags change it (other families' defaults: docs/learners.md).
    With --json, stdout holds one JSON object describing the data written.
    """
    check_out(out, TRAJECTORY_SUFFIXES)
    record = record_payoffs or payoff_noise is not None
    family = learner_family.lower()
    learner = None
    if family != "logitq" or any(v is not None for v in learner_flags.values()):
        if family == "logitq":
            default = environments.default_learner(env_name)
            base = {n: getattr(default, n) for n in ("alpha", "beta", "eps")}
        else:
            base = SIMULATION_DEFAULTS[family]
        learner = build_learner(family, learner_flags, base, numbers_only=True)
    env = environments.make(
        env_name,
        seed,
        n=n_agents,
        K=n_actions,
        n_episodes=episodes,
        T=steps,
        record_payoffs=record,
        learner=learner,
    )
    data = env.data
    if payoff_noise:
        rng = np.random.default_rng(seed)
        noisy = data.payoffs + payoff_noise * rng.standard_normal(data.payoffs.shape)
        data = Trajectories(data.actions, data.n_actions, lengths=data.lengths, payoffs=noisy)
    data.save(out)
    lq = env.learner
    if as_json:
        emit_json(
            {
                "out": out,
                "env": env.name,
                "mechanism": type(env.mechanism).__name__,
                "n_actions": data.n_actions,
                "n_episodes": data.n_episodes,
                "n_steps": data.n_steps,
                "learner": {"family": family_name(lq), **{n: getattr(lq, n) for n in parameter_names(lq)}},
                "payoffs_recorded": record,
                "payoff_noise": payoff_noise,
                "seed": seed,
            }
        )
        return
    pay = ""
    if record:
        pay = f", payoffs recorded{f' with noise sd {payoff_noise:g}' if payoff_noise else ''}"
    name = "" if isinstance(lq, LogitQ) else f" {type(lq).__name__}"
    values = " ".join(f"{n}={fmt_values(getattr(lq, n))}" for n in parameter_names(lq))
    click.echo(
        f"Wrote {out}: {env.name} ({type(env.mechanism).__name__}, {game_text(data.n_actions)}), "
        f"{data.n_episodes} episodes x {data.n_steps} steps, "
        f"learner{name} {values}{pay}, seed {seed}."
    )
