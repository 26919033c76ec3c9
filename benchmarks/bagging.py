"""Bagged (BayesBag) against ordinary posteriors when the agents do not learn by the fitted rule.

Usage: ``python benchmarks/bagging.py [N_DATASETS] [N_BAGS] [--learner hedge|logitq] [--no-timing]``
or ``python benchmarks/bagging.py --report benchmarks/results/bagging.json``.

The agents of a 2 x 3 Tabular game learn by Hedge (exponential weights on cumulative payoffs,
``eta``, ``eps``); we fit LogitQ with ``beta = 1`` fixed (alpha and eps inferred), once
ordinarily (NUTS) and once bagged (``robust="bagging"``). Under misspecification the target
of the posterior is the pseudo-true table: the LogitQ table closest in Kullback-Leibler
divergence to the Hedge process, estimated by MAP on ``BIG_M`` episodes. We report, over the
supported pairwise differences u_i(a, a_-i) - u_i(b, a_-i):

* the median width ratio of the 90% intervals, bagged / ordinary;
* coverage of the pseudo-true differences (nominal 0.9) and of the true table's differences
  (``eta = 0.15`` matches LogitQ with ``alpha = 0.15, beta = 1`` at an episode's first
  update, so these units agree early in an episode and drift apart later: Hedge's scores
  keep growing);
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
KINDS = ("ordinary", "bagged")
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


def _row(post) -> dict:
    pairs = post.payoff_pairs(PROB)
    return {
        "support": pairs["support"].tolist(),
        "lower": pairs["lower"].tolist(),
        "upper": pairs["upper"].tolist(),
        "seconds": post.info["seconds"],
        "max_r_hat": post.info.get("max_r_hat"),
        "divergences": post.info.get("divergences"),
    }


def _intervals(fit: dict, n_pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(support, lower, upper)`` over every pair (rows of early runs hold supported pairs only)."""
    lo, hi = np.asarray(fit["lower"]), np.asarray(fit["upper"])
    sup = np.asarray(fit.get("support", [True] * n_pairs), dtype=bool)
    if lo.size != n_pairs:  # early format: supported pairs only, usable when every pair was
        raise ValueError("row without the support of its pairs")
    return sup, lo, hi


def _summary(rows: list[dict], truth: np.ndarray, pseudo: np.ndarray) -> dict:
    """Width ratio, coverage (of the pseudo-true and of the true differences) and sign errors."""
    stats = {k: {"covered_pseudo": [], "covered_true": [], "wrong_sign": [], "decisive": []} for k in KINDS}
    ratios, per_set = [], []
    for r in rows:
        width = {}
        for kind in KINDS:
            sup, lo, hi = _intervals(r[kind], truth.size)
            t, p, lo, hi = truth[sup], pseudo[sup], lo[sup], hi[sup]
            width[kind] = hi - lo
            s = stats[kind]
            s["covered_pseudo"].append((lo <= p) & (p <= hi))
            s["covered_true"].append((lo <= t) & (t <= hi))
            s["wrong_sign"].append(((lo > 0) & (t < 0)) | ((hi < 0) & (t > 0)))
            s["decisive"].append(((lo > 0) & (t > 0)) | ((hi < 0) & (t < 0)))
        ratios.append(width["bagged"] / width["ordinary"])
        per_set.append(float(np.median(ratios[-1])))
    ratio = np.concatenate(ratios)
    out = {"n_datasets": len(rows), "n_pairs": int(ratio.size), "median_width_ratio": float(np.median(ratio))}
    out["width_ratio_per_dataset"] = per_set
    for kind in KINDS:
        out[kind] = {name: float(np.concatenate(v).mean()) for name, v in stats[kind].items()}
        out[kind]["median_seconds"] = float(np.median([r[kind]["seconds"] for r in rows]))
    return out


def _print(summary: dict) -> None:
    print(f"{summary['n_datasets']} data sets, {summary['n_pairs']} supported pairs")
    print(f"median 90% width ratio bagged / ordinary: {summary['median_width_ratio']:.2f}")
    cols = ("covered_pseudo", "covered_true", "wrong_sign", "decisive", "median_seconds")
    print(f"{'':10s} " + " ".join(f"{c:>15s}" for c in cols))
    for kind in KINDS:
        print(f"{kind:10s} " + " ".join(f"{summary[kind][c]:15.3f}" for c in cols))


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


def report(path: Path) -> dict:
    """Recompute and print the summary of a written JSON."""
    record = json.loads(path.read_text())
    truth, pseudo = np.asarray(record["true_pairs"]), np.asarray(record["pseudo_true_pairs"])
    record["summary"] = _summary(record["rows"], truth, pseudo)
    _print(record["summary"])
    if "timing" in record:
        print(f"robust='bagging', n_bags=20, 2x3 game 60x40: {record['timing']['seconds']:.0f} s")
    return record


def main(n_datasets: int, n_bags: int, learner_name: str, timing: bool) -> None:
    """Run the study and the timing; print a table and write the JSON."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("bagging.json" if learner_name == "hedge" else f"bagging_{learner_name}.json")
    mech, params, sim = _truth(learner_name)
    t0 = time.perf_counter()
    pseudo = _pseudo_true(mech, params, sim)
    truth = _true_pairs(np.asarray(params["table"]), np.ones((*GAME, len(GAME)), dtype=bool))
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
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning, message="NUTS diagnostics")
            ordinary = bd.fit(data, mech, FITTED, method="nuts", seed=s, progress=False, **ORDINARY)
            bagged = bd.fit(
                data, mech, FITTED, method="nuts", seed=s, progress=False, robust="bagging", n_bags=n_bags
            )
        record["rows"].append({"seed": s, "ordinary": _row(ordinary), "bagged": _row(bagged)})
        record["summary"] = _summary(record["rows"], truth, pseudo)
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
    parser.add_argument("--report", type=Path, help="recompute the summary of this JSON (rewritten in place)")
    a = parser.parse_args()
    if a.report:
        a.report.write_text(json.dumps(report(a.report), indent=1))
    else:
        main(a.n_datasets, a.n_bags, a.learner, not a.no_timing)
