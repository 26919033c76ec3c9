"""The mechanism's sample sites: names, gauge fixing and conversion to and from params.

A ``Tabular`` mechanism is sampled in gauge-free coordinates ``u{i}_free`` (see
:func:`sum_to_zero_basis`), plus ``u{i}_level`` when its levels are parameters; mechanisms
with ``identified_sites()`` as ``mech.<name>``; any other as one ``mech.<path>`` site per
leaf of its params pytree. A ``GroupedTabular`` has shared ``u{i}_free``, non-centred group
deviations ``u{i}_group`` float[G, ...] and their learned sd ``group_scale``. A
``CovariateTabular`` has the table's ``u{i}_free`` and the slopes' ``u{i}_slope`` float[C, ...],
both in the same gauge-free coordinates.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_diml.mechanisms import CovariateTabular, GroupedTabular, Tabular, flatten_params, param_count
from bayes_diml.mechanisms.base import sum_to_zero_basis
from bayes_diml.precision import FULL_PRECISION

from .priors import Priors

__all__ = [
    "GROUP_SCALE",
    "grouped_free",
    "PARAM_RECORD_LIMIT",
    "sum_to_zero_basis",
    "mechanism_sites",
    "params_from_sites",
    "sites_from_params",
    "free_from_table",
    "param_site_names",
    "sample_mechanism",
    "group_scale_distribution",
]


def _tabular_from_free(mechanism: Tabular, free: list[jax.Array]) -> jax.Array:
    """Return the centred table float[K_1..K_n, n] from gauge-free coordinates (one array per agent)."""
    cols = []
    for i, z in enumerate(free):
        H = jnp.asarray(sum_to_zero_basis(mechanism.n_actions[i]), dtype=z.dtype)
        # axis i -> last; full float32 precision on GPUs too, as the mechanisms' products
        axes = ([z.ndim - mechanism.n_agents + i], [1])
        c = jnp.tensordot(z, H, axes=axes, precision=FULL_PRECISION)
        cols.append(jnp.moveaxis(c, -1, z.ndim - mechanism.n_agents + i))
    return jnp.stack(cols, axis=-1)


#: The learned between-group sd of a ``GroupedTabular``'s free payoff coordinates.
GROUP_SCALE = "group_scale"


def grouped_free(mechanism: GroupedTabular, sites: dict[str, Any]) -> list[jax.Array]:
    """Each group's free coordinates ``shared + group_scale * deviation``, one array per agent.

    ``sites``: ``u{i}_free`` ``[..., *free_i]``, ``u{i}_group`` ``[..., G, *free_i]`` and
    ``group_scale`` ``[...]`` (any batch dims, e.g. chain and draw); returns agent i's
    ``[..., G, *free_i]``.
    """
    n = mechanism.n_agents
    scale = jnp.asarray(sites[GROUP_SCALE])
    scale = scale.reshape(scale.shape + (1,) * (n + 1))  # over the group axis and n free axes
    free = []
    for i in range(n):
        shared = jnp.asarray(sites[f"u{i}_free"])
        free.append(jnp.expand_dims(shared, shared.ndim - n) + scale * jnp.asarray(sites[f"u{i}_group"]))
    return free


def _grouped_tables(mechanism: GroupedTabular, sites: dict[str, Any]) -> jax.Array:
    """float[..., G, K_1..K_n, n]: centred tables ``shared + group_scale * deviation`` per group."""
    return _tabular_from_free(mechanism.tabular, grouped_free(mechanism, sites))


def _free_shape(mechanism: Tabular, i: int) -> tuple[int, ...]:
    shape = list(mechanism.n_actions)
    shape[i] -= 1
    return tuple(shape)


def _level_shape(mechanism: Tabular, i: int) -> tuple[int, ...]:
    """Return the shape of agent i's level site: one mean payoff per opponent profile (axis i dropped)."""
    return tuple(k for j, k in enumerate(mechanism.n_actions) if j != i)


def _add_levels(mechanism: Tabular, table: jax.Array, sites: dict[str, Any]) -> jax.Array:
    """``table[..., i] + level_i`` broadcast over agent i's own actions (batch dims allowed)."""
    n = mechanism.n_agents
    cols = []
    for i in range(n):
        level = jnp.asarray(sites[f"u{i}_level"], dtype=table.dtype)
        cols.append(table[..., i] + jnp.expand_dims(level, level.ndim - (n - 1) + i))
    return jnp.stack(cols, axis=-1)


def _identified_sites(mechanism: Any) -> dict[str, tuple[int, ...]] | None:
    fn = getattr(mechanism, "identified_sites", None)
    return fn() if callable(fn) else None


