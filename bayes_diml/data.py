"""Action trajectories of learning agents: validation, ragged episodes, file formats.

Vocabulary: ``M`` episodes, ``T`` steps, ``n`` agents, ``K_i`` actions of agent ``i``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayes_diml import labels as lbl
from bayes_diml.optional import require

__all__ = ["Trajectories", "DataError", "load_trajectories"]

_LONG_COLUMNS = ("episode", "t", "agent", "action")


class DataError(ValueError):
    """Invalid trajectory data or file (a ``ValueError`` naming the problem)."""


def _as_int_array(name: str, x: Any, *, allow_nan_padding: np.ndarray | None = None) -> np.ndarray:
    """Exact conversion to int64; raises on NaN, non-integral values, bools, objects."""
    arr = _as_array(name, x)
    if arr.dtype == bool:
        raise DataError(f"{name} must hold integers; got dtype bool.")
    if arr.dtype.kind in "iu":  # not issubdtype(integer), which admits timedelta64
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise DataError(f"{name} holds a value above 2**63 - 1 ({arr.max()}); not an integer index.")
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        checked = arr if allow_nan_padding is None else np.where(allow_nan_padding, arr, 0.0)
        bad = np.argwhere(~np.isfinite(checked))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise DataError(
                f"{name}{list(idx)} is {checked[idx]}: NaN/inf is not an action. "
                "Mark ragged episodes with `lengths` instead of NaN padding."
            )
        bad = np.argwhere(checked != np.round(checked))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise DataError(
                f"{name}{list(idx)} = {checked[idx]} is not an integer; actions are integer indices 0..K_i-1."
            )
        bad = np.argwhere(np.abs(checked) >= np.float64(2.0**63))  # float64: no float16 overflow
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise DataError(f"{name}{list(idx)} = {checked[idx]} is too large for an integer index.")
        return checked.astype(np.int64)
    raise DataError(f"{name} must hold integers; got dtype {arr.dtype}.")


def _as_array(name: str, x: Any) -> np.ndarray:
    """``np.asarray`` raising DataError (not a bare ValueError) on ragged nested sequences."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} must be a rectangular array; got {type(x).__name__} ({exc}).") from exc


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

    def __post_init__(self) -> None:
        raw = _as_array("actions", self.actions)
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
        k_int = _as_int_array("n_actions", k_arr)
        if np.any(k_int < 1):
            i = int(np.argmax(k_int < 1))
            raise DataError(f"n_actions[{i}] = {k_int[i]}; every agent needs at least 1 action.")
        n_actions = tuple(int(k) for k in k_int)

        # lengths
        if self.lengths is None:
            lengths = np.full(M, T, dtype=np.int64)
        else:
            lengths = _as_int_array("lengths", self.lengths)
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

        actions = _as_int_array("actions", raw, allow_nan_padding=valid3)
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
            pay = _as_array("payoffs", self.payoffs)
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
            labels = _as_int_array("subjects", self.subjects)
            if labels.shape != (M,):
                raise DataError(
                    f"subjects must have shape (M,) = ({M},), one per episode; got {labels.shape}."
                )
            subjects = np.unique(labels, return_inverse=True)[1].astype(np.int64)

        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "n_actions", n_actions)
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "payoffs", payoffs)
        object.__setattr__(self, "subjects", subjects)
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
        k = self.n_actions
        ks = f"({k[0]},) * {len(k)}" if len(k) > 4 and len(set(k)) == 1 else str(k)
        return (
            f"Trajectories(M={self.n_episodes}, T={self.n_steps}, n={self.n_agents}, "
            f"n_actions={ks}{ragged}{pay})"
        )

    # ------------------------------------------------------------- selection
    def subset(self, episodes: Sequence[int] | np.ndarray) -> Trajectories:
        """Return the episodes with the given indices, as new ``Trajectories``."""
        idx = _as_int_array("episodes", episodes)  # a bool mask is refused, not read as indices 0/1
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
        """Long-format ``pandas.DataFrame``: episode, t, agent, action[, payoff][, subject]; labels if any."""
        import pandas as pd

        m, t, i = np.nonzero(np.broadcast_to(self.step_mask[:, :, None], self.actions.shape))
        agent, action = lbl.label_columns(i, self.actions[m, t, i], self.agent_labels, self.action_labels)
        cols = {"episode": m, "t": t, "agent": agent, "action": action}
        if self.payoffs is not None:
            cols["payoff"] = self.payoffs[m, t, i]
        if self.subjects is not None:
            cols["subject"] = self.subjects[m]
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
    ):
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
        """
        missing = [c for c in _LONG_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {missing}; long format needs columns "
                f"{list(_LONG_COLUMNS)} and optionally 'payoff'. Found {list(frame.columns)}."
            )
        if len(frame) == 0:
            raise DataError(f"{source}: the table has no rows.")
        if lbl.is_label_column(frame["agent"]):
            codes, agent_labels = lbl.encode_column(source, frame["agent"], agent_labels, error=DataError)
            frame = frame.assign(agent=codes)
        for col in ("t", "agent"):
            vals = frame[col].to_numpy()
            if not np.issubdtype(vals.dtype, np.integer):
                as_int = (
                    _as_int_array(f"{source} column '{col}'", vals.astype(np.float64))
                    if (np.issubdtype(vals.dtype, np.floating))
                    else None
                )
                if as_int is None:
                    raise DataError(f"{source}: column '{col}' must hold integers; got {vals.dtype}.")
        if frame["episode"].isna().any():
            row = int(np.argmax(frame["episode"].isna().to_numpy()))
            raise DataError(f"{source}: column 'episode' is empty in row {row}; every row needs a label.")
        try:
            episodes, ep_index = np.unique(frame["episode"].to_numpy(), return_inverse=True)
        except TypeError as exc:
            raise DataError(f"{source}: episode labels must be mutually sortable ({exc}).") from exc
        episodes = episodes.tolist()  # plain labels in messages: 0, not np.int64(0)
        t = _as_int_array(f"{source} column 't'", frame["t"].to_numpy())
        agent = _as_int_array(f"{source} column 'agent'", frame["agent"].to_numpy())
        if t.min() < 0 or agent.min() < 0:
            raise DataError(f"{source}: columns 't' and 'agent' must be >= 0.")
        n = int(agent.max()) + 1
        M = len(episodes)
        lengths = np.zeros(M, dtype=np.int64)
        np.maximum.at(lengths, ep_index, t + 1)
        T = max(int(lengths.max()), 2)  # as in subset: all-length-1 episodes are padded to T = 2
        key = (ep_index * T + t) * n + agent
        uniq, counts = np.unique(key, return_counts=True)
        if np.any(counts > 1):
            k = int(uniq[np.argmax(counts > 1)])
            raise DataError(
                f"{source}: duplicate row for episode {episodes[k // (T * n)]!r}, "
                f"t={(k // n) % T}, agent={k % n}."
            )
        expected = int((lengths * n).sum())
        if len(uniq) != expected:
            present = np.zeros(M * T * n, dtype=bool)
            present[key] = True
            need = np.broadcast_to((np.arange(T)[None, :] < lengths[:, None])[:, :, None], (M, T, n))
            gap = np.argwhere(need & ~present.reshape(M, T, n))[0]
            raise DataError(
                f"{source}: no row for episode {episodes[gap[0]]!r}, t={gap[1]}, agent={gap[2]}; "
                "each episode needs every agent at every step 0..L-1."
            )
        act_col = frame["action"].to_numpy()
        if lbl.is_label_column(frame["action"]):
            act_col, action_labels = lbl.encode_column(
                source, frame["action"], action_labels, agent, DataError
            )
            n_actions = tuple(len(v) for v in action_labels) if n_actions is None else n_actions
        action_vals = _as_int_array(f"{source} column 'action' (row-wise)", act_col)
        actions = np.zeros((M, T, n), dtype=np.int64)
        actions[ep_index, t, agent] = action_vals
        payoffs = None
        if "payoff" in frame.columns:
            payoffs = np.full((M, T, n), np.nan)
            try:
                payoffs[ep_index, t, agent] = frame["payoff"].to_numpy(dtype=np.float64)
            except (ValueError, TypeError) as exc:
                raise DataError(f"{source}: column 'payoff' must be numeric ({exc}).") from exc
        if n_actions is None:
            k = np.zeros(n, dtype=np.int64)
            np.maximum.at(k, agent, action_vals + 1)
            n_actions = tuple(int(v) for v in k)
        subjects = None
        if "subject" in frame.columns:
            labels = _as_int_array(f"{source} column 'subject'", frame["subject"].to_numpy())
            subjects = np.full(M, -1, dtype=np.int64)
            subjects[ep_index] = labels
            if np.any(subjects[ep_index] != labels):
                row = int(np.argmax(subjects[ep_index] != labels))
                raise DataError(
                    f"{source}: episode {episodes[ep_index[row]]!r} has more than one subject (row {row}); "
                    "each episode belongs to one subject."
                )
        names = {"agent_labels": agent_labels, "action_labels": action_labels}
        return cls(actions, n_actions, lengths=lengths, payoffs=payoffs, subjects=subjects, **names)

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``.npz``, ``.csv`` or ``.parquet`` (by suffix; Parquet needs the ``parquet`` extra)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            arrays = {
                "actions": self.actions,
                "n_actions": np.asarray(self.n_actions),
                "lengths": self.lengths,
            }
            if self.payoffs is not None:
                arrays["payoffs"] = self.payoffs
            if self.subjects is not None:
                arrays["subjects"] = self.subjects
            arrays |= lbl.labels_to_npz(self.labels)
            with open(path, "wb") as f:  # np.savez(path) would append ".npz" to a ".NPZ" name
                np.savez(f, **arrays)
        elif suffix == ".csv":
            self.to_frame().to_csv(path, index=False)
        elif suffix in (".parquet", ".pq"):
            pa = require("pyarrow", "parquet", "Writing Parquet trajectory files")
            pq = require("pyarrow.parquet", "parquet", "Writing Parquet trajectory files")
            frame = self.to_frame()
            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            n_actions = list(self.n_actions)
            ours = {"n_actions": n_actions, "sha256": _frame_digest(frame, n_actions)}
            ours |= {k: v for k, v in self.labels.items() if v is not None}
            meta[b"bayes_diml"] = json.dumps(ours).encode()
            pq.write_table(table.replace_schema_metadata(meta), path)
        else:
            raise DataError(f"unknown trajectory file suffix {suffix!r}; use .npz, .csv or .parquet.")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, n_actions: Sequence[int] | None = None) -> Trajectories:
        """Read ``.npz``, ``.csv`` or ``.parquet`` written by :meth:`save` or by hand.

        ``n_actions`` overrides the file's (npz, parquet) or the inferred (csv) action counts.
        Parquet needs the ``parquet`` extra (pyarrow): ``pip install "bayes-diml[parquet]"``.
        """
        path = Path(path)
        if not path.exists():
            raise DataError(f"no such trajectory file: {path}")
        suffix = path.suffix.lower()
        if suffix == ".npz":
            try:
                # our own handle: np.load(path) leaves its file open when the archive is corrupt
                with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except Exception as exc:
                raise DataError(f"{path}: not a readable .npz file ({exc}).") from exc
            if "actions" not in arrays:
                raise DataError(
                    f"{path}: missing key 'actions'; an .npz needs keys 'actions' and "
                    f"'n_actions' (optional 'lengths', 'payoffs'). Found {sorted(arrays)}."
                )
            if n_actions is None:
                if "n_actions" not in arrays:
                    raise DataError(
                        f"{path}: missing key 'n_actions' (one K_i per agent); pass n_actions=..."
                    )
                n_actions = arrays["n_actions"]
            return _with_source(
                path,
                lambda: cls(
                    arrays["actions"],
                    n_actions,
                    lengths=arrays.get("lengths"),
                    payoffs=arrays.get("payoffs"),
                    subjects=arrays.get("subjects"),
                    **lbl.labels_from_npz(str(path), arrays, error=DataError),
                ),
            )
        if suffix == ".csv":
            import pandas as pd

            try:
                frame = pd.read_csv(path)
            except Exception as exc:
                raise DataError(f"{path}: not a readable CSV file ({exc}).") from exc
            return _with_source(path, lambda: cls.from_frame(frame, n_actions=n_actions, source=str(path)))
        if suffix in (".parquet", ".pq"):
            pq = require("pyarrow.parquet", "parquet", "Reading Parquet trajectory files")
            try:
                table = pq.read_table(path)
            except Exception as exc:
                raise DataError(f"{path}: not a readable Parquet file ({exc}).") from exc
            ours = _parquet_metadata(path, table.schema.metadata or {})
            try:
                frame = table.to_pandas()
            except Exception as exc:  # damaged pandas metadata in the schema
                raise DataError(f"{path}: not a readable Parquet file ({exc}).") from exc
            if "sha256" in ours and _frame_digest(frame, ours.get("n_actions")) != ours["sha256"]:
                raise DataError(
                    f"{path}: the table does not match the checksum bayes-diml wrote with it: the file is "
                    "corrupted or was edited (to use an edited table, write it without the 'bayes_diml' "
                    "schema metadata)."
                )
            if n_actions is None:
                n_actions = ours.get("n_actions")
            return _with_source(
                path, lambda: cls.from_frame(frame, n_actions, str(path), **lbl.label_fields(ours))
            )
        raise DataError(f"unknown trajectory file suffix {suffix!r}; use .npz, .csv or .parquet.")


def _with_source(path: Path, build):
    """Run ``build()``; a DataError that does not name ``path`` gets it as a prefix."""
    try:
        return build()
    except DataError as exc:
        if str(path) in str(exc):
            raise
        raise DataError(f"{path}: {exc}") from exc


def _frame_digest(frame, n_actions) -> str | None:
    """sha256 of a long-format table's columns and ``n_actions`` (None if a column is not numeric)."""
    import hashlib

    h = hashlib.sha256(json.dumps(n_actions).encode())
    for col in (*_LONG_COLUMNS, "payoff", "subject"):
        if col not in frame.columns:
            continue
        arr = np.ascontiguousarray(frame[col].to_numpy())
        if arr.dtype.kind not in "iuf":  # string labels
            arr = np.asarray(json.dumps([str(v) for v in arr]).encode())
        if arr.dtype.kind == "f":
            arr = np.where(np.isnan(arr), np.nan, arr)  # one NaN bit pattern (payloads may differ)
        h.update(f"{col}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _parquet_metadata(path: Path, meta: dict) -> dict:
    """Read the ``bayes_diml`` schema metadata of a Parquet file: ``{}`` or a dict (n_actions, sha256)."""
    raw = meta.get(b"bayes_diml")
    if raw is None:
        return {}
    try:
        ours = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: the 'bayes_diml' schema metadata is not valid JSON ({exc}); corrupted file?"
        ) from exc
    if not isinstance(ours, dict) or "n_actions" not in ours:
        raise DataError(f"{path}: the 'bayes_diml' schema metadata has no 'n_actions' entry; corrupted file?")
    if "sha256" in ours and not isinstance(ours["sha256"], str):
        raise DataError(f"{path}: the 'bayes_diml' schema metadata has a malformed checksum; corrupted file?")
    return ours


def load_trajectories(path: str | os.PathLike, n_actions: Sequence[int] | None = None) -> Trajectories:
    """Read trajectories from ``.npz``, ``.csv`` or ``.parquet``; see :meth:`Trajectories.load`."""
    return Trajectories.load(path, n_actions=n_actions)
