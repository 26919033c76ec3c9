"""Tests of ``bayes_diml.metrics``: payoff differences, diff_mse and cfkl_params.

The metric definitions are the reference's (``docs/paper-reference.md``, "Metrics"):

- ``diff_mse``: contexts (episode m, step t < L_m - 1, agent i) uniform over the test
  episodes, ``a, a'`` uniform in agent i's actions, mean of
  ``((u_i(a, a_-i) - u_i(a', a_-i)) - (u^_i(a, a_-i) - u^_i(a', a_-i)))^2``.
- ``cfkl_params``: KL(true || fitted) of pooled joint-action histograms simulated with the
  learner shifted to alpha x 0.6, beta x 1.4, eps x 1.5 (capped at 0.5).

Statistical checks: the sampled ``diff_mse`` is compared with its exact expectation
(enumerating every context and action pair) within ``Z`` standard errors, where ``Z`` comes
from a declared false-failure budget; a power check shows that plausible wrong definitions
lie far outside that band.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import random_trajectories

from bayes_diml import Trajectories, metrics
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import Congestion, Function, SymmetricCount, Tabular
from bayes_diml.simulation import simulate_arrays

# Suite-wide false-failure budget of this file's statistical checks (fixed seeds make them
# deterministic; the budget says how unlucky a seed would have to be to fail).
FALSE_FAILURE_BUDGET = 1e-3
DIFF_MSE_SEEDS = (0, 1, 2)
Z = NormalDist().inv_cdf(1 - FALSE_FAILURE_BUDGET / (2 * len(DIFF_MSE_SEEDS)))  # about 3.59

LEARNER = LogitQ(0.25, 3.0, 0.06)


def _tabular(table):
    return Tabular.from_table(jnp.asarray(table, dtype=jnp.float32))


def _gauge(n_actions, seed):
    """A random c_i(a_-i), broadcast to a table float[K_1, ..., K_n, n] constant along axis i."""
    rng = np.random.default_rng(seed)
    n = len(n_actions)
    out = np.zeros((*n_actions, n))
    for i in range(n):
        shape = list(n_actions)
        shape[i] = 1
        out[..., i] = np.broadcast_to(rng.normal(size=shape), n_actions)
    return out


# ================================================================ payoff_differences


# A 2 x 3 game: rows a_0, columns a_1.
PAY_0 = np.array([[1.0, 2.0, 3.0], [5.0, 0.0, -1.0]])
PAY_1 = np.array([[0.0, 3.0, 6.0], [2.0, 2.0, 5.0]])
# By hand: agent 0 minus column means (3, 1, 1); agent 1 minus row means (3, 3).
DIFF_0 = np.array([[-2.0, 1.0, 2.0], [2.0, -1.0, -2.0]])
DIFF_1 = np.array([[-3.0, 0.0, 3.0], [-1.0, -1.0, 2.0]])


def test_payoff_differences_hand_computed():
    mech, params = _tabular(np.stack([PAY_0, PAY_1], axis=-1))
    got = np.asarray(metrics.payoff_differences(mech, params))
    assert got.shape == (2, 3, 2)
    np.testing.assert_allclose(got[..., 0], DIFF_0, atol=1e-6)
    np.testing.assert_allclose(got[..., 1], DIFF_1, atol=1e-6)


@pytest.mark.parametrize("n_actions", [(2, 3), (3, 3, 3), (2, 3, 4), (1, 3, 2)])
def test_payoff_differences_gauge_invariant_and_centred(n_actions):
    mech = Tabular(n_actions)
    params = mech.init(jax.random.key(0))
    shifted = {"table": params["table"] + 5.0 * jnp.asarray(_gauge(n_actions, 1), jnp.float32)}
    base = np.asarray(metrics.payoff_differences(mech, params))
    assert base.shape == (*n_actions, len(n_actions))
    np.testing.assert_allclose(np.asarray(metrics.payoff_differences(mech, shifted)), base, atol=1e-5)
    for i in range(len(n_actions)):  # mean over agent i's own actions is zero
        np.testing.assert_allclose(base[..., i].mean(axis=i), 0.0, atol=1e-6)
    # and it is not identically zero: it keeps the identified part
    if max(n_actions) > 1:
        assert np.abs(base).max() > 0.1


def test_payoff_differences_equals_table_minus_own_mean():
    n_actions = (2, 3, 4)
    mech = Tabular(n_actions)
    params = mech.init(jax.random.key(3))
    table = np.asarray(params["table"], np.float64)
    want = np.stack([table[..., i] - table[..., i].mean(axis=i, keepdims=True) for i in range(3)], -1)
    np.testing.assert_allclose(np.asarray(metrics.payoff_differences(mech, params)), want, atol=1e-5)


def test_payoff_differences_joint_batch():
    n_actions = (2, 3, 4)
    mech = Tabular(n_actions)
    params = mech.init(jax.random.key(2))
    full = np.asarray(metrics.payoff_differences(mech, params))
    rng = np.random.default_rng(0)
    joint = np.stack([rng.integers(0, k, size=(5, 7)) for k in n_actions], axis=-1)  # [5, 7, 3]
    got = np.asarray(metrics.payoff_differences(mech, params, joint))
    assert got.shape == (5, 7, 3)
    np.testing.assert_allclose(got, full[joint[..., 0], joint[..., 1], joint[..., 2]], atol=1e-6)
    one = np.asarray(metrics.payoff_differences(mech, params, joint[0, 0]))
    assert one.shape == (3,)
    np.testing.assert_allclose(one, got[0, 0], atol=1e-6)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoff_differences_many_agents_batch():
    """A batch of joint actions of 60 agents (the full table would have 4**60 profiles)."""
    mech = SymmetricCount(60, 4, width=8)
    params = mech.init(jax.random.key(0))
    joint = np.random.default_rng(0).integers(0, 4, size=(3, 60))
    got = np.asarray(metrics.payoff_differences(mech, params, joint))
    assert got.shape == (3, 60) and np.all(np.isfinite(got))
    # agent 0 by hand: own payoff minus the mean over its own actions, others fixed
    alts = np.repeat(joint[:, None, :], 4, axis=1)  # [3, 4, 60]
    alts[:, :, 0] = np.arange(4)
    own = np.asarray(mech.payoffs(params, alts))[..., 0]  # [3, 4]
    want = own[np.arange(3), joint[:, 0]] - own.mean(-1)
    np.testing.assert_allclose(got[:, 0], want, atol=1e-5)


def test_payoff_differences_wrong_joint_shape():
    mech, params = _tabular(np.stack([PAY_0, PAY_1], axis=-1))
    with pytest.raises(ValueError, match=r"joint must have shape \(\.\.\., n\) with n = 2; got \(4, 3\)"):
        metrics.payoff_differences(mech, params, np.zeros((4, 3), int))


def test_payoff_differences_needs_n_actions():
    mech = Function(lambda p, a: p["w"][a], lambda key: {"w": jnp.arange(3.0)}, batched=True)
    params = mech.init(None)
    with pytest.raises(ValueError, match="n_actions"):
        metrics.payoff_differences(mech, params)
    got = np.asarray(metrics.payoff_differences(mech, params, n_actions=(3, 3)))
    # payoff_i = w[a_i]: differences are w[a_i] - mean(w) = a_i - 1
    np.testing.assert_allclose(got, np.indices((3, 3)).transpose(1, 2, 0) - 1.0, atol=1e-6)


# ================================================================ diff_mse

DIFF_K = (2, 3, 4)
DIFF_LENGTHS = [12, 2, 9, 2, 3]


@pytest.fixture(scope="module")
def diff_case():
    """A true and a fitted table float[2, 3, 4, 3] and ragged, padded test data."""
    rng = np.random.default_rng(1)
    true = rng.normal(size=(*DIFF_K, 3))
    fitted = true + 0.5 * rng.normal(size=true.shape)
    data = random_trajectories(DIFF_K, 5, 16, 0, lengths=DIFF_LENGTHS)
    return true, fitted, data


def _exact_diff_mse(true, fitted, data, *, steps="scored", pairs="all", per_episode=False):
    """Exact mean and variance of one diff_mse sample, by enumeration.

    ``steps``: "scored" (t < L_m - 1, the reference), "valid" (t < L_m) or "padded" (t < T-1);
    ``pairs``: "all" (a, a' independent uniform, the reference) or "distinct" (a != a');
    ``per_episode``: weight episodes equally instead of contexts (a wrong definition).
    """
    true = np.asarray(true, np.float64)
    fitted = np.asarray(fitted, np.float64)
    n, K = data.n_agents, data.n_actions
    values, weights = [], []
    for m in range(data.n_episodes):
        L = int(data.lengths[m])
        ts = {"scored": range(L - 1), "valid": range(L), "padded": range(data.n_steps - 1)}[steps]
        for t in ts:
            for i in range(n):
                for a in range(K[i]):
                    for b in range(K[i]):
                        if pairs == "distinct" and a == b:
                            continue
                        ja = [int(v) for v in data.actions[m, t]]
                        jb = list(ja)
                        ja[i], jb[i] = a, b
                        ja, jb = tuple(ja), tuple(jb)
                        d = (true[ja][i] - true[jb][i]) - (fitted[ja][i] - fitted[jb][i])
                        w = 1.0 / (n * (K[i] ** 2 if pairs == "all" else K[i] * (K[i] - 1)))
                        if per_episode:
                            w /= len(ts)
                        values.append(d * d)
                        weights.append(w)
    values, weights = np.array(values), np.array(weights)
    weights /= weights.sum()
    mean = float(weights @ values)
    return mean, float(weights @ values**2 - mean**2)


def test_diff_mse_contexts_are_the_ones_diff_mse_scores(diff_case):
    """Each context is an observed scored step with only agent i's action replaced, and diff_mse
    is the mean squared payoff-difference error over exactly these contexts (a literal check)."""
    true, fitted, data = diff_case
    ja, jb, agent = metrics.diff_mse_contexts(data, n_samples=500, seed=3)
    assert ja.shape == jb.shape == (500, data.n_agents) and agent.shape == (500,)
    k = np.asarray(DIFF_K)[agent]
    assert np.all((ja[np.arange(500), agent] < k) & (jb[np.arange(500), agent] < k))
    observed = {
        tuple(int(v) for v in data.actions[m, t])
        for m in range(data.n_episodes)
        for t in range(int(data.lengths[m]) - 1)  # scored steps only
    }
    for row_a, row_b, i in zip(ja, jb, agent, strict=True):
        others = np.delete(row_a, i)
        assert np.array_equal(others, np.delete(row_b, i))
        assert any(np.array_equal(others, np.delete(np.array(o), i)) for o in observed)
    d = np.array([(true[tuple(a)][i] - true[tuple(b)][i]) - (fitted[tuple(a)][i] - fitted[tuple(b)][i])
                  for a, b, i in zip(ja, jb, agent, strict=True)])  # fmt: skip
    mech, params = _tabular(true)
    mech_f, params_f = _tabular(fitted)
    got = metrics.diff_mse(mech, params, mech_f, params_f, data, n_samples=500, seed=3)
    assert got == pytest.approx(float(np.mean(d**2)), rel=1e-5)  # float32 payoffs
    again = metrics.diff_mse_contexts(data, n_samples=500, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((ja, jb, agent), again, strict=True))
    other = metrics.diff_mse_contexts(data, n_samples=500, seed=4)
    assert not np.array_equal(other[0], ja)


def test_context_payoff_differences_literal_and_bad_shapes(diff_case):
    """Each entry is u_i(joint_a) - u_i(joint_b) read off the payoff table; mismatched shapes raise."""
    true, _, data = diff_case
    ja, jb, agent = metrics.diff_mse_contexts(data, n_samples=200, seed=5)
    mech, params = _tabular(true)
    got = metrics.context_payoff_differences(mech, params, ja, jb, agent)
    want = np.array([true[tuple(a)][i] - true[tuple(b)][i] for a, b, i in zip(ja, jb, agent, strict=True)])
    assert got.dtype == np.float64 and got.shape == (200,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32 payoffs
    with pytest.raises(ValueError, match="joint_a and joint_b of one shape"):
        metrics.context_payoff_differences(mech, params, ja, jb[:-1], agent)
    with pytest.raises(ValueError, match="agent int"):
        metrics.context_payoff_differences(mech, params, ja, jb, agent[:-1])


def test_diff_mse_zero_for_identical(diff_case):
    true, _, data = diff_case
    mech, params = _tabular(true)
    assert metrics.diff_mse(mech, params, mech, params, data) == 0.0


def test_diff_mse_zero_for_gauge_transformed(diff_case):
    true, _, data = diff_case
    mech, params = _tabular(true)
    mech2, params2 = _tabular(true + 3.0 * _gauge(DIFF_K, 7))
    assert metrics.diff_mse(mech, params, mech2, params2, data) < 1e-10
    # a non-gauge change of the same size is seen
    mech3, params3 = _tabular(true + 3.0 * np.random.default_rng(7).normal(size=true.shape))
    assert metrics.diff_mse(mech, params, mech3, params3, data) > 1.0


N_SAMPLES = 200_000


@pytest.fixture(scope="module")
def diff_exact(diff_case):
    true, fitted, data = diff_case
    mean, var = _exact_diff_mse(true, fitted, data)
    return mean, math.sqrt(var / N_SAMPLES)


@pytest.mark.parametrize("seed", DIFF_MSE_SEEDS)
def test_diff_mse_matches_exact_expectation(diff_case, diff_exact, seed):
    true, fitted, data = diff_case
    mean, se = diff_exact
    mt, pt = _tabular(true)
    mf, pf = _tabular(fitted)
    got = metrics.diff_mse(mt, pt, mf, pf, data, n_samples=N_SAMPLES, seed=seed)
    assert abs(got - mean) < Z * se, f"diff_mse {got:.5f} vs exact {mean:.5f} (se {se:.5f}, z {Z:.2f})"


@pytest.mark.parametrize(
    "wrong",
    [{"steps": "padded"}, {"pairs": "distinct"}, {"per_episode": True}],
    ids=["padding-contexts", "distinct-pairs", "episode-weights"],
)
def test_diff_mse_exact_check_has_power(diff_case, diff_exact, wrong):
    """Wrong definitions have expectations more than 2 Z standard errors away: the check above would fail."""
    true, fitted, data = diff_case
    mean, se = diff_exact
    alt, _ = _exact_diff_mse(true, fitted, data, **wrong)
    assert abs(alt - mean) > 2 * Z * se


def test_diff_mse_never_uses_the_last_step():
    """Contexts are t < L_m - 1: a difference that lives only at the last step is never seen.

    Agent 0 plays 1 or 2 at every context step and 0 at each episode's last step (and 0 is
    also the padding value). The fitted table differs from the truth only in agent 1's
    payoffs when a_0 = 0, so the reference diff_mse is exactly zero; scoring the last step
    makes it positive.
    """
    rng = np.random.default_rng(4)
    K = (3, 3, 3)
    lengths = np.array([6, 2, 5, 3])
    actions = rng.integers(0, 3, size=(4, 6, 3))
    actions[:, :, 0] = rng.integers(1, 3, size=(4, 6))
    actions[np.arange(4), lengths - 1, 0] = 0
    true = rng.normal(size=(*K, 3))
    fitted = true.copy()
    fitted[0, :, :, 1] += rng.normal(size=(3, 3))  # depends on a_1: not a gauge change
    mt, pt = _tabular(true)
    mf, pf = _tabular(fitted)
    data = Trajectories(actions, K, lengths=lengths)
    assert metrics.diff_mse(mt, pt, mf, pf, data, n_samples=5000) == 0.0
    longer = Trajectories(actions, K, lengths=np.minimum(lengths + 1, 6))
    assert metrics.diff_mse(mt, pt, mf, pf, longer, n_samples=5000) > 0.01


@pytest.mark.parametrize("c", [0.0, 0.5, 2.0, -1.0])
def test_diff_mse_scaled_differences(diff_case, c):
    """u^ = c u: every sample's error is (c - 1)^2 (u(a) - u(a'))^2."""
    true, _, data = diff_case
    mt, pt = _tabular(true)
    ms, ps = _tabular(c * true)
    mz, pz = _tabular(np.zeros_like(true))
    mean_sq = metrics.diff_mse(mt, pt, mz, pz, data, seed=5)
    assert mean_sq > 0.5
    got = metrics.diff_mse(mt, pt, ms, ps, data, seed=5)
    assert got == pytest.approx((c - 1.0) ** 2 * mean_sq, rel=1e-5, abs=1e-9)


def test_diff_mse_is_seeded(diff_case):
    true, fitted, data = diff_case
    mt, pt = _tabular(true)
    mf, pf = _tabular(fitted)
    first = metrics.diff_mse(mt, pt, mf, pf, data, n_samples=2000, seed=3)
    assert metrics.diff_mse(mt, pt, mf, pf, data, n_samples=2000, seed=3) == first
    assert metrics.diff_mse(mt, pt, mf, pf, data, n_samples=2000, seed=4) != first


def test_diff_mse_rejects_non_trajectories(diff_case):
    true, _, data = diff_case
    mech, params = _tabular(true)
    with pytest.raises(TypeError, match="data must be Trajectories"):
        metrics.diff_mse(mech, params, mech, params, data.actions)


@dataclass(frozen=True)
class _CountOnly(SymmetricCount):
    """A SymmetricCount whose all-agents ``payoffs`` must not be called."""

    def payoffs(self, params, joint):  # noqa: D102
        raise AssertionError("diff_mse evaluated all agents' payoffs")


def test_diff_mse_many_agents():
    """n = 60 agents: runs through ``count_payoffs`` for the sampled agent only."""
    mech = _CountOnly(60, 5, width=16)
    p1 = mech.init(jax.random.key(0))
    p2 = mech.init(jax.random.key(1))
    data = random_trajectories((5,) * 60, 3, 6, 0)
    assert metrics.diff_mse(mech, p1, mech, p1, data, n_samples=4000) == 0.0
    value = metrics.diff_mse(mech, p1, mech, p2, data, n_samples=4000)
    assert np.isfinite(value) and value > 0.0


def test_diff_mse_count_path_equals_full_payoffs():
    """The per-agent count path gives the same value as evaluating every agent's payoffs."""
    mech = SymmetricCount(5, 3, width=16)
    full = Function(mech.payoffs, mech.init, n_actions=mech.n_actions, batched=True)
    p1 = mech.init(jax.random.key(0))
    p2 = mech.init(jax.random.key(1))
    data = random_trajectories((3,) * 5, 4, 7, 1, lengths=[7, 3, 5, 2])
    fast = metrics.diff_mse(mech, p1, mech, p2, data, n_samples=3000, seed=2)
    slow = metrics.diff_mse(full, p1, full, p2, data, n_samples=3000, seed=2)
    assert fast > 0
    assert fast == pytest.approx(slow, rel=1e-4)


