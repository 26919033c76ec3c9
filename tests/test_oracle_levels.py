"""benchmarks/e7_oracle_levels.py against literal references (fast).

The oracle's Newton fit of per-action offsets is checked against a general-purpose optimiser
(scipy's BFGS) on the same likelihood written as a full ``Tabular`` table with the offsets added
cell by cell; its error formula against ``metrics.diff_mse`` of the offset table itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from bayes_diml import Trajectories, likelihood, metrics
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import SymmetricCount, Tabular
from bayes_diml.mechanisms.base import joint_profiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import e7_oracle_levels as OL  # noqa: E402

N_AGENTS, K = 3, 4
LEARNER = LogitQ(0.3, 2.0, 0.1)


@pytest.fixture(scope="module")
def game():
    mech = SymmetricCount(N_AGENTS, K, width=8)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), mech.init(jax.random.key(3)))
    actions = np.random.default_rng(4).integers(0, K, size=(8, 15, N_AGENTS))
    return mech, params, Trajectories(actions, (K,) * N_AGENTS)


def _offset_table(mech, params, delta):
    """The mechanism as a table with ``delta[a]`` added to every payoff of own action ``a``."""
    profiles = joint_profiles((K,) * N_AGENTS)  # int[K^n, n]
    pay = mech.payoffs(params, jnp.asarray(profiles)) + jnp.asarray(delta)[profiles]
    return {"table": pay.reshape((K,) * N_AGENTS + (N_AGENTS,))}


def test_fit_offsets_is_the_likelihood_maximum_that_bfgs_finds(game):
    mech, params, data = game
    table_mech = Tabular((K,) * N_AGENTS)
    with jax.enable_x64(True):
        delta, cov, steps, last = OL.fit_offsets(mech, params, LEARNER, data, tol=1e-10)

        def neg(free):  # offsets with delta[0] = 0: the gauge fixed
            d = jnp.concatenate([jnp.zeros(1), jnp.asarray(free)])
            return -likelihood.log_likelihood(table_mech, _offset_table(mech, params, d), LEARNER, data)

        f = jax.jit(jax.value_and_grad(neg))
        res = optimize.minimize(
            lambda x: tuple(np.asarray(v, np.float64) for v in f(x)),
            np.zeros(K - 1),
            jac=True,
            method="BFGS",
            options={"gtol": 1e-10},
        )
    assert res.success
    reference = np.concatenate([[0.0], res.x])
    reference -= reference.mean()
    assert steps < 6 and last < 1e-10  # converged, not stopped by the step budget
    assert np.abs(delta).max() > 1e-2  # random play: the optimum is away from zero
    np.testing.assert_allclose(delta, reference, atol=1e-6)
    np.testing.assert_allclose(delta.sum(), 0.0, atol=1e-12)
    # the covariance is the inverse curvature in the K - 1 gauge-free directions
    assert np.linalg.matrix_rank(cov, tol=1e-10) == K - 1
    np.testing.assert_allclose(cov @ np.ones(K), 0.0, atol=1e-10)


def test_pair_error_is_the_diff_mse_of_the_offset_mechanism(game):
    mech, params, data = game
    table_mech = Tabular((K,) * N_AGENTS)
    delta = np.array([0.3, -0.1, 0.05, -0.25])
    with jax.enable_x64(True):
        truth, shifted = _offset_table(mech, params, np.zeros(K)), _offset_table(mech, params, delta)
        literal = metrics.diff_mse(table_mech, truth, table_mech, shifted, data, n_samples=500, seed=7)
    ja, jb, agent = metrics.diff_mse_contexts(data, 500, 7)
    rows = np.arange(len(agent))
    got = OL.pair_error(delta, ja[rows, agent], jb[rows, agent])
    assert got == pytest.approx(literal, rel=1e-10)
    assert got > 0.01  # a nonzero offset is an error the metric sees


def test_centred_pinv_removes_the_gauge():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(K, K))
    centre = np.eye(K) - 1.0 / K
    H = -(centre @ (a @ a.T) @ centre)  # a likelihood curvature: flat along the common offset
    cov = OL.centred_pinv(H)
    np.testing.assert_allclose(cov @ np.ones(K), 0.0, atol=1e-12)
    np.testing.assert_allclose(cov @ (-H) @ cov, cov, atol=1e-10)  # a generalised inverse
