"""Long-format tables and trajectory files: a long table's episodes, npz and Parquet contents, checksums."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayes_diml import labels as lbl
from bayes_diml.optional import require
from bayes_diml.trajectory_checks import LONG_COLUMNS, DataError, as_int_array, group_labels

__all__ = [
    "frame_fields",
    "npz_arrays",
    "read_npz",
    "read_csv",
    "write_parquet",
    "read_parquet",
    "with_source",
    "frame_digest",
    "parquet_metadata",
    "context_columns",
    "episode_context",
    "npz_context",
]


def frame_fields(
    frame,
    n_actions: Sequence[int] | None = None,
    source: str = "frame",
    *,
    agent_labels: Sequence[str] | None = None,
    action_labels: Sequence[Any] | None = None,
    group_by: str | None = None,
    covariates: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Read a long-format table into the keywords of ``Trajectories`` (see ``Trajectories.from_frame``).

    Returns
    -------
    dict
        ``actions`` (int[M, T, n]), ``n_actions``, ``lengths`` (int[M]), ``payoffs`` (float[M, T, n]
        or None), ``subjects`` (int[M] or None), ``agent_labels``, ``action_labels`` and, where the
        table has them, ``groups`` (str[M]), ``covariates`` (float[M, C]) and ``covariate_names``.
    """
    context = context_columns(source, frame, group_by, covariates)
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; long format needs columns "
            f"{list(LONG_COLUMNS)} and optionally 'payoff'. Found {list(frame.columns)}."
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
                as_int_array(f"{source} column '{col}'", vals.astype(np.float64))
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
    t = as_int_array(f"{source} column 't'", frame["t"].to_numpy())
    agent = as_int_array(f"{source} column 'agent'", frame["agent"].to_numpy())
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
        act_col, action_labels = lbl.encode_column(source, frame["action"], action_labels, agent, DataError)
        n_actions = tuple(len(v) for v in action_labels) if n_actions is None else n_actions
    action_vals = as_int_array(f"{source} column 'action' (row-wise)", act_col)
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
        labels = as_int_array(f"{source} column 'subject'", frame["subject"].to_numpy())
        subjects = np.full(M, -1, dtype=np.int64)
        subjects[ep_index] = labels
        if np.any(subjects[ep_index] != labels):
            row = int(np.argmax(subjects[ep_index] != labels))
            raise DataError(
                f"{source}: episode {episodes[ep_index[row]]!r} has more than one subject (row {row}); "
                "each episode belongs to one subject."
            )
    names = {"agent_labels": agent_labels, "action_labels": action_labels}
    names |= episode_context(source, frame, context, ep_index, episodes)
    fields = {"actions": actions, "n_actions": n_actions, "lengths": lengths, "payoffs": payoffs}
    return fields | {"subjects": subjects} | names


def with_source(path: Path, build: Any) -> Any:
    """Run ``build()``; a DataError that does not name ``path`` gets it as a prefix."""
    try:
        return build()
    except DataError as exc:
        if str(path) in str(exc):
            raise
        raise DataError(f"{path}: {exc}") from exc


