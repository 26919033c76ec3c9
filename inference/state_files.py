"""Sampler and optimiser states as plain arrays and JSON: no pickles, nothing to execute.

A state pytree (NumPyro's ``HMCState``, ``SVIState`` with its Optax moments, typed PRNG keys)
is written as

- an ``.npz`` of its leaves, one array per leaf named ``leaf_00000``, ``leaf_00001``, ... (read
  back with ``allow_pickle=False``, so an object array is refused), and
- a *layout*, plain JSON kept in the checkpoint manifest: the tree's structure described node
  by node (dicts, lists, tuples, ``None`` and named tuples), and each leaf's path, kind
  (array, typed PRNG key, Python scalar), shape and dtype, and the sha256 of the ``.npz``.

Reading a state rebuilds the tree from the layout. The only classes it calls are the named
tuples of :data:`NODE_TYPES` (NumPyro's and Optax's state records), looked up by name in that
table, never imported from a name found in a file; a layout naming anything else is refused.
Every array must match the layout's shape and dtype, the ``.npz`` must hold exactly the
layout's leaves, and when a template state is given (the sampler's own initial state), the
rebuilt tree must have its structure, shapes and dtypes. Every refusal is a
:class:`~bayes_diml.inference.errors.CheckpointError` naming the file and the difference.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .errors import CheckpointError

__all__ = ["NODE_TYPES", "describe_state", "state_to_npz", "state_from_npz", "file_digest"]

_KINDS = ("array", "key", "int", "float", "bool")


@functools.cache
def _node_types() -> dict[str, type]:
    """Return the named tuples a state may hold, by ``module.qualname`` (NumPyro, Optax records)."""
    import optax
    from numpyro.infer.hmc import HMCState
    from numpyro.infer.hmc_util import HMCAdaptState
    from numpyro.infer.svi import SVIState

    classes: list[type] = [HMCState, HMCAdaptState, SVIState]
    for name in dir(optax):  # the optimiser states: ScaleByAdamState, EmptyState, ...
        obj = getattr(optax, name)
        if isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
            classes.append(obj)
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


class _NodeTypes:
    """Read-only view of :func:`_node_types` (built on first use: NumPyro and Optax load lazily)."""

    def __contains__(self, name: object) -> bool:
        return name in _node_types()

    def __getitem__(self, name: str) -> type:
        return _node_types()[name]

    def __iter__(self):
        return iter(_node_types())

    def __repr__(self) -> str:
        return f"NODE_TYPES({sorted(_node_types())})"


#: Named tuples allowed in a saved state, by ``module.qualname``.
NODE_TYPES = _NodeTypes()


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _encode_key(k: Any, where: str) -> Any:
    if isinstance(k, str):
        return k
    if isinstance(k, tuple) and all(isinstance(v, str) for v in k):
        return {"tuple": list(k)}
    raise CheckpointError(f"cannot save the state: dict key {k!r} at {where or 'the root'} is not a string.")


def _decode_key(k: Any, where: str) -> Any:
    if isinstance(k, str):
        return k
    if isinstance(k, dict) and set(k) == {"tuple"} and all(isinstance(v, str) for v in k["tuple"]):
        return tuple(k["tuple"])
    raise CheckpointError(f"malformed dict key {k!r} at {where or 'the root'}.")


def describe_state(state: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """Split a state pytree into a JSON structure and its leaves.

    Returns
    -------
    structure : JSON-able
        Nested ``{"dict": [[key, node], ...]}``, ``{"list": [...]}``, ``{"tuple": [...]}``,
        ``{"namedtuple": "module.qualname", "fields": [...]}``, ``{"none": true}`` or
        ``{"leaf": i}`` (index into ``leaves``).
    leaves : list of (path, value)
        In order; ``path`` is a readable address such as ``adapt_state.step_size``.
    """
    leaves: list[tuple[str, Any]] = []

    def walk(x: Any, where: str) -> Any:
        if x is None:
            return {"none": True}
        if isinstance(x, jax.Array | np.ndarray | np.generic | bool | int | float):
            leaves.append((where, x))
            return {"leaf": len(leaves) - 1}
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            name = _type_name(x)
            if name not in NODE_TYPES:
                raise CheckpointError(
                    f"cannot save the state: {name} at {where or 'the root'} is not a known state record "
                    "(bayes_diml.inference.state_files.NODE_TYPES)."
                )
            fields = [walk(v, _join(where, f)) for f, v in zip(x._fields, x, strict=True)]
            return {"namedtuple": name, "fields": fields}
        if isinstance(x, dict):
            return {"dict": [[_encode_key(k, where), walk(v, _join(where, str(k)))] for k, v in x.items()]}
        if type(x) in (list, tuple):
            return {type(x).__name__: [walk(v, _join(where, str(i))) for i, v in enumerate(x)]}
        raise CheckpointError(f"cannot save the state: {type(x).__name__} at {where or 'the root'}.")

    return walk(state, ""), leaves


def _join(where: str, part: str) -> str:
    return f"{where}.{part}" if where else part


def _leaf_layout(path: str, value: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Return a leaf's layout entry and the array stored for it."""
    if _is_key(value):
        data = np.asarray(jax.random.key_data(value))
        kind, impl = "key", str(jax.random.key_impl(value))
    elif isinstance(value, bool | int | float) and not isinstance(value, np.generic):
        data, kind, impl = np.asarray(value), type(value).__name__, None
    else:
        data, kind, impl = np.asarray(value), "array", None
    if data.dtype.kind not in "biuf":
        raise CheckpointError(f"cannot save the state: {path} has dtype {data.dtype}.")
    entry = {"path": path, "kind": kind, "shape": list(data.shape), "dtype": data.dtype.str}
    if impl is not None:
        entry["impl"] = impl
    return entry, data


