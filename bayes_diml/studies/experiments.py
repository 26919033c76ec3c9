"""The DIML paper's experiment suite (E1, E2, E3, E7) with its baselines and Bayesian rows.

One row of results is one (experiment, setting, method, seed): the method is fitted on the
training episodes of ``environments.make(experiment, seed)`` and scored with the reference's
metrics (:func:`bayes_diml.metrics.diff_mse` on the test episodes with 20,000 samples and
:func:`bayes_diml.metrics.cfkl_params` with E = 300 episodes of T = min(50, T_data) steps under
the shifted learner alpha x 0.6, beta x 1.4, eps x 1.5 capped at 0.5; for E7's 40+ agents the
histogram bins are action-count vectors hashed into ``Settings.cfkl_buckets`` = 1,024 buckets,
as in the reference, see ``docs/results.md``).

Public API
----------
- :func:`run_paper` runs a grid of rows, appends each finished row to a CSV (columns
  :data:`CSV_COLUMNS`), keeps the fitted parameters next to it (one ``.npz`` per row) and
  skips rows already in the CSV, so an interrupted run resumes where it stopped.
- :data:`METHOD_FUNCTIONS`: ``name -> fn(env, settings, seed) -> MethodFit`` (one small
  function per method; :class:`MethodFit` holds the fitted mechanism and params, and for
  Bayesian rows a function giving draws of payoff differences).
- :func:`summarize`, :func:`format_table` and :func:`plot_figure1`: mean +- sd over seeds side
  by side with the published single-run numbers (:data:`PUBLISHED`), and a Figure-1-like PNG.

Methods (see ``docs/results.md`` for the choices and their reasons)
-------------------------------------------------------------------
``diml``          MAP of the true network family (``NeuralJoint`` for E1-E3, ``SymmetricCount``
                  for E7) with the true learner fixed and a weak N(0, 0.3^2) prior on every
                  weight; Adam, lr 0.01, 2,000 steps (E7: 500), one start.
``diml_mle``      the same with flat priors (DIML's plain MLE; overfits E2, see the docs).
``diml_wrong``    ``diml`` with the learner's beta x 0.6.
``tabular_mle``   a free ``Tabular`` payoff table, flat priors, same likelihood (not E7).
``struct_mle``    ``env.family`` (the true parametric family), flat priors (E2, E3 only).
``joint_bc``      behaviour cloning: p(a_i(t+1) | a_-i(t)) by smoothed counts; payoff estimate
                  ``u^_i(a, a_-i) = log p(a_i(t+1) = a | a_-i(t) = a_-i)`` (not E7).
``equilibrium``   static logit response to pooled play (ignores learning); see
                  :func:`fit_equilibrium` (not E7).
``svi``           mean-field SVI posterior of the ``diml`` model; point = posterior mean.
``nuts``          NUTS posterior (E1: gauge-fixed ``Tabular``; E2/E3: ``env.family``; not E7).
``diml_joint``    ``diml`` with alpha, beta, eps inferred jointly by MAP under their priors.
``diml_val``      ``diml`` with its prior sd chosen from {flat, 1, 0.3, 0.1} by the held-out
                  log-likelihood of a validation split of the training episodes, then refitted.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml import environments, metrics
from bayes_diml.environments import E7_SETTINGS, Environment
from bayes_diml.learners import LogitQ, parameter_names
from bayes_diml.mechanisms import NeuralJoint, SymmetricCount, Tabular, flatten_params, param_count

__all__ = [
    "CSV_COLUMNS",
    "EXPERIMENTS",
    "METHODS",
    "DEFAULT_METHODS",
    "BAYESIAN_METHODS",
    "PUBLISHED",
    "Settings",
    "QUICK_SETTINGS",
    "MethodFit",
    "METHOD_FUNCTIONS",
    "applicable",
    "expand_experiments",
    "make_environment",
    "evaluate",
    "coverage_contexts",
    "interval_coverage",
    "fit_joint_bc",
    "fit_equilibrium",
    "run_paper",
    "load_results",
    "load_params",
    "summarize",
    "format_table",
    "plot_figure1",
]

CSV_COLUMNS = (
    "experiment",
    "setting",
    "method",
    "seed",
    "diff_mse",
    "cfkl_params",
    "fit_seconds",
    "n_params",
    "interval_coverage_90",
)
EXPERIMENTS = ("e1", "e2", "e3", "e7")
METHODS = (
    "diml",
    "diml_mle",
    "diml_wrong",
    "tabular_mle",
    "struct_mle",
    "joint_bc",
    "equilibrium",
    "svi",
    "nuts",
    "diml_joint",
    "diml_val",
)
#: What ``run_paper(methods=None)`` runs.
DEFAULT_METHODS = ("diml", "diml_wrong", "tabular_mle", "struct_mle", "joint_bc", "equilibrium", "svi")
BAYESIAN_METHODS = ("svi", "nuts")
_KEY = ("experiment", "setting", "method", "seed")
_FIXED_SETTINGS = {"e1": "3x6", "e2": "4x5", "e3": "3x7"}

#: The reference's single-run results (final epoch): (experiment, setting, method) -> (diff_mse, cfkl).
PUBLISHED: dict[tuple[str, str, str], tuple[float, float]] = {
    ("e1", "3x6", "diml"): (9.79e-3, 0.032),
    ("e1", "3x6", "diml_wrong"): (4.02e-2, 0.086),
    ("e1", "3x6", "tabular_mle"): (1.29e-2, 0.039),
    ("e2", "4x5", "diml"): (9.07e-2, 0.222),
    ("e2", "4x5", "diml_wrong"): (1.22e-1, 0.510),
    ("e2", "4x5", "tabular_mle"): (1.33e-1, 0.125),
    ("e2", "4x5", "struct_mle"): (3.35e-3, 0.137),
    ("e3", "3x7", "diml"): (1.90e-2, 0.076),
    ("e3", "3x7", "diml_wrong"): (5.88e-2, 0.168),
    ("e3", "3x7", "struct_mle"): (4.17e-4, 0.072),
    ("e7", "40x10", "diml"): (2.46e-4, 0.095),
    ("e7", "80x20", "diml"): (6.91e-5, 0.251),
    ("e7", "120x25", "diml"): (3.36e-5, 0.329),
    ("e7", "200x30", "diml"): (4.64e-5, 0.679),
    ("e7", "300x40", "diml"): (4.31e-5, 1.645),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Settings of the suite (defaults: the real runs; :data:`QUICK_SETTINGS` for tests).

    Attributes
    ----------
    n_episodes, T : int or None
        Data budget per seed; ``None`` keeps ``environments.make``'s (60 x 60; E7 per setting).
    map_steps, map_steps_e7, map_learning_rate : Adam steps and step size of every MAP fit.
    prior_scale : float
        Sd of the N(0, s^2) prior on every mechanism weight of ``diml``, ``diml_wrong``,
        ``diml_joint``, ``svi`` and ``nuts`` (E1 table cells / E2 family weights).
    prior_scale_grid : tuple of float or None
        Candidate prior sds of ``diml_val`` (``None``: flat prior, the plain MLE).
    validation_fraction : float
        Share of the *training* episodes ``diml_val`` holds out to choose its prior sd.
    nuts_family_prior_scale : float
        Prior sd for NUTS on E3's structured family (its true ``rate = 2`` needs a wide prior).
    wrong_beta : float
        Factor on beta for ``diml_wrong``.
    svi_steps, svi_learning_rate, svi_draws : SVI settings (mean-field normal guide).
    bayes_init : str
        Start of SVI and NUTS: ``"map"`` (the real runs: a MAP fit with the ``diml`` settings,
        ``map_steps`` Adam steps at ``map_learning_rate``, passed as ``fit(init_map=...)``) or
        ``"prior"``.
    nuts_warmup, nuts_samples, nuts_chains : NUTS settings.
    diff_samples : int
        Contexts sampled by ``diff_mse``.
    coverage_samples, coverage_draws : int
        Test contexts and posterior draws for ``interval_coverage_90``.
    cfkl_episodes, cfkl_T : int
        ``cfkl_params`` simulation size; T is ``min(cfkl_T, T_data)``.
    cfkl_buckets : int or None
        E7 only (n > 10 agents): ``cfkl_params`` histograms hash each step's action-count
        vector into this many buckets, as the reference does; ``None`` keeps one bin per
        distinct count vector (see ``docs/results.md``). E1-E3 always use the exact joint index.
    bc_pseudocount, eq_pseudocount : float
        Additive smoothing of the ``joint_bc`` and ``equilibrium`` counts.
    metric_seed : int
        Seed of the metrics' sampling (the same contexts for every method).
    """

    n_episodes: int | None = None
    T: int | None = None
    map_steps: int = 2000
    map_steps_e7: int = 500
    map_learning_rate: float = 0.01
    prior_scale: float = 0.3
    prior_scale_grid: tuple[float | None, ...] = (None, 1.0, 0.3, 0.1)
    validation_fraction: float = 0.25
    nuts_family_prior_scale: float = 3.0
    wrong_beta: float = 0.6
    svi_steps: int = 2000
    svi_learning_rate: float = 0.01
    svi_draws: int = 200
    bayes_init: str = "map"
    nuts_warmup: int = 300
    nuts_samples: int = 300
    nuts_chains: int = 1
    diff_samples: int = 20_000
    coverage_samples: int = 2_000
    coverage_draws: int = 200
    cfkl_episodes: int = 300
    cfkl_T: int = 50
    cfkl_buckets: int | None = 1024
    bc_pseudocount: float = 1.0
    eq_pseudocount: float = 0.5
    metric_seed: int = 0

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