# ================================================================ histograms and KL


def test_histogram_exact_index():
    actions = np.array([[[0, 1], [1, 2]], [[0, 1], [1, 0]]])  # [2, 2, 2], K = (2, 3)
    hist = metrics.joint_action_histogram(actions, (2, 3))
    assert hist == {1: 2, 5: 1, 3: 1}  # ravel_multi_index: a_0 * 3 + a_1


def test_histogram_ten_agents_is_exact_index():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(6, 9, 10))
    hist = metrics.joint_action_histogram(actions, (2,) * 10)
    assert all(isinstance(k, int) for k in hist)
    want = Counter(int(np.ravel_multi_index(row, (2,) * 10)) for row in actions.reshape(-1, 10))
    assert hist == dict(want)
    assert sum(hist.values()) == 6 * 9


def _count_histogram(actions, K):
    n = actions.shape[-1]
    return Counter(tuple(np.bincount(row, minlength=K)) for row in actions.reshape(-1, n))


def test_histogram_eleven_agents_uses_count_vectors():
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 3, size=(7, 8, 11))
    hist = metrics.joint_action_histogram(actions, (3,) * 11)
    assert sum(hist.values()) == 7 * 8
    decoded = {}
    for key, count in hist.items():
        vec = np.frombuffer(key, dtype=np.int32)
        assert vec.shape == (3,) and vec.sum() == 11
        decoded[tuple(int(v) for v in vec)] = count
    assert decoded == dict(_count_histogram(actions, 3))
    # anonymous: relabelling the agents changes nothing
    permuted = actions[..., rng.permutation(11)]
    assert metrics.joint_action_histogram(permuted, (3,) * 11) == hist


