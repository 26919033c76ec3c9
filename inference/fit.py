"""``fit``: one entry point for MAP, Laplace, SVI and NUTS."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from typing import Any

import jax
import numpy as np
from numpyro.infer import Predictive

from bayes_diml.learners import temperature_name
from bayes_diml.models import Priors, inferred_learner_fields, is_confounded

from .checkpoint import Checkpoint, fingerprint
from .errors import ConfoundingWarning, ConvergenceWarning
from .idata import build_idata, deterministic_sites
from .map import MAPConfig, fit_map_spec
from .posterior import Posterior, support_mask
from .samplers import LaplaceConfig, NUTSConfig, SVIConfig, run_laplace, run_nuts, run_svi
from .spec import ModelSpec

__all__ = ["fit", "METHODS"]

METHODS = ("map", "laplace", "svi", "nuts")
_CONFIGS = {"map": MAPConfig, "laplace": LaplaceConfig, "svi": SVIConfig, "nuts": NUTSConfig}


def _config(method: str, options: dict[str, Any]):
    cls = _CONFIGS[method]
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for method={method!r}; allowed: {sorted(allowed)} "
            "(plus seed, priors, progress, log_likelihood, prior_predictive, posterior_predictive)."
        )
    return cls(**options)


def _identified_vars(post: Posterior) -> list[str]:
    names = list(inferred_learner_fields(post.learner))
    if post.confounded:
        names = [n for n in names if n != temperature_name(post.learner)]
    if post.data.has_payoffs:
        names.append("payoff_noise")
    pv = post.idata["posterior"].data_vars
    if post.confounded and "scaled_payoffs" in pv:
        names.append("scaled_payoffs")
    elif "centred_payoffs" in pv:
        names.append("centred_payoffs")
    return names


def _diagnose(post: Posterior, num_chains: int, dense: bool = False) -> dict[str, Any]:
    """R-hat and bulk ESS of identified quantities (supported payoff cells), with warnings."""
    import arviz as az

    out: dict[str, Any] = {}
    names = _identified_vars(post)
    if not names or post.n_draws < 4:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diag = az.summary(post.idata, var_names=names, kind="diagnostics", round_to="none")
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
    **options: Any,
) -> Posterior:
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
        Laplace, SVI and NUTS: settings of the MAP fit that gives their starting point (the
        Laplace mode, the SVI guide's initial location, every NUTS chain's start); default
        ``MAPConfig(num_restarts=1)``, for NUTS ``MAPConfig(num_restarts=1, tol=1e-4)`` (a start
        near the mode is enough there). Not with ``init="prior"``.
    **options
        Settings of the method's config: :class:`MAPConfig`, :class:`LaplaceConfig`,
        :class:`SVIConfig` or :class:`NUTSConfig` (e.g. ``num_samples=1000``).

    Returns
    -------
    Posterior
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}.")
    spec = ModelSpec.build(data, mechanism, learner, priors)
    if spec.flat_priors and method != "map":
        raise ValueError(
            "flat (improper) mechanism priors are only meaningful for method='map' (the MLE); "
            "give Priors(mechanism_scale=...) for a posterior."
        )
    config = _config(method, options)
    if init_map is not None:
        if not isinstance(init_map, MAPConfig):
            raise TypeError(f"init_map must be a MAPConfig; got {type(init_map).__name__}.")
        if method == "map":
            raise ValueError(
                "init_map sets the start of laplace, svi or nuts; for method='map' pass MAP options directly."
            )
        if getattr(config, "init", "map") != "map":
            raise ValueError(f"init_map needs init='map' (the start is the MAP); got init={config.init!r}.")
    if shard_episodes:
        from bayes_diml.sharding import mesh_for_fit

        spec = spec._replace(mesh=mesh_for_fit(getattr(config, "chain_method", None)))
    ckpt = None
    if checkpoint is not None or checkpoint_every is not None:
        if method not in ("nuts", "svi"):
            raise ValueError(f"checkpoint applies to method='nuts' or 'svi', not {method!r}.")
        if checkpoint is None:
            raise ValueError("checkpoint_every needs checkpoint=DIR.")
        every = int(checkpoint_every) if checkpoint_every is not None else (100 if method == "nuts" else 500)
        ckpt = Checkpoint(checkpoint, every, fingerprint(spec, method, config, int(seed), every))
    if is_confounded(spec.mechanism, spec.learner, spec.data):
        t = temperature_name(spec.learner)
        warnings.warn(
            f"{t} and the payoff scale are confounded ({t} is inferred, no payoffs are observed and "
            f"{type(mechanism).__name__} has no fixed units): only {t} x payoff differences is identified, "
            f"reported as 'scaled_payoffs'; {t} itself and payoffs in absolute units follow the prior. "
            f"Observe payoffs, fix {t}, or use a mechanism with known units to identify {t}.",
            ConfoundingWarning,
            stacklevel=2,
        )
    key = jax.random.key(int(seed))
    t0 = time.perf_counter()
    if method == "map":
        res = fit_map_spec(spec, key, config, progress=progress)
        latent = {k: np.asarray(v)[None] for k, v in res.values.items()}
        det = deterministic_sites(spec, latent)
        posterior = {k: v[None] for k, v in {**latent, **det}.items()}
        stats = {"lp": np.array([[res.log_joint]])}
        info = {
            "converged": bool(res.converged),
            "map_log_joint": float(res.log_joint),
            "restart_log_joints": res.restart_log_joints.tolist(),
        }
        num_chains = 1
    else:
        runner = {"laplace": run_laplace, "svi": run_svi, "nuts": run_nuts}[method]
        kwargs = {} if ckpt is None else {"checkpoint": ckpt}
        if init_map is not None:
            kwargs["map_config"] = init_map
        out = runner(spec, key, config, progress=progress, **kwargs)
        posterior, stats, info = out["posterior"], out["sample_stats"], out["info"]
        num_chains = config.num_chains if method == "nuts" else 1
    info["seconds"] = time.perf_counter() - t0
    info["confounded"] = is_confounded(spec.mechanism, spec.learner, spec.data)

    prior_groups = {}
    if prior_predictive:
        pred = Predictive(spec.model(observe=False), num_samples=int(prior_predictive))
        draws = {k: np.asarray(v)[None] for k, v in pred(jax.random.fold_in(key, 1)).items()}
        prior_groups["prior"] = {k: v for k, v in draws.items() if k not in ("actions", "payoffs")}
        prior_groups["prior_predictive"] = {k: v for k, v in draws.items() if k in ("actions", "payoffs")}
    pp = None
    if posterior_predictive:
        C, S = next(iter(posterior.values())).shape[:2]
        flat = {k: posterior[k].reshape(C * S, *posterior[k].shape[2:]) for k in spec.latent_names}
        pred = Predictive(spec.model(observe=False), posterior_samples=flat, return_sites=["actions"])
        pp = {
            "actions": np.asarray(pred(jax.random.fold_in(key, 2))["actions"]).reshape(
                C, S, *spec.data.actions[:, 1:].shape
            )
        }
    support = (
        support_mask(spec.data)
        if len(spec.data.n_actions) * np.prod(np.asarray(spec.data.n_actions, dtype=float)) <= 10**6
        else None
    )
    idata = build_idata(
        spec,
        posterior,
        stats,
        log_likelihood=log_likelihood,
        prior=prior_groups.get("prior"),
        prior_predictive=prior_groups.get("prior_predictive"),
        posterior_predictive=pp,
        support=support,
    )
    post = Posterior(idata, spec, method, info)
    if method == "nuts":
        post.info.update(_diagnose(post, num_chains, dense=post.info["dense_mass"]))
    return post