def file_digest(payload: bytes) -> str:
    """sha256 (hex) of a file's bytes."""
    return hashlib.sha256(payload).hexdigest()


def state_to_npz(state: Any) -> tuple[bytes, dict[str, Any]]:
    """Serialise a state: returns ``(npz bytes, layout)``; the layout is JSON-able (see module docs)."""
    structure, leaves = describe_state(state)
    entries, arrays = [], {}
    for i, (path, value) in enumerate(leaves):
        entry, data = _leaf_layout(path, value)
        entries.append(entry)
        arrays[_leaf_name(i)] = data
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    return payload, {"structure": structure, "leaves": entries, "sha256": file_digest(payload)}


def _leaf_name(i: int) -> str:
    return f"leaf_{i:05d}"


def state_from_npz(path: Path, layout: Any, template: Any = None) -> Any:
    """Read a state written by :func:`state_to_npz` back onto the device.

    Parameters
    ----------
    path : Path
        The ``.npz`` file.
    layout : dict
        Its layout from the manifest.
    template : pytree, optional
        A state of the expected structure (the sampler's own initial state): the rebuilt state
        must have its tree structure, leaf shapes and dtypes.

    Raises
    ------
    CheckpointError
        On any disagreement between file, layout and template.
    """
    if not isinstance(layout, dict) or not {"structure", "leaves", "sha256"} <= set(layout):
        raise CheckpointError(f"{path.name}: the manifest has no valid layout for this state.")
    payload = path.read_bytes()
    if file_digest(payload) != layout["sha256"]:
        raise CheckpointError(
            f"{path.name} does not match the checksum in the manifest: the file was changed or damaged."
        )
    entries = layout["leaves"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CheckpointError(f"{path.name}: malformed leaf list in the manifest.")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            names = set(z.files)
            expected = {_leaf_name(i) for i in range(len(entries))}
            if names != expected:
                extra, missing = sorted(names - expected), sorted(expected - names)
                raise CheckpointError(
                    f"{path.name} holds arrays {extra or '(none)'} that the manifest does not list and lacks "
                    f"{missing or '(none)'} that it does."
                )
            leaves = [_read_leaf(path, e, z[_leaf_name(i)]) for i, e in enumerate(entries)]
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path.name} is not a readable array file ({exc}).") from exc
    state = _rebuild(layout["structure"], leaves, path.name)
    if template is not None:
        _match_template(path.name, state, template)
    return state