@pytest.mark.parametrize(("n_actions", "exact"), [((125, 125, 128), True), ((125, 125, 129), False)])
def test_histogram_profile_limit(n_actions, exact):
    """Exact index while prod K_i <= 2e6; count vectors (length K_max) beyond."""
    actions = np.array([[[0, 1, 2], [124, 124, 127], [1, 0, 2]]])
    hist = metrics.joint_action_histogram(actions, n_actions)
    assert sum(hist.values()) == 3
    if exact:
        assert hist == {int(np.ravel_multi_index(r, n_actions)): 1 for r in actions[0]}
    else:
        # [0, 1, 2] and [1, 0, 2] have the same action counts
        assert sorted(hist.values()) == [1, 2]
        assert all(np.frombuffer(k, dtype=np.int32).shape == (129,) for k in hist)


def test_kl_divergence_hand_computed():
    p, q = {0: 3, 1: 1}, {1: 1, 2: 3}
    # smoothed over bins {0, 1, 2}: p = (.85, .35, .1) / 1.3, q = (.1, .35, .85) / 1.3
    assert metrics.kl_divergence(p, q, smoothing=0.1) == pytest.approx(0.75 * math.log(8.5) / 1.3, rel=1e-12)
    # disjoint supports with the default smoothing s = 1e-6: log((1 + s) / s) / (1 + 2 s)
    s = 1e-6
    assert metrics.kl_divergence({0: 5}, {1: 2}) == pytest.approx(
        math.log((1 + s) / s) / (1 + 2 * s), rel=1e-12
    )


