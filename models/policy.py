"""The distribution of the agents' next actions under a learner: ``LearnerPolicy``.

``LearnerPolicy(learner, states, action_mask)`` is the same distribution as
``Categorical(logits=learner.log_policy(states, action_mask))``, but its ``log_prob``
scores only the actions it is given (``learner.log_prob``): the log-policy over every
action, and its normalisation by ``Categorical``, are never formed. Scoring observed
actions is all a likelihood needs, and the model's gradient is 3-4x cheaper that way
(``benchmarks/nuts.py``). ``sample`` forms the whole policy, as it must.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints

from bayes_diml.likelihood import action_log_prob

__all__ = ["LearnerPolicy"]

#: One compiled program (of stable identity) for scoring actions; see ``logit_q._scan_states``.
_action_log_prob = jax.jit(action_log_prob)


class LearnerPolicy(dist.Distribution):
    """Next action of every agent given the learner's states.

    ``batch_shape`` is the states' leading shape ``[..., n]``; values are int[..., n].

    Parameters
    ----------
    learner : Learner
        ``LogitQ``, ``Hedge``, ... with concrete (or traced) parameters.
    states : pytree
        The learner's states after each step, leaves with leading shape ``[..., n]``
        (float[M, S, n, K] for LogitQ; see :func:`bayes_diml.likelihood.scan_states`).
    action_mask : bool[n, K]
        Which actions exist for each agent (padding for unequal action counts).
    """

    arg_constraints: dict = {}
    support = constraints.nonnegative_integer
    has_enumerate_support = False
    pytree_data_fields = ("learner", "states", "action_mask")

    def __init__(self, learner: Any, states: Any, action_mask: Any, *, validate_args: bool | None = None):
        self.learner = learner
        self.states = states
        self.action_mask = jnp.asarray(action_mask)
        lead = jax.tree_util.tree_leaves(states)[0]
        super().__init__(batch_shape=tuple(lead.shape[:-1]), validate_args=validate_args)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """Log-probability of ``value: int[..., n]``: float[..., n]."""
        return _action_log_prob(self.learner, self.states, self.action_mask, jnp.asarray(value))

    def log_policy(self) -> jax.Array:
        """Return the whole log-policy: float[..., n, K] (``-inf`` on padded actions)."""
        return self.learner.log_policy(self.states, self.action_mask)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Draw actions: ``int[*sample_shape, ..., n]``."""
        log_pi = self.log_policy()
        # padded actions get the smallest finite logit: probability 0, valid parameter
        log_pi = jnp.where(jnp.isneginf(log_pi), jnp.finfo(log_pi.dtype).min, log_pi)
        return dist.Categorical(logits=log_pi).sample(key, sample_shape)
