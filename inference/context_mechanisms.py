"""Payoff tables of ``Function`` / ``NeuralJoint`` fits whose payoffs take episode covariates.

A mechanism built with ``covariate_names`` (``Function(fn(params, joint, x), init,
covariate_names=...)``, ``NeuralJoint(..., covariate_names=...)``) has no single payoff table:
:func:`mechanism_payoff_table` evaluates it at one covariate value for every draw, centred within
each agent's own actions (``u_i(a; x) - mean_k u_i(k, a_-i; x)``), as
``Posterior.payoff_table(covariates={...})`` reports it. (The fit's recorded ``centred_payoffs``
is the table at ``x = 0``.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.counterfactual import takes_covariates
from bayes_diml.mechanisms.covariate import covariate_vector
from bayes_diml.metrics import payoff_differences
from bayes_diml.models import mechanism_sites, params_from_sites

from .labelled import payoff_dataset, payoff_interval_table

__all__ = ["mechanism_payoff_draws", "mechanism_payoff_table"]

#: Most payoff cells (prod K_i x n) of a table evaluated per draw.
_TABLE_CELL_LIMIT = 10**7


@dataclass(frozen=True, eq=False)
class _AtCovariates:
    """The mechanism with its covariates fixed at ``x: float[C]`` (``payoffs(params, joint)``)."""

    mechanism: Any
    x: Any

    @property
    def n_actions(self) -> tuple[int, ...] | None:
        return getattr(self.mechanism, "n_actions", None)

    def payoffs(self, params: Any, joint: jax.Array) -> jax.Array:
        return self.mechanism.payoffs(params, joint, covariates=self.x)


def mechanism_payoff_draws(post: Any, x: Any) -> np.ndarray:
    """Draws of the centred payoff table at covariates ``x: float[C]``: float[D, K_1..K_n, n].

    Each draw's mechanism is evaluated on every joint action at ``x`` and centred within each
    agent's own actions.
    """
    mech = post.mechanism
    k = tuple(int(v) for v in post.data.n_actions)
    cells = math.prod(k) * len(k)
    if cells > _TABLE_CELL_LIMIT:
        size = f"{cells:,}" if cells < 10**15 else f"about 10^{len(str(cells)) - 1}"
        how = (
            "mech.count_payoffs(params, own, opponent_counts, covariates=x) at the opponent counts"
            if callable(getattr(mech, "count_payoffs", None))
            else "the mechanism at the joint actions"
        )
        raise ValueError(
            f"the joint-action table of {len(k)} agents has prod K_i x n = {size} cells, more than "
            f"{_TABLE_CELL_LIMIT:,}; evaluate {how} you need instead."
        )
    sites = {name: jnp.asarray(post.draws(name)) for name in mechanism_sites(mech)}
    at = _AtCovariates(mech, jnp.asarray(x, dtype=jnp.result_type(float)))

    def one(s: dict) -> jax.Array:
        return payoff_differences(at, params_from_sites(mech, s), n_actions=k)

    return np.asarray(jax.lax.map(one, sites), dtype=float)


def mechanism_payoff_table(
    post: Any, covariates: Mapping[str, float] | None, prob: float, *, labelled: bool
) -> Any:
    """Return the centred payoff table of a ``Function`` / ``NeuralJoint`` fit at ``covariates``.

    ``covariates``: ``{"name": value}`` with every covariate of the mechanism. Arrays ``mean,
    lower, upper`` float[K_1..K_n, n] and ``support`` (as ``Posterior.payoff_table``); with
    ``labelled=True`` an ``xarray.Dataset`` whose attribute ``covariates`` holds the value.

    Raises
    ------
    ValueError
        without ``covariates`` (naming the mechanism's covariates), or with unknown, missing or
        non-finite ones.
    """
    mech = post.mechanism
    if not takes_covariates(mech):
        raise ValueError(f"{type(mech).__name__} takes no covariates; this fit has one payoff table.")
    names = tuple(mech.covariate_names)
    if covariates is None:
        raise ValueError(
            f"this fit's payoffs ({type(mech).__name__}) move with the covariates {', '.join(names)}; "
            "pass covariates={name: value, ...}."
        )
    x = covariate_vector(names, covariates)
    out = payoff_interval_table(mechanism_payoff_draws(post, x), prob, post.support)
    if not labelled:
        return out
    ds = payoff_dataset(out, post.data, prob)
    ds.attrs["covariates"] = str({c: float(v) for c, v in zip(names, x, strict=True)})
    return ds
