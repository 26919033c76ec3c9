"""Choices made on a validation split of the training episodes: priors, and the step count.

``diml_val`` and ``diml_prior_val`` choose a prior, ``diml_early`` a number of Adam steps.

The training episodes are split again (``Settings.validation_fraction``, seeded by the row's
seed); each candidate prior (or, for ``diml_early``, each step count) is fitted on the rest and
scored by the exact log-likelihood of the held-out episodes under the true learner. No test data
are used. With ``Settings.validation_cache`` set, each candidate's scores are saved as it
finishes, and a rerun reads them instead of refitting.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from bayes_diml.data import Trajectories
from bayes_diml.environments import Environment
from bayes_diml.files import array_digest, write_atomic
from bayes_diml.likelihood import log_likelihood
from bayes_diml.models import Priors
from bayes_diml.studies.experiments.fitting import (
    MethodFit,
    _fit,
    _map_fit,
    _network,
    _prior_fit,
    suite_priors,
)
from bayes_diml.studies.experiments.settings import Settings

__all__ = [
    "validation_scores",
    "fit_diml_val",
    "prior_validation_scores",
    "choose_prior",
    "fit_diml_prior_val",
    "fit_diml_early",
]

_LOG = logging.getLogger(__name__)  # progress of a row's candidates (run_paper shows it)


def _held_out(
    env: Environment, settings: Settings, seed: int, fits: dict[str, Callable[..., MethodFit]]
) -> tuple[dict[str, np.ndarray], int]:
    """Fit each ``fits[label](env=...)`` on part of the training episodes; score it on the rest.

    Returns ``({label: float[M_val]}, n_scored)``: each validation episode's log-likelihood (summed
    over steps and agents) and the number of scored actions of all of them.
    """
    fit_part, val_part = env.train.split(settings.validation_fraction, seed=int(seed))
    sub = env._replace(train=fit_part)
    digest = _row_digest(env, settings, seed, fit_part, val_part)
    n_scored = int(val_part.n_scored)
    _LOG.info(
        "%s seed %d: validation of %d candidates, fitted on %d episodes, scored on %d",
        env.name, int(seed), len(fits), fit_part.n_episodes, val_part.n_episodes,
    )  # fmt: skip
    per_episode = {}
    for i, (label, fit_on) in enumerate(fits.items(), start=1):
        path = _cache_path(settings, env, seed, label, digest)
        if path is not None and path.exists():
            with np.load(path) as saved:
                per_episode[label] = saved["per_episode"]
            _LOG.info("  candidate %d/%d %s: read from %s", i, len(fits), label, path)
            continue
        t0 = time.perf_counter()
        fit = fit_on(env=sub)
        per_step = log_likelihood(fit.mechanism, fit.params, env.learner, val_part, per_step=True)
        per_episode[label] = np.asarray(per_step, dtype=np.float64).sum(axis=(1, 2))
        _LOG.info(
            "  candidate %d/%d %s: held-out log-likelihood %.6f per action (fit %.0f s)",
            i, len(fits), label, per_episode[label].sum() / n_scored, time.perf_counter() - t0,
        )  # fmt: skip
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, _npz_bytes(per_episode=per_episode[label]))
    return per_episode, n_scored


def _row_digest(env: Environment, settings: Settings, seed: int, *parts: Trajectories) -> str:
    """Return a hex digest of what a candidate's held-out score depends on besides its label.

    The settings (without ``validation_cache``), the seed, the experiment, the learner's
    parameters and every array of the fitting and validation episodes.
    """
    arrays = [*jax.tree_util.tree_leaves(env.learner)]
    for part in parts:
        arrays += [part.actions, part.lengths, part.payoffs]
    described = repr(
        (
            settings.replace(validation_cache=None),
            int(seed),
            env.name,
            jax.tree_util.tree_structure(env.learner),
        )
    )
    return hashlib.sha256(described.encode() + array_digest(*arrays).encode()).hexdigest()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _cache_path(settings: Settings, env: Environment, seed: int, label: str, digest: str) -> Path | None:
    """Return where a candidate's held-out scores are cached, or None without a cache folder."""
    if settings.validation_cache is None:
        return None
    n = env.train.n_agents
    return Path(settings.validation_cache) / f"{env.name}_n{n}_seed{int(seed)}_{label}_{digest[:16]}.npz"


