"""Learning rules: counterfactual payoffs in, log-probabilities of next actions out.

A learner is a NamedTuple of (traceable) parameters with three pure methods, so that
``jit``, ``grad``, ``vmap`` and NumPyro see through it:

- ``init_state(action_mask, dtype) -> state`` (``action_mask: bool[n, K]``),
- ``update(state, counterfactual, actions) -> state`` with ``counterfactual: float[..., n, K]``
  the payoffs each agent would have got for each own action against the others' realised
  actions and ``actions: int[..., n]`` the realised actions,
- ``log_policy(state, action_mask) -> float[..., n, K]``, the log-probabilities of the
  next action (``-inf`` on padded actions ``k >= K_i``).

Parameters may be scalars (shared) or ``float[n]`` (per agent).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Learner", "LogitQ", "masked_log_softmax", "epsilon_mixture", "per_agent"]


@runtime_checkable
class Learner(Protocol):
    """The interface the likelihood and the simulator use."""

    def init_state(self, action_mask: jax.Array, dtype: Any) -> Any:
        """Initial learner state for one episode."""
        ...

    def update(self, state: Any, counterfactual: jax.Array, actions: jax.Array) -> Any:
        """State after observing one step."""
        ...

    def log_policy(self, state: Any, action_mask: jax.Array) -> jax.Array:
        """Log-probabilities of the next action: float[..., n, K]."""
        ...


def per_agent(x: Any, dtype: Any = None) -> jax.Array:
    """Broadcastable against float[..., n, K]: scalars stay scalars, float[n] -> float[n, 1]."""
    x = jnp.asarray(x, dtype=dtype)
    return x[..., None] if x.ndim >= 1 else x


def masked_log_softmax(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """log softmax over the last axis restricted to ``action_mask``; 0 on masked entries.

    Masked entries are returned as 0 (not -inf) so that later arithmetic and its
    gradients stay finite; callers mask them again at the end.
    """
    x = jnp.where(action_mask, logits, -jnp.inf)
    return jnp.where(action_mask, jax.nn.log_softmax(x, axis=-1), 0.0)


def _safe_log(x: jax.Array) -> jax.Array:
    """log(x) with log(0) = -inf and a finite (zero) gradient at 0."""
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, 1.0)), -jnp.inf)


def epsilon_mixture(log_greedy: jax.Array, eps: jax.Array, action_mask: jax.Array) -> jax.Array:
    """``log((1 - eps) exp(log_greedy) + eps / K_i)``, -inf on masked actions.

    log_greedy: float[..., n, K] (0 on masked entries); eps: scalar or per_agent-shaped.
    Written as ``log p + log1p(eps (1 / (K p) - 1))`` wherever ``p`` is not tiny, so that
    value and gradient stay exact at the boundaries ``eps = 0`` and ``eps = 1``; for tiny
    ``p`` (log p < -30) as a ``logaddexp`` of the two branches.
    """
    dtype = log_greedy.dtype
    log_k = jnp.log(action_mask.sum(-1, keepdims=True).astype(dtype))
    eps = jnp.asarray(eps, dtype)
    ok = log_greedy > -30.0
    lg_a = jnp.where(ok, log_greedy, 0.0)
    direct = lg_a + jnp.log1p(eps * (jnp.exp(-lg_a - log_k) - 1.0))
    eps_b = jnp.where(ok, 0.5, eps)  # keep the unused branch's gradient finite
    lg_b = jnp.where(ok, -1.0, log_greedy)
    split = jnp.logaddexp(jnp.log1p(-eps_b) + lg_b, _safe_log(eps_b) - log_k)
    return jnp.where(action_mask, jnp.where(ok, direct, split), -jnp.inf)


class LogitQ(NamedTuple):
    """Logit-Q learning (DIML eq. 2-3).

    ``Q_i <- (1 - alpha) Q_i + alpha u_i(., a_-i(t))`` and
    ``pi_i = (1 - eps) softmax(beta Q_i) + eps / K_i``, with ``Q_i = q0`` at each
    episode's first step.

    Attributes
    ----------
    alpha : float[] or float[n]
        Learning rate in (0, 1].
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    q0 : float[], float[n] or float[n, K]
        Initial scores.
    """

    alpha: Any
    beta: Any
    eps: Any
    q0: Any = 0.0

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Q at an episode's first step: float[n, K] (0 on padded actions)."""
        dtype = dtype or jnp.result_type(float)
        q0 = jnp.asarray(self.q0, dtype=dtype)
        if q0.ndim == 1:
            q0 = q0[:, None]
        return jnp.where(action_mask, jnp.broadcast_to(q0, action_mask.shape), 0.0).astype(dtype)

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """``(1 - alpha) Q + alpha u``: float[..., n, K] (``actions`` unused: full feedback)."""
        alpha = per_agent(self.alpha, state.dtype)
        return (1.0 - alpha) * state + alpha * counterfactual

    def log_policy(self, state: jax.Array, action_mask: jax.Array) -> jax.Array:
        """``log((1 - eps) softmax(beta Q) + eps / K_i)``: float[..., n, K]."""
        beta = per_agent(self.beta, state.dtype)
        eps = per_agent(self.eps, state.dtype)
        return epsilon_mixture(masked_log_softmax(beta * state, action_mask), eps, action_mask)

    def check(self, n_agents: int) -> LogitQ:
        """Validate shapes and ranges of concrete parameters (no-op on traced ones)."""
        for name, lo, hi, lo_open in (
            ("alpha", 0.0, 1.0, True),
            ("beta", 0.0, np.inf, False),
            ("eps", 0.0, 1.0, False),
        ):
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            arr = np.asarray(value, dtype=float)
            if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_agents):
                raise ValueError(
                    f"LogitQ.{name} must be a scalar or have shape (n,) = ({n_agents},); got {arr.shape}."
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"LogitQ.{name} must be finite; got {value!r}.")
            below = arr <= lo if lo_open else arr < lo
            if np.any(below) or np.any(arr > hi):
                left = "(" if lo_open else "["
                raise ValueError(f"LogitQ.{name} must lie in {left}{lo}, {hi}]; got {value!r}.")
        if not isinstance(self.q0, jax.core.Tracer):
            q0 = np.asarray(self.q0, dtype=float)
            if q0.ndim > 2 or (q0.ndim >= 1 and q0.shape[0] != n_agents):
                raise ValueError(
                    f"LogitQ.q0 must be a scalar, (n,) or (n, K) with n = {n_agents}; got {q0.shape}."
                )
        return self

    def replace(self, **changes: Any) -> LogitQ:
        """A copy with some parameters changed (``learner.replace(beta=5.0)``)."""
        return self._replace(**changes)

    def scaled(self, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5) -> LogitQ:
        """Multiply alpha, beta, eps by factors (alpha capped at 1, eps at ``eps_cap``)."""
        return self._replace(
            alpha=jnp.minimum(jnp.asarray(self.alpha) * alpha, 1.0),
            beta=jnp.asarray(self.beta) * beta,
            eps=jnp.minimum(jnp.asarray(self.eps) * eps, eps_cap),
        )
