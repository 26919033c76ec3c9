"""The simulator (``bayes_diml.simulate``): shapes, reproducibility, payoffs and its law.

Statistical checks in this module share a declared false-failure budget: with the seeds fixed
the tests are deterministic, and over random seeds the correct simulator would fail them
with probability at most ``FALSE_FAILURE_BUDGET`` (Bonferroni over all checks).
"""

from __future__ import annotations

from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.counterfactual import action_mask

FALSE_FAILURE_BUDGET = 1e-3


def _tabular_game(seed: int = 0, n_actions=(2, 3)):
    table = np.random.default_rng(seed).normal(size=(*n_actions, len(n_actions)))
    return mm.Tabular.from_table(table)


# ---------------------------------------------------------------- shapes, keys, payoffs


def test_shapes_dtypes_and_keys():
    """Shapes and dtypes; reproducible for a fixed key, different for another key."""
    mech = mm.Tabular((2, 3, 4))
    params = mech.init(jax.random.key(0))
    learner = bd.LogitQ(0.3, 2.0, 0.1)
    data = bd.simulate(mech, params, learner, 8, 10, jax.random.key(7))
    assert isinstance(data, bd.Trajectories)
    assert data.actions.shape == (8, 10, 3) and data.actions.dtype == np.int64
    assert data.n_actions == (2, 3, 4)
    np.testing.assert_array_equal(data.lengths, np.full(8, 10))
    assert data.payoffs is None
    for i, k in enumerate(mech.n_actions):
        assert data.actions[..., i].min() >= 0 and data.actions[..., i].max() < k
        assert len(np.unique(data.actions[..., i])) == k  # every action is played

    again = bd.simulate(mech, params, learner, 8, 10, jax.random.key(7), record_payoffs=True)
    np.testing.assert_array_equal(again.actions, data.actions)
    assert again.payoffs.shape == (8, 10, 3) and again.payoffs.dtype == np.float64
    seeded = bd.simulate(mech, params, learner, 8, 10, 7)  # an int seed is jax.random.key(seed)
    np.testing.assert_array_equal(seeded.actions, data.actions)
    other = bd.simulate(mech, params, learner, 8, 10, jax.random.key(8))
    assert np.mean(other.actions != data.actions) > 0.2


def test_recorded_payoffs_are_mechanism_payoffs_float64(x64):
    """Realised payoffs equal ``mechanism.payoffs`` at the realised joint actions, exactly."""
    mech, params = _tabular_game(4, (2, 3, 4))
    data = bd.simulate(mech, params, bd.LogitQ(0.3, 2.0, 0.1), 4, 6, jax.random.key(3), record_payoffs=True)
    expected = np.asarray(mech.payoffs(params, jnp.asarray(data.actions)))
    assert expected.dtype == np.float64
    np.testing.assert_array_equal(data.payoffs, expected)


