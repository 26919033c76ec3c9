"""NumPyro model of action trajectories under logit-Q learning and an unknown mechanism.

Sites (names are the ArviZ variable names):

- mechanism weights: ``u{i}_free`` for a ``Tabular`` mechanism (gauge-fixed, see
  :func:`sum_to_zero_basis`), else ``mech.<path>`` per leaf of the params pytree;
- learner: ``alpha``, ``beta``, ``eps`` (scalars, or ``float[n]`` inside the ``agent``
  plate) unless fixed; other learner families (``Hedge``, ``EWA``, ...) have one site per
  inferred parameter, named after it (``eta``, ``phi``, ``delta``, ``rho``, ``lam``, ...);
- action bias (``bias="infer"``): ``bias_free`` float[n, K - 1] (latent, gauge-free) and
  ``bias`` float[n, K] (deterministic), see :mod:`~bayes_diml.models.bias`;
- ``payoff_noise`` when payoffs are observed;
- observations: ``actions`` (:class:`LearnerPolicy`, the learner's categorical policy over the
  next action, scoring only the observed action; plates
  ``episode x step x agent``, masked on padding) and ``payoffs`` (Normal, plates
  ``episode x time x agent``, masked where unobserved);
- deterministic: ``centred_payoffs`` float[K_1, ..., K_n, n] for small games, and
  ``scaled_payoffs = beta * centred_payoffs`` (the identified product) when beta and
  the payoff scale are confounded (for Hedge eta, for EWA lam in place of beta).

The pieces live in their own modules: priors (:mod:`~bayes_diml.models.priors`), mechanism
sites (:mod:`~bayes_diml.models.sites`), learner spec (:mod:`~bayes_diml.models.learner_spec`)
and the observation block (:mod:`~bayes_diml.models.observation`); their public names are
re-exported here and from :mod:`bayes_diml.models`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from bayes_diml.counterfactual import CounterfactualPlan, plan_for
from bayes_diml.data import Trajectories
from bayes_diml.learners import LogitQ, temperature_name
from bayes_diml.mechanisms import GroupedTabular, joint_profiles
from bayes_diml.metrics import payoff_differences

from .bias import BIAS, infers_bias
from .bound import ModelData
from .learner_spec import (
    check_fixed_learner,
    hierarchical_learner_fields,
    inferred_learner_fields,
    learner_fields,
    learner_from_sites,
    learner_latent_sites,
    resolve_learner,
    sample_learner,
    subject_learner_fields,
)
from .observation import observe_trajectories
from .priors import INFER, INFER_HIERARCHICAL, INFER_PER_AGENT, LEARNER_FIELDS, LEARNER_PRIOR_KINDS, Priors
from .sites import (
    free_from_table,
    mechanism_sites,
    param_site_names,
    params_from_sites,
    sample_mechanism,
    sites_from_params,
    sum_to_zero_basis,
)

__all__ = [
    "INFER",
    "INFER_PER_AGENT",
    "INFER_HIERARCHICAL",
    "LEARNER_FIELDS",
    "LEARNER_PRIOR_KINDS",
    "learner_fields",
    "Priors",
    "logit_q_model",
    "sum_to_zero_basis",
    "mechanism_sites",
    "params_from_sites",
    "sites_from_params",
    "free_from_table",
    "resolve_learner",
    "learner_from_sites",
    "learner_latent_sites",
    "inferred_learner_fields",
    "hierarchical_learner_fields",
    "check_fixed_learner",
    "sample_learner",
    "sample_mechanism",
    "is_confounded",
    "has_fixed_units",
    "REPORT_TABLE_LIMIT",
    "deterministic_site_names",
]

#: Largest number of (profile, agent) cells for which the centred payoff table is recorded.
REPORT_TABLE_LIMIT = 20_000
_DEFAULT_PRIORS = Priors()


def has_fixed_units(mechanism: Any) -> bool:
    """Tell whether the mechanism's payoff scale is fixed (known constants set its units)."""
    return bool(getattr(mechanism, "fixed_units", False))


def is_confounded(mechanism: Any, learner: Any, data: Trajectories) -> bool:
    """Tell whether only temperature x payoff differences is identified.

    That is when the temperature (beta, Hedge's eta, EWA's lam) is inferred, payoffs are not
    observed and the mechanism's payoff scale is free.
    """
    temperature = getattr(learner, temperature_name(learner))
    return isinstance(temperature, str) and not data.has_payoffs and not has_fixed_units(mechanism)


def _reports_table(n_actions: tuple[int, ...]) -> bool:
    return math.prod(n_actions) * len(n_actions) <= REPORT_TABLE_LIMIT


def deterministic_site_names(data: Trajectories, mechanism: Any, learner: LogitQ | None) -> list[str]:
    """Return the names of the model's deterministic sites for these inputs."""
    learner = resolve_learner(learner)
    names = hierarchical_learner_fields(learner)  # per-agent values of populations
    names += subject_learner_fields(learner)  # per-subject values of populations
    if infers_bias(learner):
        names.append(BIAS)
    names += param_site_names(mechanism)
    if not _reports_table(data.n_actions):
        return names
    names.append("centred_payoffs")
    if is_confounded(mechanism, learner, data):
        names.append("scaled_payoffs")
    return names


