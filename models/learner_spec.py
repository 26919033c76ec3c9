"""The learner spec: which parameters of a learner family are fixed, inferred or hierarchical.

A learner spec is an instance of a learner family whose fields are numbers (fixed),
``"infer"``, ``"infer_per_agent"`` or ``"infer_hierarchical"``
(:data:`~bayes_diml.models.priors.INFER` and friends).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpyro

from bayes_diml.learners import FAMILIES, LogitQ, learner_parameters, parameter_names

from .hierarchical import hierarchical_site_names, sample_hierarchical
from .priors import INFER, INFER_HIERARCHICAL, INFER_PER_AGENT, Priors

__all__ = [
    "learner_fields",
    "resolve_learner",
    "inferred_learner_fields",
    "hierarchical_learner_fields",
    "learner_latent_sites",
    "check_fixed_learner",
    "sample_learner",
    "learner_from_sites",
]


def learner_fields(learner: Any) -> tuple[str, ...]:
    """Return the names of a learner family's inferable parameters (LogitQ: alpha, beta, eps)."""
    return parameter_names(learner)


def resolve_learner(learner: Any) -> Any:
    """Normalise a learner spec: ``None`` -> ``LogitQ`` with everything inferred; checks field values.

    ``learner`` is an instance of a learner family (``LogitQ``, ``BanditQ``, ``Hedge``,
    ``FictitiousPlay``, ``EWA``, or any learner declaring ``PARAMETERS`` and ``TEMPERATURE``);
    each of its parameters is a number or array (fixed), ``"infer"`` (one shared value) or
    ``"infer_per_agent"``.
    """
    if learner is None:
        return LogitQ(INFER, INFER, INFER)
    if getattr(type(learner), "PARAMETERS", None) is None or not hasattr(learner, "_replace"):
        families = ", ".join(c.__name__ for c in FAMILIES.values())
        raise TypeError(
            f"learner must be one of the learner families ({families}; fields may be 'infer'); "
            f"got {type(learner).__name__}."
        )
    for name in learner_fields(learner):
        v = getattr(learner, name)
        if isinstance(v, str) and v not in (INFER, INFER_PER_AGENT, INFER_HIERARCHICAL):
            raise ValueError(
                f"learner.{name} = {v!r}: use a number, {INFER!r}, {INFER_PER_AGENT!r} "
                f"or {INFER_HIERARCHICAL!r}."
            )
    return learner


def inferred_learner_fields(learner: Any) -> tuple[str, ...]:
    """Return the names of the learner parameters that are inferred."""
    return tuple(n for n in learner_fields(learner) if isinstance(getattr(learner, n), str))


def hierarchical_learner_fields(learner: Any) -> list[str]:
    """Return the names of the parameters set to ``"infer_hierarchical"``."""
    return [n for n in inferred_learner_fields(learner) if getattr(learner, n) == INFER_HIERARCHICAL]


def learner_latent_sites(learner: Any) -> list[str]:
    """Return the learner's latent sample sites: inferred fields, hierarchical ones as (mu, sigma, z)."""
    out = []
    for n in inferred_learner_fields(learner):
        out += list(hierarchical_site_names(n)) if getattr(learner, n) == INFER_HIERARCHICAL else [n]
    return out


def check_fixed_learner(learner: Any, n_agents: int) -> None:
    """Check the fixed parameters (inferred ones replaced by a valid placeholder)."""
    placeholder = {p.name: (0.5 if p.unit else 1.0) for p in learner_parameters(learner)}
    fixed = {n: placeholder[n] for n in inferred_learner_fields(learner)}
    learner._replace(**fixed).check(n_agents)


def sample_learner(learner: Any, priors: Priors, n_agents: int) -> Any:
    """Sample (or fix) every parameter of the learner family and return the learner.

    One site per inferred field (inside an ``agent`` plate for ``"infer_per_agent"``,
    population sites for ``"infer_hierarchical"``); fixed fields become arrays. Call inside
    a NumPyro model.
    """
    values = {}
    for name in learner_fields(learner):
        v = getattr(learner, name)
        if isinstance(v, str) and v == INFER:
            values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif isinstance(v, str) and v == INFER_PER_AGENT:
            with numpyro.plate("agent", n_agents, dim=-1):
                values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif isinstance(v, str) and v == INFER_HIERARCHICAL:
            values[name] = sample_hierarchical(learner, name, priors, n_agents)
        else:
            values[name] = jnp.asarray(v, dtype=jnp.result_type(float))
    return learner._replace(**values)


def learner_from_sites(learner: Any, sites: dict[str, Any]) -> Any:
    """Return the learner with inferred fields taken from ``sites`` (e.g. one posterior draw)."""
    return learner._replace(**{n: jnp.asarray(sites[n]) for n in inferred_learner_fields(learner)})