def test_kl_divergence_properties():
    p, q = {0: 10, 3: 5, 7: 1}, {0: 2, 3: 9, 8: 4}
    assert metrics.kl_divergence(p, p) == 0.0
    assert metrics.kl_divergence(p, {k: 3 * v for k, v in p.items()}) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_divergence(p, q) > 0.0
    assert metrics.kl_divergence(p, q) != pytest.approx(metrics.kl_divergence(q, p))
    bytes_p = {b"\x01": 4, b"\x02": 1}
    assert metrics.kl_divergence(bytes_p, {b"\x01": 1, b"\x02": 4}, smoothing=0.0) == pytest.approx(
        0.6 * math.log(4.0)
    )


# ================================================================ learner shift


@pytest.mark.parametrize(
    ("learner", "want"),
    [
        (LogitQ(0.25, 3.0, 0.06), (0.15, 4.2, 0.09)),
        (LogitQ(0.2, 6.0, 0.02), (0.12, 8.4, 0.03)),
        (LogitQ(0.5, 1.0, 0.4), (0.3, 1.4, 0.5)),  # eps x 1.5 = 0.6, capped at 0.5
    ],
)
def test_learner_shift(learner, want):
    shifted = learner.scaled(alpha=0.6, beta=1.4, eps=1.5, eps_cap=0.5)
    got = (float(shifted.alpha), float(shifted.beta), float(shifted.eps))
    assert got == pytest.approx(want, rel=1e-6)
    assert shifted.q0 == learner.q0


