"""Shared pieces of the inference methods: the model closure, initial values, DataTree assembly."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any, NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from bayes_diml.models import (
    INFER_HIERARCHICAL,
    INFER_PER_AGENT,
    Priors,
    deterministic_site_names,
    hierarchical_site_names,
    inferred_learner_fields,
    learner_latent_sites,
    logit_q_model,
    mechanism_sites,
    resolve_learner,
    sites_from_params,
)
from bayes_diml.models.logit_q import _fixed_learner_check
from numpyro.infer import Predictive
from numpyro.infer.util import log_likelihood as numpyro_log_likelihood

from bayes_diml.data import Trajectories
from bayes_diml.mechanisms import Tabular

__all__ = ["ModelSpec", "ConvergenceWarning", "ConfoundingWarning", "SpecificationWarning", "FitError"]


class ConvergenceWarning(UserWarning):
    """Sampler or optimiser diagnostics suggest the result is unreliable."""


class ConfoundingWarning(UserWarning):
    """A reported quantity is not identified by the data (e.g. beta vs payoff scale)."""


class SpecificationWarning(UserWarning):
    """The model restricts something the data could inform (e.g. centred payoffs for BanditQ / EWA)."""


class FitError(RuntimeError):
    """A fit could not proceed (non-finite log density, too large for the method, ...)."""


class ModelSpec(NamedTuple):
    """Everything that defines the model: data, mechanism, learner spec and priors.

    ``mesh`` (optional ``jax.sharding.Mesh`` with an ``"episode"`` axis) splits the
    likelihood's episodes over devices; it changes no value.
    """

    data: Trajectories
    mechanism: Any
    learner: Any
    priors: Priors
    mesh: Any = None

    @classmethod
    def build(cls, data: Any, mechanism: Any, learner: Any, priors: Priors | None) -> ModelSpec:
        """Validate the pieces with clear errors and return the spec."""
        if not isinstance(data, Trajectories):
            raise TypeError(
                f"data must be bayes_diml.Trajectories; got {type(data).__name__}. "
                "Use Trajectories(actions, n_actions) or bayes_diml.load_trajectories(path)."
            )
        if not (callable(getattr(mechanism, "init", None)) and callable(getattr(mechanism, "payoffs", None))):
            raise TypeError(f"{type(mechanism).__name__} is not a mechanism (needs init and payoffs).")
        mk = getattr(mechanism, "n_actions", None)
        if mk is not None and tuple(mk) != tuple(data.n_actions):
            raise ValueError(
                f"the mechanism has n_actions = {tuple(mk)} but the data have n_actions = "
                f"{tuple(data.n_actions)}; they must agree agent by agent."
            )
        learner = resolve_learner(learner)
        _fixed_learner_check(learner, data.n_agents)
        priors = priors if priors is not None else Priors()
        if not isinstance(priors, Priors):
            raise TypeError(f"priors must be bayes_diml.models.Priors; got {type(priors).__name__}.")
        if isinstance(mechanism, Tabular) and not mechanism.levels and _sees_levels(data, learner):
            # observed payoffs and played-action reinforcement see each agent's mean payoff over
            # its own actions: there it is a parameter, not a gauge
            mechanism = dataclasses.replace(mechanism, levels=True)
        return cls(data, mechanism, learner, priors)

    def model(self, observe: bool = True):
        """The NumPyro model with data bound: a function of no arguments."""
        extra = {} if self.mesh is None else {"mesh": self.mesh}
        return functools.partial(
            logit_q_model, self.data, self.mechanism, self.learner, self.priors, observe=observe, **extra
        )

    @property
    def latent_names(self) -> list[str]:
        """Names of the latent sample sites."""
        names = list(mechanism_sites(self.mechanism))
        names += learner_latent_sites(self.learner)
        if self.data.has_payoffs:
            names.append("payoff_noise")
        return names

    @property
    def flat_priors(self) -> bool:
        """Whether the mechanism prior is flat (improper)."""
        return self.priors.mechanism_scale is None


def initial_values(spec: ModelSpec, key: jax.Array, jitter: float = 0.0) -> dict[str, jax.Array]:
    """Starting values of every latent site.

    Mechanism sites: the mechanism's own ``init(key)`` (a zero table for ``Tabular``, plus
    ``jitter`` noise); learner sites: their prior means; payoff noise: its prior median.
    """
    out: dict[str, jax.Array] = {}
    if isinstance(spec.mechanism, Tabular):
        for name, shape in mechanism_sites(spec.mechanism).items():
            key, sub = jax.random.split(key)
            out[name] = jitter * jax.random.normal(sub, shape)
    else:
        out.update(
            {
                k: jnp.asarray(v)
                for k, v in sites_from_params(spec.mechanism, spec.mechanism.init(key)).items()
            }
        )
    pr = spec.priors
    for name in inferred_learner_fields(spec.learner):
        v = getattr(spec.learner, name)
        if v == INFER_PER_AGENT:
            out[name] = jnp.full((spec.data.n_agents,), pr.learner_centre(name))
        elif v == INFER_HIERARCHICAL:
            from bayes_diml.models.hierarchical import hierarchical_initial_values

            out.update(hierarchical_initial_values(spec.learner, name, pr, spec.data.n_agents))
        else:
            out[name] = jnp.asarray(pr.learner_centre(name))
    if spec.data.has_payoffs:
        out["payoff_noise"] = jnp.asarray(0.6745 * pr.payoff_noise)
    return out


def deterministic_sites(
    spec: ModelSpec, samples: dict[str, Any], batch_ndims: int = 1
) -> dict[str, np.ndarray]:
    """Deterministic sites (centred payoffs, ...) recomputed for flat draws of the latents."""
    model = spec.model()
    names = deterministic_site_names(spec.data, spec.mechanism, spec.learner)
    if not names:
        return {}

    @jax.jit
    def run(samples):
        pred = Predictive(model, posterior_samples=samples, return_sites=names, batch_ndims=batch_ndims)
        return pred(jax.random.key(0))

    out = run({k: jnp.asarray(v) for k, v in samples.items()})
    return {k: np.asarray(v) for k, v in out.items() if k in names}


def pointwise_log_likelihood(spec: ModelSpec, samples: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-observation log-likelihood of flat draws: ``actions`` float[D, M, T-1, n] (and payoffs)."""
    model = spec.model()
    latent = {k: jnp.asarray(samples[k]) for k in spec.latent_names}
    out = jax.jit(lambda s: numpyro_log_likelihood(model, s, batch_ndims=1))(latent)
    mask = spec.data.scored_mask[None, :, :, None]
    res = {"actions": np.where(mask, np.asarray(out["actions"]), 0.0)}
    if "payoffs" in out:
        obs = np.isfinite(spec.data.payoffs)[None]
        res["payoffs"] = np.where(obs, np.asarray(out["payoffs"]), 0.0)
    return res


