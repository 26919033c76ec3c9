"""Covariate fits (``CovariateTabular``): effects of covariates, and the payoff table at a covariate value.

A covariate fit draws a centred payoff table and, per covariate, centred slopes: agent i's
centred payoff of joint action a in an episode with covariates x is
``table[a, i] + sum_c x_c slopes[c, a, i]``. :func:`covariate_effects_frame` reports each slope
(the change of a centred payoff per unit of a covariate) with its interval and the posterior
probability that it is positive; :func:`covariate_payoff_table` the centred table at a given
covariate value; :func:`covariate_posterior` turns the table at one value into an ordinary
tabular posterior (so pairs, counterfactuals, design and identification answer there) and
:func:`covariate_contrast_frame` compares two values draw by draw.
:func:`context_payoff_table` routes ``Posterior.payoff_table`` for fits with context (groups or
covariates).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayes_diml.counterfactual import takes_covariates
from bayes_diml.learners import temperature_name
from bayes_diml.mechanisms import CovariateTabular, GroupedTabular, joint_profiles
from bayes_diml.models import mechanism_sites, params_from_sites

from .context_mechanisms import mechanism_payoff_table
from .labelled import cell_interval, contrast_table, joint_label, payoff_dataset, payoff_interval_table
from .pairs import UNITS_PAYOFF, UNITS_SCALED
from .spec import ModelSpec

__all__ = [
    "COVARIATE_EFFECT_COLUMNS",
    "require_covariate",
    "require_one_table",
    "covariate_draws",
    "covariate_effects_frame",
    "covariate_payoff_table",
    "covariate_posterior",
    "covariate_contrast_frame",
    "COVARIATE_CONTRAST_COLUMNS",
    "require_data_likelihood",
    "context_payoff_table",
]

#: Columns of :func:`covariate_effects_frame` (the command line's ``payoffs --covariate-effects`` file).
COVARIATE_EFFECT_COLUMNS = ("agent", "joint", "covariate", "mean", "lower", "upper", "prob_positive")
#: Columns of :func:`covariate_contrast_frame` (``Posterior.contrast_covariates``).
COVARIATE_CONTRAST_COLUMNS = ("agent", "joint", "mean", "lower", "upper", "prob_positive", "units")


def require_covariate(post: Any, what: str) -> CovariateTabular:
    """Return the fit's ``CovariateTabular``, or raise ValueError saying ``what`` needs one."""
    mech = post.mechanism
    if not isinstance(mech, CovariateTabular):
        raise ValueError(
            f"{what} needs a covariate fit (mechanism CovariateTabular, e.g. `bayes-diml fit "
            f"--mechanism covariate --covariates NAMES`); this fit's mechanism is {type(mech).__name__}."
        )
    return mech


def require_one_table(post: Any, what: str) -> None:
    """Raise ValueError when ``what`` needs one payoff table and the fit has one per group or context."""
    mech = post.mechanism
    if isinstance(mech, GroupedTabular):
        raise ValueError(
            f"{what} answers for one group of a grouped fit: use post.for_group(g).{what}(...) "
            f"with g one of {', '.join(mech.groups)}."
        )
    if isinstance(mech, CovariateTabular):
        raise ValueError(
            f"{what} answers for one payoff table, and this fit's table moves with the covariates "
            f"{', '.join(mech.covariate_names)}: use post.payoff_table(covariates={{...}}) or "
            "post.covariate_effects()."
        )
    if takes_covariates(mech):  # Function / NeuralJoint built with covariates
        raise ValueError(
            f"{what} answers for one payoff table, and this fit's payoffs move with the covariates "
            f"{', '.join(mech.covariate_names)}: use post.payoff_table(covariates={{...}}) for the "
            "table at a value."
        )


