"""The summary table of a fit: identified quantities, their intervals and what identifies them."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_diml.learners import temperature_name

from .identification import SUPPORT_NAMES, identification_table, support_categories
from .labelled import relabel_index

__all__ = ["summary_frame"]


def summary_frame(post: Any, prob: float, identification: bool, num_prior_draws: int):
    """Return ``Posterior.summary``'s table (see its docstring) of an ungrouped fit."""
    import pandas as pd

    scalars = post._scalar_names()
    frames = []
    if scalars:
        f = post._stats_frame(scalars, prob).drop(index=post._padded_bias_rows(), errors="ignore")
        f["support"] = True
        f["data_support"] = ""
        f["label"] = [
            "confounded with payoff scale"
            if (post.confounded and r.startswith(temperature_name(post.learner)))
            else "identified"
            for r in f.index
        ]
        frames.append(f)
    variables = post.idata["posterior"].data_vars
    if "centred_payoffs" in variables:
        f = post._stats_frame(["centred_payoffs"], prob)
        sup = post.support.reshape(-1)
        cats = np.vectorize(SUPPORT_NAMES.get, otypes=[object])(support_categories(post.data).reshape(-1))
        f["support"] = sup
        f["data_support"] = cats
        f["label"] = np.where(
            sup,
            "confounded with payoff scale" if post.confounded else "identified",
            "prior only (opponent profile never observed)",
        )
        frames.append(f)
        if post.confounded and "scaled_payoffs" in variables:
            g = post._stats_frame(["scaled_payoffs"], prob)
            g["support"] = sup
            g["data_support"] = cats
            g["label"] = np.where(
                sup, "identified (beta x payoff)", "prior only (opponent profile never observed)"
            )
            frames.append(g)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames)
    out["contraction"] = np.nan
    if identification and post.n_draws >= 4 and not post.spec.flat_priors:
        ident = identification_table(post, num_prior_draws=num_prior_draws)  # rows by index
        common = out.index.intersection(ident.index)
        out.loc[common, "contraction"] = ident.loc[common, "contraction"].to_numpy(dtype=float)
        out.loc[common, "label"] = ident.loc[common, "label"].to_numpy(dtype=object)
    return relabel_index(out, post.idata["posterior"], post.data)
