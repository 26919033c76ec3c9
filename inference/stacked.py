"""The result of ``fit(..., learner="auto")``: payoff draws stacked over learner families and nulls.

A :class:`StackedPosterior` holds every candidate (one :class:`~.posterior.Posterior` per
learner family, one :class:`~.nulls.NullFit` per payoff-blind null), the comparison table
(stacking weights, leave-one-episode-out elpd, Pareto k, nestings), the verdict, and draws of
the centred payoff table that mix the candidates' draws in proportion to their weights (see
:mod:`.auto` for how they are built). It answers what users ask a ``Posterior`` about
incentives: :meth:`~StackedPosterior.payoff_differences`, :meth:`~StackedPosterior.payoff_table`,
:meth:`~StackedPosterior.payoff_pairs`, :attr:`~StackedPosterior.support`,
:meth:`~StackedPosterior.summary`, :meth:`~StackedPosterior.save` / :func:`load_stacked`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
import xarray as xr
from numpyro.infer import Predictive

from bayes_diml.counterfactual import takes_covariates
from bayes_diml.data import Trajectories
from bayes_diml.mechanisms import GroupedTabular
from bayes_diml.models import mechanism_sites, sample_mechanism

from .design import Design, decide
from .errors import SpecificationWarning
from .idata import deterministic_sites
from .labelled import payoff_interval_table
from .nulls import NullFit, fit_null
from .pairs import payoff_pairs_frame
from .persistence import STACKED_ATTR, fit_from_tree, fit_tree, open_tree, write_tree
from .posterior import Posterior
from .stacked_context import ContextContrast, covariate_contrast, group_contrast

__all__ = [
    "VERDICTS",
    "NO_INFORMATION",
    "STACKED_UNITS",
    "StackedPosterior",
    "mixture_counts",
    "mixture_draws",
    "mix_stacked_draws",
    "prior_payoff_draws",
    "context_kind",
    "load_stacked",
]

#: ``info["verdict"]`` values.
VERDICTS = ("informative", "no_signal", "misspecified")
#: What the summary, ``payoff_pairs`` and the command line say when they abstain.
NO_INFORMATION = "the actions carry no usable information about incentives"
#: Units of the stacked payoff draws: each family's temperature x centred payoffs (temperature
#: fixed at 1 by default, so plain payoffs in the units that temperature sets).
STACKED_UNITS = "temperature x payoff"
_FORMAT_VERSION = 1


def mixture_counts(weights: np.ndarray, total: int) -> np.ndarray:
    """Return int[C] draw counts summing to ``total`` in proportion to ``weights`` (largest remainder)."""
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    if not w.sum() > 0:
        raise ValueError("mixture weights must have a positive sum.")
    exact = w / w.sum() * int(total)
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: int(total) - counts.sum()]] += 1
    return counts


def mixture_draws(
    pools: dict[str, np.ndarray], counts: dict[str, int], key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``counts[name]`` draws (with replacement) from each pool ``float[D_c, ...]`` and stack them.

    Returns ``(draws float[sum counts, ...], sources str[sum counts])``: the name of the pool each
    draw came from. Pools with count 0 are skipped; ``key`` is folded with each pool's position.
    """
    out, src = [], []
    for j, (name, pool) in enumerate(pools.items()):
        c = int(counts.get(name, 0))
        if c <= 0:
            continue
        idx = np.asarray(jax.random.choice(jax.random.fold_in(key, j), len(pool), (c,), replace=True))
        out.append(np.asarray(pool)[idx])
        src.append(np.full(c, name, dtype=object))
    return np.concatenate(out), np.concatenate(src).astype(str)


def prior_payoff_draws(post: Posterior, key: jax.Array, num: int) -> np.ndarray:
    """Return ``num`` (even) antithetic prior draws ``float[num, K_1, ..., K_n, n]`` of the centred payoffs.

    Half are drawn from the fit's mechanism prior, the other half are their negatives, so that
    exactly half of the draws favour each action of every pair.
    """
    half = (int(num) + 1) // 2
    spec = post.spec

    def prior() -> None:
        sample_mechanism(spec.mechanism, spec.priors)

    sites = Predictive(prior, num_samples=half)(key)
    sites = {k: np.asarray(sites[k]) for k in mechanism_sites(spec.mechanism)}
    draws = deterministic_sites(spec, sites)["centred_payoffs"]
    return np.concatenate([draws, -draws])


