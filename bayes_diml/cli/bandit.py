"""``bayes-diml bandit``: convert single-agent bandit data (long CSV, hBayesDM text) to trajectories."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bayes_diml.bandit import HBAYESDM_SUFFIXES, load_bandit_csv, read_hbayesdm
from bayes_diml.cli.console import emit_json, stdout, user_errors
from bayes_diml.cli.options import TRAJECTORY_SUFFIXES, check_out, json_option

__all__ = ["bandit_command"]


@click.command("bandit")
@click.argument("csv_path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Trajectories (.npz, .csv)."
)
@click.option(
    "--format",
    "data_format",
    type=click.Choice(["auto", "csv", "hbayesdm"]),
    default="auto",
    show_default=True,
    help="auto: hbayesdm for .txt/.tsv (tab-separated subjID, choice 1..K, outcome; trials in row order), "
    "else csv.",
)
@click.option("--subject", default=None, help="Subject / session column [csv: subject; hbayesdm: subjID].")
@click.option("--trial", default=None, help="Trial-number column [csv: trial; hbayesdm: none, row order].")
@click.option("--choice", default=None, help="Column of chosen arms [choice].")
@click.option("--reward", default=None, help="Reward column, '' for none [csv: reward; hbayesdm: outcome].")
@click.option("--one-based", is_flag=True, help="Arms are numbered 1..K (csv; hbayesdm always is).")
@click.option("--arms", "n_arms", type=click.IntRange(min=2), default=None, help="K (default: highest arm).")
@json_option
@user_errors
def bandit_command(
    csv_path: Path,
    out: Path,
    data_format: str,
    subject: str | None,
    trial: str | None,
    choice: str | None,
    reward: str | None,
    one_based: bool,
    n_arms: int | None,
    as_json: bool,
) -> None:
    """Convert single-agent bandit data to trajectories.

    CSV: columns subject, trial, choice, reward. hBayesDM (.txt/.tsv or --format hbayesdm):
    tab-separated columns subjID, choice (1..K), outcome, trials in row order. Each subject
    becomes an episode of one agent; rewards become its observed payoffs. Fit the result with
    `bayes-diml fit OUT --mechanism bandit` (see docs/bandit.md). With --json, stdout holds one
    JSON object: out, subjects, trials, max_trials, arms, counts, rewards_observed.
    """
    out = check_out(out, TRAJECTORY_SUFFIXES)
    if data_format == "hbayesdm" or (data_format == "auto" and csv_path.suffix.lower() in HBAYESDM_SUFFIXES):
        if trial is not None:
            raise click.UsageError("--trial does not apply to hBayesDM data: their trials are in row order.")
        data = read_hbayesdm(
            csv_path,
            subject=subject or "subjID",
            choice=choice or "choice",
            outcome="outcome" if reward is None else (reward or None),
            n_arms=n_arms,
        )
    else:
        data = load_bandit_csv(
            csv_path,
            subject=subject or "subject",
            trial=trial or "trial",
            choice=choice or "choice",
            reward="reward" if reward is None else (reward or None),
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
