"""Settings of the paper suite: its grid names, the reference's numbers and the fit settings."""

from __future__ import annotations

import dataclasses
from typing import Any

from bayes_diml.models import Priors

__all__ = [
    "CSV_COLUMNS",
    "EXPERIMENTS",
    "METHODS",
    "DEFAULT_METHODS",
    "BAYESIAN_METHODS",
    "PUBLISHED",
    "Settings",
    "QUICK_SETTINGS",
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
    "diml_fanin",
    "diml_prior_val",
    "diml_early",
    "diml_constant",
)
#: What ``run_paper(methods=None)`` runs.
DEFAULT_METHODS = ("diml", "diml_wrong", "tabular_mle", "struct_mle", "joint_bc", "equilibrium", "svi")
BAYESIAN_METHODS = ("svi", "nuts")
_KEY = ("experiment", "setting", "method", "seed")
_FIXED_SETTINGS = {"e1": "3x6", "e2": "4x5", "e3": "3x7"}

#: The reference's single-run results (final epoch): (experiment, setting, method) -> (diff_mse, cfkl).
#: Source: An & Du (2026), arXiv:2601.17678, results of the authors' script (the paper plots them in
#: Figure 1); recorded in docs/paper-reference.md, which tests/test_paper_reference.py compares with this.
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
    map_steps, map_learning_rate : Adam steps and step size of every MAP fit (E1-E3).
    map_steps_e7 : int
        Adam steps of an E7 MAP fit under a constant weight prior (``diml_constant``, ``diml_mle``,
        the constant candidates of ``diml_val`` and ``diml_prior_val``): a budget that acts as
        early stopping for that prior.
    prior_scale : float
        Sd of the N(0, s^2) prior on every mechanism weight of ``diml``, ``diml_wrong``,
        ``diml_joint``, ``svi`` and ``nuts`` on E1-E3 (E1 table cells / E2 family weights), and
        of ``diml_constant`` everywhere.
    weight_scaling : str
        ``Priors.weight_scaling`` of those priors: ``"constant"`` (every weight sd
        ``prior_scale``), ``"fan_in"`` (a weight matrix ``prior_scale / sqrt(fan_in)``) or
        ``"fan_in_bias"`` (its layer's bias too). The fan-in priors are the E7 "fan-in prior" below.
    fan_in_scale, fan_in_steps_e7 : float, int
        ``diml_fanin``: the ``c`` of its ``N(0, c^2 / fan_in)`` weight prior; ``fan_in_steps_e7``
        is the Adam step count of every E7 MAP fit under a fan-in prior (elsewhere ``map_steps``).
    fan_in_polish_e7 : int
        Most L-BFGS steps that then polish every E7 MAP fit under a fan-in prior
        (``MAPConfig.polish_steps``): Adam finds the optimum's basin, L-BFGS runs it to the
        convergence test. 0 turns polishing off (``diml_early``'s refit never polishes).
    e7_prior : (str, float) or None
        The weight prior ``(weight_scaling, scale)`` of ``diml``, ``diml_wrong``, ``diml_joint``
        and ``svi`` on E7's count network: N(0, 1 / fan_in) per weight matrix, which regularises
        at every (n, K), so its fits run ``fan_in_steps_e7`` Adam steps without early stopping,
        then up to ``fan_in_polish_e7`` L-BFGS steps to the optimum.
        ``None``: the E1-E3 prior (``weight_scaling``, ``prior_scale``, ``map_steps_e7`` steps).
    prior_scale_grid : tuple of float or None
        Candidate prior sds of ``diml_val`` (``None``: flat prior, the plain MLE).
    prior_candidates : tuple of (str, float)
        Candidate priors of ``diml_prior_val``: ``(weight_scaling, scale)``, the constant
        N(0, 0.3^2) of ``diml_constant`` (E7: ``map_steps_e7`` steps) and fan-in priors N(0, c^2 / fan_in)
        with c in {0.5, 1, 2} (E7: ``fan_in_steps_e7`` steps). The first is the incumbent.
    prior_val_threshold_se : float
        ``diml_prior_val`` replaces the first candidate only by one whose held-out gain over it
        exceeds this many standard errors (paired over validation episodes).
    validation_fraction : float
        Share of the *training* episodes ``diml_val``, ``diml_prior_val`` and ``diml_early`` hold
        out to choose their prior or step count.
    validation_cache : str or None
        Folder where ``diml_val`` and ``diml_prior_val`` save each candidate's held-out
        log-likelihoods as it finishes (one ``.npz`` per candidate, named by the row and keyed by
        a digest of the settings, the learner and the episodes), so a rerun of an interrupted
        row fits only the candidates not yet scored. ``None``: no cache, except that
        :func:`run_paper` uses ``<stem>_params/validation`` beside its CSV.
    early_max_steps, early_patience : int
        ``diml_early``: most Adam steps of its fit on the rest of the training episodes, and the
        chunks (100 steps; a quarter of ``early_max_steps`` when shorter) without a better
        held-out log-likelihood after which it stops.
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
    weight_scaling: str = "constant"
    fan_in_scale: float = 1.0
    fan_in_steps_e7: int = 1500
    fan_in_polish_e7: int = 1000
    e7_prior: tuple[str, float] | None = ("fan_in", 1.0)
    prior_scale_grid: tuple[float | None, ...] = (None, 1.0, 0.3, 0.1)
    prior_candidates: tuple[tuple[str, float], ...] = (
        ("constant", 0.3),
        ("fan_in", 0.5),
        ("fan_in", 1.0),
        ("fan_in", 2.0),
    )
    prior_val_threshold_se: float = 1.0
    validation_fraction: float = 0.25
    validation_cache: str | None = None
    early_max_steps: int = 3000
    early_patience: int = 5
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

    def __post_init__(self) -> None:
        if self.e7_prior is not None:
            if not (isinstance(self.e7_prior, tuple | list) and len(self.e7_prior) == 2):
                raise ValueError(
                    f"Settings.e7_prior must be (weight_scaling, scale) or None; got {self.e7_prior!r}."
                )
            weight_scaling, scale = self.e7_prior
            Priors(mechanism_scale=scale, weight_scaling=weight_scaling)  # names a bad value

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


#: Tiny data and few steps: for tests and smoke runs only (numbers are meaningless).
QUICK_SETTINGS = Settings(
    n_episodes=6,
    T=10,
    map_steps=20,
    map_steps_e7=10,
    fan_in_steps_e7=10,
    fan_in_polish_e7=10,
    early_max_steps=40,
    early_patience=1,
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
