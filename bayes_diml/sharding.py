"""Episodes sharded over devices with ``jax.sharding``.

Episodes are independent given the parameters, so the likelihood's episode axis splits over
devices with no communication until the final sum (an all-reduce that XLA inserts). A
one-axis :class:`jax.sharding.Mesh` named ``"episode"`` holds the devices;
:func:`shard_episodes` places (eagerly) or constrains (under ``jit``) arrays whose leading
axis is the episode axis. Under ``jit`` episode counts that the device count does not
divide are fine (XLA pads the last shard); eagerly such arrays are left in place.

On a CPU-only machine, ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (set before
JAX starts) gives two host devices to try this with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

__all__ = ["EPISODE_AXIS", "episode_mesh", "episode_sharding", "shard_episodes", "mesh_for_fit"]

EPISODE_AXIS = "episode"


def episode_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """Build a one-axis mesh ``("episode",)`` over ``devices`` (default: all of ``jax.devices()``)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("episode_mesh needs at least one device.")
    return Mesh(np.asarray(devices), (EPISODE_AXIS,), axis_types=(AxisType.Auto,))


def episode_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
    """Sharding of an array of rank ``ndim`` split along its leading (episode) axis."""
    if EPISODE_AXIS not in mesh.axis_names:
        raise ValueError(f"the mesh must have an axis named {EPISODE_AXIS!r}; it has {mesh.axis_names}.")
    return NamedSharding(mesh, PartitionSpec(EPISODE_AXIS, *([None] * (ndim - 1))))


def shard_episodes(tree: Any, mesh: Mesh | None) -> Any:
    """Split every array leaf of ``tree`` (leading axis = episodes) over ``mesh``.

    Under ``jit``/``grad`` this is a sharding constraint that XLA propagates through the
    computation; outside it places the arrays on the devices (when the device count
    divides the episode count; otherwise it leaves them as they are). ``mesh=None`` returns
    ``tree`` unchanged, so callers need no branch.
    """
    if mesh is None:
        return tree

    n_dev = mesh.shape[EPISODE_AXIS]

    def one(x):
        x = jax.numpy.asarray(x)
        if x.ndim == 0:
            raise ValueError("shard_episodes needs arrays with a leading episode axis; got a scalar.")
        if isinstance(x, jax.core.Tracer):
            return jax.lax.with_sharding_constraint(x, episode_sharding(mesh, x.ndim))
        if x.shape[0] % n_dev:  # eager placement needs equal shards; jit pads, eager does not
            return x
        return jax.device_put(x, episode_sharding(mesh, x.ndim))

    return jax.tree_util.tree_map(one, tree)


def mesh_for_fit(chain_method: str | None = None) -> Mesh | None:
    """Return the episode mesh ``fit(..., shard_episodes=True)`` uses: all devices, ``None`` on one device.

    NUTS ``chain_method="parallel"`` already places one chain per device (``pmap``), which
    an episode mesh over the same devices cannot share: that combination is refused.
    """
    if chain_method == "parallel":
        raise ValueError(
            "shard_episodes=True and chain_method='parallel' both claim every device: use one "
            "chain per device (chain_method='parallel') or episodes split over devices "
            "(shard_episodes=True with chain_method='sequential' or 'vectorized'), not both."
        )
    if len(jax.devices()) < 2:
        return None
    return episode_mesh()
