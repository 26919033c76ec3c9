"""Single-agent bandit data (hBayesDM-style): long-format tables in, one-agent ``Trajectories`` out.

Each subject (or session) is one episode of one agent; its trials are the steps; the arms
are the actions; the observed rewards are the agent's payoffs. The mechanism is one payoff
per arm (:func:`bandit_mechanism`); with observed rewards the fit identifies these payoffs,
the learner's beta and the reward noise. Two file formats: a CSV with a trial column
(:func:`load_bandit_csv`), and hBayesDM's own tab-separated files (``subjID``, ``choice``
numbered from 1, ``outcome``; trials in row order: :func:`read_hbayesdm`). See ``docs/bandit.md``.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .data import DataError, Trajectories
from .mechanisms import Linear

__all__ = [
    "bandit_from_frame",
    "load_bandit_csv",
    "read_hbayesdm",
    "HBAYESDM_SUFFIXES",
    "bandit_mechanism",
    "example_bandit_path",
    "example_hbayesdm_path",
    "EXAMPLE_TRUTH",
]

#: File suffixes read as hBayesDM data (tab-separated text) by the command line.
HBAYESDM_SUFFIXES = (".txt", ".tsv")
#: Subjects of ``datasets/bandit_example.csv`` and their trial counts in ``datasets/hbayesdm_example.txt``.
_HBAYESDM_EXAMPLE = {"s00": 30, "s01": 24, "s02": 30, "s03": 18, "s04": 27, "s05": 30}

#: Parameters that generated ``datasets/bandit_example.csv`` (``LogitQ`` learner, Normal rewards).
EXAMPLE_TRUTH = {
    "alpha": 0.2,
    "beta": 3.0,
    "eps": 0.05,
    "arm_means": (0.2, 0.5, 0.8),
    "reward_sd": 0.3,
    "n_subjects": 20,
    "n_trials": 50,
    "seed": 2026,
}


def bandit_mechanism(n_arms: int) -> Linear:
    """One payoff per arm, level included: ``u(a) = w[a]``, ``Linear`` with one-hot features.

    Choices identify only differences of ``w`` (and, with beta inferred, only up to scale);
    observed rewards identify ``w`` itself, beta and the reward noise. Unlike
    ``Tabular((K,))``, whose parameters are the centred payoffs only, this family can match
    rewards whose mean over the arms is not zero. Params: ``{"weights": float[K]}``.
    """
    if int(n_arms) < 2:
        raise ValueError(f"a bandit needs at least 2 arms; got n_arms = {n_arms}.")
    K = int(n_arms)
    return Linear(np.eye(K)[:, None, :])  # features float[K, 1, K]


def _plain(value: Any) -> Any:
    """Return a NumPy scalar as a plain Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _integer_column(frame: Any, col: str, source: str) -> np.ndarray:
    vals = frame[col].to_numpy()
    if frame[col].isna().any():
        row = int(np.argmax(frame[col].isna().to_numpy()))
        raise DataError(f"{source}: column '{col}' is empty in row {row}; every trial needs a value.")
    try:
        as_float = vals.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: column '{col}' must hold integers; got {vals.dtype} ({exc}).") from None
    if not np.all(as_float == np.round(as_float)):
        row = int(np.argmax(as_float != np.round(as_float)))
        raise DataError(f"{source}: column '{col}' must hold integers; row {row} has {_plain(vals[row])!r}.")
    return as_float.astype(np.int64)