def mechanism_sites(mechanism: Any) -> dict[str, tuple[int, ...]]:
    """Return the names and shapes of the mechanism's sample sites (its identified parametrisation).

    ``Tabular``: gauge-free coordinates ``u{i}_free``; mechanisms with
    ``identified_sites()`` (structured families, networks without their output bias):
    ``mech.<name>``; otherwise every leaf of the params pytree as ``mech.<path>``.
    """
    if isinstance(mechanism, CovariateTabular):
        tab, C = mechanism.tabular, mechanism.n_covariates
        sites = {f"u{i}_free": _free_shape(tab, i) for i in range(tab.n_agents)}
        sites.update({f"u{i}_slope": (C, *_free_shape(tab, i)) for i in range(tab.n_agents)})
        return sites
    if isinstance(mechanism, GroupedTabular):
        tab, G = mechanism.tabular, mechanism.n_groups
        sites = {f"u{i}_free": _free_shape(tab, i) for i in range(tab.n_agents)}
        sites.update({f"u{i}_group": (G, *_free_shape(tab, i)) for i in range(tab.n_agents)})
        sites[GROUP_SCALE] = ()
        return sites
    if isinstance(mechanism, Tabular):
        sites = {f"u{i}_free": _free_shape(mechanism, i) for i in range(mechanism.n_agents)}
        if mechanism.levels:
            sites.update({f"u{i}_level": _level_shape(mechanism, i) for i in range(mechanism.n_agents)})
        return sites
    ident = _identified_sites(mechanism)
    if ident is not None:
        return {f"mech.{k}": tuple(v) for k, v in ident.items()}
    template = mechanism.init(jax.random.key(0))
    return {f"mech.{k}": tuple(np.shape(v)) for k, v in flatten_params(template).items()}


def params_from_sites(mechanism: Any, sites: dict[str, Any]) -> Any:
    """Return the mechanism params from site values (works with extra leading batch dims on Tabular)."""
    if isinstance(mechanism, GroupedTabular):
        return {"table": _grouped_tables(mechanism, sites)}
    if isinstance(mechanism, CovariateTabular):  # centred table and centred slopes float[..., C, K.., n]
        tab, n = mechanism.tabular, mechanism.n_agents
        table = _tabular_from_free(tab, [jnp.asarray(sites[f"u{i}_free"]) for i in range(n)])
        slopes = _tabular_from_free(tab, [jnp.asarray(sites[f"u{i}_slope"]) for i in range(n)])
        return {"table": table, "slopes": slopes}
    if isinstance(mechanism, Tabular):
        free = [jnp.asarray(sites[f"u{i}_free"]) for i in range(mechanism.n_agents)]
        table = _tabular_from_free(mechanism, free)
        if mechanism.levels:
            table = _add_levels(mechanism, table, sites)
        return {"table": table}
    ident = _identified_sites(mechanism)
    if ident is not None:
        return mechanism.params_from_identified({k: sites[f"mech.{k}"] for k in ident})
    template = mechanism.init(jax.random.key(0))
    leaves, treedef = jax.tree_util.tree_flatten(template)
    names = list(flatten_params(template))
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(sites[f"mech.{k}"]) for k in names])


def sites_from_params(mechanism: Any, params: Any) -> dict[str, Any]:
    """Return site values representing ``params`` (up to the gauge): inverse of :func:`params_from_sites`."""
    if isinstance(mechanism, GroupedTabular):  # shared = mean over groups, group_scale = 1
        tables = np.asarray(params["table"], dtype=float)
        per_group = [free_from_table(mechanism.tabular, t) for t in tables]
        out: dict[str, Any] = {GROUP_SCALE: np.asarray(1.0)}
        for i in range(mechanism.n_agents):
            free = np.stack([g[f"u{i}_free"] for g in per_group])
            out[f"u{i}_free"] = free.mean(0)
            out[f"u{i}_group"] = free - free.mean(0)
        return out
    if isinstance(mechanism, CovariateTabular):  # the centred parts of table and slopes
        tab = mechanism.tabular
        out = free_from_table(tab, params["table"])
        per_c = [free_from_table(tab, s) for s in np.asarray(params["slopes"], dtype=float)]
        out.update({f"u{i}_slope": np.stack([f[f"u{i}_free"] for f in per_c]) for i in range(tab.n_agents)})
        return out
    if isinstance(mechanism, Tabular):
        return free_from_table(mechanism, params["table"])
    if _identified_sites(mechanism) is not None:
        return {f"mech.{k}": jnp.asarray(v) for k, v in mechanism.identified_from_params(params).items()}
    return {f"mech.{k}": jnp.asarray(v) for k, v in flatten_params(params).items()}


def free_from_table(mechanism: Tabular, table: Any) -> dict[str, np.ndarray]:
    """Return the gauge-free site values of a payoff table (its centred part)."""
    table = np.asarray(table, dtype=float)
    out = {}
    for i in range(mechanism.n_agents):
        c = table[..., i] - table[..., i].mean(axis=i, keepdims=True)
        H = sum_to_zero_basis(mechanism.n_actions[i])
        out[f"u{i}_free"] = np.moveaxis(np.tensordot(c, H, axes=([i], [0])), -1, i)
        if mechanism.levels:
            out[f"u{i}_level"] = table[..., i].mean(axis=i)
    return out


