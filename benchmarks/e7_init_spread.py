"""How much of E7 ``diml``'s error is its random start: refit from other inits, score each and their mean.

Usage (from the repository root)::

    python benchmarks/e7_init_spread.py [--setting 300x40] [--seeds 0 1 2] [--starts 1]

For each seed, the ``diml`` row of ``docs/results/results.csv`` (saved params) is start 0; ``--starts``
more fits of the same method on the same data use the init keys ``seed + 1000 j``. Each fit is
saved under ``benchmarks/results/e7_init_spread_params/`` as it finishes (a rerun reads it). On
the 20,000 test contexts of ``diff_mse`` (``metrics.diff_mse_contexts``, ``Settings.metric_seed``)
the script reports each fit's diff_mse, the diff_mse of the fits' mean payoff difference (an
ensemble of MAPs; never above the fits' mean diff_mse, by convexity) and the mean squared
difference between two fits' payoff differences (the part of the error that a change of start
moves), with each fit's log joint and convergence flag. Prints a line per seed and writes
``benchmarks/results/e7_init_spread.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rescore_cfkl import saved_params

from bayes_diml import metrics
from bayes_diml.mechanisms import SymmetricCount
from bayes_diml.studies import experiments as X

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent / "docs" / "results" / "results.csv"
DEFAULT_OUT = HERE / "results" / "e7_init_spread.json"


def main(argv: list[str] | None = None) -> None:
    """Fit the extra starts, score every fit and the ensemble; print a table and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--setting", default="300x40")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--starts", type=int, default=1, help="fits besides the saved diml row")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    settings = X.Settings()
    params_dir = args.out.with_name(args.out.stem + "_params")
    params_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for seed in args.seeds:
        env = X.make_environment("e7", args.setting, seed, settings)
        family = SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
        row = X.params_path(args.csv, ("e7", args.setting, "diml", seed))
        saved = X.load_params(row)
        fits = [saved_params(family, saved)]
        seconds = [None]  # the row's fit time is in the CSV (fit_seconds)
        log_joint = [float(saved["info.log_joint"])]
        converged = [bool(saved["info.converged"])]
        for j in range(1, args.starts + 1):
            path = params_dir / f"e7_{args.setting}_diml_seed{seed}_start{j}.npz"
            if not path.exists():
                t0 = time.perf_counter()
                fit = X.fit_diml(env, settings, seed + 1000 * j)
                X.save_params(path, fit._replace(info={**fit.info, "fit_seconds": time.perf_counter() - t0}))
            saved = X.load_params(path)
            fits.append(saved_params(family, saved))
            seconds.append(float(saved["info.fit_seconds"]))
            log_joint.append(float(saved["info.log_joint"]))
            converged.append(bool(saved["info.converged"]))
        ja, jb, agent = metrics.diff_mse_contexts(env.test, settings.diff_samples, settings.metric_seed)
        truth = metrics.context_payoff_differences(env.mechanism, env.params, ja, jb, agent)
        each = np.stack(
            [metrics.context_payoff_differences(family, f, ja, jb, agent) for f in fits]
        )  # [starts + 1, S]
        mse = ((each - truth) ** 2).mean(axis=1)
        ensemble = float(((each.mean(axis=0) - truth) ** 2).mean())
        spread = float(np.mean([((each[0] - e) ** 2).mean() for e in each[1:]]))
        record = {
            "setting": args.setting,
            "seed": seed,
            "diff_mse_each": mse.tolist(),
            "diff_mse_ensemble": ensemble,
            "ensemble_over_mean": ensemble / float(mse.mean()),
            "start_spread": spread,
            "log_joint_each": log_joint,
            "converged_each": converged,
            "fit_seconds": seconds,
        }
        records.append(record)
        print(
            f"e7 {args.setting} seed {seed}: diff_mse per start "
            + ", ".join(f"{v:.3e}" for v in mse)
            + f"; ensemble {ensemble:.3e} ({record['ensemble_over_mean']:.2f}x their mean); "
            f"mean sq. difference between starts {spread:.3e}; log joint "
            + ", ".join(f"{v:.1f}" for v in log_joint)
            + f"; converged {converged}",
            flush=True,
        )
    args.out.write_text(json.dumps({"rows": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