#: Tiny data and few steps: for tests and smoke runs only (numbers are meaningless).
QUICK_SETTINGS = Settings(
    n_episodes=6,
    T=10,
    map_steps=20,
    map_steps_e7=10,
    svi_steps=20,
    svi_draws=20,
    bayes_init="prior",
    nuts_warmup=10,
    nuts_samples=10,
    diff_samples=500,
    coverage_samples=100,
    coverage_draws=20,
    cfkl_episodes=10,
    cfkl_T=8,
)


class MethodFit(NamedTuple):
    """What a method function returns.

    Attributes
    ----------
    mechanism, params : the fitted mechanism and its params (what the metrics score).
    learner : LogitQ or None
        The fitted learner when the method infers it (``diml_joint``), else None.
    draws : callable or None
        Bayesian rows: ``draws(joint int[S, n], n_draws) -> float[D, S, n]``, posterior draws of
        the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)`` (gauge-free); with
        ``agent=int[S]``, only that agent's: float[D, S].
    info : dict
        Diagnostics of the fit (stored in the ``.npz`` as ``info.<name>``).
    """

    mechanism: Any
    params: Any
    learner: LogitQ | None = None
    draws: Callable[[np.ndarray, int], np.ndarray] | None = None
    info: dict = {}


# ----------------------------------------------------------------------------- grid
def expand_experiments(experiments: Iterable[str] | str) -> list[tuple[str, str]]:
    """Names -> (experiment, setting) pairs.

    ``"e1"``, ``"e2"``, ``"e3"``; ``"e7"`` means all five reference settings and
    ``"e7:40x10"`` one of them (any ``NxK``).
    """
    if isinstance(experiments, str):
        experiments = [experiments]
    out: list[tuple[str, str]] = []
    for raw in experiments:
        name = str(raw).lower().strip()
        base, _, setting = name.partition(":")
        if base not in EXPERIMENTS:
            raise ValueError(
                f"unknown experiment {raw!r}; choose from {', '.join(EXPERIMENTS)} "
                "(e7 settings as e7:40x10, e7:80x20, ...)."
            )
        if base != "e7":
            if setting and setting != _FIXED_SETTINGS[base]:
                raise ValueError(f"{base} has one setting ({_FIXED_SETTINGS[base]}); got {raw!r}.")
            out.append((base, _FIXED_SETTINGS[base]))
        elif not setting:
            out.extend(("e7", f"{n}x{k}") for n, k in E7_SETTINGS)
        else:
            _parse_e7(setting, raw)
            out.append(("e7", setting))
    return list(dict.fromkeys(out))


