"""How a method of the suite fits: one :func:`bayes_diml.fit` call, and its result type.

:class:`MethodFit` is what every method function returns; the helpers here build the DIML
network of an environment, run a MAP fit with the suite's optimiser settings and wrap a
posterior's payoff-difference draws.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from bayes_diml.environments import Environment
from bayes_diml.inference import ConfoundingWarning, ConvergenceWarning, MAPConfig, fit
from bayes_diml.learners import LogitQ, parameter_names
from bayes_diml.mechanisms import NeuralJoint, SymmetricCount
from bayes_diml.models import Priors
from bayes_diml.studies.experiments.settings import Settings

__all__ = ["MethodFit", "suite_prior"]


class MethodFit(NamedTuple):
    """What a method function returns.

    Attributes
    ----------
    mechanism, params : the fitted mechanism and its params (what the metrics score).
    learner : LogitQ or None
        The fitted learner when the method infers it (``diml_joint``), else None.
    draws : callable or None
        Bayesian rows: ``draws(joint int[S, n], n_draws) -> float[D, S, n]``, posterior draws of
        the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)`` (gauge-free) in identified units
        (times the drawn temperature where it is confounded with the payoff scale,
        ``info["confounded"]``; ``identified=False``: payoff units); with ``agent=int[S]``, only
        that agent's: float[D, S].
    info : dict
        Diagnostics of the fit (stored in the ``.npz`` as ``info.<name>``).
    """

    mechanism: Any
    params: Any
    learner: LogitQ | None = None
    draws: Callable[[np.ndarray, int], np.ndarray] | None = None
    info: dict = {}


def _network(env: Environment) -> Any:
    """Return the unstructured network family of DIML: NeuralJoint (E1-E3) or SymmetricCount (E7)."""
    if env.name == "e7":
        return SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
    return NeuralJoint(env.data.n_actions)


def map_options(env: Environment, settings: Settings) -> dict[str, Any]:
    """Return the MAP optimiser settings of a suite fit on ``env``: ``MAPConfig`` keyword arguments.

    ``num_steps`` Adam steps (E7: ``map_steps_e7``), one start, chunks of at most 100 steps, and
    on E7 under a fan-in prior up to ``fan_in_polish_e7`` L-BFGS steps that polish Adam's endpoint.
    """
    e7 = env.name == "e7"
    steps = settings.map_steps_e7 if e7 else settings.map_steps
    polish = settings.fan_in_polish_e7 if e7 and settings.weight_scaling != "constant" else 0
    return {
        "num_steps": int(steps),
        "learning_rate": float(settings.map_learning_rate),
        "num_restarts": 1,
        "chunk": int(min(100, steps)),
        "polish_steps": int(polish),
    }


def suite_priors(settings: Settings, scale: float | None) -> Priors:
    """Return the suite's prior: sd ``scale`` on the mechanism weights, ``settings.weight_scaling``."""
    return Priors(mechanism_scale=scale, weight_scaling=settings.weight_scaling)


def _init_map(env: Environment, settings: Settings) -> Any:
    """Return the MAP start of SVI and NUTS: the ``diml`` optimiser settings (None for a prior start)."""
    return MAPConfig(**map_options(env, settings)) if settings.bayes_init == "map" else None


def _fit(env: Environment, mechanism: Any, learner: Any, method: str, seed: int, priors: Any, **options):
    # the fit's own progress bar shows when the suite's progress is (run_paper(progress=True))
    progress = logging.getLogger("bayes_diml.studies.experiments").isEnabledFor(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ConfoundingWarning)
        return fit(
            env.train,
            mechanism,
            learner,
            method=method,
            seed=int(seed),
            priors=priors,
            progress=progress,
            log_likelihood=False,
            **options,
        )


def _map_fit(env, settings, seed, mechanism, learner, prior_scale) -> MethodFit:
    post = _fit(
        env,
        mechanism,
        learner,
        "map",
        seed,
        suite_priors(settings, prior_scale),
        **map_options(env, settings),
    )
    fitted_learner = None
    if any(isinstance(getattr(learner, f), str) for f in parameter_names(learner)):
        fitted_learner = post.point_learner()
    info = {
        "converged": bool(post.info.get("converged", False)),
        "log_joint": post.info["map_log_joint"],
        "polish_steps": int(post.info.get("map_polish_steps", 0)),
    }
    return MethodFit(post.mechanism, post.mechanism_params(), fitted_learner, None, info)


def _with_weight_scaling(settings: Settings, weight_scaling: str) -> Settings:
    """Return ``settings`` fitting under ``weight_scaling``, with that prior's E7 step count.

    ``"constant"`` keeps ``map_steps_e7`` (the budget that acts as early stopping for it),
    the fan-in priors (``"fan_in"``, ``"fan_in_bias"``) run ``fan_in_steps_e7``.
    """
    steps_e7 = settings.fan_in_steps_e7 if weight_scaling != "constant" else settings.map_steps_e7
    return dataclasses.replace(settings, weight_scaling=weight_scaling, map_steps_e7=steps_e7)


def suite_prior(env: Environment, settings: Settings) -> tuple[Settings, float | None]:
    """Return the settings and weight-prior sd of the suite's network fits on ``env``.

    E7 (the count network) uses ``settings.e7_prior`` (default the fan-in prior, run for
    ``fan_in_steps_e7``); E1-E3 and ``e7_prior=None`` use ``weight_scaling`` and ``prior_scale``.
    """
    if env.name == "e7" and settings.e7_prior is not None:
        weight_scaling, scale = settings.e7_prior
        return _with_weight_scaling(settings, weight_scaling), float(scale)
    return settings, settings.prior_scale


def _prior_fit(env, settings, seed, weight_scaling: str, scale: float | None) -> MethodFit:
    """``diml`` under one prior ``(weight_scaling, scale)``: the ``diml`` network and true learner.

    Its E7 step count is that prior's (:func:`_with_weight_scaling`).
    """
    return _map_fit(
        env, _with_weight_scaling(settings, weight_scaling), seed, _network(env), env.learner, scale
    )


def _posterior_fit(post, info: dict) -> MethodFit:
    def draws(
        joint: np.ndarray, n_draws: int, agent: np.ndarray | None = None, identified: bool = True
    ) -> np.ndarray:
        units = post.identified_payoff_differences if identified else post.payoff_differences
        out = units(np.asarray(joint), n_draws=int(n_draws), agent=agent)
        return np.asarray(out[0] if identified else out)

    return MethodFit(
        post.mechanism, post.mechanism_params(), None, draws, {**info, "confounded": post.confounded}
    )
