"""The suite's runner: fit and score every row of a grid, appending to a CSV that a rerun resumes.

Rows run one after another in this process, or as Dask tasks (one per row) on a local cluster
(``workers`` > 1) or a given ``client``; either way the driver appends each row to the CSV as it
finishes, so an interrupted run resumes the same way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax

from bayes_diml.mechanisms import param_count
from bayes_diml.optional import require
from bayes_diml.studies.experiments.fitting import MethodFit
from bayes_diml.studies.experiments.grid import (
    _check_methods,
    applicable,
    expand_experiments,
    make_environment,
)
from bayes_diml.studies.experiments.methods import METHOD_FUNCTIONS
from bayes_diml.studies.experiments.results import (
    _append_row,
    _params_dir,
    load_results,
    params_path,
    save_params,
)
from bayes_diml.studies.experiments.scoring import evaluate
from bayes_diml.studies.experiments.settings import _KEY, QUICK_SETTINGS, Settings

__all__ = ["run_paper", "RowFailed"]


class RowFailed(RuntimeError):
    """One row of the grid failed to fit or score; the message names the row (cause: ``__cause__``)."""


def _row_failed(key: _Key, exc: BaseException, out_csv: Path) -> RowFailed:
    experiment, setting, method, seed = key
    return RowFailed(
        f"row experiment={experiment} setting={setting} method={method} seed={seed} failed "
        f"({type(exc).__name__}: {exc}); the rows finished before it are in {out_csv}, "
        "and a rerun resumes from them."
    )


_Key = tuple[str, str, str, int]  # (experiment, setting, method, seed)
_LOG = logging.getLogger("bayes_diml.studies.experiments")  # the suite's progress (rows, candidates)


def _writes_info_to_stderr(logger: logging.Logger) -> bool:
    """Whether a handler on ``logger`` or the ancestors it propagates to writes INFO records to stderr."""
    node: logging.Logger | None = logger
    while node is not None:
        for h in node.handlers:
            stream = getattr(h, "stream", None)
            to_stderr = stream is not None and stream in (sys.stderr, sys.__stderr__)
            if isinstance(h, logging.StreamHandler) and to_stderr and h.level <= logging.INFO:
                return True
        node = node.parent if node.propagate else None
    return False


@contextlib.contextmanager
def _progress_on_stderr(show: bool) -> Iterator[None]:
    """Show the suite's INFO messages on stderr while the block runs; with ``show`` False, silence them.

    Silenced means below WARNING for the block, even where the application's own logging
    configuration shows INFO, so that ``progress=False`` also keeps the fits' progress bars off.
    Where the application's logging already writes these messages to stderr (``logging.basicConfig()``),
    no second handler is added, so each line shows once, in the application's format.
    """
    level = _LOG.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    if show and not _writes_info_to_stderr(_LOG):
        _LOG.addHandler(handler)
    _LOG.setLevel(logging.INFO if show else logging.WARNING)
    try:
        yield
    finally:
        _LOG.removeHandler(handler)
        _LOG.setLevel(level)


def run_paper(
    experiments: Iterable[str] | str = ("e1", "e2", "e3", "e7:40x10"),
    seeds: Sequence[int] = (0, 1, 2),
    methods: Iterable[str] | None = None,
    out_csv: str | Path = "results.csv",
    quick: bool = False,
    progress: bool = True,
    settings: Settings | None = None,
    workers: int | None = None,
    client: Any = None,
):
    """Run the suite; one CSV row per (experiment, setting, method, seed), appended as it finishes.

    Parameters
    ----------
    experiments : names
        ``"e1"``, ``"e2"``, ``"e3"``, ``"e7"`` (all five reference settings) or ``"e7:NxK"``.
    seeds : ints
        Seeds of the environments (data and truth) and of the fits.
    methods : names, optional
        Any of :data:`METHODS`; default :data:`DEFAULT_METHODS`. Methods that do not apply to an
        experiment (see :func:`applicable`) are skipped.
    out_csv : path
        Results CSV (columns :data:`CSV_COLUMNS`); fitted params go to ``<stem>_params/*.npz``.
        Rows already in the CSV are skipped, so a rerun resumes an interrupted one; within a
        ``diml_val`` or ``diml_prior_val`` row, the candidates already scored are read from
        ``<stem>_params/validation/`` (``Settings.validation_cache``) instead of refitted.
    quick : bool
        Tiny data and few steps (:data:`QUICK_SETTINGS`), for tests; ignored if ``settings`` given.
    progress : bool
        Print to stderr a line as each row starts (serial runs) and as it finishes, and, within a
        ``diml_val``, ``diml_prior_val`` or ``diml_early`` row, each candidate's held-out score
        (or the cache file it was read from) and the choice (the ``logging`` messages of
        ``bayes_diml.studies.experiments`` at INFO level, shown only during the call, through the
        application's own stderr handler where it has one); each fit of a serial run shows its own
        progress bar.
    settings : Settings, optional
    workers : int, optional
        More than 1: run each pending row as a Dask task on a local cluster of this many
        processes (one thread each; needs ``pip install "bayes-diml[sweep]"``). None or 1: serial.
    client : dask.distributed.Client, optional
        Run each pending row as a task on this client instead (not together with ``workers`` > 1).
        A task rebuilds its row's environment from the seed, so the rows' numbers are those of a
        serial run; this process writes the CSV and the params as the tasks finish (in any
        order). When a task fails, the tasks not yet finished are cancelled.

    Raises
    ------
    RowFailed
        (a RuntimeError) when a row fails to fit or score, serial or on Dask, naming the row;
        the rows finished before it stay in the CSV, so a rerun resumes.

    Returns
    -------
    pandas.DataFrame
        All rows of the CSV for the requested grid (old and new), in :data:`CSV_COLUMNS` order.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1 or None; got {workers!r}.")
    if client is not None and workers is not None and workers > 1:
        raise ValueError("give workers (a local Dask cluster) or client (a running one), not both.")
    pairs = expand_experiments(experiments)
    methods = _check_methods(methods)
    seeds = [int(s) for s in seeds]
    if settings is None:
        settings = QUICK_SETTINGS if quick else Settings()
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    if settings.validation_cache is None:  # candidates' held-out scores survive an interrupted row
        settings = settings.replace(validation_cache=str(_params_dir(out_csv) / "validation"))
    done = {
        (str(r.experiment), str(r.setting), str(r.method), int(r.seed))
        for r in load_results(out_csv).itertuples(index=False)
    }
    pending: list[_Key] = [
        (experiment, setting, method, seed)
        for experiment, setting in pairs
        for seed in seeds
        for method in methods
        if applicable(experiment, method) and (experiment, setting, method, seed) not in done
    ]
    with _progress_on_stderr(progress):
        _run_pending(pending, settings, out_csv, progress, workers, client)
    df = load_results(out_csv)
    wanted = {(e, s) for e, s in pairs}
    sel = [
        (e, s) in wanted and m in methods and int(sd) in seeds
        for e, s, m, sd in df[list(_KEY)].itertuples(index=False)
    ]
    return df[sel].reset_index(drop=True)


def _run_pending(
    pending: list[_Key], settings: Settings, out_csv: Path, progress: bool, workers: int | None, client: Any
) -> None:
    """Fit and score the pending rows serially, on a local Dask cluster or on ``client``."""
    if client is not None:
        _run_on_client(client, pending, settings, out_csv, progress)
    elif workers is not None and workers > 1:
        distributed = require("dask.distributed", "sweep", "Running the paper's rows on Dask workers")
        if pending:
            with (
                distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                distributed.Client(cluster) as own,
            ):
                _run_on_client(own, pending, settings, out_csv, progress)
    else:
        env, env_of = None, None
        for i, key in enumerate(pending, start=1):
            experiment, setting, method, seed = key
            _LOG.info("row %d/%d: %s %s %s seed %d", i, len(pending), experiment, setting, method, seed)
            if env_of != (experiment, setting, seed):  # one environment for the methods of a seed
                env_of = (experiment, setting, seed)
                env = make_environment(experiment, setting, seed, settings)
            try:
                row, fit = _fit_row(METHOD_FUNCTIONS[method], key, settings, env)
            except Exception as exc:
                raise _row_failed(key, exc, out_csv) from exc
            _finish_row(out_csv, key, row, fit, progress)


def _fit_row(method_fn: Callable, key: _Key, settings: Settings, env: Any = None) -> tuple[dict, MethodFit]:
    """Fit and score one row (building its environment unless given); return its CSV row and fit."""
    experiment, setting, _, seed = key
    if env is None:
        env = make_environment(experiment, setting, seed, settings)
    t0 = time.perf_counter()
    fit = method_fn(env, settings, seed)
    jax.block_until_ready(fit.params)
    seconds = time.perf_counter() - t0
    scores = evaluate(env, fit, settings)
    n_params = param_count(fit.params) + (3 if fit.learner is not None else 0)
    row = dict(zip(_KEY, key, strict=True)) | scores | {"fit_seconds": seconds, "n_params": n_params}
    return row, fit


def _row_task(method_fn: Callable, key: _Key, settings: Settings) -> tuple[dict, MethodFit]:
    """One Dask task: :func:`_fit_row`, with the fit's arrays moved to NumPy and no ``draws`` closure."""
    row, fit = _fit_row(method_fn, key, settings)
    return row, fit._replace(
        params=jax.device_get(fit.params),
        learner=jax.device_get(fit.learner),
        draws=None,
        info=jax.device_get(dict(fit.info)),
    )


def _finish_row(out_csv: Path, key: _Key, row: dict, fit: MethodFit, progress: bool) -> None:
    """Save the row's params, append the row to the CSV and print its progress line."""
    save_params(params_path(out_csv, key), fit)
    _append_row(out_csv, row)
    if progress:
        experiment, setting, method, seed = key
        cov = row["interval_coverage_90"]
        print(
            f"{experiment} {setting} {method:12s} seed {seed}: diff_mse {row['diff_mse']:.3e} "
            f"cfkl {row['cfkl_params']:.3f}"
            + ("" if math.isnan(cov) else f" cover90 {cov:.2f}")
            + f" fit {row['fit_seconds']:.1f}s",
            file=sys.stderr,
            flush=True,
        )


def _run_on_client(
    client: Any, pending: list[_Key], settings: Settings, out_csv: Path, progress: bool
) -> None:
    """Run every pending row as one task on ``client``; write each row as its task finishes."""
    if not pending:
        return
    from dask.distributed import as_completed

    _LOG.info("submitted %d rows to Dask; each prints its line as it finishes", len(pending))
    # the method functions are looked up here, so a task runs what this process calls the method
    futures = {
        client.submit(_row_task, METHOD_FUNCTIONS[key[2]], key, settings, pure=False): key for key in pending
    }
    try:
        for fut in as_completed(list(futures)):
            key = futures[fut]
            try:
                row, fit = fut.result()
            except Exception as exc:
                raise _row_failed(key, exc, out_csv) from exc
            _finish_row(out_csv, key, row, fit, progress)
    finally:
        client.cancel(list(futures))  # the tasks still pending after an error (or an interrupt)
