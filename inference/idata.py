"""ArviZ DataTree assembly: deterministic sites, pointwise log-likelihood and log prior."""

from __future__ import annotations

import functools
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import Predictive
from numpyro.infer.util import log_likelihood as numpyro_log_likelihood

from bayes_diml.inference.spec import ModelSpec
from bayes_diml.mechanisms import CovariateTabular, GroupedTabular
from bayes_diml.models import (
    BIAS,
    INFER_HIERARCHICAL,
    INFER_PER_AGENT,
    INFER_SUBJECT,
    deterministic_site_names,
    hierarchical_site_names,
    inferred_learner_fields,
)

from .programs import as_program_argument
from .quiet import CHAINS_LONGER_THAN_DRAWS, silenced

__all__ = [
    "build_idata",
    "deterministic_sites",
    "group_by_chain",
    "pointwise_log_likelihood",
    "pointwise_log_prior",
]


def deterministic_sites(
    spec: ModelSpec, samples: dict[str, Any], batch_ndims: int = 1
) -> dict[str, np.ndarray]:
    """Deterministic sites (centred payoffs, ...) recomputed for flat draws of the latents."""
    names = deterministic_site_names(spec.data, spec.mechanism, spec.learner)
    if not names:
        return {}
    model = as_program_argument(spec.model())
    samples = {k: jnp.asarray(v) for k, v in samples.items()}
    out = _deterministic(model, samples, tuple(names), int(batch_ndims))
    return {k: np.asarray(v) for k, v in out.items() if k in names}


# Compiled once per model structure and shapes (the model is an argument, its data its leaves:
# ``programs.py``), so the fits of a study or the bags of a bagged posterior share them.
@functools.partial(jax.jit, static_argnames=("names", "batch_ndims"))
def _deterministic(model: Any, samples: dict, names: tuple[str, ...], batch_ndims: int) -> dict:
    pred = Predictive(model, posterior_samples=samples, return_sites=list(names), batch_ndims=batch_ndims)
    return pred(jax.random.key(0))


@jax.jit
def _log_likelihood(model: Any, latent: dict) -> dict:
    return numpyro_log_likelihood(model, latent, batch_ndims=1)


