"""Checkpoint files hold no pickles; altered, foreign or old-format checkpoints are refused.

Resuming a real run (SVI and NUTS, bit-identical results) is tested in ``test_reliability.py``;
here the checkpoint directory is written by :class:`Checkpoint` itself and then altered.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.hmc import HMCState

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import CheckpointError, FitError
from bayes_diml.inference.checkpoint import Checkpoint, fingerprint
from bayes_diml.inference.pipeline import make_config
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.inference.state_files import state_from_npz, state_to_npz

LEARNER = bd.LogitQ(0.3, 2.0, 0.05)
RUN = {"method": "svi", "seed": 5, "init": "prior", "num_steps": 60, "num_draws": 20}
QUIET = {"progress": False, "log_likelihood": False}


@pytest.fixture(scope="module")
def small():
    mech = mechanisms.Tabular((2, 2))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), LEARNER, 6, 8, 1)
    return mech, data


def _fingerprint(data, mech) -> dict[str, str]:
    spec = ModelSpec.build(data, mech, LEARNER, None)
    options = {k: v for k, v in RUN.items() if k not in ("method", "seed")}
    return fingerprint(spec, "svi", make_config("svi", options), RUN["seed"], 20)


def _state() -> dict:
    return {"key": jax.random.key(3), "x": jnp.arange(3.0), "n": jnp.asarray(7, jnp.int32), "none": None}


def _write(path: Path, data, mech) -> Path:
    ck = Checkpoint(path, 20, _fingerprint(data, mech))
    ck.save(_state(), None)
    ck.save(_state(), {"losses": np.linspace(0.0, 1.0, 20, dtype=np.float32)})
    return path


def _open(path: Path, data, mech) -> Checkpoint:
    return Checkpoint(path, 20, _fingerprint(data, mech))


def _fit(path: Path, data, mech):
    return bd.fit(data, mech, LEARNER, checkpoint=path, checkpoint_every=20, **RUN, **QUIET)


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _rewrite_manifest(path: Path, manifest: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest))


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# --------------------------------------------------------------------------- the files
def test_checkpoint_holds_npz_and_json_only(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    assert sorted(p.name for p in path.iterdir()) == ["chunk_00000.npz", "manifest.json", "state_00001.npz"]
    for name in ("chunk_00000.npz", "state_00001.npz"):
        with np.load(path / name, allow_pickle=False) as z:  # no object arrays
            assert all(z[k].dtype != object for k in z.files)
    manifest = _manifest(path)
    assert manifest["version"] == 2 and manifest["state"] == "state_00001.npz"
    leaves = {e["path"]: e for e in manifest["state_layout"]["leaves"]}
    assert leaves["key"]["kind"] == "key" and leaves["key"]["impl"] == "threefry2x32"
    assert leaves["x"]["shape"] == [3] and leaves["n"]["dtype"] == np.dtype(np.int32).str
    assert manifest["files"]["chunk_00000.npz"]["arrays"] == {
        "losses": {"shape": [20], "dtype": np.dtype(np.float32).str}
    }
    state = _open(path, data, mech).load_state()
    assert state["none"] is None and state["n"].dtype == jnp.int32
    np.testing.assert_array_equal(jax.random.key_data(state["key"]), jax.random.key_data(jax.random.key(3)))
    np.testing.assert_array_equal(state["x"], [0.0, 1.0, 2.0])


def test_sampler_state_records_round_trip(tmp_path):
    """An HMCState (NumPyro's named tuple) and a dict keyed by tuples of names come back as they were."""
    template = HMCState(*([jnp.zeros(2)] * (len(HMCState._fields) - 1)), jax.random.key(1))
    state = {"hmc": template._replace(z={"a": jnp.ones(2)}), "mass": {("a", "b"): jnp.eye(2)}, "i": 3}
    payload, layout = state_to_npz(state)
    (tmp_path / "s.npz").write_bytes(payload)
    back = state_from_npz(tmp_path / "s.npz", json.loads(json.dumps(layout)))
    assert type(back["hmc"]) is HMCState and back["i"] == 3 and isinstance(back["i"], int)
    assert jax.tree.structure(back) == jax.tree.structure(state)
    np.testing.assert_array_equal(back["mass"][("a", "b")], np.eye(2))


def test_a_state_of_an_unknown_type_is_not_saved(tmp_path):
    class Mine(tuple):
        _fields = ()

    with pytest.raises(CheckpointError, match=r"Mine at x is not a known state record"):
        state_to_npz({"x": Mine()})


# --------------------------------------------------------------------------- refusals
def test_tampered_state_npz_is_refused(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    (path / "state_00001.npz").write_bytes(_npz(leaf_00000=np.zeros(2, np.uint32), leaf_00001=np.ones(3)))
    # the state is {key, x, n} (None is no leaf): leaf_00002 is missing
    ck = _open(path, data, mech)
    with pytest.raises(CheckpointError, match=r"state_00001\.npz does not match the checksum"):
        ck.load_state()
    # the checksum updated as well: the arrays must still match the layout
    manifest = _manifest(path)
    from bayes_diml.inference.state_files import file_digest

    manifest["state_layout"]["sha256"] = file_digest((path / "state_00001.npz").read_bytes())
    _rewrite_manifest(path, manifest)
    with pytest.raises(CheckpointError, match=r"lacks \['leaf_00002'\] that it does"):
        _open(path, data, mech).load_state()
    payload = _npz(leaf_00000=np.zeros(2, np.uint32), leaf_00001=np.ones(4), leaf_00002=np.int32(1))
    (path / "state_00001.npz").write_bytes(payload)
    manifest["state_layout"]["sha256"] = file_digest(payload)
    _rewrite_manifest(path, manifest)
    with pytest.raises(
        CheckpointError, match=r": x has shape \[4\] and dtype <f8; the manifest says shape \[3\]"
    ):
        _open(path, data, mech).load_state()


def test_tampered_chunk_is_refused(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    (path / "chunk_00000.npz").write_bytes(_npz(losses=np.zeros(20, np.float32)))
    with pytest.raises(CheckpointError, match=r"chunk_00000\.npz does not match the checksum"):
        _open(path, data, mech).load_chunks()
    manifest = _manifest(path)
    from bayes_diml.inference.state_files import file_digest

    payload = _npz(losses=np.zeros(20, np.float64))
    (path / "chunk_00000.npz").write_bytes(payload)
    manifest["files"]["chunk_00000.npz"]["sha256"] = file_digest(payload)
    _rewrite_manifest(path, manifest)
    with pytest.raises(CheckpointError, match=r"holds losses <f8\[20\]; the manifest lists losses <f4\[20\]"):
        _open(path, data, mech).load_chunks()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_fit_refuses_a_state_of_another_sampler(small, tmp_path):
    """The SVI resume checks the saved state against the optimiser's own initial state."""
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)  # a state {key, x, n}, not an SVIState
    with pytest.raises(CheckpointError, match=r"another structure than this sampler's state"):
        _fit(path, data, mech)


def test_state_of_another_structure_is_refused_against_the_template(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    ck = _open(path, data, mech)
    with pytest.raises(CheckpointError, match=r"another structure than this sampler's state"):
        ck.load_state(template={"key": jax.random.key(0), "x": jnp.zeros(3)})
    template = {**_state(), "x": jnp.zeros(4)}
    with pytest.raises(
        CheckpointError, match=r"\['x'\] is \('array', \(3,\), 'float32'\) in the saved state"
    ):
        ck.load_state(template=template)
    assert ck.load_state(template=_state())["n"] == 7


def _foreign_type(m):
    m["state_layout"]["structure"]["dict"] = [["x", {"namedtuple": "os.system", "fields": []}]]


FOREIGN = [
    (_foreign_type, r"names the type 'os\.system' at x, which is not a known sampler or optimiser state"),
    (lambda m: m.update(chunks=["../../elsewhere.npz"]), r"'chunks' is not a list of chunk_NNNNN\.npz names"),
    (lambda m: m.update(state="state.pkl"), r"'state' is not a state_NNNNN\.npz name"),
    (lambda m: m.update(version=7), r"checkpoint format 7, expected 2"),
    (lambda m: m["state_layout"]["leaves"][0].update(kind="pickle"), r"key has unknown kind 'pickle'"),
]


@pytest.mark.parametrize("edit, pattern", FOREIGN)
def test_foreign_manifest_is_refused(small, tmp_path, edit, pattern):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    manifest = _manifest(path)
    edit(manifest)
    _rewrite_manifest(path, manifest)
    with pytest.raises(CheckpointError, match=pattern):
        _open(path, data, mech).load_state()


def test_manifest_of_another_model_is_refused(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    with pytest.raises(CheckpointError, match=r"different fit \(learner differ"):
        bd.fit(data, mech, bd.LogitQ(0.5, 2.0, 0.05), checkpoint=path, checkpoint_every=20, **RUN, **QUIET)


def test_leftover_pickle_is_refused(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    (path / "state_00000.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match=r"holds the pickle file\(s\) \['state_00000\.pkl'\]"):
        _fit(path, data, mech)
    assert issubclass(CheckpointError, FitError)


def test_extra_and_missing_files_are_refused(small, tmp_path):
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    (path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"holds \['notes\.txt'\], which its manifest does not list"):
        _open(path, data, mech)
    (path / "notes.txt").unlink()
    (path / "state_00001.npz").unlink()
    with pytest.raises(CheckpointError, match=r"is damaged: state_00001\.npz is missing"):
        _open(path, data, mech)
    other = tmp_path / "full"
    other.mkdir()
    (other / "data.csv").write_text("x")
    with pytest.raises(CheckpointError, match=r"holds \['data\.csv'\], and no manifest\.json"):
        _open(other, data, mech)


def test_leftovers_of_an_interrupted_write_are_accepted(small, tmp_path):
    """A chunk or state written before the manifest was committed, or a cut-short temporary file."""
    mech, data = small
    path = _write(tmp_path / "ck", data, mech)
    (path / "chunk_00001.npz").write_bytes(b"half")
    (path / "state_00002.npz.tmp").write_bytes(b"half")
    ck = _open(path, data, mech)
    assert ck.n_chunks == 1 and len(ck.load_chunks()) == 1


def test_format_1_checkpoint_is_refused_with_advice(small, tmp_path):
    mech, data = small
    path = tmp_path / "old"
    path.mkdir()
    manifest = {
        "version": 1,
        "fingerprint": _fingerprint(data, mech),
        "chunks": [],
        "state": "state_00000.pkl",
    }
    _rewrite_manifest(path, manifest)
    (path / "state_00000.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match=r"format 1, .*pickled sampler state.*rerun the fit"):
        _fit(path, data, mech)
