"""Grouped fits (``GroupedTabular``): one group's posterior, and contrasts between groups.

A grouped fit draws one centred payoff table per group (treatment arm, market, week) from a
shared table plus shrunk group deviations. :func:`group_posterior` turns one group into an
ordinary tabular :class:`~bayes_diml.inference.Posterior` (its episodes, its table, the shared
learner draws), so every tool of a tabular fit (payoff tables and pairs, counterfactuals,
design) answers for that group. :func:`contrast_frame` compares two groups cell by cell from
the same joint draws.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import xarray as xr

from bayes_diml.learners import temperature_name
from bayes_diml.mechanisms import GroupedTabular
from bayes_diml.models import (
    GROUP_SCALE,
    INFER,
    grouped_free,
    hierarchical_site_names,
    mechanism_sites,
    subject_learner_fields,
)

from .labelled import contrast_table, relabel_index
from .spec import ModelSpec

__all__ = [
    "group_posterior",
    "grouped_summary",
    "contrast_frame",
    "CONTRAST_COLUMNS",
    "require_grouped",
    "group_episodes",
]

#: Columns of :func:`contrast_frame` (the command line's ``payoffs --contrast A:B`` file).
CONTRAST_COLUMNS = ("agent", "joint", "mean", "lower", "upper", "prob_positive")


def require_grouped(post: Any, what: str) -> GroupedTabular:
    """Return the fit's ``GroupedTabular``, or raise ValueError saying ``what`` needs one."""
    mech = post.mechanism
    if not isinstance(mech, GroupedTabular):
        raise ValueError(
            f"{what} needs a grouped fit (mechanism GroupedTabular, e.g. `bayes-diml fit "
            "--group-by COLUMN`); "
            f"this fit's mechanism is {type(mech).__name__}."
        )
    return mech


def group_episodes(post: Any, group: str) -> np.ndarray:
    """int[k]: the fitted episodes of ``group`` (ValueError for an unknown label)."""
    mech = require_grouped(post, "a group")
    code = mech.group_code(group)
    groups = np.asarray(post.data.groups).astype(str)
    return np.flatnonzero(groups == mech.groups[code])


def _subset_episodes(ds: xr.Dataset, episodes: np.ndarray) -> xr.Dataset:
    return ds.isel(episode=episodes) if "episode" in ds.dims else ds


def group_posterior(post: Any, group: str) -> Any:
    """Return group ``group``'s ordinary tabular posterior.

    Its data are the group's episodes, its mechanism ``Tabular`` with the group's table
    (``u{i}_free`` = the group's free coordinates, ``centred_payoffs`` its centred table), the
    learner draws shared. Draws keep their order, so quantities of two groups computed from
    their posteriors pair draw by draw.
    """
    mech = require_grouped(post, "Posterior.for_group")
    code = mech.group_code(group)
    label = mech.groups[code]
    episodes = group_episodes(post, label)
    tree = post.idata
    ds = tree["posterior"].to_dataset()
    # drop the grouped parametrisation (deviations u{i}_group, group_scale): not one group's table
    keep = [v for v in ds.data_vars if not (v.endswith("_group") or v == GROUP_SCALE)]
    out = ds[keep].drop_vars(["centred_payoffs", "scaled_payoffs"], errors="ignore")
    tab = mech.tabular
    sites = {name: ds[name].values for name in mechanism_sites(mech)}  # shared, deviations, scale
    for i, free in enumerate(grouped_free(mech, sites)):  # [C, S, G, ...]: shared + scale x deviation
        out[f"u{i}_free"] = (ds[f"u{i}_free"].dims, np.asarray(free[:, :, code]))
    profile_dims = [f"action_{i}" for i in range(tab.n_agents)] + ["agent"]
    for name in ("centred_payoffs", "scaled_payoffs"):
        if name in ds:
            out[name] = (("chain", "draw", *profile_dims), ds[name].values[:, :, code])
    out = out.drop_vars("group", errors="ignore")
    out, learner = _group_subjects(out, post, episodes)
    nodes = {"posterior": out}
    # log_prior is left out: the grouped prior does not split by group
    for name in ("sample_stats", "log_likelihood", "observed_data", "constant_data"):
        if name in tree.children:
            nodes[name] = _subset_episodes(tree[name].to_dataset(), episodes)
    new = xr.DataTree.from_dict(nodes)
    new.attrs.update(tree.attrs)
    data = post.data.subset(episodes)
    spec = ModelSpec.from_parts(data, tab, learner, group_table_priors(post.priors, mech))
    info = dict(post.info, group=label)
    return type(post)(new, spec, post.method, info)


