"""The learner spec: which parameters of a learner family are fixed, inferred or hierarchical.

A learner spec is an instance of a learner family whose fields are numbers (fixed),
``"infer"``, ``"infer_per_agent"``, ``"infer_hierarchical"`` (per agent, from a population) or
``"infer_subject"`` (per subject, from a population; a subject is an episode)
(:data:`~bayes_diml.models.priors.INFER` and friends). The action bias ``bias`` is a number,
``float[n, K]`` or ``"infer"`` (sites ``bias_free`` and ``bias``, see :mod:`.bias`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpyro

from bayes_diml.learners import FAMILIES, LogitQ, check_bias, learner_parameters, parameter_names

from .bias import BIAS, BIAS_FREE, bias_from_free, sample_bias
from .hierarchical import hierarchical_site_names, sample_hierarchical
from .priors import INFER, INFER_HIERARCHICAL, INFER_PER_AGENT, INFER_SUBJECT, Priors

__all__ = [
    "learner_fields",
    "resolve_learner",
    "inferred_learner_fields",
    "hierarchical_learner_fields",
    "subject_learner_fields",
    "population_learner_fields",
    "learner_latent_sites",
    "check_fixed_learner",
    "sample_learner",
    "learner_from_sites",
]


def learner_fields(learner: Any) -> tuple[str, ...]:
    """Return the names of a learner family's inferable fields (LogitQ: alpha, beta, eps, bias).

    The parameters (``parameter_names``) and, for learners that have one, the action bias.
    """
    cls = learner if isinstance(learner, type) else type(learner)
    has_bias = BIAS in getattr(cls, "_fields", ())
    return parameter_names(learner) + ((BIAS,) if has_bias else ())


def resolve_learner(learner: Any) -> Any:
    """Normalise a learner spec: ``None`` -> ``LogitQ`` with everything inferred; checks field values.

    ``learner`` is an instance of a learner family (``LogitQ``, ``BanditQ``, ``Hedge``,
    ``FictitiousPlay``, ``EWA``, or any learner declaring ``PARAMETERS`` and ``TEMPERATURE``);
    each of its parameters is a number or array (fixed), ``"infer"`` (one shared value) or
    ``"infer_per_agent"``; its action bias a number, ``float[n, K]`` or ``"infer"``.
    """
    if learner is None:
        return LogitQ(INFER, INFER, INFER)
    if getattr(type(learner), "PARAMETERS", None) is None or not hasattr(learner, "_replace"):
        families = ", ".join(c.__name__ for c in FAMILIES.values())
        raise TypeError(
            f"learner must be one of the learner families ({families}; fields may be 'infer'); "
            f"got {type(learner).__name__}."
        )
    bias = getattr(learner, BIAS, 0.0)
    if isinstance(bias, str) and bias != INFER:
        raise ValueError(
            f"learner.bias = {bias!r}: the action bias is per agent and action already; use a number, "
            f"float[n, K] or {INFER!r}."
        )
    for name in learner_fields(learner):
        v = getattr(learner, name)
        if isinstance(v, str) and v not in (INFER, INFER_PER_AGENT, INFER_HIERARCHICAL, INFER_SUBJECT):
            raise ValueError(
                f"learner.{name} = {v!r}: use a number, {INFER!r}, {INFER_PER_AGENT!r}, "
                f"{INFER_HIERARCHICAL!r} or {INFER_SUBJECT!r}."
            )
    return learner


def inferred_learner_fields(learner: Any) -> tuple[str, ...]:
    """Return the names of the learner parameters that are inferred."""
    return tuple(n for n in learner_fields(learner) if isinstance(getattr(learner, n), str))


def hierarchical_learner_fields(learner: Any) -> list[str]:
    """Return the names of the parameters set to ``"infer_hierarchical"``."""
    return [n for n in inferred_learner_fields(learner) if getattr(learner, n) == INFER_HIERARCHICAL]


def subject_learner_fields(learner: Any) -> list[str]:
    """Return the names of the parameters set to ``"infer_subject"`` (one value per subject)."""
    return [n for n in inferred_learner_fields(learner) if getattr(learner, n) == INFER_SUBJECT]


def population_learner_fields(learner: Any) -> list[str]:
    """Return the names of the parameters with population sites (per agent or per subject)."""
    kinds = (INFER_HIERARCHICAL, INFER_SUBJECT)
    return [n for n in inferred_learner_fields(learner) if getattr(learner, n) in kinds]


def learner_latent_sites(learner: Any) -> list[str]:
    """Return the learner's latent sample sites.

    Inferred fields, hierarchical ones as (mu, sigma, z), the action bias as ``bias_free``.
    """
    out = []
    for n in inferred_learner_fields(learner):
        if n == BIAS:
            out.append(BIAS_FREE)
        else:
            population = getattr(learner, n) in (INFER_HIERARCHICAL, INFER_SUBJECT)
            out += list(hierarchical_site_names(n)) if population else [n]
    return out


def check_fixed_learner(learner: Any, n_agents: int, n_actions: Any = None) -> None:
    """Check the fixed parameters (inferred ones replaced by a valid placeholder).

    A fixed bias is checked against ``n_actions`` (the ``K_i``) when they are given.
    """
    placeholder = {p.name: (0.5 if p.unit else 1.0) for p in learner_parameters(learner)}
    placeholder[BIAS] = 0.0
    fixed = learner._replace(**{n: placeholder[n] for n in inferred_learner_fields(learner)})
    fixed.check(n_agents)
    check_bias(fixed, n_agents, n_actions)


def sample_learner(
    learner: Any, priors: Priors, n_agents: int, n_actions: Any = None, n_subjects: int | None = None
) -> Any:
    """Sample (or fix) every parameter of the learner family and return the learner.

    One site per inferred field (inside an ``agent`` plate for ``"infer_per_agent"``,
    population sites for ``"infer_hierarchical"`` and, with a ``subject`` plate of
    ``n_subjects``, for ``"infer_subject"``, whose field is then float[n_subjects]; for
    ``bias="infer"`` the sites ``bias_free`` and ``bias``, which need ``n_actions``, the
    ``K_i``); fixed fields become arrays. Call inside a NumPyro model.
    """
    values = {}
    for name in learner_fields(learner):
        v = getattr(learner, name)
        if name == BIAS and isinstance(v, str):
            if n_actions is None:
                raise ValueError("sample_learner needs n_actions (the K_i) to infer the action bias.")
            values[name] = sample_bias(priors, n_actions)
        elif isinstance(v, str) and v == INFER:
            values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif isinstance(v, str) and v == INFER_PER_AGENT:
            with numpyro.plate("agent", n_agents, dim=-1):
                values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif isinstance(v, str) and v == INFER_HIERARCHICAL:
            values[name] = sample_hierarchical(learner, name, priors, n_agents)
        elif isinstance(v, str) and v == INFER_SUBJECT:
            if n_subjects is None:
                raise ValueError(f"sample_learner needs n_subjects for learner.{name} = {INFER_SUBJECT!r}.")
            values[name] = sample_hierarchical(learner, name, priors, n_subjects, plate="subject")
        else:
            values[name] = jnp.asarray(v, dtype=jnp.result_type(float))
    return learner._replace(**values)


def learner_from_sites(learner: Any, sites: dict[str, Any], n_actions: Any = None) -> Any:
    """Return the learner with inferred fields taken from ``sites`` (e.g. one posterior draw).

    An inferred bias is ``sites["bias"]``, else computed from ``sites["bias_free"]`` with the
    ``K_i`` in ``n_actions`` (all equal to ``bias_free.shape[-1] + 1`` when not given).
    """
    values = {}
    for n in inferred_learner_fields(learner):
        if n == BIAS and BIAS not in sites:
            free = jnp.asarray(sites[BIAS_FREE])
            k = n_actions if n_actions is not None else (free.shape[-1] + 1,) * free.shape[-2]
            values[n] = bias_from_free(free, k)
        else:
            values[n] = jnp.asarray(sites[n])
    return learner._replace(**values)