def _read_leaf(path: Path, entry: dict[str, Any], data: np.ndarray) -> Any:
    kind, where = entry.get("kind"), entry.get("path", "?")
    if kind not in _KINDS:
        raise CheckpointError(f"{path.name}: leaf {where} has unknown kind {kind!r}.")
    if list(data.shape) != entry.get("shape") or data.dtype.str != entry.get("dtype"):
        raise CheckpointError(
            f"{path.name}: {where} has shape {list(data.shape)} and dtype {data.dtype.str}; the manifest "
            f"says shape {entry.get('shape')} and dtype {entry.get('dtype')}."
        )
    if kind == "key":
        impl = entry.get("impl")
        try:
            return jax.random.wrap_key_data(jnp.asarray(data), impl=impl)
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path.name}: {where} is not a PRNG key of type {impl!r} ({exc})") from exc
    if kind in ("int", "float", "bool"):
        if data.shape != ():
            raise CheckpointError(f"{path.name}: {where} should be a scalar; got shape {data.shape}.")
        return {"int": int, "float": float, "bool": bool}[kind](data.item())
    return jnp.asarray(data)


def _rebuild(node: Any, leaves: list[Any], name: str) -> Any:
    used: set[int] = set()

    def walk(x: Any, where: str) -> Any:
        if not isinstance(x, dict) or len(x) not in (1, 2):
            raise CheckpointError(f"{name}: malformed structure at {where or 'the root'} in the manifest.")
        if x == {"none": True}:
            return None
        if set(x) == {"leaf"}:
            i = x["leaf"]
            if not isinstance(i, int) or not 0 <= i < len(leaves) or i in used:
                raise CheckpointError(f"{name}: bad leaf reference {i!r} at {where or 'the root'}.")
            used.add(i)
            return leaves[i]
        if set(x) == {"list"} and isinstance(x["list"], list):
            return [walk(v, _join(where, str(i))) for i, v in enumerate(x["list"])]
        if set(x) == {"tuple"} and isinstance(x["tuple"], list):
            return tuple(walk(v, _join(where, str(i))) for i, v in enumerate(x["tuple"]))
        if set(x) == {"dict"} and isinstance(x["dict"], list):
            out = {}
            for item in x["dict"]:
                if not isinstance(item, list) or len(item) != 2:
                    raise CheckpointError(f"{name}: malformed dict entry at {where or 'the root'}.")
                k = _decode_key(item[0], where)
                out[k] = walk(item[1], _join(where, str(k)))
            return out
        if set(x) == {"namedtuple", "fields"} and isinstance(x["fields"], list):
            cls_name = x["namedtuple"]
            if cls_name not in NODE_TYPES:
                raise CheckpointError(
                    f"{name}: the manifest names the type {cls_name!r} at {where or 'the root'}, which is "
                    "not a known sampler or optimiser state record; refusing to build it."
                )
            cls = NODE_TYPES[cls_name]
            if len(x["fields"]) != len(cls._fields):
                raise CheckpointError(
                    f"{name}: {cls_name} at {where or 'the root'} has {len(x['fields'])} fields in the "
                    f"manifest; it has {len(cls._fields)}."
                )
            return cls(*(walk(v, _join(where, f)) for f, v in zip(cls._fields, x["fields"], strict=True)))
        raise CheckpointError(f"{name}: malformed structure at {where or 'the root'} in the manifest.")

    state = walk(node, "")
    if len(used) != len(leaves):
        raise CheckpointError(f"{name}: the manifest's structure leaves some arrays unused.")
    return state


def _signature(x: Any) -> tuple[str, tuple[int, ...], str]:
    if _is_key(x):
        return "key", tuple(jax.random.key_data(x).shape), str(jax.random.key_impl(x))
    arr = np.asarray(x) if not isinstance(x, jax.Array) else x
    return "array", tuple(arr.shape), str(arr.dtype)


def _match_template(name: str, state: Any, template: Any) -> None:
    got, want = jax.tree.structure(state), jax.tree.structure(template)
    if got != want:
        raise CheckpointError(
            f"{name}: the saved state has another structure than this sampler's state:\n  saved: {got}\n"
            f"  expected: {want}"
        )
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(template)[0]]
    for where, a, b in zip(paths, jax.tree.leaves(state), jax.tree.leaves(template), strict=True):
        if _signature(a) != _signature(b):
            raise CheckpointError(
                f"{name}: {where} is {_signature(a)} in the saved state; this sampler's state has "
                f"{_signature(b)} (kind, shape, dtype)."
            )
