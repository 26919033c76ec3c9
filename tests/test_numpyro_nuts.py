"""NUTSConfig(backend="numpyro") with sequential chains from dispersed starts or the MAP: each chain
runs as compiled programs (``inference/numpyro_nuts.py``) of NumPyro's own kernel, the chains of
``MCMC.run``."""

from __future__ import annotations

import logging
import warnings

import jax
import jax.numpy as jnp
import jax_cache
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConvergenceWarning, NUTSConfig, numpyro_nuts, samplers

LEARNER = bd.LogitQ("infer", 2.0, "infer")


@pytest.fixture(scope="module")
def data():
    mech = mechanisms.Tabular((2, 3))
    truth = {"table": jax.random.normal(jax.random.key(3), (2, 3, 2))}
    return mech, bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 30, 30, 11)


def _fit(data, **options):
    mech, d = data
    return bd.fit(d, mech, LEARNER, method="nuts", seed=0, progress=False, **options)


# 150 warm-up iterations: the smallest run with Stan's full adaptation schedule (75 + 25 + 50).
# In float64: the compiled chains, MCMC.run and the chunked chains (with a bar) run the same
# iterations in differently compiled programs, which round differently; NUTS's warm-up amplifies
# rounding differences from dispersed starts (a 60-iteration warm-up in float32 failed the
# tolerance at XLA optimisation level 0; against MCMC.run even float64 parts within 100
# iterations, so that comparison runs a shorter chain).
OPTS = {"num_warmup": 150, "num_samples": 60, "num_chains": 2}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """JAX's persistent compilation cache for the three fits below: they share their dispersed
    starts' and draws' programs (the programs under comparison differ and compile each)."""
    with jax_cache.compilation_cache(tmp_path_factory.mktemp("jax")) as where:
        yield where


@pytest.fixture(scope="module")
def compiled(data, cache):
    """The compiled chains (float64, no bar) and the names of the chain programs compiled on the way.

    Shared by the tests below: each fit is compile-bound, so one fit serves three comparisons.
    """

    def no_mcmc(*args, **kwargs):
        raise AssertionError("MCMC.run was called")

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger, dispatch = logging.getLogger("jax"), logging.getLogger("jax._src.dispatch")
    level = dispatch.level
    dispatch.setLevel(logging.WARNING)  # as caplog.at_level: jax.log_compiles logs at WARNING
    logger.addHandler(handler)  # "Compiling jit(chain) ..." comes from jax._src.interpreters.pxla
    try:
        with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a short run
            patch.setattr(samplers.MCMC, "run", no_mcmc)
            jax.clear_caches()  # the chain program is shared by fits of equal shapes: count this one's
            with jax.enable_x64(True), jax.log_compiles():
                post = _fit(data, **OPTS)
    finally:
        logger.removeHandler(handler)
        dispatch.setLevel(level)
    names = [r.getMessage() for r in records if r.getMessage().startswith("Compiling jit(_whole_chain)")]
    return post, names


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_sequential_chains_compile_one_program_and_bypass_mcmc(compiled):
    post, names = compiled  # MCMC.run raised if called
    assert len(names) == 1, names  # one program for the two chains (no progress bar: one call)
    assert np.asarray(post.idata["posterior"]["alpha"]).shape == (2, 60)


def _same_chains(
    post, reference, tolerance: str, draws: int = 60, rtol: float = 1e-3, atol: float = 1e-4
) -> None:
    for site in ("alpha", "eps", "centred_payoffs"):
        a, b = (np.asarray(p.idata["posterior"][site]) for p in (post, reference))
        assert a.shape[:2] == (2, draws) and a.dtype == b.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{site}: {tolerance}")
    for name in ("n_steps", "diverging"):
        np.testing.assert_array_equal(post.idata["sample_stats"][name], reference.idata["sample_stats"][name])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # a short run
def test_compiled_chains_are_the_chains_of_numpyro_mcmc(data, cache, monkeypatch):
    """The same keys and kernel: equal up to float64 rounding (one program vs one per draw).

    NUTS amplifies rounding differences chaotically (a U-turn or tree-depth decision flips, then
    the chains part): between these two programs the largest difference in alpha was 6e-13
    after 10 warm-up iterations + 3 draws, 2.5e-8 after 50 + 3, 2e-2 after 100 + 3 and 5e-2
    after 150 + 60 (measured on the 2-core CI machine, jax 0.12). So the comparison runs 30 + 30
    iterations (7e-10 measured) with a tolerance 100x above that; the chunked and one-program
    chains, closer programs, are compared over the full 150 + 60 below.
    """
    short = {**OPTS, "num_warmup": 30, "num_samples": 30}
    with jax.enable_x64(True):
        ours = _fit(data, **short)
    monkeypatch.setattr(samplers, "_COMPILED_CHAINS", False)  # NumPyro's MCMC.run
    with jax.enable_x64(True):
        reference = _fit(data, **short)
    _same_chains(ours, reference, "one program vs MCMC.run", draws=30, rtol=1e-7, atol=1e-7)
    alpha = np.asarray(ours.idata["posterior"]["alpha"])
    assert not np.allclose(alpha[0], alpha[1])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # a short run
def test_a_progress_bar_runs_the_same_iterations_in_chunks(data, cache, compiled, capsys):
    """With a bar, the iterations run in chunks (a bar that moves); the chains are the same."""
    total = OPTS["num_warmup"] + OPTS["num_samples"]
    assert 1 < numpyro_nuts.chunk_length(total, progress=True) < total  # 21 chunks of 10
    mech, d = data
    with jax.enable_x64(True):
        shown = bd.fit(d, mech, LEARNER, method="nuts", seed=0, progress=True, **OPTS)
    assert "NUTS" in capsys.readouterr().err  # the bar was shown
    # one program against an initialisation and chunks: equal up to rounding
    _same_chains(shown, compiled[0], "one program vs chunks")


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
