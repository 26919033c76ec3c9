"""Files that a long run writes as it goes: content digests, and writes that are never partial.

A run that saves its work piece by piece (an inference checkpoint, a validation cache) names or
checks each piece by a digest of what it depends on, and writes it so that an interrupted run
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["array_digest", "write_atomic"]


def array_digest(*arrays: Any) -> str:
    """Return the SHA-256 hex digest of ``arrays``: each one's dtype, shape and bytes, in order.

    Two calls agree exactly when the arrays have equal dtypes, shapes and values (C order), so
    ``int32`` and ``int64`` copies of the same actions differ. ``None`` is hashed as a marker of
    its own, so ``(x, None)`` and ``(x,)`` differ too. Object arrays raise TypeError (their bytes
    are addresses, which differ between processes).
    """
    h = hashlib.sha256()
    for k, a in enumerate(arrays):
        if a is None:
            h.update(b"None;")
            continue
        a = np.ascontiguousarray(np.asarray(a))
        if a.dtype.hasobject:  # its bytes are memory addresses: a different digest in every process
            raise TypeError(
                f"array_digest hashes numeric, boolean or string arrays; argument {k} has dtype object "
                "(convert it first, e.g. np.asarray(x, dtype=float))."
            )
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_atomic(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through ``<path>.tmp``, flushed to disk, then renamed over it.

    Readers see the old file or the whole new one; a killed writer leaves at most the ``.tmp``
    file, which the next write replaces. The parent folder must exist.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
