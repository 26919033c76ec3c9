"""Action trajectories of learning agents: validation, ragged episodes, file formats.

Vocabulary: ``M`` episodes, ``T`` steps, ``n`` agents, ``K_i`` actions of agent ``i``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayes_diml import labels as lbl
from bayes_diml.trajectory_checks import (
    DataError,
    as_array,
    as_int_array,
    check_covariate_names,
    group_labels,
)
from bayes_diml.trajectory_frames import (
    frame_fields,
    npz_arrays,
    read_csv,
    read_npz,
    read_parquet,
    with_source,
    write_parquet,
)

__all__ = ["Trajectories", "DataError", "load_trajectories"]


@dataclass(frozen=True, eq=False)
class Trajectories:
    """Joint actions of ``n`` learning agents over ``M`` episodes of up to ``T`` steps.

    Parameters
    ----------
    actions : int[M, T, n]
        ``actions[m, t, i]`` is agent ``i``'s action at step ``t`` of episode ``m``, in
        ``0..K_i-1``. Entries past an episode's length are padding: never validated,
        never scored, and stored as 0.
    n_actions : sequence of int, length n
        ``K_i``, the number of actions of each agent (agents may differ).
    lengths : int[M], optional
        Number of valid steps of each episode (``1 <= lengths[m] <= T``); default all ``T``.
    payoffs : float[M, T, n], optional
        Observed own payoff of each agent at each step; NaN where unobserved.
    subjects : int[M], optional
        Which subject played each episode (any integer labels, stored as ``0..S-1`` in order of
        first label value), for per-subject learner parameters (``"infer_subject"``); default:
        every episode its own subject.
    agent_labels : sequence of str, length n, optional
        Names of the agents (agent ``i`` is ``agent_labels[i]``); reports use them.
    action_labels : sequence of str, or n sequences of str, optional
        Names of the actions (action ``k`` of agent ``i`` is ``action_labels[i][k]``), stored as
        n tuples: one sequence of K labels shared by every agent, or one of ``K_i`` per agent.
    groups : str[M], optional
        A label per episode (str, or ints turned into their str), such as the arm of an
        experiment; stored as a NumPy unicode array. See :attr:`group_names`, :meth:`episodes_of`.
    covariates : float[M, C] or float[M], optional
        Finite episode-level covariates (a 1-d array is one covariate), stored as float64.
    covariate_names : sequence of str, length C, optional
        Distinct names of the covariates; default ``("x0", ..., "x{C-1}")`` with covariates.

    Examples
    --------
    >>> import numpy as np
    >>> data = Trajectories(np.zeros((2, 5, 3), int), n_actions=(2, 2, 3))
    >>> data.n_episodes, data.n_steps, data.n_agents
    (2, 5, 3)
    """

    actions: np.ndarray
    n_actions: tuple[int, ...]
    lengths: np.ndarray | None = None
    payoffs: np.ndarray | None = None
    subjects: np.ndarray | None = None
    agent_labels: tuple[str, ...] | None = None
    action_labels: tuple[tuple[str, ...], ...] | None = None
    groups: np.ndarray | None = None
    covariates: np.ndarray | None = None
    covariate_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        raw = as_array("actions", self.actions)
        if raw.dtype == object:
            raise DataError("actions must be a numeric array of shape (M, T, n); got dtype object.")
        if raw.ndim != 3:
            hint = " For one episode use actions[None]." if raw.ndim == 2 else ""
            raise DataError(
                f"actions must have shape (M, T, n) = (episodes, steps, agents); got shape {raw.shape}.{hint}"
            )
        M, T, n = raw.shape
        if M == 0 or n == 0:
            raise DataError(f"actions is empty: shape {raw.shape} has no episodes or no agents.")
        if T < 2:
            raise DataError(
                f"actions has T = {T} steps; at least 2 are needed (the first action of an "
                "episode is not scored)."
            )

        # n_actions
        try:
            k_arr = np.asarray(self.n_actions)
        except Exception as exc:  # pragma: no cover - defensive
            raise DataError(f"n_actions must be a sequence of ints; got {self.n_actions!r}") from exc
        if k_arr.ndim == 0:
            raise DataError(
                f"n_actions must be a sequence of n = {n} ints (one K_i per agent); "
                f"got the scalar {self.n_actions!r}. Use (K,) * n for equal action sets."
            )
        if k_arr.ndim != 1:
            raise DataError(
                f"n_actions must be a 1-d sequence of n = {n} ints (one K_i per agent); "
                f"got shape {k_arr.shape}."
            )
        if k_arr.shape[0] != n:
            raise DataError(
                f"n_actions has length {k_arr.size} but actions has n = {n} agents "
                f"(shape {raw.shape}); give one K_i per agent."
            )
        k_int = as_int_array("n_actions", k_arr)
        if np.any(k_int < 1):
            i = int(np.argmax(k_int < 1))
            raise DataError(f"n_actions[{i}] = {k_int[i]}; every agent needs at least 1 action.")
        n_actions = tuple(int(k) for k in k_int)

        # lengths
        if self.lengths is None:
            lengths = np.full(M, T, dtype=np.int64)
        else:
            lengths = as_int_array("lengths", self.lengths)
            if lengths.shape != (M,):
                raise DataError(
                    f"lengths must have shape (M,) = ({M},), one per episode; got {lengths.shape}."
                )
            bad = np.flatnonzero((lengths < 1) | (lengths > T))
            if bad.size:
                m = int(bad[0])
                raise DataError(
                    f"lengths[{m}] = {lengths[m]} is out of range: episode lengths must lie in 1..T = 1..{T}."
                )
        valid = np.arange(T)[None, :] < lengths[:, None]  # bool[M, T]
        valid3 = np.broadcast_to(valid[:, :, None], raw.shape)

        actions = as_int_array("actions", raw, allow_nan_padding=valid3)
        actions = np.where(valid3, actions, 0)
        bad = np.argwhere(actions < 0)
        if bad.size:
            m, t, i = (int(v) for v in bad[0])
            raise DataError(f"actions[{m}, {t}, {i}] = {actions[m, t, i]} is negative; actions are 0..K_i-1.")
        bad = np.argwhere(actions >= np.asarray(n_actions)[None, None, :])
        if bad.size:
            m, t, i = (int(v) for v in bad[0])
            raise DataError(
                f"actions[{m}, {t}, {i}] = {actions[m, t, i]} is not an action of agent {i} "
                f"(expected 0..{n_actions[i] - 1}, since n_actions[{i}] = {n_actions[i]})."
            )

        payoffs = None
        if self.payoffs is not None:
            pay = as_array("payoffs", self.payoffs)
            if pay.dtype.kind not in "fiu":
                raise DataError(f"payoffs must be a float array; got dtype {pay.dtype}.")
            if pay.shape != raw.shape:
                raise DataError(
                    f"payoffs must have the shape of actions (M, T, n) = {raw.shape}; got {pay.shape}."
                )
            pay = pay.astype(np.float64)
            bad = np.argwhere(np.isinf(pay) & valid3)
            if bad.size:
                m, t, i = (int(v) for v in bad[0])
                raise DataError(f"payoffs[{m}, {t}, {i}] is infinite; use NaN for an unobserved payoff.")
            payoffs = np.where(valid3, pay, np.nan)

        subjects = None
        if self.subjects is not None:
            labels = as_int_array("subjects", self.subjects)
            if labels.shape != (M,):
                raise DataError(
                    f"subjects must have shape (M,) = ({M},), one per episode; got {labels.shape}."
                )
            subjects = np.unique(labels, return_inverse=True)[1].astype(np.int64)

        groups = None
        if self.groups is not None:
            groups = group_labels("groups", self.groups)
            if groups.shape != (M,):
                raise DataError(f"groups must have shape (M,) = ({M},), one per episode; got {groups.shape}.")

        covariates, covariate_names = None, None
        if self.covariates is not None:
            cov = as_array("covariates", self.covariates)
            if cov.dtype.kind not in "biuf":
                raise DataError(f"covariates must be a float array; got dtype {cov.dtype}.")
            if cov.ndim == 1:
                cov = cov[:, None]
            if cov.ndim != 2 or cov.shape[0] != M or cov.shape[1] == 0:
                raise DataError(
                    f"covariates must have shape (M, C) = ({M}, C) with C >= 1 (or (M,) for one "
                    f"covariate); got {as_array('covariates', self.covariates).shape}."
                )
            C = cov.shape[1]
            names = self.covariate_names
            covariate_names = (
                tuple(f"x{c}" for c in range(C)) if names is None else check_covariate_names(names, C)
            )
            covariates = cov.astype(np.float64)
            bad = np.argwhere(~np.isfinite(covariates))
            if bad.size:
                m, c = (int(v) for v in bad[0])
                raise DataError(
                    f"covariates[{m}, {c}] is {covariates[m, c]} (episode {m}, column "
                    f"{covariate_names[c]!r}); covariates must be finite."
                )
        elif self.covariate_names is not None:
            raise DataError("covariate_names is given without covariates; pass covariates=... too.")

        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "n_actions", n_actions)
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "payoffs", payoffs)
        object.__setattr__(self, "subjects", subjects)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "covariates", covariates)
        object.__setattr__(self, "covariate_names", covariate_names)
        with lbl.label_errors_as(DataError):
            object.__setattr__(self, "agent_labels", lbl.check_agent_labels(self.agent_labels, n))
            object.__setattr__(self, "action_labels", lbl.check_action_labels(self.action_labels, n_actions))

    # ------------------------------------------------------------------ shapes
    @property
    def n_episodes(self) -> int:
        """M, the number of episodes."""
        return int(self.actions.shape[0])

    @property
    def n_steps(self) -> int:
        """T, the padded number of steps."""
        return int(self.actions.shape[1])

    @property
    def n_agents(self) -> int:
        """N, the number of agents."""
        return int(self.actions.shape[2])

    @property
    def step_mask(self) -> np.ndarray:
        """bool[M, T]: True on real (non-padding) steps."""
        return np.arange(self.n_steps)[None, :] < self.lengths[:, None]

    @property
    def scored_mask(self) -> np.ndarray:
        """bool[M, T-1]: True where the action at step t+1 is scored (t+1 < length)."""
        return self.step_mask[:, 1:]

    @property
    def n_scored(self) -> int:
        """Number of scored (episode, step, agent) terms of the likelihood."""
        return int(self.scored_mask.sum()) * self.n_agents

    @property
    def subject_index(self) -> np.ndarray:
        """int[M]: the subject (``0..S-1``) of each episode; each its own when ``subjects`` is None."""
        return np.arange(self.n_episodes) if self.subjects is None else self.subjects

    @property
    def n_subjects(self) -> int:
        """S, the number of subjects (M when every episode is its own)."""
        return self.n_episodes if self.subjects is None else int(self.subjects.max()) + 1

    @property
    def group_names(self) -> tuple[str, ...]:
        """The distinct group labels, sorted; ``()`` when there are no groups."""
        return () if self.groups is None else tuple(np.unique(self.groups).tolist())

    @property
    def n_groups(self) -> int:
        """The number of distinct groups (0 when there are none)."""
        return len(self.group_names)

    @property
    def group_index(self) -> np.ndarray:
        """int[M]: the group of each episode, as an index into :attr:`group_names`."""
        if self.groups is None:
            raise DataError("these trajectories have no groups; pass groups=... (one label per episode).")
        return np.unique(self.groups, return_inverse=True)[1].astype(np.int64)

    def with_group_subjects(self) -> Trajectories:
        """Return these trajectories with each group as one subject (``subjects = group_index``).

        Learner fields set to ``"infer_subject"`` then take one value per group, drawn from a
        population (docs/groups.md, "Learners that differ by group").
        """
        return dataclasses.replace(self, subjects=self.group_index)

    @property
    def n_covariates(self) -> int:
        """C, the number of episode covariates (0 when there are none)."""
        return 0 if self.covariates is None else int(self.covariates.shape[1])

    def episodes_of(self, group: str) -> np.ndarray:
        """int[k]: the indices of the episodes of group ``group`` (an int label is read as its str)."""
        if self.groups is None:
            raise DataError("these trajectories have no groups; pass groups=... (one label per episode).")
        key = (
            str(int(group)) if isinstance(group, int | np.integer) and not isinstance(group, bool) else group
        )
        if key not in self.group_names:
            raise DataError(f"unknown group {group!r}; the groups are {list(self.group_names)}.")
        return np.flatnonzero(self.groups == key)

    @property
    def has_payoffs(self) -> bool:
        """Whether any payoff is observed."""
        return self.payoffs is not None and bool(np.isfinite(self.payoffs).any())

    @property
    def labels(self) -> dict[str, Any]:
        """``{"agent_labels": ..., "action_labels": ...}`` (each None when absent), for copies."""
        return {"agent_labels": self.agent_labels, "action_labels": self.action_labels}

    def __repr__(self) -> str:
        ragged = "" if np.all(self.lengths == self.n_steps) else ", ragged"
        pay = ", payoffs" if self.has_payoffs else ""
        pay += f", {self.n_subjects} subjects" if self.subjects is not None else ""
        pay += f", {self.n_groups} groups" if self.groups is not None else ""
        pay += f", {self.n_covariates} covariates" if self.covariates is not None else ""
        k = self.n_actions
        ks = f"({k[0]},) * {len(k)}" if len(k) > 4 and len(set(k)) == 1 else str(k)
        return (
            f"Trajectories(M={self.n_episodes}, T={self.n_steps}, n={self.n_agents}, "
            f"n_actions={ks}{ragged}{pay})"
        )

    # ------------------------------------------------------------- selection
    def subset(self, episodes: Sequence[int] | np.ndarray) -> Trajectories:
        """Return the episodes with the given indices, as new ``Trajectories``."""
        idx = as_int_array("episodes", episodes)  # a bool mask is refused, not read as indices 0/1
        if idx.ndim != 1 or idx.size == 0:
            raise DataError("subset needs a non-empty 1-d sequence of episode indices.")
        if idx.min() < -self.n_episodes or idx.max() >= self.n_episodes:
            raise DataError(f"episode index out of range 0..{self.n_episodes - 1}: {idx.tolist()}")
        lengths = self.lengths[idx]
        T = max(int(lengths.max()), 2)  # episodes of length 1 stay valid: T >= 2 is required
        return Trajectories(
            self.actions[idx, :T],
            self.n_actions,
            lengths=lengths,
            payoffs=None if self.payoffs is None else self.payoffs[idx, :T],
            subjects=None if self.subjects is None else self.subjects[idx],
            **self.labels,
            **self._context(idx),
        )

    def _context(self, idx: np.ndarray | slice = slice(None)) -> dict[str, Any]:
        """Return the groups, covariates and covariate_names of episodes ``idx``, as keywords."""
        return {
            "groups": None if self.groups is None else self.groups[idx],
            "covariates": None if self.covariates is None else self.covariates[idx],
            "covariate_names": self.covariate_names,
        }

    @classmethod
    def concat(cls, parts: Sequence[Trajectories], groups: Sequence[str] | None = None) -> Trajectories:
        """Stack the episodes of several data sets, in order (e.g. the two arms of an experiment).

        Parameters
        ----------
        parts : sequence of Trajectories
            All with the same ``n_actions``. ``T`` becomes the longest ``n_steps`` (shorter
            parts are padded; ``lengths`` kept). Payoffs, subjects, groups and covariates must be
            present in every part or in none (subjects are dropped unless all parts have them;
            those of different parts are taken as different subjects). Agent and action labels
            are kept where all parts agree, else dropped.
        groups : sequence of str, length len(parts), optional
            One label per part: every episode of ``parts[j]`` gets ``groups[j]`` (replacing the
            parts' own groups). Default: the parts' own groups.

        Returns
        -------
        Trajectories
            ``M = sum of the parts' M`` episodes.
        """
        if isinstance(parts, Trajectories) or not isinstance(parts, Sequence) or not len(parts):
            raise DataError("concat needs a non-empty sequence of Trajectories.")
        parts = list(parts)
        for j, p in enumerate(parts):
            if not isinstance(p, Trajectories):
                raise DataError(f"concat: parts[{j}] is a {type(p).__name__}, not Trajectories.")
            if p.n_actions != parts[0].n_actions:
                raise DataError(
                    f"concat: parts[{j}] has n_actions = {p.n_actions} but parts[0] has "
                    f"{parts[0].n_actions}; "
                    "all parts need the same agents and actions."
                )

        def _all_or_none(what: str, have: list[bool]) -> bool:
            if any(have) and not all(have):
                raise DataError(
                    f"concat: parts {[j for j, h in enumerate(have) if h]} have {what} but parts "
                    f"{[j for j, h in enumerate(have) if not h]} do not; give {what} to all parts or none."
                )
            return all(have)

        T = max(p.n_steps for p in parts)
        pad = [((0, 0), (0, T - p.n_steps), (0, 0)) for p in parts]
        actions = np.concatenate([np.pad(p.actions, w) for p, w in zip(parts, pad, strict=True)])
        payoffs = None
        if _all_or_none("payoffs", [p.payoffs is not None for p in parts]):
            payoffs = np.concatenate(
                [np.pad(p.payoffs, w, constant_values=np.nan) for p, w in zip(parts, pad, strict=True)]
            )
        subjects = None
        if all(p.subjects is not None for p in parts):
            offsets = np.cumsum([0] + [p.n_subjects for p in parts[:-1]])
            subjects = np.concatenate([p.subjects + o for p, o in zip(parts, offsets, strict=True)])
        if groups is not None:
            if isinstance(groups, str) or not isinstance(groups, Sequence | np.ndarray):
                raise DataError(f"concat: groups must be a sequence of one label per part; got {groups!r}.")
            if len(groups) != len(parts):
                raise DataError(
                    f"concat: groups has {len(groups)} labels for {len(parts)} parts; give one per part."
                )
            labels = group_labels("groups", list(groups))
            group_arr = np.repeat(labels, [p.n_episodes for p in parts])
        elif _all_or_none("groups", [p.groups is not None for p in parts]):
            group_arr = np.concatenate([p.groups for p in parts])
        else:
            group_arr = None
        covariates, names = None, None
        if _all_or_none("covariates", [p.covariates is not None for p in parts]):
            names = parts[0].covariate_names
            for j, p in enumerate(parts):
                if p.covariate_names != names:
                    raise DataError(
                        f"concat: parts[{j}] has covariates {list(p.covariate_names)} but parts[0] has "
                        f"{list(names)}; all parts need the same covariates."
                    )
            covariates = np.concatenate([p.covariates for p in parts])
        same = {k: v for k, v in parts[0].labels.items() if all(p.labels[k] == v for p in parts)}
        return cls(
            actions,
            parts[0].n_actions,
            lengths=np.concatenate([p.lengths for p in parts]),
            payoffs=payoffs,
            subjects=subjects,
            agent_labels=same.get("agent_labels"),
            action_labels=same.get("action_labels"),
            groups=group_arr,
            covariates=covariates,
            covariate_names=names,
        )

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[Trajectories, Trajectories]:
        """Split by episode into ``(train, test)``.

        A seeded permutation of the episodes; the test set holds
        ``round(test_fraction * M)`` episodes (at least 1 and at most M-1).
        """
        if not 0.0 < float(test_fraction) < 1.0:
            raise DataError(f"test_fraction must lie in (0, 1); got {test_fraction}.")
        M = self.n_episodes
        if M < 2:
            raise DataError("split needs at least 2 episodes.")
        n_test = min(max(int(round(test_fraction * M)), 1), M - 1)
        perm = np.random.default_rng(seed).permutation(M)
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))

    # ---------------------------------------------------------------- long format
    def to_frame(self):
        """Long-format ``pandas.DataFrame``: episode, t, agent, action[, payoff][, subject][, group].

        Labels replace integer agents/actions if any; one more column per covariate (by name).
        """
        import pandas as pd

        m, t, i = np.nonzero(np.broadcast_to(self.step_mask[:, :, None], self.actions.shape))
        agent, action = lbl.label_columns(i, self.actions[m, t, i], self.agent_labels, self.action_labels)
        cols = {"episode": m, "t": t, "agent": agent, "action": action}
        if self.payoffs is not None:
            cols["payoff"] = self.payoffs[m, t, i]
        if self.subjects is not None:
            cols["subject"] = self.subjects[m]
        if self.groups is not None:
            cols["group"] = self.groups[m].astype(object)
        for c, name in enumerate(self.covariate_names or ()):
            cols[name] = self.covariates[m, c]
        return pd.DataFrame(cols)

    @classmethod
    def from_frame(
        cls,
        frame,
        n_actions: Sequence[int] | None = None,
        source: str = "frame",
        *,
        agent_labels: Sequence[str] | None = None,
        action_labels: Sequence[Any] | None = None,
        group_by: str | None = None,
        covariates: Sequence[str] | None = None,
    ) -> Trajectories:
        """Build from a long-format table (columns episode, t, agent, action[, payoff][, subject]).

        Episodes may be ragged. ``episode`` labels may be any sortable values; ``t`` must
        run 0..L-1 within each episode and ``agent`` 0..n-1, with every agent present at
        every step. Without ``n_actions``, ``K_i`` is inferred as ``max action + 1`` of
        agent ``i`` (pass ``n_actions`` when an agent's top action may be unplayed). An integer
        ``subject`` column, constant within each episode, gives ``subjects``.

        ``agent`` and ``action`` may instead hold string labels, kept as ``agent_labels`` and
        ``action_labels``: codes follow ``agent_labels`` / ``action_labels`` when given, else
        agents in order of first appearance and each agent's actions sorted (``K_i`` the number of
        its distinct labels). Parquet and npz files store the labels' order; a CSV does not.

        ``group_by`` names a column of group labels (default: the column ``group`` if there is
        one) and ``covariates`` numeric covariate columns; each must be constant within every
        episode, and gives ``groups`` / ``covariates`` (named after the columns).
        """
        fields = frame_fields(
            frame,
            n_actions,
            source,
            agent_labels=agent_labels,
            action_labels=action_labels,
            group_by=group_by,
            covariates=covariates,
        )
        return cls(**fields)

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``.npz``, ``.csv`` or ``.parquet`` (by suffix; Parquet needs the ``parquet`` extra)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            fields = {"payoffs": self.payoffs, "subjects": self.subjects, "labels": self.labels}
            fields |= self._context()
            arrays = npz_arrays(self.actions, self.n_actions, self.lengths, **fields)
            with open(path, "wb") as f:  # np.savez(path) would append ".npz" to a ".NPZ" name
                np.savez(f, **arrays)
        elif suffix == ".csv":
            self.to_frame().to_csv(path, index=False)
        elif suffix in (".parquet", ".pq"):
            write_parquet(path, self.to_frame(), self.n_actions, self.covariate_names, self.labels)
        else:
            raise DataError(f"unknown trajectory file suffix {suffix!r}; use .npz, .csv or .parquet.")
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        n_actions: Sequence[int] | None = None,
        *,
        group_by: str | None = None,
        covariates: Sequence[str] | None = None,
    ) -> Trajectories:
        """Read ``.npz``, ``.csv`` or ``.parquet`` written by :meth:`save` or by hand.

        ``n_actions`` overrides the file's (npz, parquet) or the inferred (csv) action counts.
        ``group_by`` and ``covariates`` name the group and covariate columns of a CSV or Parquet
        table (see :meth:`from_frame`; a Parquet file written by :meth:`save` records its
        covariates, a CSV does not). An npz stores its own: they must be None or match it.
        Parquet needs the ``parquet`` extra (pyarrow): ``pip install "bayes-diml[parquet]"``.
        """
        path = Path(path)
        if not path.exists():
            raise DataError(f"no such trajectory file: {path}")
        suffix = path.suffix.lower()
        options = {"group_by": group_by, "covariates": covariates}
        if suffix == ".npz":
            fields = read_npz(path, n_actions, **options)
            return with_source(path, lambda: cls(**fields))
        if suffix == ".csv":
            keywords = read_csv(path, n_actions, **options)
            return with_source(path, lambda: cls.from_frame(**keywords))
        if suffix in (".parquet", ".pq"):
            keywords = read_parquet(path, n_actions, **options)
            return with_source(path, lambda: cls.from_frame(**keywords))
        raise DataError(f"unknown trajectory file suffix {suffix!r}; use .npz, .csv or .parquet.")


def load_trajectories(
    path: str | os.PathLike,
    n_actions: Sequence[int] | None = None,
    *,
    group_by: str | None = None,
    covariates: Sequence[str] | None = None,
) -> Trajectories:
    """Read trajectories from ``.npz``, ``.csv`` or ``.parquet``; see :meth:`Trajectories.load`."""
    return Trajectories.load(path, n_actions=n_actions, group_by=group_by, covariates=covariates)
