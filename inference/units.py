"""Draws of centred payoffs at given joint actions, in payoff units or in the units the data identify.

Where the temperature (beta, Hedge's eta, EWA's lam) is inferred and no payoffs are observed, the
payoff scale is confounded with it: only temperature x payoff is identified. The functions here
take a fitted ``Posterior`` (duck-typed: ``n_draws``, ``site_draws()``, ``learner_draws()``,
``mechanism``, ``learner``, ``data``, ``idata``, ``confounded``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import temperature_name
from bayes_diml.mechanisms import joint_profiles
from bayes_diml.metrics import agent_payoff_differences, payoff_differences
from bayes_diml.models import params_from_sites

from .interventions import evenly_spaced
from .pairs import UNITS_PAYOFF, UNITS_SCALED

__all__ = ["centred_payoff_draws", "identified_payoff_differences", "temperature_scaled"]


def centred_payoff_draws(
    post: Any, joint: Any = None, n_draws: int | None = None, agent: Any = None
) -> np.ndarray:
    """Draws of the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)`` in payoff units.

    ``joint``: int[..., n] (default: every profile) -> float[D, ..., n]; with ``agent: int[S]``
    (and ``joint: int[S, n]``) only that agent's centred payoff per joint action, float[D, S].
    ``n_draws`` evenly spaced draws (all by default).
    """
    if agent is not None and joint is None:
        raise ValueError("agent= needs joint=int[S, n].")
    if joint is None and "centred_payoffs" in post.idata["posterior"].data_vars and n_draws is None:
        return post.draws("centred_payoffs")
    idx = evenly_spaced(post.n_draws, n_draws)
    sites = {k: jnp.asarray(v[idx]) for k, v in post.site_draws().items()}
    k = post.data.n_actions
    if joint is None:
        if math.prod(k) * len(k) > 10**7:
            raise ValueError("the joint-action table is too large; pass joint=int[..., n].")
        joint = joint_profiles(k).reshape(*k, len(k))
    joint = jnp.asarray(joint)

    def one(s):
        params = params_from_sites(post.mechanism, s)
        if agent is None:
            return payoff_differences(post.mechanism, params, joint, n_actions=k)
        return agent_payoff_differences(post.mechanism, params, joint, jnp.asarray(agent), n_actions=k)

    return np.asarray(jax.lax.map(one, sites))


def identified_payoff_differences(
    post: Any, joint: Any = None, n_draws: int | None = None, agent: Any = None
) -> tuple[np.ndarray, str]:
    """Draws of the centred payoffs at ``joint`` in identified units, and the units' name.

    As :func:`centred_payoff_draws` where the payoff scale is identified (units ``"payoff"``);
    where the temperature and the payoff scale are confounded, each draw times that draw's
    temperature (the agent's own where it is per agent), units ``"beta x payoff"`` (named after
    the family's temperature): the product the data determine.
    """
    draws = centred_payoff_draws(post, joint, n_draws, agent)
    if not post.confounded:
        return draws, UNITS_PAYOFF
    name = temperature_name(post.learner)
    return temperature_scaled(post, draws, n_draws, agent), UNITS_SCALED.format(temperature=name)


def temperature_scaled(
    post: Any, draws: np.ndarray, n_draws: int | None = None, agent: Any = None
) -> np.ndarray:
    """``draws`` of centred payoffs times the fit's temperature, per draw and agent.

    ``draws``: float[D, ..., n] as :func:`centred_payoff_draws` returns them for the same
    ``n_draws`` (the temperature's draws are picked with the same indices), or float[D, S] with
    ``agent: int[S]`` (each context scaled by its agent's temperature). With the temperature fixed
    at 1 this returns the centred payoffs.
    """
    name = temperature_name(post.learner)
    t = np.asarray(getattr(post.learner_draws(), name), dtype=float)[evenly_spaced(post.n_draws, n_draws)]
    n_agents = len(post.data.n_actions)
    if t.ndim == 1:  # float[D]: one temperature
        t = np.broadcast_to(t[:, None], (len(t), n_agents))
    if agent is not None:  # draws float[D, S]: agent i's temperature per context
        return draws * t[:, np.asarray(agent)]
    return draws * t.reshape(len(t), *([1] * (draws.ndim - 2)), n_agents)  # draws float[D, ..., n]
