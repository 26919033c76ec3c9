"""Calibration checks: SBC ranks, interval coverage, binomial bands and rank-uniformity tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from arviz_stats.base import array_stats
from scipy import stats

from bayes_diml.studies.calibration.spec import LEVELS

__all__ = [
    "ranks_from_draws",
    "coverage_from_draws",
    "coverage_band",
    "rank_uniformity",
    "pit_from_ranks",
]


def ranks_from_draws(truth: np.ndarray, draws: np.ndarray, n_ranks: int | None = None) -> np.ndarray:
    """Rank of each truth among (thinned) draws: int[N] in ``0..L``.

    truth: float[N]; draws: float[N, D] (one row per data set, chains stacked). Draws are
    thinned to ``n_ranks`` evenly spaced ones (all if None) so that they are close to
    independent; the rank is the number of thinned draws below the truth.
    """
    truth = np.asarray(truth, dtype=float)
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or truth.shape != draws.shape[:1]:
        raise ValueError(f"need truth float[N] and draws float[N, D]; got {truth.shape} and {draws.shape}.")
    D = draws.shape[1]
    L = D if n_ranks is None else int(n_ranks)
    if not 1 <= L <= D:
        raise ValueError(f"n_ranks must lie in 1..{D} (number of draws); got {n_ranks}.")
    keep = np.linspace(0, D - 1, L).round().astype(int)
    return (draws[:, keep] < truth[:, None]).sum(axis=1).astype(int)


def coverage_from_draws(truth: np.ndarray, draws: np.ndarray, levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Whether each central (equal-tailed) interval contains the truth: bool[N, len(levels)]."""
    truth = np.asarray(truth, dtype=float)[:, None]
    draws = np.asarray(draws, dtype=float)
    out = []
    for p in levels:
        lo, hi = np.quantile(draws, [(1 - p) / 2, (1 + p) / 2], axis=1)
        out.append((lo[:, None] <= truth) & (truth <= hi[:, None]))
    return np.concatenate(out, axis=1)


def coverage_band(level: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Central ``1 - alpha`` binomial acceptance band of the empirical coverage at nominal ``level``.

    If intervals are calibrated, the number of the ``n`` data sets whose interval contains
    the truth is Binomial(n, level); this returns the band ``[lo, hi] / n`` that holds it
    with probability at least ``1 - alpha``.
    """
    lo = stats.binom.ppf(alpha / 2, n, level)
    hi = stats.binom.isf(alpha / 2, n, level)
    return float(lo / n), float(hi / n)


def _clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=1 - alpha, method="exact")
    return float(ci.low), float(ci.high)


def rank_uniformity(ranks: np.ndarray, n_ranks: int, bins: int | None = None) -> dict[str, float]:
    """Uniformity tests of SBC ranks in ``0..n_ranks``.

    ``chi2``: Pearson chi-square on ``bins`` equal groups of ranks (default: about N / 5
    groups, at most 20, that divide ``n_ranks + 1`` evenly or nearly so); ``pot_c``: the
    ArviZ PIT-ECDF test (``uniformity_test(method="pot_c")``) of the randomised PIT
    ``(rank + U) / (n_ranks + 1)`` with a fixed seed. Small p-values flag miscalibration.
    """
    ranks = np.asarray(ranks, dtype=int)
    N = ranks.size
    B = bins or int(max(2, min(20, N // 5, n_ranks + 1)))
    groups = np.minimum((ranks * B) // (n_ranks + 1), B - 1)
    counts = np.bincount(groups, minlength=B)
    edges = np.arange(B + 1) * (n_ranks + 1) / B
    expected = N * np.diff(np.ceil(edges)) / (n_ranks + 1)
    chi2 = float(stats.chisquare(counts, expected * N / expected.sum()).pvalue)
    out = {"chi2": chi2, "pot_c": _pot_c(pit_from_ranks(ranks, n_ranks))}
    return out


def pit_from_ranks(ranks: np.ndarray, n_ranks: int, seed: int = 0) -> np.ndarray:
    """Randomised PIT ``(rank + U) / (n_ranks + 1)``: exactly Uniform(0, 1) under calibration."""
    u = np.random.default_rng(seed).uniform(size=np.shape(ranks))
    return (np.asarray(ranks, dtype=float) + u) / (n_ranks + 1)


def _pot_c(pit: np.ndarray) -> float:
    """ArviZ's pointwise-order-test (``pot_c``) p-value of uniformity for PIT values float[N]."""
    return float(np.asarray(array_stats.uniformity_test(np.asarray(pit, float), axis=-1, method="pot_c")[0]))
