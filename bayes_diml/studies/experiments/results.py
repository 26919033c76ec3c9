"""The suite's results on disk: one CSV row per fit, and the fitted params next to it (``.npz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_diml.learners import parameter_names
from bayes_diml.mechanisms import flatten_params
from bayes_diml.studies.experiments.fitting import MethodFit
from bayes_diml.studies.experiments.settings import CSV_COLUMNS

__all__ = ["params_path", "save_params", "load_params", "load_results"]


def _params_dir(out_csv: Path) -> Path:
    """Return the folder of a results CSV's saved fits: ``<stem>_params`` beside it."""
    return out_csv.parent / f"{out_csv.stem}_params"


def params_path(out_csv: str | Path, key: tuple[str, str, str, int]) -> Path:
    """Return where :func:`run_paper` saves a row's fitted params (read them with :func:`load_params`).

    ``key`` is the row's ``(experiment, setting, method, seed)``, e.g. ``("e7", "300x40", "diml", 0)``;
    the file is ``<stem>_params/<experiment>_<setting>_<method>_seed<seed>.npz`` beside ``out_csv``.
    """
    out_csv = Path(out_csv)
    experiment, setting, method, seed = key
    return _params_dir(out_csv) / f"{experiment}_{setting}_{method}_seed{seed}.npz"


def save_params(path: str | Path, fit: MethodFit) -> None:
    """Write one fit as :func:`load_params` reads it: ``params.<path>``, ``learner.*``, ``info.*``.

    The parent folder is created; an existing file is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"params.{k}": np.asarray(v) for k, v in flatten_params(fit.params).items()}
    arrays["mechanism"] = np.asarray(type(fit.mechanism).__name__)
    if fit.learner is not None:
        for name in parameter_names(fit.learner):
            arrays[f"learner.{name}"] = np.asarray(getattr(fit.learner, name))
    for name, value in fit.info.items():
        arrays[f"info.{name}"] = np.asarray(value)
    np.savez(path, **arrays)


def load_params(path: str | Path) -> dict[str, np.ndarray]:
    """Read the arrays of one saved fit: ``params.<path>`` (flattened params), ``learner.*``, ``info.*``."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def load_results(path: str | Path) -> pd.DataFrame:
    """Read the results CSV as a DataFrame with :data:`CSV_COLUMNS` (empty if there is no file)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(CSV_COLUMNS))
    df = pd.read_csv(path, dtype={"setting": str})
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not a results CSV: columns {missing} are missing.")
    return df[list(CSV_COLUMNS)]


def _append_row(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    pd.DataFrame([row], columns=list(CSV_COLUMNS)).to_csv(path, mode="a", header=new, index=False)
