"""Fitting one chunk of SBC data sets: a vectorised NumPyro fit, or a loop over :func:`bayes_diml.fit`."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from bayes_diml.data import Trajectories
from bayes_diml.inference import ConfoundingWarning, ConvergenceWarning, fit
from bayes_diml.learners import LogitQ
from bayes_diml.models import params_from_sites
from bayes_diml.studies.calibration.checks import coverage_from_draws, ranks_from_draws
from bayes_diml.studies.calibration.prior import _quantities
from bayes_diml.studies.calibration.spec import _Setup
from bayes_diml.studies.sbc_batched import nuts_batch, svi_batch

#: What each small fit of a sweep warns about and the study records instead (message, category):
#: beta confounded with the payoff scale (beta is then flagged not identified and
#: ``scaled_payoffs`` are checked), and NUTS / MAP convergence (diagnostics kept per data set).
_EXPECTED_FIT_WARNINGS = (
    ("beta and the payoff scale are confounded", ConfoundingWarning),
    ("NUTS diagnostics on identified quantities", ConvergenceWarning),
    ("MAP did not converge", ConvergenceWarning),
)


@contextlib.contextmanager
def _expected_fit_warnings_ignored() -> Iterator[None]:
    """Silence :data:`_EXPECTED_FIT_WARNINGS` only; every other warning still reaches the user."""
    with warnings.catch_warnings():
        for message, category in _EXPECTED_FIT_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def _chunk_records(
    setup: _Setup, mechanism: Any, priors: Any, truth: dict, actions: np.ndarray, payoffs, idx: np.ndarray
) -> dict:
    """Fit data sets ``idx`` and return ranks / inside flags / diagnostics for them (JSON-able)."""
    t0 = time.perf_counter()
    spec = setup.learner
    learner = LogitQ(**spec)
    n_actions = setup.n_actions
    opts = dict(setup.options)
    seeds = np.asarray([setup.seed * 1_000_003 + 7919 * (int(i) + 1) for i in idx])
    pay = None if payoffs is None else payoffs[idx]
    engine = opts.pop("engine", "vmap")
    if engine == "vmap":
        if setup.method == "nuts":
            draws, diag = nuts_batch(mechanism, learner, priors, n_actions, actions[idx], pay, seeds, **opts)
        else:
            guide = "lowrank" if setup.method == "svi_lowrank" else "normal"
            draws, diag = svi_batch(
                mechanism, learner, priors, n_actions, actions[idx], pay, seeds, guide=guide, **opts
            )
        flat = {k: v.reshape(v.shape[0], v.shape[1] * v.shape[2], *v.shape[3:]) for k, v in draws.items()}
        table = params_from_sites(mechanism, {k: v for k, v in flat.items() if k.startswith("u")})["table"]
        flat["centred_payoffs"] = np.asarray(table)
    else:
        flat, diag = _fit_loop(setup, mechanism, priors, actions[idx], pay, seeds, opts)
    q_draws = _quantities(flat, spec, n_actions, payoffs is not None, lead=2)
    q_truth = _quantities({k: v[idx] for k, v in truth.items()}, spec, n_actions, payoffs is not None, lead=1)
    rec = {"idx": [int(i) for i in idx], "ranks": {}, "inside": {}, "truth": {}}
    for q, d in q_draws.items():
        rec["ranks"][q] = ranks_from_draws(q_truth[q], d, setup.n_ranks).tolist()
        rec["inside"][q] = coverage_from_draws(q_truth[q], d).astype(int).tolist()
        rec["truth"][q] = np.asarray(q_truth[q], float).tolist()
    rec["diagnostics"] = {k: np.asarray(v, float).tolist() for k, v in diag.items()}
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _fit_loop(setup, mechanism, priors, actions, payoffs, seeds, opts) -> tuple[dict, dict]:
    """Fit data sets one by one with :func:`bayes_diml.fit` (the ``fit`` engine)."""
    method = {"svi_lowrank": "svi"}.get(setup.method, setup.method)
    if setup.method == "svi_lowrank":
        opts = {**opts, "guide": "lowrank"}
    learner = LogitQ(**setup.learner)
    out: dict[str, list] = {}
    diag: dict[str, list] = {"seconds_fit": []}
    for b in range(actions.shape[0]):
        data = Trajectories(actions[b], setup.n_actions, payoffs=None if payoffs is None else payoffs[b])
        with _expected_fit_warnings_ignored():
            post = fit(
                data,
                mechanism,
                learner,
                method,
                int(seeds[b]),
                priors=priors,
                progress=False,
                log_likelihood=False,
                **opts,
            )
        names = [
            n for n in ("alpha", "beta", "eps", "payoff_noise") if n in post.idata["posterior"].data_vars
        ]
        for n_ in names + ["centred_payoffs"]:
            out.setdefault(n_, []).append(post.draws(n_))
        diag["seconds_fit"].append(post.info.get("seconds", float("nan")))
        if "divergences" in post.info:
            diag.setdefault("diverging", []).append(post.info["divergences"])
    return {k: np.stack(v) for k, v in out.items()}, {k: np.asarray(v) for k, v in diag.items()}