def group_table_priors(priors: Any, mech: GroupedTabular) -> Any:
    """``priors`` with the prior scale of one group's free coordinates (``shared + group_scale z``).

    Their prior is a scale mixture with variance ``mechanism_scale^2 + E[group_scale^2]``
    (uncorrelated coordinates): the normal of that variance has the same prior sd of every
    centred payoff, which is what identification's contraction compares with.
    """
    scale = priors.mechanism_scale
    if scale is not None:
        scale = math.sqrt(float(scale) ** 2 + mech.group_scale_rms**2)
    return dataclasses.replace(priors, mechanism_scale=scale)


def _group_subjects(ds: xr.Dataset, post: Any, episodes: np.ndarray) -> tuple[xr.Dataset, Any]:
    """Keep the per-subject learner draws (``"infer_subject"``) of the group's subjects only.

    When the group is one subject (``Trajectories.with_group_subjects``: learner values that
    differ by group), its draws become the group's own value: the field turns ``"infer"``, so
    counterfactuals and design use the group's learner, not the population's median.
    """
    fields = subject_learner_fields(post.learner)
    if not fields:
        return ds, post.learner
    subjects = np.unique(post.data.subject_index[episodes])  # in the order Trajectories.subset codes them
    if len(subjects) > 1:
        return ds.isel(subject=subjects), post.learner
    ds = ds.isel(subject=subjects[0])  # the group's own value per draw: float[C, S]
    ds = ds.drop_vars([s for name in fields for s in hierarchical_site_names(name)], errors="ignore")
    return ds, post.learner._replace(**dict.fromkeys(fields, INFER))


def contrast_frame(post: Any, group_a: str, group_b: str, prob: float = 0.9):
    """Centred payoff in group A minus in group B, for every agent and joint action.

    Returns a pandas DataFrame with :data:`CONTRAST_COLUMNS` (``joint`` written like ``1-0``,
    the actions in agent order), then ``support_a``, ``support_b`` (whether the cell's opponent
    profile was observed in each group) and ``units`` (``payoff``, or temperature x payoff when
    the payoff scale is not identified). ``prob_positive`` is the share of joint draws where the
    difference is positive.
    """
    mech = require_grouped(post, "Posterior.contrast")
    a, b = contrast_groups(mech, group_a, group_b)
    pa, pb = group_posterior(post, a), group_posterior(post, b)
    da, units = pa.identified_payoff_draws()
    db, _ = pb.identified_payoff_draws()
    frame = contrast_table(da - db, mech.n_actions, prob, units, (pa.support, pb.support))  # draw by draw
    frame.attrs.update(group_a=a, group_b=b, prob=prob, units=units)
    return frame


def contrast_groups(mech: GroupedTabular, group_a: str, group_b: str) -> tuple[str, str]:
    """Return the two groups' labels (ValueError naming an unknown group, or the same group twice)."""
    a, b = (mech.groups[mech.group_code(g)] for g in (group_a, group_b))
    if a == b:
        raise ValueError(f"contrast needs two different groups; got {a!r} twice.")
    return a, b


def grouped_summary(post: Any, prob: float):
    """Return the summary of a grouped fit: learner rows and ``group_scale``, then each group's payoff rows.

    Payoff rows are indexed ``group[<label>] centred_payoffs[...]`` (from :func:`group_posterior`);
    identification labels come from the support alone (no prior-contraction study per group).
    """
    import pandas as pd

    names = [*post._scalar_names(), GROUP_SCALE]
    f = post._stats_frame(names, prob).drop(index=post._padded_bias_rows(), errors="ignore")
    f["support"] = True
    f["data_support"] = ""
    temperature = temperature_name(post.learner)
    f["label"] = [
        "confounded with payoff scale"
        if (post.confounded and str(r).startswith(temperature))
        else ("shrinkage between groups" if r == GROUP_SCALE else "identified")
        for r in f.index
    ]
    frames = [relabel_index(f, post.idata["posterior"], post.data)]
    for g in post.mechanism.groups:
        rows = group_posterior(post, g).summary(prob, identification=False)
        rows = rows[[str(r).startswith(("centred_payoffs", "scaled_payoffs")) for r in rows.index]]
        rows.index = [f"group[{g}] {r}" for r in rows.index]
        frames.append(rows)
    out = pd.concat(frames)
    out["contraction"] = np.nan
    return out
