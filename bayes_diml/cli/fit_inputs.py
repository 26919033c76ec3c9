"""``bayes-diml fit``'s inputs: reading DATA, and the checks of the context options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bayes_diml.bandit import HBAYESDM_SUFFIXES, read_hbayesdm
from bayes_diml.cli.options import TRAJECTORY_SUFFIXES
from bayes_diml.data import load_trajectories
from bayes_diml.inference.auto import AUTO
from bayes_diml.models import subject_learner_fields
from bayes_diml.registry import parse_n_actions

__all__ = ["COVARIATE", "read_data", "parse_covariate_names", "group_subjects", "check_grouped"]

#: The --mechanism name of ``CovariateTabular`` (a tabular mechanism whose cells move with --covariates).
COVARIATE = "covariate"


def read_data(
    path: Path,
    data_format: str,
    n_actions: str | None,
    group_by: str | None = None,
    covariates: tuple[str, ...] | None = None,
) -> Any:
    """Trajectories from DATA: hBayesDM text (by --format or a .txt/.tsv suffix) or a trajectory file.

    ``group_by`` names the column of group labels of a CSV/Parquet file (``group`` for the
    groups an .npz stores); ``covariates`` the numeric columns of a CSV/Parquet file to read as
    covariates (an .npz keeps the covariates it stores; the mechanism picks its own by name).
    """
    suffix = path.suffix.lower()
    if data_format == "hbayesdm" or (data_format == "auto" and suffix in HBAYESDM_SUFFIXES):
        if group_by is not None or covariates is not None:
            flag = "--group-by" if group_by is not None else "--covariates"
            raise click.UsageError(f"{flag} needs trajectory data (.npz, .csv, .parquet), not hBayesDM text.")
        k = parse_n_actions(n_actions)
        if k is not None and len(k) != 1:
            message = f"hBayesDM data have one agent: give one K; got {n_actions}."
            raise click.BadParameter(message, param_hint="--n-actions")
        return read_hbayesdm(path, n_arms=None if k is None else k[0])
    if suffix not in TRAJECTORY_SUFFIXES:
        raise click.BadParameter(
            f"{path}: unknown suffix {path.suffix!r}; use .npz, .csv or .parquet, or .txt/.tsv "
            "(hBayesDM, or --format hbayesdm).",
            param_hint="DATA",
        )
    wanted = None if suffix == ".npz" else covariates
    return load_trajectories(path, n_actions=parse_n_actions(n_actions), group_by=group_by, covariates=wanted)


def parse_covariate_names(text: str | None, mechanism_name: str, group_by: str | None) -> Any:
    """Return the names of --covariates (``None`` without it), checked against the other options."""
    covariate = mechanism_name.lower() == COVARIATE
    if text is None:
        if covariate:
            raise click.UsageError(
                "--mechanism covariate needs --covariates NAME[,NAME...] (the covariate columns)."
            )
        return None
    names = tuple(c.strip() for c in text.split(","))
    if not names or not all(names) or len(set(names)) != len(names):
        raise click.BadParameter(
            f"expected distinct comma-separated column names; got {text!r}.", param_hint="--covariates"
        )
    if not covariate:
        raise click.UsageError(f"--covariates needs --mechanism covariate, not --mechanism {mechanism_name}.")
    if group_by is not None:
        raise click.UsageError("--covariates and --group-by do not combine: fit one of them.")
    return names


def group_subjects(data: Any, group_by: str | None, learner: Any) -> Any:
    """--learner-by-group: each group one subject, so infer_subject fields take one value per group."""
    if group_by is None:
        raise click.UsageError("--learner-by-group needs --group-by COLUMN.")
    if learner == AUTO:
        raise click.UsageError(
            "--learner-by-group does not apply to --learner-family auto (each family's parameters are "
            "shared by the groups); name one family, e.g. --learner-family logitq --alpha infer_subject."
        )
    if not subject_learner_fields(learner):
        raise click.UsageError(
            "--learner-by-group gives one value per group to the learner parameters set to "
            "infer_subject; set one, e.g. --alpha infer_subject."
        )
    return data.with_group_subjects()


def check_grouped(group_by: str | None, mechanism_name: str, method: str) -> None:
    """Refuse --group-by with what cannot fit by group: other mechanisms, a MAP-based method."""
    if group_by is None:
        return
    if mechanism_name.lower() != "tabular":
        raise click.UsageError(
            f"--group-by fits one payoff table per group: it needs --mechanism tabular, not {mechanism_name}."
        )
    if method in ("map", "laplace"):
        raise click.UsageError(
            f"--group-by needs --method nuts (got {method}): a contrast needs the between-group "
            "scale's uncertainty, which a mode does not give, so map and laplace cannot fit by group."
        )
