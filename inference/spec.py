"""The model specification: data, mechanism, learner spec and priors, validated once.

:class:`ModelSpec` is what every engine fits; :func:`initial_values` and
:func:`check_finite_start` give and check a starting point.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.util import log_density

from bayes_diml.counterfactual import CounterfactualPlan, episode_contexts, plan_for, takes_covariates
from bayes_diml.data import Trajectories
from bayes_diml.inference.errors import FitError
from bayes_diml.learners import uses_payoff_levels
from bayes_diml.mechanisms import CovariateTabular, GroupedTabular, Tabular
from bayes_diml.models import (
    BIAS,
    BIAS_FREE,
    GROUP_SCALE,
    INFER_HIERARCHICAL,
    INFER_PER_AGENT,
    INFER_SUBJECT,
    BoundModel,
    ClosedModel,
    Priors,
    bias_free_shape,
    bind_model,
    check_fixed_learner,
    hierarchical_initial_values,
    inferred_learner_fields,
    learner_latent_sites,
    logit_q_model,
    mechanism_sites,
    resolve_learner,
    sites_from_params,
)

__all__ = ["ModelSpec", "initial_values", "check_finite_start"]


class ModelSpec(NamedTuple):
    """Everything that defines the model: data, mechanism, learner spec and priors.

    ``plan`` is the data's counterfactual plan (``bayes_diml.counterfactual.plan_for``),
    built once with the spec (:meth:`build`, :meth:`from_parts`, :meth:`with_data`) and
    used by every evaluation of the model. ``mesh`` (optional ``jax.sharding.Mesh`` with an
    ``"episode"`` axis) splits the likelihood's episodes over devices; it changes no value.
    """

    data: Trajectories
    mechanism: Any
    learner: Any
    priors: Priors
    plan: CounterfactualPlan
    mesh: Any = None

    @classmethod
    def from_parts(
        cls, data: Trajectories, mechanism: Any, learner: Any, priors: Priors, mesh: Any = None
    ) -> ModelSpec:
        """Return the spec of already validated pieces, with the data's plan built now.

        The memory guard (``bayes_diml.memory.check_plan_memory``) runs before the plan
        is built. Use :meth:`build` for pieces that still need checking.
        """
        return cls(data, mechanism, learner, priors, plan_for(mechanism, data), mesh)

    # equality and hash as the pieces' (data by identity, as Trajectories compare); the plan,
    # which holds arrays, hashes by its kind and shape and compares by identity, else by value.
    # So a spec stays usable as a static argument of jax.jit, as before it held a plan.
    def _key(self) -> tuple:
        contexts = None if self.plan.contexts is None else np.shape(self.plan.contexts)
        plan = (self.plan.kind, self.plan.points.shape, self.plan.index.shape, contexts)
        return (self.data, self.mechanism, self.learner, self.priors, plan, self.mesh)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return self._key() == other._key() and _same_plan(self.plan, other.plan)

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self._key())

    def with_data(self, data: Trajectories) -> ModelSpec:
        """Return the spec for other data (same shape or not), with their plan."""
        return self._replace(data=data, plan=plan_for(self.mechanism, data))

    @classmethod
    def build(cls, data: Any, mechanism: Any, learner: Any, priors: Priors | None) -> ModelSpec:
        """Validate the pieces with clear errors and return the spec (with the data's plan)."""
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
        check_fixed_learner(learner, data.n_agents, data.n_actions)
        priors = priors if priors is not None else Priors()
        if not isinstance(priors, Priors):
            raise TypeError(f"priors must be bayes_diml.models.Priors; got {type(priors).__name__}.")
        check_context_fit(data, mechanism, learner)
        if isinstance(mechanism, Tabular) and not mechanism.levels and _sees_levels(data, learner):
            # observed payoffs and played-action reinforcement see each agent's mean payoff over
            # its own actions: there it is a parameter, not a gauge
            mechanism = dataclasses.replace(mechanism, levels=True)
        return cls.from_parts(data, mechanism, learner, priors)

    def model(self, observe: bool = True) -> BoundModel | ClosedModel:
        """Return the NumPyro model with data and plan bound: a callable of no arguments.

        A :class:`~bayes_diml.models.BoundModel` (a pytree whose leaves are the data arrays),
        so the compiled programs that take it as an argument are shared by every spec with
        equal mechanism, learner, priors and data shapes; a
        :class:`~bayes_diml.models.ClosedModel` when a piece cannot be compared by value or a
        mesh is set (then each model compiles its own programs).
        """
        extra = {} if self.mesh is None else {"mesh": self.mesh}
        return bind_model(
            logit_q_model,
            self.data,
            self.plan,
            self.mechanism,
            self.learner,
            self.priors,
            observe=observe,
            **extra,
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
    """Return starting values of every latent site.

    Mechanism sites: the mechanism's own ``init(key)`` (a zero table for ``Tabular``, plus
    ``jitter`` noise); learner sites: their prior means (an inferred action bias: 0);
    payoff noise: its prior median.
    """
    out: dict[str, jax.Array] = {}
    if isinstance(spec.mechanism, GroupedTabular):  # the shared table at 0, no group deviation
        for name, shape in mechanism_sites(spec.mechanism).items():
            key, sub = jax.random.split(key)
            out[name] = jitter * jax.random.normal(sub, shape)
        out[GROUP_SCALE] = jnp.asarray(spec.mechanism.group_scale_median)
    elif isinstance(spec.mechanism, Tabular | CovariateTabular):  # centred table (and slopes) near 0
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
        if name == BIAS:
            out[BIAS_FREE] = jnp.zeros(bias_free_shape(spec.data.n_actions))
        elif v == INFER_PER_AGENT:
            out[name] = jnp.full((spec.data.n_agents,), pr.learner_centre(name))
        elif v == INFER_HIERARCHICAL:
            out.update(hierarchical_initial_values(spec.learner, name, pr, spec.data.n_agents))
        elif v == INFER_SUBJECT:
            out.update(hierarchical_initial_values(spec.learner, name, pr, spec.data.n_subjects))
        else:
            out[name] = jnp.asarray(pr.learner_centre(name))
    if spec.data.has_payoffs:
        out["payoff_noise"] = jnp.asarray(0.6745 * pr.payoff_noise)
    return out


def _same_plan(a: CounterfactualPlan, b: CounterfactualPlan) -> bool:
    """Tell whether two plans are the same object or hold equal arrays."""
    if a is b:
        return True
    pairs = ((a.points, b.points), (a.index, b.index), (a.action_mask, b.action_mask))
    if (a.contexts is None) != (b.contexts is None):
        return False
    if a.contexts is not None and not np.array_equal(a.contexts, b.contexts):
        return False
    return a.kind == b.kind and all(np.array_equal(x, y) for x, y in pairs)


def check_context_fit(data: Trajectories, mechanism: Any, learner: Any = None) -> None:
    """Refuse a grouped or covariate fit this model cannot make (ValueError/DataError with the reason).

    Checks the data's groups or covariates, then, unless ``learner`` is None, that no payoff
    level enters the model (observed payoffs, a learner that reinforces the played action):
    ``GroupedTabular`` and ``CovariateTabular`` model payoff differences only. Other mechanisms
    of covariates (``Function`` / ``NeuralJoint`` with ``covariate_names``) model payoff levels
    as they do without covariates: only their data are checked. Runs when a :class:`ModelSpec` is built;
    ``learner="auto"`` runs it for every candidate before fitting any.
    """
    if isinstance(mechanism, GroupedTabular):
        _check_groups(data, mechanism)
        advice = "Fit each group with Tabular, or use"
    elif isinstance(mechanism, CovariateTabular):
        episode_contexts(mechanism, data)  # covariates present, named and finite (DataError)
        advice = "Use"
    elif takes_covariates(mechanism):  # Function / NeuralJoint of covariates: they model payoff levels too
        episode_contexts(mechanism, data)  # covariates present, named and finite (DataError)
        return
    else:
        return
    if learner is not None and _sees_levels(data, learner):
        raise ValueError(
            f"{type(mechanism).__name__} models payoff differences only; observed payoffs and learners "
            "that reinforce the played action (BanditQ, EWA, Aspiration) see payoff levels. "
            f"{advice} a full-feedback learner (LogitQ, Hedge, ...)."
        )


def _check_groups(data: Trajectories, mechanism: GroupedTabular) -> None:
    """Refuse data whose groups the grouped mechanism does not match, with the reason."""
    from bayes_diml.counterfactual import episode_group_codes

    try:
        codes = episode_group_codes(mechanism, data)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    missing = [g for c, g in enumerate(mechanism.groups) if not np.any(codes == c)]
    if missing:
        raise ValueError(
            f"group(s) {', '.join(map(repr, missing))} of the mechanism have no episode in the data; "
            "build it with the data's groups: GroupedTabular(n_actions, data.group_names)."
        )


def _sees_levels(data: Trajectories, learner: Any) -> bool:
    """Tell whether payoff levels (not only differences between own actions) enter the model."""
    return bool(data.has_payoffs) or uses_payoff_levels(learner)


def check_finite_start(spec: ModelSpec, values: dict[str, Any]) -> None:
    """Stop with a diagnosis if the log density is not finite at ``values`` (constrained)."""
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
