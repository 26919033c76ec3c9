"""The observation block of the model: the likelihood of actions (and observed payoffs).

:func:`observe_trajectories` adds the sites ``actions`` (the learner's categorical policy
over the next action, plates ``episode x step x agent``) and, when payoffs are given,
``payoff_noise`` and ``payoffs`` (Normal, plates ``episode x time x agent``). It is the one
copy of the likelihood inside NumPyro models: :func:`bayes_diml.models.logit_q_model` calls
it with a data set's arrays, the vectorised calibration model
(:mod:`bayes_diml.studies.sbc_batched`) with traced ones.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayes_diml.counterfactual import CounterfactualPlan, evaluate_plan
from bayes_diml.likelihood import scan_states
from bayes_diml.sharding import shard_episodes

from .policy import EpisodeLearnerPolicy, LearnerPolicy, episode_axes
from .priors import Priors

__all__ = ["observe_trajectories", "episode_plate", "scan_episode_states"]

#: The learner scan as a compiled program of stable identity. Run eagerly (NumPyro evaluates
#: the model op by op while it sets up SVI and Laplace guides and checks a start), it is one
#: dispatch instead of hundreds of separately compiled operations; traced inside a jitted
#: program (MAP, NUTS), JAX reuses its traced form across programs.
_scan_states = jax.jit(scan_states)


def episode_plate(n_episodes: int, batch_size: int | None = None) -> tuple[Any, bool]:
    """Return the ``episode`` plate (dim -3) and whether it subsamples.

    ``batch_size`` (optional) episodes of ``n_episodes`` are drawn per evaluation
    (``numpyro.plate`` subsampling); ``None`` or ``>= n_episodes`` keeps them all.
    """
    if batch_size is None or int(batch_size) >= n_episodes:
        return numpyro.plate("episode", n_episodes, dim=-3), False
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive number of episodes; got {batch_size}.")
    return numpyro.plate("episode", n_episodes, subsample_size=int(batch_size), dim=-3), True


def observe_trajectories(
    mechanism: Any,
    params: Any,
    learner: Any,
    plan: CounterfactualPlan,
    actions: Any,
    priors: Priors,
    *,
    scored: Any = None,
    payoffs: Any = None,
    payoff_mask: Any = None,
    observe: bool = True,
    batch_size: int | None = None,
    mesh: Any = None,
    episode_fields: tuple[str, ...] = (),
) -> None:
    """Add the observation sites ``actions`` (and ``payoff_noise``, ``payoffs``) to the model.

    Call inside a NumPyro model, after the mechanism's and learner's sites.

    Parameters
    ----------
    mechanism : Mechanism
    params : pytree
        Mechanism parameters.
    learner : Learner
        With its parameters (sampled or fixed) filled in.
    plan : CounterfactualPlan
        The counterfactual plan of ``actions[:, :-1]`` (index int[M, T-1, n, ...]; NumPy or
        traced).
    actions : int[M, T, n]
        Observed actions (NumPy or traced); each ``actions[:, t+1]`` is scored given the
        history to ``t``.
    priors : Priors
        ``priors.payoff_noise`` is the HalfNormal scale of the payoff noise.
    scored : bool[M, T-1], optional
        Which next actions are scored (False on padding); all when None.
    payoffs : float[M, T, n], optional
        Observed payoffs (finite); no payoff sites when None.
    payoff_mask : bool[M, T, n], optional
        Which payoffs are observed; all when None.
    observe : bool
        If False, next actions and payoffs are sampled instead of observed.
    batch_size : int, optional
        Subsample this many episodes per evaluation (:func:`episode_plate`): counterfactuals
        and the learner scan are computed for those episodes only, their log-likelihood
        scaled by ``M / batch_size``.
    mesh : jax.sharding.Mesh, optional
        Split the episode axis over the mesh's ``"episode"`` devices.
    episode_fields : tuple of str
        Learner fields that hold one value per episode, float[M] (per-subject parameters,
        ``"infer_subject"``): the learner runs on each episode with that episode's values.
    """
    M, T, n = actions.shape
    episodes, subsampled = episode_plate(M, batch_size)
    with episodes as idx:  # idx: int[B], the episodes of this evaluation (all M unless subsampled)
        sel = idx if subsampled else None

        def rows(x):
            x = jnp.asarray(x)
            return x if sel is None else x[sel]

        all_actions = rows(actions)  # [B, T, n]
        cf = evaluate_plan(mechanism, params, plan, sel)  # [B, T-1, n, K]
        cf, all_actions = shard_episodes((cf, all_actions), mesh)
        mask = jnp.asarray(plan.action_mask)
        if episode_fields:
            learner = learner._replace(**{f: rows(getattr(learner, f)) for f in episode_fields})
            states = scan_episode_states(learner, episode_fields, cf, all_actions[:, :-1], mask)
            policy = EpisodeLearnerPolicy(learner, states, plan.action_mask, episode_fields)
        else:
            states = _scan_states(learner, cf, all_actions[:, :-1], mask)
            policy = LearnerPolicy(learner, states, plan.action_mask)
        if scored is not None:
            policy = policy.mask(rows(scored)[:, :, None])
        with numpyro.plate("step", T - 1, dim=-2), numpyro.plate("agent", n, dim=-1):
            numpyro.sample("actions", policy, obs=all_actions[:, 1:] if observe else None)

    if payoffs is not None:
        sigma = numpyro.sample("payoff_noise", dist.HalfNormal(priors.payoff_noise))
        with episodes:
            realised = mechanism.payoffs(params, all_actions)  # [B, T, n]
            noise = dist.Normal(realised, sigma)
            if payoff_mask is not None:
                noise = noise.mask(rows(payoff_mask))
            with numpyro.plate("time", T, dim=-2), numpyro.plate("agent", n, dim=-1):
                numpyro.sample("payoffs", noise, obs=rows(payoffs) if observe else None)


def scan_episode_states(
    learner: Any, episode_fields: tuple[str, ...], cf: Any, actions: Any, mask: Any
) -> Any:
    """Return the learner's states of each episode run with its own values of ``episode_fields``.

    ``learner``'s fields in ``episode_fields`` are float[M] (one value per episode), the others
    shared; ``cf: float[M, S, n, K]``, ``actions: int[M, S, n]``, ``mask: bool[n, K]``. Returns
    leaves [M, S, ...] as ``bayes_diml.likelihood.scan_states`` does.
    """

    def one(lrn, cf_m, actions_m):
        states = _scan_states(lrn, cf_m[None], actions_m[None], mask)
        return jax.tree_util.tree_map(lambda x: x[0], states)

    return jax.vmap(one, in_axes=(episode_axes(learner, episode_fields), 0, 0))(learner, cf, actions)
