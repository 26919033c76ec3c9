"""Parametrised mechanism edits: the changes a designer can make, as functions of a parameter.

An edit is ``edit(u, joint, theta) -> float[..., n]``: ``u`` the mechanism's payoffs
(float[..., n]) at joint actions ``joint`` (int[..., n]), ``theta`` the edit's parameters
(float[d]). The built-in edits act on the agents who play given actions:

- :func:`toll`: ``u_i - theta_j`` for an agent on action ``actions[j]`` (a congestion toll);
- :func:`subsidy`: ``u_i + theta_j`` (the same with the opposite sign);
- :func:`rebate`: ``u_i * (1 + theta_j)`` (a multiplicative rebate, or a tax when negative).

``theta`` has one entry per action named, or one entry shared by all of them. Every edit is
the identity at ``theta = 0``. Any function of the same signature may be used instead
(``Posterior.design``); payoff units are the mechanism's, so an additive edit is only
meaningful where the payoff scale is identified (observed payoffs or a fixed temperature).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

__all__ = ["Edit", "toll", "subsidy", "rebate", "EDITS", "make_edit"]

#: ``edit(u float[..., n], joint int[..., n], theta float[d]) -> float[..., n]``.
Edit = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _actions(actions: int | Sequence[int]) -> tuple[int, ...]:
    out = (int(actions),) if isinstance(actions, int) else tuple(int(a) for a in actions)
    if not out:
        raise ValueError("an edit needs at least one action to act on.")
    if any(a < 0 for a in out):
        raise ValueError(f"actions must be >= 0; got {out}.")
    if len(set(out)) != len(out):
        raise ValueError(f"actions must be distinct; got {out}.")
    return out


def _per_action(actions: tuple[int, ...], joint: jax.Array, theta: jax.Array) -> jax.Array:
    """Return float[..., n]: ``theta_j`` where ``joint == actions[j]``, else 0."""
    theta = jnp.atleast_1d(jnp.asarray(theta))
    theta = jnp.broadcast_to(theta, (len(actions),)) if theta.shape == (1,) else theta
    on = jnp.stack([joint == a for a in actions], axis=-1)  # [..., n, J]
    return jnp.sum(jnp.where(on, theta, 0.0), axis=-1)


def _checked(name: str, actions: tuple[int, ...], fn: Edit) -> Edit:
    fn.__name__ = f"{name}{list(actions)}"
    fn.actions = actions  # type: ignore[attr-defined]
    fn.theta_size = len(actions)  # type: ignore[attr-defined]
    return fn


def toll(actions: int | Sequence[int]) -> Edit:
    """Return the edit ``u_i - theta_j`` for agents playing ``actions[j]`` (theta: float[J] or [1])."""
    acts = _actions(actions)
    return _checked("toll", acts, lambda u, joint, theta: u - _per_action(acts, joint, theta))


def subsidy(actions: int | Sequence[int]) -> Edit:
    """Return the edit ``u_i + theta_j`` for agents playing ``actions[j]`` (theta: float[J] or [1])."""
    acts = _actions(actions)
    return _checked("subsidy", acts, lambda u, joint, theta: u + _per_action(acts, joint, theta))


def rebate(actions: int | Sequence[int]) -> Edit:
    """Return the edit ``u_i * (1 + theta_j)`` for agents playing ``actions[j]`` (theta: float[J] or [1])."""
    acts = _actions(actions)
    return _checked("rebate", acts, lambda u, joint, theta: u * (1.0 + _per_action(acts, joint, theta)))


#: The built-in edits by name (``bayes-diml design --edit NAME``).
EDITS: dict[str, Callable[[int | Sequence[int]], Edit]] = {"toll": toll, "subsidy": subsidy, "rebate": rebate}


def make_edit(name: str, actions: int | Sequence[int]) -> Edit:
    """Return the built-in edit ``name`` (``toll``, ``subsidy``, ``rebate``) on ``actions``."""
    if name not in EDITS:
        raise ValueError(f"unknown edit {name!r}; choose one of {', '.join(EDITS)}.")
    return EDITS[name](actions)
