"""E7 ``svi`` intervals when the learner we fit is not the one that generated the data.

Usage (from the repository root)::

    python benchmarks/e7_svi_learner.py [--setting 40x10] [--seeds 0] [--variants true beta_x0.6 beta_free]

Runs the suite's ``svi`` method (mean-field normal SVI of the ``diml`` model under E7's fan-in
prior, started at its MAP; ``Settings`` defaults) with the learner

- ``true``: the data-generating logit-Q learner, fixed (the suite's ``svi`` row);
- ``beta_x0.6``: beta x ``Settings.wrong_beta`` = 0.6, fixed (``diml_wrong``'s learner): a learner
  that is wrong in the parameter confounded with the payoff scale;
- ``beta_free``: beta sampled under its prior (``Priors().beta``, LogNormal(1, 1)), alpha and eps
  at the truth: the learner uncertainty a user without the true beta would declare.

and scores the posterior's central 90% intervals of the centred payoffs ``u_i(a) - mean_k
u_i(k, a_-i)`` at the suite's 2,000 coverage contexts of the test split (``scoring.coverage_contexts``,
200 draws): coverage, the share of "sure" intervals (excluding 0), the share of sure intervals
whose sign is wrong (the worst output: a confident wrong direction of an incentive), the median
width, and ``diff_mse`` of the posterior-mean point. Where beta is inferred the payoff scale is
confounded with it: the intervals are of the identified product beta x centred payoff and cover
beta_true x the truth (``units``); ``diff_mse`` is then in the prior's payoff units (not
identified); ``payoff_units`` scores the same draws in payoff units. Prints a line per fit and
writes ``benchmarks/results/e7_svi_learner.json`` (a rerun skips the fits already there).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bayes_diml import metrics
from bayes_diml.studies import experiments as X
from bayes_diml.studies.experiments.scoring import coverage_contexts, suite_diff_mse

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "e7_svi_learner.json"
VARIANTS = ("true", "beta_x0.6", "beta_free")


def variant_learner(learner, variant: str, settings: X.Settings):
    """The learner ``svi`` fits under ``variant``."""
    if variant == "true":
        return learner
    if variant == "beta_x0.6":
        return learner.replace(beta=float(np.asarray(learner.beta)) * settings.wrong_beta)
    if variant == "beta_free":
        return learner.replace(beta="infer")
    raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}.")


def interval_scores(draws: np.ndarray, truth: np.ndarray, prob: float = 0.9) -> dict[str, float]:
    """Coverage, sure share, wrong-sign share and width of central intervals: ``draws: float[D, S]``."""
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    sure = (lo > 0) | (hi < 0)
    wrong = sure & (np.sign(lo + hi) != np.sign(truth))
    return {
        "coverage_90": float(np.mean((truth >= lo) & (truth <= hi))),
        "sure_share": float(np.mean(sure)),
        "wrong_sign_share_of_sure": float(wrong.sum() / max(int(sure.sum()), 1)),
        "wrong_sign_count": int(wrong.sum()),
        "sure_count": int(sure.sum()),
        "median_width": float(np.median(hi - lo)),
        "truth_sd": float(np.std(truth)),
    }


def main(argv: list[str] | None = None) -> None:
    """Fit each variant, score its intervals; print a line each and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", default="40x10")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    settings = X.Settings()
    records = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    for seed in args.seeds:
        env = X.make_environment("e7", args.setting, seed, settings)
        joint, agent = coverage_contexts(env.test, settings.coverage_samples, settings.metric_seed)
        truth = np.asarray(metrics.agent_payoff_differences(env.mechanism, env.params, joint, agent))
        for variant in args.variants:
            key = (args.setting, seed, variant)
            if any((r["setting"], r["seed"], r["variant"]) == key for r in records):
                continue
            learner = variant_learner(env.learner, variant, settings)
            t0 = time.perf_counter()
            fit = X.METHOD_FUNCTIONS["svi"](env._replace(learner=learner), settings, seed)
            seconds = time.perf_counter() - t0
            draws = np.asarray(fit.draws(joint, settings.coverage_draws, agent=agent))
            confounded = bool(fit.info.get("confounded", False))
            # confounded: the draws are beta x payoff (identified units), so is the truth they cover
            beta_true = float(np.asarray(env.learner.beta))
            target = truth * beta_true if confounded else truth
            record = {
                "setting": args.setting,
                "seed": seed,
                "variant": variant,
                "beta_true": beta_true,
                "units": "beta x payoff" if confounded else "payoff",
                "diff_mse": suite_diff_mse(env, fit.mechanism, fit.params, settings),
                "fit_seconds": seconds,
                **interval_scores(draws, target),
            }
            if confounded:  # the same posterior in payoff units, whose scale is then the prior's
                raw = np.asarray(fit.draws(joint, settings.coverage_draws, agent=agent, identified=False))
                record["payoff_units"] = interval_scores(raw, truth)
            records.append(record)
            args.out.write_text(json.dumps({"rows": records}, indent=1) + "\n")
            print(
                f"e7 {args.setting} seed {seed} {variant}: diff_mse {record['diff_mse']:.2e}, 90% coverage "
                f"{record['coverage_90']:.3f}, sure {record['sure_share']:.3f}, wrong sign "
                f"{record['wrong_sign_count']} of {record['sure_count']} sure, median width "
                f"{record['median_width']:.3f} (truth sd {record['truth_sd']:.3f}; {record['units']}), "
                f"{seconds:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
