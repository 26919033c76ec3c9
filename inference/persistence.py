"""Saving and reading fits: netCDF or zarr through xarray, plus JSON codecs of what rebuilds them.

A saved fit is the ArviZ DataTree with one attribute ``bayes_diml``: a JSON object holding the
format version, the method, the mechanism (class and constructor fields, built-in mechanisms
only), the learner, the priors, the fit's info and the data's agent and action labels (when it has
any). :func:`read_fit` returns what
``Posterior(idata, spec, method, info)`` takes; ``bayes_diml.inference.load`` wraps it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bayes_diml.data import Trajectories
from bayes_diml.learners import family_name, learner_family
from bayes_diml.models import Priors

from .spec import ModelSpec

__all__ = [
    "FORMAT_VERSION",
    "STACKED_ATTR",
    "mechanism_to_spec",
    "mechanism_from_spec",
    "fit_tree",
    "write_tree",
    "open_tree",
    "save_fit",
    "fit_from_tree",
    "read_fit",
]

FORMAT_VERSION = 1
#: Attribute of the root of a stacked fit (``learner="auto"``, :mod:`.stacked`).
STACKED_ATTR = "bayes_diml_stacked"


def _require_zarr() -> None:
    try:
        import zarr  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "saving or loading .zarr needs the zarr package: pip install 'bayes-diml[zarr]' "
            "(or use a .nc path for netCDF)."
        ) from exc


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray | jax.Array):
        return np.asarray(x).tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _learner_to_json(learner: Any) -> dict:
    out = {f: _jsonable(getattr(learner, f)) for f in learner._fields}  # parameters and fixed fields
    out["family"] = family_name(learner)
    return out


def _learner_from_json(lj: dict) -> Any:
    """Inverse of :func:`_learner_to_json` (fits saved before learner families are LogitQ)."""
    cls = learner_family(lj.get("family", "logitq"))
    values = {
        f: (v if isinstance(v, str) else np.asarray(v, dtype=float)) for f, v in lj.items() if f != "family"
    }
    return cls(**values)


def mechanism_to_spec(mechanism: Any) -> dict | None:
    """Return the JSON description of a built-in mechanism (class and constructor fields), else None."""
    from bayes_diml import mechanisms as mech_mod

    name = type(mechanism).__name__
    if getattr(mech_mod, name, None) is not type(mechanism) or not dataclasses.is_dataclass(mechanism):
        return None
    fields = {}
    for f in dataclasses.fields(mechanism):
        if not f.init:
            continue
        v = getattr(mechanism, f.name)
        if callable(v):
            return None
        fields[f.name] = _jsonable(v)
    return {"class": name, "fields": fields}


def mechanism_from_spec(spec: dict) -> Any:
    """Return the mechanism a :func:`mechanism_to_spec` description describes (its inverse)."""
    from bayes_diml import mechanisms as mech_mod

    cls = getattr(mech_mod, spec["class"])
    fields = {
        k: (tuple(v) if isinstance(v, list) and k == "n_actions" else v) for k, v in spec["fields"].items()
    }
    if spec["class"] == "GroupedTabular":  # fits saved before group_scale_dist had a half-normal prior
        fields.setdefault("group_scale_dist", "half_normal")
    return cls(**fields)


def fit_tree(post: Any) -> Any:
    """Return a copy of a fit's DataTree carrying the ``bayes_diml`` attribute that rebuilds it."""
    tree = post.idata.copy()
    tree.attrs["bayes_diml"] = json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "method": post.method,
            "mechanism": mechanism_to_spec(post.mechanism),
            "learner": _learner_to_json(post.learner),
            "priors": post.priors.to_dict(),
            "info": _jsonable(post.info),
            **({"labels": post.data.labels} if post.data.agent_labels or post.data.action_labels else {}),
            **_context_to_json(post.data),
        }
    )
    return tree


