"""Where the E7 ``diml`` test error comes from: per-action payoff levels against their sampling noise.

Usage (from the repository root)::

    python benchmarks/e7_error_budget.py [--settings 300x40 ...] [--seeds 0 1 2]

For each saved E7 row of ``--method`` (default ``diml``) in ``docs/results/results.csv`` this
splits the row's ``diff_mse`` on its own 20,000 test contexts (``metrics.diff_mse_contexts``,
``Settings.metric_seed``) into

- the **level** part: the error of each own action's payoff *level*, the mean over the contexts
  of the fitted-minus-true payoff of action ``a`` (centred over actions: only differences are
  identified), the part a per-action constant would remove;
- the **shape** part: what is left, the error in how payoffs vary with the opponents' counts.

It then asks whether the level part is sampling noise. The Hessian of the *training*
log-likelihood in per-action offsets ``delta: float[K]`` (``delta_a`` added to every
counterfactual payoff of action ``a``, the exact unrolled likelihood, at the fitted params)
gives the Fisher covariance of the levels with the rest of the network held fixed, a lower bound
on their sampling covariance. Reported: the level part that covariance predicts, and the
observed levels' chi-square against it (``K - 1`` degrees of freedom, the gauge removed); a
chi-square per degree of freedom near 1 says the level errors are the size of their sampling
noise. ``level_part_free_offsets`` is the level part after one Newton step of the offsets on the
likelihood alone (the levels freed from the prior, the rest of the network fixed): if the prior
biased the levels, freeing them would lower it. ``shrinkage_gain_bound`` is the most any prior
could take off the level part by pulling the levels together (oracle James-Stein: noise variance /
(noise + true level variance)).

Per setting (over ``--seeds``) it also reports the pooled chi-square and the chance that
an estimator whose level errors are exactly their Fisher noise (with each row's observed shape part)
has a mean diff_mse over those seeds above the published number. Prints a line per row and writes
``benchmarks/results/e7_error_budget.json`` (``rows`` and ``settings``); a rerun reads the rows
already there (``--recompute`` redoes them). Each row takes about half a minute on 2 cores (the
offsets' Hessian is ``K`` Hessian-vector products).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from rescore_cfkl import saved_params
from scipy import stats

from bayes_diml import counterfactual, likelihood, metrics
from bayes_diml.mechanisms import SymmetricCount
from bayes_diml.studies import experiments as X
from bayes_diml.studies.experiments.scoring import suite_diff_mse

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent / "docs" / "results" / "results.csv"
DEFAULT_OUT = HERE / "results" / "e7_error_budget.json"
ALL_SETTINGS = ("40x10", "80x20", "120x25", "200x30", "300x40")


def opponent_counts(joint: np.ndarray, agent: np.ndarray, K: int) -> np.ndarray:
    """Counts of the other agents' actions at each context: float32[S, K] (``joint: int[S, n]``)."""
    rows = np.arange(len(agent))
    counts = np.bincount((rows[:, None] * K + joint).ravel(), minlength=len(agent) * K).reshape(-1, K)
    counts[rows, joint[rows, agent]] -= 1
    return counts.astype(np.float32)


def payoff_grids(mechanism, params, counts: np.ndarray) -> np.ndarray:
    """Payoff of every own action at each context's opponent counts: float64[S, K]."""
    K = counts.shape[1]
    out = mechanism.count_payoffs(params, jnp.arange(K)[None, :], jnp.asarray(counts)[:, None, :])
    return np.asarray(out, dtype=np.float64)


class Contexts(NamedTuple):
    """A row's diff_mse test contexts, reduced to what a symmetric count game's payoffs need."""

    own_a: np.ndarray  # int[S]: agent i's own action in the first joint action
    own_b: np.ndarray  # int[S]: and in the second
    counts: np.ndarray  # float32[S, K]: the opponents' action counts (the same in both)
    true_grid: np.ndarray  # float64[S, K]: the truth's payoff of every own action, centred over them


