"""Counterfactual payoffs ``u_i(k, a_-i(t))`` for every step, agent and own action.

Observed actions fix every counterfactual joint action in advance, so a *plan* is built
once in NumPy from the data: which joint actions (or count vectors) the mechanism must be
evaluated on, and where each counterfactual payoff sits in that evaluation. Evaluating a
plan is then one batched mechanism call and one gather, which ``jit``/``grad``/``vmap``
handle well.

Three kinds of plan:

- ``"count"``: anonymous mechanisms (with ``count_payoffs``): evaluated once per distinct
  vector of opponent counts, for every own action, float[U, K] (never more rows than the
  table, so used whatever the game's size).
- ``"table"``: other small games (``prod K_i <= table_limit``): the mechanism is evaluated
  on the whole joint-action table, float[P, n].
- ``"joint"``: anything else: evaluated once per distinct counterfactual joint action
  that occurs in the data, float[U, n].

Grouped and covariate data have joint plans whose points carry one more column, the episode's
group (:func:`grouped_plan`) or context (:func:`covariate_plan`: a row of the plan's
``contexts``, the data's distinct covariate rows, at which the point is evaluated). A count
mechanism of covariates (``SymmetricCount`` with ``covariate_names``) has a count plan whose
points carry the context code likewise (``count_payoffs(..., covariates=contexts[code])``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .data import DataError, Trajectories
from .mechanisms.base import joint_profiles
from .memory import check_plan_memory

__all__ = [
    "CounterfactualPlan",
    "DEFAULT_TABLE_LIMIT",
    "action_mask",
    "make_plan",
    "plan_for",
    "grouped_plan",
    "episode_group_codes",
    "covariate_plan",
    "episode_contexts",
    "takes_covariates",
    "evaluate_plan",
    "counterfactual_payoffs",
    "step_counterfactuals",
]

DEFAULT_TABLE_LIMIT = 4096


class CounterfactualPlan(NamedTuple):
    """Where the counterfactual payoffs of a data set come from (static NumPy arrays).

    Attributes
    ----------
    kind : str
        ``"table"``, ``"count"`` or ``"joint"``.
    points : int[U, n] or int[U, K]
        Joint actions (table, joint) or opponent-count vectors (count) to evaluate; with
        ``contexts``, one more column: the context code.
    index : int[M, T-1, n, K] or int[M, T-1, n]
        Table/joint: flat index ``u * n + i`` into the payoffs float[U, n];
        count: the row ``u`` of float[U, K] that holds agent ``i``'s counterfactuals.
    action_mask : bool[n, K]
        ``k < K_i``.
    contexts : float[G, C] or None
        A covariate plan's (:func:`covariate_plan`) distinct covariate rows; its points are then
        int[U, n + 1] (joint action, context code), or a count plan's int[U, K + 1] (opponent
        counts, context code), and each is evaluated at ``contexts[code]``.
    """

    kind: str
    points: np.ndarray
    index: np.ndarray
    action_mask: np.ndarray
    contexts: np.ndarray | None = None

    @property
    def n_evaluations(self) -> int:
        """Number of mechanism evaluations (payoff vectors) one plan evaluation costs."""
        if self.kind == "count":
            return int(self.points.shape[0] * self.action_mask.shape[1])
        return int(self.points.shape[0])


def action_mask(n_actions: tuple[int, ...]) -> np.ndarray:
    """bool[n, K_max]: ``mask[i, k] = k < K_i``."""
    return np.arange(max(n_actions))[None, :] < np.asarray(n_actions)[:, None]


def _strides(n_actions: tuple[int, ...]) -> np.ndarray:
    """C-order strides of the joint-action table: int64[n]."""
    return np.array([math.prod(n_actions[i + 1 :]) for i in range(len(n_actions))], dtype=np.int64)


def _table_plan(actions: np.ndarray, n_actions: tuple[int, ...]) -> CounterfactualPlan:
    n, K = len(n_actions), max(n_actions)
    mask = action_mask(n_actions)
    strides = _strides(n_actions)
    profile = (actions * strides).sum(-1)  # int[..., ]
    base = profile[..., None] - actions * strides  # int[..., n]: profile with a_i removed
    ks = np.arange(K)
    flat = (base[..., None] + ks * strides[:, None]) * n + np.arange(n)[:, None]  # [..., n, K]
    index = np.where(mask, flat, 0).astype(np.int64 if flat.max(initial=0) >= 2**31 else np.int32)
    return CounterfactualPlan("table", joint_profiles(n_actions), index, mask)


def _counterfactual_joints(actions: np.ndarray, n_actions: tuple[int, ...]) -> np.ndarray:
    """int[..., n, K, n]: the joint action with a_i := k (k clamped to K_i - 1 on padding)."""
    n, K = len(n_actions), max(n_actions)
    ks = np.minimum(np.arange(K)[None, :], np.asarray(n_actions)[:, None] - 1)  # [n, K]
    joints = np.broadcast_to(actions[..., None, None, :], (*actions.shape, K, n)).copy()
    eye = np.eye(n, dtype=bool)[:, None, :]  # [n, 1, n]
    return np.where(eye, ks[:, :, None], joints)


def _unique_rows(rows: np.ndarray, radix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return the unique rows of int[N, d] and the inverse index int[N]."""
    if radix is not None and float(np.log2(radix.astype(float)).sum()) < 62.0:
        strides = np.array([math.prod(radix[j + 1 :].tolist()) for j in range(len(radix))], np.int64)
        codes = rows.astype(np.int64) @ strides
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        return rows[first], inverse.reshape(-1)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


