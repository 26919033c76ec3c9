"""What every learner family shares: the interface, the initial scores and the policy methods.

A family is a NamedTuple of parameters with ``PARAMETERS``, ``TEMPERATURE``, ``init_state``,
``update`` and ``scores(state) -> float[..., n, K]`` (the scores its softmax weighs). The
methods below are written once and assigned in each family's class body
(``log_policy = base.log_policy``), since a ``typing.NamedTuple`` cannot inherit from a mixin:

- :func:`log_policy` and :func:`log_prob`: ``pi_i = (1 - eps) softmax(temperature * scores_i
  + b_i) + eps / K_i``, in full or at the realised actions, with ``b_i`` the family's action
  bias (its ``bias`` field, :func:`~bayes_diml.learners.policy.add_bias`; 0: none),
- :func:`replace`: a copy with some parameters changed,
- :func:`bayes_diml.learners.parameters.check_parameters` and
  :func:`~bayes_diml.learners.parameters.scaled` (``check`` and ``scaled``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from bayes_diml.learners.parameters import temperature_name
from bayes_diml.learners.policy import (
    add_bias,
    epsilon_mixture,
    logit_policy_log_prob,
    masked_log_softmax,
    per_agent,
)

__all__ = [
    "Learner",
    "initial_scores",
    "initial_per_agent",
    "played",
    "realised",
    "logits",
    "log_policy",
    "log_prob",
    "replace",
]


@runtime_checkable
class Learner(Protocol):
    """The interface the likelihood and the simulator use."""

    def init_state(self, action_mask: jax.Array, dtype: Any) -> Any:
        """Return the initial learner state for one episode."""
        ...

    def update(self, state: Any, counterfactual: jax.Array, actions: jax.Array) -> Any:
        """Return the state after observing one step."""
        ...

    def log_policy(self, state: Any, action_mask: jax.Array) -> jax.Array:
        """Return the log-probabilities of the next action: float[..., n, K]."""
        ...


def initial_scores(q0: Any, action_mask: jax.Array, dtype: Any) -> jax.Array:
    """Return initial scores float[n, K] from a scalar, float[n] or float[n, K] (0 on padded actions)."""
    q0 = jnp.asarray(q0, dtype=dtype)
    if q0.ndim == 1:
        q0 = q0[:, None]
    return jnp.where(action_mask, jnp.broadcast_to(q0, action_mask.shape), 0.0).astype(dtype)


def initial_per_agent(value: Any, n_agents: int, dtype: Any) -> jax.Array:
    """Return a scalar or float[n] initial value as float[n, 1] (one entry per agent)."""
    return jnp.broadcast_to(per_agent(value, dtype), (n_agents, 1)).astype(dtype)


def played(actions: jax.Array, K: int, dtype: Any) -> jax.Array:
    """Return the one-hot of the realised actions: int[..., n] -> float[..., n, K]."""
    return jax.nn.one_hot(actions, K, dtype=dtype)


def realised(counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
    """Return the realised payoffs ``u_i(a_i(t), a_-i(t))``: float[..., n, K] -> float[..., n, 1].

    A select, not a gather, so that its gradient is a select too.
    """
    hit = jnp.arange(counterfactual.shape[-1]) == actions[..., None]
    return jnp.where(hit, counterfactual, 0.0).sum(-1, keepdims=True)


def logits(self: Any, state: Any) -> jax.Array:
    """Return ``temperature * scores + bias``, whose softmax is the policy's greedy part: float[..., n, K].

    ``scores = self.scores(state)``; the temperature is the family's ``TEMPERATURE``
    parameter (``beta``, ``eta`` or ``lam``); the bias its ``bias`` field (0 when it has none).
    """
    scores = self.scores(state)
    temperature = per_agent(getattr(self, temperature_name(self)), scores.dtype)
    return add_bias(temperature * scores, getattr(self, "bias", 0.0))


def log_policy(self: Any, state: Any, action_mask: jax.Array) -> jax.Array:
    """Compute ``log((1 - eps) softmax(temperature * scores + bias) + eps / K_i)``: float[..., n, K].

    The logits are the family's ``logits(state)`` (:func:`logits` unless it has its own);
    ``-inf`` on padded actions.
    """
    x = self.logits(state)
    eps = per_agent(self.eps, x.dtype)
    return epsilon_mixture(masked_log_softmax(x, action_mask), eps, action_mask)


def log_prob(self: Any, state: Any, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
    """Compute ``log_policy(state, action_mask)`` at ``actions: int[..., n]``: float[..., n] (cheaper)."""
    x = self.logits(state)
    return logit_policy_log_prob(x, per_agent(self.eps, x.dtype), action_mask, actions)


def replace[L](self: L, **changes: Any) -> L:
    """Return a copy with some parameters changed (``learner.replace(beta=5.0)``)."""
    return self._replace(**changes)