def metric_contexts(env, settings: X.Settings) -> Contexts:
    """The 20,000 test contexts of ``metrics.diff_mse_contexts`` (``Settings.metric_seed``) of ``env``."""
    ja, jb, agent = metrics.diff_mse_contexts(env.test, settings.diff_samples, settings.metric_seed)
    rows = np.arange(len(agent))
    counts = opponent_counts(
        ja, agent, env.mechanism.n_choices
    )  # ja and jb differ only in agent i's own action
    true_grid = payoff_grids(env.mechanism, env.params, counts)
    true_grid -= true_grid.mean(axis=1, keepdims=True)
    return Contexts(ja[rows, agent], jb[rows, agent], counts, true_grid)


def error_grid(mechanism, params, ctx: Contexts) -> np.ndarray:
    """Fitted minus true payoff of every own action at each context, centred over them: float64[S, K]."""
    err = payoff_grids(mechanism, params, ctx.counts)
    err -= err.mean(axis=1, keepdims=True) + ctx.true_grid
    return err


def pair_error(err: np.ndarray, own_a: np.ndarray, own_b: np.ndarray) -> float:
    """Mean of ``(err[a] - err[a'])^2`` over the contexts' own-action pairs (``err: float[K]``): float."""
    return float(np.mean((err[own_a] - err[own_b]) ** 2))


def saved_fit(env, csv: Path, setting: str, method: str, seed: int):
    """The saved E7 ``method`` fit of a row: ``(SymmetricCount family, params)``."""
    family = SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
    return family, saved_params(family, X.load_params(X.params_path(csv, ("e7", setting, method, seed))))


def centred_pinv(H: np.ndarray) -> np.ndarray:
    """Covariance ``(-H)^+`` restricted to centred offsets (the gauge removed): float64[K, K]."""
    K = H.shape[0]
    centre = np.eye(K) - 1.0 / K
    return centre @ np.linalg.pinv(-H, rcond=1e-8, hermitian=True) @ centre


def published_diff_mse(setting: str) -> float:
    """The published DIML diff_mse of an E7 setting (NaN where none)."""
    return X.PUBLISHED.get(("e7", setting, "diml"), (np.nan, np.nan))[0]


def _offset_log_lik(delta, cf, actions, mask, learner):
    """Log-likelihood of ``actions: int[M, T, n]`` given ``cf + delta``: float.

    ``delta: float[K]`` is added to the counterfactual payoffs ``cf: float[M, T-1, n, K]``;
    ``mask: bool[n, K]``; ``learner`` is static (hashable).
    """
    per = likelihood.scan_log_policies(
        learner, cf + delta, actions[:, :-1], mask, next_actions=actions[:, 1:]
    )
    return per.sum()


_offset_grad = jax.jit(jax.grad(_offset_log_lik), static_argnames="learner")


@partial(jax.jit, static_argnames="learner")
def _offset_hvp(delta, v, cf, actions, mask, learner):
    """The Hessian of :func:`_offset_log_lik` in ``delta`` times ``v: float[K]``."""
    return jax.jvp(lambda d: jax.grad(_offset_log_lik)(d, cf, actions, mask, learner), (delta,), (v,))[1]


