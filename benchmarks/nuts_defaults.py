"""Do NUTS fits with default settings pass their own diagnostics?

Usage: ``python benchmarks/nuts_defaults.py [--label NAME] [--n N] [--option KEY=VALUE ...]``.

Draws ``N`` (default 40) data sets from the prior of a 2 x 3 Tabular game (20 episodes x 30
steps; LogitQ with alpha and eps inferred, beta = 1 fixed; ``Priors()``), the way the SBC study
does (``bayes_diml.studies.calibration.prior_datasets``), and fits each with
``bd.fit(..., method="nuts")`` at its default settings (``--option`` overrides one
``NUTSConfig`` field, e.g. ``--option num_chains=4``). Counts the fits that raise a
``ConvergenceWarning`` (R-hat > 1.01, bulk ESS < 100 per chain or divergences on the identified
quantities) and records max R-hat, min bulk ESS, divergences and seconds per fit. Prints a
table and adds the run under ``--label`` to ``benchmarks/results/nuts_defaults.json`` (after
every data set, so a partial run keeps its rows).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConvergenceWarning
from bayes_diml.models import Priors
from bayes_diml.studies.calibration.prior import prior_datasets

OUT = Path(__file__).resolve().parent / "results" / "nuts_defaults.json"
GAME = (2, 3)
M, T = 20, 30
BETA = 1.0
SEED = 0


def _value(text: str):
    """Parse an option value: int, float, bool or string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _fit_one(mech, actions: np.ndarray, seed: int, options: dict) -> dict:
    data = bd.Trajectories(actions, GAME)
    learner = bd.learners.LogitQ(alpha="infer", beta=BETA, eps="infer")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = bd.fit(data, mech, learner, method="nuts", seed=seed, progress=False, **options)
    seconds = time.perf_counter() - t0
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    info = post.info
    return {
        "warned": bool(messages),
        "warning": messages[0] if messages else None,
        "max_r_hat": float(info["max_r_hat"]),
        "min_ess_bulk": float(info["min_ess_bulk"]),
        "divergences": int(info["divergences"]),
        "init": info.get("init"),
        "init_fallback_chains": info.get("init_fallback_chains"),
        "chains": int(post.idata["posterior"].sizes["chain"]),
        "draws": int(post.idata["posterior"].sizes["draw"]),
        "seconds": seconds,
    }


def summarise(rows: list[dict]) -> dict:
    """Counts and quantiles over the fits of one run."""
    r_hat = np.array([r["max_r_hat"] for r in rows])
    ess = np.array([r["min_ess_bulk"] for r in rows])
    secs = np.array([r["seconds"] for r in rows])
    later = secs[1:] if len(secs) > 1 else secs  # the first fit also compiles
    return {
        "fits": len(rows),
        "warned": int(sum(r["warned"] for r in rows)),
        "pass_rate": float(np.mean([not r["warned"] for r in rows])),
        "max_r_hat": float(r_hat.max()),
        "r_hat_over_1_01": int((r_hat > 1.01).sum()),
        "min_ess_bulk": float(ess.min()),
        "median_ess_bulk": float(np.median(ess)),
        "ess_too_low": int(sum(r["min_ess_bulk"] < 100 * r["chains"] for r in rows)),
        "fits_with_divergences": int(sum(r["divergences"] > 0 for r in rows)),
        "median_seconds": float(np.median(later)),
        "first_fit_seconds": float(secs[0]),
    }


def _table(runs: dict) -> str:
    head = "| run | fits | warned | max R-hat | R-hat > 1.01 | min ESS | ESS low | div. fits | s/fit |"
    lines = [head, "|" + "---|" * 9]
    for label, run in runs.items():
        s = run["summary"]
        lines.append(
            f"| {label} | {s['fits']} | {s['warned']} | {s['max_r_hat']:.3f} | {s['r_hat_over_1_01']} | "
            f"{s['min_ess_bulk']:.0f} | {s['ess_too_low']} | {s['fits_with_divergences']} | "
            f"{s['median_seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="defaults")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--report", action="store_true", help="print the table of the saved runs")
    args = parser.parse_args()
    runs = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.report:
        print(_table(runs))
        return
    options = {k: _value(v) for k, v in (o.split("=", 1) for o in args.option)}
    mech = mechanisms.Tabular(GAME)
    _, actions, _ = prior_datasets(mech, Priors(), {"beta": BETA}, args.n, M, T, SEED)
    rows: list[dict] = []
    for i in range(args.n):
        rows.append(_fit_one(mech, actions[i], i, options))
        r = rows[-1]
        print(
            f"{i:3d} warned={r['warned']!s:5} R-hat={r['max_r_hat']:.3f} ESS={r['min_ess_bulk']:.0f} "
            f"div={r['divergences']} {r['seconds']:.1f}s",
            flush=True,
        )
        runs = json.loads(OUT.read_text()) if OUT.exists() else {}
        runs[args.label] = {
            "setting": {
                "game": list(GAME),
                "M": M,
                "T": T,
                "beta": BETA,
                "alpha": "infer",
                "eps": "infer",
                "priors": "Priors()",
                "seed": SEED,
                "options": options,
            },  # fmt: skip
            "machine": {"python": platform.python_version(), "processor": platform.machine()},
            "summary": summarise(rows),
            "rows": rows,
        }
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(runs, indent=1))
    print(_table({args.label: runs[args.label]}))


if __name__ == "__main__":
    main()
