"""NUTSConfig(backend="numpyro") with sequential chains from dispersed starts or the MAP: each chain
runs as compiled programs (``inference/numpyro_nuts.py``) of NumPyro's own kernel, the chains of
``MCMC.run``."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import NUTSConfig, numpyro_nuts, samplers

LEARNER = bd.LogitQ("infer", 2.0, "infer")


@pytest.fixture(scope="module")
def data():
    mech = mechanisms.Tabular((2, 3))
    truth = {"table": jax.random.normal(jax.random.key(3), (2, 3, 2))}
    return mech, bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 30, 30, 11)


def _fit(data, **options):
    mech, d = data
    return bd.fit(d, mech, LEARNER, method="nuts", seed=0, progress=False, **options)


@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # a short run
def test_compiled_chains_are_the_chains_of_numpyro_mcmc(data, monkeypatch):
    opts = {"num_warmup": 150, "num_samples": 60, "num_chains": 2}
    compiled = _fit(data, **opts)
    monkeypatch.setattr(samplers, "_COMPILED_CHAINS", False)  # NumPyro's MCMC.run
    reference = _fit(data, **opts)
    for site in ("alpha", "eps", "centred_payoffs"):
        a, b = (np.asarray(p.idata["posterior"][site]) for p in (compiled, reference))
        assert a.shape[:2] == (2, 60)
        # the same keys and kernel: equal up to float32 rounding (one program vs one per draw)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=site)
    for name in ("n_steps", "diverging"):
        np.testing.assert_array_equal(
            compiled.idata["sample_stats"][name], reference.idata["sample_stats"][name]
        )
    assert not np.allclose(compiled.idata["posterior"]["alpha"][0], compiled.idata["posterior"]["alpha"][1])


@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_sequential_chains_compile_one_program_and_bypass_mcmc(data, monkeypatch, caplog):
    def no_mcmc(*args, **kwargs):
        raise AssertionError("MCMC.run was called")

    monkeypatch.setattr(samplers.MCMC, "run", no_mcmc)
    with caplog.at_level(logging.WARNING, logger="jax._src.dispatch"), jax.log_compiles():
        post = _fit(data, num_warmup=40, num_samples=20, num_chains=3)
    compiled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling jit(chain)")]
    assert len(compiled) == 1, compiled  # one program for the three chains (no progress bar: one call)
    assert np.asarray(post.idata["posterior"]["alpha"]).shape == (3, 20)


def test_run_numpyro_nuts_samples_a_standard_normal():
    config = NUTSConfig(num_warmup=300, num_samples=400, num_chains=2, dense_mass=True)
    potential = jax.jit(lambda z: 0.5 * jnp.sum(z["x"] ** 2))
    starts = {"x": jnp.array([[0.5, 0.5, 0.5], [-2.0, 1.0, 3.0]])}  # chain c from starts["x"][c]
    finite, draws, stats = numpyro_nuts.run_numpyro_nuts(
        potential, starts, jax.random.key(1), config, progress=False
    )
    assert finite is True
    x = draws["x"]
    assert x.shape == (2, 400, 3)
    assert set(stats) == set(numpyro_nuts.STAT_FIELDS)
    assert all(v.shape == (2, 400) for v in stats.values())
    assert np.all(np.abs(x.mean(axis=(0, 1))) < 0.25)
    assert np.all(np.abs(x.var(axis=(0, 1)) - 1.0) < 0.3)
    assert stats["diverging"].sum() == 0


def test_run_numpyro_nuts_reports_a_non_finite_start():
    config = NUTSConfig(num_warmup=5, num_samples=5, num_chains=3)
    potential = jax.jit(lambda z: jnp.where(z["x"][0] < 1.0, jnp.sum(z["x"] ** 2), jnp.nan))
    starts = {"x": jnp.array([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])}  # chain 1 starts where it is NaN
    finite, draws, stats = numpyro_nuts.run_numpyro_nuts(
        potential, starts, jax.random.key(0), config, progress=False
    )
    assert finite == 1 and finite is not True and draws == {} and stats == {}


def test_chunk_length():
    assert numpyro_nuts.chunk_length(1000, progress=False) == 1000
    assert numpyro_nuts.chunk_length(1000, progress=True) == 50  # 20 calls
    assert numpyro_nuts.chunk_length(660, progress=True) == 33  # 20 calls
    assert numpyro_nuts.chunk_length(1050, progress=True) == 50  # 21 calls
    assert numpyro_nuts.chunk_length(12, progress=True) == 12
    assert numpyro_nuts.chunk_length(1009, progress=True) == 51  # a prime: 19 calls of 51, one of 40
    for n in (1, 7, 60, 123, 500, 999, 1000, 1009, 4096):
        length = numpyro_nuts.chunk_length(n, progress=True)
        assert 1 <= length <= n and -(-n // length) <= 2 * numpyro_nuts.PROGRESS_CHUNKS


@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_a_progress_bar_runs_the_same_iterations_in_chunks(data, capsys):
    """With a bar, the iterations run in chunks (a bar that moves); the chains are the same."""
    # from the MAP: chains from prior draws travel far in 60 warm-up iterations, and the float32
    # rounding differences between the two programs grow past the tolerance on the way
    opts = {"num_warmup": 60, "num_samples": 40, "num_chains": 2, "init": "map"}
    quiet = _fit(data, **opts)
    mech, d = data
    shown = bd.fit(d, mech, LEARNER, method="nuts", seed=0, progress=True, **opts)
    for site in ("alpha", "eps", "centred_payoffs"):
        np.testing.assert_allclose(
            np.asarray(shown.idata["posterior"][site]),
            np.asarray(quiet.idata["posterior"][site]),
            rtol=1e-3,  # one program against an initialisation and chunks: float32 rounding differs
            atol=1e-4,
        )
    np.testing.assert_array_equal(
        shown.idata["sample_stats"]["n_steps"], quiet.idata["sample_stats"]["n_steps"]
    )