def bandit_from_frame(
    frame: Any,
    *,
    subject: str = "subject",
    trial: str = "trial",
    choice: str = "choice",
    reward: str | None = "reward",
    n_arms: int | None = None,
    one_based: bool = False,
    source: str = "frame",
) -> Trajectories:
    """One-agent trajectories from a long-format table (one row per subject and trial).

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``subject`` (any sortable labels), ``trial`` (integers; their order within a
        subject is the order of play, gaps allowed), ``choice`` (the arm, ``0..K-1``, or
        ``1..K`` with ``one_based=True``) and optionally ``reward`` (numbers; empty =
        unobserved).
    subject, trial, choice, reward : str
        Column names (``reward=None``: no rewards).
    n_arms : int, optional
        K (default: highest arm + 1).
    one_based : bool
        Arms are numbered from 1 (hBayesDM's convention).

    Returns
    -------
    Trajectories with ``actions: int[M, T, 1]`` (M subjects, T the longest run of trials,
    ragged ``lengths``) and ``payoffs: float[M, T, 1]`` when rewards are given.
    """
    need = [subject, trial, choice] + ([reward] if reward is not None else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; bandit data need columns {need} "
            f"(rename them with subject=, trial=, choice=, reward=). Found {list(frame.columns)}."
        )
    if len(frame) == 0:
        raise DataError(f"{source}: the table has no rows.")
    if frame[subject].isna().any():
        row = int(np.argmax(frame[subject].isna().to_numpy()))
        raise DataError(f"{source}: column '{subject}' is empty in row {row}.")
    t = _integer_column(frame, trial, source)
    arms = _integer_column(frame, choice, source) - (1 if one_based else 0)
    if np.any(arms < 0):
        row = int(np.argmax(arms < 0))
        hint = " (arms numbered from 1? pass one_based=True)" if not one_based else ""
        lowest = "1" if one_based else "0"
        raise DataError(
            f"{source}: row {row}: {choice} = {_plain(frame[choice].iloc[row])!r} is below {lowest}{hint}."
        )
    K = int(arms.max()) + 1 if n_arms is None else int(n_arms)
    if K < 2:
        raise DataError(f"{source}: a bandit needs at least 2 arms; the data show K = {K} (pass n_arms).")
    if np.any(arms >= K):
        row = int(np.argmax(arms >= K))
        raise DataError(
            f"{source}: row {row}: {choice} = {_plain(frame[choice].iloc[row])!r} is not one of {K} arms."
        )
    if not one_based and n_arms is None and not np.any(arms == 0):
        warnings.warn(
            f"{source}: arm 0 is never chosen, so K = {K} counts an unused arm 0; if the arms are "
            "numbered from 1 (hBayesDM), pass one_based=True (CLI: --one-based).",
            UserWarning,
            stacklevel=2,
        )
    subjects, index = np.unique(frame[subject].to_numpy(), return_inverse=True)
    subjects = subjects.tolist()  # plain labels in messages
    order = np.lexsort((t, index))
    index, t_sorted, arms = index[order], t[order], arms[order]
    dup = np.flatnonzero((np.diff(index) == 0) & (np.diff(t_sorted) == 0))
    if dup.size:
        r = int(order[dup[0] + 1])
        raise DataError(
            f"{source}: subject {subjects[index[dup[0]]]!r} has trial {t_sorted[dup[0]]} twice (row {r})."
        )
    M = len(subjects)
    lengths = np.bincount(index, minlength=M)
    if lengths.max() < 2:
        raise DataError(
            f"{source}: every subject has a single trial; at least 2 are needed to learn anything."
        )
    T = int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    step = np.arange(len(index)) - starts[index]
    actions = np.zeros((M, T, 1), dtype=np.int64)
    actions[index, step, 0] = arms
    payoffs = None
    if reward is not None:
        try:
            r = frame[reward].to_numpy(dtype=np.float64)[order]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{source}: column '{reward}' must be numeric ({exc}).") from None
        if np.isinf(r).any():
            raise DataError(
                f"{source}: column '{reward}' has an infinite value; leave unobserved rewards empty."
            )
        payoffs = np.full((M, T, 1), np.nan)
        payoffs[index, step, 0] = r
    return Trajectories(actions, (K,), lengths=lengths, payoffs=payoffs)


