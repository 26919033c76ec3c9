"""A free payoff table: every (joint action, agent) cell is a parameter."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._util import check_n_actions

__all__ = ["Tabular"]


class _hybridmethod:
    """A method callable on the class or on an instance (``self`` is None on the class)."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj, objtype=None):
        return lambda *args, **kwargs: self.fn(obj, *args, **kwargs)


@dataclass(frozen=True)
class Tabular:
    """``payoff_i(a) = table[a_1, ..., a_n, i]``.

    Params: ``{"table": float[K_1, ..., K_n, n]}``. ``init`` draws ``N(0, init_scale^2)``.

    ``levels``: whether the Bayesian model also infers payoff *levels*, each agent's mean
    payoff over its own actions for every opponent profile. Under full-feedback learners
    (LogitQ, Hedge, FictitiousPlay) that mean is a gauge and the table is sampled in centred
    coordinates only (``levels=False``); observed payoffs and learners that reinforce the
    played action (BanditQ, EWA with delta < 1) see levels, and ``fit`` switches
    ``levels=True`` on for them.
    """

    n_actions: tuple[int, ...]
    init_scale: float = 1.0
    levels: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))

    @property
    def n_agents(self) -> int:
        """Number of agents n."""
        return len(self.n_actions)

    @property
    def table_shape(self) -> tuple[int, ...]:
        """(K_1, ..., K_n, n)."""
        return (*self.n_actions, self.n_agents)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Random table ``N(0, init_scale^2)``: ``{"table": float[K_1, ..., K_n, n]}``."""
        return {"table": self.init_scale * jax.random.normal(key, self.table_shape)}

    def payoffs(self, params: dict[str, jax.Array], joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n]."""
        joint = jnp.asarray(joint)
        return params["table"][tuple(joint[..., i] for i in range(self.n_agents))]

    @_hybridmethod
    def params_from_table(self, table) -> dict[str, jax.Array]:
        """Params holding ``table: float[K_1, ..., K_n, n]``.

        Callable on the class (``Tabular.params_from_table(t)``) or on an instance, which
        also checks the shape against its ``n_actions``.
        """
        table = jnp.asarray(table)
        if table.ndim < 2 or table.shape[-1] != table.ndim - 1:
            raise ValueError(
                f"table must have shape (K_1, ..., K_n, n) with n = table.ndim - 1; got {table.shape}."
            )
        if self is not None and table.shape != self.table_shape:
            raise ValueError(
                f"table must have shape (K_1, ..., K_n, n) = {self.table_shape}; got {table.shape}."
            )
        return {"table": table}

    @_hybridmethod
    def table(self, params: dict[str, jax.Array]) -> jax.Array:
        """Return the payoff table float[K_1, ..., K_n, n] held by ``params``."""
        return params["table"]

    @classmethod
    def from_table(cls, table) -> tuple[Tabular, dict[str, jax.Array]]:
        """Mechanism and params from a table float[K_1, ..., K_n, n]."""
        table = jnp.asarray(table)
        mech = cls(tuple(table.shape[:-1]))
        return mech, mech.params_from_table(table)
