"""A payoff table per group of episodes (treatment arm, market, week), with shrinkage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._util import check_labels, check_n_actions, check_positive
from .tabular import Tabular

__all__ = ["GroupedTabular", "GROUP_SCALE_DISTS"]

#: The priors of the between-group scale: ``"lognormal"`` (boundary-avoiding) or ``"half_normal"``.
GROUP_SCALE_DISTS = ("lognormal", "half_normal")


@dataclass(frozen=True)
class GroupedTabular:
    """``payoff_i(a; g) = table[g, a_1, ..., a_n, i]`` in the episodes of group ``g``.

    Params: ``{"table": float[G, K_1, ..., K_n, n]}``, one table per group, in the order of
    ``groups`` (the data's ``group_names``). A joint action carries its group as one more
    column: ``payoffs(params, joint)`` takes ``int[..., n + 1]`` (actions, then the group's
    code), which is how the counterfactual plan of grouped data evaluates every group's
    payoffs in one call.

    The Bayesian model writes each group's table as a shared table plus a group deviation,
    ``free_g = shared + group_scale * z_g`` with ``z_g ~ N(0, 1)`` (non-centred) and a learned
    between-group scale ``group_scale``: groups with few episodes shrink towards the shared
    table, and with one group it is the ordinary tabular model plus an unidentified deviation.
    Only payoff differences within an agent's own actions are modelled (the centred table);
    payoff levels are not.

    The prior of ``group_scale`` (``group_scale_dist``):

    - ``"lognormal"`` (default): ``LogNormal(log(group_scale_prior), group_scale_log_sd)``,
      boundary-avoiding. It keeps the groups apart by about ``group_scale_prior`` unless the
      data say otherwise, so when arms do not differ their contrasts have about the width of
      the data's own evidence and cover 0 at close to the nominal rate.
    - ``"half_normal"``: ``HalfNormal(group_scale_prior)``, whose mode is 0: when the groups
      agree, ``group_scale`` and every contrast collapse towards 0 (complete pooling), so
      contrasts under no difference are conservative (cover 0 more often than nominal).
      Stronger pooling; suits many groups that are expected to be alike.

    Attributes
    ----------
    n_actions : tuple of int
        ``K_i`` per agent.
    groups : tuple of str
        The group labels, in the order of the table's first axis.
    init_scale : float
        Scale of the ``N(0, init_scale^2)`` draws of :meth:`init`.
    group_scale_prior : float
        Scale of the prior on the between-group sd of each free payoff coordinate (the
        lognormal's median, or the half-normal's scale).
    group_scale_dist : str
        ``"lognormal"`` or ``"half_normal"`` (above).
    group_scale_log_sd : float
        The lognormal's sd of ``log(group_scale)`` (unused by the half-normal).
    """

    n_actions: tuple[int, ...]
    groups: tuple[str, ...]
    init_scale: float = 1.0
    group_scale_prior: float = 1.0
    group_scale_dist: str = "lognormal"
    group_scale_log_sd: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))
        object.__setattr__(self, "groups", check_labels("groups", self.groups))
        check_positive("group_scale_prior", self.group_scale_prior)
        check_positive("group_scale_log_sd", self.group_scale_log_sd)
        if self.group_scale_dist not in GROUP_SCALE_DISTS:
            raise ValueError(
                f"group_scale_dist must be one of {', '.join(map(repr, GROUP_SCALE_DISTS))}; "
                f"got {self.group_scale_dist!r}."
            )

    @property
    def group_scale_median(self) -> float:
        """The prior median of ``group_scale`` (the model's starting value)."""
        if self.group_scale_dist == "half_normal":
            return 0.6744897501960817 * float(self.group_scale_prior)
        return float(self.group_scale_prior)

    @property
    def group_scale_rms(self) -> float:
        """``sqrt(E[group_scale^2])`` under its prior: the prior sd of one deviation coordinate."""
        if self.group_scale_dist == "half_normal":
            return float(self.group_scale_prior)
        return float(self.group_scale_prior) * math.exp(float(self.group_scale_log_sd) ** 2)

    @property
    def n_agents(self) -> int:
        """Number of agents n."""
        return len(self.n_actions)

    @property
    def n_groups(self) -> int:
        """Number of groups G."""
        return len(self.groups)

    @property
    def table_shape(self) -> tuple[int, ...]:
        """(G, K_1, ..., K_n, n)."""
        return (self.n_groups, *self.n_actions, self.n_agents)

    @property
    def tabular(self) -> Tabular:
        """The ungrouped mechanism of one group's table."""
        return Tabular(self.n_actions, self.init_scale)

    def group_code(self, group: str) -> int:
        """Return the position of ``group`` in ``groups`` (ValueError naming the known ones)."""
        label = str(group)
        if label not in self.groups:
            raise ValueError(f"unknown group {label!r}; the groups are {', '.join(self.groups)}.")
        return self.groups.index(label)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Random tables ``N(0, init_scale^2)``: ``{"table": float[G, K_1, ..., K_n, n]}``."""
        return {"table": self.init_scale * jax.random.normal(key, self.table_shape)}

    def payoffs(self, params: dict[str, jax.Array], joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions in a group: int[..., n + 1] (actions, group code) -> float[..., n]."""
        joint = jnp.asarray(joint)
        if joint.shape[-1] != self.n_agents + 1:
            raise ValueError(
                f"GroupedTabular.payoffs needs int[..., n + 1] (the n actions, then the group's code); "
                f"got shape {joint.shape} for n = {self.n_agents}. Use group_params(params, group) "
                "with .tabular for one group's payoffs."
            )
        index = (joint[..., -1], *(joint[..., i] for i in range(self.n_agents)))
        return params["table"][index]

    def group_params(self, params: dict[str, jax.Array], group: str) -> dict[str, jax.Array]:
        """Params of ``tabular`` for one group: ``{"table": float[K_1, ..., K_n, n]}``."""
        return {"table": params["table"][..., self.group_code(group), *([slice(None)] * (self.n_agents + 1))]}
