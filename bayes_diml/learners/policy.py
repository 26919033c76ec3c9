"""Policies from scores: masked log-softmax, epsilon-exploration mixtures, per-agent parameters.

Pure array functions shared by every learner family: a family computes its scores (``Q``,
cumulative payoffs, attractions) and its policy is
``pi_i = (1 - eps) softmax(temperature * scores_i + b_i) + eps / K_i`` over agent i's ``K_i``
actions, with ``action_mask: bool[n, K]`` marking them (``-inf`` log-probability on padded
actions) and ``b_i`` the family's optional action bias (:func:`add_bias`; 0 by default).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "per_agent",
    "add_bias",
    "masked_log_softmax",
    "epsilon_mixture",
    "epsilon_mixture_at",
    "logit_policy_log_prob",
    "log_softplus",
]

#: Below this argument :func:`log_softplus` uses its asymptotic form ``x - e^x / 2``.
_SOFTPLUS_TAIL = -30.0


def per_agent(x: Any, dtype: Any = None) -> jax.Array:
    """Return ``x`` broadcastable against float[..., n, K]: scalars stay, float[n] -> float[n, 1]."""
    x = jnp.asarray(x, dtype=dtype)
    return x[..., None] if x.ndim >= 1 else x


def add_bias(logits: jax.Array, bias: Any) -> jax.Array:
    """Return ``logits + bias``: an action bias (habit) added to every step's logits.

    logits: float[..., n, K]; bias: a number or float[n, K] (agent i's bias ``b_i[k]`` for its
    action k, in logit units; entries of padded actions are ignored, as the policy masks
    them). Only differences ``b_i[k] - b_i[j]`` change the policy, so a number (the same for
    every action) changes nothing. A concrete zero (the families' default) returns ``logits``
    itself, without an operation.
    """
    if isinstance(bias, str):
        raise ValueError(
            f"bias = {bias!r}: a learner used for likelihoods or simulation needs numbers; "
            "'infer' is for bayes_diml.fit."
        )
    if not isinstance(bias, jax.core.Tracer) and np.ndim(bias) == 0 and float(bias) == 0.0:
        return logits
    return logits + jnp.asarray(bias, dtype=logits.dtype)


def masked_log_softmax(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Compute the log-softmax over the last axis restricted to ``action_mask`` (0 on masked entries).

    Masked entries are returned as 0 (not -inf) so that later arithmetic and its
    gradients stay finite; callers mask them again at the end.
    """
    x = jnp.where(action_mask, logits, -jnp.inf)
    return jnp.where(action_mask, jax.nn.log_softmax(x, axis=-1), 0.0)


def _safe_log(x: jax.Array) -> jax.Array:
    """Compute log(x) with log(0) = -inf and a finite (zero) gradient at 0."""
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, 1.0)), -jnp.inf)


