"""Recovery metrics of the DIML paper and gauge-free payoff differences.

- :func:`payoff_differences`: ``u_i(a) - mean_k u_i(k, a_-i)``, the identified part of a
  mechanism (invariant to adding any ``c_i(a_-i)``).
- :func:`diff_mse`: payoff-difference error on test contexts (reference definition).
- :func:`cfkl_params`: KL between joint-action histograms simulated under the true and
  the fitted mechanism with a shifted learner (reference definition).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .counterfactual import action_mask
from .data import Trajectories
from .mechanisms.base import agent_payoffs, joint_profiles
from .simulation import simulate_compiled

__all__ = [
    "payoff_differences",
    "diff_mse",
    "diff_mse_contexts",
    "context_payoff_differences",
    "cfkl_params",
    "joint_action_histogram",
    "kl_divergence",
]


def _n_actions(mechanism: Any, n_actions) -> tuple[int, ...]:
    k = n_actions if n_actions is not None else getattr(mechanism, "n_actions", None)
    if k is None:
        raise ValueError("this mechanism carries no n_actions; pass n_actions=(K_1, ..., K_n).")
    return tuple(int(v) for v in k)


def payoff_differences(mechanism: Any, params: Any, joint: Any = None, *, n_actions=None) -> jax.Array:
    """Centred payoffs ``u_i(a) - mean_{k < K_i} u_i(k, a_-i)``.

    Parameters
    ----------
    joint : int[..., n], optional
        Joint actions; default: every profile, giving float[K_1, ..., K_n, n].

    Returns
    -------
    float[..., n]
        Gauge-free: unchanged by adding any ``c_i(a_-i)`` to agent i's payoffs.
    """
    k = _n_actions(mechanism, n_actions)
    n, K = len(k), max(k)
    if joint is None:
        joint = joint_profiles(k).reshape(*k, n)
    joint = jnp.asarray(joint)
    if joint.shape[-1] != n:
        raise ValueError(f"joint must have shape (..., n) with n = {n}; got {joint.shape}.")
    mask = jnp.asarray(action_mask(k))  # [n, K]
    ks = jnp.minimum(jnp.arange(K)[None, :], jnp.asarray(k)[:, None] - 1)
    eye = jnp.eye(n, dtype=bool)[:, None, :]
    cf_joints = jnp.where(eye, ks[:, :, None], joint[..., None, None, :])  # [..., n, K, n]
    pay = mechanism.payoffs(params, cf_joints)  # [..., n, K, n]
    own = jnp.moveaxis(jnp.diagonal(pay, axis1=-3, axis2=-1), -1, -2)  # [..., n, K]
    mean = jnp.where(mask, own, 0.0).sum(-1) / jnp.asarray(k, own.dtype)
    realised = mechanism.payoffs(params, joint)
    return realised - mean


def agent_payoff_differences(
    mechanism: Any, params: Any, joint: Any, agent: Any, *, n_actions=None
) -> jax.Array:
    """Centred payoff of one chosen agent per joint action: ``u_i(a) - mean_k u_i(k, a_-i)``.

    ``joint: int[S, n]``, ``agent: int[S]`` -> float[S]. Evaluates only agent i's payoffs
    (S x K of them, via :func:`agent_payoffs`), where :func:`payoff_differences` forms
    every agent's counterfactuals (S x n x K joint actions, each scored for all n agents):
    with many agents only this one fits in memory.
    """
    k = np.asarray(_n_actions(mechanism, n_actions))
    joint, agent = jnp.asarray(joint), jnp.asarray(agent)
    if joint.ndim != 2 or joint.shape[-1] != k.size or agent.shape != joint.shape[:1]:
        raise ValueError(
            f"joint must be int[S, n] with n = {k.size} and agent int[S]; got {joint.shape}, {agent.shape}."
        )
    S, K = joint.shape[0], int(k.max())
    k_i = jnp.asarray(k)[agent]  # [S]
    alts = jnp.minimum(jnp.arange(K)[None, :], k_i[:, None] - 1)  # [S, K]; padded repeat the last
    rows = jnp.arange(S)
    variants = (
        jnp.repeat(joint[:, None, :], K, axis=1)
        .at[rows[:, None], jnp.arange(K)[None, :], agent[:, None]]
        .set(alts)
    )
    pay = agent_payoffs(mechanism, params, variants.reshape(S * K, -1), jnp.repeat(agent, K)).reshape(S, K)
    valid = jnp.arange(K)[None, :] < k_i[:, None]
    mean = jnp.where(valid, pay, 0.0).sum(-1) / k_i.astype(pay.dtype)
    realised = pay[rows, joint[rows, agent]]  # the variant with agent i's own action
    return realised - mean


def diff_mse_contexts(
    data: Trajectories, n_samples: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the contexts :func:`diff_mse` scores: joint actions with agent i's action at a and at a'.

    Samples ``n_samples`` contexts (episode m, step t < L_m - 1, agent i) uniformly from ``data``
    and ``a, a'`` uniform in agent i's actions. Returns ``(joint_a, joint_b, agent)``:
    ``int[S, n], int[S, n], int[S]``; ``u_i(joint_a) - u_i(joint_b)`` is the payoff difference
    that :func:`diff_mse` compares. The same ``seed`` gives the same contexts.
    """
    if not isinstance(data, Trajectories):
        raise TypeError(f"data must be Trajectories; got {type(data).__name__}.")
    rng = np.random.default_rng(seed)
    mm, tt = np.nonzero(data.scored_mask)  # t < L_m - 1
    if mm.size == 0:
        raise ValueError(
            "diff_mse_contexts needs at least one episode of length >= 2 to sample contexts from."
        )
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples}.")
    pick = rng.integers(0, mm.size, n_samples)
    m, t = mm[pick], tt[pick]
    i = rng.integers(0, data.n_agents, n_samples)
    k = np.asarray(data.n_actions)[i]
    a = (rng.random(n_samples) * k).astype(np.int64)
    b = (rng.random(n_samples) * k).astype(np.int64)
    joint = data.actions[m, t]  # [S, n]
    ja, jb = joint.copy(), joint.copy()
    rows = np.arange(n_samples)
    ja[rows, i], jb[rows, i] = a, b
    return ja, jb, i