def test_learner_shift_per_agent():
    learner = LogitQ(np.array([0.2, 0.9]), np.array([1.0, 2.0]), np.array([0.1, 0.4]), q0=0.5)
    shifted = learner.scaled(alpha=0.6, beta=1.4, eps=1.5)
    np.testing.assert_allclose(np.asarray(shifted.alpha), [0.12, 0.54], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(shifted.beta), [1.4, 2.8], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(shifted.eps), [0.15, 0.5], rtol=1e-6)
    assert shifted.q0 == 0.5
    assert float(LogitQ(0.8, 1.0, 0.1).scaled(alpha=2.0).alpha) == 1.0


# ================================================================ cfkl_params

CF_K = (3, 3, 3)


@pytest.fixture(scope="module")
def cf_case():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(*CF_K, 3))
    noise = rng.normal(size=true.shape)
    return true, noise


@pytest.fixture(scope="module")
def cf_values(cf_case):
    """cfkl_params(truth, fitted) for fitted = truth + perturbation, 100 episodes x 20 steps, seed 1."""
    true, noise = cf_case
    mech, params = _tabular(true)
    fitted = {
        "same": true,
        "small": true + 0.1 * noise,
        "large": true + 1.0 * noise,
        "gauge": true + 2.0 * _gauge(CF_K, 3),
    }
    out = {}
    for name, table in fitted.items():
        mf, pf = _tabular(table)
        out[name] = metrics.cfkl_params(mech, params, mf, pf, LEARNER, n_episodes=100, T=20, seed=1)
    return out