def covariate_draws(post: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return draws of the centred table ``float[D, K_1..K_n, n]`` and slopes ``float[D, C, K_1..K_n, n]``."""
    mech = require_covariate(post, "covariate draws")
    sites = {name: jnp.asarray(post.draws(name)) for name in mechanism_sites(mech)}
    params = params_from_sites(mech, sites)  # batch dim D first
    return np.asarray(params["table"], dtype=float), np.asarray(params["slopes"], dtype=float)


def _identified_units(post: Any, draws: np.ndarray) -> tuple[np.ndarray, str]:
    """``draws: float[D, ..., n]`` in identified units: x temperature (per draw, agent) when confounded."""
    if not post.confounded:
        return draws, UNITS_PAYOFF
    name = temperature_name(post.learner)
    t = np.asarray(getattr(post.learner_draws(), name), dtype=float)
    t = np.broadcast_to(t if t.ndim == 2 else t[:, None], (len(t), draws.shape[-1]))  # float[D, n]
    return draws * t.reshape(len(t), *([1] * (draws.ndim - 2)), draws.shape[-1]), UNITS_SCALED.format(
        temperature=name
    )


def covariate_effects_frame(post: Any, prob: float = 0.9):
    """Tabulate each centred payoff's change per unit of each covariate (agent, joint action, covariate).

    Returns a pandas DataFrame with :data:`COVARIATE_EFFECT_COLUMNS` (``joint`` written like
    ``1-0``, the actions in agent order; ``covariate`` the covariate's name), then ``units``
    (``payoff``, or temperature x payoff when the payoff scale is not identified: signs and
    ``prob_positive`` keep their meaning). ``prob_positive`` is the share of draws where the
    slope is positive; with one draw (MAP) the interval is that point.
    """
    import pandas as pd

    mech = require_covariate(post, "Posterior.covariate_effects")
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")
    _, slopes = covariate_draws(post)
    slopes, units = _identified_units(post, slopes)  # float[D, C, K_1..K_n, n]
    n = mech.n_agents
    profiles = joint_profiles(mech.n_actions)  # int[P, n], C order: the table's cell order
    flat = slopes.reshape(slopes.shape[0], mech.n_covariates, -1, n)  # [D, C, P, n]
    rows = []
    for i in range(n):
        for p, joint in enumerate(profiles):
            for c, name in enumerate(mech.covariate_names):
                rows.append(
                    {"agent": i, "joint": joint_label(joint), "covariate": name}
                    | cell_interval(flat[:, c, p, i], prob)
                    | {"units": units}
                )
    frame = pd.DataFrame(rows, columns=[*COVARIATE_EFFECT_COLUMNS, "units"])
    frame.attrs.update(prob=prob, units=units)
    return frame


def covariate_payoff_table(post: Any, covariates: Mapping[str, float] | None, prob: float, *, labelled: bool):
    """Return the centred payoff table at ``covariates`` (``{"name": value}``, every covariate of the fit).

    Arrays ``mean, lower, upper`` float[K_1..K_n, n] and ``support`` (as ``Posterior.payoff_table``);
    with ``labelled=True`` an ``xarray.Dataset`` whose attribute ``covariates`` holds the value.
    """
    mech = require_covariate(post, "payoff_table(covariates=...)")
    if covariates is None:
        raise ValueError(
            "this fit's payoff table moves with the covariates "
            f"{', '.join(mech.covariate_names)}; pass covariates={{name: value, ...}}."
        )
    x = mech.covariate_vector(covariates)  # ValueError naming unknown, missing or non-finite ones
    table, slopes = covariate_draws(post)
    d = table + np.einsum("dc...,c->d...", slopes, x)  # float[D, K_1..K_n, n]
    out = payoff_interval_table(d, prob, post.support)
    if not labelled:
        return out
    ds = payoff_dataset(out, post.data, prob)
    ds.attrs["covariates"] = str({c: float(v) for c, v in zip(mech.covariate_names, x, strict=True)})
    return ds


def covariate_posterior(post: Any, covariates: Mapping[str, float]) -> Any:
    """Return the ordinary tabular posterior of a covariate fit's table at ``covariates``.

    Draw by draw, ``u{i}_free`` = the table's free coordinates + ``sum_c x_c`` the slopes'
    (``centred_payoffs``, and ``scaled_payoffs`` where the fit has them, recomputed: the centred
    table at x); the learner draws are shared and keep their order, so quantities at two values
    pair draw by draw. The data are all episodes (``support``: observed in any episode, at any
    covariate value). The prior (``Priors.mechanism_scale``) is that of the table at x,
    ``sqrt(mechanism_scale^2 + |x|^2 slope_prior^2)`` per free coordinate, so identification
    compares with the right prior. The groups ``log_likelihood`` and ``log_prior`` are dropped:
    they are the covariate model's (each episode at its own covariates), not this table's, so
    LOO, LFO and prior sensitivity answer on the covariate fit itself.
    ``info["covariates"]`` holds the value.
    """
    mech = require_covariate(post, "Posterior.at_covariates")
    x = mech.covariate_vector(covariates)  # ValueError naming unknown, missing or non-finite ones
    tab = mech.tabular
    ds = post.idata["posterior"].to_dataset()
    slopes = [f"u{i}_slope" for i in range(tab.n_agents)]
    out = ds.drop_vars([*slopes, "centred_payoffs", "scaled_payoffs"], errors="ignore")
    for i, name in enumerate(slopes):  # slopes [chain, draw, C, ...]: free coords at x, draws' dtype
        free = ds[f"u{i}_free"]
        moved = np.tensordot(x, np.moveaxis(ds[name].values.astype(np.float64), 2, 0), axes=1)
        out[f"u{i}_free"] = free.copy(data=(free.values.astype(np.float64) + moved).astype(free.dtype))
    if "centred_payoffs" in ds:  # the stored table at 0 plus x . slopes (exactly the table at x = 0)
        moved = np.einsum("dc...,c->d...", covariate_draws(post)[1], x)  # float[D, K_1..K_n, n]
        parts = {"centred_payoffs": moved}
        if "scaled_payoffs" in ds:  # temperature x centred payoffs, per draw and agent
            parts["scaled_payoffs"] = _identified_units(post, moved)[0]
        for name, v in parts.items():
            old = ds[name]
            at_x = old.values.astype(np.float64) + v.reshape(old.shape)
            out[name] = old.copy(data=at_x.astype(old.dtype))
    tree = post.idata
    nodes = {"posterior": out}
    for name in ("sample_stats", "observed_data", "constant_data"):
        if name in tree.children:
            nodes[name] = tree[name].to_dataset()
    new = xr.DataTree.from_dict(nodes)
    new.attrs.update(tree.attrs)
    scale = post.priors.mechanism_scale
    if scale is not None:
        scale = math.sqrt(float(scale) ** 2 + float(mech.slope_prior) ** 2 * float(x @ x))
    priors = dataclasses.replace(post.priors, mechanism_scale=scale)
    spec = ModelSpec.from_parts(post.data, tab, post.learner, priors)
    value = {c: float(v) for c, v in zip(mech.covariate_names, x, strict=True)}
    return type(post)(new, spec, post.method, dict(post.info, covariates=value))


def covariate_contrast_frame(post: Any, a: Mapping[str, float], b: Mapping[str, float], prob: float = 0.9):
    """Centred payoff at covariates ``a`` minus at ``b``, per agent and joint action, from joint draws.

    Returns a pandas DataFrame with :data:`COVARIATE_CONTRAST_COLUMNS` (``joint`` like ``1-0``;
    ``units`` ``payoff`` or temperature x payoff when the payoff scale is not identified);
    ``prob_positive`` is the share of draws where the difference is positive. The attributes
    ``a``, ``b`` hold the two values.
    """
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")
    pa, pb = covariate_posterior(post, a), covariate_posterior(post, b)
    da, units = pa.identified_payoff_draws()
    db, _ = pb.identified_payoff_draws()
    frame = contrast_table(da - db, post.mechanism.n_actions, prob, units)  # draw by draw
    frame.attrs.update(a=pa.info["covariates"], b=pb.info["covariates"], prob=prob, units=units)
    return frame


def require_data_likelihood(post: Any, what: str) -> None:
    """Raise ValueError when ``what`` scores the data with one table and this fit cannot.

    A grouped or covariate fit (see :func:`require_one_table`), or a covariate fit's table at one
    value (:func:`covariate_posterior`): its episodes were fitted each at its own covariates.
    """
    require_one_table(post, what)
    if "covariates" in post.info:
        raise ValueError(
            f"{what} scores the data with this posterior's one table, but it is a covariate fit's table "
            f"at {post.info['covariates']}, while each episode was fitted at its own covariates; ask the "
            "covariate fit itself."
        )


def context_payoff_table(
    post: Any, prob: float, *, labelled: bool, group: str | None, covariates: Mapping[str, float] | None
) -> Any:
    """``Posterior.payoff_table`` of a fit with context: a group's table, or the table at covariates.

    Returns None for a fit with one table (and neither ``group`` nor ``covariates`` given).
    """
    if group is not None or isinstance(post.mechanism, GroupedTabular):
        if group is None:
            raise ValueError(
                "this fit has one payoff table per group; pass group= one of "
                f"{', '.join(post.mechanism.groups)}."
            )
        return post.for_group(group).payoff_table(prob, labelled=labelled)
    if takes_covariates(post.mechanism) and not isinstance(post.mechanism, CovariateTabular):
        return mechanism_payoff_table(post, covariates, prob, labelled=labelled)  # Function, NeuralJoint
    if covariates is not None or isinstance(post.mechanism, CovariateTabular):
        return covariate_payoff_table(post, covariates, prob, labelled=labelled)
    return None