def diff_mse(
    true_mechanism: Any,
    true_params: Any,
    fitted_mechanism: Any,
    fitted_params: Any,
    data: Trajectories,
    *,
    n_samples: int = 20_000,
    seed: int = 0,
) -> float:
    """Payoff-difference MSE on contexts from ``data`` (the test episodes).

    Samples ``n_samples`` contexts (episode m, step t < L_m - 1, agent i) uniformly and
    actions ``a, a'`` uniform in agent i's actions; returns the mean over samples of
    ``((u_i(a, a_-i) - u_i(a', a_-i)) - (u^_i(a, a_-i) - u^_i(a', a_-i)))^2``.
    """
    ja, jb, i = diff_mse_contexts(data, n_samples, seed)
    d_true = context_payoff_differences(true_mechanism, true_params, ja, jb, i)
    d_fit = context_payoff_differences(fitted_mechanism, fitted_params, ja, jb, i)
    return float(np.mean((d_true - d_fit) ** 2))


def context_payoff_differences(
    mechanism: Any, params: Any, joint_a: np.ndarray, joint_b: np.ndarray, agent: np.ndarray
) -> np.ndarray:
    """Return ``u_i(joint_a) - u_i(joint_b)`` at each context: float64[S].

    ``joint_a, joint_b: int[S, n]`` and ``agent: int[S]`` as :func:`diff_mse_contexts` returns
    them; the payoffs of both joint actions come from one batched mechanism call.
    """
    joint_a, joint_b, agent = np.asarray(joint_a), np.asarray(joint_b), np.asarray(agent)
    if joint_a.shape != joint_b.shape or joint_a.ndim != 2 or agent.shape != joint_a.shape[:1]:
        raise ValueError(
            "context_payoff_differences needs joint_a and joint_b of one shape int[S, n] and agent int[S]; "
            f"got {joint_a.shape}, {joint_b.shape} and {agent.shape}."
        )
    joints = jnp.asarray(np.concatenate([joint_a, joint_b]))
    agents = jnp.asarray(np.concatenate([agent, agent]))
    pay = np.asarray(agent_payoffs(mechanism, params, joints, agents), dtype=np.float64)
    return pay[: len(agent)] - pay[len(agent) :]


def _count_vector_hash(count_vectors: np.ndarray, buckets: int) -> np.ndarray:
    """Deterministic hash of count vectors ``int[N, K]`` into ``0 .. buckets - 1``: int64[N].

    A fixed random linear form mod 2^64 (odd 64-bit multipliers from
    ``np.random.default_rng(0)``, the same on every platform and run) followed by the
    SplitMix64 finaliser, then ``mod buckets``.
    """
    K = count_vectors.shape[1]
    mult = np.random.default_rng(0).integers(0, 2**63, size=K, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        h = (count_vectors.astype(np.uint64) * mult[None, :]).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h % np.uint64(buckets)).astype(np.int64)