def test_cfkl_zero_for_same_mechanism(cf_case, cf_values):
    """Common random numbers: the same mechanism gives identical histograms (also at the defaults)."""
    assert cf_values["same"] == 0.0
    mech, params = _tabular(cf_case[0])
    assert metrics.cfkl_params(mech, params, mech, params, LEARNER) == 0.0


def test_cfkl_grows_with_perturbation(cf_values):
    assert 0.0 < cf_values["small"] < cf_values["large"]
    assert cf_values["large"] > 3 * cf_values["small"]


def test_cfkl_gauge_transformed_is_near_zero(cf_values):
    """Adding c_i(a_-i) leaves every policy unchanged; only float rounding can differ."""
    assert cf_values["gauge"] < 0.01 * cf_values["large"]


def test_cfkl_equals_manual_pipeline(cf_case, cf_values):
    """Shifted learner (alpha x 0.6, beta x 1.4, eps x 1.5), same key for both, KL(true || fitted)."""
    true, noise = cf_case
    mech, params = _tabular(true)
    mf, pf = _tabular(true + 1.0 * noise)
    shifted = LEARNER.scaled(alpha=0.6, beta=1.4, eps=1.5, eps_cap=0.5)
    key = jax.random.key(1)
    a_true, _ = simulate_arrays(mech, params, shifted, 100, 20, key)
    a_fit, _ = simulate_arrays(mf, pf, shifted, 100, 20, key)
    h_true = metrics.joint_action_histogram(np.asarray(a_true), CF_K)
    h_fit = metrics.joint_action_histogram(np.asarray(a_fit), CF_K)
    assert sum(h_true.values()) == sum(h_fit.values()) == 100 * 20
    want = metrics.kl_divergence(h_true, h_fit)
    assert want > 0 and cf_values["large"] == want
    # the shift matters: without it the value changes
    unshifted = metrics.cfkl_params(
        mech, params, mf, pf, LEARNER, n_episodes=100, T=20, seed=1, shift=(1.0, 1.0, 1.0)
    )
    assert unshifted != want


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cfkl_many_agents_count_histogram():
    """n = 12 > 10 agents: count-vector histograms; identical mechanisms give 0."""
    mech = SymmetricCount(12, 3, width=16)
    p1 = mech.init(jax.random.key(0))
    p2 = mech.init(jax.random.key(1))
    learner = LogitQ(0.2, 6.0, 0.02)
    assert metrics.cfkl_params(mech, p1, mech, p1, learner, n_episodes=20, T=10) == 0.0
    shifted = learner.scaled(alpha=0.6, beta=1.4, eps=1.5)
    actions, _ = simulate_arrays(mech, p1, shifted, 20, 10, jax.random.key(0))
    hist = metrics.joint_action_histogram(np.asarray(actions), mech.n_actions)
    assert sum(hist.values()) == 20 * 10
    assert all(isinstance(k, bytes) for k in hist)
    assert metrics.cfkl_params(mech, p1, mech, p2, learner, n_episodes=20, T=10) > 0.0


