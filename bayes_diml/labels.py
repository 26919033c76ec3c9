"""Agent and action labels: validation, string columns to integer codes, labelled row names.

Models and likelihoods see integer codes only (agent ``0..n-1``, actions ``0..K_i-1``); labels
are names carried beside them by :class:`bayes_diml.data.Trajectories` and used by every
report (summaries, payoff tables, pair tables, plots).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "LabelError",
    "check_agent_labels",
    "check_action_labels",
    "encode_labels",
    "encode_action_labels",
    "agent_names",
    "action_names",
    "relabel_row",
    "label_errors_as",
    "is_label_column",
    "label_columns",
    "encode_column",
    "label_fields",
    "labels_to_npz",
    "labels_from_npz",
]


class LabelError(ValueError):
    """Invalid agent or action labels (a ``ValueError`` naming the problem)."""


def _names(what: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise LabelError(f"{what} must be a sequence of strings; got {values!r}.")
    out = tuple(values.tolist() if isinstance(values, np.ndarray) else values)
    bad = [v for v in out if not isinstance(v, str) or not v]
    if bad:
        raise LabelError(f"{what} must be non-empty strings; got {bad[0]!r}.")
    seen: set[str] = set()
    for v in out:
        if v in seen:
            raise LabelError(f"{what} must be distinct; {v!r} appears twice.")
        seen.add(v)
    return out


def check_agent_labels(labels: Any, n_agents: int) -> tuple[str, ...] | None:
    """Validate agent labels: None, or ``n_agents`` distinct non-empty strings (returned as a tuple)."""
    if labels is None:
        return None
    out = _names("agent_labels", labels)
    if len(out) != n_agents:
        raise LabelError(f"agent_labels has {len(out)} labels but the data have n = {n_agents} agents.")
    return out


def check_action_labels(labels: Any, n_actions: Sequence[int]) -> tuple[tuple[str, ...], ...] | None:
    """Validate action labels: None, one sequence shared by every agent, or one sequence per agent.

    Returns a tuple of n tuples, the i-th holding K_i distinct strings (the label of action k
    of agent i at position k).
    """
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence | np.ndarray):
        raise LabelError(f"action_labels must be a sequence of strings or of sequences; got {labels!r}.")
    items = list(labels)
    if items and all(isinstance(v, str) for v in items):  # one set for every agent
        shared = _names("action_labels", items)
        if any(k != len(shared) for k in n_actions):
            raise LabelError(
                f"action_labels has {len(shared)} labels shared by every agent, but the agents have "
                f"n_actions = {tuple(n_actions)}; give one sequence of K_i labels per agent."
            )
        return tuple(shared for _ in n_actions)
    if len(items) != len(n_actions):
        raise LabelError(
            f"action_labels has {len(items)} entries but the data have n = {len(n_actions)} agents; "
            "give one sequence of K_i labels per agent (or one sequence shared by all)."
        )
    out = tuple(_names(f"action_labels[{i}]", v) for i, v in enumerate(items))
    for i, (v, k) in enumerate(zip(out, n_actions, strict=True)):
        if len(v) != k:
            raise LabelError(f"action_labels[{i}] has {len(v)} labels but agent {i} has K_{i} = {k} actions.")
    return out


def _strings(what: str, values: np.ndarray) -> np.ndarray:
    empty = [r for r, v in enumerate(values) if v is None or (isinstance(v, float) and v != v)]
    if empty:
        raise LabelError(f"{what} is empty in row {empty[0]}; every row needs a label.")
    digits = np.array([str(v).strip().lstrip("-").isdigit() for v in values])
    if digits.any() and not digits.all():  # most likely a typo in a column of integer codes
        r = int(np.argmin(digits))  # the first text label
        raise LabelError(
            f"{what} mixes integer codes and text labels (row {r} holds {values[r]!r}); use one or the other."
        )
    return np.asarray([str(v) for v in values], dtype=object)


def encode_labels(
    what: str, values: np.ndarray, labels: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map string labels object[N] to integer codes: ``(codes int[N], labels)``.

    Without ``labels`` the codes follow the order in which the values first appear (a long
    table lists the agents of a step in their order); with them, code k is ``labels[k]`` and
    a value not among them is an error naming the first row that holds it.
    """
    strings = _strings(what, values)
    if labels is None:
        labels = tuple(dict.fromkeys(strings.tolist()))
    lookup = {v: k for k, v in enumerate(labels)}
    codes = np.fromiter((lookup.get(v, -1) for v in strings), dtype=np.int64, count=len(strings))
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        raise LabelError(
            f"{what}: row {int(bad[0])} holds {strings[bad[0]]!r}, which is not one of the labels "
            f"{list(labels)}."
        )
    return codes, tuple(labels)


def encode_action_labels(
    what: str, values: np.ndarray, agent: np.ndarray, labels: Any = None
) -> tuple[np.ndarray, tuple[tuple[str, ...], ...]]:
    """Map string actions object[N] of agents int[N] to per-agent codes: ``(codes int[N], labels)``.

    Agent i's codes follow its own labels: ``labels[i]`` when given (or ``labels`` itself when
    it is one sequence of strings shared by every agent), else its sorted distinct actions.
    """
    n = int(agent.max()) + 1 if len(agent) else 0
    if labels is not None and all(isinstance(v, str) for v in labels):
        labels = [labels] * n
    if labels is not None and len(labels) != n:
        raise LabelError(f"{what}: action_labels has {len(labels)} entries for n = {n} agents.")
    strings = _strings(what, values)
    codes = np.full(len(strings), -1, dtype=np.int64)
    out = []
    for i in range(n):
        rows = np.flatnonzero(agent == i)
        names = tuple(sorted(set(strings[rows].tolist()))) if labels is None else tuple(labels[i])
        lookup = {v: k for k, v in enumerate(names)}
        codes[rows] = [lookup.get(v, -1) for v in strings[rows]]
        out.append(names)
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        r = int(bad[0])
        raise LabelError(
            f"{what}: row {r} holds action {strings[r]!r} of agent {int(agent[r])}, which is not one of "
            f"its labels {list(out[int(agent[r])])}."
        )
    return codes, tuple(out)


