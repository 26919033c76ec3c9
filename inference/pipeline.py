"""One fit, start to finish: spec, method config, sampler run and ArviZ DataTree.

:func:`run_fit` does everything ``fit`` does except wrap the result in a ``Posterior``
and diagnose NUTS draws; it sits below ``posterior`` so that refits (leave-future-out CV)
need neither ``fit`` nor ``Posterior``.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
from numpyro.infer import Predictive

from bayes_diml.data import Trajectories
from bayes_diml.learners import temperature_name
from bayes_diml.models import Priors, is_confounded

from .checkpoint import Checkpoint, fingerprint
from .errors import ConfoundingWarning
from .idata import build_idata, deterministic_sites, pointwise_log_likelihood
from .identification import support_mask_if_small
from .map import MAPConfig, fit_map_spec
from .samplers import LaplaceConfig, NUTSConfig, SVIConfig, run_laplace, run_nuts, run_svi
from .spec import ModelSpec, check_context_fit

__all__ = ["METHODS", "CONFIGS", "FitResult", "make_config", "run_fit", "held_out_log_likelihood"]

METHODS = ("map", "laplace", "svi", "nuts")
CONFIGS = {"map": MAPConfig, "laplace": LaplaceConfig, "svi": SVIConfig, "nuts": NUTSConfig}
#: The keywords of ``fit`` that are not settings of a method's config.
FIT_KEYWORDS = (
    "seed, priors, progress, log_likelihood, prior_predictive, posterior_predictive, checkpoint, "
    "checkpoint_every, shard_episodes, init_map, config, validation, robust, n_bags, bag_seed, bag_size, "
    "workers, client"
)


class FitResult(NamedTuple):
    """What a fit produced: the arguments of ``Posterior(idata, spec, method, info)``."""

    idata: Any
    spec: ModelSpec
    method: str
    info: dict


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.all(a == b))
    except (TypeError, ValueError):
        return a is b


def make_config(method: str, options: dict[str, Any], config: Any = None) -> Any:
    """Return the method's config from keyword ``options`` and an optional ``config`` object.

    ``config`` must be the method's config class (``MAPConfig`` for ``"map"``, ...). A keyword
    fills a field that ``config`` leaves at its default; a keyword that differs from a field
    ``config`` sets (a non-default value) is a ``ValueError``.
    """
    cls = CONFIGS[method]
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for method={method!r}; allowed: {sorted(allowed)} "
            f"(plus {FIT_KEYWORDS})."
        )
    if config is None:
        return cls(**options)
    if not isinstance(config, cls):
        raise TypeError(
            f"config={type(config).__name__}(...) does not fit method={method!r}, which takes a "
            f"{cls.__name__}."
        )
    defaults = cls()
    for name, value in options.items():
        given = getattr(config, name)
        if not _same(given, getattr(defaults, name)) and not _same(given, value):
            raise ValueError(
                f"keyword {name}={value!r} contradicts config {cls.__name__}({name}={given!r}); "
                "give it once, in config or as a keyword."
            )
    return dataclasses.replace(config, **options) if options else config


def _start_checkpoint(spec, method, config, seed, checkpoint, checkpoint_every) -> Checkpoint | None:
    if checkpoint is None and checkpoint_every is None:
        return None
    if method not in ("nuts", "svi"):
        raise ValueError(f"checkpoint applies to method='nuts' or 'svi', not {method!r}.")
    if checkpoint is None:
        raise ValueError("checkpoint_every needs checkpoint=DIR.")
    every = int(checkpoint_every) if checkpoint_every is not None else (100 if method == "nuts" else 500)
    return Checkpoint(checkpoint, every, fingerprint(spec, method, config, int(seed), every))


def _check_init_map(init_map: MAPConfig | None, method: str, config: Any) -> None:
    if init_map is None:
        return
    if not isinstance(init_map, MAPConfig):
        raise TypeError(f"init_map must be a MAPConfig; got {type(init_map).__name__}.")
    if method == "map":
        raise ValueError(
            "init_map sets the start of laplace, svi or nuts; for method='map' pass MAP options directly."
        )
    if getattr(config, "init", "map") != "map":
        raise ValueError(
            f"init_map needs init='map' (the start is the MAP); got init={config.init!r}"
            + (" (NUTS chains start at dispersed points by default)." if method == "nuts" else ".")
        )


def _warn_confounded(spec: ModelSpec) -> None:
    t = temperature_name(spec.learner)
    warnings.warn(
        f"{t} and the payoff scale are confounded ({t} is inferred, no payoffs are observed and "
        f"{type(spec.mechanism).__name__} has no fixed units): only {t} x payoff differences is identified, "
        f"reported as 'scaled_payoffs'; {t} itself and payoffs in absolute units follow the prior. "
        f"Observe payoffs, fix {t}, or use a mechanism with known units to identify {t}.",
        ConfoundingWarning,
        stacklevel=4,
    )


def validation_spec(spec: ModelSpec, validation: Any) -> ModelSpec:
    """Return the spec of held-out episodes for early stopping: ``spec``'s model on their data.

    Raises a ``ValueError`` naming the mismatch when ``validation`` is not data the model can
    score (other actions per agent, payoffs observed in one and not the other, covariates).
    """
    if not isinstance(validation, Trajectories):
        raise TypeError(
            f"validation must be Trajectories of held-out episodes; got {type(validation).__name__}."
        )
    if tuple(validation.n_actions) != tuple(spec.data.n_actions):
        raise ValueError(
            f"validation has n_actions = {tuple(validation.n_actions)} but the data have "
            f"{tuple(spec.data.n_actions)}; held-out episodes must be of the same game."
        )
    if validation.has_payoffs != spec.data.has_payoffs:
        raise ValueError(
            "validation and data must both observe payoffs or both not "
            f"(data: {spec.data.has_payoffs}, validation: {validation.has_payoffs})."
        )
    if int(validation.n_scored) == 0:
        raise ValueError("validation has no scored action (episodes of one step?); nothing to stop on.")
    check_context_fit(validation, spec.mechanism, spec.learner)
    return spec.with_data(validation)


def held_out_log_likelihood(spec: ModelSpec, values: dict[str, Any]) -> float:
    """Exact log-likelihood of ``spec``'s data (actions, and payoffs where observed) at one point."""
    draws = {k: np.asarray(values[k])[None] for k in spec.latent_names}
    return float(sum(np.sum(v, dtype=np.float64) for v in pointwise_log_likelihood(spec, draws).values()))


