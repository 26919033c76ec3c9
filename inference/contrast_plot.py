"""The contrast plot of a grouped fit: a forest of centred payoff in group B minus group A.

The draws are the joint draws behind :meth:`Posterior.contrast` (``group_posterior`` of each
group, paired draw by draw), one row per agent (outer) and joint action (C order), labelled
like the contrast CSV (``"agent 0, 1-0"``), with the data's agent and action labels when it
has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayes_diml.labels import action_names, agent_names
from bayes_diml.mechanisms import joint_profiles

from .groups import group_posterior, require_grouped
from .pairs import UNITS_PAYOFF

__all__ = ["contrast_tree", "plot_contrast", "check_groups"]


def check_groups(post: Any, groups: Any) -> tuple[str, str]:
    """Return the two group labels ``(B, A)`` of a contrast plot, or raise ValueError."""
    mech = require_grouped(post, "a contrast plot")
    known = ", ".join(mech.groups)
    if groups is None or isinstance(groups, str) or not isinstance(groups, Sequence) or len(groups) != 2:
        raise ValueError(
            f"a contrast plot needs groups=(B, A), two group labels (B minus A); got {groups!r}. "
            f"The groups are {known}."
        )
    b, a = (str(g) for g in groups)
    unknown = [g for g in (b, a) if g not in mech.groups]
    if unknown:
        raise ValueError(f"unknown group {unknown[0]!r}; the groups are {known}.")
    if a == b:
        raise ValueError(f"a contrast plot needs two different groups; got {a!r} twice.")
    return b, a


def contrast_tree(post: Any, group_b: str, group_a: str) -> xr.DataTree:
    """Return a DataTree of the draws of centred payoff in ``group_b`` minus ``group_a``.

    Group ``posterior`` holds one variable over ``(chain, draw, cell)``, ``cell`` labelled
    ``"agent <i>, <a_1>-...-<a_n>"`` in the row order of ``post.contrast(group_b, group_a)``;
    its name says the groups and the units (``"B - A, centred payoff"``, or ``"B - A, beta x
    payoff"`` when the temperature and the payoff scale are confounded). Attributes
    ``group_a``, ``group_b`` and ``units`` repeat them.
    """
    b, a = check_groups(post, (group_b, group_a))
    pb, pa = group_posterior(post, b), group_posterior(post, a)
    db, units = pb.identified_payoff_draws()  # float[D, K_1, ..., K_n, n]
    da, _ = pa.identified_payoff_draws()
    posterior = post.idata["posterior"]
    C, S = posterior.sizes["chain"], posterior.sizes["draw"]
    k = tuple(post.data.n_actions)
    n = len(k)
    diff = np.asarray(db - da).reshape(C, S, -1, n)  # [C, S, P, n]: profiles in C order
    values = np.moveaxis(diff, -1, 2).reshape(C, S, n * diff.shape[2])  # agent outer, profile inner
    agents = agent_names(post.data.agent_labels, n)
    actions = action_names(post.data.action_labels, k)
    labels = [
        f"agent {agents[i]}, " + "-".join(actions[j][int(c)] for j, c in enumerate(joint))
        for i in range(n)
        for joint in joint_profiles(k)
    ]
    what = "centred payoff" if units == UNITS_PAYOFF else units
    name = f"{b} - {a}, {what}"
    da_out = xr.DataArray(values, dims=("chain", "draw", "cell"), coords={"cell": labels})
    ds = xr.Dataset({name: da_out}, coords={"chain": np.arange(C), "draw": np.arange(S)})
    ds.attrs.update(group_a=a, group_b=b, units=units)
    return xr.DataTree.from_dict({"posterior": ds})


def plot_contrast(post: Any, groups: Any = None, prob: float = 0.9, **kwargs: Any):
    """Draw a forest plot of centred payoff in group B minus group A, ``groups=(B, A)``.

    One row per agent and joint action (the rows of ``post.contrast(B, A, prob)``), the
    chains combined, a thick bar for the central 50% and a thin one for the central ``prob``
    (equal-tailed) interval, the posterior mean as the point, and a line at 0. ``**kwargs``
    go to :func:`arviz_plots.plot_forest` (``backend`` defaults to ``"matplotlib"``).

    Returns
    -------
    arviz_plots.PlotCollection
        ``pc.data`` holds the plotted draws (one variable over ``chain, draw, cell``).
    """
    import arviz_plots as azp

    b, a = check_groups(post, groups)
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")
    tree = contrast_tree(post, b, a)
    kwargs.setdefault("backend", "matplotlib")
    kwargs.setdefault("combined", True)
    kwargs.setdefault("point_estimate", "mean")
    kwargs.setdefault("ci_kind", "eti")
    kwargs.setdefault("ci_probs", (min(0.5, float(prob)), float(prob)))
    pc = azp.plot_forest(tree, **kwargs)
    units = tree["posterior"].attrs["units"]
    title = f"{b} - {a}: centred payoff, mean and {100 * float(prob):g}% interval"
    if units != UNITS_PAYOFF:
        title = f"{b} - {a} in {units} units (temperature and payoff scale confounded)"
    _zero_line(pc, title)
    return pc


def _zero_line(pc: Any, title: str) -> None:
    """Draw the reference line at 0 (arviz-plots ``add_lines``) in the forest column; title it."""
    import arviz_plots as azp

    azp.add_lines(pc, values=[0.0], orientation="vertical", visuals={"ref_line": {"color": "0.4"}})
    if pc.backend != "matplotlib":
        return
    for name in pc.data.data_vars:  # add_lines draws in every column: keep it out of the labels
        lines = pc.viz["ref_line"][name]
        if "column" in lines.dims:
            for line in np.ravel(lines.sel(column="labels").values):
                line.set_visible(False)
        pc.get_target(name, {"column": "forest"}).set_title(title, fontsize="medium")
