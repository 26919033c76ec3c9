"""bayes_diml.files: content digests and atomic writes, shared by checkpoints and the validation cache."""

import hashlib
import os

import numpy as np
import pytest

from bayes_diml.files import array_digest, write_atomic


def _literal_digest(*arrays):
    """The digest written out by hand: dtype string, shape, then the C-order bytes of each array."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update((a.dtype.str + str(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def test_array_digest_matches_a_literal_reference():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    y = np.linspace(0, 1, 5, dtype=np.float32)
    assert array_digest(x, y) == _literal_digest(x, y)
    assert array_digest(x.T) == _literal_digest(np.ascontiguousarray(x.T))  # layout does not matter
    assert len(array_digest()) == 64


def test_array_digest_tells_apart_dtype_shape_values_order_and_none():
    x = np.arange(6, dtype=np.int32)
    base = array_digest(x)
    assert array_digest(x.copy()) == base  # equal contents, equal digest
    assert array_digest(x.astype(np.int64)) != base
    assert array_digest(x.reshape(2, 3)) != base
    bumped = x.copy()
    bumped[-1] += 1
    assert array_digest(bumped) != base
    assert array_digest(x, x[:3]) != array_digest(x[:3], x)
    assert array_digest(x, None) != array_digest(x)
    assert array_digest(x, None) == array_digest(x, None)


def test_array_digest_refuses_object_arrays_by_name():
    with pytest.raises(TypeError, match="argument 1 has dtype object"):
        array_digest(np.arange(3), np.array([1, "a", None], dtype=object))
    assert array_digest(np.array(["infer"])) == array_digest(np.array(["infer"]))  # strings are fine


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state.npz"
    write_atomic(path, b"old")
    write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.npz"]


def test_write_atomic_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    write_atomic(path, b"old")

    def killed(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError, match="killed"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"  # a reader never sees half of the new file
    monkeypatch.undo()
    write_atomic(path, b"new")  # the next write replaces the leftover temporary
    assert path.read_bytes() == b"new" and not (tmp_path / "state.npz.tmp").exists()
