"""The SBC driver :func:`sbc`: validate a study, simulate its data sets, fit them in chunks, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bayes_diml.mechanisms import Tabular
from bayes_diml.models import Priors
from bayes_diml.studies.calibration.chunks import _run_chunks
from bayes_diml.studies.calibration.fitting import _chunk_records
from bayes_diml.studies.calibration.prior import prior_datasets
from bayes_diml.studies.calibration.result import SBCResult, _assemble
from bayes_diml.studies.calibration.spec import _DEFAULT_OPTIONS, METHODS, SIMULATORS, _learner_spec, _Setup

__all__ = ["sbc"]


def sbc(
    mechanism: Any,
    priors: Any = None,
    learner_priors: Any = None,
    n_datasets: int = 100,
    M: int = 10,
    T: int = 20,
    method: str = "nuts",
    seed: int = 0,
    *,
    observe_payoffs: bool = False,
    simulator: str = "logit_q",
    n_ranks: int = 99,
    chunk_size: int = 25,
    engine: str = "auto",
    progress: bool = True,
    out: str | Path | None = None,
    client: Any = None,
    workers: int = 1,
    **options: Any,
) -> SBCResult:
    """Simulation-based calibration of ``method`` on ``mechanism`` under ``priors``.

    Parameters
    ----------
    mechanism : Mechanism
        e.g. ``mechanisms.Tabular((2, 2))``; the ``vmap`` engine needs a ``Tabular`` one.
    priors : Priors, optional
        Prior of mechanism and learner (default ``Priors()``); must be proper.
    learner_priors : LogitQ, dict or None
        Which learner fields are inferred (``"infer"``, drawn from ``priors``) and which are
        fixed (a number, used in simulation and fit). None: alpha, beta, eps inferred.
    n_datasets, M, T : int
        Number of prior draws / data sets, and each data set's episodes x steps.
    method : str
        ``"nuts"``, ``"svi"`` (AutoNormal), ``"svi_lowrank"`` (AutoLowRankMultivariateNormal)
        or ``"laplace"`` (``fit`` engine only).
    seed : int
        Seed of the prior draws, simulations and fits (results do not depend on chunking).
    observe_payoffs : bool
        Give the fit the realised payoffs plus Normal(0, payoff_noise) noise (identifies beta).
    simulator : str
        Data-generating learner: ``"logit_q"`` (calibration) or a misspecified ``"bandit_q"`` /
        ``"hedge"`` (:func:`make_learner`); the fit is always logit-Q.
    n_ranks : int
        Number of thinned draws the rank is taken among (ranks in ``0..n_ranks``).
    chunk_size : int
        Data sets per task (one compiled vectorised fit for the ``vmap`` engine).
    engine : str
        ``"vmap"`` (vectorised NumPyro NUTS / SVI, tabular only), ``"fit"`` (one
        :func:`bayes_diml.fit` per data set) or ``"auto"``.
    progress : bool
        tqdm progress bar over data sets.
    out : path, optional
        Write the result as JSON here, and partial results to ``<out>.partial.jsonl`` as
        chunks finish (a rerun with equal settings resumes from them).
    client : dask.distributed.Client, optional
        Run chunks on this Dask client; else ``workers`` > 1 starts a local cluster
        (needs ``bayes-diml[sweep]``); else serial.
    **options
        Method settings: NUTS ``num_warmup, num_samples, num_chains, target_accept,
        max_tree_depth``; SVI ``num_steps, learning_rate, num_draws`` (+ ``rank``).

    Returns
    -------
    SBCResult
    """
    priors = Priors() if priors is None else priors
    if priors.mechanism_scale is None:
        raise ValueError("SBC needs a proper prior: Priors(mechanism_scale=...) must be a number.")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}; got {simulator!r}.")
    for name, v, lo in (
        ("n_datasets", n_datasets, 1),
        ("M", M, 1),
        ("T", T, 2),
        ("chunk_size", chunk_size, 1),
    ):
        if not isinstance(v, int | np.integer) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}.")
    if engine == "auto":
        engine = "vmap" if isinstance(mechanism, Tabular) and method != "laplace" else "fit"
    if engine == "vmap" and (not isinstance(mechanism, Tabular) or method == "laplace"):
        raise ValueError("engine='vmap' needs a Tabular mechanism and method nuts, svi or svi_lowrank.")
    if engine not in ("vmap", "fit"):
        raise ValueError(f"engine must be 'auto', 'vmap' or 'fit'; got {engine!r}.")
    spec = _learner_spec(learner_priors)
    opts = {**_DEFAULT_OPTIONS[method], **options}
    if engine == "fit" and method == "nuts":
        opts.setdefault("num_chains", 2)
    draws_per_fit = opts.get("num_samples", 0) * opts.get("num_chains", 1) or opts.get("num_draws", 1000)
    if n_ranks > draws_per_fit:
        raise ValueError(f"n_ranks = {n_ranks} exceeds the {draws_per_fit} posterior draws per fit.")
    setup = _Setup(
        n_actions=tuple(int(k) for k in mechanism.n_actions),
        M=int(M),
        T=int(T),
        method=method,
        learner=spec,
        priors=priors.to_dict(),
        observe_payoffs=bool(observe_payoffs),
        simulator=simulator,
        options={**opts, "engine": engine},
        n_ranks=int(n_ranks),
        seed=int(seed),
        n_datasets=int(n_datasets),
        mechanism=type(mechanism).__name__,
    )
    truth, actions, payoffs = prior_datasets(
        mechanism, priors, spec, n_datasets, M, T, seed, observe_payoffs=observe_payoffs, simulator=simulator
    )
    records: list[dict] = []
    partial = None if out is None else Path(str(out) + ".partial.jsonl")
    done: set[int] = set()
    if partial is not None and partial.exists():
        lines = partial.read_text().splitlines()
        if lines and json.loads(lines[0]).get("setup") == setup.key():
            for line in lines[1:]:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
                if max(rec["idx"]) < n_datasets:  # a smaller rerun ignores chunks beyond it
                    records.append(rec)
                    done.update(rec["idx"])
        else:
            partial.unlink()
    if partial is not None and not partial.exists():
        partial.write_text(json.dumps({"setup": setup.key()}) + "\n")
    todo = [i for i in range(n_datasets) if i not in done]
    chunks = [np.asarray(todo[i : i + chunk_size]) for i in range(0, len(todo), chunk_size)]

    def task(idx):
        return _chunk_records(setup, mechanism, priors, truth, actions, payoffs, idx)

    def on_done(rec):
        records.append(rec)
        if partial is not None:
            with partial.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")

    _run_chunks(task, chunks, client, int(workers), progress, on_done)
    result = _assemble(setup, records, payoffs is not None)
    if out is not None:
        result.save(out)
    return result