def _run_map(spec: ModelSpec, key: jax.Array, config: MAPConfig, progress: bool, validation: Any = None):
    held_out = None if validation is None else validation_spec(spec, validation)
    score = None if held_out is None else (lambda values: held_out_log_likelihood(held_out, values))
    res = fit_map_spec(spec, key, config, progress=progress, validation=score)
    latent = {k: np.asarray(v)[None] for k, v in res.values.items()}
    det = deterministic_sites(spec, latent)
    posterior = {k: v[None] for k, v in {**latent, **det}.items()}
    stats = {"lp": np.array([[res.log_joint]])}
    info = {
        "converged": bool(res.converged),
        "map_log_joint": float(res.log_joint),
        "restart_log_joints": res.restart_log_joints.tolist(),
        "map_steps": int(res.step),
        "map_polish_steps": int(res.polished_steps),
    }
    if held_out is not None:
        best = float(np.max(res.validation_trace))
        info.update(
            validation_log_likelihood=best,
            validation_per_action=best / int(validation.n_scored),
            validation_trace=res.validation_trace.tolist(),
        )
    return posterior, stats, info


def _predictive_groups(spec: ModelSpec, key, posterior, prior_predictive: int, posterior_predictive: bool):
    groups: dict[str, Any] = {}
    if prior_predictive:
        pred = Predictive(spec.model(observe=False), num_samples=int(prior_predictive))
        draws = {k: np.asarray(v)[None] for k, v in pred(jax.random.fold_in(key, 1)).items()}
        groups["prior"] = {k: v for k, v in draws.items() if k not in ("actions", "payoffs")}
        groups["prior_predictive"] = {k: v for k, v in draws.items() if k in ("actions", "payoffs")}
    if posterior_predictive:
        C, S = next(iter(posterior.values())).shape[:2]
        flat = {k: posterior[k].reshape(C * S, *posterior[k].shape[2:]) for k in spec.latent_names}
        pred = Predictive(spec.model(observe=False), posterior_samples=flat, return_sites=["actions"])
        actions = np.asarray(pred(jax.random.fold_in(key, 2))["actions"])
        groups["posterior_predictive"] = {"actions": actions.reshape(C, S, *spec.data.actions[:, 1:].shape)}
    return groups


def run_fit(
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
    **options: Any,
) -> FitResult:
    """Run a fit and return its DataTree, spec, method and info (no NUTS diagnostics).

    Takes the arguments of :func:`bayes_diml.inference.fit`, which documents them.
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
    config = make_config(method, options, config)
    _check_init_map(init_map, method, config)
    if validation is not None and method != "map":
        raise ValueError(f"validation= (early stopping) applies to method='map' only; got method={method!r}.")
    if shard_episodes:
        from bayes_diml.sharding import mesh_for_fit

        spec = spec._replace(mesh=mesh_for_fit(getattr(config, "chain_method", None)))
    ckpt = _start_checkpoint(spec, method, config, seed, checkpoint, checkpoint_every)
    confounded = is_confounded(spec.mechanism, spec.learner, spec.data)
    if confounded:
        _warn_confounded(spec)
    key = jax.random.key(int(seed))
    t0 = time.perf_counter()
    if method == "map":
        posterior, stats, info = _run_map(spec, key, config, progress, validation)
    else:
        runner = {"laplace": run_laplace, "svi": run_svi, "nuts": run_nuts}[method]
        kwargs = {} if ckpt is None else {"checkpoint": ckpt}
        if init_map is not None:
            kwargs["map_config"] = init_map
        out = runner(spec, key, config, progress=progress, **kwargs)
        posterior, stats, info = out["posterior"], out["sample_stats"], out["info"]
    info["seconds"] = time.perf_counter() - t0
    info["confounded"] = confounded
    groups = _predictive_groups(spec, key, posterior, prior_predictive, posterior_predictive)
    idata = build_idata(
        spec,
        posterior,
        stats,
        log_likelihood=log_likelihood,
        prior=groups.get("prior"),
        prior_predictive=groups.get("prior_predictive"),
        posterior_predictive=groups.get("posterior_predictive"),
        support=support_mask_if_small(spec.data),
    )
    return FitResult(idata, spec, method, info)