def _site_scale(
    mechanism: Any,
    name: str,
    scale: float,
    shape: tuple[int, ...] = (),
    scaling: str = "constant",
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> float:
    """Return the prior sd of a mechanism site: ``scale``, or ``scale / sqrt(K_i)`` for a Tabular level.

    With that choice the full table of a ``Tabular(levels=True)`` has i.i.d. N(0, scale^2)
    entries: the centred part (isotropic in the sum-to-zero subspace) plus the mean over
    agent i's K_i own actions. With ``scaling="fan_in"`` a network weight matrix (a site
    ``*.w`` of shape ``[fan_in, fan_out]``) has ``scale / sqrt(fan_in)``; with
    ``"fan_in_bias"`` so does the bias ``*.b`` of that layer (its ``*.w`` shape is looked up in
    ``shapes``, every site's shape).
    """
    if isinstance(mechanism, Tabular) and name.endswith("_level"):
        i = int(name[1 : -len("_level")])
        return scale / math.sqrt(mechanism.n_actions[i])
    if scaling in ("fan_in", "fan_in_bias") and name.endswith(".w") and len(shape) == 2:
        return scale / math.sqrt(shape[0])
    if scaling == "fan_in_bias" and name.endswith(".b") and shapes is not None:
        weight = shapes.get(name[: -len(".b")] + ".w", ())
        if len(weight) == 2:
            return scale / math.sqrt(weight[0])
    return scale


#: Mechanisms with identified sites and at most this many parameters also record them.
PARAM_RECORD_LIMIT = 200


def param_site_names(mechanism: Any) -> list[str]:
    """Return the names ``param.<path>`` of the deterministic sites of :func:`sample_mechanism`.

    Mechanisms with ``identified_sites()`` and at most :data:`PARAM_RECORD_LIMIT` parameters
    record their original parameters (recoverable from the identified ones); others none.
    """
    if _identified_sites(mechanism) is None:
        return []
    template = mechanism.init(jax.random.key(0))
    if param_count(template) > PARAM_RECORD_LIMIT:
        return []
    return [f"param.{k}" for k in flatten_params(template)]


def group_scale_distribution(mechanism: GroupedTabular) -> dist.Distribution:
    """Return the prior of a grouped fit's between-group scale ``group_scale`` (``group_scale_dist``)."""
    scale = float(mechanism.group_scale_prior)
    if mechanism.group_scale_dist == "half_normal":
        return dist.HalfNormal(scale)
    return dist.LogNormal(math.log(scale), float(mechanism.group_scale_log_sd))


def sample_mechanism(mechanism: Any, priors: Priors) -> Any:
    """Sample the mechanism's sites (:func:`mechanism_sites`) and return its params.

    Every site has a Normal(0, ``priors.mechanism_scale``) prior (a Tabular level:
    ``scale / sqrt(K_i)``; with ``priors.weight_scaling == "fan_in"`` a weight matrix
    ``float[fan_in, fan_out]``: ``scale / sqrt(fan_in)``, with ``"fan_in_bias"`` its layer's bias
    too), flat when the scale is None. Call inside a NumPyro model.
    """
    scale = priors.mechanism_scale
    sites = {}
    if isinstance(mechanism, GroupedTabular):
        sites[GROUP_SCALE] = numpyro.sample(GROUP_SCALE, group_scale_distribution(mechanism))
    shapes = mechanism_sites(mechanism)
    for name, shape in shapes.items():
        if name == GROUP_SCALE:
            continue
        if name.endswith("_group") and isinstance(mechanism, GroupedTabular):  # non-centred deviations
            d = dist.Normal(0.0, 1.0).expand(shape).to_event(len(shape))
        elif name.endswith("_slope") and isinstance(mechanism, CovariateTabular):  # proper, always
            d = dist.Normal(0.0, float(mechanism.slope_prior)).expand(shape).to_event(len(shape))
        elif scale is None:
            d = dist.ImproperUniform(dist.constraints.real, (), shape)
        else:
            sd = _site_scale(mechanism, name, float(scale), shape, priors.weight_scaling, shapes)
            d = dist.Normal(0.0, sd).expand(shape).to_event(len(shape))
        sites[name] = numpyro.sample(name, d)
    params = params_from_sites(mechanism, sites)
    if _identified_sites(mechanism) is not None and param_count(params) <= PARAM_RECORD_LIMIT:
        for k, v in flatten_params(params).items():  # the original parameters, recoverable
            numpyro.deterministic(f"param.{k}", v)
    return params
