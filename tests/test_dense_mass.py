"""NUTSConfig(dense_mass="auto"): the unconstrained dimension, the choice it makes, and that
the choice reaches the sampler (NumPyro's NUTS and BlackJAX's)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer.util import unconstrain_fn

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import (
    DENSE_MASS_MAX_DIM,
    NUTSConfig,
    samplers,
    unconstrained_dimension,
)
from bayes_diml.inference.spec import ModelSpec

LEARNER = bd.LogitQ("infer", 2.0, "infer")


@pytest.fixture(scope="module")
def data():
    mech = mechanisms.Tabular((2, 3))
    truth = {"table": jax.random.normal(jax.random.key(3), (2, 3, 2))}
    return mech, bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 10, 20, 11)


def test_unconstrained_dimension_counts_transformed_sizes():
    def model(y):
        numpyro.sample("w", dist.Dirichlet(jnp.ones(4)))  # simplex of 4: 3 free
        with numpyro.plate("units", 5):
            numpyro.sample("z", dist.Normal(0.0, 1.0))  # 5
        scale = numpyro.sample("scale", dist.LogNormal(0.0, 1.0))  # 1
        numpyro.sample("y", dist.Normal(0.0, scale), obs=y)  # observed: none
        numpyro.factor("extra", -1.0)  # a factor is not a parameter
        numpyro.deterministic("twice", 2.0 * scale)

    assert unconstrained_dimension(functools.partial(model, jnp.zeros(7))) == 3 + 5 + 1


def test_unconstrained_dimension_of_a_logit_q_model_is_the_size_of_its_unconstrained_values(data):
    mech, d = data
    spec = ModelSpec.build(d, mech, LEARNER, None)
    model = spec.model()

    # any point of the support will do (a prior draw; no MAP fit to compile)
    def draw(key):
        trace = handlers.trace(handlers.seed(model, key)).get_trace()
        return {k: site["value"] for k, site in trace.items() if k in spec.latent_names}

    values = jax.jit(draw)(jax.random.key(0))
    assert set(values) == set(spec.latent_names)
    z = unconstrain_fn(model, (), {}, values)
    expected = sum(np.size(v) for v in z.values())
    # gauge-free payoffs: (K_i - 1) differences per opponent action, agent by agent; alpha, eps
    assert expected == (2 - 1) * 3 + (3 - 1) * 2 + 2
    assert unconstrained_dimension(model) == expected


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_dense_mass_is_named(value):
    with pytest.raises(ValueError, match="dense_mass must be True, False or 'auto'"):
        NUTSConfig(dense_mass=value)


class _Reached(Exception):
    """Raised by ``_spy(stop=True)`` once the sampler has received its settings."""


def _spy(monkeypatch, backend: str, stop: bool = False) -> list:
    """Record the dense_mass setting each NUTS run receives; ``stop``: then end the fit there
    (raise ``_Reached``: nothing is compiled for the sampler)."""
    seen = []
    if backend == "numpyro":
        real = samplers.NUTS

        def nuts(*args, **kwargs):
            seen.append(kwargs["dense_mass"])
            if stop:
                raise _Reached
            return real(*args, **kwargs)

        monkeypatch.setattr(samplers, "NUTS", nuts)
    else:
        from bayes_diml.inference import blackjax_nuts

        real_run = blackjax_nuts.run_blackjax_nuts

        def run(potential, z, key, config, **kwargs):
            seen.append(config.dense_mass)
            if stop:
                raise _Reached
            return real_run(potential, z, key, config, **kwargs)

        monkeypatch.setattr(blackjax_nuts, "run_blackjax_nuts", run)
    return seen


@pytest.mark.parametrize(
    ("backend", "dense_mass", "limit", "num_warmup", "expected"),
    [
        ("numpyro", "auto", DENSE_MASS_MAX_DIM, 90, True),  # 9 <= min(64, 90 // 10)
        ("numpyro", "auto", DENSE_MASS_MAX_DIM, 89, False),  # too short a warm-up for 9 x 9
        ("numpyro", "auto", 8, 100, False),  # more parameters than the limit
        ("blackjax", "auto", 8, 100, False),
        ("blackjax", True, 8, 20, True),  # explicit settings are kept
        ("numpyro", False, DENSE_MASS_MAX_DIM, 100, False),
    ],
)
def test_auto_dense_mass_follows_the_dimension(
    data, monkeypatch, backend, dense_mass, limit, num_warmup, expected
):
    """The decision ``run_nuts`` makes for the fit's model (nothing is sampled: the tests below
    show that the decision reaches each sampler and ``info``)."""
    mech, d = data  # 9 unconstrained parameters
    monkeypatch.setattr(samplers, "DENSE_MASS_MAX_DIM", limit)
    model = ModelSpec.build(d, mech, LEARNER, None).model()
    config = NUTSConfig(
        backend=backend, dense_mass=dense_mass, num_warmup=num_warmup, num_samples=10, num_chains=1
    )
    resolved = samplers._resolve_dense_mass(config, model)
    assert resolved.dense_mass is expected
    assert resolved == dataclasses.replace(config, dense_mass=expected)  # nothing else changes


# The resolved choice reaches the samplers and ``info``: one real fit (NumPyro's NUTS as compiled
# chains from dispersed starts, "auto" -> True); BlackJAX's NUTS ("auto" -> False) and NumPyro's
# NUTS built on the model (init="prior", ``MCMC.run``) are stopped once they receive it (a fit is
# ~10 s of compilation; BlackJAX's dense and diagonal runs are fitted in test_cli.py and
# test_blackjax_nuts.py, ``info["dense_mass"]`` is set before the paths part).
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # a short run
def test_auto_dense_mass_reaches_numpyros_nuts(data, monkeypatch):
    mech, d = data  # 9 unconstrained parameters
    seen = _spy(monkeypatch, "numpyro")
    post = bd.fit(
        d, mech, LEARNER, method="nuts", seed=0, progress=False, backend="numpyro",
        num_warmup=90, num_samples=10, num_chains=1, dense_mass="auto",
    )  # fmt: skip
    assert post.info["dense_mass"] is True
    assert seen == [True]
    assert np.asarray(post.idata["posterior"]["alpha"]).shape == (1, 10)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_auto_dense_mass_reaches_blackjaxs_nuts(data, monkeypatch):
    mech, d = data
    monkeypatch.setattr(samplers, "DENSE_MASS_MAX_DIM", 8)  # 9 parameters: diagonal
    seen = _spy(monkeypatch, "blackjax", stop=True)
    with pytest.raises(_Reached):
        bd.fit(
            d, mech, LEARNER, method="nuts", seed=0, progress=False, backend="blackjax",
            num_warmup=100, num_samples=10, num_chains=1, dense_mass="auto",
        )  # fmt: skip
    assert seen == [False]


def test_auto_dense_mass_with_a_prior_start(data, monkeypatch):
    mech, d = data
    seen = _spy(monkeypatch, "numpyro", stop=True)
    with pytest.raises(_Reached):
        bd.fit(
            d, mech, LEARNER, method="nuts", seed=0, progress=False, init="prior",
            num_warmup=90, num_samples=10, num_chains=1,
        )  # fmt: skip
    assert seen == [True]