# --------------------------------------------------------------------------- model
def logit_q_model(
    data: Trajectories,
    mechanism: Any,
    learner: LogitQ | None = None,
    priors: Priors = _DEFAULT_PRIORS,
    *,
    observe: bool = True,
    batch_size: int | None = None,
    mesh: Any = None,
    plan: CounterfactualPlan | None = None,
) -> None:
    """NumPyro model: priors on mechanism and learner, exact logit-Q likelihood of actions.

    Parameters
    ----------
    data : Trajectories or ModelData
        ``actions: int[M, T, n]``; the history that conditions every next-action term
        (:class:`~bayes_diml.models.bound.ModelData`: its arrays, possibly traced, with ``plan``).
    mechanism : Mechanism
    learner : LogitQ, optional
        Fields fixed (numbers) or ``"infer"`` / ``"infer_per_agent"`` / ``"infer_hierarchical"``
        / ``"infer_subject"`` (one value per subject, ``data.subjects``, from a population);
        ``None`` infers all.
    priors : Priors
    observe : bool
        If False, next actions and payoffs are sampled (posterior/prior predictive of one
        step ahead given the observed history) instead of observed.
    batch_size : int, optional
        Subsample this many episodes per evaluation (``numpyro.plate`` subsampling, for
        SVI): counterfactuals and the learner scan are computed for those episodes only and
        their log-likelihood is scaled by ``M / batch_size`` (an unbiased estimate).
    mesh : jax.sharding.Mesh, optional
        Split the episode axis of the likelihood over the mesh's ``"episode"`` devices
        (see ``bayes_diml.sharding``).
    plan : CounterfactualPlan, optional
        The counterfactual plan of ``data`` (``bayes_diml.counterfactual.plan_for``),
        built once by :class:`bayes_diml.inference.ModelSpec`; when None it is built at every
        run of the model.
    """
    learner = resolve_learner(learner)
    M, T, n = data.actions.shape
    per_subject = tuple(subject_learner_fields(learner))
    temperature = temperature_name(learner)
    if temperature in per_subject and is_confounded(mechanism, learner, data):
        raise ValueError(
            f"learner.{temperature} = 'infer_subject' needs observed payoffs or a mechanism with fixed "
            f"payoff units: otherwise each subject's {temperature} is confounded with the payoff scale. "
            f"Fix {temperature}, or make it 'infer'."
        )
    params = sample_mechanism(mechanism, priors)
    lq = sample_learner(learner, priors, n, n_actions=data.n_actions, n_subjects=data.n_subjects)

    if _reports_table(data.n_actions):
        profiles = jnp.asarray(joint_profiles(data.n_actions).reshape(*data.n_actions, n))
        centred = numpyro.deterministic(
            "centred_payoffs", _payoff_differences(mechanism, params, profiles, data.n_actions)
        )
        if is_confounded(mechanism, learner, data):
            numpyro.deterministic("scaled_payoffs", centred * getattr(lq, temperature_name(lq)))

    if per_subject:  # float[S] -> float[M]: each episode takes its subject's values
        subject = jnp.asarray(data.subject_index)
        lq = lq._replace(**{f: getattr(lq, f)[subject] for f in per_subject})
    payoffs, payoff_mask = _observed_payoffs(data)
    observe_trajectories(
        mechanism,
        params,
        lq,
        plan if plan is not None else plan_for(mechanism, data),
        data.actions,
        priors,
        scored=data.scored_mask,
        payoffs=payoffs,
        payoff_mask=payoff_mask,
        observe=observe,
        batch_size=batch_size,
        mesh=mesh,
        episode_fields=per_subject,
    )


def _observed_payoffs(data: Any) -> tuple[Any, Any]:
    """``(payoffs, mask)``: observed payoffs with 0 where missing, and where; Nones without any."""
    if isinstance(data, ModelData):
        return data.observed_payoffs()
    if not data.has_payoffs:
        return None, None
    return np.nan_to_num(data.payoffs), np.isfinite(data.payoffs)


#: The centred payoff table as a compiled program of stable identity (one dispatch when the
#: model runs eagerly; its traced form reused inside jitted programs), see
#: ``models/observation.py``.
_payoff_differences_jit = jax.jit(payoff_differences, static_argnums=(0,), static_argnames=("n_actions",))


def _payoff_differences(mechanism: Any, params: Any, profiles: Any, n_actions: tuple[int, ...]) -> jax.Array:
    """Run ``payoff_differences`` compiled per mechanism (a static argument).

    A mechanism that cannot be hashed runs it as it is. A ``GroupedTabular`` gives one centred
    table per group: float[G, K_1..K_n, n].
    """
    if isinstance(mechanism, GroupedTabular):
        tab = mechanism.tabular
        return jax.vmap(lambda t: _payoff_differences(tab, {"table": t}, profiles, n_actions))(
            params["table"]
        )
    try:
        hash(mechanism)
    except TypeError:
        return payoff_differences(mechanism, params, profiles, n_actions=n_actions)
    return _payoff_differences_jit(mechanism, params, profiles, n_actions=tuple(n_actions))