def mix_stacked_draws(
    table: pd.DataFrame,
    seed: int,
    fits: dict[str, Posterior],
    bagged: dict[str, Posterior],
    num_draws: int = 4000,
    *,
    pool: Callable[[Posterior], np.ndarray] | None = None,
    prior: Callable[[jax.Array, int], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mix the families' temperature x centred payoffs by ``table["mixture_weight"]``, nulls as prior draws.

    Each learner family gives its share of ``num_draws`` (resampled with replacement from
    ``bagged[name]`` where given, else ``fits[name]``); the nulls' share (made even) is filled
    with antithetic prior draws. Returns ``(draws float[D, K_1..K_n, n], sources str[D],
    prior_weight)``. The same ``seed`` and pool sizes give the same resampling indices.
    ``pool(post)`` (default ``post.scaled_payoff_draws()``) and ``prior(key, num)`` (default
    :func:`prior_payoff_draws` of the first fit) give other draws, e.g. contrasts.
    """
    key = jax.random.key(int(seed))
    counts = dict(
        zip(table.index, mixture_counts(table["mixture_weight"].to_numpy(), num_draws), strict=True)
    )
    nulls = [n for n in table.index if table.loc[n, "kind"] == "null"]
    n_prior = sum(counts[n] for n in nulls)
    n_prior += n_prior % 2
    pool = pool or (lambda post: post.scaled_payoff_draws())
    pools = {n: pool(bagged.get(n, fits[n])) for n in table.index if n not in nulls and counts[n] > 0}
    parts, sources = [], []
    if pools:
        d, src = mixture_draws(pools, {n: counts[n] for n in pools}, jax.random.fold_in(key, 1))
        parts.append(d)
        sources.append(src)
    if n_prior:
        prior = prior or functools.partial(prior_payoff_draws, next(iter(fits.values())))
        parts.append(prior(jax.random.fold_in(key, 2), n_prior))
        sources.append(np.full(n_prior, "prior"))
    draws = np.concatenate(parts)
    return draws, np.concatenate(sources), float(n_prior / len(draws))


def context_kind(mechanism: Any) -> str | None:
    """Return ``"grouped"`` (GroupedTabular), ``"covariate"`` (payoffs take covariates) or None."""
    if isinstance(mechanism, GroupedTabular):
        return "grouped"
    if takes_covariates(mechanism):  # CovariateTabular, Function / NeuralJoint with covariates
        return "covariate"
    return None


class StackedPosterior:
    """Payoff draws stacked over learner families and payoff-blind nulls, with the comparison.

    Attributes
    ----------
    candidates : dict name -> Posterior or NullFit
        Every fit that was compared (``null_stationary``, ``null_markov`` are the nulls).
    table : pandas.DataFrame
        One row per candidate, best elpd first: ``family, kind, weight, elpd, se, elpd_diff,
        dse, max_pareto_k, n_high_k, mixture_weight, note`` (see :meth:`summary`).
    weights : dict name -> float
        Stacking weights (``arviz.compare(method="stacking")``), summing to 1.
    info : dict
        ``verdict`` (one of ``inference.stacked.VERDICTS``), ``message``, ``best_learner``, ``best_null``,
        ``elpd_gap`` and ``gap_dse`` (best learner minus best null, and its standard error),
        ``prior_weight`` (share of prior draws in the mixture), ``seed``, ``null_draws``,
        ``seconds``, ``robust`` (``"bagging"`` or None), ``bagged`` (the families whose draws
        come from bagged posteriors) and ``n_bags``.
    bagged : dict name -> Posterior
        The bagged posteriors behind the stacked draws (empty after :func:`load_stacked`, which
        keeps the draws and ``info["bagged"]``, not the bagged fits).
    """

    def __init__(
        self,
        candidates: dict[str, Any],
        table: pd.DataFrame,
        draws: np.ndarray,
        sources: Any,
        info: dict,
        bagged: dict[str, Posterior] | None = None,
    ):
        self.candidates = dict(candidates)
        self.bagged = dict(bagged or {})
        self.table = table
        self._draws = np.asarray(draws, dtype=np.float64)
        self.sources = np.asarray(sources).astype(str)
        self.info = dict(info)

    # ------------------------------------------------------------------ basics
    @property
    def weights(self) -> dict[str, float]:
        """Stacking weight of each candidate (name -> weight)."""
        return {str(k): float(v) for k, v in self.table["weight"].items()}

    @property
    def verdict(self) -> str:
        """``"informative"``, ``"no_signal"`` or ``"misspecified"``."""
        return str(self.info["verdict"])

    @property
    def abstains(self) -> bool:
        """Whether no learning family predicts clearly better than the best null (verdict not informative)."""
        return self.verdict != "informative"

    @property
    def message(self) -> str:
        """One paragraph saying what the comparison found and what the intervals mean."""
        return str(self.info["message"])

    @property
    def posteriors(self) -> dict[str, Posterior]:
        """The learner families' fits (name -> Posterior)."""
        return {k: v for k, v in self.candidates.items() if isinstance(v, Posterior)}

    @property
    def best(self) -> Posterior:
        """The learner family with the best elpd (the one the verdict weighs against the best null)."""
        name = str(self.info["best_learner"])
        return self.candidates[name]

    @property
    def data(self) -> Trajectories:
        """The fitted trajectories."""
        return next(iter(self.posteriors.values())).data

    @property
    def n_draws(self) -> int:
        """Number of stacked payoff draws."""
        return int(self._draws.shape[0])

    @functools.cached_property
    def support(self) -> np.ndarray:
        """bool[K_1, ..., K_n, n]: cells whose opponent profile was observed."""
        return next(iter(self.posteriors.values())).support

    def __repr__(self) -> str:
        w = ", ".join(f"{k} {v:.2f}" for k, v in self.weights.items())
        return f"StackedPosterior(verdict={self.verdict!r}, draws={self.n_draws}, weights: {w})"

    # ------------------------------------------------------------ context
    @property
    def context(self) -> str | None:
        """``"grouped"`` / ``"covariate"`` when the payoffs depend on context (no pooled draws), else None."""
        return self.info.get("context")

    def _require_pooled(self, what: str) -> None:
        """Raise ValueError when the payoffs depend on the group or covariates, naming the way to ask."""
        if self.context == "grouped":
            groups = ", ".join(self.best.mechanism.groups)
            raise ValueError(
                f"{what}: this stacked fit has one payoff table per group ({groups}); ask one group's "
                "stack: fit.for_group(g)."
            )
        if self.context == "covariate":
            names = ", ".join(self.best.mechanism.covariate_names)
            raise ValueError(
                f"{what}: this stacked fit's payoffs move with the covariates {names}; ask the stack at "
                "a value: fit.at_covariates({name: value, ...})."
            )

    def for_group(self, group: str) -> StackedPosterior:
        """Return the stack of one group of a grouped fit: each family's ``for_group(g)``, same weights.

        The families' draws of the group's table are mixed by the same mixture weights and seed
        as the whole fit (the comparison is the whole data's), the nulls' share filled with prior
        draws of one table; its ``payoff_table``, ``payoff_pairs`` and ``design`` answer for g.
        """
        if self.context != "grouped":
            raise ValueError("for_group needs a stacked fit of a GroupedTabular (fit --group-by).")
        return self._restack(lambda post: post.for_group(group), {"group": str(group)})

    def at_covariates(self, covariates: Any) -> StackedPosterior:
        """Return the stack at one covariate value: each family's ``at_covariates(x)``, same weights."""
        if self.context != "covariate":
            raise ValueError("at_covariates needs a stacked fit of a CovariateTabular.")
        return self._restack(lambda post: post.at_covariates(covariates), {"covariates": dict(covariates)})

    def contrast(self, group_a: str, group_b: str, prob: float = 0.9) -> pd.DataFrame:
        """Stacked centred payoff in group A minus group B per agent and joint action.

        Columns as :meth:`Posterior.contrast`, ``units`` ``inference.stacked.STACKED_UNITS``. Each
        draw is A minus B of one draw (a family's posterior draw; for the nulls' share, a joint prior
        draw of the grouped model), mixed with the weights and seed of :meth:`for_group`; see
        ``bayes_diml.inference.stacked_context``. ``attrs``: ``verdict``, ``message``, ``prior_weight``.
        """
        if self.context != "grouped":
            raise ValueError("contrast needs a stacked fit of a GroupedTabular (fit --group-by).")
        return self._contrast(group_contrast(self.best, group_a, group_b), prob)

    def contrast_covariates(self, a: Any, b: Any, prob: float = 0.9) -> pd.DataFrame:
        """Stacked centred payoff at covariates ``a`` minus at ``b`` (``{name: value}``).

        Columns as :meth:`Posterior.contrast_covariates`; drawn as :meth:`contrast` (the nulls'
        joint prior draws hold the table and the slopes of one draw).
        """
        if self.context != "covariate":
            raise ValueError("contrast_covariates needs a stacked fit of a CovariateTabular.")
        return self._contrast(covariate_contrast(self.best, a, b), prob)

    def _contrast(self, job: ContextContrast, prob: float) -> pd.DataFrame:
        _check_prob(prob)
        self._check_restack()
        num = int(self.info.get("num_draws", 4000))
        draws, _, prior_weight = mix_stacked_draws(
            self.table,
            int(self.info["seed"]),
            self.posteriors,
            self.bagged,
            num,
            pool=job.family_draws,
            prior=job.prior_draws,
        )
        frame = job.frame(draws, prob, STACKED_UNITS)
        frame.attrs.update(verdict=self.verdict, message=self.message, prior_weight=prior_weight)
        return frame

    def _check_restack(self) -> None:
        if self.info.get("bagged") and not self.bagged:
            raise ValueError(
                "this stacked fit was read from a file, which keeps its stacked draws but not the bagged "
                "posteriors behind them; refit (bd.fit(..., learner='auto')) to ask for one context."
            )

    def _restack(self, select: Any, label: dict) -> StackedPosterior:
        self._check_restack()
        fits = {name: select(post) for name, post in self.posteriors.items()}
        bagged = {name: select(post) for name, post in self.bagged.items()}
        num = int(self.info.get("num_draws", 4000))
        draws, sources, prior_weight = mix_stacked_draws(
            self.table, int(self.info["seed"]), fits, bagged, num
        )
        nulls = {k: v for k, v in self.candidates.items() if not isinstance(v, Posterior)}
        info = {**self.info, **label, "context": None, "prior_weight": prior_weight}
        return StackedPosterior({**fits, **nulls}, self.table, draws, sources, info, bagged=bagged)

    # -------------------------------------------------------------- incentives
    def payoff_differences(self) -> np.ndarray:
        """Draws ``float[D, K_1, ..., K_n, n]`` of temperature x centred payoffs, stacked.

        Each family contributes draws of ``temperature x (u_i(a) - mean_k u_i(k, a_-i))``
        (with the temperature fixed at 1: the centred payoffs) in proportion to its mixture
        weight; the nulls contribute prior draws (antithetic: ``d`` and ``-d``), which widen
        the intervals as much as the data favour "payoffs do not matter".
        """
        self._require_pooled("payoff_differences")
        return self._draws

    def payoff_table(self, prob: float = 0.9) -> dict[str, np.ndarray]:
        """Arrays ``mean, lower, upper`` float[K_1..K_n, n] of the stacked draws and ``support``."""
        _check_prob(prob)
        self._require_pooled("payoff_table")
        return payoff_interval_table(self._draws, prob, self.support)

    def payoff_pairs(self, prob: float = 0.9) -> pd.DataFrame:
        """Tabulate ``u_i(a, a_-i) - u_i(b, a_-i)`` from the stacked draws, with the verdict.

        Columns as :meth:`Posterior.payoff_pairs` (``units``: ``inference.stacked.STACKED_UNITS``) plus
        ``informative`` (bool: the verdict is ``"informative"``); ``attrs["verdict"]`` and
        ``attrs["message"]`` carry the verdict. When the verdict is not informative (no learning
        family predicts held-out episodes better than the best null by 2 dse) the mixture holds
        at least half prior draws, drawn antithetically (``d`` and ``-d``, so exactly half of
        them favour each action): every ``prob_greater`` then lies in [0.25, 0.75] and every
        interval of mass ``prob >= 0.5`` contains 0, so no pair is called sure.
        """
        _check_prob(prob)
        self._require_pooled("payoff_pairs")
        frame = payoff_pairs_frame(
            self._draws, self.support, prob=prob, units=STACKED_UNITS, **self.data.labels
        )
        frame["informative"] = not self.abstains
        frame.attrs["verdict"] = self.verdict
        frame.attrs["message"] = self.message
        return frame

    # --------------------------------------------------------------- summaries
    def summary(self, prob: float = 0.9, show: bool = False) -> pd.DataFrame:
        """Return the candidates table (and print it with the verdict when ``show``).

        Columns: ``family``, ``kind`` (``learner`` or ``null``), stacking ``weight``, ``elpd``
        (PSIS-LOO, whole episodes left out) and its ``se``, ``elpd_diff`` to the best and its
        ``dse``, ``max_pareto_k``, ``n_high_k`` (episodes with Pareto k > 0.7),
        ``mixture_weight`` (share of the stacked payoff draws) and ``note`` (nestings: a family
        nested in another gets "nested in EWA: weight is not evidence against it").
        ``attrs`` hold ``verdict``, ``message`` and ``prob``; the ``prob`` intervals of the
        stacked payoffs are in :meth:`payoff_table`.
        """
        _check_prob(prob)
        frame = self.table.copy()
        frame.attrs.update(verdict=self.verdict, message=self.message, prob=float(prob))
        if show:
            print(self.report(prob))
        return frame

    def report(self, prob: float = 0.9) -> str:
        """Return the summary as plain text: the table, the verdict, the stacked payoff intervals."""
        _check_prob(prob)
        cols = ["family", "weight", "elpd", "se", "elpd_diff", "dse", "max_pareto_k", "n_high_k", "note"]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            text = self.table[cols].to_string(float_format=lambda v: f"{v:.3g}")
        if self.context is not None:
            grouped = self.context == "grouped"
            ask = "fit.for_group(g)" if grouped else "fit.at_covariates({...})"
            return (
                f"{text}\n\nverdict: {self.verdict}: {self.message}\n"
                f"stacked payoffs: they depend on the {'group' if grouped else 'covariates'}; "
                f"ask {ask} for the stacked intervals there."
            )
        pairs = self.payoff_pairs(prob)
        sure = int(((pairs["lower"] > 0) | (pairs["upper"] < 0)).sum())
        bagged = self.info.get("bagged") or []
        robust = (
            f"\nintervals: bagged posteriors (BayesBag, {self.info['n_bags']} bootstrap data sets of whole "
            f"episodes) of {', '.join(bagged)}; the other families' ordinary posteriors."
            if bagged
            else "\nintervals: ordinary posteriors (not bagged)."
        )
        return (
            f"{text}\n\nverdict: {self.verdict}: {self.message}\n"
            f"stacked payoff pairs: {len(pairs)}, {sure} with a {prob:.0%} interval excluding 0 "
            f"(units: {STACKED_UNITS}).{robust}"
        )

    # --------------------------------------------------------------------- I/O
    def design(
        self,
        edit: Any,
        space: Any,
        objective: Any = "welfare",
        n_episodes: int = 100,
        T: int | None = None,
        *,
        n_draws: int | None = 200,
        seed: int = 0,
        **options: Any,
    ) -> Design:
        """Choose a mechanism edit with the learner families mixed by their stacking weights.

        Each family's posterior (its bagged posterior where the stacked draws came from one)
        contributes draws in proportion to its stacking weight, renormalised over the learner
        families; every family runs ``Posterior.design`` with the same ``seed`` (so the same
        random numbers), and the decision, probabilities and EVPI are computed on the pooled
        draws. Arguments as :meth:`Posterior.design`. Refuses when the comparison abstains (no
        learning family predicts better than the payoff-blind nulls: the data say nothing about
        how an edit would change play) and warns when the nulls keep more than 5% of the weight.
        """
        self._require_pooled("design")
        if self.abstains:
            raise ValueError(f"no design from this stacked fit: {self.message}")
        fits = {name: self.bagged.get(name, post) for name, post in self.posteriors.items()}
        weights = np.array([max(self.weights.get(name, 0.0), 0.0) for name in fits])
        null_weight = 1.0 - float(weights.sum())
        if null_weight > 0.05:
            warnings.warn(
                f"the payoff-blind nulls hold {null_weight:.0%} of the stacking weight; the design mixes "
                "the learner families only, renormalised, so it assumes play responds to payoffs.",
                SpecificationWarning,
                stacklevel=2,
            )
        total = int(n_draws) if n_draws is not None else sum(p.n_draws for p in fits.values())
        counts = mixture_counts(weights, total)
        parts = [
            post.design(edit, space, objective, n_episodes, T, n_draws=int(c), seed=seed, **options)
            for post, c in zip(fits.values(), counts, strict=True)
            if c > 0
        ]
        episodes = np.concatenate([d.episodes for d in parts])
        status_quo = np.concatenate([d.status_quo_episodes for d in parts])
        first = parts[0]
        chosen, evpi, evpi_mcse = decide(
            episodes.mean(-1), status_quo.mean(-1), first.criterion, first.maximize, first.quantile
        )
        return dataclasses.replace(
            first,
            episodes=episodes,
            status_quo_episodes=status_quo,
            chosen=chosen,
            evpi=evpi,
            evpi_mcse=evpi_mcse,
        )

    def save(self, path: str | Path) -> Path:
        """Write the stacked fit to one netCDF (``.nc``) or zarr (``.zarr``) file.

        The file holds each family's fit (as :meth:`Posterior.save` writes it, in a group named
        ``fit_<name>``), the stacked draws and the table; the nulls are redrawn on
        :func:`load_stacked` from the stored seed (exact and cheap).
        """
        children = {f"fit_{k}": fit_tree(v) for k, v in self.posteriors.items()}
        dims = tuple(f"stacked_dim_{j}" for j in range(self._draws.ndim - 1))
        children["stacked"] = xr.DataTree(
            xr.Dataset(
                {
                    "payoff_draws": (("draw", *dims), self._draws),
                    "sources": (("draw",), self.sources.astype("U")),
                }
            )
        )
        table = self.table.reset_index(names="name")
        children["table"] = xr.DataTree(
            xr.Dataset({c: (("candidate",), _column(table[c])) for c in table.columns})
        )
        root = xr.DataTree(children=children)
        meta = {
            "format_version": _FORMAT_VERSION,
            "info": _jsonable(self.info),
            "nulls": {k: v.kind for k, v in self.candidates.items() if isinstance(v, NullFit)},
            "order": list(self.candidates),
        }
        root.attrs[STACKED_ATTR] = json.dumps(meta)
        return write_tree(root, path)


def _column(values: pd.Series) -> np.ndarray:
    if values.dtype == object or values.dtype == bool:
        return values.astype(str).to_numpy().astype("U")
    return values.to_numpy()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def _check_prob(prob: float) -> None:
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")


def is_stacked(path: str | Path) -> bool:
    """Tell whether ``path`` holds a stacked fit (written by :meth:`StackedPosterior.save`)."""
    return STACKED_ATTR in open_tree(path).attrs


def load_stacked(path: str | Path, mechanism: Any = None) -> StackedPosterior:
    """Read a stacked fit written by :meth:`StackedPosterior.save`.

    ``mechanism`` as for :func:`bayes_diml.load` (needed for user-defined mechanisms). The
    nulls are redrawn from the stored seed (the same draws as when the fit was made).
    """
    root = open_tree(path)
    raw = root.attrs.get(STACKED_ATTR)
    if raw is None:
        raise ValueError(f"{path}: not a stacked fit; read it with bayes_diml.load.")
    meta = json.loads(raw)
    info = meta["info"]
    fits = {
        name[len("fit_") :]: Posterior(*fit_from_tree(root[name].copy(), mechanism, f"{path}/{name}"))
        for name in root.children
        if name.startswith("fit_")
    }
    data = next(iter(fits.values())).data
    key = null_key(int(info["seed"]))
    nulls = {
        name: fit_null(data, kind, jax.random.fold_in(key, j), int(info["null_draws"]))
        for j, (name, kind) in enumerate(meta["nulls"].items())
    }
    candidates = {**fits, **nulls}
    candidates = {k: candidates[k] for k in meta["order"] if k in candidates}
    ds = root["table"].to_dataset()
    table = pd.DataFrame({c: ds[c].values for c in ds.data_vars}).set_index("name")
    table.index.name = None
    for c in ("kind", "family", "note"):
        table[c] = table[c].astype(object)
    st = root["stacked"].to_dataset()
    return StackedPosterior(candidates, table, st["payoff_draws"].values, st["sources"].values, info)


def null_key(seed: int) -> jax.Array:
    """Return the PRNG key of the nulls' draws of a stacked fit with this seed."""
    return jax.random.fold_in(jax.random.key(int(seed)), 7)
