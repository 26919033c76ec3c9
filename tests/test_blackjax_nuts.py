"""NUTSConfig(backend="blackjax"): the same posterior as NumPyro's NUTS, its options and errors.

Statistical check: the posterior means of both samplers agree within their Monte Carlo
errors, |mean_a - mean_b| / sqrt(mcse_a^2 + mcse_b^2) < z with a false-failure rate of 1e-3
shared (Bonferroni) over every compared quantity; ``mcse = sd / sqrt(bulk ESS)``.
"""

from __future__ import annotations

from statistics import NormalDist

import arviz as az
import jax
import jax_cache
import numpy as np
import pytest
import xarray as xr
from reference import split_r_hat_bound

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import NUTSConfig

LEARNER = bd.LogitQ("infer", 2.0, "infer")
QUANTITIES = ("centred_payoffs", "alpha", "eps")


@pytest.fixture(scope="module")
def data():
    mech = mechanisms.Tabular((2, 3))
    truth = {"table": jax.random.normal(jax.random.key(3), (2, 3, 2))}
    return mech, bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 30, 30, 11)


def _fit(data, backend: str, **options):
    mech, d = data
    return bd.fit(d, mech, LEARNER, method="nuts", seed=0, progress=False, backend=backend, **options)


def _moments(post) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = {}
    for q in QUANTITIES:
        x = np.asarray(post.idata["posterior"][q], dtype=float)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        ess = np.asarray(az.ess(xr.DataArray(x, dims=("chain", "draw", "cell")), method="bulk"))
        out[q] = (x.mean(axis=(0, 1)), x.std(axis=(0, 1)), ess)
    return out


@pytest.mark.slow  # two 2 x (400 + 400) NUTS runs; the fast suite checks the backend's output below
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # bound below, not 1.01
def test_blackjax_and_numpyro_sample_the_same_posterior(data):
    opts = {"num_warmup": 400, "num_samples": 400, "num_chains": 2}
    bj = _fit(data, "blackjax", **opts)
    ref = _fit(data, "numpyro", **opts)
    assert bj.info["nuts_backend"] == "blackjax" and ref.info["nuts_backend"] == "numpyro"
    assert bj.info["divergences"] == 0
    assert 0.0 < bj.info["compile_seconds"] < bj.info["sampling_seconds"]
    assert bj.info["min_ess_bulk"] > 100
    scalars = sum(v.size // (2 * 400) for v in bj.idata["posterior"].data_vars.values())
    assert bj.info["max_r_hat"] < split_r_hat_bound(bj.info["min_ess_bulk"], chains=2, quantities=scalars)
    stats = bj.idata["sample_stats"]
    for name in ("diverging", "n_steps", "acceptance_rate", "energy", "lp"):
        assert stats[name].shape == (2, 400), name
    assert np.all(np.asarray(stats["n_steps"]) >= 1)
    a, b = _moments(bj), _moments(ref)
    n_compared = sum(a[q][0].size for q in QUANTITIES)
    z_max = NormalDist().inv_cdf(1 - 1e-3 / (2 * n_compared))
    for q in QUANTITIES:
        (ma, sa, ea), (mb, sb, eb) = a[q], b[q]
        z = np.abs(ma - mb) / np.sqrt(sa**2 / ea + sb**2 / eb)
        assert np.all(z < z_max), (q, z.max())
    # negative control: a shifted posterior fails the same check
    (ma, sa, ea), (mb, sb, eb) = a["alpha"], b["alpha"]
    assert np.all(np.abs(ma + 0.5 * sa - mb) / np.sqrt(sa**2 / ea + sb**2 / eb) > z_max)


@pytest.fixture(scope="module")
def small_data():
    """Fast tests check the backend's plumbing: every fit is compile-bound, and 8 x 10 data run
    the same programs as the 30 x 30 of the statistical comparison above, in less time."""
    mech = mechanisms.Tabular((2, 3))
    truth = {"table": jax.random.normal(jax.random.key(3), (2, 3, 2))}
    return mech, bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 8, 10, 11)


@pytest.fixture
def compilation_cache(tmp_path):
    """JAX's persistent compilation cache for one test: the second of two equal fits loads the code."""
    with jax_cache.compilation_cache(tmp_path / "jax") as where:
        yield where


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # a short run
def test_blackjax_vectorized_chains_are_reproducible(small_data, compilation_cache):
    opts = {"num_warmup": 60, "num_samples": 23, "num_chains": 3, "chain_method": "vectorized"}
    first = _fit(small_data, "blackjax", **opts)
    assert any(compilation_cache.iterdir())  # the second fit loads the first one's compiled code:
    # what is checked is unchanged (the same seed gives the same keys, starts and draws)
    again = _fit(small_data, "blackjax", **opts)
    assert first.info["nuts_backend"] == "blackjax" and first.info["compile_seconds"] > 0.0
    stats = first.idata["sample_stats"]
    for name in ("diverging", "n_steps", "acceptance_rate", "energy", "lp"):
        assert stats[name].shape == (3, 23), name
    assert np.all(np.asarray(stats["n_steps"]) >= 1)
    alpha = np.asarray(first.idata["posterior"]["alpha"])
    assert alpha.shape == (3, 23)  # 23 draws: the last progress chunk's surplus is dropped
    np.testing.assert_array_equal(alpha, np.asarray(again.idata["posterior"]["alpha"]))
    assert not np.allclose(alpha[0], alpha[1])  # chains have their own keys


# One fit for two edge cases (each fit is compile-bound): no warm-up (no adaptation: unit step,
# identity mass) and a single chain under vmap. Sequential chains with a warm-up: the slow
# comparison above; vmapped adaptation: the reproducibility test.
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # no adaptation
def test_blackjax_vectorized_single_chain_without_warmup_runs_with_unit_step(small_data):
    post = _fit(small_data, "blackjax", num_warmup=0, num_samples=7, num_chains=1, chain_method="vectorized")
    assert np.asarray(post.idata["posterior"]["alpha"]).shape == (1, 7)
    assert np.asarray(post.idata["posterior"]["eps"]).shape == (1, 7)
    assert post.info["nuts_backend"] == "blackjax"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"backend": "stan"}, "backend must be"),
        ({"backend": "blackjax", "init": "prior"}, "starts at dispersed points or the MAP"),
        ({"backend": "blackjax", "chain_method": "parallel"}, "starts at dispersed points or the MAP"),
    ],
)
def test_bad_backend_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        NUTSConfig(**options)


def test_blackjax_refuses_checkpoints(small_data, tmp_path):
    mech, d = small_data
    with pytest.raises(ValueError, match="checkpointing"):
        bd.fit(d, mech, LEARNER, method="nuts", backend="blackjax", progress=False,
               checkpoint=tmp_path / "ck")  # fmt: skip
