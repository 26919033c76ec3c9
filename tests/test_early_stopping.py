"""Early stopping on held-out episodes: ``fit(..., method="map", validation=held_out)``."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import MAPConfig
from bayes_diml.inference.pipeline import held_out_log_likelihood, validation_spec
from bayes_diml.models import Priors

LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
FLAT = Priors(mechanism_scale=None)
OPTIONS = {"num_steps": 1500, "chunk": 50, "num_restarts": 1, "learning_rate": 0.05, "patience": 3}


@pytest.fixture(scope="module")
def game():
    """A 3 x 3 game, few episodes: the flat-prior table (the MLE) overfits them."""
    mech = mechanisms.Tabular((3, 3))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), LEARNER, n_episodes=12, T=12, key=1)
    train, held_out = data.split(0.5, seed=0)
    return mech, train, held_out


def _map(mech, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit(data, mech, LEARNER, "map", 0, priors=FLAT, progress=False, log_likelihood=False, **kw)


@pytest.fixture(scope="module")
def stopped(game):
    mech, train, held_out = game
    return _map(mech, train, validation=held_out, **OPTIONS)


def test_returns_the_chunk_end_with_the_best_held_out_likelihood(game, stopped):
    mech, train, held_out = game
    trace = np.asarray(stopped.info["validation_trace"])
    best = int(np.argmax(trace))
    assert stopped.info["map_steps"] == OPTIONS["chunk"] * (best + 1)
    # the run went on for `patience` chunks past the best and then stopped
    assert len(trace) == best + 1 + OPTIONS["patience"]
    assert np.all(trace[best + 1 :] < trace[best])
    # the returned point is that chunk end: the same as a plain fit of that many steps
    plain = _map(mech, train, **{**OPTIONS, "num_steps": stopped.info["map_steps"]})
    for name, value in plain.mechanism_params().items():
        np.testing.assert_array_equal(np.asarray(stopped.mechanism_params()[name]), np.asarray(value))
    spec = validation_spec(stopped.spec, held_out)
    values = {k: np.asarray(stopped.idata["posterior"][k].values[0, 0]) for k in spec.latent_names}
    assert held_out_log_likelihood(spec, values) == pytest.approx(trace[best], rel=1e-6)
    assert stopped.info["validation_log_likelihood"] == pytest.approx(trace[best])
    assert stopped.info["validation_per_action"] == pytest.approx(trace[best] / held_out.n_scored)


def test_stops_an_overfitting_mle_early_and_keeps_the_better_fit(game, stopped):
    """The flat MLE on 6 episodes overfits: the held-out likelihood peaks, then falls."""
    mech, train, held_out = game
    assert stopped.info["map_steps"] < OPTIONS["num_steps"]
    full = _map(mech, train, **OPTIONS)
    spec = validation_spec(full.spec, held_out)
    values = {k: np.asarray(full.idata["posterior"][k].values[0, 0]) for k in spec.latent_names}
    assert held_out_log_likelihood(spec, values) < stopped.info["validation_log_likelihood"]
    assert full.info["map_log_joint"] > stopped.info["map_log_joint"]  # it fits the training data better


def test_a_held_out_copy_of_the_training_data_never_stops_early(game):
    """Negative control: scored on its own data the flat fit improves at every chunk, so it runs on."""
    mech, train, _ = game
    opts = {**OPTIONS, "num_steps": 250}
    post = _map(mech, train, validation=train, **opts)
    trace = np.asarray(post.info["validation_trace"])
    assert post.info["map_steps"] == opts["num_steps"]
    assert np.all(np.diff(trace) > 0)
    assert trace[-1] == pytest.approx(post.info["map_log_joint"], rel=1e-5)  # flat prior: log joint = LL


def test_bad_validation_is_refused_with_a_clear_error(game):
    mech, train, held_out = game
    with pytest.raises(ValueError, match="method='map' only"):
        bd.fit(train, mech, LEARNER, "svi", priors=Priors(), progress=False, validation=held_out)
    with pytest.raises(TypeError, match="Trajectories of held-out episodes"):
        _map(mech, train, validation=held_out.actions)
    other = bd.Trajectories(np.zeros((2, 5, 2), dtype=int), (3, 4))
    with pytest.raises(ValueError, match="n_actions"):
        _map(mech, train, validation=other)
    with pytest.raises(ValueError, match="not to learner='auto'"):
        bd.fit(train, mech, "auto", "map", progress=False, validation=held_out)
    with pytest.raises(ValueError, match="not to robust='bagging'"):
        bd.fit(train, mech, LEARNER, "laplace", progress=False, robust="bagging", validation=held_out)
    with pytest.raises(ValueError, match="patience"):
        MAPConfig(patience=0)