def npz_arrays(
    actions: np.ndarray,
    n_actions: Sequence[int],
    lengths: np.ndarray,
    *,
    payoffs: np.ndarray | None = None,
    subjects: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] | None = None,
    labels: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Return the ``.npz`` entries of validated trajectory fields (no pickles: labels as JSON)."""
    arrays = {"actions": actions, "n_actions": np.asarray(n_actions), "lengths": lengths}
    if payoffs is not None:
        arrays["payoffs"] = payoffs
    if subjects is not None:
        arrays["subjects"] = subjects
    if groups is not None:
        arrays["groups"] = groups  # a unicode array: no pickle
    if covariates is not None:
        arrays["covariates"] = covariates
        arrays["covariate_names"] = np.asarray(covariate_names, dtype=str)
    return arrays | lbl.labels_to_npz(labels)


def read_npz(
    path: Path, n_actions: Sequence[int] | None = None, *, group_by: str | None = None, covariates: Any = None
) -> dict[str, Any]:
    """Read an ``.npz`` written by ``Trajectories.save`` (or by hand) as ``Trajectories`` keywords.

    ``n_actions`` overrides the file's; ``group_by`` / ``covariates`` must be None or match the file's.
    """
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
            raise DataError(f"{path}: missing key 'n_actions' (one K_i per agent); pass n_actions=...")
        n_actions = arrays["n_actions"]
    context = npz_context(path, arrays, group_by, covariates)
    labels = with_source(path, lambda: lbl.labels_from_npz(str(path), arrays, error=DataError))
    fields = {"actions": arrays["actions"], "n_actions": n_actions, "lengths": arrays.get("lengths")}
    fields |= {"payoffs": arrays.get("payoffs"), "subjects": arrays.get("subjects")}
    return fields | labels | context


def read_csv(
    path: Path, n_actions: Sequence[int] | None = None, *, group_by: str | None = None, covariates: Any = None
) -> dict[str, Any]:
    """Read a long-format CSV as the keywords of ``Trajectories.from_frame`` (group labels kept as text)."""
    import pandas as pd

    try:
        # group labels stay text ("01" is not 1); a missing column in dtype= is ignored
        frame = pd.read_csv(path, dtype={"group" if group_by is None else group_by: str})
    except Exception as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from exc
    return {"frame": frame, "n_actions": n_actions, "source": str(path)} | {
        "group_by": group_by,
        "covariates": covariates,
    }


def write_parquet(
    path: Path,
    frame,
    n_actions: Sequence[int],
    covariate_names: Sequence[str] | None,
    labels: dict[str, Any],
) -> None:
    """Write a long table to Parquet with the ``bayes_diml`` schema metadata (n_actions, labels, checksum)."""
    pa = require("pyarrow", "parquet", "Writing Parquet trajectory files")
    pq = require("pyarrow.parquet", "parquet", "Writing Parquet trajectory files")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    n_actions = list(n_actions)
    names = list(covariate_names or ())
    ours = {"n_actions": n_actions, "sha256": frame_digest(frame, n_actions, names)}
    ours |= {k: v for k, v in labels.items() if v is not None}
    if covariate_names is not None:
        ours["covariate_names"] = names
    meta[b"bayes_diml"] = json.dumps(ours).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def read_parquet(
    path: Path, n_actions: Sequence[int] | None = None, *, group_by: str | None = None, covariates: Any = None
) -> dict[str, Any]:
    """Read a Parquet long table as the keywords of ``Trajectories.from_frame``, checking its checksum.

    The file's ``bayes_diml`` metadata gives ``n_actions``, the labels and the covariates where the
    arguments do not.
    """
    pq = require("pyarrow.parquet", "parquet", "Reading Parquet trajectory files")
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}).") from exc
    ours = parquet_metadata(path, table.schema.metadata or {})
    try:
        frame = table.to_pandas()
    except Exception as exc:  # damaged pandas metadata in the schema
        raise DataError(f"{path}: not a readable Parquet file ({exc}).") from exc
    stored = ours.get("covariate_names") or []
    if "sha256" in ours and frame_digest(frame, ours.get("n_actions"), stored) != ours["sha256"]:
        raise DataError(
            f"{path}: the table does not match the checksum bayes-diml wrote with it: the file is "
            "corrupted or was edited (to use an edited table, write it without the 'bayes_diml' "
            "schema metadata)."
        )
    if n_actions is None:
        n_actions = ours.get("n_actions")
    fields = {"frame": frame, "n_actions": n_actions, "source": str(path), **lbl.label_fields(ours)}
    return fields | {
        "group_by": group_by,
        "covariates": (stored or None) if covariates is None else covariates,
    }


def frame_digest(frame, n_actions, covariate_names: Sequence[str] = ()) -> str:
    """sha256 of a long-format table's columns (with ``group`` and the covariates) and ``n_actions``."""
    import hashlib

    h = hashlib.sha256(json.dumps(n_actions).encode())
    for col in (*LONG_COLUMNS, "payoff", "subject", "group", *covariate_names):
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


