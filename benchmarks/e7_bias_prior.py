"""E7 ``diml`` refitted with its layers' biases under the fan-in prior too: test error against the saved row.

Usage (from the repository root)::

    python benchmarks/e7_bias_prior.py [--setting 300x40] [--seeds 0 1 2] [--prior fan_in_bias 1.0]

``diml`` on E7 puts N(0, 1 / fan_in) on each weight matrix and N(0, 1) on the biases
(``Settings.e7_prior = ("fan_in", 1.0)``). This script runs the same method, from the same
start (init key = seed) and with the same optimiser recipe (``fan_in_steps_e7`` Adam steps, then
up to ``fan_in_polish_e7`` L-BFGS steps), under ``--prior`` (default ``("fan_in_bias", 1.0)``:
each bias N(0, 1 / fan_in) of its layer, the scale family of PyTorch's ``nn.Linear`` init), and
compares it with the saved ``diml`` row of ``docs/results/results.csv`` on the 20,000 ``diff_mse``
test contexts (``metrics.diff_mse_contexts``, ``Settings.metric_seed``). This is a diagnostic on
test data: it says how much the bias prior can move the error, it does not choose a prior (the
suite chooses priors on validation episodes, ``diml_prior_val``). Each fit is saved under
``benchmarks/results/e7_bias_prior_params/`` as it finishes (a rerun reads it). Prints a line per
seed and writes ``benchmarks/results/e7_bias_prior.json``.
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
DEFAULT_OUT = HERE / "results" / "e7_bias_prior.json"


def bias_rms(params: dict) -> list[float]:
    """Root mean square of each hidden layer's bias (the output layer's is a gauge, never fitted)."""
    return [float(np.sqrt(np.mean(np.square(np.asarray(layer["b"]))))) for layer in params["layers"][:-1]]


def main(argv: list[str] | None = None) -> None:
    """Fit under the other prior, score both fits on the test contexts; print a table and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--setting", default="300x40")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--prior", nargs=2, default=["fan_in_bias", "1.0"], metavar=("WEIGHT_SCALING", "SCALE"))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    prior = (args.prior[0], float(args.prior[1]))
    settings = X.Settings()
    other = settings.replace(e7_prior=prior)  # checks the prior's name and scale
    params_dir = args.out.with_name(args.out.stem + "_params")
    params_dir.mkdir(parents=True, exist_ok=True)
    records = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    for seed in args.seeds:
        env = X.make_environment("e7", args.setting, seed, settings)
        family = SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
        saved = X.load_params(X.params_path(args.csv, ("e7", args.setting, "diml", seed)))
        path = params_dir / f"e7_{args.setting}_seed{seed}_{prior[0]}_{prior[1]:g}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            fit = X.METHOD_FUNCTIONS["diml"](env, other, seed)
            X.save_params(path, fit._replace(info={**fit.info, "fit_seconds": time.perf_counter() - t0}))
        new = X.load_params(path)
        fits = {"saved": saved_params(family, saved), "new": saved_params(family, new)}
        ja, jb, agent = metrics.diff_mse_contexts(env.test, settings.diff_samples, settings.metric_seed)
        truth = metrics.context_payoff_differences(env.mechanism, env.params, ja, jb, agent)
        mse = {
            k: float(np.mean((metrics.context_payoff_differences(family, f, ja, jb, agent) - truth) ** 2))
            for k, f in fits.items()
        }
        record = {
            "setting": args.setting,
            "seed": seed,
            "prior": list(prior),
            "diff_mse_diml": mse["saved"],
            "diff_mse_prior": mse["new"],
            "ratio": mse["new"] / mse["saved"],
            "log_joint_prior": float(new["info.log_joint"]),
            "converged_prior": bool(new["info.converged"]),
            "polish_steps_prior": int(new["info.polish_steps"]),
            "fit_seconds_prior": float(new.get("info.fit_seconds", np.nan)),
            "bias_rms_diml": bias_rms(fits["saved"]),
            "bias_rms_prior": bias_rms(fits["new"]),
            "bias_rms_truth": bias_rms(env.params),
        }
        records = [
            r for r in records if (r["setting"], r["seed"], r["prior"]) != (args.setting, seed, list(prior))
        ]
        records.append(record)
        args.out.write_text(json.dumps({"rows": records}, indent=1) + "\n")
        print(
            f"e7 {args.setting} seed {seed}: diff_mse diml {mse['saved']:.3e}, {prior[0]} {prior[1]:g} "
            f"{mse['new']:.3e} ({record['ratio']:.3f}x); converged {record['converged_prior']} after "
            f"{record['polish_steps_prior']} L-BFGS steps, {record['fit_seconds_prior']:.0f} s; bias rms "
            f"diml {np.round(record['bias_rms_diml'], 4).tolist()}, "
            f"prior {np.round(record['bias_rms_prior'], 4).tolist()}, "
            f"truth {np.round(record['bias_rms_truth'], 4).tolist()}",
            flush=True,
        )
    mine = [r for r in records if r["setting"] == args.setting and r["prior"] == list(prior)]
    if mine:
        a = np.mean([r["diff_mse_diml"] for r in mine])
        b = np.mean([r["diff_mse_prior"] for r in mine])
        print(f"mean over {len(mine)} seeds: diml {a:.3e}, {prior[0]} {prior[1]:g} {b:.3e} ({b / a:.3f}x)")


if __name__ == "__main__":
    main()
