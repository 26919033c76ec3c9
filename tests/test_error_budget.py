"""benchmarks/e7_error_budget.py and e7_oracle_levels.py against literal references (fast).

The offsets' gradient and Hessian come from the count plan plus an offset on the counterfactual
payoffs; the reference is the same payoffs written out as a full ``Tabular`` table (a different
plan: every joint profile) with the offset added cell by cell, differentiated by central finite
differences in float64. The pair mean and the Monte Carlo chance are checked against their
definitions. The oracle's Newton fit of per-action offsets is checked against a general-purpose
optimiser (scipy's BFGS) on the same likelihood written as a table, its error formula against
``metrics.diff_mse`` of the offset table itself, and the scripts' row cache against a counting
``compute``.
"""

from __future__ import annotations

import json
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
import e7_error_budget as EB  # noqa: E402
import e7_oracle_levels as OL  # noqa: E402

N_AGENTS, K = 3, 4
LEARNER = LogitQ(0.3, 2.0, 0.1)


@pytest.fixture(scope="module")
def game():
    mech = SymmetricCount(N_AGENTS, K, width=8)
    params = mech.init(jax.random.key(1))
    actions = np.random.default_rng(2).integers(0, K, size=(6, 12, N_AGENTS))  # any play will do
    return mech, params, Trajectories(actions, (K,) * N_AGENTS)


def _offset_table(mech, params, delta):
    """The mechanism as a table with ``delta[a]`` added to every payoff of own action ``a``."""
    profiles = joint_profiles((K,) * N_AGENTS)  # int[K^n, n]
    pay = mech.payoffs(params, jnp.asarray(profiles)) + jnp.asarray(delta)[profiles]
    return {"table": pay.reshape((K,) * N_AGENTS + (N_AGENTS,))}


def _table_log_lik(mech, params, data):
    """``delta: float[K] -> log-likelihood`` of ``data`` under :func:`_offset_table` (float64)."""
    table_mech = Tabular((K,) * N_AGENTS)
    f = jax.jit(
        lambda delta: likelihood.log_likelihood(table_mech, _offset_table(mech, params, delta), LEARNER, data)
    )
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


@pytest.fixture(scope="module")
def game64():
    mech = SymmetricCount(N_AGENTS, K, width=8)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), mech.init(jax.random.key(3)))
    actions = np.random.default_rng(4).integers(0, K, size=(8, 15, N_AGENTS))
    return mech, params, Trajectories(actions, (K,) * N_AGENTS)


def test_fit_offsets_is_the_likelihood_maximum_that_bfgs_finds(game64):
    mech, params, data = game64
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


def test_pair_error_is_the_diff_mse_of_the_offset_mechanism(game64):
    mech, params, data = game64
    table_mech = Tabular((K,) * N_AGENTS)
    delta = np.array([0.3, -0.1, 0.05, -0.25])
    with jax.enable_x64(True):
        truth, shifted = _offset_table(mech, params, np.zeros(K)), _offset_table(mech, params, delta)
        literal = metrics.diff_mse(table_mech, truth, table_mech, shifted, data, n_samples=500, seed=7)
    ja, jb, agent = metrics.diff_mse_contexts(data, 500, 7)
    rows = np.arange(len(agent))
    got = EB.pair_error(delta, ja[rows, agent], jb[rows, agent])
    assert got == pytest.approx(literal, rel=1e-10)
    assert got > 0.01  # a nonzero offset is an error the metric sees


def test_centred_pinv_removes_the_gauge():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(K, K))
    centre = np.eye(K) - 1.0 / K
    H = -(centre @ (a @ a.T) @ centre)  # a likelihood curvature: flat along the common offset
    cov = EB.centred_pinv(H)
    np.testing.assert_allclose(cov @ np.ones(K), 0.0, atol=1e-12)
    np.testing.assert_allclose(cov @ (-H) @ cov, cov, atol=1e-10)  # a generalised inverse


def test_cached_rows_resumes_recomputes_and_skips(tmp_path):
    out = tmp_path / "rows.json"
    calls = []

    def compute(setting, seed, method):
        calls.append((setting, seed))
        return None if seed == 9 else {"setting": setting, "seed": seed, "method": method, "x": len(calls)}

    records = [{"setting": "40x10", "seed": 0, "method": "diml", "x": -1}]
    keys = [("40x10", 0, "diml"), ("40x10", 1, "diml"), ("40x10", 9, "diml")]
    got = list(EB.cached_rows(records, keys, compute, out))
    assert [r["x"] for r in got] == [-1, 1]  # the saved row is reused, seed 9 has nothing to compute
    assert calls == [("40x10", 1), ("40x10", 9)]
    assert json.loads(out.read_text())["rows"] == records  # written as each row finishes
    again = list(EB.cached_rows(records, keys[:2], compute, out, recompute=True))
    assert [r["x"] for r in again] == [3, 4] and len(records) == 2  # replaced, not appended
    assert list(EB.rows_by_setting(records, "diml", [1])) == [("40x10", [again[1]])]
    assert list(EB.rows_by_setting(records, "other", [0, 1])) == []
