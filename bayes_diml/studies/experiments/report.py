"""Reports of the suite's results: mean +- sd over seeds next to the published numbers, and Figure 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_diml.studies.experiments.results import load_results
from bayes_diml.studies.experiments.settings import METHODS, PUBLISHED

__all__ = ["summarize", "format_table", "plot_figure1"]


def summarize(results):
    """Mean and sd over seeds per (experiment, setting, method), next to the published numbers.

    Parameters
    ----------
    results : DataFrame or path of a results CSV

    Returns
    -------
    pandas.DataFrame
        Columns ``experiment, setting, method, n_seeds, diff_mse_mean, diff_mse_sd,
        cfkl_params_mean, cfkl_params_sd, interval_coverage_90_mean, fit_seconds_mean, n_params,
        published_diff_mse, published_cfkl_params`` (sd with ddof = 1; NaN for one seed).
    """
    df = load_results(results) if isinstance(results, str | Path) else results
    order = {m: i for i, m in enumerate(METHODS)}
    rows = []
    for (e, s, m), g in df.groupby(["experiment", "setting", "method"], sort=False):
        pub = PUBLISHED.get((e, str(s), m), (np.nan, np.nan))
        rows.append(
            {
                "experiment": e,
                "setting": str(s),
                "method": m,
                "n_seeds": len(g),
                "diff_mse_mean": g["diff_mse"].mean(),
                "diff_mse_sd": g["diff_mse"].std(ddof=1),
                "cfkl_params_mean": g["cfkl_params"].mean(),
                "cfkl_params_sd": g["cfkl_params"].std(ddof=1),
                "interval_coverage_90_mean": pd.to_numeric(g["interval_coverage_90"], errors="coerce").mean(),
                "fit_seconds_mean": g["fit_seconds"].mean(),
                "n_params": int(g["n_params"].iloc[0]),
                "published_diff_mse": pub[0],
                "published_cfkl_params": pub[1],
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_o"] = out["method"].map(order)
    out["_n"] = [_setting_size(s) for s in out["setting"]]  # E7 40x10 before 120x25
    keys = ["experiment", "_n", "setting", "_o"]
    return out.sort_values(keys).drop(columns=["_o", "_n"]).reset_index(drop=True)


def _setting_size(setting: str) -> int:
    """Return the first number of a setting ``'NxK'`` (agents), for ordering; 0 if there is none."""
    head = str(setting).split("x")[0]
    return int(head) if head.isdigit() else 0


def _pm(mean: float, sd: float, fmt: str) -> str:
    if np.isnan(mean):
        return ""
    return f"{mean:{fmt}}" + ("" if np.isnan(sd) else f" ± {sd:{fmt}}")


def format_table(summary) -> str:
    """Format :func:`summarize`'s output as a Markdown table (mean ± sd, published next to ours)."""
    head = (
        "| experiment | setting | method | seeds | diff_mse (ours) | diff_mse (published) "
        "| cfkl_params (ours) | cfkl_params (published) | 90% coverage | fit s | params |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in summary.itertuples(index=False):
        lines.append(
            f"| {r.experiment.upper()} | {r.setting} | {r.method} | {r.n_seeds} "
            f"| {_pm(r.diff_mse_mean, r.diff_mse_sd, '.2e')} "
            f"| {'' if np.isnan(r.published_diff_mse) else f'{r.published_diff_mse:.2e}'} "
            f"| {_pm(r.cfkl_params_mean, r.cfkl_params_sd, '.3f')} "
            f"| {'' if np.isnan(r.published_cfkl_params) else f'{r.published_cfkl_params:.3f}'} "
            f"| {'' if np.isnan(r.interval_coverage_90_mean) else f'{r.interval_coverage_90_mean:.2f}'} "
            f"| {r.fit_seconds_mean:.1f} | {r.n_params} |"
        )
    return head + "\n".join(lines) + "\n"


def plot_figure1(results, path: str | Path) -> Path:
    """Figure-1-like PNG: diff_mse and cfkl_params per method per experiment (log scale).

    Bars are means over seeds with sd error bars, dots the seeds, crosses the published numbers.
    """
    from matplotlib.figure import Figure  # not pyplot: no backend, no global figure list

    df = load_results(results) if isinstance(results, str | Path) else results
    summ = summarize(df)
    panels = list(dict.fromkeys(zip(summ["experiment"], summ["setting"], strict=True)))
    fig = Figure(figsize=(3.2 * max(1, len(panels)), 6.5))
    axes = fig.subplots(2, max(1, len(panels)), squeeze=False)
    for j, (e, s) in enumerate(panels):
        sub = summ[(summ["experiment"] == e) & (summ["setting"] == s)]
        methods = list(sub["method"])
        x = np.arange(len(methods))
        for row, metric, pub in (
            (0, "diff_mse", "published_diff_mse"),
            (1, "cfkl_params", "published_cfkl_params"),
        ):
            ax = axes[row, j]
            mean = sub[f"{metric}_mean"].to_numpy(dtype=float)
            sd = np.nan_to_num(sub[f"{metric}_sd"].to_numpy(dtype=float))
            ax.bar(x, mean, color="C0", alpha=0.6, yerr=sd, capsize=2)
            for k, m in enumerate(methods):
                vals = df[(df["experiment"] == e) & (df["setting"].astype(str) == s) & (df["method"] == m)][
                    metric
                ]
                ax.plot(np.full(len(vals), x[k]), vals, "k.", ms=3)
            p = sub[pub].to_numpy(dtype=float)
            ax.plot(x, p, "rx", ms=7, label="published" if j == 0 else None)
            ax.set_yscale("log")
            ax.set_xticks(x, methods, rotation=60, ha="right", fontsize=7)
            if row == 0:
                ax.set_title(f"{e.upper()} ({s})", fontsize=9)
            if j == 0:
                ax.set_ylabel(metric)
    if panels:
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