def parquet_metadata(path: Path, meta: dict) -> dict:
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
    names = ours.get("covariate_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(v, str) for v in names)):
        raise DataError(
            f"{path}: the 'bayes_diml' schema metadata has malformed covariate names; corrupted file?"
        )
    return ours


def context_columns(
    source: str, frame, group_by: str | None, covariates: Any
) -> tuple[str | None, list[str]]:
    """Check the group and covariate column names of a long table: ``(group column or None, covariates)``."""
    if group_by is not None and not isinstance(group_by, str):
        raise DataError(f"{source}: group_by must be a column name (str); got {group_by!r}.")
    if covariates is None:
        names: list[str] = []
    elif isinstance(covariates, str):
        names = [covariates]
    elif isinstance(covariates, Sequence | np.ndarray) and all(isinstance(c, str) for c in covariates):
        names = list(covariates)
    else:
        raise DataError(f"{source}: covariates must be a sequence of column names; got {covariates!r}.")
    named = ([] if group_by is None else [group_by]) + names
    absent = [c for c in named if c not in frame.columns]
    if absent:
        raise DataError(f"{source}: no column(s) {absent}; the table has columns {list(frame.columns)}.")
    if group_by is None and "group" in frame.columns:
        group_by = "group"
    for c in names:
        if frame[c].dtype.kind not in "biuf":
            raise DataError(f"{source}: covariate column {c!r} must be numeric; got dtype {frame[c].dtype}.")
    return group_by, names


def episode_context(
    source: str, frame, context: tuple[str | None, list[str]], ep_index: np.ndarray, episodes: list
) -> dict[str, Any]:
    """Read the group and covariate columns, constant within each episode, as Trajectories keywords."""
    group_by, names = context
    first = np.full(len(episodes), len(frame), dtype=np.int64)  # the first row of each episode
    np.minimum.at(first, ep_index, np.arange(len(frame)))

    def per_episode(col: str, values: np.ndarray) -> np.ndarray:
        ref = values[first][ep_index]
        same = values == ref
        if values.dtype.kind == "f":
            same |= np.isnan(values) & np.isnan(ref)
        if not same.all():
            m = int(ep_index[~same].min())  # the first episode (in label order) where it varies
            row = int(np.flatnonzero(~same & (ep_index == m))[0])
            raise DataError(
                f"{source}: column {col!r} varies within episode {episodes[m]!r} (row {int(first[m])} "
                f"holds {values[first[m]].item()!r}, row {row} holds {values[row].item()!r}); "
                "it must be constant within each episode."
            )
        return values[first]

    out: dict[str, Any] = {}
    if group_by is not None:
        labels = group_labels(f"{source}: column {group_by!r}", frame[group_by].to_numpy())
        out["groups"] = per_episode(group_by, labels)
    if names:
        cols = [per_episode(c, frame[c].to_numpy().astype(np.float64)) for c in names]
        out["covariates"] = np.stack(cols, axis=1)
        out["covariate_names"] = tuple(names)
    return out


def npz_context(path: Path, arrays: dict, group_by: str | None, covariates: Any) -> dict[str, Any]:
    """Return the groups and covariates stored in an ``.npz``; ``group_by`` / ``covariates`` must match."""
    out: dict[str, Any] = {"groups": arrays.get("groups"), "covariates": arrays.get("covariates")}
    if "covariate_names" in arrays:
        out["covariate_names"] = tuple(np.asarray(arrays["covariate_names"]).tolist())
    if group_by is not None and (group_by != "group" or out["groups"] is None):
        stored = "its groups (as 'group')" if out["groups"] is not None else "no groups"
        raise DataError(
            f"{path}: an .npz stores its own groups; group_by={group_by!r} does not match (the file has "
            f"{stored}). Leave group_by=None."
        )
    if covariates is not None:
        want = [covariates] if isinstance(covariates, str) else list(covariates)
        have = list(out.get("covariate_names") or ())
        if want != have:
            raise DataError(
                f"{path}: an .npz stores its own covariates {have}; covariates={want} does not match. "
                "Leave covariates=None."
            )
    return out
