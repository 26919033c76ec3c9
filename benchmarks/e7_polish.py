"""Polish saved E7 ``diml`` Adam fits with L-BFGS: the second phase of the method, from the same point.

Usage (from the repository root)::

    python benchmarks/e7_polish.py [--csv docs/results/results.csv] [--settings 300x40 ...] [--seeds 0 1 2]

``diml`` on E7 is 1,500 Adam steps under the fan-in prior, then up to ``Settings.fan_in_polish_e7``
L-BFGS steps from Adam's endpoint until the convergence test passes (``MAPConfig.polish_steps``).
A row saved before polishing existed holds the Adam endpoint (its ``.npz`` has no
``info.polish_steps``); this script runs the L-BFGS phase from it exactly as the method does
(``fit_map_spec`` with ``optimizer="lbfgs"``, the suite's chunk, a fresh optimiser state), rescores
the row, adds the polish time to ``fit_seconds`` and rewrites the row and its ``.npz``. Rows already
polished are skipped. Prints one line per row and writes ``benchmarks/results/e7_polish.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from rescore_cfkl import saved_params

from bayes_diml.inference import MAPConfig
from bayes_diml.inference.map import fit_map_spec
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.mechanisms import SymmetricCount
from bayes_diml.models import params_from_sites, sites_from_params
from bayes_diml.studies import experiments as X
from bayes_diml.studies.experiments.fitting import MethodFit, map_options, suite_prior, suite_priors
from bayes_diml.studies.experiments.scoring import evaluate

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent / "docs" / "results" / "results.csv"
DEFAULT_OUT = HERE / "results" / "e7_polish.json"
SETTINGS = ("40x10", "80x20", "120x25", "200x30", "300x40")


def polish(env, seed: int, saved: dict, settings: X.Settings) -> tuple[MethodFit, dict]:
    """Run the L-BFGS phase of ``diml`` on E7 ``env`` from a saved Adam fit; return the fit and a record."""
    family = SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
    st, scale = suite_prior(env, settings)  # diml's prior and optimiser settings on E7
    spec = ModelSpec.build(env.train, family, env.learner, suite_priors(st, scale))
    start = {
        k: jax.numpy.asarray(v) for k, v in sites_from_params(family, saved_params(family, saved)).items()
    }
    # the polish of fit_map_spec(MAPConfig(polish_steps=...)) with the suite's E7 options
    options = map_options(env, st)
    config = MAPConfig(
        optimizer="lbfgs", num_steps=options["polish_steps"], num_restarts=1, chunk=options["chunk"]
    )
    t0 = time.perf_counter()
    result = fit_map_spec(spec, jax.random.key(seed), config, progress=False, init=start)
    seconds = time.perf_counter() - t0
    params = params_from_sites(family, {k: result.values[k] for k in start})
    info = {
        "converged": bool(result.converged),
        "log_joint": float(result.log_joint),
        "polish_steps": int(result.step),
        "adam_log_joint": float(saved["info.log_joint"]),
    }
    fit = MethodFit(family, params, None, None, info)
    return fit, {**info, "polish_seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    """Polish, rescore and rewrite the rows; print a line each and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    settings = X.Settings()
    records = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    for setting in args.settings:
        for seed in args.seeds:
            df = X.load_results(args.csv)
            here = (
                (df.experiment == "e7") & (df.setting == setting) & (df.method == "diml") & (df.seed == seed)
            )
            path = X.params_path(args.csv, ("e7", setting, "diml", seed))
            if not here.any() or not path.exists():
                continue
            saved = X.load_params(path)
            if "info.polish_steps" in saved:
                continue  # polished already
            before = float(df.loc[here, "diff_mse"].iloc[0])
            env = X.make_environment("e7", setting, seed, settings)
            fit, record = polish(env, seed, saved, settings)
            record = {"setting": setting, "seed": seed, **record}
            scores = evaluate(env, fit, settings)
            record.update(
                adam_diff_mse=before, diff_mse=scores["diff_mse"], cfkl_params=scores["cfkl_params"]
            )
            df.loc[here, ["diff_mse", "cfkl_params"]] = [scores["diff_mse"], scores["cfkl_params"]]
            df.loc[here, "fit_seconds"] += record["polish_seconds"]
            X.save_params(path, fit)
            df.to_csv(args.csv, index=False)
            records = [r for r in records if (r["setting"], r["seed"]) != (setting, seed)] + [record]
            args.out.write_text(json.dumps({"rows": records}, indent=1) + "\n")
            print(
                f"e7 {setting} seed {seed}: log joint {record['adam_log_joint']:.1f} -> "
                f"{record['log_joint']:.1f} "
                f"after {record['polish_steps']} L-BFGS steps ({record['polish_seconds']:.0f} s), "
                f"converged {record['converged']}; diff_mse {before:.3e} -> {scores['diff_mse']:.3e}",
                flush=True,
            )
    if records:
        print(f"mean diff_mse change: {np.mean([r['diff_mse'] / r['adam_diff_mse'] for r in records]):.3f}x")


if __name__ == "__main__":
    main()