def _parse_e7(setting: str, raw: Any = None) -> tuple[int, int]:
    try:
        n, k = (int(v) for v in setting.split("x"))
    except ValueError:
        raise ValueError(
            f"E7 setting must look like 'e7:40x10' (n agents x K actions); got {raw!r}."
        ) from None
    return n, k


def applicable(experiment: str, method: str) -> bool:
    """Whether ``method`` is run on ``experiment`` (table methods need a small game)."""
    if method == "struct_mle":
        return experiment in ("e2", "e3")
    if method in ("tabular_mle", "joint_bc", "equilibrium", "nuts"):
        return experiment != "e7"
    return True


def _check_methods(methods: Iterable[str] | None) -> list[str]:
    methods = list(
        DEFAULT_METHODS if methods is None else ([methods] if isinstance(methods, str) else methods)
    )
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}.")
    return methods


def make_environment(experiment: str, setting: str, seed: int, settings: Settings) -> Environment:
    """The environment of one row (same data for every method of a seed)."""
    kw = {"n_episodes": settings.n_episodes, "T": settings.T}
    if experiment == "e7":
        n, k = _parse_e7(setting)
        return environments.make("e7", seed, n=n, K=k, **kw)
    return environments.make(experiment, seed, **kw)


# --------------------------------------------------------------------------- methods
def _network(env: Environment) -> Any:
    """The unstructured network family of DIML: NeuralJoint (E1-E3) or SymmetricCount (E7)."""
    if env.name == "e7":
        return SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
    return NeuralJoint(env.data.n_actions)


