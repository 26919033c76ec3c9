"""Hierarchical learner parameters: one value per agent drawn from a population, non-centred.

A learner field set to ``"infer_hierarchical"`` (``INFER_HIERARCHICAL``) becomes, for each
agent ``i``,

    link(theta_i) = mu + sigma z_i,   z_i ~ Normal(0, 1),

with ``link = logit`` for parameters in the unit interval (alpha, eps, EWA's phi, ...) and
``log`` for positive ones (beta, eta, lam, ...). Population sites (scalars):

- ``{name}_mu ~ Normal(link(centre), mu_scale)``, ``centre`` the central value of the
  parameter's own prior in :class:`~bayes_diml.models.Priors` (Beta mean, LogNormal median);
- ``{name}_sigma ~ HalfNormal(sigma_scale)``;

per agent (``agent`` plate): ``{name}_z`` (latent) and ``{name}`` (deterministic, the
parameter itself). ``(mu_scale, sigma_scale)`` is ``Priors.population``. The non-centred form
keeps NUTS away from the funnel when sigma is small (few agents or similar agents).

A field set to ``"infer_subject"`` (``INFER_SUBJECT``) has the same population sites with one
value per *subject* instead (``subject`` plate of ``data.n_subjects``: the episodes grouped by
``Trajectories.subjects``, by default one subject per episode, e.g. a person of an hBayesDM
file), shared by the subject's episodes and their agents; the likelihood then runs the learner
with each episode's own value (:func:`bayes_diml.models.observation.observe_trajectories`,
``episode_fields``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

__all__ = [
    "hierarchical_site_names",
    "hierarchical_initial_values",
    "population_summary",
    "population_median",
    "sample_hierarchical",
]


def _unit(learner: Any, name: str) -> bool:
    for p in type(learner).PARAMETERS:
        if p.name == name:
            return bool(p.unit)
    raise KeyError(name)


def _link(value: float, unit: bool) -> float:
    value = float(value)
    return float(np.log(value / (1.0 - value))) if unit else float(np.log(value))


def hierarchical_site_names(name: str) -> tuple[str, str, str]:
    """Latent sites of one hierarchical parameter: ``(name_mu, name_sigma, name_z)``."""
    return f"{name}_mu", f"{name}_sigma", f"{name}_z"


def sample_hierarchical(
    learner: Any, name: str, priors: Any, n_agents: int, plate: str = "agent"
) -> jax.Array:
    """Sample the population and per-member sites of one parameter; returns ``float[n]``.

    ``plate`` names the members: ``"agent"`` (``n`` agents, ``"infer_hierarchical"``) or
    ``"subject"`` (``n`` subjects, ``"infer_subject"``). Called inside the NumPyro model
    (``sample_learner`` of ``models/learner_spec.py``).
    """
    unit = _unit(learner, name)
    mu_scale, sigma_scale = priors.population
    mu_name, sigma_name, z_name = hierarchical_site_names(name)
    mu = numpyro.sample(mu_name, dist.Normal(_link(priors.learner_centre(name), unit), mu_scale))
    sigma = numpyro.sample(sigma_name, dist.HalfNormal(sigma_scale))
    with numpyro.plate(plate, n_agents, dim=-1):
        z = numpyro.sample(z_name, dist.Normal(0.0, 1.0))
    eta = mu + sigma * z
    value = jax.nn.sigmoid(eta) if unit else jnp.exp(eta)
    if unit:  # keep alpha in (0, 1] and eps in [0, 1) numerically
        tiny = jnp.finfo(value.dtype).eps
        value = jnp.clip(value, tiny, 1.0 - tiny)
    return numpyro.deterministic(name, value)


def hierarchical_initial_values(learner: Any, name: str, priors: Any, n_agents: int) -> dict[str, jax.Array]:
    """Return starting values: mu at the prior centre's link, sigma at its prior median, z = 0."""
    mu_name, sigma_name, z_name = hierarchical_site_names(name)
    return {
        mu_name: jnp.asarray(_link(priors.learner_centre(name), _unit(learner, name))),
        sigma_name: jnp.asarray(0.6745 * float(priors.population[1])),
        z_name: jnp.zeros((n_agents,)),
    }


def population_median(learner: Any, name: str, mu: Any) -> np.ndarray:
    """Return the population median ``link^-1(mu)`` of a hierarchical parameter (draws of ``{name}_mu``)."""
    mu = np.asarray(mu, dtype=float)
    return 1.0 / (1.0 + np.exp(-mu)) if _unit(learner, name) else np.exp(mu)


def population_summary(post: Any, name: str, prob: float = 0.9) -> dict[str, Any]:
    """Summarise the population of one hierarchical parameter from a fit.

    Returns ``{"mu", "sigma", "median"}`` each as ``(mean, lower, upper)``, where ``median``
    is the population median of the parameter itself (``link^-1(mu)``), and ``"per_agent"``
    float[n, 3] (mean, lower, upper): per agent, or per subject (float[M, 3]) for an
    ``"infer_subject"`` parameter.
    """
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    mu_name, sigma_name, _ = hierarchical_site_names(name)
    mu, sigma = post.draws(mu_name), post.draws(sigma_name)
    med = population_median(post.learner, name, mu)
    per = post.draws(name)

    def stats(x: np.ndarray) -> Any:
        return np.stack([x.mean(0), np.quantile(x, lo, axis=0), np.quantile(x, hi, axis=0)], axis=-1)

    return {"mu": stats(mu), "sigma": stats(sigma), "median": stats(med), "per_agent": stats(per)}
