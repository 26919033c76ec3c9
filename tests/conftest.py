"""Shared fixtures: float64 context, random ragged trajectories, one small case per mechanism.

``jax_numpy_rank_promotion = "raise"`` is NOT set here: the package relies on implicit rank
promotion in ``learners.py`` (``per_agent`` params float[n, 1] against float[M, n, K] in
``LogitQ.update``/``epsilon_mixture``) and in ``mechanisms/_util.py`` (``mlp_apply`` adds a
bias float[out] to float[..., out]), so the whole suite fails with it.

Statistical tests and the heaviest integration runs are marked ``@pytest.mark.slow`` (deselect with
``-m "not slow"``; CI runs them after the fast suite). A fast run compiles at XLA optimisation level 0
(:func:`pytest_configure`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

# On GPUs, XLA's reductions and scatters may add in a different order from run to run; the
# tests that compare two runs bit for bit need its deterministic kernels (the flag is ignored
# on the CPU, which is deterministic anyway). Set before JAX starts its backend.
# Figures in tests are drawn without a display; the package never chooses a backend itself.
os.environ.setdefault("MPLBACKEND", "Agg")
if "--xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()

import jax  # noqa: E402
import pytest  # noqa: E402
from reference import MECHANISM_BUILDERS, random_trajectories  # noqa: E402

import bayes_diml as bd  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Compile with XLA's backend optimisations off when the run leaves the slow tests out.

    A fast test's fits are tiny: compiling their programs is most of their time, and level 0
    compiles ~25% faster (measured on tests/test_likelihood.py + test_inference.py, -n 0: 200 ->
    154 CPU s). The slow tests run long chains, which level 0 runs slower (2 x (500 + 500) NUTS
    on 30 x 30 data: 7.4 s -> 12.3 s of sampling), so they keep XLA's default. Set before the
    first computation starts JAX's backend (importing bayes_diml starts none).
    """
    if (config.option.markexpr or "").strip() == "not slow" and "--xla_backend_optimization_level" not in (
        os.environ.get("XLA_FLAGS", "")
    ):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
        ).strip()


# The command line keeps compiled programs in ~/.cache/bayes-diml/jax; the tests (CliRunner and
# subprocesses alike) leave the home directory alone. tests/test_compilation_cache.py turns the
# cache on where it tests it.
os.environ["BAYES_DIML_COMPILATION_CACHE"] = "off"

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
