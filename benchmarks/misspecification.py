"""Misspecification study: data from 11 learning rules, fitted by learner="auto" and by plain logit-Q.

Usage (from the repository root)::

    python benchmarks/misspecification.py --seeds 0 100            # the full study (N = 100)
    python benchmarks/misspecification.py --seeds 0 2 --generators logitq hedge blind

Generating learners (``bayes_diml.studies.misspecification``): every learner family of the
package, Q-learning with bandit feedback and epsilon-greedy play, proportional imitation on a
ring, and a payoff-blind control; 30 episodes x 30 steps of a 2 x 3 game of N(0, 1) payoffs
(2 x 2 x 2 for imitation). Each data set is fitted by ``fit(..., learner="auto", method="nuts")``
with its defaults (stacked, bagged) and by logit-Q with alpha and eps inferred and the
temperature fixed at 1. Records go to ``benchmarks/results/misspecification.jsonl`` (one line
per fit; a rerun resumes) and the table to ``benchmarks/results/misspecification.json``.

Columns: ``sure_share`` (pairs whose 90% interval excludes 0: power), ``sure_right`` (of those,
the share with the true sign; target >= 0.95 pooled), ``wrong_sure`` (count), ``coverage`` (90%
intervals holding the true difference in temperature x payoff units; only for generators with a
temperature).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from bayes_diml.studies.misspecification import FITS, GENERATORS, run_study, summarise

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs=2, type=int, default=[0, 100], metavar=("FIRST", "LAST"))
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS), choices=GENERATORS)
    parser.add_argument("--fits", nargs="+", default=list(FITS), choices=FITS)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS / "misspecification.jsonl")
    args = parser.parse_args()

    def show(rec: dict) -> None:
        print(
            f"{rec['generator']:>10} seed {rec['seed']:>3} {rec['fit']:>6}: {rec['seconds']:6.1f} s, "
            f"{rec['sure']:>2}/{rec['pairs']} sure, {rec['sure'] - rec['sure_right']} wrong, "
            f"covered {rec['covered']}, verdict {rec.get('verdict')}",
            flush=True,
        )

    records = run_study(
        args.out,
        args.generators,
        range(*args.seeds),
        args.fits,
        n_episodes=args.episodes,
        T=args.steps,
        on_record=show,
    )
    table = summarise(records)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    pooled = table.groupby("fit")[["pairs", "wrong_sure"]].sum()
    sure = pd.DataFrame(records).groupby("fit")["sure"].sum()
    pooled["sure"] = sure
    pooled["sure_right"] = 1 - pooled["wrong_sure"] / pooled["sure"]
    print(pooled.to_string())
    out = args.out.with_suffix(".json")
    out.write_text(
        json.dumps(
            {
                "command": (
                    f"python benchmarks/misspecification.py --seeds {args.seeds[0]} {args.seeds[1]} "
                    f"--generators {' '.join(args.generators)} --fits {' '.join(args.fits)}"
                ),
                "episodes": args.episodes,
                "steps": args.steps,
                "table": table.to_dict(orient="records"),
                "pooled": pooled.reset_index().to_dict(orient="records"),
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