def test_cfkl_needs_n_actions():
    mech = Function(lambda p, a: p["w"][a], lambda key: {"w": jnp.arange(3.0)}, batched=True)
    params = mech.init(None)
    with pytest.raises(ValueError, match="n_actions"):
        metrics.cfkl_params(mech, params, mech, params, LEARNER, n_episodes=2, T=3)
    assert (
        metrics.cfkl_params(mech, params, mech, params, LEARNER, n_episodes=2, T=3, n_actions=(3, 3)) == 0.0
    )


@pytest.mark.parametrize(
    "mech",
    [Tabular((3, 2, 4)), SymmetricCount(6, 3), Congestion(5, 3)],
    ids=["tabular_unequal_k", "symmetric_count", "congestion"],
)
def test_agent_payoff_differences_pick_the_full_centred_payoffs(mech):
    """One agent's centred payoff per joint action equals that agent's entry of the full
    ``payoff_differences`` (which forms every agent's counterfactuals)."""
    params = mech.init(jax.random.key(3))
    rng = np.random.default_rng(0)
    k = np.asarray(mech.n_actions)
    joint = (rng.random((50, k.size)) * k).astype(np.int32)
    agent = rng.integers(0, k.size, 50)
    full = np.asarray(metrics.payoff_differences(mech, params, joint))[np.arange(50), agent]
    one = np.asarray(metrics.agent_payoff_differences(mech, params, joint, agent))
    np.testing.assert_allclose(one, full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="joint must be int"):
        metrics.agent_payoff_differences(mech, params, joint[:, :-1], agent)