def write_tree(tree: Any, path: str | Path) -> Path:
    """Write a DataTree to ``path``: netCDF (``.nc``, default) or zarr (``.zarr``)."""
    path = Path(path)
    if path.suffix == ".zarr":
        _require_zarr()
        tree.to_zarr(path, mode="w")
    else:
        tree.to_netcdf(path, engine="h5netcdf")
    return path


def save_fit(post: Any, path: str | Path) -> Path:
    """Write a fit ``post`` (a ``Posterior``) to ``path``: netCDF (``.nc``, default) or zarr (``.zarr``)."""
    return write_tree(fit_tree(post), path)


def open_tree(path: str | Path) -> Any:
    """Read a DataTree written by :func:`write_tree` (FileNotFoundError, ValueError if unreadable)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no fit at {path}")
    if path.suffix == ".zarr":
        _require_zarr()
    try:
        if path.suffix == ".zarr":
            return xr.open_datatree(path, engine="zarr").load()
        return xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as exc:
        raise ValueError(f"{path}: not a readable bayes-diml fit ({exc}).") from exc


def _context_to_json(data: Trajectories) -> dict:
    """Return the episodes' group labels and covariate names (the covariates are constant data)."""
    out: dict[str, Any] = {}
    if getattr(data, "groups", None) is not None:
        out["groups"] = [str(g) for g in data.groups]
    if getattr(data, "covariates", None) is not None:
        out["covariate_names"] = list(data.covariate_names)
    return out


def _stored_data(tree: Any, labels: dict | None = None, meta: dict | None = None) -> Trajectories:
    const = tree["constant_data"]
    observed = tree["observed_data"]
    payoffs = observed["payoffs"].values if "payoffs" in observed.data_vars else None
    meta = meta or {}
    context = {}
    if "groups" in meta:
        context["groups"] = np.asarray(meta["groups"], dtype=str)
    if "covariates" in const.data_vars:
        context["covariates"] = const["covariates"].values
        context["covariate_names"] = tuple(meta.get("covariate_names", ()))
    return Trajectories(
        const["all_actions"].values,
        tuple(int(v) for v in const["n_actions"].values),
        lengths=const["lengths"].values,
        payoffs=payoffs,
        subjects=const["subjects"].values if "subjects" in const.data_vars else None,
        **context,
        **(labels or {}),
    )


def fit_from_tree(
    tree: Any, mechanism: Any = None, source: str = "the tree"
) -> tuple[Any, ModelSpec, str, dict]:
    """Return ``(idata, spec, method, info)`` of a tree made by :func:`fit_tree`; see :func:`read_fit`."""
    meta_raw = tree.attrs.get("bayes_diml")
    if meta_raw is None and STACKED_ATTR in tree.attrs:
        raise ValueError(
            f"{source} holds a stacked fit (learner='auto'); read it with "
            "bayes_diml.inference.load_stacked (the command line reads both)."
        )
    if meta_raw is None:
        raise ValueError(f"{source}: not a bayes-diml fit (no 'bayes_diml' metadata).")
    meta = json.loads(meta_raw)
    if mechanism is None:
        if meta["mechanism"] is None:
            raise ValueError(
                f"{source}: the fit used a user-defined mechanism; pass mechanism=... to load()."
            )
        mechanism = mechanism_from_spec(meta["mechanism"])
    data = _stored_data(tree, meta.get("labels"), meta)
    learner = _learner_from_json(meta["learner"])
    spec = ModelSpec.from_parts(data, mechanism, learner, Priors.from_dict(meta["priors"]))
    return tree, spec, meta["method"], meta.get("info", {})


def read_fit(path: str | Path, mechanism: Any = None) -> tuple[Any, ModelSpec, str, dict]:
    """Read a fit written by :func:`save_fit`: ``(idata, spec, method, info)``.

    ``mechanism`` must be given when the fit used a user-defined mechanism (``Function``
    or ``Linear`` with a callable), which cannot be stored.
    """
    path = Path(path)
    return fit_from_tree(open_tree(path), mechanism, str(path))
