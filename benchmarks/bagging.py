"""Bagged (BayesBag) against ordinary posteriors when the agents do not learn by the fitted rule.

Usage: ``python benchmarks/bagging.py [N_DATASETS] [N_BAGS] [--learner hedge|logitq] [--no-timing]``

The agents of a 2 x 3 Tabular game learn by Hedge (exponential weights on cumulative payoffs,
``eta``, ``eps``); we fit LogitQ with ``beta = 1`` fixed (alpha and eps inferred), once
ordinarily (NUTS) and once bagged (``robust="bagging"``). Under misspecification the target
of the posterior is the pseudo-true table: the LogitQ table closest in Kullback-Leibler
divergence to the Hedge process, estimated by MAP on ``BIG_M`` episodes. We report, over the
supported pairwise differences u_i(a, a_-i) - u_i(b, a_-i):

* the median width ratio of the 90% intervals, bagged / ordinary;
* coverage of the pseudo-true differences (nominal 0.9);
* wrong-sign rate: intervals that exclude zero with the sign opposite to the *true* Hedge
  table's difference (the worst output), and decisive rate (exclude zero, right sign).

``--learner logitq`` simulates from LogitQ itself (well specified: a control). A last run
times ``robust="bagging", n_bags=20`` on 60 x 40 data. Prints a table; writes
``benchmarks/results/bagging[_<learner>].json`` (after every data set, so partial runs keep
their rows).
"""

from __future__ import annotations

import json
import platform
import time
import warnings
from pathlib import Path

import jax
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConvergenceWarning
from bayes_diml.inference.pairs import payoff_pairs_frame

OUT = Path(__file__).resolve().parent / "results"
GAME = (2, 3)
M, T = 40, 30
BIG_M = 2000
PROB = 0.9
ORDINARY = {"num_warmup": 300, "num_samples": 500}
FITTED = bd.learners.LogitQ(alpha="infer", beta=1.0, eps="infer")


def _truth(learner_name: str):
    mech = mechanisms.Tabular(GAME)
    table = 1.5 * jax.random.normal(jax.random.key(11), (*GAME, len(GAME)))
    if learner_name == "hedge":
        sim = bd.learners.Hedge(eta=0.15, eps=0.05)
    else:
        sim = bd.learners.LogitQ(alpha=0.2, beta=1.0, eps=0.05)
    return mech, {"table": table}, sim


