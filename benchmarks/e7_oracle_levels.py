"""What the E7 data allow: the truth's own shape with only its per-action payoff levels fitted.

Usage (from the repository root)::

    python benchmarks/e7_oracle_levels.py [--settings 300x40 ...] [--seeds 0 1 2]

For each E7 setting and seed this fits an *oracle* that knows more than any real estimator: the
true mechanism exactly, except for ``K`` free per-action offsets ``delta: float[K]`` (``delta_a``
added to every counterfactual payoff of own action ``a``). The offsets are fitted by Newton's
method on the exact unrolled log-likelihood of the *training* episodes under the true learner,
with no prior, to convergence (``newton_steps``, ``last_step_rms``). The oracle's only error is
its levels, so its ``diff_mse`` on the row's own 20,000 test contexts (``metrics.diff_mse_contexts``,
``Settings.metric_seed``) is ``mean((delta[a] - delta[a'])^2)``: the error that the sampling noise
of the levels alone forces on an estimator that got everything else right.

``oracle_shrunk`` also pulls the oracle's levels towards their mean by the James-Stein factor that
the *true* level variance gives (a second oracle: no prior can know it). ``corr_with_fit`` is the
correlation between the oracle's centred level errors and those of the saved ``--method`` fit
(``docs/results/results.csv``) on the same contexts: near 1 says the two share one error, the
data's, and no choice of prior or optimiser would remove it.

Prints a line per row and a summary per setting (mean over ``--seeds`` against the published
number), and writes ``benchmarks/results/e7_oracle_levels.json`` (``rows`` and ``settings``); a
rerun reads the rows already there (``--recompute`` redoes them). A row takes ``K`` Hessian-vector
products per Newton step, three steps: about 20 s at (40,10) and 80 s at (300,40) on 2 cores.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
from e7_error_budget import (
    ALL_SETTINGS,
    DEFAULT_CSV,
    cached_rows,
    centred_pinv,
    error_grid,
    metric_contexts,
    offset_derivatives,
    pair_error,
    published_diff_mse,
    rows_by_setting,
    saved_fit,
)

from bayes_diml.studies import experiments as X

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "e7_oracle_levels.json"


def fit_offsets(mechanism, params, learner, data, tol: float = 1e-6, max_steps: int = 6):
    """Maximum-likelihood per-action offsets on top of ``params``, by Newton's method.

    Returns ``(delta: float64[K] centred, cov: float64[K, K] at the optimum, steps, last_step_rms)``.
    """
    delta, steps, rms = np.zeros(mechanism.n_choices), 0, np.inf
    while steps < max_steps and rms >= tol:
        grad, H = offset_derivatives(mechanism, params, learner, data, delta)
        cov = centred_pinv(H)
        move = cov @ grad
        delta, steps = delta + move, steps + 1
        rms = float(np.sqrt(np.mean(move**2)))
    return delta - delta.mean(), cov, steps, rms


def oracle_row(setting: str, seed: int, method: str, csv: Path, settings: X.Settings) -> dict:
    """The oracle's levels on one E7 row, against the truth and against the saved fit."""
    env = X.make_environment("e7", setting, seed, settings)
    K = env.mechanism.n_choices
    delta, cov, steps, last = fit_offsets(env.mechanism, env.params, env.learner, env.train)
    ctx = metric_contexts(env, settings)
    true_levels = ctx.true_grid.mean(axis=0)
    signal, noise = float(np.mean(true_levels**2)), float(np.trace(cov) / K)
    keep = signal / (signal + noise)  # the oracle James-Stein factor
    shrunk = keep * delta - (1 - keep) * true_levels
    out = {
        "setting": setting,
        "seed": seed,
        "method": method,
        "oracle": pair_error(delta, ctx.own_a, ctx.own_b),
        "oracle_shrunk": pair_error(shrunk, ctx.own_a, ctx.own_b),
        "shrink_factor": keep,
        "newton_steps": steps,
        "last_step_rms": last,
        "level_sd_oracle": float(np.sqrt(np.mean(delta**2))),
        "published": published_diff_mse(setting),
    }
    if X.params_path(csv, ("e7", setting, method, seed)).exists():
        err = error_grid(*saved_fit(env, csv, setting, method, seed), ctx)
        rows = np.arange(len(ctx.own_a))
        levels = err.mean(axis=0)
        out["fit_diff_mse"] = float(np.mean((err[rows, ctx.own_a] - err[rows, ctx.own_b]) ** 2))
        out["fit_level_part"] = pair_error(levels, ctx.own_a, ctx.own_b)
        out["corr_with_fit"] = float(np.corrcoef(levels, delta)[0, 1])
    return out


def main(argv: list[str] | None = None) -> None:
    """Fit the oracle's levels per row; print and write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--settings", nargs="+", default=list(ALL_SETTINGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--method", default="diml", help="the saved fit whose level errors are compared")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--recompute", action="store_true", help="redo rows already in --out")
    args = p.parse_args(argv)
    settings = X.Settings()
    records = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    print("setting  seed  oracle    shrunk    fit       fit_level  corr  newton(last step rms)  published")
    keys = [(setting, seed, args.method) for setting in args.settings for seed in args.seeds]
    compute = partial(oracle_row, csv=args.csv, settings=settings)
    for r in cached_rows(records, keys, compute, args.out, args.recompute):
        print(
            f"{r['setting']:>7}  {r['seed']:4d}  {r['oracle']:.2e}  {r['oracle_shrunk']:.2e}  "
            f"{r.get('fit_diff_mse', np.nan):.2e}  {r.get('fit_level_part', np.nan):.2e}  "
            f"{r.get('corr_with_fit', np.nan):.2f}  {r['newton_steps']} ({r['last_step_rms']:.1e})  "
            f"{r['published']:.2e}",
            flush=True,
        )
    summary = []
    for setting, mine in rows_by_setting(records, args.method, args.seeds):
        s = {
            "setting": setting,
            "seeds": sorted(x["seed"] for x in mine),
            "mean_oracle": float(np.mean([x["oracle"] for x in mine])),
            "mean_oracle_shrunk": float(np.mean([x["oracle_shrunk"] for x in mine])),
            "mean_fit": float(np.mean([x.get("fit_diff_mse", np.nan) for x in mine])),
            "mean_corr_with_fit": float(np.mean([x.get("corr_with_fit", np.nan) for x in mine])),
            "published": mine[0]["published"],
        }
        summary.append(s)
        print(
            f"{setting}: seeds {s['seeds']}, oracle {s['mean_oracle']:.2e}, oracle shrunk "
            f"{s['mean_oracle_shrunk']:.2e}, {args.method} {s['mean_fit']:.2e}, level-error corr "
            f"{s['mean_corr_with_fit']:.2f}, published {s['published']:.2e}"
        )
    args.out.write_text(json.dumps({"rows": records, "settings": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
