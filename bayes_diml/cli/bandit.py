"""``bayes-diml bandit``: convert single-agent bandit data (long CSV) to trajectories."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bayes_diml.bandit import load_bandit_csv
from bayes_diml.cli.console import emit_json, stdout, user_errors
from bayes_diml.cli.options import TRAJECTORY_SUFFIXES, check_out, json_option

__all__ = ["bandit_command"]


@click.command("bandit")
@click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Trajectories (.npz, .csv)."
)
@click.option("--subject", default="subject", show_default=True, help="Column of subject / session labels.")
@click.option("--trial", default="trial", show_default=True, help="Column of trial numbers.")
@click.option("--choice", default="choice", show_default=True, help="Column of chosen arms.")
@click.option("--reward", default="reward", show_default=True, help="Column of rewards ('' for none).")
@click.option("--one-based", is_flag=True, help="Arms are numbered 1..K (hBayesDM).")
@click.option("--arms", "n_arms", type=click.IntRange(min=2), default=None, help="K (default: highest arm).")
@json_option
@user_errors
def bandit_command(
    csv_path: Path,
    out: Path,
    subject: str,
    trial: str,
    choice: str,
    reward: str,
    one_based: bool,
    n_arms: int | None,
    as_json: bool,
) -> None:
    """Convert single-agent bandit data (long CSV: subject, trial, choice, reward) to trajectories.

    Each subject becomes an episode of one agent; rewards become its observed payoffs. Fit
    the result with `bayes-diml fit OUT --mechanism tabular` (see docs/bandit.md). With --json,
    stdout holds one JSON object: out, subjects, trials, max_trials, arms, counts, rewards_observed.
    """
    out = check_out(out, TRAJECTORY_SUFFIXES)
    data = load_bandit_csv(
        csv_path,
        subject=subject,
        trial=trial,
        choice=choice,
        reward=reward or None,
        one_based=one_based,
        n_arms=n_arms,
    )
    data.save(out)
    counts = np.bincount(data.actions[:, :, 0][data.step_mask], minlength=data.n_actions[0])
    if as_json:
        emit_json(
            {
                "out": out,
                "subjects": data.n_episodes,
                "trials": int(data.lengths.sum()),
                "max_trials": data.n_steps,
                "arms": data.n_actions[0],
                "counts": counts,
                "rewards_observed": data.has_payoffs,
            }
        )
        return
    stdout().print(
        f"{data.n_episodes} subjects, {int(data.lengths.sum())} trials (up to {data.n_steps} each), "
        f"{data.n_actions[0]} arms chosen {counts.tolist()} times"
        + (", rewards observed" if data.has_payoffs else "")
        + f"; saved to {out}.",
        soft_wrap=True,
    )
