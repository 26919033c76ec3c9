"""The mechanism interface and the helpers every mechanism shares.

A mechanism object holds *structure* only (numbers of agents and actions, fixed
constants); its weights are a separate pytree ``params``. Every mechanism offers

- ``init(key) -> params``
- ``payoffs(params, joint) -> float[..., n]`` for ``joint: int[..., n]``
- ``n_actions: tuple[int, ...]`` (``K_i``) and ``n_agents``.

Mechanisms whose payoff depends only on the own action and the counts of the others'
actions (symmetric anonymous games) also offer
``count_payoffs(params, own, opponent_counts) -> float[...]``; the likelihood then
evaluates them once per distinct (own action, opponent counts) pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Mechanism",
    "CountMechanism",
    "joint_profiles",
    "n_profiles",
    "vmap_joint",
    "param_count",
    "flatten_params",
    "agent_payoffs",
    "sum_to_zero_basis",
    "GaugeFreeLeaves",
]


@runtime_checkable
class Mechanism(Protocol):
    """What the likelihood, the simulator and the models need of a mechanism."""

    n_actions: tuple[int, ...]

    def init(self, key: jax.Array) -> Any:
        """Draw parameters (a pytree of arrays)."""
        ...

    def payoffs(self, params: Any, joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n]."""
        ...


@runtime_checkable
class CountMechanism(Mechanism, Protocol):
    """A symmetric mechanism: payoff of the own action given the others' action counts."""

    def count_payoffs(self, params: Any, own: jax.Array, opponent_counts: jax.Array) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] (summing to n-1) -> float[...]."""
        ...


def n_profiles(n_actions: tuple[int, ...]) -> int:
    """P = prod K_i, the number of joint action profiles."""
    return math.prod(n_actions)


def joint_profiles(n_actions: tuple[int, ...]) -> np.ndarray:
    """All joint profiles in C order: int[P, n] (row p is ``np.unravel_index(p, K)``)."""
    grids = np.indices(n_actions).reshape(len(n_actions), -1)
    return grids.T.astype(np.int32)


def vmap_joint(fn: Callable[[Any, jax.Array], jax.Array], params: Any, joint: jax.Array) -> jax.Array:
    """Apply a one-profile payoff function ``fn(params, int[n]) -> float[n]`` to int[..., n]."""
    joint = jnp.asarray(joint)
    batch = joint.shape[:-1]
    flat = joint.reshape((-1, joint.shape[-1]))
    out = jax.vmap(fn, in_axes=(None, 0))(params, flat)
    return out.reshape(batch + out.shape[1:])


def param_count(params: Any) -> int:
    """Count the scalar parameters in a params pytree."""
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def flatten_params(params: Any) -> dict[str, Any]:
    """Leaves of a params pytree by dotted path (``'table'``, ``'mlp.layers.0.weight'``)."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        out[".".join(_key_name(k) for k in path) or "value"] = leaf
    return out


def agent_payoffs(mechanism: Any, params: Any, joint: jax.Array, agent: jax.Array) -> jax.Array:
    """Payoff of one chosen agent per joint action: joint int[S, n], agent int[S] -> float[S].

    Anonymous mechanisms (``count_payoffs``) are evaluated for that agent only, so this
    stays cheap with hundreds of agents.
    """
    joint = jnp.asarray(joint)
    agent = jnp.asarray(agent)
    own = jnp.take_along_axis(joint, agent[:, None], axis=-1)[:, 0]
    if callable(getattr(mechanism, "count_payoffs", None)) and len(set(mechanism.n_actions)) == 1:
        K = mechanism.n_actions[0]
        counts = jax.nn.one_hot(joint, K, dtype=jnp.result_type(float)).sum(-2)
        others = counts - jax.nn.one_hot(own, K, dtype=counts.dtype)
        return mechanism.count_payoffs(params, own, others)
    pay = mechanism.payoffs(params, joint)
    return jnp.take_along_axis(pay, agent[:, None], axis=-1)[:, 0]


def sum_to_zero_basis(K: int) -> np.ndarray:
    """Orthonormal basis of the sum-to-zero subspace of R^K: float[K, K-1] (Helmert-like)."""
    if K == 1:
        return np.zeros((1, 0))
    ones = np.ones((K, 1)) / np.sqrt(K)
    q, _ = np.linalg.qr(np.hstack([ones, np.eye(K)[:, : K - 1]]))
    basis = q[:, 1:]
    return basis * np.sign(basis[0:1, :] + 1e-12)


class GaugeFreeLeaves:
    """Mixin: an identified parametrisation that drops pure-gauge leaves (set to zero).

    A subclass lists ``_gauge_leaves`` (dotted paths, as in :func:`flatten_params`) whose
    only effect is to add a constant to each agent's payoffs whatever its own action (e.g.
    the output bias of a payoff network): the likelihood cannot see them.
    """

    _gauge_leaves: tuple[str, ...] = ()

    def _template(self):
        return self.init(jax.random.key(0))

    def identified_sites(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the identified parameters."""
        flat = flatten_params(self._template())
        return {k: tuple(np.shape(v)) for k, v in flat.items() if k not in self._gauge_leaves}

    def params_from_identified(self, sites: dict[str, Any]) -> Any:
        """Full params with the gauge leaves set to zero."""
        template = self._template()
        leaves, treedef = jax.tree_util.tree_flatten(template)
        names = list(flatten_params(template))
        filled = [
            jnp.zeros_like(leaf) if name in self._gauge_leaves else jnp.asarray(sites[name])
            for name, leaf in zip(names, leaves, strict=True)
        ]
        return jax.tree_util.tree_unflatten(treedef, filled)

    def identified_from_params(self, params: Any) -> dict[str, Any]:
        """Return the identified coordinates of ``params`` (gauge leaves dropped)."""
        return {k: v for k, v in flatten_params(params).items() if k not in self._gauge_leaves}
