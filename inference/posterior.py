"""The result of a fit: draws in an ArviZ DataTree plus what is needed to use them.

Everything reported is gauge-fixed: centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)``
and learner parameters, never raw mechanism weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bayes_diml.data import Trajectories
from bayes_diml.learners import LogitQ, temperature_name
from bayes_diml.mechanisms import GroupedTabular
from bayes_diml.models import (
    Priors,
    hierarchical_site_names,
    inferred_learner_fields,
    is_confounded,
    learner_fields,
    params_from_sites,
    population_learner_fields,
    population_median,
    subject_learner_fields,
)

from .bag_diagnostics import chains_per_bag, diagnostics_table
from .compare import lfo, loo
from .covariates import (
    context_payoff_table,
    covariate_contrast_frame,
    covariate_effects_frame,
    covariate_posterior,
    require_data_likelihood,
    require_one_table,
)
from .design import Design, design
from .groups import contrast_frame, group_episodes, group_posterior, grouped_summary
from .identification import (
    flat_directions,
    identification_table,
    support_mask,
)
from .interventions import EditedMechanism, counterfactual
from .labelled import payoff_dataset, payoff_interval_table, relabel_index
from .pairs import UNITS_PAYOFF, UNITS_SCALED, payoff_pairs_frame
from .persistence import read_fit, save_fit
from .plots import plot_posterior
from .ppc import ppc_behaviour
from .quiet import SUMMARY_WARNINGS, silenced
from .spec import ModelSpec
from .summary import summary_frame
from .units import centred_payoff_draws, identified_payoff_differences, temperature_scaled

__all__ = ["Posterior", "load", "support_mask", "EditedMechanism"]


class Posterior:
    """Draws of the mechanism and learner given trajectories, with gauge-free reporting.

    Attributes
    ----------
    idata : xarray.DataTree
        ArviZ DataTree: ``posterior`` (latent and deterministic sites, dims chain x draw),
        ``sample_stats``, ``log_likelihood`` (``actions``: episode x step x agent),
        ``observed_data``, ``constant_data`` and, when asked, ``prior`` /
        ``posterior_predictive``.
    method : str
        ``"map"``, ``"laplace"``, ``"svi"`` or ``"nuts"``.
    info : dict
        Diagnostics and timings of the fit.
    """

    def __init__(self, idata: Any, spec: ModelSpec, method: str, info: dict | None = None):
        self.idata = idata
        self.spec = spec
        self.method = method
        self.info = dict(info or {})

    # ------------------------------------------------------------------ basics
    @property
    def data(self) -> Trajectories:
        """The fitted trajectories."""
        return self.spec.data

    @property
    def mechanism(self) -> Any:
        """The mechanism family that was fitted."""
        return self.spec.mechanism

    @property
    def learner(self) -> LogitQ:
        """The learner spec (numbers fixed, strings inferred)."""
        return self.spec.learner

    @property
    def priors(self) -> Priors:
        """The priors used."""
        return self.spec.priors

    @property
    def confounded(self) -> bool:
        """Whether beta and the payoff scale are confounded in this fit."""
        return is_confounded(self.mechanism, self.learner, self.data)

    @property
    def n_draws(self) -> int:
        """Number of draws (chains x draws)."""
        post = self.idata["posterior"]
        return int(post.sizes["chain"] * post.sizes["draw"])

    def __repr__(self) -> str:
        return (
            f"Posterior(method={self.method!r}, draws={self.n_draws}, "
            f"mechanism={type(self.mechanism).__name__}, data={self.data!r})"
        )

    def draws(self, name: str) -> np.ndarray:
        """Draws of one posterior variable, chains stacked: float[D, ...]."""
        post = self.idata["posterior"]
        if name not in post.data_vars:
            raise KeyError(f"no posterior variable {name!r}; have {sorted(post.data_vars)}.")
        v = np.asarray(post[name].values)
        return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])

    def site_draws(self) -> dict[str, np.ndarray]:
        """Draws of every latent site: dict name -> float[D, ...]."""
        return {k: self.draws(k) for k in self.spec.latent_names}

    def mechanism_params(self, draw: int | None = None) -> Any:
        """Mechanism params of one draw, or (``draw=None``) the posterior-mean sites."""
        sites = self.site_draws()
        pick = {k: (v.mean(0) if draw is None else v[draw]) for k, v in sites.items()}
        return params_from_sites(self.mechanism, pick)

    def learner_draws(self) -> LogitQ:
        """Return the learner (same family) with every parameter as draws float[D] or float[D, n].

        A per-subject parameter (``"infer_subject"``) is given as its population median
        ``link^-1(mu)`` per draw, float[D]: the typical subject (``draws(name)`` holds the
        subjects' own values, float[D, M]).
        """
        D = self.n_draws
        out = {}
        subjects = subject_learner_fields(self.learner)
        for name in learner_fields(self.learner):
            v = getattr(self.learner, name)
            if name in subjects:
                out[name] = population_median(
                    self.learner, name, self.draws(hierarchical_site_names(name)[0])
                )
            elif isinstance(v, str):
                out[name] = self.draws(name)
            else:
                arr = np.asarray(v, dtype=float)
                out[name] = np.broadcast_to(arr, (D, *arr.shape))
        return self.learner._replace(**out)

    def point_learner(self) -> LogitQ:
        """Posterior-mean learner (fixed fields as given)."""
        ld = self.learner_draws()
        return ld._replace(**{n: np.asarray(getattr(ld, n)).mean(0) for n in learner_fields(ld)})

    # -------------------------------------------------------------- incentives
    @functools.cached_property
    def support(self) -> np.ndarray:
        """bool[K_1, ..., K_n, n]: cells whose opponent profile was observed (computed once).

        A grouped fit: bool[G, K_1, ..., K_n, n], each group's own.
        """
        if self.grouped:
            return np.stack(
                [support_mask(self.data.subset(group_episodes(self, g))) for g in self.mechanism.groups]
            )
        return support_mask(self.data)

    def payoff_differences(
        self, joint: Any = None, n_draws: int | None = None, agent: Any = None
    ) -> np.ndarray:
        """Draws of the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)``, in payoff units.

        ``joint``: int[..., n] (default: every profile). Returns float[D, ..., n]. With
        ``agent: int[S]`` (and ``joint: int[S, n]``), only that agent's centred payoff per joint
        action: float[D, S], evaluating that agent's payoffs only (what many agents need). Where
        the payoff scale is confounded with the temperature (``confounded``), their scale is the
        prior's: :meth:`identified_payoff_differences` gives the identified product.
        """
        return centred_payoff_draws(self, joint, n_draws, agent)

    def identified_payoff_differences(
        self, joint: Any = None, n_draws: int | None = None, agent: Any = None
    ) -> tuple[np.ndarray, str]:
        """:meth:`payoff_differences` in identified units, and the units' name.

        Payoff units (``"payoff"``) where the payoff scale is identified; temperature x payoff
        (``"beta x payoff"``), per draw and agent, where it is confounded with the temperature.
        """
        return identified_payoff_differences(self, joint, n_draws, agent)

    def credible_interval(
        self, prob: float = 0.9, joint: Any = None
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Equal-tailed intervals: ``{"centred_payoffs": (lower, upper), "alpha": ..., ...}``."""
        _check_prob(prob)
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        out = {}
        pd_draws = self.payoff_differences(joint)
        out["centred_payoffs"] = (np.quantile(pd_draws, lo, axis=0), np.quantile(pd_draws, hi, axis=0))
        for name in self._scalar_names():  # learner fields (per-agent, hierarchical), payoff noise
            d = self.draws(name)
            out[name] = (np.quantile(d, lo, axis=0), np.quantile(d, hi, axis=0))
        if self.confounded and "scaled_payoffs" in self.idata["posterior"].data_vars:
            d = self.draws("scaled_payoffs")
            out["scaled_payoffs"] = (np.quantile(d, lo, axis=0), np.quantile(d, hi, axis=0))
        return out

    def payoff_table(
        self, prob: float = 0.9, *, labelled: bool = False, group: str | None = None, covariates: Any = None
    ) -> Any:
        """Arrays ``mean, lower, upper`` float[K_1..K_n, n] of the centred payoffs and ``support``.

        A dict of NumPy arrays; with ``labelled=True`` an ``xarray.Dataset`` of the same
        variables with coordinates ``action_<agent>`` (one per agent) and ``agent``, named by
        the data's labels when it has them (see
        ``bayes_diml.inference.labelled.payoff_dataset``). A grouped fit needs ``group``: the
        table of that group (see :meth:`for_group`); a covariate fit ``covariates={"name": value}``.
        """
        _check_prob(prob)
        special = context_payoff_table(self, prob, labelled=labelled, group=group, covariates=covariates)
        if special is not None:
            return special
        table = payoff_interval_table(self.payoff_differences(), prob, self.support)
        return payoff_dataset(table, self.data, prob) if labelled else table

    @property
    def grouped(self) -> bool:
        """Whether the fit has one payoff table per group of episodes (``GroupedTabular``)."""
        return isinstance(self.mechanism, GroupedTabular)

    def for_group(self, group: str) -> Posterior:
        """Return the ordinary tabular posterior of one group of a grouped fit.

        Its data are the group's episodes, its draws the group's table (shared table + shrunk
        deviation) and the shared learner draws, in the same order as this fit's: every tool of
        a tabular fit (``payoff_table``, ``payoff_pairs``, ``counterfactual``, ``design``,
        ``summary``) answers for that group.
        """
        return group_posterior(self, group)

    def contrast(self, group_a: str, group_b: str, prob: float = 0.9):
        """Centred payoff in group A minus group B per (agent, joint action), from joint draws.

        Columns: ``agent, joint, mean, lower, upper, prob_positive, support_a, support_b, units``.
        """
        _check_prob(prob)
        return contrast_frame(self, group_a, group_b, prob)

    def covariate_effects(self, prob: float = 0.9):
        """Tabulate centred payoff changes per unit of each covariate (``covariate_effects_frame``)."""
        return covariate_effects_frame(self, prob)

    def at_covariates(self, covariates: Mapping[str, float]) -> Posterior:
        """Return the ordinary tabular posterior of a covariate fit's table at ``{"name": value}``.

        Draws in this fit's order (two values pair draw by draw), data all episodes, the prior
        of the table at that value; see ``bayes_diml.inference.covariates.covariate_posterior``.
        """
        return covariate_posterior(self, covariates)

    def contrast_covariates(self, a: Mapping[str, float], b: Mapping[str, float], prob: float = 0.9):
        """Centred payoff at covariates ``a`` minus at ``b`` (``covariate_contrast_frame``)."""
        return covariate_contrast_frame(self, a, b, prob)

    def _require_ungrouped(self, what: str) -> None:
        require_one_table(self, what)

    def identified_payoff_draws(self) -> tuple[np.ndarray, str]:
        """Draws of the centred payoff table in identified units, and the units' name.

        float[D, K_1, ..., K_n, n]: the centred payoffs when the payoff scale is identified
        (``"payoff"``); when the temperature and the payoff scale are confounded (temperature
        inferred, no observed payoffs), temperature x centred payoffs (``"beta x payoff"``,
        named after the family's temperature), the product the data determine.
        """
        if not self.confounded:
            return self.payoff_differences(), UNITS_PAYOFF
        t = temperature_name(self.learner)
        if "scaled_payoffs" in self.idata["posterior"].data_vars:
            return self.draws("scaled_payoffs"), UNITS_SCALED.format(temperature=t)
        return self.scaled_payoff_draws(), UNITS_SCALED.format(temperature=t)

    def scaled_payoff_draws(self) -> np.ndarray:
        """Return draws ``float[D, K_1, ..., K_n, n]`` of temperature x centred payoffs.

        The temperature (beta, Hedge's eta, EWA's lam) is the fit's, per draw and agent; with
        it fixed at 1 these are the centred payoffs.
        """
        return temperature_scaled(self, self.payoff_differences())

    def payoff_pairs(self, prob: float = 0.9):
        """Tabulate ``u_i(a, a_-i) - u_i(b, a_-i)`` for every agent, opponent profile and pair a < b.

        A DataFrame ``agent, opponents, a, b, mean, lower, upper, prob_greater, support, units``
        (``bayes_diml.inference.pairs.payoff_pairs_frame``): ``prob_greater`` is P(a pays more
        than b) from joint draws; ``support`` whether the profile was observed; ``units`` the
        identified units (temperature x payoff when the payoff scale is not identified).
        """
        _check_prob(prob)
        self._require_ungrouped("payoff_pairs")
        draws, units = self.identified_payoff_draws()
        labels = {"agent_labels": self.data.agent_labels, "action_labels": self.data.action_labels}
        return payoff_pairs_frame(draws, self.support, prob=prob, units=units, **labels)

    def identification(self, num_prior_draws: int = 4000, seed: int = 0):
        """Tabulate what the data determine, per quantity: support, prior-posterior contraction, label.

        See :func:`bayes_diml.inference.identification.identification_table`; rows name agents
        and actions by the data's labels when it has them.
        """
        table = identification_table(self, num_prior_draws=num_prior_draws, seed=seed)
        self._require_ungrouped("identification")
        return relabel_index(table, self.idata["posterior"], self.data)

    def flat_directions(self, k: int = 3):
        """Least-determined directions of the likelihood (Hessian eigenvectors), named by parameter."""
        require_data_likelihood(self, "flat_directions")
        return flat_directions(self, k=k)

    def prior_sensitivity(self, var_names: list[str] | None = None):
        """Power-scaling prior and likelihood sensitivity (ArviZ ``psense_summary``).

        Defaults to the inferred learner parameters and the centred payoffs. Needs draws
        (not MAP) and the ``log_prior`` / ``log_likelihood`` groups that ``fit`` stores.
        """
        import arviz as az

        if self.n_draws < 4 or "log_prior" not in self.idata.children:
            raise ValueError(
                "prior sensitivity needs posterior draws with log_prior and log_likelihood groups."
            )
        if var_names is None:
            var_names = self._scalar_names()
            if "centred_payoffs" in self.idata["posterior"].data_vars:
                var_names.append("centred_payoffs")
        with silenced(*SUMMARY_WARNINGS):
            return az.psense_summary(self.idata, var_names=var_names)

    # --------------------------------------------------------------- summaries
    def _scalar_names(self) -> list[str]:
        names = list(inferred_learner_fields(self.learner))
        for name in population_learner_fields(self.learner):  # population sites (scalars)
            names += list(hierarchical_site_names(name)[:2])
        if self.data.has_payoffs:
            names.append("payoff_noise")
        return names

    def _padded_bias_rows(self) -> list[str]:
        """Return the rows ``bias[i, k]`` of padded actions (``k >= K_i``): constant 0, not reported."""
        k = self.data.n_actions
        return [f"bias[{i}, {a}]" for i in range(len(k)) for a in range(k[i], max(k))]

    def _stats_frame(self, var_names: list[str], prob: float):
        import arviz as az
        import pandas as pd

        if self.n_draws < 4:
            rows = {}
            for v in var_names:
                d = self.draws(v)
                for idx in np.ndindex(*d.shape[1:]):
                    label = v if not idx else f"{v}[{', '.join(map(str, idx))}]"
                    rows[label] = {"mean": float(d[(slice(None), *idx)].mean())}
            frame = pd.DataFrame.from_dict(rows, orient="index")
            for col in ("sd", "lower", "upper", "r_hat", "ess_bulk"):
                frame[col] = np.nan
            return frame
        with silenced(*SUMMARY_WARNINGS):
            s = az.summary(self.idata, var_names=var_names, ci_prob=prob, round_to="none")
        s = pd.DataFrame(s)
        per_bag = chains_per_bag(self.info)
        if per_bag is not None:  # bags target different posteriors: diagnose within bags
            worst = diagnostics_table(self.idata, var_names, per_bag)
            s["r_hat"], s["ess_bulk"] = worst["r_hat"], worst["ess_bulk"]
        lb = next(c for c in s.columns if str(c).endswith("_lb"))
        ub = next(c for c in s.columns if str(c).endswith("_ub"))
        return s.rename(columns={lb: "lower", ub: "upper"})[
            ["mean", "sd", "lower", "upper", "r_hat", "ess_bulk"]
        ]

    def summary(self, prob: float = 0.9, identification: bool = True, num_prior_draws: int = 2000):
        """Table of identified quantities with ``prob`` equal-tailed intervals and what identifies them.

        Rows: inferred learner parameters (an action bias as ``bias[i, k]``, logits centred over
        agent i's actions), the payoff noise (observed payoffs), the centred payoffs of every
        (profile, agent) cell (small games), and ``scaled_payoffs = beta x centred payoffs`` when
        beta and the payoff scale are confounded. Columns: mean, sd, lower, upper, r_hat,
        ess_bulk (bagged fits: the worst bag's), ``support`` (bool:
        the cell's opponent profile was observed), ``data_support`` (``played``,
        ``counterfactual only``, ``not observed``), ``contraction`` (1 - posterior variance /
        prior variance) and ``label``.

        ``label`` (draws, proper priors, ``identification=True``): ``well identified``
        (contraction >= 0.5), ``weakly identified`` (>= 0.1), ``prior-driven``, or ``confounded
        with payoff scale``; see :meth:`identification`. Otherwise from the support alone:
        ``identified``, ``prior only (opponent profile never observed)`` or confounded.
        """
        _check_prob(prob)
        if self.grouped:
            return grouped_summary(self, prob)
        return summary_frame(self, prob, identification, num_prior_draws)

    def scalar_summary(self, prob: float = 0.9) -> dict[str, dict[str, float]]:
        """``{name: {mean, sd, lower, upper, r_hat, ess_bulk}}`` for every scalar parameter.

        Per-agent parameters appear as ``alpha[0]``, ``alpha[1]``, ... Fixed parameters are
        not listed (they were not inferred).
        """
        names = self._scalar_names()
        if not names:
            return {}
        f = self._stats_frame(names, prob).drop(index=self._padded_bias_rows(), errors="ignore")
        f = relabel_index(f, self.idata["posterior"], self.data)
        return {
            str(idx): {k: (None if not np.isfinite(v) else float(v)) for k, v in row.items()}
            for idx, row in f.iterrows()
        }

    # ---------------------------------------------------------- counterfactuals
    def counterfactual(
        self,
        learner: LogitQ | Callable[[LogitQ], LogitQ] | None = None,
        mechanism_edit: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
        n_episodes: int = 100,
        T: int | None = None,
        statistic: str | Callable = "action_frequencies",
        *,
        n_draws: int | None = 200,
        seed: int = 0,
    ) -> np.ndarray:
        """Posterior-predictive simulation under a changed learner or an edited mechanism.

        Parameters
        ----------
        learner : LogitQ, callable or None
            ``None``: the posterior learner draws; a ``LogitQ``: fixed values; a callable
            ``f(learner_draw) -> LogitQ`` (e.g. ``lambda l: l.scaled(beta=1.4)``).
        mechanism_edit : callable, optional
            ``edit(payoffs float[..., n], joint int[..., n]) -> float[..., n]``, e.g. a toll
            on route 2: ``lambda u, a: u - 0.1 * (a == 2)``.
        n_episodes, T : simulated episodes per draw and their length (default the data's T).
        statistic : str or callable
            ``"action_frequencies"`` -> float[n, K]; ``"mean_payoff"`` -> float[n];
            ``"welfare"`` (mean total payoff per step) -> float[]; or
            ``f(actions int[E, T, n], payoffs float[E, T, n]) -> array``.
        n_draws : number of posterior draws used (evenly spaced; None = all).

        Returns
        -------
        float[n_draws, ...]: one value of the statistic per posterior draw.
        """
        self._require_ungrouped("counterfactual")
        return counterfactual(
            self, learner, mechanism_edit, n_episodes, T, statistic, n_draws=n_draws, seed=seed
        )

    def design(
        self,
        edit: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
        space: Any,
        objective: str | Callable = "welfare",
        n_episodes: int = 100,
        T: int | None = None,
        *,
        criterion: str = "mean",
        maximize: bool = True,
        prob: float = 0.9,
        quantile: float = 0.1,
        learner: LogitQ | Callable[[LogitQ], LogitQ] | None = None,
        n_draws: int | None = 200,
        seed: int = 0,
        independent_keys: bool = False,
    ) -> Design:
        """Choose a mechanism change: the posterior of an objective for each candidate edit.

        For each of ``n_draws`` posterior draws (mechanism and learner together) and each
        candidate ``theta`` in ``space``, simulates ``n_episodes`` episodes of ``T`` steps under
        the edited mechanism beside the status quo, all with the same random numbers.

        Parameters
        ----------
        edit : callable
            ``edit(u float[..., n], joint int[..., n], theta float[d]) -> float[..., n]``;
            built-ins in :mod:`bayes_diml.edits` (``bd.edits.toll(2)``: a toll on action 2).
        space : float[C] or float[C, d]
            The candidates (1-3 dimensions): :func:`bayes_diml.inference.design_grid` builds a grid,
            :func:`bayes_diml.inference.design_box` fills a box (a Sobol sequence).
        objective : str or callable
            ``"welfare"`` (mean total payoff per step, transfers cancelling), ``"agent_welfare"``,
            ``"revenue"``, ``"share:K"``, or ``f(actions, payoffs, base_payoffs) -> float[]``.
        criterion : str
            ``"mean"`` (best posterior mean), ``"quantile"`` (best ``quantile`` of the objective:
            risk averse) or ``"prob_improvement"`` (most probably better than the status quo).
        maximize : bool
            False to minimise the objective (e.g. the share of a congested route).
        prob : float
            Mass of the equal-tailed intervals.
        learner : LogitQ, callable or None
            As in :meth:`counterfactual`: the posterior learners, fixed values or a shift.
        independent_keys : bool
            Give each candidate its own random numbers (only to measure what sharing them saves).

        Returns
        -------
        Design
            ``.table()`` (one row per candidate: theta, mean, lower, upper, prob_improvement,
            mcse, chosen), ``.chosen_theta``, ``.evpi`` (expected value of perfect information)
            and ``.plot()``.
        """
        self._require_ungrouped("design")
        return design(
            self,
            edit,
            space,
            objective,
            n_episodes,
            T,
            criterion=criterion,
            maximize=maximize,
            prob=prob,
            quantile=quantile,
            learner=learner,
            n_draws=n_draws,
            seed=seed,
            independent_keys=independent_keys,
        )

    # ------------------------------------------------ model comparison and checks
    def loo(self):
        """PSIS-LOO with whole episodes left out; see ``inference.compare.loo``."""
        return loo(self)

    def lfo(self, **options: Any):
        """PSIS leave-future-out CV of one-step-ahead predictions; see ``inference.compare.lfo``."""
        return lfo(self, **options)

    def ppc_behaviour(self, **options: Any):
        """Posterior-predictive check in behaviour space; see :func:`~bayes_diml.inference.ppc_behaviour`."""
        return ppc_behaviour(self, **options)

    def plot(self, kind: str, **kwargs: Any):
        """Draw a diagnostic plot with arviz-plots (``kind``: one of ``bayes_diml.inference.plots.KINDS``).

        Kinds ``"trace"``, ``"rank"``, ``"forest"``, ``"ess"``, ``"pareto-k"``, ``"ppc"``.
        Plots identified quantities (learner parameters, centred payoffs of observed opponent
        profiles), named by the data's labels; returns the ``arviz_plots.PlotCollection``
        (``pc.savefig("trace.png")``). See ``bayes_diml.inference.plots.plot_posterior``.
        """
        return plot_posterior(self, kind, **kwargs)

    # --------------------------------------------------------------------- I/O
    def save(self, path: str | Path) -> Path:
        """Write the fit: netCDF (``.nc``, default) or zarr (``.zarr``) through ArviZ/xarray.

        Stores the DataTree plus what is needed to rebuild mechanism, learner and data.
        """
        return save_fit(self, path)


def _check_prob(prob: float) -> None:
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")


def load(path: str | Path, mechanism: Any = None) -> Posterior:
    """Read a fit written by :meth:`Posterior.save`.

    ``mechanism`` must be given when the fit used a user-defined mechanism (``Function``
    or ``Linear`` with a callable), which cannot be stored.
    """
    return Posterior(*read_fit(path, mechanism))