@contextmanager
def label_errors_as(error: type[Exception]) -> Iterator[None]:
    """Re-raise a ``ValueError`` of the block (such as a :class:`LabelError`) as ``error``, same message."""
    try:
        yield
    except ValueError as exc:
        raise error(str(exc)) from exc


def is_label_column(column) -> bool:
    """Whether a pandas column holds text labels (not numbers or booleans)."""
    return column.dtype.kind not in "iufb"


def label_columns(
    agent: np.ndarray, action: np.ndarray, agent_labels: Any, action_labels: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Write the integer columns ``agent`` and ``action`` (of that agent) as labels where known."""
    if action_labels is not None:
        action = np.asarray([action_labels[a][k] for a, k in zip(agent, action, strict=True)])
    if agent_labels is not None:
        agent = np.asarray(agent_labels, dtype=object)[agent]
    return agent, action


def encode_column(
    source: str, column, labels: Any, agent: np.ndarray | None = None, error: type[Exception] = LabelError
) -> tuple[np.ndarray, Any]:
    """Encode a pandas column of text labels of table ``source`` as integer codes: ``(codes, labels)``.

    The agents when ``agent`` is None (see :func:`encode_labels`), else the actions of agents
    ``agent`` (see :func:`encode_action_labels`). Bad labels raise ``error``.
    """
    values, what = column.to_numpy(), f"{source}: column '{column.name}'"
    with label_errors_as(error):
        if agent is None:
            return encode_labels(what, values, labels)
        return encode_action_labels(what, values, agent, labels)


def label_fields(mapping: dict) -> dict[str, Any]:
    """Return the ``agent_labels`` and ``action_labels`` entries of a mapping (None when absent)."""
    return {k: mapping.get(k) for k in ("agent_labels", "action_labels")}


def labels_to_npz(labels: dict[str, Any]) -> dict[str, np.ndarray]:
    """Return the ``.npz`` entry of :func:`label_fields` ``labels``: ``{"labels": JSON string}`` or ``{}``."""
    if all(v is None for v in labels.values()):
        return {}
    return {"labels": np.asarray(json.dumps(labels))}  # a JSON string, no pickle


def labels_from_npz(source: str, arrays: dict, error: type[Exception] = LabelError) -> dict[str, Any]:
    """Read the ``labels`` entry of an ``.npz`` as keyword arguments (``{}`` when absent).

    A malformed entry raises ``error`` naming ``source``.
    """
    if "labels" not in arrays:
        return {}
    try:
        labels = json.loads(str(arrays["labels"]))
    except ValueError as exc:
        raise error(f"{source}: key 'labels' is not valid JSON ({exc}).") from exc
    if not isinstance(labels, dict):
        raise error(f"{source}: key 'labels' is not a JSON object; got {labels!r}.")
    return label_fields(labels)


def agent_names(agent_labels: Sequence[str] | None, n_agents: int) -> tuple[str, ...]:
    """Return the agent names: the labels, or ``"0" .. "n-1"``."""
    return tuple(agent_labels) if agent_labels is not None else tuple(str(i) for i in range(n_agents))


def action_names(
    action_labels: Sequence[Sequence[str]] | None, n_actions: Sequence[int]
) -> tuple[tuple[str, ...], ...]:
    """Return the action names per agent: the labels, or ``"0" .. "K_i-1"``."""
    if action_labels is not None:
        return tuple(tuple(v) for v in action_labels)
    return tuple(tuple(str(k) for k in range(K)) for K in n_actions)


_ROW = re.compile(r"^(?P<name>[^\[]+)\[(?P<idx>[^\]]*)\]$")


def relabel_row(
    row: str,
    dims: Sequence[str],
    agents: Sequence[str],
    actions: Sequence[Sequence[str]],
) -> str:
    """Write the integer indices of a summary row such as ``centred_payoffs[0, 1, 0]`` as labels.

    ``dims`` names the variable's dimensions (``agent``, ``action_j`` for agent j's action,
    ``action`` for the action of the row's agent); other dimensions and rows without indices
    are kept as they are. ``bias[1, 2]`` with dims ``(agent, action)`` becomes
    ``bias[bob, scissors]``.
    """
    m = _ROW.match(row)
    if m is None:
        return row
    parts = [p.strip() for p in m["idx"].split(",")]
    if len(parts) != len(dims) or not all(p.lstrip("-").isdigit() for p in parts):
        return row
    idx = [int(p) for p in parts]
    agent = idx[list(dims).index("agent")] if "agent" in dims else None
    out = []
    for d, k in zip(dims, idx, strict=True):
        if d == "agent":
            out.append(agents[k])
        elif d == "action" and agent is not None:
            out.append(actions[agent][k] if k < len(actions[agent]) else str(k))
        elif d.startswith("action_") and d[7:].isdigit():
            out.append(actions[int(d[7:])][k])
        else:
            out.append(str(k))
    return f"{m['name']}[{', '.join(out)}]"
