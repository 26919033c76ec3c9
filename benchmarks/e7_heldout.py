"""E7 held-out log-likelihood of the saved fits: does the likelihood of unseen play tell the priors apart?

Usage (from the repository root)::

    python benchmarks/e7_heldout.py [--csv docs/results/results.csv] [--settings 300x40 ...] [--seeds 0 1 2]

For every E7 setting and seed with saved ``diml`` (fan-in prior) and ``diml_constant``
(N(0, 0.3^2), 500 steps) fits, scores the test split's play under each fit and under the
truth: the log-likelihood per scored action, and the paired difference ``diml - diml_constant``
with its standard error over test episodes (the statistic ``diml_prior_val`` uses on its
validation split). A diagnostic, never a choice: it reads the test split. Prints one line per
row and writes ``benchmarks/results/e7_heldout.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rescore_cfkl import saved_params

from bayes_diml.likelihood import log_likelihood
from bayes_diml.mechanisms import SymmetricCount
from bayes_diml.studies import experiments as X
from bayes_diml.studies.experiments.validation import gain_standard_error

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent / "docs" / "results" / "results.csv"
DEFAULT_OUT = HERE / "results" / "e7_heldout.json"
SETTINGS = ("40x10", "80x20", "120x25", "200x30", "300x40")
METHODS = ("diml", "diml_constant")


def per_episode(mechanism, params, env) -> np.ndarray:
    """float64[M_test]: each test episode's log-likelihood (summed over steps and agents)."""
    per_step = log_likelihood(mechanism, params, env.learner, env.test, per_step=True)
    return np.asarray(per_step, dtype=np.float64).sum(axis=(1, 2))


def main(argv: list[str] | None = None) -> None:
    """Score the saved fits; print a line each and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    settings = X.Settings()
    df = X.load_results(args.csv)
    rows = []
    for setting in args.settings:
        for seed in args.seeds:
            paths = {m: X.params_path(args.csv, ("e7", setting, m, seed)) for m in METHODS}
            if not all(path.exists() for path in paths.values()):
                continue
            env = X.make_environment("e7", setting, seed, settings)
            family = SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
            n_scored = int(env.test.n_scored)
            ll = {"truth": per_episode(env.mechanism, env.params, env)}
            for m, path in paths.items():
                ll[m] = per_episode(family, saved_params(family, X.load_params(path)), env)
            here = (df.experiment == "e7") & (df.setting == setting) & (df.seed == seed)
            row = {
                "setting": setting,
                "seed": seed,
                "n_scored": n_scored,
                "ll_per_action": {k: float(v.sum()) / n_scored for k, v in ll.items()},
                "gain": float((ll["diml"] - ll["diml_constant"]).sum()) / n_scored,
                "gain_se": gain_standard_error(ll["diml"], ll["diml_constant"], n_scored),
                "diff_mse": {m: float(df[here & (df.method == m)].diff_mse.iloc[0]) for m in METHODS},
            }
            rows.append(row)
            a = row["ll_per_action"]
            print(
                f"e7 {setting} seed {seed}: test log-lik per action truth {a['truth']:.6f}, "
                f"diml {a['diml']:.6f}, diml_constant {a['diml_constant']:.6f}; "
                f"diml - diml_constant {row['gain']:+.2e} (SE {row['gain_se']:.1e}, "
                f"{row['gain'] / row['gain_se']:+.1f} SE); diff_mse {row['diff_mse']['diml']:.2e} vs "
                f"{row['diff_mse']['diml_constant']:.2e}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "E7 test-split log-likelihood per action, diml (fan-in) vs diml_constant",
        "rows": rows,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