def epsilon_mixture(log_greedy: jax.Array, eps: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Compute ``log((1 - eps) exp(log_greedy) + eps / K_i)``, -inf on masked actions.

    log_greedy: float[..., n, K] (0 on masked entries); eps: scalar or per_agent-shaped.
    Written as ``log p + log1p(eps (1 / (K p) - 1))`` wherever ``p`` is not tiny, so that
    value and gradient stay exact at the boundaries ``eps = 0`` and ``eps = 1``; for tiny
    ``p`` (log p < -30) as a ``logaddexp`` of the two branches.
    """
    dtype = log_greedy.dtype
    log_k = jnp.log(action_mask.sum(-1, keepdims=True).astype(dtype))
    return jnp.where(action_mask, _mixture(log_greedy, jnp.asarray(eps, dtype), log_k), -jnp.inf)


def epsilon_mixture_at(
    log_greedy: jax.Array, eps: jax.Array, action_mask: jax.Array, actions: jax.Array
) -> jax.Array:
    """Compute ``epsilon_mixture(log_greedy, eps, action_mask)`` at ``actions: int[..., n]``: float[..., n].

    The same values and gradients, with the mixture computed on the selected entries only
    (K times fewer transcendental functions than mixing the whole policy).
    """
    dtype = log_greedy.dtype
    # a select, not a gather: its gradient is a select too (no scatter-add, which is slow on
    # CPU and which XLA tries to constant-fold when the actions are constants)
    hit = jnp.arange(log_greedy.shape[-1]) == actions[..., None]  # [..., n, K]
    sel = jnp.where(hit, log_greedy, 0.0).sum(-1, keepdims=True)  # [..., n, 1]
    counts = action_mask.sum(-1, keepdims=True)  # [n, 1]
    log_k = jnp.log(counts.astype(dtype))
    valid = actions[..., None] < counts  # padded actions have probability 0
    return jnp.where(valid, _mixture(sel, jnp.asarray(eps, dtype), log_k), -jnp.inf)[..., 0]


def logit_policy_log_prob(
    logits: jax.Array, eps: jax.Array, action_mask: jax.Array, actions: jax.Array
) -> jax.Array:
    """Compute ``epsilon_mixture(masked_log_softmax(logits, action_mask), eps, action_mask)`` at ``actions``.

    logits: float[..., n, K]; eps: scalar or float[n, 1] (:func:`per_agent`); actions:
    int[..., n]; returns float[..., n]. Computed without a log-softmax array as
    ``log((1 - eps) e_a + eps Z / K_i) - log Z`` with ``e_k = exp(logit_k - max)`` and
    ``Z = sum_k e_k``: one exponential per action and two logarithms per agent, exact (value
    and gradient) at ``eps = 0`` and ``eps = 1``; where ``(1 - eps) e_a + eps Z / K_i``
    underflows (``eps = 0`` and a probability below the dtype's smallest normal) it is
    ``log p_a`` itself. The selections are selects, so their gradients are not scatters.
    """
    mask = jnp.asarray(action_mask)
    dtype, K = logits.dtype, logits.shape[-1]
    # action-major layout: the reductions over the (few) actions become elementwise
    # operations between contiguous slices, which XLA vectorises; the trailing-axis
    # reductions of [..., n, K] with K ~ 2-10 do not vectorise (benchmarks/likelihood.py)
    x = jnp.moveaxis(logits, -1, 0)  # [K, ..., n]
    mask_k = jnp.moveaxis(mask, -1, 0).reshape(K, *(1,) * (x.ndim - 2), mask.shape[0])
    if not _all_true(action_mask):
        x = jnp.where(mask_k, x, -jnp.inf)
    top = jax.lax.stop_gradient(jnp.max(x, axis=0))  # [..., n]
    shifted = x - top
    e = jnp.exp(shifted)  # [K, ..., n]; 0 on padded actions
    total = jnp.sum(e, axis=0)
    log_total = jnp.log(total)
    hit = jnp.arange(K).reshape(K, *(1,) * actions.ndim) == actions  # a select, not a gather
    e_sel = jnp.where(hit, e, 0.0).sum(0)
    counts = mask.sum(-1)  # [n]
    valid = actions < counts  # padded actions have probability 0
    eps = jnp.asarray(eps, dtype)
    eps = eps[..., 0] if eps.ndim >= 1 else eps  # per_agent shape float[n, 1] -> float[n]
    mixed = (1.0 - eps) * e_sel + (eps / counts.astype(dtype)) * total
    ok = mixed > 0.0
    log_pi = jnp.log(jnp.where(ok, mixed, 1.0)) - log_total
    # the underflow case (eps = 0): log p_a from the logits themselves
    log_greedy = jnp.where(hit, shifted, 0.0).sum(0) - log_total
    return jnp.where(valid, jnp.where(ok, log_pi, log_greedy), -jnp.inf)


def log_softplus(x: jax.Array) -> jax.Array:
    """Compute ``log(softplus(x)) = log(log(1 + e^x))`` stably, also where ``softplus(x)`` underflows.

    ``log(softplus(x))`` directly for ``x >= -30``; below, ``x + log(log1p(y) / y)`` with
    ``y = e^x`` is ``x - y / 2`` to within ``y^2 / 24`` (< 1e-27 there), which stays exact when
    ``e^x`` underflows (``x = -200`` in float32). Value and gradient are finite for finite ``x``.
    """
    tail = x < _SOFTPLUS_TAIL
    direct = jnp.log(jax.nn.softplus(jnp.where(tail, _SOFTPLUS_TAIL, x)))
    small = jnp.where(tail, x, _SOFTPLUS_TAIL)
    return jnp.where(tail, small - 0.5 * jnp.exp(small), direct)


def _all_true(mask: Any) -> bool:
    """Tell whether a concrete mask is all True (False when it is traced: unknown)."""
    if isinstance(mask, jax.core.Tracer):
        return False
    return bool(np.all(np.asarray(mask)))


def _mixture(log_greedy: jax.Array, eps: jax.Array, log_k: jax.Array) -> jax.Array:
    """Compute the unmasked mixture of :func:`epsilon_mixture` (``log_k = log K_i``, broadcastable)."""
    ok = log_greedy > -30.0
    lg_a = jnp.where(ok, log_greedy, 0.0)
    direct = lg_a + jnp.log1p(eps * (jnp.exp(-lg_a - log_k) - 1.0))
    # tiny p: a logaddexp of the two branches, whose eps terms are per agent (not per entry);
    # _safe_log keeps the unused branch's gradient finite at eps = 0 and eps = 1
    lg_b = jnp.where(ok, -1.0, log_greedy)
    split = jnp.logaddexp(_safe_log(1.0 - eps) + lg_b, _safe_log(eps) - log_k)
    return jnp.where(ok, direct, split)
