"""``fit(..., config=...)``: a method's settings as one object beside (or instead of) keywords."""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import LaplaceConfig, MAPConfig, NUTSConfig, SVIConfig
from bayes_diml.inference.pipeline import make_config

LEARNER = bd.LogitQ(0.3, 2.0, 0.05)


@pytest.fixture(scope="module")
def game():
    mech = mechanisms.Tabular((2, 2))
    params = {"table": jax.random.normal(jax.random.key(1), (2, 2, 2))}
    return mech, bd.simulate(mech, params, LEARNER, 6, 8, 2)


def _fit(game, method, **kw):
    mech, data = game
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.inference.ConvergenceWarning)
        return bd.fit(data, mech, LEARNER, method, 0, progress=False, log_likelihood=False, **kw)


@pytest.mark.parametrize(
    ("method", "config"),
    [
        ("map", MAPConfig(num_steps=40, chunk=20, num_restarts=1)),
        # two whole Laplace fits (each with its own MAP): slow; the MAP case checks the same
        # config/keyword route (make_config, shared by every method) in the fast run
        pytest.param("laplace", LaplaceConfig(num_draws=8, refine_steps=5), marks=pytest.mark.slow),
    ],
)
def test_a_config_gives_the_same_fit_as_its_keywords(game, method, config):
    by_config = _fit(game, method, config=config)
    by_keywords = _fit(game, method, **dataclasses.asdict(config))
    for name in by_config.spec.latent_names:
        np.testing.assert_array_equal(by_config.draws(name), by_keywords.draws(name))


@pytest.mark.parametrize(
    ("method", "config"),
    [("nuts", MAPConfig()), ("map", NUTSConfig()), ("svi", LaplaceConfig()), ("laplace", SVIConfig())],
)
def test_a_config_of_another_method_is_a_type_error(game, method, config):
    with pytest.raises(TypeError, match=rf"{type(config).__name__}.*method='{method}'"):
        _fit(game, method, config=config)


def test_a_keyword_contradicting_the_config_is_a_value_error(game):
    with pytest.raises(ValueError, match=r"num_samples=50.*NUTSConfig\(num_samples=100\)"):
        _fit(game, "nuts", config=NUTSConfig(num_samples=100), num_samples=50)


def test_keywords_fill_what_the_config_leaves_at_its_default():
    cfg = make_config("nuts", {"num_samples": 50, "num_warmup": 100}, NUTSConfig(num_warmup=100))
    assert cfg == NUTSConfig(num_warmup=100, num_samples=50)
    assert make_config("map", {}, MAPConfig(num_steps=7)) == MAPConfig(num_steps=7)
    laplace = LaplaceConfig(num_draws=8, refine_steps=5)  # a config and its keywords: one config
    assert make_config("laplace", {}, laplace) == make_config("laplace", dataclasses.asdict(laplace), None)
    assert make_config("laplace", dataclasses.asdict(laplace), None) == laplace
    with pytest.raises(TypeError, match="unknown option"):
        make_config("map", {"num_samples": 5}, MAPConfig())