def joint_action_histogram(
    actions: np.ndarray, n_actions: tuple[int, ...], *, buckets: int | None = None
) -> dict[Any, int]:
    """Count joint actions pooled over episodes and steps: ``actions int[..., n]``.

    Exact joint index when ``n <= 10`` and ``prod K_i <= 2e6``. Otherwise the action-count
    vector (how many agents chose each action; an anonymous histogram): with
    ``buckets=None`` each distinct count vector is its own bin (exact, no collisions); with
    ``buckets=B`` the count vector is hashed deterministically into B bins, as the reference
    does ("a hash of the action-count vector"). ``buckets`` is ignored by the exact-index case.

    Exact count-vector bins are useless with many agents: at n = 40, K = 10 nearly every
    simulated step has a count vector of its own, so two samples of the same process share
    almost no bins. Hashed buckets make the histogram comparable but discard which count
    vectors are close: the KL then only sees how concentrated play is over count vectors.
    """
    if buckets is not None and (
        isinstance(buckets, bool) or not isinstance(buckets, int | np.integer) or int(buckets) < 1
    ):
        raise ValueError(f"buckets must be a positive int or None; got {buckets!r}.")
    n = len(n_actions)
    flat = np.asarray(actions).reshape(-1, n)
    if n <= 10 and math.prod(n_actions) <= 2_000_000:
        codes = np.ravel_multi_index(flat.T, n_actions)
        keys, counts = np.unique(codes, return_counts=True)
        return {int(k): int(c) for k, c in zip(keys, counts, strict=True)}
    K = max(n_actions)
    count_vectors = np.zeros((flat.shape[0], K), dtype=np.int32)
    np.add.at(count_vectors, (np.repeat(np.arange(flat.shape[0]), n), flat.reshape(-1)), 1)
    if buckets is not None:
        keys, counts = np.unique(_count_vector_hash(count_vectors, int(buckets)), return_counts=True)
        return {int(k): int(c) for k, c in zip(keys, counts, strict=True)}
    keys, counts = np.unique(count_vectors, axis=0, return_counts=True)
    return {k.tobytes(): int(c) for k, c in zip(keys, counts, strict=True)}


def kl_divergence(p_counts: dict, q_counts: dict, smoothing: float = 1e-6) -> float:
    """KL(p || q) of two histograms over the union of their bins.

    Probabilities are ``(freq + smoothing) / (1 + smoothing * B)`` with B the number of bins.
    """
    if not p_counts or not q_counts:
        raise ValueError("kl_divergence needs two non-empty histograms.")
    bins = sorted(set(p_counts) | set(q_counts), key=repr)
    p = np.array([p_counts.get(b, 0) for b in bins], dtype=np.float64)
    q = np.array([q_counts.get(b, 0) for b in bins], dtype=np.float64)
    B = len(bins)
    p = (p / p.sum() + smoothing) / (1.0 + smoothing * B)
    q = (q / q.sum() + smoothing) / (1.0 + smoothing * B)
    return float(np.sum(p * (np.log(p) - np.log(q))))


def cfkl_params(
    true_mechanism: Any,
    true_params: Any,
    fitted_mechanism: Any,
    fitted_params: Any,
    learner: Any,
    *,
    n_episodes: int = 200,
    T: int = 35,
    seed: int = 0,
    shift: tuple[float, float, float] = (0.6, 1.4, 1.5),
    eps_cap: float = 0.5,
    smoothing: float = 1e-6,
    n_actions=None,
    buckets: int | None = None,
) -> float:
    """Counterfactual KL under a learner shift (alpha x 0.6, beta x 1.4, eps x 1.5 capped at 0.5).

    Simulates ``n_episodes`` episodes of ``T`` steps under the true and under the fitted
    mechanism with the shifted learner (same random keys for both) and returns
    KL(true || fitted) of the pooled joint-action histograms. The reference uses
    ``T = min(35, T_data)`` during training and ``n_episodes = 300, T = min(50, T_data)``
    for the final evaluation. ``buckets``: see :func:`joint_action_histogram` (hashed
    count-vector bins for games with more than 10 agents or 2e6 joint actions; ``None``
    keeps exact count vectors).
    """
    k = _n_actions(true_mechanism, n_actions)
    shifted = learner.scaled(alpha=shift[0], beta=shift[1], eps=shift[2], eps_cap=eps_cap)
    key = jax.random.key(seed)
    a_true, _ = simulate_compiled(true_mechanism, true_params, shifted, int(n_episodes), int(T), key, k)
    a_fit, _ = simulate_compiled(fitted_mechanism, fitted_params, shifted, int(n_episodes), int(T), key, k)
    return kl_divergence(
        joint_action_histogram(np.asarray(a_true), k, buckets=buckets),
        joint_action_histogram(np.asarray(a_fit), k, buckets=buckets),
        smoothing=smoothing,
    )
