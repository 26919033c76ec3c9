"""Diagnostic plots of a fit with arviz-plots, in identified quantities and the data's labels.

Every kind returns an :class:`arviz_plots.PlotCollection` (save it with ``pc.savefig(path)``).
The plotted quantities are gauge-free: the inferred learner parameters and the centred payoffs
``u_i(a) - mean_k u_i(k, a_-i)`` of the cells whose opponent profile was observed (temperature
x centred payoffs where the temperature and the payoff scale are confounded), never raw
mechanism weights. Agents and actions carry the data's labels when it has them.

No plotting backend is chosen here: matplotlib picks its own (Agg on a machine without a
display, inline figures in a notebook).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr

from bayes_diml.labels import action_names, agent_names

from .pairs import UNITS_PAYOFF
from .quiet import CHAINS_LONGER_THAN_DRAWS, silenced

__all__ = ["KINDS", "GROUP_KINDS", "MAX_CELLS", "plot_posterior", "plot_tree", "ppc_tree"]

#: The kinds of :func:`plot_posterior` (``Posterior.plot``) and ``bayes-diml plot --kind``.
KINDS = ("trace", "rank", "forest", "ess", "pareto-k", "ppc")
#: The kinds that need a grouped fit (``GroupedTabular``): ``"contrast"``.
GROUP_KINDS = ("contrast",)
#: Payoff cells shown by default (those with an observed opponent profile, in table order).
MAX_CELLS = 24
_NEED_DRAWS = ("trace", "rank", "ess", "pareto-k")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence arviz-plots' advice to use a binary-outcome plot (actions with K_i = 2 are categories)."""
    with silenced(CHAINS_LONGER_THAN_DRAWS), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Variables .* look binary", category=UserWarning, module="arviz_plots"
        )
        yield


def plot_posterior(
    post: Any,
    kind: str,
    *,
    max_cells: int = MAX_CELLS,
    ppc_draws: int = 100,
    seed: int = 0,
    groups: tuple[str, str] | None = None,
    prob: float = 0.9,
    **kwargs: Any,
):
    """Draw one diagnostic plot of a fit with arviz-plots.

    Parameters
    ----------
    post : Posterior
    kind : str
        ``"trace"``, ``"rank"``, ``"ess"`` (:func:`arviz_plots.plot_trace`, ``plot_rank``,
        ``plot_ess`` of the learner parameters and up to ``max_cells`` payoff cells),
        ``"forest"`` (:func:`arviz_plots.plot_forest` of the payoff cells with an observed
        opponent profile, chains combined), ``"pareto-k"`` (:func:`arviz_plots.plot_khat` of
        the leave-one-episode-out PSIS diagnostics) or ``"ppc"``
        (:func:`arviz_plots.plot_ppc_rootogram`: for each agent, the counts of its actions in
        the data against ``ppc_draws`` posterior-predictive data sets). A grouped fit also has
        ``"contrast"`` (:func:`arviz_plots.plot_forest` of centred payoff in group B minus
        group A, ``groups=(B, A)``, one row per agent and joint action, from the joint draws
        of ``post.contrast(B, A)``; see ``bayes_diml.inference.contrast_plot.plot_contrast``).
    max_cells : int
        Most payoff cells shown (those whose opponent profile was observed, in table order).
    ppc_draws : int
        Posterior-predictive data sets for ``"ppc"`` when the fit holds none.
    seed : int
        Seed of the posterior-predictive simulation.
    groups : tuple of str, optional
        ``(B, A)`` for ``"contrast"``: the plot shows B minus A.
    prob : float
        Probability of the thin interval of ``"contrast"`` (the thick one holds 50%).
    **kwargs
        Passed to the arviz-plots function (``backend`` defaults to ``"matplotlib"``).

    Returns
    -------
    arviz_plots.PlotCollection
    """
    import arviz_plots as azp

    if kind not in KINDS + GROUP_KINDS:
        known = ", ".join(KINDS + GROUP_KINDS)
        raise ValueError(f"unknown plot kind {kind!r}; choose one of {known} (contrast: grouped fits).")
    if kind == "contrast":
        from .contrast_plot import plot_contrast

        return plot_contrast(post, groups, prob, **kwargs)
    if groups is not None:
        raise ValueError(f"groups=... applies to kind='contrast' (a grouped fit), not to {kind!r}.")
    if kind in _NEED_DRAWS and post.n_draws < 4:
        raise ValueError(
            f"a {kind} plot needs posterior draws; this is a {post.method} fit with {post.n_draws} "
            "draw(s). Refit with method='nuts', 'svi' or 'laplace'."
        )
    if kind == "rank" and post.idata["posterior"].sizes["chain"] < 2:
        raise ValueError(
            "a rank plot compares chains; this fit has 1 chain. Refit with method='nuts' and "
            "num_chains >= 2, or use kind='trace'."
        )
    if int(max_cells) < 0:
        raise ValueError(f"max_cells must be >= 0; got {max_cells}.")
    kwargs.setdefault("backend", "matplotlib")
    with _quiet():
        if kind == "pareto-k":
            return azp.plot_khat(post.loo(), **kwargs)
        if kind == "ppc":
            pc = azp.plot_ppc_rootogram(ppc_tree(post, ppc_draws, seed), **kwargs)
            _action_ticks(pc, post.data)
            return pc
        tree = plot_tree(post, max_cells, payoffs_only=kind == "forest")
        if kind == "forest":
            kwargs.setdefault("combined", True)
            return azp.plot_forest(tree, **kwargs)
        plot = {"trace": azp.plot_trace, "rank": azp.plot_rank, "ess": azp.plot_ess}[kind]
        return plot(tree, **kwargs)