def _sees_levels(data: Trajectories, learner: Any) -> bool:
    """Whether payoff levels (not only differences between own actions) enter the model."""
    from bayes_diml.learners import uses_payoff_levels

    return bool(data.has_payoffs) or uses_payoff_levels(learner)


def pointwise_log_prior(spec: ModelSpec, samples: dict[str, Any]) -> dict[str, np.ndarray]:
    """Log prior density of each latent site at flat draws: dict name -> float[D] (no Jacobian)."""
    model = spec.model()
    names = spec.latent_names

    def one(draw):
        tr = numpyro.handlers.trace(
            numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=draw)
        ).get_trace()
        return {k: tr[k]["fn"].log_prob(tr[k]["value"]) for k in names}

    latent = {k: jnp.asarray(samples[k]) for k in names}
    return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(latent).items()}


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
        "n_actions": ["agent"],
    }
    for name in inferred_learner_fields(spec.learner):
        if getattr(spec.learner, name) == INFER_PER_AGENT:
            dims[name] = ["agent"]
        elif getattr(spec.learner, name) == INFER_HIERARCHICAL:
            dims[name] = dims[hierarchical_site_names(name)[2]] = ["agent"]
    return dims


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
    if support is not None:
        constant["support"] = support
    groups["constant_data"] = constant
    if prior is not None:
        groups["prior"] = prior
    if prior_predictive:
        groups["prior_predictive"] = prior_predictive
    if posterior_predictive is not None:
        groups["posterior_predictive"] = posterior_predictive
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = az.from_dict(groups, dims=_dims(spec))
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


def check_finite_start(spec: ModelSpec, values: dict[str, Any]) -> None:
    """Stop with a diagnosis if the log density is not finite at ``values`` (constrained)."""
    from numpyro.infer.util import log_density

    model = spec.model()
    logp, trace = log_density(model, (), {}, values)
    if np.isfinite(float(logp)):
        return
    bad = []
    for name, site in trace.items():
        if site["type"] != "sample":
            continue
        lp = site["fn"].log_prob(site["value"])
        if "mask" in site and site["mask"] is not None:
            lp = jnp.where(site["mask"], lp, 0.0)
        lp = np.asarray(lp)
        if not np.all(np.isfinite(lp)):
            where = np.argwhere(~np.isfinite(lp))
            bad.append(f"site '{name}' at index {tuple(int(i) for i in where[0])}" if where.size else name)
    raise FitError(
        "the log density is not finite at the starting point: "
        + ("; ".join(bad) or "unknown site")
        + ". Check fixed learner values (alpha in (0, 1], eps in [0, 1)) and the mechanism's outputs."
    )
