"""Pairwise incentives: u_i(a, a_-i) - u_i(b, a_-i) for every agent, opponent profile and pair a < b.

These are the gauge-free quantities users ask about ("does action a pay more than b against
this opponent profile?"). Each row is computed from joint posterior draws, so
``prob_greater`` is the posterior probability that the difference is positive, not a
statement read off two marginal intervals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_diml.labels import action_names

__all__ = ["PAIR_COLUMNS", "PAIR_LIMIT", "UNITS_PAYOFF", "UNITS_SCALED", "count_pairs", "payoff_pairs_frame"]

#: Columns of :func:`payoff_pairs_frame` (and of ``bayes-diml payoffs --pairs``), in this order.
PAIR_COLUMNS = ("agent", "opponents", "a", "b", "mean", "lower", "upper", "prob_greater", "support", "units")
#: Most rows a pair table may have (rows = sum_i prod_{j != i} K_j x K_i (K_i - 1) / 2).
PAIR_LIMIT = 2_000_000
#: ``units`` when the payoff scale is identified (observed payoffs, fixed temperature or units).
UNITS_PAYOFF = "payoff"
#: ``units`` when only temperature x payoff is identified (the temperature is then named).
UNITS_SCALED = "{temperature} x payoff"


def count_pairs(n_actions: tuple[int, ...]) -> int:
    """Return the number of rows of the pair table of a game with ``n_actions``."""
    total = math.prod(n_actions)
    return sum(total // k * (k * (k - 1) // 2) for k in n_actions)


def payoff_pairs_frame(
    draws: np.ndarray,
    support: np.ndarray,
    prob: float = 0.9,
    units: str = UNITS_PAYOFF,
    *,
    agent_labels: Sequence[str] | None = None,
    action_labels: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Tabulate pairwise payoff differences from joint draws of the centred payoff table.

    Parameters
    ----------
    draws : float[D, K_1, ..., K_n, n]
        Draws of the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)`` (or of temperature x
        centred payoffs): differences between two own actions of agent i are gauge-free.
    support : bool[K_1, ..., K_n, n]
        Whether cell (a, i) has an observed opponent profile a_-i (the same for every own
        action of agent i).
    prob : float
        Mass of the equal-tailed interval ``lower, upper``.
    units : str
        Written to every row's ``units`` column.
    agent_labels, action_labels : optional
        Names of the agents (n strings) and of each agent's actions (n sequences of K_i
        strings), as :class:`bayes_diml.data.Trajectories` holds them: the ``agent``, ``a``,
        ``b`` and ``opponents`` columns then hold labels instead of integer codes.

    Returns
    -------
    pandas.DataFrame
        One row per agent i, opponent profile a_-i (every profile, observed or not; ``support``
        says which) and pair of own actions a < b, columns :data:`PAIR_COLUMNS`: ``opponents``
        lists the other agents' actions in agent order joined by ``-``; ``mean``, ``lower``,
        ``upper`` describe u_i(a, a_-i) - u_i(b, a_-i); ``prob_greater`` is the share of draws
        in which it is positive.
    """
    draws = np.asarray(draws, dtype=np.float64)
    support = np.asarray(support, dtype=bool)
    if not 0 < prob < 1:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")
    if draws.ndim < 3 or draws.shape[1:] != support.shape or draws.shape[-1] != draws.ndim - 2:
        raise ValueError(
            "draws must be float[D, K_1, ..., K_n, n] and support bool[K_1, ..., K_n, n]; got "
            f"{draws.shape} and {support.shape}."
        )
    n_actions = tuple(draws.shape[1:-1])
    if count_pairs(n_actions) > PAIR_LIMIT:
        raise ValueError(
            f"the pair table of a game with n_actions = {n_actions} has {count_pairs(n_actions):,} rows "
            f"(limit {PAIR_LIMIT:,}); use Posterior.payoff_differences(joint=...) for chosen profiles."
        )
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    names = action_names(action_labels, n_actions)  # "0".."K_i-1" without labels
    frames = []
    for i, k in enumerate(n_actions):
        pairs = np.array(list(itertools.combinations(range(k), 2)), dtype=int).reshape(-1, 2)
        if not len(pairs):
            continue
        own = np.moveaxis(draws[..., i], i + 1, -1)  # float[D, (K_j)_{j != i}, K_i]
        sup = np.moveaxis(support[..., i], i, -1).any(axis=-1)  # bool[(K_j)_{j != i}]
        diff = own[..., pairs[:, 0]] - own[..., pairs[:, 1]]  # float[D, (K_j)_{j != i}, P]
        lower, upper = np.quantile(diff, [lo, hi], axis=0)
        others = [names[j] for j in range(len(n_actions)) if j != i]
        labels = ["-".join(profile) for profile in itertools.product(*others)]
        a, b = pairs[:, 0], pairs[:, 1]
        if action_labels is not None:
            a, b = np.asarray(names[i], dtype=object)[a], np.asarray(names[i], dtype=object)[b]
        n_rows = len(labels) * len(pairs)
        frames.append(
            pd.DataFrame(
                {
                    "agent": np.full(n_rows, i) if agent_labels is None else [agent_labels[i]] * n_rows,
                    "opponents": np.repeat(labels, len(pairs)),
                    "a": np.tile(a, len(labels)),
                    "b": np.tile(b, len(labels)),
                    "mean": diff.mean(axis=0).reshape(-1),
                    "lower": lower.reshape(-1),
                    "upper": upper.reshape(-1),
                    "prob_greater": (diff > 0).mean(axis=0).reshape(-1),
                    "support": np.repeat(sup.reshape(-1), len(pairs)),
                    "units": units,
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: [] for c in PAIR_COLUMNS})
    return pd.concat(frames, ignore_index=True)
