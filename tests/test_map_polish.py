"""Polishing a MAP fit with L-BFGS (``MAPConfig.polish_steps``): Adam finds the basin, L-BFGS the optimum."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConvergenceWarning, MAPConfig
from bayes_diml.inference.map import fit_map_spec
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors

LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
#: 100 Adam steps at a small step size: far from the optimum (the unpolished fit does not converge).
SHORT = MAPConfig(num_steps=100, learning_rate=0.01, num_restarts=1, chunk=50)


@pytest.fixture(scope="module")
def spec():
    mech = mechanisms.Tabular((3, 3))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), LEARNER, n_episodes=8, T=20, key=1)
    return ModelSpec.build(data, mech, LEARNER, Priors(mechanism_scale=1.0))


def _fit(spec, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_map_spec(spec, jax.random.key(0), config, progress=False)


def test_polishing_reaches_the_optimum_that_lbfgs_finds_alone(spec):
    adam = _fit(spec, SHORT)
    polished = _fit(spec, MAPConfig(**{**SHORT.__dict__, "polish_steps": 1000}))
    reference = _fit(spec, MAPConfig(optimizer="lbfgs", num_steps=2000, num_restarts=1, chunk=50))
    assert not adam.converged  # the negative control: Adam alone stopped short
    assert polished.converged and reference.converged
    assert polished.log_joint > adam.log_joint + 1.0  # the polish moved it uphill
    # the same optimum as L-BFGS from the start (the test stops within ~1e-4 nats of it here)
    assert abs(polished.log_joint - reference.log_joint) < 0.01
    assert set(polished.values) == set(reference.values)
    for site, value in polished.values.items():
        np.testing.assert_allclose(value, reference.values[site], atol=1e-3, err_msg=site)
    # steps and the trace run on through the polish; the restarts are Adam's
    assert 0 < polished.polished_steps <= 1000 and polished.polished_steps % SHORT.chunk == 0
    assert polished.step == adam.step + polished.polished_steps
    assert len(polished.losses) == polished.step
    np.testing.assert_allclose(polished.losses[: adam.step], adam.losses)
    np.testing.assert_allclose(polished.restart_log_joints, adam.restart_log_joints)
    assert adam.polished_steps == 0


def test_fit_reports_the_polish_steps_and_the_warning_names_both_optimisers(spec):
    """Through ``bd.fit``, with constrained sites (alpha and eps inferred) in the polish too."""
    data = spec.data
    learner = bd.LogitQ(alpha="infer", beta=2.0, eps="infer")
    post = bd.fit(
        data, mechanisms.Tabular((3, 3)), learner, "map", priors=Priors(mechanism_scale=1.0),
        seed=0, progress=False, log_likelihood=False,
        num_steps=100, learning_rate=0.01, num_restarts=1, chunk=50, polish_steps=1000,
    )  # fmt: skip
    assert post.info["converged"]
    assert 0 < post.info["map_polish_steps"] <= 1000
    assert post.info["map_steps"] == 100 + post.info["map_polish_steps"]
    assert 0 < float(post.point_learner().alpha) < 1 and 0 < float(post.point_learner().eps) < 1
    never = MAPConfig(**{**SHORT.__dict__, "polish_steps": 50, "tol": 0.0})
    with pytest.warns(ConvergenceWarning, match="within 100 Adam and 50 L-BFGS steps.*raise polish_steps"):
        fit_map_spec(spec, jax.random.key(0), never, progress=False)


def test_bad_polish_settings_fail_with_a_clear_error(spec):
    with pytest.raises(ValueError, match="polish_steps must be >= 0"):
        MAPConfig(polish_steps=-1)
    with pytest.raises(ValueError, match="with optimizer='lbfgs' raise num_steps"):
        MAPConfig(optimizer="lbfgs", polish_steps=10)
    with pytest.raises(ValueError, match="cannot be combined with early stopping"):
        fit_map_spec(
            spec, jax.random.key(0), MAPConfig(polish_steps=10), progress=False, validation=lambda v: 0.0
        )