def plot_tree(post: Any, max_cells: int = MAX_CELLS, *, payoffs_only: bool = False) -> xr.DataTree:
    """Return a DataTree of the identified quantities to plot, labelled.

    Group ``posterior`` (dims chain x draw) holds the inferred learner parameters and the
    payoff noise (per-agent ones over ``agent``, an action bias over ``agent_action``
    labelled ``"agent: action"``) and one payoff variable over ``cell``, labelled
    ``"agent: a_1, ..., a_n"``: ``centred_payoffs``, or ``scaled_payoffs`` (temperature x
    centred payoffs) when only that product is identified. Only cells whose opponent
    profile was observed appear, at most ``max_cells``. ``sample_stats`` is copied when
    present (trace plots mark divergences with it).
    """
    posterior = post.idata["posterior"]
    C, S = posterior.sizes["chain"], posterior.sizes["draw"]
    agents = agent_names(post.data.agent_labels, post.data.n_agents)
    actions = action_names(post.data.action_labels, post.data.n_actions)
    out: dict[str, xr.DataArray] = {}
    if not payoffs_only:
        for name in post._scalar_names():
            out[name] = _labelled(posterior[name].reset_coords(drop=True), agents, actions)
    cells = np.flatnonzero(post.support.reshape(-1))[: int(max_cells)]
    if cells.size:
        draws, units = post.identified_payoff_draws()  # float[D, K_1, ..., K_n, n]
        flat = np.asarray(draws).reshape(C, S, -1)[:, :, cells]
        name = "centred_payoffs" if units == UNITS_PAYOFF else "scaled_payoffs"
        shape = (*post.data.n_actions, post.data.n_agents)
        labels = [_cell_label(np.unravel_index(c, shape), agents, actions) for c in cells]
        out[name] = xr.DataArray(flat, dims=("chain", "draw", "cell"), coords={"cell": labels})
    if not out:
        raise ValueError("nothing to plot: no inferred learner parameter and no observed payoff cell.")
    groups = {"posterior": xr.Dataset(out, coords={"chain": np.arange(C), "draw": np.arange(S)})}
    if "sample_stats" in post.idata.children:
        groups["sample_stats"] = post.idata["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def ppc_tree(post: Any, n_draws: int = 100, seed: int = 0) -> xr.DataTree:
    """Return a DataTree of observed and posterior-predictive actions, one variable per agent.

    ``observed_data`` and ``posterior_predictive`` hold ``actions of <agent>`` over ``obs``,
    the scored (episode, step) pairs of the data; the predictive draws come from the fit's
    ``posterior_predictive`` group when it has one, else from ``n_draws`` simulations from
    posterior draws (a MAP fit's one draw is reused, so the spread is simulation noise only).
    """
    data = post.data
    M, T, n = data.actions.shape
    scored = data.scored_mask  # bool[M, T-1]
    if "posterior_predictive" in post.idata.children and "actions" in post.idata["posterior_predictive"]:
        sim = np.asarray(post.idata["posterior_predictive"]["actions"].values)  # int[C, S, M, T-1, n]
        sim = sim.reshape(-1, M, T - 1, n)
    else:
        if int(n_draws) < 1:
            raise ValueError(f"ppc_draws must be >= 1; got {n_draws}.")
        reps = math.ceil(int(n_draws) / post.n_draws)  # few draws: several data sets per draw
        sim = post.counterfactual(
            n_episodes=M * reps,
            T=T,
            statistic=lambda actions, payoffs: actions,
            n_draws=min(int(n_draws), post.n_draws),
            seed=seed,
        )
        sim = np.asarray(sim).reshape(-1, M, T, n)[: int(n_draws), :, 1:]
    agents = agent_names(data.agent_labels, n)
    observed = data.actions[:, 1:][scored]  # int[N_obs, n]
    predicted = sim[:, scored]  # [D, N_obs, n]
    pp, ob = {}, {}
    for i, a in enumerate(agents):
        pp[f"actions of {a}"] = (("chain", "draw", "obs"), predicted[None, :, :, i].astype(np.int64))
        ob[f"actions of {a}"] = (("obs",), observed[:, i].astype(np.int64))
    return xr.DataTree.from_dict({"posterior_predictive": xr.Dataset(pp), "observed_data": xr.Dataset(ob)})


def _labelled(
    da: xr.DataArray, agents: tuple[str, ...], actions: tuple[tuple[str, ...], ...]
) -> xr.DataArray:
    """Name the agent (and action) coordinates of one parameter; a bias becomes ``agent_action``."""
    if "agent" in da.dims and "action" in da.dims:  # bias[i, k]: actions differ by agent
        keep = [(i, k) for i in range(len(agents)) for k in range(len(actions[i]))]
        stacked = np.stack([da.isel(agent=i, action=k).values for i, k in keep], axis=-1)
        labels = [f"{agents[i]}: {actions[i][k]}" for i, k in keep]
        return xr.DataArray(stacked, dims=("chain", "draw", "agent_action"), coords={"agent_action": labels})
    if "agent" in da.dims:
        return da.assign_coords(agent=list(agents))
    return da


def _cell_label(index: tuple, agents: tuple[str, ...], actions: tuple[tuple[str, ...], ...]) -> str:
    *profile, i = (int(v) for v in index)
    return f"{agents[i]}: {', '.join(actions[j][a] for j, a in enumerate(profile))}"


def _action_ticks(pc: Any, data: Any) -> None:
    """Write the action labels under the rootogram's action codes (matplotlib only)."""
    if data.action_labels is None or pc.backend != "matplotlib":
        return
    for i, a in enumerate(agent_names(data.agent_labels, data.n_agents)):
        ax = pc.get_target(f"actions of {a}", {})
        ax.set_xticks(range(data.n_actions[i]), data.action_labels[i])
