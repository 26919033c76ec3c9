"""Shared fixtures: float64 context, random ragged trajectories, one small case per mechanism.

``jax_numpy_rank_promotion = "raise"`` is NOT set here: the package relies on implicit rank
promotion in ``learners.py`` (``per_agent`` params float[n, 1] against float[M, n, K] in
``LogitQ.update``/``epsilon_mixture``) and in ``mechanisms/_util.py`` (``mlp_apply`` adds a
bias float[out] to float[..., out]), so the whole suite fails with it.

Tests that take more than ~5 s are marked ``@pytest.mark.slow`` (deselect with ``-m "not slow"``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

# On GPUs, XLA's reductions and scatters may add in a different order from run to run; the
# tests that compare two runs bit for bit need its deterministic kernels (the flag is ignored
# on the CPU, which is deterministic anyway). Set before JAX starts its backend.
if "--xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()

# One JAX persistent compilation cache for the whole run, shared by the pytest-xdist workers and
# the subprocesses the tests start (they inherit the environment): each fit builds fresh jitted
# closures, so XLA would otherwise compile the same program again for every test that fits the same
# model to the same data (a cache hit skips the XLA compilation, most of a small fit). A fresh
# directory per run, removed at the end, keeps runs independent; a directory already given in
# JAX_COMPILATION_CACHE_DIR is used as it is (and kept).
_OWN_JAX_CACHE: str | None = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_JAX_CACHE = tempfile.mkdtemp(prefix="bayes-diml-tests-jax-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_JAX_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    # a size limit turns on JAX's file lock around reads and writes: without it, one worker could
    # read an entry another is still writing
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 1024**3))

import jax  # noqa: E402
import pytest  # noqa: E402
from reference import MECHANISM_BUILDERS, random_trajectories  # noqa: E402

import bayes_diml as bd  # noqa: E402

# The command line keeps compiled programs in ~/.cache/bayes-diml/jax; the tests (CliRunner and
# subprocesses alike) leave the home directory alone (they use the run's cache above).
# tests/test_compilation_cache.py turns the command line's cache on where it tests it.
os.environ["BAYES_DIML_COMPILATION_CACHE"] = "off"


def pytest_unconfigure(config):
    """Remove the run's compilation cache (in the process that made it: the xdist controller)."""
    if _OWN_JAX_CACHE is not None:
        shutil.rmtree(_OWN_JAX_CACHE, ignore_errors=True)


# ---------------------------------------------------------------- precision


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX (a context: x64 is never switched on globally)."""
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------- data


@pytest.fixture
def ragged_data() -> Callable[[tuple[int, ...]], bd.Trajectories]:
    """Trajectories for given K_i: M = 4 ragged episodes of up to T = 7 steps (one of length 1)."""

    def make(n_actions: tuple[int, ...], seed: int = 0) -> bd.Trajectories:
        return random_trajectories(n_actions, 4, 7, seed, lengths=[7, 4, 1, 6])

    return make


# ---------------------------------------------------------------- mechanisms


@pytest.fixture(params=list(MECHANISM_BUILDERS))
def build_mechanism(request) -> Callable[[jax.Array], tuple[Any, Any]]:
    """One builder per mechanism type: ``build(key) -> (mechanism, params)``."""
    return MECHANISM_BUILDERS[request.param]
