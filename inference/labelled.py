"""Results in the data's labels: the payoff table as an xarray Dataset, summary rows by name.

Models work on integer codes; when the data carry agent and action labels
(:class:`bayes_diml.data.Trajectories` ``agent_labels`` / ``action_labels``) the reports name
agents and actions by them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from bayes_diml.labels import action_names, agent_names, relabel_row
from bayes_diml.mechanisms import joint_profiles

__all__ = [
    "cell_interval",
    "contrast_table",
    "joint_label",
    "payoff_dataset",
    "payoff_interval_table",
    "profile_dims",
    "relabel_index",
]


def profile_dims(data: Any) -> list[str]:
    """Dimension names of a payoff table float[K_1, ..., K_n, n]: ``action_<agent>`` then ``agent``."""
    return [f"action_{a}" for a in agent_names(data.agent_labels, data.n_agents)] + ["agent"]


def payoff_interval_table(draws: np.ndarray, prob: float, support: np.ndarray) -> dict[str, np.ndarray]:
    """Summarise payoff draws as the table :func:`payoff_dataset` labels.

    ``mean, lower, upper`` (central ``prob`` interval) over the draws of ``draws: float[D,
    K_1..K_n, n]``, and a copy of ``support`` (bool[K_1..K_n, n]).
    """
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    return {
        "mean": draws.mean(0),
        "lower": np.quantile(draws, lo, axis=0),
        "upper": np.quantile(draws, hi, axis=0),
        "support": support.copy(),
    }


def cell_interval(draws: np.ndarray, prob: float) -> dict[str, float]:
    """Summarise ``draws: float[D]``: ``mean, lower, upper`` (central ``prob``) and ``prob_positive``."""
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    return {
        "mean": float(draws.mean()),
        "lower": float(np.quantile(draws, lo)),
        "upper": float(np.quantile(draws, hi)),
        "prob_positive": float((draws > 0).mean()),
    }


def contrast_table(
    diff: np.ndarray, n_actions: tuple[int, ...], prob: float, units: str, support: Any = None
) -> Any:
    """Tabulate a contrast's draws ``diff: float[D, K_1, ..., K_n, n]`` (A minus B, draw by draw).

    A pandas DataFrame with one row per agent (outer) and joint action (C order): ``agent``,
    ``joint`` (like ``1-0``), ``mean, lower, upper, prob_positive`` (:func:`cell_interval`), then
    ``support_a, support_b`` when ``support`` (two bool[K_1, ..., K_n, n]) is given, and ``units``.
    """
    import pandas as pd

    n = len(n_actions)
    flat = np.asarray(diff).reshape(len(diff), -1, n)  # float[D, P, n]
    sup = None if support is None else [np.asarray(s).reshape(-1, n) for s in support]
    rows = []
    for i in range(n):
        for p, joint in enumerate(joint_profiles(n_actions)):
            row = {"agent": i, "joint": joint_label(joint)} | cell_interval(flat[:, p, i], prob)
            if sup is not None:
                row |= {"support_a": bool(sup[0][p, i]), "support_b": bool(sup[1][p, i])}
            rows.append(row | {"units": units})
    return pd.DataFrame(rows)


def joint_label(joint: Any) -> str:
    """Write a joint action ``int[n]`` like ``1-0`` (the actions in agent order)."""
    return "-".join(str(int(v)) for v in joint)


def payoff_dataset(table: dict[str, np.ndarray], data: Any, prob: float) -> xr.Dataset:
    """Return the payoff table as an xarray Dataset with labelled coordinates.

    Parameters
    ----------
    table : dict
        ``mean, lower, upper`` float[K_1, ..., K_n, n] and ``support`` bool[K_1, ..., K_n, n].
    data : Trajectories
        The fitted data (its labels name the coordinates; integer codes without them).
    prob : float
        Mass of the intervals, stored as the attribute ``prob``.

    Returns
    -------
    xarray.Dataset
        Variables ``mean``, ``lower``, ``upper``, ``support`` over dims ``action_<j>`` (the
        action of agent j, one per agent, named by its label) and ``agent``: for agent i, the
        cell's own action is the coordinate of ``action_<i>`` and the other ``action_<j>`` are
        its opponents' actions. ``ds.sel(agent="alice", action_bob="scissors")`` is alice's
        centred payoff of each of her actions against bob's scissors.
    """
    dims = profile_dims(data)
    agents = agent_names(data.agent_labels, data.n_agents)
    labelled = data.agent_labels is not None or data.action_labels is not None
    coords: dict[str, Any] = {"agent": list(agents) if labelled else np.arange(data.n_agents)}
    for dim, names, k in zip(
        dims, action_names(data.action_labels, data.n_actions), data.n_actions, strict=False
    ):
        coords[dim] = list(names) if data.action_labels is not None else np.arange(k)
    variables = {name: (dims, np.asarray(table[name])) for name in ("mean", "lower", "upper", "support")}
    attrs = {
        "prob": float(prob),
        "description": "centred payoffs u_i(a) - mean_k u_i(k, a_-i): posterior mean, equal-tailed "
        "interval (lower, upper) and support (the opponent profile a_-i was observed)",
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def relabel_index(frame: Any, posterior: Any, data: Any) -> Any:
    """Rename summary rows such as ``centred_payoffs[0, 1, 0]`` by the data's labels (if any).

    ``posterior`` (the DataTree's ``posterior`` group) gives each variable's dims.
    """
    if data.agent_labels is None and data.action_labels is None:
        return frame
    agents = agent_names(data.agent_labels, data.n_agents)
    actions = action_names(data.action_labels, data.n_actions)

    def rename(row: str) -> str:
        name = str(row).split("[", 1)[0]
        if name not in posterior.data_vars:
            return str(row)
        dims = [d for d in posterior[name].dims if d not in ("chain", "draw")]
        return relabel_row(str(row), dims, agents, actions)

    return frame.rename(index=rename)
