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
                  for E7) with the true learner fixed; Adam, lr 0.01, one start. E1-E3: a weak
                  N(0, 0.3^2) prior on every weight, 2,000 steps. E7: N(0, 1 / fan_in) on each
                  weight matrix (``Settings.e7_prior``), 1,500 steps.
``diml_constant`` ``diml`` with the N(0, 0.3^2) prior everywhere: on E7 with 500 steps, a budget
                  that acts as early stopping for that prior (it overfits E7 when run longer).
``diml_mle``      the same with flat priors (DIML's plain MLE; overfits E2, see the docs).
``diml_wrong``    ``diml`` (its prior) with the learner's beta x 0.6.
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
``diml_fanin``    ``diml`` with an ``N(0, 1 / fan_in)`` prior on each weight matrix
                  (``Priors(weight_scaling="fan_in")``), which regularises the wide layers;
                  E7: 1,500 Adam steps (no early stopping needed), the same fit as ``diml``.
``diml_prior_val`` ``diml`` with its whole prior chosen by validation log-likelihood among
                  ``Settings.prior_candidates`` (constant N(0, 0.3^2) or N(0, c^2 / fan_in),
                  c in {0.5, 1, 2}): the first is kept unless another's held-out gain exceeds one
                  standard error; then refitted on all training episodes.
``diml_early``    ``diml_constant`` with its Adam step count chosen by early stopping on the held-out
                  log-likelihood of a validation split of the training episodes
                  (``fit(..., validation=...)``), then refitted for that many steps.
"""

from __future__ import annotations

from bayes_diml.studies.experiments.baselines import fit_equilibrium, fit_joint_bc
from bayes_diml.studies.experiments.fitting import MethodFit
from bayes_diml.studies.experiments.grid import applicable, expand_experiments, make_environment
from bayes_diml.studies.experiments.methods import METHOD_FUNCTIONS
from bayes_diml.studies.experiments.report import format_table, plot_figure1, summarize
from bayes_diml.studies.experiments.results import load_params, load_results, params_path, save_params
from bayes_diml.studies.experiments.runner import RowFailed, run_paper
from bayes_diml.studies.experiments.scoring import coverage_contexts, evaluate, interval_coverage
from bayes_diml.studies.experiments.settings import (
    BAYESIAN_METHODS,
    CSV_COLUMNS,
    DEFAULT_METHODS,
    EXPERIMENTS,
    METHODS,
    PUBLISHED,
    QUICK_SETTINGS,
    Settings,
)

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
    "RowFailed",
    "load_results",
    "load_params",
    "save_params",
    "params_path",
    "summarize",
    "format_table",
    "plot_figure1",
]

# Reachable as ``experiments.<name>`` as before the split, though not in ``__all__``: the method
# functions, and helpers that tests and benchmarks use.
from bayes_diml.environments import E7_SETTINGS  # noqa: E402, F401
from bayes_diml.studies.experiments.baselines import _transitions  # noqa: E402, F401
from bayes_diml.studies.experiments.fitting import _init_map, _map_fit, _network  # noqa: E402, F401
from bayes_diml.studies.experiments.methods import (  # noqa: E402, F401
    fit_diml,
    fit_diml_constant,
    fit_diml_fanin,
    fit_diml_joint,
    fit_diml_mle,
    fit_diml_wrong,
    fit_nuts,
    fit_struct_mle,
    fit_svi,
    fit_tabular_mle,
)
from bayes_diml.studies.experiments.validation import (  # noqa: E402, F401
    choose_prior,
    fit_diml_early,
    fit_diml_prior_val,
    fit_diml_val,
    gain_standard_error,
    prior_validation_scores,
    validation_scores,
)