def _true_pairs(table: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Pairwise differences of the true table, in payoff_pairs_frame's row order."""
    return payoff_pairs_frame(np.asarray(table)[None], support)["mean"].to_numpy()


def _pseudo_true(mech, params, sim) -> np.ndarray:
    """MAP of the fitted (LogitQ, beta = 1) model on BIG_M episodes: the KL projection's table."""
    big = bd.simulate(mech, params, sim, BIG_M, T, 10**6)
    post = bd.fit(big, mech, FITTED, method="map", progress=False, num_steps=20000, tol=1e-6)
    if not post.info["converged"]:
        raise RuntimeError("the pseudo-true MAP did not converge; raise num_steps.")
    return post.payoff_pairs(PROB)["mean"].to_numpy()


def _row(post, truth: np.ndarray, pseudo: np.ndarray) -> dict:
    pairs = post.payoff_pairs(PROB)
    sup = pairs["support"].to_numpy()
    lo, hi = pairs["lower"].to_numpy()[sup], pairs["upper"].to_numpy()[sup]
    t, p = truth[sup], pseudo[sup]
    wrong = ((lo > 0) & (t < 0)) | ((hi < 0) & (t > 0))
    right = ((lo > 0) & (t > 0)) | ((hi < 0) & (t < 0))
    return {
        "lower": lo.tolist(),
        "upper": hi.tolist(),
        "widths": (hi - lo).tolist(),
        "covered_pseudo": ((lo <= p) & (p <= hi)).tolist(),
        "wrong_sign": wrong.tolist(),
        "decisive": right.tolist(),
        "seconds": post.info["seconds"],
        "max_r_hat": post.info.get("max_r_hat"),
        "divergences": post.info.get("divergences"),
    }


def _summary(rows: list[dict]) -> dict:
    def cat(kind, key):
        return np.concatenate([np.asarray(r[kind][key], dtype=float) for r in rows])

    ratio = cat("bagged", "widths") / cat("ordinary", "widths")
    per_set = [
        np.median(np.asarray(r["bagged"]["widths"]) / np.asarray(r["ordinary"]["widths"])) for r in rows
    ]
    out = {"n_datasets": len(rows), "n_pairs": int(ratio.size), "median_width_ratio": float(np.median(ratio))}
    out["width_ratio_per_dataset"] = [float(x) for x in per_set]
    for kind in ("ordinary", "bagged"):
        out[kind] = {
            "coverage_pseudo_true": float(cat(kind, "covered_pseudo").mean()),
            "wrong_sign_rate": float(cat(kind, "wrong_sign").mean()),
            "decisive_rate": float(cat(kind, "decisive").mean()),
            "median_seconds": float(np.median([r[kind]["seconds"] for r in rows])),
        }
    return out


def _print(summary: dict) -> None:
    print(f"{summary['n_datasets']} data sets, {summary['n_pairs']} supported pairs")
    print(f"median 90% width ratio bagged / ordinary: {summary['median_width_ratio']:.2f}")
    print(f"{'':10s} {'coverage(pseudo-true)':>22s} {'wrong sign':>11s} {'decisive':>9s} {'s/fit':>7s}")
    for kind in ("ordinary", "bagged"):
        s = summary[kind]
        print(
            f"{kind:10s} {s['coverage_pseudo_true']:22.3f} {s['wrong_sign_rate']:11.3f} "
            f"{s['decisive_rate']:9.3f} {s['median_seconds']:7.1f}"
        )


def _timing() -> dict:
    mech, params, sim = _truth("hedge")
    data = bd.simulate(mech, params, sim, 60, 40, 123)
    t0 = time.perf_counter()
    post = bd.fit(data, mech, FITTED, method="nuts", progress=False, robust="bagging", n_bags=20)
    wall = time.perf_counter() - t0
    return {
        "data": "2x3 Tabular, 60 episodes x 40 steps",
        "n_bags": 20,
        "per_bag": "NUTS 2 chains x (300 warm-up + 250 draws)",
        "seconds": wall,
        "median_bag_seconds": float(np.median(post.info["bag_seconds"])),
        "max_r_hat_within_bags": post.info.get("max_r_hat"),
        "min_ess_bulk_within_bags": post.info.get("min_ess_bulk"),
        "divergences": post.info.get("divergences"),
    }


def main(n_datasets: int, n_bags: int, learner_name: str, timing: bool) -> None:
    """Run the study and the timing; print a table and write the JSON."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("bagging.json" if learner_name == "hedge" else f"bagging_{learner_name}.json")
    mech, params, sim = _truth(learner_name)
    t0 = time.perf_counter()
    pseudo = _pseudo_true(mech, params, sim)
    record = {
        "setup": {
            "game": GAME,
            "simulated_by": repr(sim),
            "fitted": "LogitQ(alpha=infer, beta=1, eps=infer)",
            "M": M,
            "T": T,
            "n_bags": n_bags,
            "ordinary_nuts": ORDINARY,
            "pseudo_truth": f"MAP on {BIG_M} episodes",
            "machine": f"{platform.processor() or platform.machine()}, CPU, shared",
        },
        "pseudo_true_seconds": time.perf_counter() - t0,
        "pseudo_true_pairs": pseudo.tolist(),
        "true_pairs": _true_pairs(
            np.asarray(params["table"]), np.ones((*GAME, len(GAME)), dtype=bool)
        ).tolist(),
        "rows": [],
    }
    for s in range(n_datasets):
        data = bd.simulate(mech, params, sim, M, T, s)
        truth = _true_pairs(np.asarray(params["table"]), np.ones((*GAME, len(GAME)), dtype=bool))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning, message="NUTS diagnostics")
            ordinary = bd.fit(data, mech, FITTED, method="nuts", seed=s, progress=False, **ORDINARY)
            bagged = bd.fit(
                data, mech, FITTED, method="nuts", seed=s, progress=False, robust="bagging", n_bags=n_bags
            )
        record["rows"].append(
            {"seed": s, "ordinary": _row(ordinary, truth, pseudo), "bagged": _row(bagged, truth, pseudo)}
        )
        record["summary"] = _summary(record["rows"])
        path.write_text(json.dumps(record, indent=1))
        print(f"data set {s}: width ratio {record['summary']['width_ratio_per_dataset'][-1]:.2f}", flush=True)
    _print(record["summary"])
    if timing:
        record["timing"] = _timing()
        path.write_text(json.dumps(record, indent=1))
        print(f"robust='bagging', n_bags=20, 2x3 game 60x40: {record['timing']['seconds']:.0f} s")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_datasets", type=int, nargs="?", default=12)
    parser.add_argument("n_bags", type=int, nargs="?", default=10)
    parser.add_argument("--learner", choices=("hedge", "logitq"), default="hedge")
    parser.add_argument("--no-timing", action="store_true")
    a = parser.parse_args()
    main(a.n_datasets, a.n_bags, a.learner, not a.no_timing)
