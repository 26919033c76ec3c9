"""The methods of the suite, one function each: ``fn(env, settings, seed) -> MethodFit``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bayes_diml.environments import Environment
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import Tabular
from bayes_diml.models import Priors
from bayes_diml.studies.experiments.baselines import fit_equilibrium, fit_joint_bc
from bayes_diml.studies.experiments.fitting import (
    MethodFit,
    _fit,
    _init_map,
    _map_fit,
    _network,
    _posterior_fit,
    _prior_fit,
    suite_prior,
    suite_priors,
)
from bayes_diml.studies.experiments.settings import Settings
from bayes_diml.studies.experiments.validation import fit_diml_early, fit_diml_prior_val, fit_diml_val

__all__ = [
    "METHOD_FUNCTIONS",
    "fit_diml",
    "fit_diml_constant",
    "fit_diml_mle",
    "fit_diml_wrong",
    "fit_tabular_mle",
    "fit_struct_mle",
    "fit_diml_joint",
    "fit_diml_fanin",
    "fit_svi",
    "fit_nuts",
]


def fit_diml(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML: the network family, true learner fixed, the suite's weight prior, MAP.

    E1-E3: N(0, prior_scale^2) on every weight, ``map_steps`` Adam steps. E7: ``e7_prior``, by
    default N(0, 1 / fan_in) per weight matrix for ``fan_in_steps_e7`` steps (:func:`suite_prior`).
    """
    st, scale = suite_prior(env, settings)
    return _map_fit(env, st, seed, _network(env), env.learner, scale)


def fit_diml_constant(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """``diml`` under the constant N(0, prior_scale^2) weight prior everywhere.

    The same fit as :func:`fit_diml` on E1-E3; on E7 the constant prior with its ``map_steps_e7``
    (500) Adam steps, a budget that acts as early stopping: run longer, this prior overfits the
    count network.
    """
    return _prior_fit(env, settings, seed, "constant", settings.prior_scale)


def fit_diml_mle(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML's plain MLE: as :func:`fit_diml` with flat priors."""
    return _map_fit(env, settings, seed, _network(env), env.learner, None)


def fit_diml_wrong(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML-Wrong: :func:`fit_diml` with the learner's beta multiplied by ``wrong_beta``."""
    wrong = env.learner.replace(beta=float(np.asarray(env.learner.beta)) * settings.wrong_beta)
    st, scale = suite_prior(env, settings)
    return _map_fit(env, st, seed, _network(env), wrong, scale)


def fit_tabular_mle(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """TabularMLE: a free payoff table, flat priors, true learner fixed."""
    return _map_fit(env, settings, seed, Tabular(env.data.n_actions), env.learner, None)


def fit_struct_mle(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """StructMLE: the true parametric family (``env.family``), flat priors, true learner fixed."""
    if env.family is None:
        raise ValueError(f"{env.name} has no structured family; struct_mle runs on e2 and e3.")
    return _map_fit(env, settings, seed, env.family, env.learner, None)


def fit_diml_joint(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML with alpha, beta, eps inferred jointly (MAP under ``Priors``' learner priors).

    beta and the payoff scale are confounded here (no observed payoffs, no fixed units): only
    beta x payoff differences is identified, so the payoffs come out in units set by beta's prior.
    """
    st, scale = suite_prior(env, settings)
    return _map_fit(env, st, seed, _network(env), LogitQ("infer", "infer", "infer"), scale)


def fit_diml_fanin(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """``diml`` with a weight prior that follows each layer's fan-in: ``N(0, fan_in_scale^2 / fan_in)``.

    ``Priors(weight_scaling="fan_in")``: the wide layers of the count network (E7) get sd
    ``1 / 16`` instead of 0.3, so the prior regularises and E7 runs ``fan_in_steps_e7`` Adam
    steps (not the 500 that act as early stopping for ``diml_constant``); elsewhere ``map_steps``.
    With the default ``Settings`` it is ``diml``'s fit on E7, and differs on E1-E3.
    """
    return _prior_fit(env, settings, seed, "fan_in", settings.fan_in_scale)


def fit_svi(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Mean-field SVI of the ``diml`` model (started at its MAP); point estimate = posterior mean."""
    st, scale = suite_prior(env, settings)
    post = _fit(
        env,
        _network(env),
        env.learner,
        "svi",
        seed,
        suite_priors(st, scale),
        num_steps=int(settings.svi_steps),
        learning_rate=float(settings.svi_learning_rate),
        num_draws=int(settings.svi_draws),
        guide="normal",
        init=settings.bayes_init,
        init_map=_init_map(env, st),
    )
    return _posterior_fit(post, {"final_elbo_loss": post.info.get("final_elbo_loss", np.nan)})


def fit_nuts(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """NUTS on a small model: gauge-fixed ``Tabular`` (E1) or the structured family (E2, E3)."""
    if env.name == "e7":
        raise ValueError("nuts is not run on e7 (use svi for the network).")
    mech = Tabular(env.data.n_actions) if env.family is None else env.family
    scale = settings.nuts_family_prior_scale if env.name == "e3" else settings.prior_scale
    post = _fit(
        env,
        mech,
        env.learner,
        "nuts",
        seed,
        Priors(mechanism_scale=scale),
        num_warmup=int(settings.nuts_warmup),
        num_samples=int(settings.nuts_samples),
        num_chains=int(settings.nuts_chains),
        init=settings.bayes_init,
        init_map=_init_map(env, settings),
    )
    keep = ("divergences", "mean_leapfrog_steps", "max_r_hat", "min_ess_bulk")
    return _posterior_fit(post, {k: post.info[k] for k in keep if k in post.info})


METHOD_FUNCTIONS: dict[str, Callable[[Environment, Settings, int], MethodFit]] = {
    "diml": fit_diml,
    "diml_constant": fit_diml_constant,
    "diml_mle": fit_diml_mle,
    "diml_wrong": fit_diml_wrong,
    "tabular_mle": fit_tabular_mle,
    "struct_mle": fit_struct_mle,
    "joint_bc": fit_joint_bc,
    "equilibrium": fit_equilibrium,
    "svi": fit_svi,
    "nuts": fit_nuts,
    "diml_joint": fit_diml_joint,
    "diml_val": fit_diml_val,
    "diml_fanin": fit_diml_fanin,
    "diml_prior_val": fit_diml_prior_val,
    "diml_early": fit_diml_early,
}