def _map_options(env: Environment, settings: Settings) -> dict[str, Any]:
    steps = settings.map_steps_e7 if env.name == "e7" else settings.map_steps
    return {
        "num_steps": int(steps),
        "learning_rate": float(settings.map_learning_rate),
        "num_restarts": 1,
        "chunk": int(min(100, steps)),
    }


def _init_map(env: Environment, settings: Settings) -> Any:
    """The MAP start of SVI and NUTS: the same optimiser settings as ``diml`` (None for a prior start)."""
    from bayes_diml.inference import MAPConfig

    return MAPConfig(**_map_options(env, settings)) if settings.bayes_init == "map" else None


def _fit(env: Environment, mechanism: Any, learner: Any, method: str, seed: int, priors: Any, **options):
    from bayes_diml.inference import fit
    from bayes_diml.inference.errors import ConfoundingWarning, ConvergenceWarning

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
            progress=False,
            log_likelihood=False,
            **options,
        )


def _map_fit(env, settings, seed, mechanism, learner, prior_scale) -> MethodFit:
    from bayes_diml.models import Priors

    post = _fit(
        env,
        mechanism,
        learner,
        "map",
        seed,
        Priors(mechanism_scale=prior_scale),
        **_map_options(env, settings),
    )
    fitted_learner = None
    if any(isinstance(getattr(learner, f), str) for f in parameter_names(learner)):
        fitted_learner = post.point_learner()
    info = {"converged": bool(post.info.get("converged", False)), "log_joint": post.info["map_log_joint"]}
    return MethodFit(post.mechanism, post.mechanism_params(), fitted_learner, None, info)