def _joint_plan(actions: np.ndarray, n_actions: tuple[int, ...]) -> CounterfactualPlan:
    n = len(n_actions)
    mask = action_mask(n_actions)
    joints = _counterfactual_joints(actions, n_actions)  # [..., n, K, n]
    lead = joints.shape[:-1]
    uniq, inverse = _unique_rows(joints.reshape(-1, n), np.asarray(n_actions))
    flat = inverse.reshape(lead) * n + np.arange(n)[:, None]
    index = np.where(mask, flat, 0).astype(np.int64 if flat.max(initial=0) >= 2**31 else np.int32)
    return CounterfactualPlan("joint", uniq.astype(np.int32), index, mask)


def _count_plan(
    actions: np.ndarray, n_actions: tuple[int, ...], codes: np.ndarray | None = None
) -> CounterfactualPlan:
    """Deduplicate (own action, opponent counts) pairs without any [..., n, K] intermediate.

    The opponent counts of agent i are the step's action counts minus agent i's own action,
    so it is fixed by (distinct count vector of the step, own action): deduplication costs
    one sort of int64[N * n] codes (``N`` = steps) and one of the few resulting rows
    (at most distinct count vectors x K), never of int[N * n, K] rows. ``codes: int[M]``
    (each episode's context, for ``actions: int[M, T', n]``) append a column to every count
    vector, so the points are int[U, K + 1] (opponent counts, context code).
    """
    n = len(n_actions)
    if len(set(n_actions)) != 1:
        raise ValueError(f"a count mechanism needs equal action counts; got n_actions = {n_actions}.")
    K = n_actions[0]
    lead = actions.shape[:-1]
    flat = actions.reshape(-1, n).astype(np.int64)  # [N, n]
    N = flat.shape[0]
    cells = (np.arange(N, dtype=np.int64)[:, None] * K + flat).reshape(-1)
    counts = np.bincount(cells, minlength=N * K).reshape(N, K)  # [N, K]
    radix = np.full(K, n + 1, dtype=np.int64)
    if codes is not None:  # the episode's context code as one more column of each step's counts
        step_code = np.broadcast_to(np.asarray(codes, np.int64)[:, None], lead).reshape(N, 1)
        counts = np.concatenate([counts, step_code], axis=1)  # [N, K + 1]
        radix = np.append(radix, int(step_code.max(initial=0)) + 1)
    step_counts, step_id = _unique_rows(counts, radix)  # [C, K (+ 1)], int[N]
    code = step_id.astype(np.int64)[:, None] * K + flat  # [N, n]: (count vector, own action)
    pairs, inverse = np.unique(code.reshape(-1), return_inverse=True)
    opponents = step_counts[pairs // K]
    opponents[np.arange(len(pairs)), pairs % K] -= 1  # remove the own action: opponent counts
    # different (count vector, own action) pairs can leave the same opponent counts
    radix[:K] = n  # opponent counts are at most n - 1
    points, merged = _unique_rows(opponents, radix)
    index = merged[inverse].reshape(*lead, n).astype(np.int32)
    points = points.astype(np.int32)
    return CounterfactualPlan("count", points, index, action_mask(n_actions))


def _check_mechanism(mechanism: Any, n_actions: tuple[int, ...]) -> None:
    mech_k = getattr(mechanism, "n_actions", None)
    if mech_k is not None and tuple(mech_k) != tuple(n_actions):
        raise ValueError(
            f"the mechanism has n_actions = {tuple(mech_k)} but the data have n_actions = "
            f"{tuple(n_actions)}; they must agree (agent by agent)."
        )
    if not (callable(getattr(mechanism, "payoffs", None)) and callable(getattr(mechanism, "init", None))):
        raise TypeError(
            f"{type(mechanism).__name__} is not a mechanism: it needs init(key) and payoffs(params, joint)."
        )


def _choose_kind(mechanism: Any, n_actions: tuple[int, ...], table_limit: int) -> str:
    """Count plan for count mechanisms, else the table for small games, else the joint plan.

    A count mechanism's plan has at most ``K * C(n - 2 + K, K - 1)`` rows (own action,
    opponent counts), never more than the table plan's ``P * n``.
    """
    if callable(getattr(mechanism, "count_payoffs", None)) and len(set(n_actions)) == 1:
        return "count"
    return "table" if math.prod(n_actions) <= table_limit else "joint"


def make_plan(
    mechanism: Any,
    actions: np.ndarray,
    n_actions: tuple[int, ...],
    *,
    kind: str | None = None,
    table_limit: int = DEFAULT_TABLE_LIMIT,
) -> CounterfactualPlan:
    """Plan the counterfactual evaluations for ``actions: int[..., n]`` (every leading index).

    ``kind=None`` picks ``"count"`` when the mechanism has ``count_payoffs`` (and equal action
    counts), else ``"table"`` when ``prod K_i <= table_limit``, else ``"joint"``.
    """
    _check_mechanism(mechanism, n_actions)
    actions = np.asarray(actions, dtype=np.int64)
    kind = kind or _choose_kind(mechanism, n_actions, table_limit)
    if kind == "table":
        return _table_plan(actions, n_actions)
    if kind == "count":
        if not callable(getattr(mechanism, "count_payoffs", None)):
            raise ValueError(f"{type(mechanism).__name__} has no count_payoffs; use kind='table' or 'joint'.")
        return _count_plan(actions, n_actions)
    if kind == "joint":
        return _joint_plan(actions, n_actions)
    raise ValueError(f"unknown plan kind {kind!r}; use 'table', 'count' or 'joint'.")


def plan_for(
    mechanism: Any, data: Trajectories, *, kind: str | None = None, table_limit: int = DEFAULT_TABLE_LIMIT
) -> CounterfactualPlan:
    """Build the plan for the steps ``t = 0..T-2`` of ``data`` (no cache: built on every call).

    The memory guard (:func:`bayes_diml.memory.check_plan_memory`) runs first, so a plan
    too large for the memory limit is refused before anything is allocated. Build it once
    and pass it on (``log_likelihood(..., plan=plan)``, :class:`bayes_diml.inference.ModelSpec`
    holds one) to reuse it across calls.
    """
    _check_mechanism(mechanism, data.n_actions)
    if takes_covariates(mechanism):
        counts = _choose_kind(mechanism, data.n_actions, table_limit) == "count"  # count_payoffs
        if kind not in ((None, "joint", "count") if counts else (None, "joint")):
            plans = "a joint or count plan" if counts else "a joint plan"
            raise ValueError(f"a covariate mechanism's plan is {plans}; got kind={kind!r}.")
        kind = kind or ("count" if counts else "joint")
        check_plan_memory(mechanism, data.actions.shape, data.n_actions, kind)
        codes, contexts = episode_contexts(mechanism, data)
        if kind == "count":  # (opponent counts, context) rows, each through count_payoffs at its x
            plan = _count_plan(np.asarray(data.actions[:, :-1], np.int64), data.n_actions, codes)
            return plan._replace(contexts=contexts)
        return covariate_plan(data.actions[:, :-1], data.n_actions, codes, contexts, table_limit=table_limit)
    if _is_grouped(mechanism):
        if kind not in (None, "joint"):
            raise ValueError(f"a grouped mechanism's plan is a joint plan; got kind={kind!r}.")
        check_plan_memory(mechanism, data.actions.shape, data.n_actions, "joint")
        return grouped_plan(data.actions[:, :-1], data.n_actions, episode_group_codes(mechanism, data))
    kind = kind or _choose_kind(mechanism, data.n_actions, table_limit)
    check_plan_memory(mechanism, data.actions.shape, data.n_actions, kind)  # before allocating
    return make_plan(mechanism, data.actions[:, :-1], data.n_actions, kind=kind)


def _is_grouped(mechanism: Any) -> bool:
    """Tell whether the mechanism's payoffs take the episode's group as one more joint column."""
    return isinstance(getattr(mechanism, "groups", None), tuple) and callable(
        getattr(mechanism, "group_code", None)
    )


def takes_covariates(mechanism: Any) -> bool:
    """Tell whether the mechanism's payoffs take the episode's covariates (``payoffs(..., covariates=)``).

    Any mechanism with a non-empty tuple ``covariate_names`` does (``CovariateTabular``, and
    ``Function`` / ``NeuralJoint`` / ``SymmetricCount`` built with covariates); its plan is
    :func:`covariate_plan`, or for a count mechanism (``count_payoffs(..., covariates=)``) the
    count plan with the context code as one more point column.
    """
    names = getattr(mechanism, "covariate_names", None)
    return isinstance(names, tuple) and len(names) > 0


def episode_contexts(mechanism: Any, data: Trajectories) -> tuple[np.ndarray, np.ndarray]:
    """``(codes int[M], contexts float[G, C])``: the data's distinct covariate rows and each episode's.

    The columns are the data's covariates named by ``mechanism.covariate_names``, in that order
    (the data may hold more). Raises DataError when the data carry no covariates, lack one the
    mechanism names, or hold a non-finite value.
    """
    names = tuple(mechanism.covariate_names)
    if getattr(data, "covariates", None) is None:
        raise DataError(
            f"{type(mechanism).__name__} needs data with covariates {', '.join(map(repr, names))} "
            "(Trajectories(..., covariates=..., covariate_names=...), or --covariates on the command "
            "line); these data have none."
        )
    have = tuple(data.covariate_names)
    missing = [c for c in names if c not in have]
    if missing:
        raise DataError(
            f"the data have no covariate(s) {', '.join(map(repr, missing))} that the mechanism needs; "
            f"their covariates are {', '.join(map(repr, have))}."
        )
    x = np.asarray(data.covariates, dtype=np.float64)[:, [have.index(c) for c in names]]
    if not np.all(np.isfinite(x)):
        m, c = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise DataError(f"covariate {names[c]!r} of episode {m} is {x[m, c]}; covariates must be finite.")
    contexts, codes = np.unique(x, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), contexts


def covariate_plan(
    actions: np.ndarray,
    n_actions: tuple[int, ...],
    codes: np.ndarray,
    contexts: np.ndarray,
    *,
    table_limit: int = DEFAULT_TABLE_LIMIT,
) -> CounterfactualPlan:
    """Joint plan of episodes with covariates: points int[U, n + 1] (joint action, context code).

    ``actions: int[M, T', n]``, ``codes: int[M]`` (each episode's row of ``contexts: float[G, C]``).
    Small games (``prod K_i <= table_limit``) plan every profile in every context (``U = G P``,
    fixed by the shapes, so data sets with as many contexts share compiled programs); larger
    ones the counterfactual joints that occur. The plan carries ``contexts``; the index is the
    joint plan's ``u * n + i``.
    """
    contexts = np.asarray(contexts, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    if contexts.ndim != 2 or codes.shape != (np.shape(actions)[0],):
        raise ValueError(
            f"covariate_plan needs contexts float[G, C] and codes int[M]; got shapes {contexts.shape} "
            f"and {codes.shape} for M = {np.shape(actions)[0]}."
        )
    if codes.size and (codes.min() < 0 or codes.max() >= contexts.shape[0]):
        raise ValueError(f"codes must lie in 0..{contexts.shape[0] - 1} (a row of contexts).")
    if math.prod(n_actions) > table_limit:
        plan = grouped_plan(actions, n_actions, codes)
        return plan._replace(contexts=contexts)
    actions = np.asarray(actions, dtype=np.int64)
    n, P, G = len(n_actions), math.prod(n_actions), contexts.shape[0]
    mask = action_mask(n_actions)
    joints = _counterfactual_joints(actions, n_actions)  # [M, T', n, K, n]
    profile = joints @ _strides(n_actions)  # [M, T', n, K]
    flat = (codes[:, None, None, None] * P + profile) * n + np.arange(n)[:, None]
    index = np.where(mask, flat, 0).astype(np.int64 if G * P * n >= 2**31 else np.int32)
    profiles = np.tile(joint_profiles(n_actions), (G, 1))
    points = np.concatenate([profiles, np.repeat(np.arange(G), P)[:, None]], axis=1).astype(np.int32)
    return CounterfactualPlan("joint", points, index, mask, contexts)


def _counts_at_points(mechanism: Any, params: Any, points: jax.Array, contexts: Any) -> jax.Array:
    """``count_payoffs`` of every own action at count-plan points int[..., K (+ 1)]: float[..., K]."""
    own = jnp.arange(points.shape[-1] - (contexts is not None))[None, :]
    if contexts is None:
        return mechanism.count_payoffs(params, own, points[..., None, :])
    x = jnp.asarray(contexts)[points[..., -1]]  # [..., C]
    return mechanism.count_payoffs(params, own, points[..., None, :-1], covariates=x[..., None, :])


def _mechanism_at_points(mechanism: Any, params: Any, points: jax.Array, contexts: Any) -> jax.Array:
    """``mechanism.payoffs`` of plan points; a covariate plan's at ``contexts[code]``."""
    if contexts is None:
        return mechanism.payoffs(params, points)
    return mechanism.payoffs(params, points[..., :-1], covariates=jnp.asarray(contexts)[points[..., -1]])


def episode_group_codes(mechanism: Any, data: Trajectories) -> np.ndarray:
    """int[M]: each episode's group as its position in ``mechanism.groups``.

    Raises ValueError when the data carry no groups or a group the mechanism does not know.
    """
    groups = getattr(data, "groups", None)
    if groups is None:
        raise ValueError(
            f"{type(mechanism).__name__} needs data with groups (Trajectories(..., groups=...), "
            "or --group-by COLUMN on the command line); these data have none."
        )
    known = {g: c for c, g in enumerate(mechanism.groups)}
    unknown = sorted({str(g) for g in groups} - set(known))
    if unknown:
        raise ValueError(
            f"the data have group(s) {', '.join(map(repr, unknown))} that the mechanism does not know; "
            f"its groups are {', '.join(map(repr, mechanism.groups))}."
        )
    return np.array([known[str(g)] for g in groups], dtype=np.int64)


def grouped_plan(actions: np.ndarray, n_actions: tuple[int, ...], codes: np.ndarray) -> CounterfactualPlan:
    """Joint plan of grouped episodes: points int[U, n + 1] (counterfactual joint action, group).

    ``actions: int[M, T', n]``, ``codes: int[M]`` (each episode's group). The index is the
    joint plan's ``u * n + i``, so :func:`evaluate_plan` needs no change.
    """
    actions = np.asarray(actions, dtype=np.int64)
    n = len(n_actions)
    mask = action_mask(n_actions)
    joints = _counterfactual_joints(actions, n_actions)  # [M, T', n, K, n]
    group = np.broadcast_to(np.asarray(codes, np.int64)[:, None, None, None, None], (*joints.shape[:-1], 1))
    rows = np.concatenate([joints, group], axis=-1)  # [M, T', n, K, n + 1]
    radix = np.asarray([*n_actions, int(np.max(codes, initial=0)) + 1])
    uniq, inverse = _unique_rows(rows.reshape(-1, n + 1), radix)
    flat = inverse.reshape(joints.shape[:-1]) * n + np.arange(n)[:, None]
    index = np.where(mask, flat, 0).astype(np.int64 if flat.max(initial=0) >= 2**31 else np.int32)
    return CounterfactualPlan("joint", uniq.astype(np.int32), index, mask)


def evaluate_plan(
    mechanism: Any, params: Any, plan: CounterfactualPlan, episodes: jax.Array | None = None
) -> jax.Array:
    """Counterfactual payoffs float[..., n, K] (0 on padded actions) from one mechanism call.

    ``episodes: int[B]`` (optional) selects rows of the plan's leading (episode) axis, e.g. a
    minibatch: the result is then float[B, ...]. The mechanism is evaluated on every planned
    point, or, when that is more, only on the B episodes' points (without deduplication).
    """
    mask = jnp.asarray(plan.action_mask)
    index = jnp.asarray(plan.index)
    if episodes is not None:
        index = index[jnp.asarray(episodes)]
    n_needed = math.prod(index.shape[: -1 if plan.kind == "count" else None])
    direct = episodes is not None and plan.kind != "table" and n_needed < plan.points.shape[0]
    if plan.kind == "count":
        if direct:  # fewer (pair) rows in the batch than planned: evaluate just those
            cf = _counts_at_points(mechanism, params, jnp.asarray(plan.points)[index], plan.contexts)
        else:
            grid = getattr(mechanism, "count_grid", None)  # a faster evaluation of the same rows
            points = jnp.asarray(plan.points)
            if callable(grid) and plan.contexts is None:
                rows = grid(params, points)  # [U, K]
            else:
                rows = _counts_at_points(mechanism, params, points, plan.contexts)  # [U, K]
            cf = rows[index]  # [..., n, K]
    elif direct:  # joint plan, flat index u * n + i: evaluate the batch's joints, keep agent i
        n = plan.action_mask.shape[0]
        points = jnp.asarray(plan.points)[index // n]
        pay = _mechanism_at_points(mechanism, params, points, plan.contexts)  # [..., n, K, n]
        cf = jnp.take_along_axis(pay, (index % n)[..., None], axis=-1)[..., 0]
    elif plan.kind == "table":  # gather whole rows u_i(., a_-i): cheaper (and its gradient) than cells
        n_actions = tuple(int(k) for k in plan.action_mask.sum(axis=1))
        pay = mechanism.payoffs(params, jnp.asarray(plan.points))  # [P, n]
        rows = pay.reshape(-1)[jnp.asarray(_table_rows(n_actions))]  # [P * n, K]
        # the barrier keeps XLA from fusing the row gather into the per-step gather (which
        # would redo it for every step: 2.5x slower value+grad, benchmarks/likelihood.py)
        rows = jax.lax.optimization_barrier(rows)
        cf = rows[index[..., 0]]  # index[..., i, 0] = (profile with a_i = 0) * n + i
    else:
        pay = _mechanism_at_points(mechanism, params, jnp.asarray(plan.points), plan.contexts)  # [U, n]
        cf = pay.reshape(-1)[index]
    return jnp.where(mask, cf, 0.0)


@functools.lru_cache(maxsize=64)
def _table_rows(n_actions: tuple[int, ...]) -> np.ndarray:
    """int[P * n, K]: row ``r = u * n + i`` holds the flat indices of ``u_i(k, a_-i(u))``, k = 0..K-1.

    Only rows whose profile ``u`` has ``a_i = 0`` are used (those a table plan's
    ``index[..., i, 0]`` points at); entries past ``K_i`` or the table are clipped (masked later).
    """
    n, K, P = len(n_actions), max(n_actions), math.prod(n_actions)
    r = np.arange(P * n, dtype=np.int64)[:, None]
    step = (_strides(n_actions) * n)[r % n]  # moving a_i by one moves the flat index this far
    idx = np.minimum(r + np.arange(K)[None, :] * step, P * n - 1)
    return idx.astype(np.int32 if P * n < 2**31 else np.int64)


def counterfactual_payoffs(
    mechanism: Any,
    params: Any,
    data: Trajectories,
    *,
    kind: str | None = None,
    plan: CounterfactualPlan | None = None,
) -> jax.Array:
    """Compute ``u_i(k, a_-i(t))`` for ``t = 0..T-2``: float[M, T-1, n, K] (0 on padded actions).

    ``plan`` (from ``plan_for``) is reused when given (then ``kind`` is ignored);
    otherwise one is built for this call.
    """
    if plan is None:
        plan = plan_for(mechanism, data, kind=kind)
    return evaluate_plan(mechanism, params, plan)


def step_counterfactuals(
    mechanism: Any, params: Any, n_actions: tuple[int, ...], *, table_limit: int = DEFAULT_TABLE_LIMIT
):
    """Return a function ``joint: int[n] -> float[n, K]`` for use inside a simulation loop.

    Heavy work that does not depend on the joint action (the payoff table of a small
    game) is done once, here.
    """
    n_actions = tuple(int(k) for k in n_actions)
    _check_mechanism(mechanism, n_actions)
    n, K = len(n_actions), max(n_actions)
    mask = jnp.asarray(action_mask(n_actions))
    if math.prod(n_actions) <= table_limit:
        table = mechanism.payoffs(params, jnp.asarray(joint_profiles(n_actions))).reshape(-1)
        strides = jnp.asarray(_strides(n_actions))
        ks = jnp.arange(K)

        def from_table(joint):
            profile = (joint * strides).sum()
            base = profile - joint * strides  # [n]
            flat = (base[:, None] + ks[None, :] * strides[:, None]) * n + jnp.arange(n)[:, None]
            return jnp.where(mask, table[jnp.where(mask, flat, 0)], 0.0)

        return from_table
    if callable(getattr(mechanism, "count_payoffs", None)) and len(set(n_actions)) == 1:
        eye = jnp.eye(K, dtype=jnp.int32)

        def from_counts(joint):
            counts = jnp.bincount(joint, length=K)
            removed = counts[None, :] - eye  # [K(removed own action), K]
            rows = mechanism.count_payoffs(params, jnp.arange(K)[None, :], removed[:, None, :])  # [K, K]
            return rows[joint]

        return from_counts
    ks = jnp.minimum(jnp.arange(K)[None, :], jnp.asarray(n_actions)[:, None] - 1)
    eye = jnp.eye(n, dtype=bool)[:, None, :]

    def from_joints(joint):
        joints = jnp.where(eye, ks[:, :, None], joint[None, None, :])  # [n, K, n]
        pay = mechanism.payoffs(params, joints)  # [n, K, n]
        own = jnp.take_along_axis(pay, jnp.arange(n)[:, None, None], axis=-1)[..., 0]
        return jnp.where(mask, own, 0.0)

    return from_joints
