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

__all__ = ["LearnerPolicy", "EpisodeLearnerPolicy", "episode_axes"]

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
        (float[M, S, n, K] for LogitQ; see ``bayes_diml.likelihood.scan_states``).
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


def episode_axes(learner: Any, episode_fields: tuple[str, ...]) -> Any:
    """Return ``vmap`` axes for a learner: 0 for the fields in ``episode_fields``, None for the rest."""
    return type(learner)(**{f: (0 if f in episode_fields else None) for f in learner._fields})


class EpisodeLearnerPolicy(LearnerPolicy):
    """:class:`LearnerPolicy` whose learner has some fields per episode (float[M] leading axis).

    ``episode_fields`` name those fields (per-subject parameters, ``"infer_subject"``); the
    policy of episode ``m`` uses their ``m``-th entries. ``states`` and values have the
    episode axis first (float[M, S, n, K] and int[M, S, n] for LogitQ).
    """

    pytree_aux_fields = ("episode_fields",)

    def __init__(
        self,
        learner: Any,
        states: Any,
        action_mask: Any,
        episode_fields: tuple[str, ...],
        *,
        validate_args: bool | None = None,
    ):
        self.episode_fields = tuple(episode_fields)
        super().__init__(learner, states, action_mask, validate_args=validate_args)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """Log-probability of ``value: int[M, ..., n]``: float[M, ..., n]."""
        axes = episode_axes(self.learner, self.episode_fields)
        fn = jax.vmap(lambda lrn, st, v: action_log_prob(lrn, st, self.action_mask, v), in_axes=(axes, 0, 0))
        return fn(self.learner, self.states, jnp.asarray(value))

    def log_policy(self) -> jax.Array:
        """Return the whole log-policy: float[M, ..., n, K] (``-inf`` on padded actions)."""
        axes = episode_axes(self.learner, self.episode_fields)
        fn = jax.vmap(lambda lrn, st: lrn.log_policy(st, self.action_mask), in_axes=(axes, 0))
        return fn(self.learner, self.states)