def _scale_label(scale: float | None) -> str:
    return "flat" if scale is None else f"{float(scale):g}"


def validation_scores(env: Environment, settings: Settings, seed: int) -> dict[str, float]:
    """Held-out log-likelihood per scored action of every candidate prior sd of ``diml_constant``.

    ``diml_constant`` (constant N(0, s^2) weight prior) is fitted at each sd of ``prior_scale_grid``.

    Returns
    -------
    dict
        ``{label: mean log-likelihood per scored action}``, labels ``"flat"`` or the sd as ``"0.3"``.
    """
    fits = {
        _scale_label(scale): functools.partial(
            _prior_fit, settings=settings, seed=seed, weight_scaling="constant", scale=scale
        )
        for scale in settings.prior_scale_grid
    }
    per_episode, n_scored = _held_out(env, settings, seed, fits)
    return {label: float(ll.sum()) / n_scored for label, ll in per_episode.items()}


def fit_diml_val(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """``diml_constant`` with its prior sd chosen on a validation split of the training episodes.

    :func:`validation_scores` picks the sd of ``prior_scale_grid`` with the best held-out
    log-likelihood; it is then refitted on all training episodes with it. The fit's info
    holds the choice (``prior_scale``, ``inf`` for flat) and every score (``val_ll_<label>``).
    """
    scores = validation_scores(env, settings, seed)
    by_label = {_scale_label(s): s for s in settings.prior_scale_grid}
    chosen = max(scores, key=scores.get)
    scale = by_label[chosen]
    _LOG.info("%s seed %d: chose sd %s; refitting on all training episodes", env.name, int(seed), chosen)
    fit = _prior_fit(env, settings, seed, "constant", scale)
    info = {
        **fit.info,
        "prior_scale": np.inf if scale is None else float(scale),
        **{f"val_ll_{k}": v for k, v in scores.items()},
    }
    return fit._replace(info=info)


def _candidate_label(weight_scaling: str, scale: float) -> str:
    return f"{weight_scaling}_{float(scale):g}"


def gain_standard_error(per_episode: np.ndarray, baseline: np.ndarray, n_scored: int) -> float:
    """Return the standard error of a held-out gain per scored action, from paired episodes.

    ``per_episode, baseline: float[M]`` are two fits' log-likelihoods of the same ``M`` validation
    episodes; the gain ``sum(per_episode - baseline) / n_scored`` has standard error
    ``sqrt(M) * sd(per_episode - baseline) / n_scored`` (episodes independent; ``nan`` for M < 2).
    """
    diff = np.asarray(per_episode, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if diff.size < 2:
        return float("nan")
    return float(np.sqrt(diff.size) * diff.std(ddof=1) / n_scored)


def prior_validation_scores(
    env: Environment, settings: Settings, seed: int
) -> dict[str, tuple[float, float]]:
    """Held-out log-likelihood of every prior in ``prior_candidates``, and its gain's standard error.

    As :func:`validation_scores`, but the candidates are whole priors ``(weight_scaling, scale)``:
    the constant N(0, 0.3^2) of ``diml_constant`` against fan-in priors N(0, c^2 / fan_in).

    Returns
    -------
    dict
        ``{label: (log-likelihood per scored action, standard error of its gain over the first
        candidate)}`` (:func:`gain_standard_error`; 0 for the first), labels ``"constant_0.3"``,
        ``"fan_in_1"``.
    """
    _check_candidates(settings.prior_candidates)
    fits = {
        _candidate_label(ws, scale): functools.partial(
            _prior_fit, settings=settings, seed=seed, weight_scaling=ws, scale=scale
        )
        for ws, scale in settings.prior_candidates
    }
    per_episode, n_scored = _held_out(env, settings, seed, fits)
    baseline = next(iter(per_episode.values()))
    return {
        label: (float(ll.sum()) / n_scored, gain_standard_error(ll, baseline, n_scored) if i else 0.0)
        for i, (label, ll) in enumerate(per_episode.items())
    }


def _check_candidates(candidates: tuple) -> None:
    """Raise ValueError before any fit if ``prior_candidates`` is empty or names a bad prior."""
    if not candidates:
        raise ValueError("Settings.prior_candidates is empty; give at least one (weight_scaling, scale).")
    for ws, scale in candidates:
        Priors(mechanism_scale=scale, weight_scaling=ws)  # its own checks name the bad value


def choose_prior(scores: dict[str, tuple[float, float]], threshold_se: float) -> str:
    """Return the label of the chosen prior: the first candidate unless others beat it clearly.

    A candidate replaces the first (the incumbent, ``diml_constant``'s prior) only when its held-out gain
    over it exceeds ``threshold_se`` standard errors; of those that do, the best. Gains within the
    noise of a small validation split do not move the choice (their ranking is noise).
    """
    if not scores:
        raise ValueError("choose_prior needs at least one candidate's scores; got none.")
    first = next(iter(scores))
    base = scores[first][0]
    clear = {k: s for k, (s, se) in scores.items() if k != first and s - base > threshold_se * se}
    return max(clear, key=clear.get) if clear else first


def fit_diml_prior_val(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """``diml`` with its whole prior (constant or fan-in, and its scale) chosen on validation.

    :func:`prior_validation_scores` scores every candidate of ``prior_candidates``;
    :func:`choose_prior` keeps the first unless another beats it by more than
    ``prior_val_threshold_se`` standard errors; the choice is refitted on all training episodes.
    The fit's info holds the choice (``prior_fan_in``: 1.0 for a fan-in prior, 0.0 for constant;
    ``prior_scale``), every score (``val_ll_<label>``) and its gain's standard error
    (``val_gain_se_<label>``).
    """
    scores = prior_validation_scores(env, settings, seed)
    by_label = {_candidate_label(ws, sc): (ws, sc) for ws, sc in settings.prior_candidates}
    chosen = choose_prior(scores, settings.prior_val_threshold_se)
    weight_scaling, scale = by_label[chosen]
    _LOG.info("%s seed %d: chose %s; refitting on all training episodes", env.name, int(seed), chosen)
    fit = _prior_fit(env, settings, seed, weight_scaling, scale)
    info = {
        **fit.info,
        "prior_fan_in": float(weight_scaling == "fan_in"),
        "prior_scale": float(scale),
        **{f"val_ll_{k}": v for k, (v, _) in scores.items()},
        **{f"val_gain_se_{k}": se for k, (_, se) in scores.items()},
    }
    return fit._replace(info=info)


def _early_chunk(max_steps: int) -> int:
    """Return the steps between held-out scores: 100, or a quarter of a short run."""
    return min(100, max(1, max_steps // 4))


def fit_diml_early(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Fit the network (``weight_scaling``, ``prior_scale``) for a step count chosen on validation.

    With the default ``Settings`` that is ``diml_constant``'s prior (``diml``'s on E1-E3), and
    this is the explicit form of the step budget the constant prior needs on E7: the network is
    fitted on the rest of the training episodes for at most ``early_max_steps`` steps with
    ``fit(..., validation=held_out)``, which keeps the chunk end (every 100 steps; a quarter of
    a shorter run) with the best held-out log-likelihood and stops after ``early_patience``
    chunks without a better one; it is then refitted on all training episodes for that many
    steps. The fit's info holds ``early_steps`` (the chosen count), ``val_ll`` (its held-out
    log-likelihood per scored action) and ``val_trace`` (per chunk end).
    """
    fit_part, val_part = env.train.split(settings.validation_fraction, seed=int(seed))
    steps = int(settings.early_max_steps)
    post = _fit(
        env._replace(train=fit_part),
        _network(env),
        env.learner,
        "map",
        seed,
        suite_priors(settings, settings.prior_scale),
        validation=val_part,
        num_steps=steps,
        learning_rate=float(settings.map_learning_rate),
        num_restarts=1,
        chunk=_early_chunk(steps),
        patience=int(settings.early_patience),
    )
    chosen = int(post.info["map_steps"])
    _LOG.info("%s seed %d: chose %d steps; refitting on all training episodes", env.name, int(seed), chosen)
    refit = _map_fit(
        env,
        settings.replace(map_steps=chosen, map_steps_e7=chosen, fan_in_polish_e7=0),
        seed,
        _network(env),
        env.learner,
        settings.prior_scale,
    )
    trace = np.asarray(post.info["validation_trace"], dtype=np.float64) / int(val_part.n_scored)
    info = {**refit.info, "early_steps": chosen, "val_ll": float(trace.max()), "val_trace": trace}
    return refit._replace(info=info)
