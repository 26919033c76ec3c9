"""Benchmark: cost of the likelihood's value + gradient against n, K, M and T, with log-log slopes.

Two games, each varied one factor at a time around a base point:

- ``count``: ``Congestion(n, K)``, a count-based symmetric game (the plan evaluates the
  mechanism once per distinct opponent-count vector); base n = 20, K = 5, M = 8, T = 60;
- ``table``: ``Tabular((K,) * n)``, a payoff-table game (the plan gathers from the table of
  all K^n joint actions); base n = 2, K = 4, M = 8, T = 60.

Data are simulated with alpha = 0.25, beta = 3, eps = 0.06. Each point: the fastest of
``--repeats`` jitted value+grad calls (float32) after compilation (the median is kept too);
the slope is the least-squares fit of log(time) on log(factor). Writes JSON and a log-log PNG.

Usage: ``python benchmarks/cost.py [--out benchmarks/results/cost.json --png docs/cost.png]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import jax
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms as mm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from likelihood import compile_and_time, environment, load_average  # noqa: E402

DEFAULT_OUT = HERE / "results" / "cost.json"
DEFAULT_PNG = HERE.parent / "docs" / "cost.png"
LEARNER = bd.LogitQ(0.25, 3.0, 0.06)
GRID = {
    "count": {
        "base": {"n": 20, "K": 5, "M": 8, "T": 60},
        "vary": {
            "n": [5, 10, 20, 40, 80],
            "K": [3, 5, 10, 20],
            "M": [4, 8, 16, 32, 64],
            "T": [30, 60, 120, 240],
        },
    },
    "table": {
        "base": {"n": 2, "K": 4, "M": 8, "T": 60},
        "vary": {"n": [2, 3, 4, 5], "K": [2, 4, 8, 16], "M": [4, 8, 16, 32, 64], "T": [30, 60, 120, 240]},
    },
}


def _mechanism(game: str, n: int, K: int):
    return mm.Congestion(n, K) if game == "count" else mm.Tabular((K,) * n)


def time_point(game: str, n: int, K: int, M: int, T: int, repeats: int) -> dict:
    """Compile and steady-state seconds of one value+grad at a point."""
    mech = _mechanism(game, n, K)
    params = mech.init(jax.random.key(0))
    if game == "count":  # scale the congestion costs up so that play is not uniform
        params = jax.tree_util.tree_map(lambda x: 5.0 * x, params)
    data = bd.simulate(mech, params, LEARNER, M, T, jax.random.key(1))
    data = bd.Trajectories(data.actions, data.n_actions)

    def loss(p):
        return bd.log_likelihood(mech, p, LEARNER, data)

    compile_s, times = compile_and_time(loss, params, repeats)
    plan = bd.counterfactual.plan_for(mech, data)
    return {
        "compile_s": compile_s,
        "seconds": min(times),  # load only ever adds time: the minimum is the least contaminated
        "median_seconds": statistics.median(times),
        "plan": plan.kind,
        "evaluations": plan.n_evaluations,
    }


def slope(xs, ys) -> float:
    """Least-squares slope of log(y) on log(x)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def plot(results: dict, path: Path) -> None:
    """Log-log plot: one panel per factor, one line per game."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, factor in zip(axes, ("n", "K", "M", "T"), strict=True):
        for game, res in results.items():
            rows = res["curves"][factor]
            xs = [r[factor] for r in rows]
            ys = [1e3 * r["seconds"] for r in rows]
            ax.loglog(xs, ys, "o-", label=f"{game} (slope {res['slopes'][factor]:.2f})")
        # ticks at the measured values, plain numbers (log axes' default minor labels collide)
        values = sorted({r[factor] for res in results.values() for r in res["curves"][factor]})
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(factor)
        ax.set_title(f"value+grad vs {factor}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("ms per value+grad")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    """Run the grid, print the tables and write the JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args(argv)
    results = {}
    for game, spec in GRID.items():
        curves = {}
        for factor, values in spec["vary"].items():
            rows = []
            for v in values:
                point = {**spec["base"], factor: v}
                load = load_average()
                r = time_point(game, point["n"], point["K"], point["M"], point["T"], args.repeats)
                rows.append({**point, **r, "load_average": load})
                print(
                    f"{game:<5} {factor}={v:<4} n={point['n']:<3} K={point['K']:<3} M={point['M']:<3} "
                    f"T={point['T']:<4} plan={r['plan']:<5} evals={r['evaluations']:<7} "
                    f"{1e3 * r['seconds']:9.3f} ms (compile {r['compile_s']:.2f} s)",
                    flush=True,
                )
            curves[factor] = rows
        slopes = {f: slope([r[f] for r in rows], [r["seconds"] for r in rows]) for f, rows in curves.items()}
        results[game] = {"base": spec["base"], "curves": curves, "slopes": slopes}
        print(f"{game}: log-log slopes {slopes}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "value+grad cost against n, K, M, T",
        "environment": environment(),
        "results": results,
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    plot(results, args.png)
    print(f"wrote {args.out} and {args.png}")


if __name__ == "__main__":
    main()
