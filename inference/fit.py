"""``fit``: one entry point for MAP, Laplace, SVI and NUTS."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from bayes_diml.learners import temperature_name
from bayes_diml.mechanisms import GroupedTabular
from bayes_diml.models import GROUP_SCALE, Priors, inferred_learner_fields, resolve_learner

from .auto import (
    AUTO,
    AUTO_BAGS,
    AUTO_PRIORS,
    auto_candidates,
    bag_targets,
    check_auto_method,
    compare_candidates,
    context_candidates,
    stack_draws,
)
from .bag_diagnostics import BAGGING, chains_per_bag, diagnostics_table
from .bagging import ROBUST, fit_bagged
from .errors import ConvergenceWarning
from .map import MAPConfig
from .pipeline import METHODS, run_fit
from .posterior import Posterior
from .spec import check_context_fit
from .stacked import StackedPosterior

__all__ = ["fit", "METHODS", "DEFAULT_ROBUST"]

#: ``fit``'s default ``robust``: the bagged posterior for ``learner="auto"``, none otherwise.
DEFAULT_ROBUST = "default"


def _identified_vars(post: Posterior) -> list[str]:
    names = list(inferred_learner_fields(post.learner))
    if post.confounded:
        names = [n for n in names if n != temperature_name(post.learner)]
    if post.data.has_payoffs:
        names.append("payoff_noise")
    pv = post.idata["posterior"].data_vars
    if GROUP_SCALE in pv:
        names.append(GROUP_SCALE)
    if post.confounded and "scaled_payoffs" in pv:
        names.append("scaled_payoffs")
    elif "centred_payoffs" in pv:
        names.append("centred_payoffs")
    return names


def _diagnose(post: Posterior, num_chains: int, dense: bool = False) -> dict[str, Any]:
    """R-hat and bulk ESS of identified quantities (supported payoff cells), with warnings.

    For a bagged fit both are computed within each bag (``num_chains`` per bag), worst bag reported.
    """
    out: dict[str, Any] = {}
    names = _identified_vars(post)
    if not names or post.n_draws < 4:
        return out
    diag = diagnostics_table(post.idata, names, chains_per_bag(post.info))
    rows = np.ones(len(diag), dtype=bool)
    idx = [str(i) for i in diag.index]
    if any(i.startswith(("centred_payoffs[", "scaled_payoffs[")) for i in idx):
        sup = post.support.reshape(-1)
        cell = [i.startswith(("centred_payoffs[", "scaled_payoffs[")) for i in idx]
        rows[np.flatnonzero(cell)] = sup
    r_hat = np.asarray(diag["r_hat"], dtype=float)[rows]
    ess = np.asarray(diag["ess_bulk"], dtype=float)[rows]
    out["max_r_hat"] = float(np.nanmax(r_hat)) if np.isfinite(r_hat).any() else float("nan")
    out["min_ess_bulk"] = float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan")
    problems = []
    if num_chains > 1 and out["max_r_hat"] > 1.01:
        problems.append(f"max R-hat {out['max_r_hat']:.3f} > 1.01")
    if out["min_ess_bulk"] < 100 * num_chains:
        problems.append(f"min bulk ESS {out['min_ess_bulk']:.0f} < {100 * num_chains}")
    div = int(post.info.get("divergences", 0))
    if div:
        problems.append(f"{div} divergent transitions")
    if problems:
        warnings.warn(
            "NUTS diagnostics on identified quantities: "
            + "; ".join(problems)
            + ". Run longer (num_warmup, num_samples)"
            + ("" if dense else ", try dense_mass=True")
            + ", or raise target_accept.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return out


def _check_bagging_keywords(robust: str | None, bagging: dict[str, Any], workers: int) -> None:
    if robust is None and (any(v is not None for v in bagging.values()) or workers != 1):
        given = [k for k, v in bagging.items() if v is not None] + (["workers"] if workers != 1 else [])
        raise ValueError(f"{', '.join(given)} apply to robust='bagging'; pass robust='bagging'.")


def fit(
    data: Any,
    mechanism: Any,
    learner: Any = None,
    method: str = "map",
    seed: int = 0,
    *,
    priors: Priors | None = None,
    progress: bool = True,
    log_likelihood: bool = True,
    prior_predictive: int = 0,
    posterior_predictive: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    shard_episodes: bool = False,
    init_map: MAPConfig | None = None,
    config: Any = None,
    validation: Any = None,
    candidates: Any = None,
    robust: str | None = DEFAULT_ROBUST,
    n_bags: int | None = None,
    bag_seed: int | None = None,
    bag_size: int | None = None,
    workers: int = 1,
    client: Any = None,
    **options: Any,
) -> Posterior | StackedPosterior:
    """Fit a mechanism (and optionally the learner) to action trajectories.

    Parameters
    ----------
    data : Trajectories
    mechanism : Mechanism
        e.g. ``mechanisms.Tabular(data.n_actions)``.
    learner : LogitQ, BanditQ, Hedge, FictitiousPlay or EWA, optional
        Fields are numbers (fixed), ``"infer"`` or ``"infer_per_agent"``; ``None`` is
        ``LogitQ`` with alpha, beta and eps inferred.
    method : str
        ``"map"`` (Optax; with ``priors=Priors(mechanism_scale=None)`` and a fixed learner
        this is DIML's MLE), ``"laplace"``, ``"svi"`` or ``"nuts"``.
    seed : int
        Seed of every random choice of the fit (same seed, same result).
    priors : Priors, optional
    progress : bool
        Show progress bars.
    log_likelihood : bool
        Store the pointwise log-likelihood (episode x step x agent) in ``idata``.
    prior_predictive : int
        Number of prior draws to store (``prior`` and ``prior_predictive`` groups).
    posterior_predictive : bool
        Store one-step-ahead posterior-predictive actions.
    checkpoint : path, optional
        NUTS and SVI only: a directory where the run is saved after every chunk and from which
        an interrupted run with the same arguments resumes (see ``docs/reliability.md``).
    checkpoint_every : int, optional
        Draws per chain (NUTS, default 100) or optimiser steps (SVI, default 500) per chunk.
    shard_episodes : bool
        Split the likelihood's episodes over all JAX devices (``jax.sharding``; a no-op on
        one device). Not with NUTS ``chain_method="parallel"``, which puts one chain per
        device instead (see ``docs/scale.md``).
    init_map : MAPConfig, optional
        Laplace, SVI and NUTS with ``init="map"``: settings of the MAP fit that gives their
        starting point (the Laplace mode, the SVI guide's initial location, every NUTS chain's
        start); default ``MAPConfig(num_restarts=1)``, for NUTS ``MAPConfig(num_restarts=1,
        tol=1e-4)`` (a start near the mode is enough there). NUTS chains start at dispersed
        points by default (``init="dispersed"``, one prior draw per chain): pass
        ``init="map"`` with ``init_map``. Not with ``init="prior"``.
    config : MAPConfig, LaplaceConfig, SVIConfig or NUTSConfig, optional
        The method's settings as one object, e.g. ``method="nuts",
        config=NUTSConfig(num_warmup=300, num_samples=300)``; the class must match ``method``
        (else ``TypeError``). Keywords may fill fields that ``config`` leaves at their
        default; a keyword that differs from a field ``config`` sets is a ``ValueError``.
    validation : Trajectories, optional
        ``method="map"`` only: held-out episodes of the same game for early stopping, an explicit
        option (the step count is chosen by held-out likelihood, not a hidden budget). Their exact
        log-likelihood is evaluated at every chunk end (``MAPConfig.chunk`` steps); the fit
        returns the chunk end with the best one and stops after ``MAPConfig.patience`` chunks
        without a better one. ``info`` then holds ``map_steps`` (steps of the returned
        point), ``validation_trace`` (the held-out log-likelihood per chunk end),
        ``validation_log_likelihood`` and ``validation_per_action`` (its best, total and per
        scored action). Keep these episodes out of ``data``.
    candidates : sequence, optional
        ``learner="auto"`` only: family names (``"logitq"``, ``"bandit"``, ``"hedge"``, ``"fp"``,
        ``"ewa"``) or learner specs; default every family the mechanism can fit
        (``inference.auto.context_candidates``: a grouped or covariate
        mechanism leaves out the families that see payoff levels). ``priors`` default to
        ``AUTO_PRIORS`` there (payoff prior sd e: the default scale of temperature x payoff).
    robust : ``"bagging"``, None or ``"default"``
        ``"bagging"``: the bagged posterior (BayesBag), which stays calibrated when the agents do
        not learn by the fitted rule: ``n_bags`` bootstrap data sets of whole episodes, each
        fitted by ``method`` ("nuts", "laplace" or "svi"), draws pooled (see
        :func:`bayes_diml.inference.bagging.fit_bagged` and ``docs/calibration.md``). With
        ``learner="auto"`` the families with at least 5% of the stacked draws are bagged (weights
        and verdict from the ordinary fits). ``"default"``: ``"bagging"`` for ``learner="auto"``,
        None (the ordinary posterior) otherwise.
    n_bags, bag_seed, bag_size : int, optional
        Bagging: bootstrap data sets (default 20; 10 per bagged family with ``learner="auto"``),
        seed of the resampling (default ``seed``), episodes per data set (default the data's M).
    workers, client
        Bagging: fit the bags on a local Dask cluster of ``workers`` processes or on a
        ``dask.distributed`` client (default: one after another).
    **options
        Settings of the method's config: :class:`MAPConfig`, :class:`LaplaceConfig`,
        :class:`SVIConfig` or :class:`NUTSConfig` (e.g. ``num_samples=1000``); the same
        fields as ``config``.

    Returns
    -------
    Posterior, or StackedPosterior for ``learner="auto"``
    """
    bagging = {"n_bags": n_bags, "bag_seed": bag_seed, "bag_size": bag_size, "client": client}
    if isinstance(learner, str):
        if learner.strip().lower() != AUTO:
            raise ValueError(f"learner={learner!r}: give a learner spec, None or 'auto'.")
        if checkpoint is not None or checkpoint_every is not None or not log_likelihood:
            raise ValueError("learner='auto' takes no checkpoint and needs log_likelihood=True.")
        if validation is not None:
            raise ValueError("validation= (early stopping) applies to one MAP fit, not to learner='auto'.")
        check_auto_method(method, data)
        robust = BAGGING if robust == DEFAULT_ROBUST else robust
        if robust not in (None, *ROBUST):
            raise ValueError(
                f"unknown robust={robust!r}; choose one of {ROBUST}, None or {DEFAULT_ROBUST!r}."
            )
        _check_bagging_keywords(robust, bagging, workers)
        common = {
            "priors": AUTO_PRIORS if priors is None else priors,
            "progress": progress,
            "shard_episodes": shard_episodes,
            "init_map": init_map,
            "config": config,
            **options,
        }
        check_context_fit(data, mechanism)  # the data, then each candidate, before fitting any
        specs = auto_candidates(context_candidates(data, mechanism) if candidates is None else candidates)
        for name, spec in specs.items():
            try:
                check_context_fit(data, mechanism, resolve_learner(spec))
            except ValueError as exc:
                raise ValueError(
                    f"learner='auto' cannot fit candidate {name!r}: {exc} Leave it out with candidates=."
                ) from None
        fits = {
            name: fit(
                data,
                mechanism,
                spec,
                method,
                seed,
                prior_predictive=prior_predictive,
                posterior_predictive=posterior_predictive,
                **common,
            )
            for name, spec in specs.items()
        }
        comparison = compare_candidates(fits, seed)
        bagged = {}
        if robust is not None:
            bagging["n_bags"] = AUTO_BAGS if n_bags is None else n_bags
            bagged = {
                name: fit(
                    data,
                    mechanism,
                    specs[name],
                    method,
                    seed,
                    robust=robust,
                    workers=workers,
                    **bagging,
                    **common,
                )
                for name in bag_targets(comparison.table)
            }
        return stack_draws(comparison, fits, bagged=bagged)
    robust = None if robust == DEFAULT_ROBUST else robust
    if candidates is not None:
        raise ValueError("candidates= applies to learner='auto' only.")
    if isinstance(mechanism, GroupedTabular) and method in ("map", "laplace"):
        raise ValueError(
            f"method={method!r} cannot fit a GroupedTabular: the mode of the between-group scale "
            "is no summary of it (under a half-normal prior it collapses to 0, every group the same "
            "table), and contrasts need its uncertainty. Use method='nuts' (or 'svi')."
        )
    _check_bagging_keywords(robust, bagging, workers)
    if robust is not None and validation is not None:
        raise ValueError("validation= (early stopping) applies to one MAP fit, not to robust='bagging'.")
    if robust is not None:
        post = fit_bagged(
            data,
            mechanism,
            learner,
            method,
            seed,
            robust=robust,
            workers=workers,
            priors=priors,
            progress=progress,
            log_likelihood=log_likelihood,
            prior_predictive=prior_predictive,
            posterior_predictive=posterior_predictive,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            shard_episodes=shard_episodes,
            init_map=init_map,
            config=config,
            **bagging,
            **options,
        )
    else:
        post = Posterior(
            *run_fit(
                data,
                mechanism,
                learner,
                method,
                seed,
                priors=priors,
                progress=progress,
                log_likelihood=log_likelihood,
                prior_predictive=prior_predictive,
                posterior_predictive=posterior_predictive,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
                shard_episodes=shard_episodes,
                init_map=init_map,
                config=config,
                validation=validation,
                **options,
            )
        )
    if method == "nuts":
        per_bag = chains_per_bag(post.info)
        num_chains = per_bag or int(post.idata["posterior"].sizes["chain"])
        post.info.update(_diagnose(post, num_chains, dense=post.info["dense_mass"]))
    return post