def load_bandit_csv(path: str | os.PathLike, **options: Any) -> Trajectories:
    """Read bandit data from a CSV file in long format; options as :func:`bandit_from_frame`."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"no bandit data at {path}.")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from None
    return bandit_from_frame(frame, source=str(path), **options)


def read_hbayesdm(
    path: str | os.PathLike,
    *,
    n_arms: int | None = None,
    subject: str = "subjID",
    choice: str = "choice",
    outcome: str | None = "outcome",
    session: str | None = None,
) -> Trajectories:
    """Read a bandit data file as hBayesDM takes it: tab-separated, one row per trial.

    Parameters
    ----------
    path : path
        Tab-separated text with a header row and (at least) the columns ``subjID``, ``choice``
        and ``outcome``; other columns (``trial``, ``gain``, ...) are ignored. Each subject's
        trials are its rows, in the order of the file (hBayesDM's convention; subjects' rows
        need not be contiguous). Choices are numbered ``1..K`` (hBayesDM's bandit tasks).
    n_arms : int, optional
        K (default: the highest choice in the file).
    subject, choice, outcome : str
        Column names (``outcome=None``: rewards not read).
    session : str, optional
        A column of session (block, run) labels: each (subject, session) pair is then one
        episode, and ``subjects`` groups a subject's episodes (for ``"infer_subject"``).

    Returns
    -------
    Trajectories
        One agent: ``actions: int[M, T, 1]`` (the choice minus 1, so ``0..K-1``), M subjects
        (or subject-sessions) in sorted label order, T the most trials of an episode, ragged
        ``lengths``, ``payoffs: float[M, T, 1]``, the outcomes (empty or ``NA`` cells:
        unobserved), and with ``session``, ``subjects: int[M]``.

    Raises
    ------
    DataError
        No such file, an empty file, a missing column, a choice that is not a whole number
        in ``1..K``, a non-numeric outcome, a subject with fewer than 2 trials in all.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"no hBayesDM data at {path}.")
    try:
        frame = pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file is empty; hBayesDM data need a header row and one row per trial."
        ) from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable tab-separated file ({exc}).") from None
    need = [subject, choice] + ([outcome] if outcome is not None else []) + ([session] if session else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        hint = " (is it tab-separated?)" if len(frame.columns) == 1 else ""
        raise DataError(
            f"{path}: missing column(s) {missing}; hBayesDM bandit data need columns {need}{hint} "
            f"(other names: subject=, choice=, outcome=). Found {list(frame.columns)}."
        )
    trial, episode = "__trial__", subject
    if session is not None:
        if frame[[subject, session]].isna().any().any():
            raise DataError(f"{path}: columns '{subject}' and '{session}' need a label in every row.")
        episode = "__episode__"
        frame = frame.assign(**{episode: frame.groupby([subject, session], sort=True).ngroup()})
    frame = frame.assign(**{trial: frame.groupby(episode, sort=False, dropna=False).cumcount()})
    try:
        data = bandit_from_frame(
            frame,
            subject=episode,
            trial=trial,
            choice=choice,
            reward=outcome,
            n_arms=n_arms,
            one_based=True,
            source=str(path),
        )
    except DataError as exc:
        if "is below 1" in str(exc):
            raise DataError(
                f"{exc} hBayesDM numbers choices from 1 (0-based files: load_bandit_csv)."
            ) from None
        raise
    if session is None:
        return data
    labels = frame.groupby(episode, sort=True)[subject].first().to_numpy()  # episode -> subject label
    subjects = np.unique(labels, return_inverse=True)[1]
    return Trajectories(
        data.actions, data.n_actions, lengths=data.lengths, payoffs=data.payoffs, subjects=subjects
    )


def example_hbayesdm_path() -> Path:
    """Path of the shipped hBayesDM-format example: ``bayes_diml/datasets/hbayesdm_example.txt``.

    Six subjects of the example CSV (truth :data:`EXAMPLE_TRUTH`), 18 to 30 trials each; made
    by :func:`make_hbayesdm_example`.
    """
    return Path(str(resources.files("bayes_diml") / "datasets" / "hbayesdm_example.txt"))


def make_hbayesdm_example(path: str | os.PathLike) -> Path:
    """Write the shipped hBayesDM example from the shipped CSV (deterministic)."""
    import pandas as pd

    frame = pd.read_csv(example_bandit_path())
    keep = [g.head(n) for s, n in _HBAYESDM_EXAMPLE.items() for g in [frame[frame["subject"] == s]]]
    out = pd.concat(keep).rename(columns={"subject": "subjID", "reward": "outcome"})
    path = Path(path)
    out[["subjID", "trial", "choice", "outcome"]].to_csv(path, sep="\t", index=False)
    return path


def example_bandit_path() -> Path:
    """Path of the shipped example: ``bayes_diml/datasets/bandit_example.csv`` (see ``EXAMPLE_TRUTH``)."""
    return Path(str(resources.files("bayes_diml") / "datasets" / "bandit_example.csv"))


def make_example(path: str | os.PathLike) -> Path:
    """Regenerate the shipped example CSV from :data:`EXAMPLE_TRUTH` (deterministic)."""
    import jax.numpy as jnp
    import pandas as pd

    from .learners import LogitQ
    from .simulation import simulate

    tr = EXAMPLE_TRUTH
    K = len(tr["arm_means"])
    mech = bandit_mechanism(K)
    weights = jnp.asarray(tr["arm_means"], dtype=jnp.float32)
    sim = simulate(
        mech,
        {"weights": weights},
        LogitQ(tr["alpha"], tr["beta"], tr["eps"]),
        tr["n_subjects"],
        tr["n_trials"],
        tr["seed"],
    )
    rng = np.random.default_rng(tr["seed"])
    choices = sim.actions[:, :, 0]
    rewards = np.asarray(tr["arm_means"])[choices] + tr["reward_sd"] * rng.standard_normal(choices.shape)
    s, t = np.meshgrid(np.arange(tr["n_subjects"]), np.arange(tr["n_trials"]), indexing="ij")
    frame = pd.DataFrame(
        {
            "subject": [f"s{v:02d}" for v in s.ravel()],
            "trial": t.ravel() + 1,
            "choice": choices.ravel() + 1,
            "reward": np.round(rewards.ravel(), 4),
        }
    )
    path = Path(path)
    frame.to_csv(path, index=False)
    return path
