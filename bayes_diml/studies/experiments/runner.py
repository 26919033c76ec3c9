"""The suite's runner: fit and score every row of a grid, appending to a CSV that a rerun resumes."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import jax

from bayes_diml.mechanisms import param_count
from bayes_diml.studies.experiments.grid import (
    _check_methods,
    applicable,
    expand_experiments,
    make_environment,
)
from bayes_diml.studies.experiments.methods import METHOD_FUNCTIONS
from bayes_diml.studies.experiments.results import _append_row, _params_path, _save_params, load_results
from bayes_diml.studies.experiments.scoring import evaluate
from bayes_diml.studies.experiments.settings import _KEY, QUICK_SETTINGS, Settings

__all__ = ["run_paper"]


def run_paper(
    experiments: Iterable[str] | str = ("e1", "e2", "e3", "e7:40x10"),
    seeds: Sequence[int] = (0, 1, 2),
    methods: Iterable[str] | None = None,
    out_csv: str | Path = "results.csv",
    quick: bool = False,
    progress: bool = True,
    settings: Settings | None = None,
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
        Rows already in the CSV are skipped, so a rerun resumes an interrupted one.
    quick : bool
        Tiny data and few steps (:data:`QUICK_SETTINGS`), for tests; ignored if ``settings`` given.
    progress : bool
        Print one line per finished row to stderr.
    settings : Settings, optional

    Returns
    -------
    pandas.DataFrame
        All rows of the CSV for the requested grid (old and new), in :data:`CSV_COLUMNS` order.
    """
    pairs = expand_experiments(experiments)
    methods = _check_methods(methods)
    seeds = [int(s) for s in seeds]
    if settings is None:
        settings = QUICK_SETTINGS if quick else Settings()
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    done = {
        (str(r.experiment), str(r.setting), str(r.method), int(r.seed))
        for r in load_results(out_csv).itertuples(index=False)
    }
    for experiment, setting in pairs:
        for seed in seeds:
            todo = [
                m for m in methods if applicable(experiment, m) and (experiment, setting, m, seed) not in done
            ]
            if not todo:
                continue
            env = make_environment(experiment, setting, seed, settings)
            for method in todo:
                key = (experiment, setting, method, seed)
                t0 = time.perf_counter()
                fit = METHOD_FUNCTIONS[method](env, settings, seed)
                jax.block_until_ready(fit.params)
                seconds = time.perf_counter() - t0
                scores = evaluate(env, fit, settings)
                _save_params(_params_path(out_csv, key), fit)
                n_params = param_count(fit.params) + (3 if fit.learner is not None else 0)
                row = (
                    dict(zip(_KEY, key, strict=True))
                    | scores
                    | {"fit_seconds": seconds, "n_params": n_params}
                )
                _append_row(out_csv, row)
                done.add(key)
                if progress:
                    cov = scores["interval_coverage_90"]
                    print(
                        f"{experiment} {setting} {method:12s} seed {seed}: diff_mse {scores['diff_mse']:.3e} "
                        f"cfkl {scores['cfkl_params']:.3f}"
                        + ("" if math.isnan(cov) else f" cover90 {cov:.2f}")
                        + f" fit {seconds:.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    df = load_results(out_csv)
    wanted = {(e, s) for e, s in pairs}
    sel = [
        (e, s) in wanted and m in methods and int(sd) in seeds
        for e, s, m, sd in df[list(_KEY)].itertuples(index=False)
    ]
    return df[sel].reset_index(drop=True)
