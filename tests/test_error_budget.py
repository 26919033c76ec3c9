"""benchmarks/e7_error_budget.py against literal references (fast).

The offsets' gradient and Hessian come from the count plan plus an offset on the counterfactual
payoffs; the reference is the same payoffs written out as a full ``Tabular`` table (a different
plan: every joint profile) with the offset added cell by cell, differentiated by central finite
differences in float64. The pair mean and the Monte Carlo chance are checked against their
definitions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_diml import Trajectories, likelihood
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import SymmetricCount, Tabular
from bayes_diml.mechanisms.base import joint_profiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import e7_error_budget as EB  # noqa: E402

N_AGENTS, K = 3, 4
LEARNER = LogitQ(0.3, 2.0, 0.1)


@pytest.fixture(scope="module")
def game():
    mech = SymmetricCount(N_AGENTS, K, width=8)
    params = mech.init(jax.random.key(1))
    actions = np.random.default_rng(2).integers(0, K, size=(6, 12, N_AGENTS))  # any play will do
    return mech, params, Trajectories(actions, (K,) * N_AGENTS)


def _table_log_lik(mech, params, data):
    """``delta: float[K] -> log-likelihood``, ``delta[a]`` added to every payoff of own action a (a table)."""
    profiles = joint_profiles((K,) * N_AGENTS)  # int[K^n, n]
    pay = mech.payoffs(params, jnp.asarray(profiles))  # [K^n, n]
    table_mech = Tabular((K,) * N_AGENTS)

    @jax.jit
    def f(delta):
        table = (pay + delta[profiles]).reshape((K,) * N_AGENTS + (N_AGENTS,))  # own action = profiles[:, i]
        return likelihood.log_likelihood(table_mech, {"table": table}, LEARNER, data)

    return lambda delta: float(f(jnp.asarray(delta, jnp.float64)))


def test_offset_derivatives_match_finite_differences_of_a_table(game):
    mech, params, data = game
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), params)
        grad, hess = EB.offset_derivatives(mech, p64, LEARNER, data)
        f = _table_log_lik(mech, p64, data)
        h = 1e-4
        eye = np.eye(K)
        fd_grad = np.array([(f(h * e) - f(-h * e)) / (2 * h) for e in eye])
        fd_hess = np.array(
            [
                [
                    (f(h * (a + b)) - f(h * (a - b)) - f(h * (b - a)) + f(-h * (a + b))) / (4 * h * h)
                    for b in eye
                ]
                for a in eye
            ]
        )
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hess, fd_hess, rtol=1e-4, atol=1e-4)
    # a common offset changes no choice probability: the gauge direction is flat
    np.testing.assert_allclose(hess @ np.ones(K), 0.0, atol=1e-8)
    assert np.all(np.linalg.eigvalsh(-hess)[1:] > 0)  # the K - 1 gauge-free directions are curved


def test_pair_mean_is_the_mean_over_action_pairs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T
    literal = np.mean([cov[i, i] + cov[j, j] - 2 * cov[i, j] for i in range(5) for j in range(5)])
    assert EB.pair_mean(cov) == pytest.approx(literal, rel=1e-12)
    x = rng.normal(size=5)
    assert EB.pair_mean(np.outer(x, x)) == pytest.approx(np.mean((x[:, None] - x[None, :]) ** 2), rel=1e-12)


def test_chance_mean_above_matches_the_chi_square_tail():
    from scipy import stats

    # one row, equal eigenvalues: the level part is (2 / K) lam chi2(K - 1), a known tail
    lam, k = 1e-4, 10
    row = {"fisher_eigenvalues": [lam] * (k - 1), "shape_part": 0.0}
    threshold = 2.0 / k * lam * 12.0
    exact = stats.chi2.sf(12.0, k - 1)
    got = EB.chance_mean_above([row], threshold, draws=200_000)
    # Monte Carlo sd sqrt(p (1 - p) / draws) ~ 1e-3; 5 sd
    assert got == pytest.approx(exact, abs=5e-3)
    assert EB.chance_mean_above([row], 0.0, draws=1000) == 1.0
