"""What-if simulation from posterior draws: a changed learner or an edited mechanism.

:func:`counterfactual` is the body of ``Posterior.counterfactual`` (which documents it);
:class:`EditedMechanism` wraps a mechanism with a payoff transformation (a toll, a subsidy).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_diml.learners import LogitQ
from bayes_diml.models import learner_fields, params_from_sites
from bayes_diml.simulation import simulate_arrays

from .errors import ConfoundingWarning

__all__ = ["EditedMechanism", "evenly_spaced", "draw_arrays", "counterfactual"]

STATISTICS = ("action_frequencies", "mean_payoff", "welfare")


@dataclasses.dataclass(frozen=True, eq=False)
class EditedMechanism:
    """A mechanism with its payoffs transformed: ``edit(payoffs float[..., n], joint int[..., n])``.

    Example: a toll of 0.1 on route 2 for everyone on it:
    ``EditedMechanism(mech, lambda u, a: u - 0.1 * (a == 2))``.
    """

    base: Any
    edit: Callable[[jax.Array, jax.Array], jax.Array]

    @property
    def n_actions(self):
        """The base mechanism's K_i."""
        return self.base.n_actions

    def init(self, key):
        """Return the base mechanism's init."""
        return self.base.init(key)

    def payoffs(self, params, joint):
        """Return the edited payoffs: int[..., n] -> float[..., n]."""
        joint = jnp.asarray(joint)
        return self.edit(self.base.payoffs(params, joint), joint)


def evenly_spaced(n_total: int, n_draws: int | None) -> np.ndarray:
    """Return int[min(n_draws, n_total)]: evenly spaced draw indices (all when ``n_draws`` is None)."""
    if n_draws is None or n_draws >= n_total:
        return np.arange(n_total)
    return np.linspace(0, n_total - 1, n_draws).round().astype(int)


def draw_arrays(
    post: Any, n_draws: int | None, seed: int
) -> tuple[dict[str, jax.Array], tuple[str, ...], tuple[jax.Array, ...], jax.Array]:
    """Return ``(sites, fields, learner_values, keys)`` of ``n_draws`` evenly spaced posterior draws.

    ``sites``: the latent sites {name: [D, ...]}; ``fields``: the learner's parameter names with
    their draws ``learner_values`` ([D, ...] each); ``keys``: one simulation key per draw.
    """
    idx = evenly_spaced(post.n_draws, n_draws)
    sites = {name: jnp.asarray(v[idx]) for name, v in post.site_draws().items()}
    ld = post.learner_draws()
    fields = tuple(learner_fields(ld))
    lds = tuple(jnp.asarray(np.asarray(getattr(ld, f))[idx]) for f in fields)
    return sites, fields, lds, jax.random.split(jax.random.key(seed), len(idx))


def counterfactual(
    post: Any,
    learner: LogitQ | Callable[[LogitQ], LogitQ] | None = None,
    mechanism_edit: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    n_episodes: int = 100,
    T: int | None = None,
    statistic: str | Callable = "action_frequencies",
    *,
    n_draws: int | None = 200,
    seed: int = 0,
) -> np.ndarray:
    """Return float[n_draws, ...]: a statistic of simulations from draws of ``post``.

    See ``Posterior.counterfactual`` for the arguments.
    """
    T = int(T or post.data.n_steps)
    if isinstance(statistic, str) and statistic not in STATISTICS:
        raise ValueError(
            f"unknown statistic {statistic!r}; use 'action_frequencies', 'mean_payoff', "
            "'welfare' or a callable."
        )
    if post.confounded and statistic in ("mean_payoff", "welfare"):
        warnings.warn(
            "payoff levels are confounded with beta in this fit (no observed payoffs): "
            f"'{statistic}' is in the prior's units, not identified.",
            ConfoundingWarning,
            stacklevel=3,
        )
    mech = post.mechanism if mechanism_edit is None else EditedMechanism(post.mechanism, mechanism_edit)
    k = post.data.n_actions
    sites, fields, lds, keys = draw_arrays(post, n_draws, seed)
    K = max(k)

    def stat(actions, payoffs):
        if callable(statistic):
            return statistic(actions, payoffs)
        if statistic == "action_frequencies":
            return jax.nn.one_hot(actions, K).mean(axis=(0, 1))
        if statistic == "mean_payoff":
            return payoffs.mean(axis=(0, 1))
        return payoffs.sum(-1).mean()

    def one(args):
        s, l_fields, key = args
        l_draw = post.learner._replace(**dict(zip(fields, l_fields, strict=True)))
        params = params_from_sites(post.mechanism, s)
        lq = l_draw if learner is None else (learner(l_draw) if callable(learner) else learner)
        actions, payoffs = simulate_arrays(mech, params, lq, int(n_episodes), T, key, k)
        return stat(actions, payoffs)

    if learner is not None and not callable(learner) and callable(getattr(learner, "check", None)):
        learner.check(len(k))
    out = jax.lax.map(one, (sites, lds, keys))
    return np.asarray(out)
