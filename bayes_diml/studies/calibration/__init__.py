"""Simulation-based calibration (SBC) of the Bayesian fits, and misspecification studies.

:func:`sbc` draws ``n_datasets`` parameter sets from the prior of the NumPyro model
(:func:`bayes_diml.models.logit_q_model`'s prior predictive), simulates one data set per
draw (:func:`bayes_diml.simulation.simulate_arrays`), fits each with ``method`` and records,
for every scalar quantity, the rank of the true value among ``n_ranks`` thinned posterior
draws and whether the central 50/80/90/95% intervals (equal-tailed quantiles of all draws,
as :meth:`Posterior.credible_interval` reports them) contain it. If the posterior
approximation is exact, ranks are uniform on ``0..n_ranks`` and coverages are nominal.

Quantities (all gauge-free):

- ``alpha``, ``eps`` and ``beta`` when inferred; ``beta`` is flagged *not identified* when it
  is confounded with the payoff scale (inferred, no observed payoffs): its calibration then
  only reflects the prior and it is left out of the headline checks;
- ``payoff_noise`` when payoffs are observed;
- payoff differences: the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)``, one per agent,
  opponent profile and own action ``k < K_i - 1`` (the last is minus the sum of the others),
  named ``centred_payoffs[a_1,...,a_n,i]``; when beta is confounded the identified product
  ``scaled_payoffs = beta x centred payoffs`` instead.

``learner_priors`` says which learner parameters are inferred: a :class:`LogitQ` (or dict)
whose fields are ``"infer"`` (drawn from ``priors`` and inferred) or a number (held fixed at
that value in simulation and fit); ``None`` infers alpha, beta and eps. The prior
hyper-parameters of inferred fields are those of ``priors`` (:class:`Priors`).

Sweeps run in chunks of data sets. Each chunk is one task: with the ``vmap`` engine (tabular
games, NUTS / SVI) a chunk is a single compiled, vectorised fit; with the ``fit`` engine
(any mechanism, any method) it loops over :func:`bayes_diml.fit`. Chunks are distributed
with Dask when it is installed (``pip install bayes-diml[sweep]``; pass ``client=`` a
``dask.distributed.Client`` or ``workers=`` > 1), else run serially in this process. Every
finished chunk is appended to ``<out>.partial.jsonl``; a rerun with the same settings skips
the chunks already there, so an interrupted study loses at most the running chunks.
"""

from __future__ import annotations

from bayes_diml.studies.calibration.checks import (
    coverage_band,
    coverage_from_draws,
    rank_uniformity,
    ranks_from_draws,
)
from bayes_diml.studies.calibration.prior import prior_datasets
from bayes_diml.studies.calibration.result import SBCResult, load_sbc, plot_sbc
from bayes_diml.studies.calibration.runner import sbc
from bayes_diml.studies.calibration.spec import LEVELS, METHODS, SIMULATORS, make_learner

__all__ = [
    "LEVELS",
    "METHODS",
    "SIMULATORS",
    "SBCResult",
    "sbc",
    "prior_datasets",
    "ranks_from_draws",
    "coverage_from_draws",
    "coverage_band",
    "rank_uniformity",
    "load_sbc",
    "plot_sbc",
    "make_learner",
]


# Reachable as ``calibration.<name>`` as before the split, though not in ``__all__``
# (tests use ``_run_chunks``).
from bayes_diml.studies.calibration.checks import pit_from_ranks  # noqa: E402, F401
from bayes_diml.studies.calibration.chunks import _run_chunks  # noqa: E402, F401
