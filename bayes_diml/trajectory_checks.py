"""Validation of trajectory arrays and labels: exact integer arrays, group labels, covariate names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DataError",
    "LONG_COLUMNS",
    "RESERVED_COLUMNS",
    "as_array",
    "as_int_array",
    "is_missing",
    "group_labels",
    "check_covariate_names",
]

LONG_COLUMNS = ("episode", "t", "agent", "action")
RESERVED_COLUMNS = (*LONG_COLUMNS, "payoff", "subject", "group")  # column names a covariate cannot take
_NA_TYPES = ("NAType", "NaTType")  # pandas' missing-value scalars


class DataError(ValueError):
    """Invalid trajectory data or file (a ``ValueError`` naming the problem)."""

    __module__ = "bayes_diml.data"  # its public home (re-exported there): reprs and pickles name it


def as_int_array(name: str, x: Any, *, allow_nan_padding: np.ndarray | None = None) -> np.ndarray:
    """Exact conversion to int64; raises on NaN, non-integral values, bools, objects."""
    arr = as_array(name, x)
    if arr.dtype == bool:
        raise DataError(f"{name} must hold integers; got dtype bool.")
    if arr.dtype.kind in "iu":  # not issubdtype(integer), which admits timedelta64
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise DataError(f"{name} holds a value above 2**63 - 1 ({arr.max()}); not an integer index.")
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        checked = arr if allow_nan_padding is None else np.where(allow_nan_padding, arr, 0.0)
        bad = np.argwhere(~np.isfinite(checked))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise DataError(
                f"{name}{list(idx)} is {checked[idx]}: NaN/inf is not an action. "
                "Mark ragged episodes with `lengths` instead of NaN padding."
            )
        bad = np.argwhere(checked != np.round(checked))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise DataError(
                f"{name}{list(idx)} = {checked[idx]} is not an integer; actions are integer indices 0..K_i-1."
            )
        bad = np.argwhere(np.abs(checked) >= np.float64(2.0**63))  # float64: no float16 overflow
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise DataError(f"{name}{list(idx)} = {checked[idx]} is too large for an integer index.")
        return checked.astype(np.int64)
    raise DataError(f"{name} must hold integers; got dtype {arr.dtype}.")


def as_array(name: str, x: Any) -> np.ndarray:
    """``np.asarray`` raising DataError (not a bare ValueError) on ragged nested sequences."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} must be a rectangular array; got {type(x).__name__} ({exc}).") from exc


def is_missing(v: Any) -> bool:
    """Whether a table cell is missing: None, a float NaN, ``pd.NA`` or ``pd.NaT``."""
    return v is None or (isinstance(v, float | np.floating) and v != v) or type(v).__name__ in _NA_TYPES


def group_labels(what: str, values: Any) -> np.ndarray:
    """Group labels (str, or ints turned into their str) as a unicode array; DataError naming a bad one.

    ``what`` names the values in messages: ``groups`` (index ``[m]``) or a table column (``row r``).
    """
    if isinstance(values, np.ndarray):
        arr = values
    else:  # as objects: np.asarray(["a", nan]) would turn the NaN into the text "nan"
        try:
            arr = np.asarray(values, dtype=object)
        except ValueError as exc:
            raise DataError(f"{what} must be a 1-d sequence of labels ({exc}).") from exc
    if arr.dtype.kind in "iu":
        return arr.astype(str)
    if arr.dtype.kind == "U":
        out = arr
    else:
        flat = arr.ravel().tolist()  # Python scalars (NumPy ints become int)

        def where(r: int) -> str:
            return f"{what}[{r}]" if what == "groups" else f"{what} (row {r})"

        for r, v in enumerate(flat):
            if is_missing(v):
                raise DataError(f"{where(r)} is missing ({v!r}); every episode needs a group label.")
        for r, v in enumerate(flat):
            if isinstance(v, bool | np.bool_) or not isinstance(v, str | int | np.integer):
                raise DataError(f"{where(r)} = {v!r} is not a group label; use a str (or an int).")
        out = np.asarray([v if isinstance(v, str) else str(int(v)) for v in flat], dtype=str).reshape(
            arr.shape
        )
    empty = np.flatnonzero(out.ravel() == "")
    if empty.size:
        r = int(empty[0])
        where = f"{what}[{r}]" if what == "groups" else f"{what} (row {r})"
        raise DataError(f"{where} is an empty string; every episode needs a non-empty group label.")
    return out


def check_covariate_names(names: Any, C: int) -> tuple[str, ...]:
    """Validate ``covariate_names``: C distinct non-empty str, none a long-format column name."""
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise DataError(f"covariate_names must be a sequence of {C} str; got {names!r}.")
    out = tuple(names.tolist() if isinstance(names, np.ndarray) else names)
    if len(out) != C:
        raise DataError(f"covariate_names has {len(out)} names but covariates has C = {C} columns.")
    for v in out:
        if not isinstance(v, str) or not v:
            raise DataError(f"covariate_names must be non-empty str; got {v!r}.")
        if v in RESERVED_COLUMNS:
            raise DataError(
                f"covariate name {v!r} is a column of the long format ({', '.join(RESERVED_COLUMNS)}); "
                "choose another name."
            )
    dup = [v for i, v in enumerate(out) if v in out[:i]]
    if dup:
        raise DataError(f"covariate_names must be distinct; {dup[0]!r} appears twice.")
    return out