def offset_derivatives(mechanism, params, learner, data, delta=None) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the log-likelihood of ``data`` in per-action payoff offsets at ``params``.

    The derivatives are taken at offsets ``delta: float[K]`` (zeros when None), each added to every
    counterfactual payoff of its own action. Returns ``(float64[K], float64[K, K])``.
    """
    K = mechanism.n_choices
    cf = counterfactual.counterfactual_payoffs(mechanism, params, data)  # float[M, T-1, n, K]
    args = (cf, jnp.asarray(data.actions), jnp.asarray(counterfactual.action_mask(data.n_actions)), learner)
    at = jnp.zeros(K, cf.dtype) if delta is None else jnp.asarray(delta, cf.dtype)
    grad = np.asarray(_offset_grad(at, *args), dtype=np.float64)
    eye = jnp.eye(K, dtype=cf.dtype)
    H = np.stack([np.asarray(_offset_hvp(at, eye[k], *args), dtype=np.float64) for k in range(K)])
    return grad, (H + H.T) / 2


def pair_mean(cov: np.ndarray) -> float:
    """Mean over uniform action pairs (a, b) of Var(x_a - x_b) under covariance ``cov``: float."""
    K = cov.shape[0]
    return float(2 * np.trace(cov) / K - 2 * cov.sum() / K**2)


def budget(setting: str, seed: int, method: str, csv: Path, settings: X.Settings) -> dict:
    """One row's split of diff_mse and its levels' sampling noise."""
    env = X.make_environment("e7", setting, seed, settings)
    family, fit = saved_fit(env, csv, setting, method, seed)
    K = family.n_choices
    ctx = metric_contexts(env, settings)
    own_a, own_b = ctx.own_a, ctx.own_b
    err = error_grid(family, fit, ctx)
    rows = np.arange(len(own_a))
    diff_err = err[rows, own_a] - err[rows, own_b]
    levels = err.mean(axis=0)  # float[K]
    shape_err = diff_err - (levels[own_a] - levels[own_b])
    true_levels = ctx.true_grid.mean(axis=0)

    grad, H = offset_derivatives(family, fit, env.learner, env.train)
    cov = centred_pinv(H)
    free = levels + cov @ grad  # one Newton step of the offsets on the likelihood alone
    w, V = np.linalg.eigh(cov)
    keep = w > w.max() * 1e-8  # the K - 1 gauge-free directions
    z = (V[:, keep].T @ levels) / np.sqrt(w[keep])
    chi2, dof = float(np.sum(z**2)), int(keep.sum())
    noise = float(np.trace(cov) / K)
    signal = float(np.mean(true_levels**2))
    out = {
        "setting": setting,
        "seed": seed,
        "method": method,
        "train_actions": int(np.asarray(env.train.scored_mask).sum() * family.n_agents),
        "diff_mse": float(np.mean(diff_err**2)),
        "diff_mse_metric": suite_diff_mse(env, family, fit, settings),
        "level_part": pair_error(levels, own_a, own_b),
        "shape_part": float(np.mean(shape_err**2)),
        "level_part_pairs": pair_mean(np.outer(levels, levels)),
        "level_part_free_offsets": pair_mean(np.outer(free, free)),
        "free_offset_step_rms": float(np.sqrt(np.mean((cov @ grad) ** 2))),
        "fisher_level_part": pair_mean(cov),
        "level_sd_fisher_median": float(np.median(np.sqrt(np.clip(np.diag(cov), 0, None)))),
        "level_sd_true": float(np.sqrt(signal)),
        "chi2": chi2,
        "dof": dof,
        "chi2_p_upper": float(stats.chi2.sf(chi2, dof)),
        "shrinkage_gain_bound": noise / (noise + signal),
        "fisher_eigenvalues": w[keep].tolist(),
        "published": published_diff_mse(setting),
    }
    out["level_share"] = out["level_part"] / out["diff_mse"]
    out["level_over_fisher"] = out["level_part_pairs"] / out["fisher_level_part"]
    return out


def chance_mean_above(rows: list[dict], threshold: float, draws: int = 100_000, seed: int = 0) -> float:
    """P(mean diff_mse over ``rows`` > ``threshold``) for level errors drawn at their Fisher noise.

    Each row's level part is drawn as ``(2 / K) |x|^2`` with ``x ~ N(0, cov)`` (a weighted sum of
    chi-square(1) draws with the Fisher covariance's eigenvalues), plus the row's observed shape part.
    """
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for r in rows:
        lam = np.asarray(r["fisher_eigenvalues"])
        K = lam.size + 1
        total += 2.0 / K * (rng.chisquare(1, size=(draws, lam.size)) @ lam) + r["shape_part"]
    return float(np.mean(total / len(rows) > threshold))


def row_key(row: dict) -> tuple[str, int, str]:
    """``(setting, seed, method)`` of a result row."""
    return row["setting"], row["seed"], row["method"]


def cached_rows(records: list[dict], keys, compute, out: Path, recompute: bool = False) -> Iterator[dict]:
    """Yield the row of each ``key = (setting, seed, method)``: the one in ``records``, or ``compute(*key)``.

    A computed row replaces any saved one in ``records`` (in place) and ``out`` is rewritten at once,
    so an interrupted run keeps the rows it finished; ``recompute`` computes every row. Keys for which
    ``compute`` returns None are skipped.
    """
    for key in keys:
        done = [x for x in records if row_key(x) == key]
        if done and not recompute:
            yield done[0]
            continue
        row = compute(*key)
        if row is None:
            continue
        records[:] = [x for x in records if row_key(x) != key] + [row]
        out.write_text(json.dumps({"rows": records}, indent=1) + "\n")
        yield row


def rows_by_setting(records: list[dict], method: str, seeds) -> Iterator[tuple[str, list[dict]]]:
    """Yield ``(setting, rows)`` in :data:`ALL_SETTINGS` order: ``method``'s rows whose seed is in ``seeds``.

    Settings without such rows are left out.
    """
    for setting in ALL_SETTINGS:
        rows = [
            x for x in records if x["setting"] == setting and x["method"] == method and x["seed"] in seeds
        ]
        if rows:
            yield setting, rows


def main(argv: list[str] | None = None) -> None:
    """Split each row's diff_mse, compare its level errors with their Fisher noise; print and write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--settings", nargs="+", default=list(ALL_SETTINGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--method", default="diml")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--recompute", action="store_true", help="redo rows already in --out")
    args = p.parse_args(argv)
    settings = X.Settings()
    records = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    print(
        "setting  seed  diff_mse  level  shape  level_share  fisher_level  level/fisher  chi2/dof (p)  "
        "shrink_bound  level_freed"
    )

    def compute(setting: str, seed: int, method: str) -> dict | None:
        path = X.params_path(args.csv, ("e7", setting, method, seed))
        if not path.exists():
            print(f"{setting} seed {seed}: no saved {method} params at {path.name}; skipped")
            return None
        return budget(setting, seed, method, args.csv, settings)

    keys = [(setting, seed, args.method) for setting in args.settings for seed in args.seeds]
    for r in cached_rows(records, keys, compute, args.out, args.recompute):
        setting, seed = r["setting"], r["seed"]
        print(
            f"{setting:>7}  {seed:4d}  {r['diff_mse']:.2e}  {r['level_part']:.2e}  "
            f"{r['shape_part']:.2e}  "
            f"{r['level_share']:.2f}  {r['fisher_level_part']:.2e}  {r['level_over_fisher']:.2f}  "
            f"{r['chi2'] / r['dof']:.2f} ({r['chi2_p_upper']:.2f})  {r['shrinkage_gain_bound']:.4f}  "
            f"{r['level_part_free_offsets']:.2e}",
            flush=True,
        )
    summary = []
    for setting, mine in rows_by_setting(records, args.method, args.seeds):
        chi2, dof = sum(x["chi2"] for x in mine), sum(x["dof"] for x in mine)
        s = {
            "setting": setting,
            "seeds": sorted(x["seed"] for x in mine),
            "mean_diff_mse": float(np.mean([x["diff_mse"] for x in mine])),
            "mean_efficient": float(np.mean([x["fisher_level_part"] + x["shape_part"] for x in mine])),
            "mean_level_share": float(np.mean([x["level_share"] for x in mine])),
            "pooled_chi2_per_dof": chi2 / dof,
            "pooled_chi2_p_upper": float(stats.chi2.sf(chi2, dof)),
            "published": mine[0]["published"],
            "chance_efficient_mean_above_published": chance_mean_above(mine, mine[0]["published"]),
        }
        summary.append(s)
        print(
            f"{setting}: seeds {s['seeds']}, mean diff_mse {s['mean_diff_mse']:.2e}, at the Fisher noise "
            f"{s['mean_efficient']:.2e}, level share {s['mean_level_share']:.2f}, pooled chi2/dof "
            f"{s['pooled_chi2_per_dof']:.2f} (p {s['pooled_chi2_p_upper']:.2f}), published "
            f"{s['published']:.2e}, P(an estimator at the Fisher noise has a mean above it) "
            f"{s['chance_efficient_mean_above_published']:.3f}"
        )
    every = [x for x in records if x["method"] == args.method and x["seed"] in args.seeds]
    if every:
        chi2, dof = sum(x["chi2"] for x in every), sum(x["dof"] for x in every)
        print(f"all {len(every)} rows: pooled chi2/dof {chi2 / dof:.3f} (p {stats.chi2.sf(chi2, dof):.2f})")
    args.out.write_text(json.dumps({"rows": records, "settings": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