@pytest.mark.slow
@pytest.mark.parametrize(
    "build",
    [
        lambda key: (mm.Congestion(4, 5), mm.Congestion(4, 5).init(key)),
        # prod K_i > 4096: the simulator's count path and joint path
        lambda key: (mm.SymmetricCount(7, 4, width=8), mm.SymmetricCount(7, 4, width=8).init(key)),
        lambda key: (mm.NeuralJoint((4,) * 7, width=8), mm.NeuralJoint((4,) * 7, width=8).init(key)),
    ],
    ids=["congestion", "symmetric_count_7x4", "neural_joint_7x4"],
)
def test_recorded_payoffs_are_mechanism_payoffs(build):
    mech, params = build(jax.random.key(2))
    data = bd.simulate(mech, params, bd.LogitQ(0.3, 2.0, 0.1), 4, 6, jax.random.key(3), record_payoffs=True)
    expected = np.asarray(mech.payoffs(params, jnp.asarray(data.actions)), dtype=np.float64)
    assert np.all(np.isfinite(data.payoffs))
    np.testing.assert_allclose(data.payoffs, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the truth scores best


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_true_parameters_score_higher_than_perturbed():
    mech, params = _tabular_game(5, (3, 4))
    learner = bd.LogitQ(0.25, 3.0, 0.06)
    data = bd.simulate(mech, params, learner, 30, 30, jax.random.key(5))
    truth = float(bd.log_likelihood(mech, params, learner, data))
    wrong_beta = float(bd.log_likelihood(mech, params, learner.scaled(beta=0.6), data))
    noise = 0.5 * np.random.default_rng(6).normal(size=mech.table_shape)
    wrong_table = float(bd.log_likelihood(mech, {"table": params["table"] + noise}, learner, data))
    assert truth > wrong_beta + 5.0
    assert truth > wrong_table + 5.0


@pytest.mark.slow
def test_true_congestion_scores_higher_than_wrong_beta():
    """E2 (congestion, 4 agents x 5 routes) at the reference learner alpha=0.25, beta=3, eps=0.06."""
    mech = mm.Congestion(4, 5)
    params = mech.init(jax.random.key(6))
    learner = bd.LogitQ(0.25, 3.0, 0.06)
    data = bd.simulate(mech, params, learner, 60, 60, jax.random.key(7))
    truth = float(bd.log_likelihood(mech, params, learner, data))
    assert truth > float(bd.log_likelihood(mech, params, learner.scaled(beta=0.6), data))
    assert truth > float(bd.log_likelihood(mech, params, learner.scaled(beta=1.0 / 0.6), data))


# ---------------------------------------------------------------- the simulator's law


def _next_action_z_scores(mech, params, learner, data):
    """z-scores of the empirical frequency of ``a_i(T-1)`` given the history ``a(0..T-2)``.

    Returns float[C, n, K] (NaN on padded actions) for the C distinct observed histories, and
    the z-scores of the first actions a_i(0) against the initial policy, float[n, K].
    """
    M, T, n = data.actions.shape
    mask = action_mask(data.n_actions)
    histories, inverse = np.unique(data.actions[:, : T - 1].reshape(M, -1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    probe_actions = np.zeros((len(histories), T, n), dtype=np.int64)
    probe_actions[:, : T - 1] = histories.reshape(-1, T - 1, n)
    probe = bd.Trajectories(probe_actions, data.n_actions)
    probs = np.exp(np.asarray(bd.log_policies(mech, params, learner, probe))[:, T - 2])  # [C, n, K]
    counts = np.zeros_like(probs)
    np.add.at(counts, (inverse[:, None], np.arange(n)[None, :], data.actions[:, T - 1]), 1.0)
    totals = np.bincount(inverse, minlength=len(histories)).astype(float)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        z_next = (counts / totals - probs) / np.sqrt(probs * (1.0 - probs) / totals)
    z_next = np.where(mask, z_next, np.nan)

    m_ = jnp.asarray(mask)
    p0 = np.exp(np.asarray(learner.log_policy(learner.init_state(m_, jnp.float32), m_)))  # [n, K]
    first = np.stack([np.bincount(data.actions[:, 0, i], minlength=mask.shape[1]) for i in range(n)], 0) / M
    with np.errstate(invalid="ignore", divide="ignore"):
        z_first = np.where(mask, (first - p0) / np.sqrt(p0 * (1.0 - p0) / M), np.nan)
    return z_next, z_first


@pytest.mark.parametrize("T, n_episodes", [(2, 20_000), pytest.param(3, 60_000, marks=pytest.mark.slow)])
def test_next_action_frequencies_match_policy(T, n_episodes):
    """Empirical ``P(a_i(T-1) = k | history)`` and ``P(a_i(0) = k)`` against ``exp(log_policies)``."""
    mech, params = _tabular_game(8, (2, 3))
    learner = bd.LogitQ(
        jnp.asarray([0.3, 0.7]),
        jnp.asarray([2.0, 3.0]),
        jnp.asarray([0.1, 0.05]),
        jnp.asarray([[0.5, -0.5, 0.0], [0.2, 0.0, -0.4]]),
    )
    data = bd.simulate(mech, params, learner, n_episodes, T, jax.random.key(9))
    z_next, z_first = _next_action_z_scores(mech, params, learner, data)
    num_histories = z_next.shape[0]
    assert num_histories == 6 ** (T - 1)  # every history was observed
    num_checks = int(np.isfinite(z_next).sum() + np.isfinite(z_first).sum())
    assert num_checks == (num_histories + 1) * 5
    z_crit = NormalDist().inv_cdf(1 - FALSE_FAILURE_BUDGET / (2 * num_checks))
    assert np.nanmax(np.abs(z_next)) < z_crit
    assert np.nanmax(np.abs(z_first)) < z_crit

    # negative control: the same statistic detects a learner with beta x 0.6
    z_wrong, _ = _next_action_z_scores(mech, params, learner.scaled(beta=0.6), data)
    assert np.nanmax(np.abs(z_wrong)) > z_crit


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "n_episodes, T, match",
    [(3, 1, "T must"), (3, 0, "T must"), (0, 5, "n_episodes"), (-2, 5, "n_episodes"), (2.5, 5, "n_episodes")],
)
def test_invalid_sizes_raise(n_episodes, T, match):
    mech = mm.Tabular((2, 2))
    params = mech.init(jax.random.key(0))
    with pytest.raises(ValueError, match=match):
        bd.simulate(mech, params, bd.LogitQ(0.3, 2.0, 0.1), n_episodes, T, 0)


def test_mechanism_without_n_actions_needs_them():
    mech = mm.Function(lambda p, a: p["w"][a], lambda key: {"w": jax.random.normal(key, (3,))})
    params = mech.init(jax.random.key(0))
    with pytest.raises(ValueError, match="n_actions"):
        bd.simulate(mech, params, bd.LogitQ(0.3, 2.0, 0.1), 2, 3, 0)


@pytest.mark.slow
def test_n_actions_argument_for_a_mechanism_without_them():
    mech = mm.Function(lambda p, a: p["w"][a], lambda key: {"w": jax.random.normal(key, (3,))})
    params = mech.init(jax.random.key(0))
    data = bd.simulate(mech, params, bd.LogitQ(0.3, 2.0, 0.1), 2, 3, 0, n_actions=(3, 3))
    assert data.actions.shape == (2, 3, 2) and data.n_actions == (3, 3)


def test_invalid_learner_raises():
    mech = mm.Tabular((2, 2))
    params = mech.init(jax.random.key(0))
    with pytest.raises(ValueError, match="alpha"):
        bd.simulate(mech, params, bd.LogitQ(1.5, 2.0, 0.1), 2, 3, 0)