def fit_diml(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML: the network family, true learner fixed, weak N(0, prior_scale^2) weight prior, MAP."""
    return _map_fit(env, settings, seed, _network(env), env.learner, settings.prior_scale)


def fit_diml_mle(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML's plain MLE: as :func:`fit_diml` with flat priors."""
    return _map_fit(env, settings, seed, _network(env), env.learner, None)


def fit_diml_wrong(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """DIML-Wrong: :func:`fit_diml` with the learner's beta multiplied by ``wrong_beta``."""
    wrong = env.learner.replace(beta=float(np.asarray(env.learner.beta)) * settings.wrong_beta)
    return _map_fit(env, settings, seed, _network(env), wrong, settings.prior_scale)


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
    return _map_fit(
        env, settings, seed, _network(env), LogitQ("infer", "infer", "infer"), settings.prior_scale
    )


def validation_scores(env: Environment, settings: Settings, seed: int) -> dict[str, float]:
    """Held-out log-likelihood per nat of every candidate prior sd of ``diml`` (no test data used).

    The training episodes are split again (``validation_fraction``, seeded by ``seed``); ``diml`` is
    fitted on the rest at each sd of ``prior_scale_grid`` and scored by the exact log-likelihood of
    the validation episodes under the true learner, divided by their number of scored actions.

    Returns
    -------
    dict
        ``{label: mean log-likelihood per scored action}``, labels ``"flat"`` or the sd as ``"0.3"``.
    """
    from bayes_diml.likelihood import log_likelihood

    fit_part, val_part = env.train.split(settings.validation_fraction, seed=int(seed))
    sub = env._replace(train=fit_part)
    scores = {}
    for scale in settings.prior_scale_grid:
        fit = _map_fit(sub, settings, seed, _network(env), env.learner, scale)
        ll = log_likelihood(fit.mechanism, fit.params, env.learner, val_part)
        scores[_scale_label(scale)] = float(ll) / val_part.n_scored
    return scores


def _scale_label(scale: float | None) -> str:
    return "flat" if scale is None else f"{float(scale):g}"


def fit_diml_val(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """``diml`` with its prior sd chosen on a validation split of the training episodes.

    :func:`validation_scores` picks the sd of ``prior_scale_grid`` with the best held-out
    log-likelihood; ``diml`` is then refitted on all training episodes with it. The fit's info
    holds the choice (``prior_scale``, ``inf`` for flat) and every score (``val_ll_<label>``).
    """
    scores = validation_scores(env, settings, seed)
    by_label = {_scale_label(s): s for s in settings.prior_scale_grid}
    scale = by_label[max(scores, key=scores.get)]
    fit = _map_fit(env, settings, seed, _network(env), env.learner, scale)
    info = {
        **fit.info,
        "prior_scale": np.inf if scale is None else float(scale),
        **{f"val_ll_{k}": v for k, v in scores.items()},
    }
    return fit._replace(info=info)


def _posterior_fit(post, info: dict) -> MethodFit:
    def draws(joint: np.ndarray, n_draws: int, agent: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(post.payoff_differences(np.asarray(joint), n_draws=int(n_draws), agent=agent))

    return MethodFit(post.mechanism, post.mechanism_params(), None, draws, info)


def fit_svi(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Mean-field SVI of the ``diml`` model (started at its MAP); point estimate = posterior mean."""
    from bayes_diml.models import Priors

    post = _fit(
        env,
        _network(env),
        env.learner,
        "svi",
        seed,
        Priors(mechanism_scale=settings.prior_scale),
        num_steps=int(settings.svi_steps),
        learning_rate=float(settings.svi_learning_rate),
        num_draws=int(settings.svi_draws),
        guide="normal",
        init=settings.bayes_init,
        init_map=_init_map(env, settings),
    )
    return _posterior_fit(post, {"final_elbo_loss": post.info.get("final_elbo_loss", np.nan)})


def fit_nuts(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """NUTS on a small model: gauge-fixed ``Tabular`` (E1) or the structured family (E2, E3)."""
    from bayes_diml.models import Priors

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


def _transitions(env: Environment) -> tuple[np.ndarray, np.ndarray]:
    """Scored transitions of the training data: previous joint int[N, n], next joint int[N, n]."""
    data = env.train
    mask = data.scored_mask  # bool[M, T-1]: step t has a scored successor
    prev = data.actions[:, :-1][mask]
    nxt = data.actions[:, 1:][mask]
    return np.asarray(prev, dtype=np.int64), np.asarray(nxt, dtype=np.int64)


def fit_joint_bc(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Behaviour cloning of the joint policy: p(a_i(t+1) | a_-i(t)) from pooled training play.

    Per agent, a softmax over a table indexed by the opponents' previous actions, fitted in closed
    form (the MLE of a categorical table is its smoothed counts, pseudo-count ``bc_pseudocount``).
    Its payoff estimate for the metrics is ``u^_i(a, a_-i) = log p(a_i(t+1) = a | a_-i(t) = a_-i)``:
    a ``Tabular`` table, so diff_mse compares log-probability differences with payoff differences
    (DIML's scale, beta = 3, is not applied) and cfkl simulates learners on these "payoffs".
    """
    del seed
    k = tuple(env.data.n_actions)
    prev, nxt = _transitions(env)
    table = np.zeros((*k, len(k)))
    for i in range(len(k)):
        counts = np.zeros(k)
        idx = prev.copy()
        idx[:, i] = nxt[:, i]
        np.add.at(counts, tuple(idx.T), 1.0)
        counts += settings.bc_pseudocount
        table[..., i] = np.log(counts / counts.sum(axis=i, keepdims=True))
    mech = Tabular(k)
    return MethodFit(mech, mech.params_from_table(jnp.asarray(table, dtype=jnp.float32)), info={})


def fit_equilibrium(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Equilibrium-only inverse: a static logit response to pooled play, ignoring learning.

    Maximises ``sum_{t, i} log softmax(beta * EU_i)[a_i(t+1)]`` over a ``Tabular`` mechanism, with
    ``EU_i(k) = sum_{a_-i} w_i(a_-i) u_i(k, a_-i)``, ``w_i`` the pooled empirical frequencies of the
    opponents' profiles and beta the true learner's. The objective only sees ``EU_i``; its
    maximiser is the smoothed log frequency ``v_i(k) = log f_i(k) / beta`` (pseudo-count
    ``eq_pseudocount``), and among the tables reaching it we take the minimum-norm one,
    ``u_i(k, a_-i) = v_i(k) w_i(a_-i) / ||w_i||^2`` (what gradient descent from a zero table
    converges to), in closed form.
    """
    del seed
    k = tuple(env.data.n_actions)
    prev, nxt = _transitions(env)
    beta = float(np.mean(np.asarray(env.learner.beta)))
    table = np.zeros((*k, len(k)))
    for i in range(len(k)):
        freq = np.bincount(nxt[:, i], minlength=k[i]) + settings.eq_pseudocount
        v = np.log(freq / freq.sum()) / beta
        v -= v.mean()
        w = np.zeros(k)
        idx = prev.copy()
        idx[:, i] = 0
        np.add.at(w, tuple(idx.T), 1.0)
        w = w.sum(axis=i, keepdims=True) / prev.shape[0]  # opponents' profile frequencies
        shape = [1] * len(k)
        shape[i] = k[i]
        table[..., i] = v.reshape(shape) * w / np.sum(w**2)
    mech = Tabular(k)
    return MethodFit(mech, mech.params_from_table(jnp.asarray(table, dtype=jnp.float32)), info={})


METHOD_FUNCTIONS: dict[str, Callable[[Environment, Settings, int], MethodFit]] = {
    "diml": fit_diml,
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
}


# --------------------------------------------------------------------------- metrics
def coverage_contexts(data, n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Test contexts as diff_mse draws them: joint int[S, n] with a_i uniform, agent int[S]."""
    rng = np.random.default_rng(seed)
    mm, tt = np.nonzero(data.scored_mask)
    pick = rng.integers(0, mm.size, n_samples)
    agent = rng.integers(0, data.n_agents, n_samples)
    k = np.asarray(data.n_actions)[agent]
    joint = np.array(data.actions[mm[pick], tt[pick]], dtype=np.int32)
    joint[np.arange(n_samples), agent] = (rng.random(n_samples) * k).astype(np.int32)
    return joint, agent


def interval_coverage(
    env: Environment, fit: MethodFit, n_samples: int, n_draws: int, prob: float = 0.9, seed: int = 0
) -> float:
    """Share of sampled test payoff differences whose central ``prob`` interval holds the truth.

    Payoff differences are the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)`` (gauge-free) of
    agent i at ``n_samples`` test contexts (:func:`coverage_contexts`).
    """
    if fit.draws is None:
        raise ValueError("this method has no posterior draws; interval coverage needs a Bayesian row.")
    joint, agent = coverage_contexts(env.test, n_samples, seed)
    draws = np.asarray(fit.draws(joint, n_draws, agent=agent))  # [D, S]: agent i's only (E7: 40+ agents)
    truth = np.asarray(metrics.agent_payoff_differences(env.mechanism, env.params, joint, agent))
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return float(np.mean((truth >= lo) & (truth <= hi)))


def evaluate(env: Environment, fit: MethodFit, settings: Settings) -> dict[str, float]:
    """diff_mse (test split), cfkl_params (final-evaluation settings) and, for Bayesian fits, coverage."""
    T = min(int(settings.cfkl_T), int(env.data.n_steps))
    out = {
        "diff_mse": metrics.diff_mse(
            env.mechanism,
            env.params,
            fit.mechanism,
            fit.params,
            env.test,
            n_samples=settings.diff_samples,
            seed=settings.metric_seed,
        ),
        "cfkl_params": metrics.cfkl_params(
            env.mechanism,
            env.params,
            fit.mechanism,
            fit.params,
            env.learner,
            n_episodes=settings.cfkl_episodes,
            T=T,
            seed=settings.metric_seed,
            n_actions=env.data.n_actions,
            buckets=settings.cfkl_buckets if env.name == "e7" else None,
        ),
        "interval_coverage_90": np.nan,
    }
    if fit.draws is not None:
        out["interval_coverage_90"] = interval_coverage(
            env, fit, settings.coverage_samples, settings.coverage_draws, seed=settings.metric_seed
        )
    return out


# ---------------------------------------------------------------------------- runner
def _params_path(out_csv: Path, key: tuple) -> Path:
    experiment, setting, method, seed = key
    return out_csv.parent / f"{out_csv.stem}_params" / f"{experiment}_{setting}_{method}_seed{seed}.npz"


def _save_params(path: Path, fit: MethodFit) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"params.{k}": np.asarray(v) for k, v in flatten_params(fit.params).items()}
    arrays["mechanism"] = np.asarray(type(fit.mechanism).__name__)
    if fit.learner is not None:
        for name in parameter_names(fit.learner):
            arrays[f"learner.{name}"] = np.asarray(getattr(fit.learner, name))
    for name, value in fit.info.items():
        arrays[f"info.{name}"] = np.asarray(value)
    np.savez(path, **arrays)


def load_params(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one saved fit: ``params.<path>`` (flattened params), ``learner.*``, ``info.*``."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def load_results(path: str | Path):
    """The results CSV as a DataFrame with :data:`CSV_COLUMNS` (empty if there is no file)."""
    import pandas as pd

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(CSV_COLUMNS))
    df = pd.read_csv(path, dtype={"setting": str})
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not a results CSV: columns {missing} are missing.")
    return df[list(CSV_COLUMNS)]


def _append_row(path: Path, row: dict[str, Any]) -> None:
    import pandas as pd

    new = not path.exists() or path.stat().st_size == 0
    pd.DataFrame([row], columns=list(CSV_COLUMNS)).to_csv(path, mode="a", header=new, index=False)


def run_paper(
    experiments: Iterable[str] | str = ("e1", "e2", "e3", "e7:40x10"),
    seeds: Sequence[int] = (0, 1, 2),
    methods: Iterable[str] | None = None,
    out_csv: str | Path = "results.csv",
    quick: bool = False,
    progress: bool = True,
    settings: Settings | None = None,
):
    """Run the suite; one CSV row per (experiment, setting, method, seed), appended as it finishes.

    Parameters
    ----------
    experiments : names
        ``"e1"``, ``"e2"``, ``"e3"``, ``"e7"`` (all five reference settings) or ``"e7:NxK"``.
    seeds : ints
        Seeds of the environments (data and truth) and of the fits.
    methods : names, optional
        Any of :data:`METHODS`; default :data:`DEFAULT_METHODS`. Methods that do not apply to an
        experiment (see :func:`applicable`) are skipped.
    out_csv : path
        Results CSV (columns :data:`CSV_COLUMNS`); fitted params go to ``<stem>_params/*.npz``.
        Rows already in the CSV are skipped, so a rerun resumes an interrupted one.
    quick : bool
        Tiny data and few steps (:data:`QUICK_SETTINGS`), for tests; ignored if ``settings`` given.
    progress : bool
        Print one line per finished row to stderr.
    settings : Settings, optional

    Returns
    -------
    pandas.DataFrame
        All rows of the CSV for the requested grid (old and new), in :data:`CSV_COLUMNS` order.
    """
    pairs = expand_experiments(experiments)
    methods = _check_methods(methods)
    seeds = [int(s) for s in seeds]
    if settings is None:
        settings = QUICK_SETTINGS if quick else Settings()
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    done = {
        (str(r.experiment), str(r.setting), str(r.method), int(r.seed))
        for r in load_results(out_csv).itertuples(index=False)
    }
    for experiment, setting in pairs:
        for seed in seeds:
            todo = [
                m for m in methods if applicable(experiment, m) and (experiment, setting, m, seed) not in done
            ]
            if not todo:
                continue
            env = make_environment(experiment, setting, seed, settings)
            for method in todo:
                key = (experiment, setting, method, seed)
                t0 = time.perf_counter()
                fit = METHOD_FUNCTIONS[method](env, settings, seed)
                jax.block_until_ready(fit.params)
                seconds = time.perf_counter() - t0
                scores = evaluate(env, fit, settings)
                _save_params(_params_path(out_csv, key), fit)
                n_params = param_count(fit.params) + (3 if fit.learner is not None else 0)
                row = (
                    dict(zip(_KEY, key, strict=True))
                    | scores
                    | {"fit_seconds": seconds, "n_params": n_params}
                )
                _append_row(out_csv, row)
                done.add(key)
                if progress:
                    cov = scores["interval_coverage_90"]
                    print(
                        f"{experiment} {setting} {method:12s} seed {seed}: diff_mse {scores['diff_mse']:.3e} "
                        f"cfkl {scores['cfkl_params']:.3f}"
                        + ("" if math.isnan(cov) else f" cover90 {cov:.2f}")
                        + f" fit {seconds:.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    df = load_results(out_csv)
    wanted = {(e, s) for e, s in pairs}
    sel = [
        (e, s) in wanted and m in methods and int(sd) in seeds
        for e, s, m, sd in df[list(_KEY)].itertuples(index=False)
    ]
    return df[sel].reset_index(drop=True)


# --------------------------------------------------------------------------- summary
def summarize(results):
    """Mean and sd over seeds per (experiment, setting, method), next to the published numbers.

    Parameters
    ----------
    results : DataFrame or path of a results CSV

    Returns
    -------
    pandas.DataFrame
        Columns ``experiment, setting, method, n_seeds, diff_mse_mean, diff_mse_sd,
        cfkl_params_mean, cfkl_params_sd, interval_coverage_90_mean, fit_seconds_mean, n_params,
        published_diff_mse, published_cfkl_params`` (sd with ddof = 1; NaN for one seed).
    """
    import pandas as pd

    df = load_results(results) if isinstance(results, str | Path) else results
    order = {m: i for i, m in enumerate(METHODS)}
    rows = []
    for (e, s, m), g in df.groupby(["experiment", "setting", "method"], sort=False):
        pub = PUBLISHED.get((e, str(s), m), (np.nan, np.nan))
        rows.append(
            {
                "experiment": e,
                "setting": str(s),
                "method": m,
                "n_seeds": len(g),
                "diff_mse_mean": g["diff_mse"].mean(),
                "diff_mse_sd": g["diff_mse"].std(ddof=1),
                "cfkl_params_mean": g["cfkl_params"].mean(),
                "cfkl_params_sd": g["cfkl_params"].std(ddof=1),
                "interval_coverage_90_mean": pd.to_numeric(g["interval_coverage_90"], errors="coerce").mean(),
                "fit_seconds_mean": g["fit_seconds"].mean(),
                "n_params": int(g["n_params"].iloc[0]),
                "published_diff_mse": pub[0],
                "published_cfkl_params": pub[1],
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_o"] = out["method"].map(order)
    out["_n"] = [_setting_size(s) for s in out["setting"]]  # E7 40x10 before 120x25
    keys = ["experiment", "_n", "setting", "_o"]
    return out.sort_values(keys).drop(columns=["_o", "_n"]).reset_index(drop=True)


def _setting_size(setting: str) -> int:
    """The first number of a setting ``'NxK'`` (agents), for ordering; 0 if there is none."""
    head = str(setting).split("x")[0]
    return int(head) if head.isdigit() else 0


def _pm(mean: float, sd: float, fmt: str) -> str:
    if np.isnan(mean):
        return ""
    return f"{mean:{fmt}}" + ("" if np.isnan(sd) else f" ± {sd:{fmt}}")


def format_table(summary) -> str:
    """A Markdown table of :func:`summarize`'s output (mean ± sd, published next to ours)."""
    head = (
        "| experiment | setting | method | seeds | diff_mse (ours) | diff_mse (published) "
        "| cfkl_params (ours) | cfkl_params (published) | 90% coverage | fit s | params |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in summary.itertuples(index=False):
        lines.append(
            f"| {r.experiment.upper()} | {r.setting} | {r.method} | {r.n_seeds} "
            f"| {_pm(r.diff_mse_mean, r.diff_mse_sd, '.2e')} "
            f"| {'' if np.isnan(r.published_diff_mse) else f'{r.published_diff_mse:.2e}'} "
            f"| {_pm(r.cfkl_params_mean, r.cfkl_params_sd, '.3f')} "
            f"| {'' if np.isnan(r.published_cfkl_params) else f'{r.published_cfkl_params:.3f}'} "
            f"| {'' if np.isnan(r.interval_coverage_90_mean) else f'{r.interval_coverage_90_mean:.2f}'} "
            f"| {r.fit_seconds_mean:.1f} | {r.n_params} |"
        )
    return head + "\n".join(lines) + "\n"


def plot_figure1(results, path: str | Path) -> Path:
    """Figure-1-like PNG: diff_mse and cfkl_params per method per experiment (log scale).

    Bars are means over seeds with sd error bars, dots the seeds, crosses the published numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = load_results(results) if isinstance(results, str | Path) else results
    summ = summarize(df)
    panels = list(dict.fromkeys(zip(summ["experiment"], summ["setting"], strict=True)))
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(3.2 * max(1, len(panels)), 6.5), squeeze=False)
    for j, (e, s) in enumerate(panels):
        sub = summ[(summ["experiment"] == e) & (summ["setting"] == s)]
        methods = list(sub["method"])
        x = np.arange(len(methods))
        for row, metric, pub in (
            (0, "diff_mse", "published_diff_mse"),
            (1, "cfkl_params", "published_cfkl_params"),
        ):
            ax = axes[row, j]
            mean = sub[f"{metric}_mean"].to_numpy(dtype=float)
            sd = np.nan_to_num(sub[f"{metric}_sd"].to_numpy(dtype=float))
            ax.bar(x, mean, color="C0", alpha=0.6, yerr=sd, capsize=2)
            for k, m in enumerate(methods):
                vals = df[(df["experiment"] == e) & (df["setting"].astype(str) == s) & (df["method"] == m)][
                    metric
                ]
                ax.plot(np.full(len(vals), x[k]), vals, "k.", ms=3)
            p = sub[pub].to_numpy(dtype=float)
            ax.plot(x, p, "rx", ms=7, label="published" if j == 0 else None)
            ax.set_yscale("log")
            ax.set_xticks(x, methods, rotation=60, ha="right", fontsize=7)
            if row == 0:
                ax.set_title(f"{e.upper()} ({s})", fontsize=9)
            if j == 0:
                ax.set_ylabel(metric)
    if panels:
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