def pointwise_log_likelihood(spec: ModelSpec, samples: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-observation log-likelihood of flat draws: ``actions`` float[D, M, T-1, n] (and payoffs)."""
    latent = {k: jnp.asarray(samples[k]) for k in spec.latent_names}
    out = _log_likelihood(as_program_argument(spec.model()), latent)
    mask = spec.data.scored_mask[None, :, :, None]
    res = {"actions": np.where(mask, np.asarray(out["actions"]), 0.0)}
    if "payoffs" in out:
        obs = np.isfinite(spec.data.payoffs)[None]
        res["payoffs"] = np.where(obs, np.asarray(out["payoffs"]), 0.0)
    return res


@functools.partial(jax.jit, static_argnames=("names",))
def _log_prior(model: Any, latent: dict, names: tuple[str, ...]) -> dict:
    def one(draw):
        tr = numpyro.handlers.trace(
            numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=draw)
        ).get_trace()
        return {k: tr[k]["fn"].log_prob(tr[k]["value"]) for k in names}

    return jax.vmap(one)(latent)


def pointwise_log_prior(spec: ModelSpec, samples: dict[str, Any]) -> dict[str, np.ndarray]:
    """Log prior density of each latent site at flat draws: dict name -> float[D] (no Jacobian)."""
    names = tuple(spec.latent_names)
    latent = {k: jnp.asarray(samples[k]) for k in names}
    out = _log_prior(as_program_argument(spec.model()), latent, names)
    return {k: np.asarray(v) for k, v in out.items()}


def _dims(spec: ModelSpec) -> dict[str, list[str]]:
    n = spec.data.n_agents
    profile_dims = [f"action_{i}" for i in range(n)] + ["agent"]
    dims = {
        "centred_payoffs": profile_dims,
        "scaled_payoffs": profile_dims,
        "support": profile_dims,
        "actions": ["episode", "step", "agent"],
        "payoffs": ["episode", "time", "agent"],
        "all_actions": ["episode", "time", "agent"],
        "lengths": ["episode"],
        "subjects": ["episode"],
        "covariates": ["episode", "covariate"],
        "n_actions": ["agent"],
    }
    if isinstance(spec.mechanism, GroupedTabular):  # one centred table per group
        for name in ("centred_payoffs", "scaled_payoffs"):
            dims[name] = ["group", *profile_dims]
    if isinstance(spec.mechanism, CovariateTabular):  # slopes: named by _name_slope_dims
        if _data_covariate_names(spec) != spec.mechanism.covariate_names:  # the data hold others too
            dims["covariates"] = ["episode", "data_covariate"]
    for name in inferred_learner_fields(spec.learner):
        if name == BIAS:  # per agent and action (its latent bias_free, like u{i}_free, gets default dims)
            dims[BIAS] = ["agent", "action"]
        elif getattr(spec.learner, name) == INFER_PER_AGENT:
            dims[name] = ["agent"]
        elif getattr(spec.learner, name) == INFER_HIERARCHICAL:
            dims[name] = dims[hierarchical_site_names(name)[2]] = ["agent"]
        elif getattr(spec.learner, name) == INFER_SUBJECT:  # one value per subject (data.subjects)
            dims[name] = dims[hierarchical_site_names(name)[2]] = ["subject"]
    return dims


def _data_covariate_names(spec: ModelSpec) -> tuple[str, ...]:
    """Return the data's covariate names (empty without covariates)."""
    return tuple(getattr(spec.data, "covariate_names", None) or ())


def _coords(spec: ModelSpec) -> dict[str, list[str]] | None:
    """Coordinates of the named dims of :func:`_dims`: groups, the data's covariates beside a fit's."""
    mech = spec.mechanism
    if isinstance(mech, GroupedTabular):
        return {"group": list(mech.groups)}
    names = _data_covariate_names(spec)
    if isinstance(mech, CovariateTabular) and names and names != mech.covariate_names:
        return {"data_covariate": list(names)}
    return None


def _name_slope_dims(tree: Any, spec: ModelSpec) -> None:
    """Give a covariate fit's ``u{i}_slope`` draws the dims ``(chain, draw, covariate, *u{i}_free's)``.

    Done on the posterior and prior groups after ``az.from_dict`` (whose ``dims`` would also
    apply to the log_prior group, where each site is one number per draw); the ``covariate``
    coordinate holds the mechanism's covariate names.
    """
    mech = spec.mechanism
    if not isinstance(mech, CovariateTabular):
        return
    n = mech.n_agents
    for group in ("posterior", "prior"):
        if group not in tree.children:
            continue
        ds = tree[group].to_dataset()
        names = [f"u{i}_slope" for i in range(n) if f"u{i}_slope" in ds.data_vars]
        if not names:
            continue
        for name in names:
            i = int(name[1 : -len("_slope")])
            old = ds[name].dims[2:]
            new = ["covariate", *(f"u{i}_free_dim_{j}" for j in range(n))]
            da = ds[name].drop_vars([d for d in old if d in ds[name].coords])
            ds[name] = da.rename(dict(zip(old, new, strict=True)))
        ds = ds.drop_dims([d for d in ds.dims if d.startswith("u") and "_slope_dim_" in d])
        tree[group] = ds.assign_coords(covariate=list(mech.covariate_names))


def build_idata(
    spec: ModelSpec,
    posterior: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray] | None = None,
    *,
    log_likelihood: bool = True,
    prior: dict[str, np.ndarray] | None = None,
    prior_predictive: dict[str, np.ndarray] | None = None,
    posterior_predictive: dict[str, np.ndarray] | None = None,
    support: np.ndarray | None = None,
    attrs: dict | None = None,
):
    """ArviZ DataTree from draws shaped [C, S, ...] (posterior, sample_stats, log_likelihood, ...)."""
    data = spec.data
    groups: dict[str, dict[str, np.ndarray]] = {"posterior": posterior}
    if sample_stats:
        groups["sample_stats"] = sample_stats
    if log_likelihood:
        C, S = next(iter(posterior.values())).shape[:2]
        flat = {k: v.reshape(C * S, *v.shape[2:]) for k, v in posterior.items()}
        ll = pointwise_log_likelihood(spec, flat)
        groups["log_likelihood"] = {
            k: v.reshape(C, S, *v.shape[1:]).astype(np.float32) for k, v in ll.items()
        }
        if not spec.flat_priors:
            lp = pointwise_log_prior(spec, flat)
            groups["log_prior"] = {k: v.reshape(C, S, *v.shape[1:]) for k, v in lp.items()}
    observed = {"actions": data.actions[:, 1:]}
    if data.payoffs is not None:
        observed["payoffs"] = data.payoffs
    groups["observed_data"] = observed
    constant = {"all_actions": data.actions, "lengths": data.lengths, "n_actions": np.asarray(data.n_actions)}
    if data.subjects is not None:
        constant["subjects"] = data.subjects
    if getattr(data, "covariates", None) is not None:  # their names and the group labels: in the fit's JSON
        constant["covariates"] = data.covariates
    if support is not None:
        constant["support"] = support
    groups["constant_data"] = constant
    if prior is not None:
        groups["prior"] = prior
    if prior_predictive:
        groups["prior_predictive"] = prior_predictive
    if posterior_predictive is not None:
        groups["posterior_predictive"] = posterior_predictive
    with silenced(CHAINS_LONGER_THAN_DRAWS):
        tree = az.from_dict(groups, dims=_dims(spec), coords=_coords(spec))
    _name_slope_dims(tree, spec)
    if attrs:
        tree.attrs.update(attrs)
    return tree


def group_by_chain(samples: dict[str, Any], num_chains: int) -> dict[str, np.ndarray]:
    """Flat draws [D, ...] -> [C, D/C, ...]."""
    out = {}
    for k, v in samples.items():
        v = np.asarray(v)
        out[k] = v.reshape(num_chains, v.shape[0] // num_chains, *v.shape[1:])
    return out
