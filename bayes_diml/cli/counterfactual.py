"""``bayes-diml counterfactual``: posterior-predictive simulation with a scaled learner."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from rich.table import Table

from bayes_diml.cli.console import emit_json, fmt, percent, stderr, stdout, user_errors, visible_warnings
from bayes_diml.cli.context import context_options, select_context
from bayes_diml.cli.options import check_out, json_option, load_fit, prob_option
from bayes_diml.learners import LogitQ

__all__ = ["counterfactual", "STATISTICS"]

#: Statistics of ``counterfactual --statistic``.
STATISTICS = ("action_frequencies", "mean_payoff", "welfare")


@click.command("counterfactual")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@context_options
@click.option(
    "--alpha-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiply the learning rate (capped at 1).",
)
@click.option(
    "--beta-scale",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="Multiply beta (the temperature: Hedge's eta, EWA's lam).",
)
@click.option(
    "--eps-scale", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Multiply eps."
)
@click.option(
    "--eps-cap",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Cap of the scaled eps.",
)
@click.option(
    "--episodes", type=click.IntRange(min=1), default=100, show_default=True, help="Episodes per draw."
)
@click.option("--steps", type=click.IntRange(min=2), default=None, help="Steps T (default: the data's).")
@click.option("--draws", type=click.IntRange(min=1), default=200, show_default=True, help="Posterior draws.")
@click.option("--statistic", type=click.Choice(STATISTICS), default="action_frequencies", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@prob_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Save draws to .npz."
)
@json_option
@user_errors
def counterfactual(
    fit_path: Path,
    group: str | None,
    at: dict[str, float],
    alpha_scale: float,
    beta_scale: float,
    eps_scale: float,
    eps_cap: float,
    episodes: int,
    steps: int | None,
    draws: int,
    statistic: str,
    seed: int,
    prob: float,
    out: Path | None,
    as_json: bool,
) -> None:
    """Posterior-predictive simulation with the learner's alpha, beta, eps scaled (alpha capped at 1).

    For each posterior draw, simulates EPISODES episodes under the fitted mechanism and the
    scaled learner and computes the statistic; prints its mean and equal-tailed interval. With
    --json, stdout holds one JSON object: statistic, scales, n_draws, episodes, steps, prob, and
    mean, lower, upper (nested lists: [agent][action] for action_frequencies, [agent] for
    mean_payoff, a number for welfare).

    A grouped fit needs --group G (that group's table and learner), a covariate fit --at
    NAME=VALUE (the table at that covariate value).
    """
    if out is not None:
        check_out(out, (".npz",))
    err = stderr()
    with visible_warnings(err):
        post = select_context(load_fit(fit_path), group, at)

        def shift(learner: LogitQ) -> LogitQ:
            return learner.scaled(alpha=alpha_scale, beta=beta_scale, eps=eps_scale, eps_cap=eps_cap)

        values = post.counterfactual(
            shift, n_episodes=episodes, T=steps, statistic=statistic, n_draws=draws, seed=seed
        )
    values = np.asarray(values, dtype=np.float64)
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    mean, lower, upper = values.mean(0), np.quantile(values, lo, axis=0), np.quantile(values, hi, axis=0)
    T = steps or post.data.n_steps
    if out is not None:
        with open(out, "wb") as f:
            np.savez(f, draws=values, mean=mean, lower=lower, upper=upper)
    if as_json:
        emit_json(
            {
                "statistic": statistic,
                "scales": {"alpha": alpha_scale, "beta": beta_scale, "eps": eps_scale, "eps_cap": eps_cap},
                "n_draws": values.shape[0],
                "episodes": episodes,
                "steps": T,
                "prob": prob,
                "mean": mean,
                "lower": lower,
                "upper": upper,
                "out": out,
            }
        )
        return
    console = stdout()
    console.print(
        f"Counterfactual {statistic}: alpha x {alpha_scale:g}, beta x {beta_scale:g}, eps x {eps_scale:g} "
        f"(eps capped at {eps_cap:g}); {values.shape[0]} posterior draws x {episodes} episodes x {T} steps.",
        soft_wrap=True,
    )
    table = Table(title=f"{statistic}: posterior mean and {percent(prob)} interval", title_justify="left")
    k = tuple(post.data.n_actions)
    if statistic == "action_frequencies":
        for col in ("agent", "action", "mean", "lower", "upper"):
            table.add_column(col, justify="right")
        for i, K in enumerate(k):
            for a in range(K):
                table.add_row(str(i), str(a), fmt(mean[i, a]), fmt(lower[i, a]), fmt(upper[i, a]))
            if i < len(k) - 1:
                table.add_section()
    elif statistic == "mean_payoff":
        for col in ("agent", "mean", "lower", "upper"):
            table.add_column(col, justify="right")
        for i in range(len(k)):
            table.add_row(str(i), fmt(mean[i]), fmt(lower[i]), fmt(upper[i]))
    else:
        for col in ("statistic", "mean", "lower", "upper"):
            table.add_column(col, justify="right")
        table.add_row("welfare", fmt(mean), fmt(lower), fmt(upper))
    console.print(table)
    if out is not None:
        console.print(f"Saved draws {values.shape} and mean/lower/upper to {out}.")
