"""Checkpoint and resume long NUTS and SVI runs.

``fit(..., checkpoint=DIR)`` runs NUTS as warm-up, then sampling in chunks of
``checkpoint_every`` draws per chain, and SVI in chunks of ``checkpoint_every`` optimiser
steps. After every chunk the sampler (or optimiser) state and the chunk's draws (or losses)
are written to ``DIR`` atomically (a temporary file, flushed, then renamed), and then the
manifest ``DIR/manifest.json`` that lists the complete chunks. A run that is interrupted
(killed, out of time, Ctrl-C) and started again with the same arguments resumes after the
last complete chunk: it loses at most the chunk in progress, and its result equals,
bit for bit on one machine, that of an uninterrupted run with the same checkpoint settings
(the state carries the PRNG key, step size, mass matrix and optimiser moments).

Nothing in a checkpoint is pickled (format 2): arrays are ``.npz`` files read with
``allow_pickle=False``; the state's tree structure, leaf shapes and dtypes and each file's
sha256 are JSON in the manifest (:mod:`~bayes_diml.inference.state_files`), so opening a
directory written by someone else runs no code from it. A checkpoint written for other data,
mechanism, learner, priors, method, settings or seed, or one that is altered (a file changed,
missing or added, a pickle present, a manifest that does not match its files) is refused with
:class:`CheckpointError`, which names what differs. Format-1 checkpoints (pickled states,
bayes-diml 0.1 before this change) are refused too: rerun the fit.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from bayes_diml.files import array_digest, write_atomic
from bayes_diml.models import mechanism_sites

from .errors import CheckpointError
from .spec import ModelSpec
from .state_files import file_digest, state_from_npz, state_to_npz

__all__ = ["Checkpoint", "CheckpointError", "fingerprint"]

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: Files a run may leave besides those the manifest lists: an interrupted write (``*.tmp``), or a
#: chunk or state written just before an interruption, before the manifest was committed.
_LEFTOVER = re.compile(r"(chunk|state)_\d{5}\.npz|.+\.tmp")
#: Called as ``hook(method, chunk_index)`` after each chunk is saved (tests use it to interrupt).
_after_chunk: Callable[[str, int], None] | None = None


# ------------------------------------------------------------------ fingerprint
def _describe(obj: Any) -> Any:
    """Return a process-independent description of a mechanism or learner (no memory addresses)."""
    if callable(obj) and not dataclasses.is_dataclass(obj):
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "type": type(obj).__name__,
            **{f.name: _describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return {"type": type(obj).__name__, **{k: _describe(v) for k, v in obj._asdict().items()}}
    if isinstance(obj, list | tuple):
        return [_describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _describe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray | jax.Array | np.generic):
        return np.asarray(obj).tolist()
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return f"{type(obj).__name__}"


def fingerprint(spec: ModelSpec, method: str, config: Any, seed: int, every: int) -> dict[str, str]:
    """Return what a checkpoint must agree on, as short strings (hashes for the data)."""
    d = spec.data
    payoffs = np.nan_to_num(d.payoffs, nan=np.pi) if d.payoffs is not None else np.zeros(0)
    mech = {"description": _describe(spec.mechanism), "sites": mechanism_sites(spec.mechanism)}
    return {
        "data": array_digest(d.actions, d.lengths, np.asarray(d.n_actions), payoffs, d.subject_index)[:16],
        "mechanism": json.dumps(mech, sort_keys=True, default=str),
        "learner": json.dumps(_describe(spec.learner), sort_keys=True, default=str),
        "priors": json.dumps(spec.priors.to_dict(), sort_keys=True, default=str),
        "method": method,
        "config": json.dumps(dataclasses.asdict(config), sort_keys=True, default=str),
        "seed": str(int(seed)),
        "checkpoint_every": str(int(every)),
    }


# ------------------------------------------------------------------ state on disk
class Checkpoint:
    """A checkpoint directory for one fit (see the module docstring).

    Parameters
    ----------
    directory : path
        Created if missing.
    every : int
        Draws per chain (NUTS) or optimiser steps (SVI) per chunk.
    fingerprint : dict
        From :func:`fingerprint`; compared with the manifest of an existing checkpoint.
    """

    def __init__(self, directory: str | os.PathLike, every: int, fingerprint: dict[str, str]):
        if int(every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1; got {every}.")
        self.directory = Path(directory)
        self.every = int(every)
        self.fingerprint = fingerprint
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(f"checkpoint {self.directory} exists and is not a directory.")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manifest = self._read_manifest()

    # -------------------------------------------------------------- manifest
    def _read_manifest(self) -> dict[str, Any]:
        path = self.directory / MANIFEST
        if not path.exists():
            self._check_files({"chunks": [], "state": None}, has_manifest=False)
            return {
                "version": FORMAT_VERSION,
                "fingerprint": self.fingerprint,
                "chunks": [],
                "files": {},
                "state": None,
                "state_layout": None,
            }
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint manifest ({exc}).") from exc
        version = manifest.get("version") if isinstance(manifest, dict) else None
        if version == 1:
            raise CheckpointError(
                f"{path}: a checkpoint of format 1, written by an older bayes-diml with a pickled sampler "
                "state, which is no longer read (a pickle can run code). Delete the directory, or use "
                "another, and rerun the fit."
            )
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format {version!r}, expected {FORMAT_VERSION}.")
        _check_manifest(path, manifest)
        self._check_files(manifest)
        old = manifest["fingerprint"]
        differ = sorted(k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k))
        if differ:
            detail = "; ".join(
                f"{k}: checkpoint {_short(old.get(k))} vs now {_short(self.fingerprint.get(k))}"
                for k in differ
            )
            raise CheckpointError(
                f"checkpoint {self.directory} was written for a different fit ({', '.join(differ)} differ: "
                f"{detail}). Use another directory, or delete this one to start afresh."
            )
        for entry in manifest["chunks"] + ([manifest["state"]] if manifest["state"] else []):
            if not (self.directory / entry).is_file():
                raise CheckpointError(f"checkpoint {self.directory} is damaged: {entry} is missing.")
        return manifest

    def _check_files(self, manifest: dict[str, Any], has_manifest: bool = True) -> None:
        """Refuse a directory holding a pickle or any file the manifest does not explain."""
        listed = {MANIFEST, *manifest["chunks"], *([manifest["state"]] if manifest["state"] else [])}
        names = sorted(p.name for p in self.directory.iterdir())
        pickles = [n for n in names if n.lower().endswith((".pkl", ".pickle"))]
        if pickles:
            raise CheckpointError(
                f"checkpoint {self.directory} holds the pickle file(s) {pickles}. bayes-diml checkpoints "
                "hold no pickles (an older version wrote them; a pickle can run code when read): delete the "
                "directory, or use another, and rerun the fit."
            )
        foreign = [n for n in names if n not in listed and not _LEFTOVER.fullmatch(n)]
        if foreign:
            listing = "which its manifest does not list" if has_manifest else f"and no {MANIFEST}"
            raise CheckpointError(
                f"checkpoint {self.directory} holds {foreign}, {listing}: not a checkpoint directory of "
                "bayes-diml, or altered. Use an empty or new directory."
            )

    def _commit(self) -> None:
        payload = json.dumps(self.manifest, indent=1, sort_keys=True).encode()
        write_atomic(self.directory / MANIFEST, payload)

    # -------------------------------------------------------------- contents
    @property
    def n_chunks(self) -> int:
        """Number of complete chunks."""
        return len(self.manifest["chunks"])

    @property
    def has_state(self) -> bool:
        """Whether a sampler/optimiser state was saved (warm-up or a chunk is complete)."""
        return self.manifest["state"] is not None

    @property
    def info(self) -> dict[str, Any]:
        """Information saved with the state (MAP log joint, timings)."""
        return dict(self.manifest.get("info", {}))

    def load_state(self, template: Any = None) -> Any:
        """Return the saved state pytree, on the device.

        ``template``, a state of this sampler (e.g. the optimiser's initial state), fixes the
        structure, shapes and dtypes the saved one must have; without it the structure comes
        from the manifest, built from known state records only (see
        :mod:`~bayes_diml.inference.state_files`).
        """
        path = self.directory / self.manifest["state"]
        return state_from_npz(path, self.manifest["state_layout"], template)

    def load_chunks(self) -> list[dict[str, np.ndarray]]:
        """Return the arrays of every complete chunk, in order (checked against the manifest)."""
        out = []
        for name in self.manifest["chunks"]:
            expected = self.manifest["files"].get(name)
            if not isinstance(expected, dict):
                raise CheckpointError(f"checkpoint {self.directory}: the manifest does not describe {name}.")
            payload = (self.directory / name).read_bytes()
            if file_digest(payload) != expected.get("sha256"):
                raise CheckpointError(
                    f"checkpoint {self.directory}: {name} does not match the checksum in the manifest: the "
                    "file was changed or damaged."
                )
            try:
                with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except (ValueError, OSError, zipfile.BadZipFile) as exc:
                raise CheckpointError(f"checkpoint {self.directory}: {name} is unreadable ({exc}).") from exc
            layout = {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()}
            if layout != expected.get("arrays"):
                raise CheckpointError(
                    f"checkpoint {self.directory}: {name} holds {_arrays_text(layout)}; the manifest lists "
                    f"{_arrays_text(expected.get('arrays'))}."
                )
            out.append(arrays)
        return out

    def save(self, state: Any, arrays: dict[str, Any] | None, info: dict[str, Any] | None = None) -> None:
        """Write a chunk's arrays (if any) and the state after it, then commit the manifest."""
        k = self.n_chunks
        chunks = list(self.manifest["chunks"])
        files = dict(self.manifest["files"])
        if arrays is not None:
            name = f"chunk_{k:05d}.npz"
            host = {key: np.asarray(v) for key, v in arrays.items()}
            buf = io.BytesIO()
            np.savez(buf, **host)
            payload = buf.getvalue()
            write_atomic(self.directory / name, payload)
            chunks.append(name)
            files[name] = {
                "sha256": file_digest(payload),
                "arrays": {key: {"shape": list(v.shape), "dtype": v.dtype.str} for key, v in host.items()},
            }
        state_name = f"state_{len(chunks):05d}.npz"
        payload, layout = state_to_npz(state)
        write_atomic(self.directory / state_name, payload)
        old_state = self.manifest["state"]
        self.manifest = {
            **self.manifest,
            "chunks": chunks,
            "files": files,
            "state": state_name,
            "state_layout": layout,
            "info": {**self.manifest.get("info", {}), **(info or {})},
        }
        self._commit()
        if old_state and old_state != state_name:
            (self.directory / old_state).unlink(missing_ok=True)
        if arrays is not None and _after_chunk is not None:
            _after_chunk(self.fingerprint["method"], len(chunks) - 1)


_CHUNK = re.compile(r"chunk_\d{5}\.npz")
_STATE = re.compile(r"state_\d{5}\.npz")


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Check the manifest's entries: types, and file names of the expected form (no paths)."""
    problems = []
    if not isinstance(manifest.get("fingerprint"), dict):
        problems.append("'fingerprint' is not a table")
    chunks = manifest.get("chunks")
    if not isinstance(chunks, list) or not all(isinstance(c, str) and _CHUNK.fullmatch(c) for c in chunks):
        problems.append("'chunks' is not a list of chunk_NNNNN.npz names")
    elif chunks != [f"chunk_{i:05d}.npz" for i in range(len(chunks))]:
        problems.append("'chunks' is not chunk_00000.npz, chunk_00001.npz, ... in order")
    if not isinstance(manifest.get("files"), dict):
        problems.append("'files' is not a table")
    state = manifest.get("state")
    if state is not None and not (isinstance(state, str) and _STATE.fullmatch(state)):
        problems.append("'state' is not a state_NNNNN.npz name")
    if state is not None and not isinstance(manifest.get("state_layout"), dict):
        problems.append("'state_layout' is missing")
    if not isinstance(manifest.get("info", {}), dict):
        problems.append("'info' is not a table")
    if problems:
        raise CheckpointError(f"{path}: not a valid checkpoint manifest ({'; '.join(problems)}).")


def _arrays_text(layout: Any) -> str:
    if not isinstance(layout, dict):
        return "(nothing)"
    text = ", ".join(f"{k} {v.get('dtype')}{v.get('shape')}" for k, v in sorted(layout.items()))
    return text or "(nothing)"


def _short(value: str | None, n: int = 60) -> str:
    if value is None:
        return "(none)"
    return value if len(value) <= n else value[: n - 3] + "..."


# ------------------------------------------------------------------ chunked runs
_EXTRA = "__extra__."


def init_failure(spec: ModelSpec, method: str, key: jax.Array, exc: Exception) -> None:
    """Turn NumPyro's "no valid initial parameters" (or its validation error) into a diagnosis."""
    from .nonfinite import raise_nonfinite
    from .spec import initial_values

    if "valid initial parameters" not in str(exc) and "distribution got invalid" not in str(exc):
        raise exc
    where = "at the initial point (no valid starting parameters found)"
    raise_nonfinite(spec, method, where, initial_values(spec, key))


def run_nuts_chunks(
    spec: ModelSpec,
    make_mcmc: Callable[[int], Any],
    key: jax.Array,
    num_samples: int,
    extra_fields: tuple[str, ...],
    ckpt: Checkpoint,
    info: dict[str, Any],
    *,
    init_params: Any = None,
    postprocess: Callable[[dict], dict] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """NUTS warm-up, then sampling in chunks of ``ckpt.every`` draws, saving after each.

    ``make_mcmc(num_samples)`` builds the ``MCMC`` object; ``init_params`` start the warm-up
    and ``postprocess`` maps each chunk's raw draws {site: [C, S, ...]} to the saved ones (a
    kernel built on a potential function draws unconstrained values). Returns (samples, extra
    fields), each [C, S, ...].
    """
    from .nonfinite import check_nuts_draws

    mcmc = make_mcmc(min(ckpt.every, num_samples))
    if not ckpt.has_state:
        try:
            mcmc.warmup(key, init_params=init_params, extra_fields=extra_fields)
        except (RuntimeError, ValueError) as exc:
            init_failure(spec, "NUTS", key, exc)
        ckpt.save(mcmc.post_warmup_state, None, info)
    state = ckpt.load_state()
    chunks = ckpt.load_chunks()
    done = sum(next(iter(c.values())).shape[1] for c in chunks)
    while done < num_samples:
        mcmc.num_samples = min(ckpt.every, num_samples - done)
        mcmc.post_warmup_state = state
        # init_params: a resumed kernel must be initialised again (a potential-function kernel
        # needs a start); the post-warm-up state then overrides it
        mcmc.run(state.rng_key, init_params=state.z, extra_fields=extra_fields)
        samples = mcmc.get_samples(group_by_chain=True)
        samples = {k: np.asarray(v) for k, v in (postprocess or dict)(samples).items()}
        extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        check_nuts_draws(spec, samples, extra, offset=done)
        state = mcmc.last_state
        arrays = {**samples, **{_EXTRA + k: v for k, v in extra.items()}}
        ckpt.save(state, arrays)
        chunks.append(arrays)
        done += mcmc.num_samples
    joined = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}
    samples = {k: v for k, v in joined.items() if not k.startswith(_EXTRA)}
    extra = {k[len(_EXTRA) :]: v for k, v in joined.items() if k.startswith(_EXTRA)}
    return samples, extra


def run_svi_chunks(
    spec: ModelSpec,
    svi: Any,
    guide: Any,
    key: jax.Array,
    num_steps: int,
    ckpt: Checkpoint | None,
    *,
    progress: bool = False,
    info: dict[str, Any] | None = None,
) -> tuple[Any, np.ndarray]:
    """SVI (stable updates) in chunks of ``ckpt.every`` steps (one chunk without a checkpoint).

    Stops with :class:`~bayes_diml.inference.nonfinite.NonFiniteError` at the first step whose
    loss is not finite, with a diagnosis at the guide's median (or a non-finite guide draw) just
    before that step. Returns ``(params, losses float[num_steps])``.
    """
    try:
        state = svi.init(key)
    except (RuntimeError, ValueError) as exc:
        init_failure(spec, "SVI", key, exc)
    losses: list[np.ndarray] = []
    if ckpt is not None and ckpt.has_state:
        state = ckpt.load_state(template=state)  # the optimiser's initial state fixes the structure
        losses = [c["losses"] for c in ckpt.load_chunks()]
    elif ckpt is not None:
        ckpt.save(state, None, info)
    every = ckpt.every if ckpt is not None else SVI_CHUNK
    done = sum(len(v) for v in losses)
    advance = _svi_advance(svi)
    bar = tqdm(total=num_steps, initial=done, desc="SVI", disable=not progress, leave=False)
    while done < num_steps:
        n = min(every, num_steps - done)
        new_state, chunk = advance(state, n)
        chunk = np.asarray(chunk)
        if not np.all(np.isfinite(chunk)):
            bar.close()
            _svi_failure(spec, svi, guide, advance, state, chunk, done)
        state = new_state
        losses.append(chunk)
        done += n
        bar.update(n)
        if chunk.size:
            bar.set_postfix(loss=f"{chunk[-1]:.4g}")
        if ckpt is not None:
            ckpt.save(state, {"losses": chunk})
    bar.close()
    return svi.get_params(state), np.concatenate(losses) if losses else np.zeros(0)


#: SVI steps per jitted chunk without a checkpoint (the chunking does not change the result).
SVI_CHUNK = 500


def _svi_advance(svi: Any) -> Callable[[Any, int], tuple[Any, jax.Array]]:
    """``advance(state, n) -> (state, losses float[n])``: n stable SVI updates in one jitted scan."""

    @functools.partial(jax.jit, static_argnums=1)
    def advance(state, n):
        return jax.lax.scan(lambda s, _: svi.stable_update(s), state, None, length=n)

    return advance


def _svi_failure(spec, svi, guide, advance, state, chunk: np.ndarray, done: int) -> None:
    from .nonfinite import first_nonfinite_draw, raise_nonfinite

    j = int(np.argmax(~np.isfinite(chunk)))
    if j:
        state = advance(state, j)[0]  # the state just before the non-finite step
    key = state.rng_key
    params = svi.get_params(state)
    values = {k: np.asarray(v) for k, v in guide.median(params).items()}
    if first_nonfinite_draw(spec, {k: v[None] for k, v in values.items()}) is None:
        draws = guide.sample_posterior(jax.random.fold_in(key, done + j), params, sample_shape=(64,))
        d = first_nonfinite_draw(spec, draws)
        if d is not None:
            values = {k: np.asarray(v)[d] for k, v in draws.items()}
    raise_nonfinite(
        spec,
        "SVI",
        f"at step {done + j} (ELBO loss {chunk[j]})",
        values,
        hint=" Lower learning_rate, or fix the model where it is non-finite.",
    )
