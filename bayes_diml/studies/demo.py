"""The end-to-end demo behind ``bayes-diml demo``: recover the incentives of a congestion game.

Simulates the DIML paper's experiment E2 (4 agents x 5 routes, tolled congestion game,
logit-Q learners), fits the correctly specified congestion family by NUTS with the learner
fixed to the truth, and checks the gauge-free payoff differences
``u_i(a) - mean_k u_i(k, a_-i)`` against the true ones: a table for agent 0 at the most
frequent opponent profiles, the coverage of the 90% intervals over every supported cell, the
sampler's diagnostics, and a plot of the intervals against the truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bayes_diml import environments, metrics
from bayes_diml.inference import Posterior, fit
from bayes_diml.models import Priors

__all__ = ["DemoResult", "run_demo", "DEMO_SETTINGS"]

#: Data and NUTS settings: full (about 2 minutes on 2 CPU cores) and quick (a smoke test).
#: A dense mass matrix makes the 15 weights (one direction, a common shift of ``b``, is a gauge
#: direction informed by the prior alone) cheap to sample: about 15 leapfrog steps per draw once
#: adapted. ``max_tree_depth = 7`` (at most 127 steps) only caps the early warm-up, before the
#: mass matrix is adapted, when trajectories would otherwise run to 1023 steps.
DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "data": {},  # the paper's 60 episodes x 60 steps, 80/20 split
        "nuts": {
            "num_warmup": 500,
            "num_samples": 1000,
            "num_chains": 2,
            "chain_method": "sequential",
            "dense_mass": True,
            "max_tree_depth": 7,
        },
    },
    "quick": {
        "data": {"n_episodes": 10, "T": 20},
        "nuts": {
            "num_warmup": 60,
            "num_samples": 60,
            "num_chains": 1,
            "chain_method": "sequential",
            "dense_mass": True,
            "max_tree_depth": 6,
        },
    },
}
PROB = 0.9
NUM_PROFILES = 4


class DemoResult(NamedTuple):
    """What :func:`run_demo` produced.

    Attributes
    ----------
    posterior : Posterior
        The NUTS fit.
    coverage : float
        Share of supported (profile, agent) cells whose 90% interval covers the true
        centred payoff.
    num_cells : int
        Number of supported cells.
    diagnostics : dict
        ``divergences``, ``max_r_hat``, ``min_ess_bulk``, ``seconds`` (of the fit).
    fit_path, data_path, plot_path : Path
        ``demo_fit.nc``, ``demo_data.npz`` (the training episodes) and ``demo_intervals.png``.
    rows : list of dict
        The printed table: profile, route, mean, lower, upper, truth, covered.
    """

    posterior: Posterior
    coverage: float
    num_cells: int
    diagnostics: dict
    fit_path: Path
    data_path: Path
    plot_path: Path
    rows: list


def _top_opponent_profiles(
    actions: np.ndarray, scored: np.ndarray, agent: int, count: int, distinct_up_to_order: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``count`` most frequent profiles a_-agent at scored steps and their counts.

    Returns ``(int[count, n-1], int[count])``; ties are broken lexicographically. With
    ``distinct_up_to_order`` a profile is skipped when a more frequent one has the same
    actions in another order (in an anonymous game they give the same payoffs).
    """
    steps = actions[:, :-1][scored]  # int[N, n]
    others = np.delete(steps, agent, axis=1)
    profiles, counts = np.unique(others, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    if distinct_up_to_order:
        seen, keep = set(), []
        for j in order:
            key = tuple(sorted(profiles[j].tolist()))
            if key not in seen:
                seen.add(key)
                keep.append(j)
        order = np.asarray(keep, dtype=int)
    order = order[:count]
    return profiles[order], counts[order]


def _plot(path: Path, truth: np.ndarray, table: dict, agent: int, coverage: float) -> None:
    """Posterior mean and 90% interval against the truth for agent ``agent``'s supported cells."""
    from matplotlib.figure import Figure

    sup = table["support"][..., agent]
    x = truth[..., agent][sup]
    mean = table["mean"][..., agent][sup]
    lower, upper = table["lower"][..., agent][sup], table["upper"][..., agent][sup]
    covered = (lower <= x) & (x <= upper)
    fig = Figure(figsize=(6.0, 6.0), layout="constrained")
    ax = fig.subplots()
    for mask, colour, label in ((covered, "tab:blue", "covers truth"), (~covered, "tab:red", "misses truth")):
        if mask.any():
            ax.errorbar(
                x[mask],
                mean[mask],
                yerr=np.stack([mean[mask] - lower[mask], upper[mask] - mean[mask]]),
                fmt="o",
                ms=3,
                elinewidth=0.6,
                alpha=0.6,
                color=colour,
                label=f"{label} ({int(mask.sum())})",
            )
    lim = np.array([min(x.min(), lower.min()), max(x.max(), upper.max())])
    pad = 0.05 * (lim[1] - lim[0] + 1e-9)
    lim = lim + np.array([-pad, pad])
    ax.plot(lim, lim, color="black", lw=1, ls="--", label="y = x")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_aspect("equal")
    ax.set_xlabel(f"true centred payoff  u_{agent}(a) - mean_k u_{agent}(k, a_-{agent})")
    ax.set_ylabel("posterior mean and 90% interval")
    ax.set_title(
        f"E2 congestion game, agent {agent}: {int(sup.sum())} supported cells\n"
        f"90% intervals cover the truth in {100 * covered.mean():.0f}% (all agents: {100 * coverage:.0f}%)"
    )
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=120)


