"""Convergence diagnostics that respect bags: R-hat and ESS within each bag, never across bags.

A bagged posterior (``fit(..., robust="bagging")``, :mod:`bayes_diml.inference.bagging`) pools
the draws of fits to different bootstrap data sets; its ``chain`` dimension holds
``chains_per_bag`` chains of bag 0, then of bag 1, and so on. Bags target different
posteriors, so R-hat across bags measures the spread of the data, not a failure to converge.
:func:`diagnostics_table` computes R-hat and bulk ESS within each bag and reports, per
quantity, the worst bag: the largest R-hat and the smallest ESS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .quiet import SUMMARY_WARNINGS, silenced

__all__ = ["BAGGING", "diagnostics_table", "chains_per_bag"]

#: ``info["robust"]`` of a bagged posterior.
BAGGING = "bagging"


def chains_per_bag(info: dict) -> int | None:
    """Return the chains each bag contributes when ``info`` is a bagged fit's, else None."""
    if info.get("robust") != BAGGING:
        return None
    return int(info["chains_per_bag"])


def diagnostics_table(idata: Any, var_names: list[str], per_bag: int | None = None):
    """Return R-hat and bulk ESS per quantity: a pandas DataFrame with columns ``r_hat, ess_bulk``.

    Parameters
    ----------
    idata : xarray.DataTree
        With a ``posterior`` group of dims ``chain x draw x ...``.
    var_names : list of str
        Posterior variables to diagnose.
    per_bag : int, optional
        Chains per bag of a bagged posterior. ``None``: one ``arviz.summary`` over all chains
        (an ordinary fit). Otherwise R-hat and ESS are computed within each bag's chains and
        the worst bag is reported (max R-hat, min ESS); rows as ``arviz.summary`` names them.
    """
    import arviz as az
    import pandas as pd

    post = idata["posterior"].to_dataset()[var_names]
    if per_bag is None:
        with silenced(*SUMMARY_WARNINGS):
            diag = az.summary(post, kind="diagnostics", round_to="none")
        return pd.DataFrame(diag)[["r_hat", "ess_bulk"]]
    n_chains = int(post.sizes["chain"])
    if per_bag < 1 or n_chains % per_bag:
        raise ValueError(f"{n_chains} chains do not split into bags of {per_bag} chains.")
    r_hat, ess, index = [], [], None
    for start in range(0, n_chains, per_bag):
        with silenced(*SUMMARY_WARNINGS):
            d = pd.DataFrame(
                az.summary(
                    post.isel(chain=slice(start, start + per_bag)), kind="diagnostics", round_to="none"
                )
            )
        index = d.index
        r_hat.append(np.asarray(d["r_hat"], dtype=float))
        ess.append(np.asarray(d["ess_bulk"], dtype=float))
    r, e = np.stack(r_hat), np.stack(ess)
    # a quantity's worst bag; NaN (constant draws) only where every bag is NaN
    worst_r = np.where(np.isfinite(r).any(0), np.nanmax(np.where(np.isfinite(r), r, -np.inf), 0), np.nan)
    worst_e = np.where(np.isfinite(e).any(0), np.nanmin(np.where(np.isfinite(e), e, np.inf), 0), np.nan)
    return pd.DataFrame({"r_hat": worst_r, "ess_bulk": worst_e}, index=index)
