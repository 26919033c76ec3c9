"""Do the vectorised SBC engine and ``bd.fit`` (the path users run) give the same ranks?

The ``vmap`` engine of :func:`bayes_diml.studies.calibration.sbc` re-implements the model with
the data as traced arguments and starts NUTS at the prior median; the ``fit`` engine runs
:func:`bayes_diml.fit` per data set with the user's defaults (4 chains x (500 + 1000), dispersed
starts, automatic mass matrix). Both see the same prior draws and data sets (same seed), so
for each data set and quantity the two ranks of the truth estimate the same posterior CDF q at
the truth. If both engines sample that posterior, the ranks among R = ``n_ranks`` thinned draws
differ by Monte Carlo noise only, with standard deviation about sqrt(2 R q (1 - q)) (both
Binomial(R, q)); a difference beyond 4 of those standard deviations (q estimated from the two
ranks, floored at 1/R) has probability < 1e-4 per pair under agreement.

Usage (from the repository root)::

    python benchmarks/sbc_engines.py --n 100 --work W           # 2 x 2 Tabular, 10 episodes x 20 steps
    python benchmarks/sbc_engines.py --n 100 --work W --finished  # compare the fit engine's finished chunks

Prints per quantity: rank-uniformity p-values and 90% coverage of each engine, the Spearman
correlation of the paired ranks, their mean absolute difference and the number of pairs beyond
4 sd; writes ``benchmarks/results/sbc_engines.json``. Both runs resume from ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from bayes_diml import mechanisms
from bayes_diml.studies.calibration import SBCResult, sbc

OUT = Path(__file__).parent / "results" / "sbc_engines.json"
#: ``bd.fit``'s NUTS defaults, written out (the ``fit`` engine alone would use 2 chains x 300 + 300).
FIT_DEFAULTS = {"num_warmup": 500, "num_samples": 1000, "num_chains": 4}


def paired(r_vmap: np.ndarray, r_fit: np.ndarray, n_ranks: int) -> dict[str, float]:
    """Agreement of two engines' ranks of the same truths (see the module docstring)."""
    q = np.clip((r_vmap + r_fit) / (2.0 * n_ranks), 1.0 / n_ranks, 1.0 - 1.0 / n_ranks)
    sd = np.sqrt(2.0 * n_ranks * q * (1.0 - q))
    diff = np.abs(r_vmap.astype(float) - r_fit)
    return {
        "spearman": float(spearmanr(r_vmap, r_fit).statistic),
        "mean_abs_diff": float(diff.mean()),
        "mean_mc_sd": float(sd.mean()),
        "beyond_4sd": int((diff > 4 * sd).sum()),
    }


def finished_chunks(partial: Path, like: SBCResult) -> tuple[SBCResult, float]:
    """The fit engine's finished chunks as an SBCResult (data sets in index order), and their seconds."""
    records = [json.loads(line) for line in partial.read_text().splitlines()[1:]]
    if not records:
        raise SystemExit(f"{partial}: no finished chunk yet")
    idx = np.concatenate([r["idx"] for r in records])
    order = np.argsort(idx)
    cat = lambda key, q: np.concatenate([np.asarray(r[key][q]) for r in records])[order]  # noqa: E731
    quantities = list(records[0]["ranks"])
    result = SBCResult(
        setup={**like.setup, "data_sets": idx[order].tolist()},
        ranks={q: cat("ranks", q).astype(int) for q in quantities},
        inside={q: cat("inside", q).astype(bool).reshape(len(idx), -1) for q in quantities},
        truth={q: cat("truth", q).astype(float) for q in quantities},
        identified=like.identified,
        n_ranks=like.n_ranks,
        levels=like.levels,
    )
    return result, float(sum(r["seconds"] for r in records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50, help="data sets (prior draws)")
    parser.add_argument("--work", default=None, help="folder for resumable partial results")
    parser.add_argument(
        "--finished",
        action="store_true",
        help="do not run the fit engine: compare the data sets its finished chunks hold in --work",
    )
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="sbc-engines-"))
    work.mkdir(parents=True, exist_ok=True)
    mech = mechanisms.Tabular((2, 2))
    common = dict(n_datasets=args.n, M=10, T=20, method="nuts", seed=0, progress=True)
    results, seconds = {}, {}
    for engine, options in (("vmap", {}), ("fit", FIT_DEFAULTS)):
        if engine == "fit" and args.finished:
            partial = work / "fit.json.partial.jsonl"
            results[engine], seconds[engine] = finished_chunks(partial, results["vmap"])
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # per-fit diagnostics are recorded by sbc itself
            results[engine] = sbc(mech, engine=engine, out=work / f"{engine}.json", **common, **options)
        seconds[engine] = time.perf_counter() - t0
    v, f = results["vmap"], results["fit"]
    if "data_sets" in f.setup:  # the fit engine's finished data sets only
        keep = np.asarray(f.setup["data_sets"])
        v = SBCResult(
            setup=v.setup,
            ranks={q: np.asarray(r)[keep] for q, r in v.ranks.items()},
            inside={q: np.asarray(r)[keep] for q, r in v.inside.items()},
            truth={q: np.asarray(r)[keep] for q, r in v.truth.items()},
            identified=v.identified,
            n_ranks=v.n_ranks,
            levels=v.levels,
        )
    rows = []
    for q in v.quantities:
        cov_v, cov_f = v.coverage()[q], f.coverage()[q]
        row = {
            "quantity": q,
            "identified": bool(v.identified.get(q, True)),
            "uniformity_p_vmap": min(v.uniformity()[q].values()),
            "uniformity_p_fit": min(f.uniformity()[q].values()),
            "coverage90_vmap": float(cov_v["0.9"]["rate"]),
            "coverage90_fit": float(cov_f["0.9"]["rate"]),
            **paired(np.asarray(v.ranks[q]), np.asarray(f.ranks[q]), v.n_ranks),
        }
        rows.append(row)
    print(f"{'quantity':<26} {'ident':>5} {'p_vmap':>7} {'p_fit':>7} {'cov_vmap':>8} {'cov_fit':>8} "
          f"{'rho':>6} {'|d|':>6} {'mc_sd':>6} {'>4sd':>5}")  # fmt: skip
    for r in rows:
        print(
            f"{r['quantity']:<26} {r['identified']!s:>5} {r['uniformity_p_vmap']:7.3f} "
            f"{r['uniformity_p_fit']:7.3f} {r['coverage90_vmap']:8.2f} {r['coverage90_fit']:8.2f} "
            f"{r['spearman']:6.3f} {r['mean_abs_diff']:6.1f} {r['mean_mc_sd']:6.1f} {r['beyond_4sd']:5d}"
        )
    print({k: f"{s:.0f} s" for k, s in seconds.items()})
    OUT.write_text(
        json.dumps(
            {
                "command": f"python benchmarks/sbc_engines.py --n {args.n}"
                + (" --finished" if args.finished else ""),
                "setting": "2 x 2 Tabular, Priors(), alpha/beta/eps inferred, 10 episodes x 20 steps, seed 0",
                "fit_engine_options": FIT_DEFAULTS,
                "vmap_engine_options": v.setup["options"],
                "n_datasets": v.n_datasets,
                "n_ranks": v.n_ranks,
                "cpu_count": os.cpu_count(),
                # wall seconds of this invocation (a resumed run counts only what it ran)
                "seconds": seconds,
                "fit_engine_seconds_per_data_set": seconds["fit"] / max(f.n_datasets, 1),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