def _no_context(console: Console) -> AbstractContextManager[object]:
    return nullcontext()


def run_demo(
    out_dir: str | Path = "bayes-diml-demo",
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    console: Console | None = None,
    fit_warnings: Callable[[Console], AbstractContextManager[object]] | None = None,
) -> DemoResult:
    """Simulate E2, fit the congestion family by NUTS, compare with the truth; write plot, fit and data.

    Parameters
    ----------
    out_dir : folder for ``demo_intervals.png``, ``demo_fit.nc`` and ``demo_data.npz``.
    seed : seed of the environment (mechanism and data) and of the sampler.
    quick : tiny data and sampler settings (a smoke test of the pipeline, not a result).
    progress : show the NUTS progress bar.
    console : where to print (default: a new rich console on stdout).
    fit_warnings : context manager, given ``console``, around the fit (``bayes-diml demo`` passes
        :func:`bayes_diml.cli.console.visible_warnings`, which prints the sampler's warnings on
        the console after the fit); default: warnings take Python's usual route.

    Returns
    -------
    DemoResult
    """
    console = console or Console(highlight=False)
    settings = DEMO_SETTINGS["quick" if quick else "full"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def stage(i: int, text: str) -> None:
        elapsed = time.perf_counter() - t_start
        console.print(f"[bold cyan]\\[{i}/4][/] {escape(text)} [dim]({elapsed:.0f} s)[/]", soft_wrap=True)

    # 1. data
    stage(1, "Simulating E2: 4 logit-Q learners on a tolled congestion game with 5 routes ...")
    env = environments.make("e2", seed, **settings["data"])
    train = env.train
    data_path = train.save(out_dir / "demo_data.npz")
    lq = env.learner
    console.print(
        f"    {env.data.n_episodes} episodes x {env.data.n_steps} steps; fitting the "
        f"{train.n_episodes} training episodes (saved to {data_path}). True learner: "
        f"alpha = {float(lq.alpha):g}, beta = {float(lq.beta):g}, eps = {float(lq.eps):g}.",
        soft_wrap=True,
    )

    # 2. fit
    nuts = settings["nuts"]
    stage(
        2,
        f"Fitting the congestion family b[k] + w1[k] load + w2[k] load^2 by NUTS "
        f"({nuts['num_chains']} chain(s) x {nuts['num_warmup']} warm-up + {nuts['num_samples']} draws, "
        "dense mass matrix) ...",
    )
    console.print(
        "    The learner is fixed to the truth: beta is fixed because beta and the payoff scale are "
        "otherwise confounded (only beta x payoff differences would be identified). "
        "Prior: N(0, 1) on every weight.",
        soft_wrap=True,
    )
    with (fit_warnings or _no_context)(console):
        post = fit(
            train,
            env.family,
            env.learner,
            "nuts",
            seed,
            priors=Priors(mechanism_scale=1.0),
            progress=progress,
            **nuts,
        )
    fit_path = post.save(out_dir / "demo_fit.nc")
    console.print(f"    Fitted in {post.info['seconds']:.0f} s; saved to {fit_path}.")

    # 3. comparison with the truth
    stage(3, "Comparing payoff differences with the truth ...")
    table = post.payoff_table(PROB)
    truth = np.asarray(metrics.payoff_differences(env.mechanism, env.params), dtype=np.float64)
    agent = 0
    # E2 is anonymous: opponent profiles that differ only in order give identical rows
    profiles, counts = _top_opponent_profiles(
        train.actions, train.scored_mask, agent, NUM_PROFILES, distinct_up_to_order=True
    )
    rows = []
    view = Table(
        title=f"Agent {agent}: u_0(k, a_-0) - mean_k u_0(k, a_-0) at the {len(profiles)} most frequent "
        f"opponent profiles, distinct up to order (posterior mean, {100 * PROB:g}% interval, truth)",
        title_justify="left",
    )
    for col, just in (
        ("opponents a_-0", "left"),
        ("route k", "right"),
        ("mean", "right"),
        (f"{100 * PROB:g}% interval", "right"),
        ("truth", "right"),
        ("covers", "center"),
    ):
        view.add_column(col, justify=just)
    K = env.mechanism.n_choices
    for p, (others, count) in enumerate(zip(profiles, counts, strict=True)):
        for k in range(K):
            joint = tuple(np.insert(others, agent, k).tolist())
            cell = (*joint, agent)
            lo, hi, m = (float(table[q][cell]) for q in ("lower", "upper", "mean"))
            tr = float(truth[cell])
            covers = lo <= tr <= hi
            rows.append(
                {
                    "profile": tuple(int(v) for v in others),
                    "route": k,
                    "mean": m,
                    "lower": lo,
                    "upper": hi,
                    "truth": tr,
                    "covered": covers,
                }
            )
            label = f"{tuple(int(v) for v in others)} seen {int(count)}x" if k == 0 else ""
            view.add_row(
                label,
                str(k),
                f"{m:+.3f}",
                f"[{lo:+.3f}, {hi:+.3f}]",
                f"{tr:+.3f}",
                "yes" if covers else "[red]no[/]",
            )
        if p < len(profiles) - 1:
            view.add_section()
    console.print(view)
    sup = table["support"]
    inside = (table["lower"] <= truth) & (truth <= table["upper"])
    num_cells = int(sup.sum())
    coverage = float(inside[sup].mean()) if num_cells else float("nan")
    console.print(
        f"Coverage: the {100 * PROB:g}% intervals cover the true payoff difference in "
        f"{int(inside[sup].sum())} of {num_cells} supported (profile, agent) cells = {100 * coverage:.1f}% "
        f"(cells share 15 parameters, so they are strongly dependent).",
        soft_wrap=True,
    )
    info = post.info
    diagnostics = {
        "divergences": int(info.get("divergences", 0)),
        "max_r_hat": float(info.get("max_r_hat", float("nan"))),
        "min_ess_bulk": float(info.get("min_ess_bulk", float("nan"))),
        "seconds": float(info.get("seconds", float("nan"))),
    }
    r_hat = diagnostics["max_r_hat"]
    r_hat_text = f"{r_hat:.3f}" if np.isfinite(r_hat) else "n/a (one chain)"
    console.print(
        f"NUTS diagnostics: {diagnostics['divergences']} divergences, max R-hat {r_hat_text}, "
        f"min bulk ESS {diagnostics['min_ess_bulk']:.0f} (over the payoff cells with an observed "
        "opponent profile).",
        soft_wrap=True,
    )

    # 4. plot
    stage(4, "Plotting the intervals of agent 0 against the truth ...")
    plot_path = out_dir / "demo_intervals.png"
    _plot(plot_path, truth, table, agent, coverage)
    console.print(f"    Wrote {plot_path}. Done in {time.perf_counter() - t_start:.0f} s.")
    return DemoResult(post, coverage, num_cells, diagnostics, fit_path, data_path, plot_path, rows)
