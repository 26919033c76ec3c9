"""The model with its data as arguments: fits of equal shapes share compiled programs.

A model that closes over its data set compiles its own programs (the data are constants in
them): a NUTS chain, the dispersed starts, the MAP's optimiser loop, the log-likelihood for LOO.
For a small game that is ~13 s of compilation against ~1 s of sampling, paid again by every
bootstrap bag, every data set of a calibration study and every candidate of ``learner="auto"``
fitted to new data. :class:`BoundModel` is the same NumPyro model as a JAX pytree: the data
arrays (:class:`ModelData`) are its leaves and everything else (mechanism, learner spec, priors,
sizes) its static structure, compared by value. Passed as an *argument* to a jitted function,
it is traced with the arrays abstract, so every fit whose data have the same shapes and whose
structure is equal runs the same compiled program.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from bayes_diml.counterfactual import CounterfactualPlan, action_mask
from bayes_diml.data import Trajectories

__all__ = ["ModelData", "BoundModel", "ClosedModel", "bind_model"]


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "actions",
        "scored_mask",
        "subject_index",
        "payoffs",
        "payoff_mask",
        "plan_points",
        "plan_index",
        "plan_contexts",
    ],
    meta_fields=["n_actions", "n_subjects", "has_payoffs", "plan_kind"],
)
@dataclasses.dataclass(frozen=True)
class ModelData:
    """The arrays of a data set that the model reads, and their static facts.

    Attributes
    ----------
    actions : int[M, T, n]
    scored_mask : bool[M, T-1]
        True where the next action is scored (not padding).
    subject_index : int[M]
    payoffs : float[M, T, n] or None
        Observed payoffs, 0 where unobserved (``payoff_mask`` says where).
    payoff_mask : bool[M, T, n] or None
    plan_points, plan_index : the arrays of the counterfactual plan (its ``points``, ``index``).
    plan_contexts : float[G, C] or None
        A covariate plan's distinct covariate rows (data, so fits of equal shapes share programs).
    n_actions : tuple of int
    n_subjects : int
    has_payoffs : bool
    plan_kind : str
    """

    actions: Any
    scored_mask: Any
    subject_index: Any
    payoffs: Any
    payoff_mask: Any
    plan_points: Any
    plan_index: Any
    plan_contexts: Any
    n_actions: tuple[int, ...]
    n_subjects: int
    has_payoffs: bool
    plan_kind: str

    @classmethod
    def of(cls, data: Trajectories, plan: CounterfactualPlan) -> ModelData:
        """Return the arrays of ``data`` and its counterfactual ``plan``."""
        has = bool(data.has_payoffs)
        return cls(
            actions=np.asarray(data.actions),
            scored_mask=np.asarray(data.scored_mask),
            subject_index=np.asarray(data.subject_index),
            payoffs=np.nan_to_num(data.payoffs) if has else None,
            payoff_mask=np.isfinite(data.payoffs) if has else None,
            plan_points=np.asarray(plan.points),
            plan_index=np.asarray(plan.index),
            plan_contexts=None if plan.contexts is None else np.asarray(plan.contexts),
            n_actions=tuple(int(k) for k in data.n_actions),
            n_subjects=int(data.n_subjects),
            has_payoffs=has,
            plan_kind=str(plan.kind),
        )

    @property
    def n_agents(self) -> int:
        """The number of agents."""
        return len(self.n_actions)

    @property
    def plan(self) -> CounterfactualPlan:
        """The counterfactual plan (its arrays as held here: NumPy, or traced in a program)."""
        mask = action_mask(self.n_actions)
        return CounterfactualPlan(self.plan_kind, self.plan_points, self.plan_index, mask, self.plan_contexts)

    def observed_payoffs(self) -> tuple[Any, Any]:
        """``(payoffs, payoff_mask)``: observed payoffs (0 where missing) and where; Nones without."""
        return self.payoffs, self.payoff_mask


@jax.tree_util.register_pytree_node_class
class BoundModel:
    """A NumPyro model of no arguments whose data are pytree leaves.

    ``BoundModel(model_fn, data, static)`` calls ``model_fn(data, *static_args, **static_kwargs)``
    where ``data`` is a :class:`ModelData`. Two bound models with equal ``model_fn`` and static
    arguments and data of the same shapes flatten to the same tree structure, so a jitted program
    that takes one as an argument serves the other without compiling again. The static arguments
    must be hashable and compare by value; :func:`bind_model` checks that.
    """

    def __init__(self, model_fn: Callable, data: ModelData, static: tuple) -> None:
        self.model_fn = model_fn
        self.data = data
        self.static = static

    def __call__(self, **extra: Any) -> None:
        """Run the model (inside a NumPyro handler); ``extra`` keywords (e.g. ``batch_size``) are added."""
        args, kwargs = self.static
        return self.model_fn(self.data, *args, **{**dict(kwargs), **extra}, plan=self.data.plan)

    def tree_flatten(self) -> tuple[tuple, tuple]:
        """Return the data as leaves, the model function and static arguments as structure."""
        return (self.data,), (self.model_fn, self.static)

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> BoundModel:
        """Rebuild from the structure and the (possibly traced) data."""
        return cls(aux[0], children[0], aux[1])


@jax.tree_util.register_pytree_node_class
class ClosedModel:
    """A model that closes over its data (a pytree without leaves): compiled per model object.

    The fallback of :func:`bind_model` when the static arguments cannot be compared by value
    (e.g. a learner holding arrays, a device mesh).
    """

    def __init__(self, model: Callable) -> None:
        self.model = model

    def __call__(self, *args: Any, **extra: Any) -> Any:
        """Run the model (inside a NumPyro handler); ``extra`` keywords (e.g. ``batch_size``) are added."""
        return self.model(*args, **extra)

    def tree_flatten(self) -> tuple[tuple, Callable]:
        """No leaves; the model is the static part."""
        return (), self.model

    @classmethod
    def tree_unflatten(cls, aux: Callable, children: tuple) -> ClosedModel:
        """Rebuild from the static part."""
        return cls(aux)


def _static_key(value: Any) -> Any:
    """``value`` made safe to compare by value: NamedTuples and dataclasses keep their type.

    Tuple equality ignores the class (two learner families with equal numbers would compare
    equal), so every NamedTuple is paired with its type.
    """
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (type(value), tuple(_static_key(v) for v in value))
    if isinstance(value, tuple):
        return tuple(_static_key(v) for v in value)
    return value


def bind_model(
    model_fn: Callable,
    data: Trajectories,
    plan: CounterfactualPlan,
    *args: Any,
    **kwargs: Any,
) -> BoundModel | ClosedModel:
    """Return ``model_fn(data, *args, plan=plan, **kwargs)`` as a model of no arguments.

    A :class:`BoundModel` (data as leaves, programs shared across data sets of the same shapes)
    when ``args`` and ``kwargs`` hash and compare by value; else a :class:`ClosedModel`.
    """
    static = (tuple(args), tuple(sorted(kwargs.items())))
    try:
        hash(_static_key(static))
        usable = _static_key(static) == _static_key(static)
    except TypeError:
        usable = False
    if not usable or not isinstance(usable, bool) or kwargs.get("mesh") is not None:
        return ClosedModel(functools.partial(model_fn, data, *args, plan=plan, **kwargs))
    return BoundModel(model_fn, ModelData.of(data, plan), _KeyedStatic(static))


class _KeyedStatic(tuple):
    """The static arguments, compared and hashed by :func:`_static_key` (types included)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _KeyedStatic) and _static_key(tuple(self)) == _static_key(tuple(other))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(_static_key(tuple(self)))
