"""Compiled programs that take the model as an argument, shared by fits of equal shapes.

``ModelSpec.model()`` is a :class:`~bayes_diml.models.BoundModel`: a pytree whose leaves are
the data arrays. The functions here are jitted once, at module level, and take such a model (or
a :class:`Potential` of one) as an argument, so JAX compiles a program per model *structure*
(mechanism, learner spec, priors, data shapes) rather than per data set: the bags of a bagged
posterior, the data sets of a calibration study and refits of new data reuse the programs of
the first fit. A model that closes over its data (``ClosedModel``) or a plain function is an
argument without leaves, compared by identity: it compiles its own programs, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from numpyro.infer.util import constrain_fn, potential_energy

from bayes_diml.models import ClosedModel

__all__ = ["Potential", "Opaque", "as_program_argument", "potential_value_and_grad", "constrain_draws"]


@jax.tree_util.register_pytree_node_class
class Opaque(ClosedModel):
    """A plain function as a pytree without leaves (compared by identity), like ``ClosedModel``."""


def _is_pytree_callable(fn: Any) -> bool:
    """Whether ``fn`` can be a jit argument as it is (a registered pytree, not a bare function)."""
    leaves, treedef = jax.tree_util.tree_flatten(fn)
    return not (treedef.num_leaves == 1 and leaves and leaves[0] is fn)


def as_program_argument(fn: Callable) -> Any:
    """``fn`` if it is a pytree (a bound model, a :class:`Potential`), else ``Opaque(fn)``."""
    return fn if _is_pytree_callable(fn) else Opaque(fn)


@jax.jit
def _potential(model: Any, z: Any) -> jax.Array:
    return potential_energy(model, (), {}, z)


class Potential(NamedTuple):
    """``z -> potential energy`` (minus the log joint in unconstrained space) of ``model``.

    A pytree (the model's data are its leaves): jitted programs that take it as an argument
    are shared by every potential of the same structure and shapes.
    """

    model: Any

    def __call__(self, z: Any) -> jax.Array:
        """Return the potential energy at the unconstrained position ``z``."""
        return _potential(self.model, z)


@jax.jit
def _value_and_grad(potential: Any, z: Any) -> tuple[jax.Array, Any]:
    return jax.value_and_grad(potential)(z)


def potential_value_and_grad(potential: Callable, z: Any) -> tuple[jax.Array, Any]:
    """Return the potential and its gradient at one position (compiled once per structure)."""
    return _value_and_grad(as_program_argument(potential), z)


@jax.jit
def _constrain(model: Any, z: Any) -> dict[str, jax.Array]:
    one = functools.partial(constrain_fn, model, (), {}, return_deterministic=True)
    return jax.vmap(jax.vmap(one))(z)


def constrain_draws(model: Callable, z: dict[str, Any]) -> dict[str, jax.Array]:
    """Unconstrained draws ``{site: [C, S, ...]}`` -> constrained latent and deterministic sites."""
    return _constrain(as_program_argument(model), z)
