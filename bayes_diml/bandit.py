"""Single-agent bandit data (hBayesDM-style): long-format CSV in, one-agent ``Trajectories`` out.

Each subject (or session) is one episode of one agent; its trials are the steps; the arms
are the actions; the observed rewards are the agent's payoffs. The mechanism is one payoff
per arm (:func:`bandit_mechanism`); with observed rewards the fit identifies these payoffs,
the learner's beta and the reward noise. See ``docs/bandit.md``.
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

__all__ = ["bandit_from_frame", "load_bandit_csv", "bandit_mechanism", "example_bandit_path", "EXAMPLE_TRUTH"]

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
