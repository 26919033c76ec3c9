"""Hierarchical learner parameters (``"infer_hierarchical"``): sites, dims and recovery.

Statistical checks use the suite-wide false-failure budget 1e-3 over ~20 checks:
Z = NormalDist().inv_cdf(1 - 1e-3 / 40) = 4.06.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference.spec import ModelSpec, initial_values
from bayes_diml.models import INFER_HIERARCHICAL, Priors, population_summary

Z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20))
N_AGENTS, K = 12, 3
W = jnp.array([0.0, 0.6, 1.2])  # every agent faces the same three arms: u_i(a) = w[a_i]


def own_action_mechanism(n: int = N_AGENTS):
    return mechanisms.Function(lambda p, a: p["w"][a], lambda key: {"w": jnp.zeros(K)}, n_actions=(K,) * n)


def population_data(n: int = N_AGENTS, M: int = 6, T: int = 20, seed: int = 0):
    """Agents whose betas differ (log beta_i ~ N(log 2, 0.5)); payoffs observed with noise 0.3."""
    rng = np.random.default_rng(seed)
    betas = np.exp(rng.normal(np.log(2.0), 0.5, n))
    learner = bd.LogitQ(0.3, jnp.asarray(betas), 0.05)
    sim = bd.simulate(own_action_mechanism(n), {"w": W}, learner, M, T, seed, record_payoffs=True)
    pay = sim.payoffs + 0.3 * rng.standard_normal(sim.payoffs.shape)
    return bd.Trajectories(sim.actions, sim.n_actions, payoffs=pay), betas


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_hierarchical_sites_dims_and_initial_values():
    data, _ = population_data(n=4, M=2, T=5)
    spec = ModelSpec.build(
        data, own_action_mechanism(4), bd.LogitQ(0.3, INFER_HIERARCHICAL, "infer"), Priors()
    )
    assert spec.latent_names == ["mech.w", "beta_mu", "beta_sigma", "beta_z", "eps", "payoff_noise"]
    init = initial_values(spec, jax.random.key(0))
    assert init["beta_z"].shape == (4,) and float(init["beta_mu"]) == pytest.approx(1.0)  # log(e^1)
    tr = numpyro.handlers.trace(
        numpyro.handlers.substitute(numpyro.handlers.seed(spec.model(), 0), data=init)
    )
    trace = tr.get_trace()
    assert trace["beta"]["type"] == "deterministic"
    np.testing.assert_allclose(trace["beta"]["value"], np.full(4, np.e), rtol=1e-5)  # z = 0: the median
    assert trace["beta_z"]["fn"].batch_shape == (4,)
    # logit link for unit-interval parameters; population priors configurable
    spec2 = ModelSpec.build(
        data, own_action_mechanism(4), bd.LogitQ(INFER_HIERARCHICAL, 2.0, 0.05), Priors(population=(0.5, 0.2))
    )
    tr2 = numpyro.handlers.trace(numpyro.handlers.seed(spec2.model(), 1)).get_trace()
    assert np.all((tr2["alpha"]["value"] > 0) & (tr2["alpha"]["value"] < 1))
    assert tr2["alpha_sigma"]["fn"].scale == pytest.approx(0.2)
    with pytest.raises(ValueError, match="population"):
        Priors(population=(1.0, 0.0))
    with pytest.raises(ValueError, match="infer_hierarchical"):
        ModelSpec.build(data, own_action_mechanism(4), bd.LogitQ(0.3, "infer_population", 0.05), Priors())


@pytest.mark.slow
def test_hierarchical_betas_recovered_and_shrunk_with_nuts():
    data, betas = population_data()
    mech = own_action_mechanism()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bd.fit(
            data,
            mech,
            bd.LogitQ(0.3, INFER_HIERARCHICAL, 0.05),
            method="nuts",
            seed=0,
            progress=False,
            num_warmup=250,
            num_samples=250,
            num_chains=1,
        )
        sep = bd.fit(
            data,
            mech,
            bd.LogitQ(0.3, "infer_per_agent", 0.05),
            method="map",
            seed=0,
            progress=False,
            num_restarts=1,
        )
    log_b = np.log(post.draws("beta"))  # [D, n]
    z = (log_b.mean(0) - np.log(betas)) / log_b.std(0)
    assert np.all(np.abs(z) < Z), z
    assert np.corrcoef(log_b.mean(0), np.log(betas))[0, 1] > 0.8  # power: agents are told apart
    mu = post.draws("beta_mu")
    assert abs(mu.mean() - np.log(2.0)) < Z * mu.std()
    # shrinkage: hierarchical estimates lie closer to the population mean than separate MAPs
    sep_log = np.log(sep.draws("beta")[0])
    assert np.sum((log_b.mean(0) - mu.mean()) ** 2) < np.sum((sep_log - mu.mean()) ** 2)
    pop = population_summary(post, "beta")
    assert pop["per_agent"].shape == (N_AGENTS, 3) and pop["median"][1] < 2.0 < pop["median"][2]
    rows = post.summary(identification=False).index
    assert {"beta_mu", "beta_sigma", "beta[0]", "beta[11]"} <= set(rows)
