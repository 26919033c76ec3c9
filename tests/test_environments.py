"""Tests of ``bayes_diml.environments``: the DIML experiments E1, E2, E3, E7 as built by ``make``.

The facts checked here come from the reference (``docs/paper-reference.md``: An & Du (2026),
arXiv:2601.17678, and the authors' script): game
sizes, the true mechanisms' families and parameter ranges, learner parameters, data sizes
(60 episodes x 60 steps, E7 per setting) and the 80/20 train/test split by episode.

Each default environment is built once per module (about 3-8 s each, mostly compilation);
the five large E7 settings are checked through a stubbed simulator, and built for real only
in a test marked ``slow``.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bayes_diml import Trajectories, environments
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import (
    Congestion,
    NeuralJoint,
    PublicGoods,
    StructuredCongestion,
    StructuredPublicGoods,
    SymmetricCount,
    joint_profiles,
)

# The reference's E7 table: (n, K) -> (episodes, steps).
REFERENCE_E7 = {
    (40, 10): (24, 30),
    (80, 20): (24, 30),
    (120, 25): (24, 30),
    (200, 30): (20, 30),
    (300, 40): (16, 25),
}


@pytest.fixture(scope="module")
def envs() -> dict[str, environments.Environment]:
    """The four default environments with seed 0 (built once: compilation dominates)."""
    return {name: environments.make(name, 0) for name in ("e1", "e2", "e3", "e7")}


def _np_tree(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _trees_equal(a, b) -> bool:
    la, lb = _np_tree(a), _np_tree(b)
    if len(la) != len(lb):
        return False
    return all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(la, lb, strict=True))


def _episode_indices(part: Trajectories, whole: Trajectories) -> list[int]:
    """Index in ``whole`` of each episode of ``part`` (matched by its whole action array)."""
    out = []
    for m in range(part.n_episodes):
        hits = [j for j in range(whole.n_episodes) if np.array_equal(whole.actions[j], part.actions[m])]
        assert len(hits) == 1, f"episode {m} of the split matches {len(hits)} episodes of the data"
        out.append(hits[0])
    return out


# ---------------------------------------------------------------- names and errors


def test_names():
    assert environments.NAMES == ("e1", "e2", "e3", "e7")


def test_unknown_name_raises():
    with pytest.raises(ValueError, match=r"unknown environment 'e4'.*e1, e2, e3, e7"):
        environments.make("e4")


@pytest.mark.parametrize("name", ["e1", "e2", "e3"])
@pytest.mark.parametrize("setting", [{"n": 5}, {"K": 3}, {"n": 40, "K": 10}])
def test_n_and_k_only_for_e7(name, setting):
    with pytest.raises(ValueError, match=rf"n and K are settings of e7 only; {name}"):
        environments.make(name, 0, **setting)


# ---------------------------------------------------------------- E1


def test_e1_mechanism(envs):
    env = envs["e1"]
    assert env.name == "e1"
    mech, params = env.mechanism, env.params
    assert isinstance(mech, NeuralJoint)
    assert mech.n_actions == (6, 6, 6)
    assert (mech.width, mech.depth) == (128, 2)
    assert mech.embed_dim == min(24, max(6, 6)) == 6
    assert [e.shape for e in params["embed"]] == [(6, 6)] * 3
    sizes = [(layer["w"].shape, layer["b"].shape) for layer in params["layers"]]
    assert sizes == [((18, 128), (128,)), ((128, 128), (128,)), ((128, 3), (3,))]
    for layer in params["layers"]:  # PyTorch default: U(+-1/sqrt(fan_in))
        bound = 1.0 / np.sqrt(layer["w"].shape[0])
        assert np.abs(np.asarray(layer["w"])).max() <= bound
        assert np.abs(np.asarray(layer["b"])).max() <= bound
    assert env.family is None and env.family_params is None


# ---------------------------------------------------------------- E2


def test_e2_mechanism_and_ranges(envs):
    env = envs["e2"]
    assert env.name == "e2"
    assert isinstance(env.mechanism, Congestion)
    assert (env.mechanism.n_agents, env.mechanism.n_choices) == (4, 5)
    assert env.mechanism.n_actions == (5,) * 4
    for key, lo, hi in (("c1", 0.1, 0.4), ("c2", 0.05, 0.15), ("toll", 0.0, 0.2)):
        value = np.asarray(env.params[key])
        assert value.shape == (5,)
        assert np.all((value >= lo) & (value <= hi)), (key, value)
    # the routes get different draws
    assert np.unique(np.asarray(env.params["c1"])).size == 5


def test_e2_payoffs_follow_reference_formula(envs):
    env = envs["e2"]
    joints = joint_profiles(env.mechanism.n_actions)  # [625, 4]
    got = np.asarray(env.mechanism.payoffs(env.params, joints), dtype=np.float64)
    c1, c2, toll = (np.asarray(env.params[k], dtype=np.float64) for k in ("c1", "c2", "toll"))
    want = np.zeros(joints.shape)
    for p, joint in enumerate(joints):
        for i, route in enumerate(joint):
            load = np.sum(joint == route)
            want[p, i] = -(c1[route] * load + c2[route] * load**2) + toll[route] * load
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_e2_family_reproduces_truth(envs):
    env = envs["e2"]
    assert isinstance(env.family, StructuredCongestion)
    assert env.family.n_actions == env.mechanism.n_actions
    joints = joint_profiles(env.mechanism.n_actions)
    truth = np.asarray(env.mechanism.payoffs(env.params, joints))
    family = np.asarray(env.family.payoffs(env.family_params, joints))
    np.testing.assert_allclose(family, truth, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- E3


def test_e3_mechanism(envs):
    env = envs["e3"]
    assert env.name == "e3"
    mech = env.mechanism
    assert isinstance(mech, PublicGoods)
    assert (mech.n_agents, mech.n_choices) == (3, 7)
    assert (mech.benefit_rate, mech.cost, mech.width) == (2.0, 0.8, 64)
    np.testing.assert_allclose(np.asarray(mech.levels), np.linspace(0, 1, 7), atol=1e-7)
    sizes = [(layer["w"].shape, layer["b"].shape) for layer in env.params["subsidy"]]
    assert sizes == [((2, 64), (64,)), ((64, 1), (1,))]


def test_e3_payoffs_follow_reference_formula(envs):
    env = envs["e3"]
    joints = joint_profiles(env.mechanism.n_actions)  # [343, 3]
    got = np.asarray(env.mechanism.payoffs(env.params, joints), dtype=np.float64)
    (l0, l1) = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in env.params["subsidy"]]
    levels = np.linspace(0.0, 1.0, 7)
    level = levels[joints]  # [P, n]
    total = np.broadcast_to(level.sum(-1, keepdims=True), level.shape)
    x = np.stack([total, level], axis=-1)  # [P, n, 2]
    subsidy = (np.tanh(x @ l0["w"] + l0["b"]) @ l1["w"] + l1["b"])[..., 0]
    want = 1.0 - np.exp(-2.0 * total) - 0.8 * level**2 + subsidy
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_e3_family_reproduces_truth(envs):
    env = envs["e3"]
    assert isinstance(env.family, StructuredPublicGoods)
    assert env.family.n_actions == env.mechanism.n_actions
    joints = joint_profiles(env.mechanism.n_actions)
    truth = np.asarray(env.mechanism.payoffs(env.params, joints))
    family = np.asarray(env.family.payoffs(env.family_params, joints))
    np.testing.assert_allclose(family, truth, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- E7


def test_e7_settings_table():
    assert environments.E7_SETTINGS == REFERENCE_E7


def test_e7_default(envs):
    env = envs["e7"]
    assert env.name == "e7"
    mech = env.mechanism
    assert isinstance(mech, SymmetricCount)
    assert (mech.n_agents, mech.n_choices) == (40, 10)
    assert (mech.width, mech.depth, mech.embed_dim) == (256, 2, min(32, max(12, 10)))
    assert env.params["embed"].shape == (10, 12)
    sizes = [layer["w"].shape for layer in env.params["layers"]]
    assert sizes == [(12 + 10, 256), (256, 256), (256, 1)]
    assert env.data.actions.shape == (24, 30, 40)
    assert env.data.n_actions == (10,) * 40
    assert env.family is None and env.family_params is None


def _fake_simulate(calls):
    def simulate(mechanism, params, learner, n_episodes, T, key, **kwargs):
        calls.append((mechanism, learner, n_episodes, T))
        return Trajectories(
            np.zeros((n_episodes, T, len(mechanism.n_actions)), np.int64), mechanism.n_actions
        )

    return simulate


@pytest.mark.parametrize(("n", "K"), list(REFERENCE_E7) + [(50, 10), (40, 11)])
def test_e7_setting_sets_episodes_and_steps(monkeypatch, n, K):
    """make('e7', n=n, K=K) asks the simulator for the reference's (episodes, steps)."""
    calls = []
    monkeypatch.setattr(environments, "simulate", _fake_simulate(calls))
    env = environments.make("e7", 0, n=n, K=K)
    ((mech, learner, M, T),) = calls
    assert isinstance(mech, SymmetricCount) and (mech.n_agents, mech.n_choices) == (n, K)
    assert (M, T) == REFERENCE_E7.get((n, K), (24, 30))
    assert env.data.actions.shape == (M, T, n)
    assert tuple(float(v) for v in learner[:3]) == pytest.approx((0.2, 6.0, 0.02))
    assert env.test.n_episodes == round(0.2 * M)
    assert env.train.n_episodes == M - round(0.2 * M)


def test_overrides_reach_the_simulator(monkeypatch):
    calls = []
    monkeypatch.setattr(environments, "simulate", _fake_simulate(calls))
    environments.make("e7", 0, n=300, K=40, n_episodes=3, T=7)
    environments.make("e2", 0, n_episodes=10)
    environments.make("e1", 0, T=5)
    assert [(M, T) for _, _, M, T in calls] == [(3, 7), (10, 60), (60, 5)]


def test_e7_small_custom():
    env = environments.make("e7", 3, n=6, K=3, n_episodes=5, T=4)
    assert isinstance(env.mechanism, SymmetricCount)
    assert env.mechanism.n_actions == (3,) * 6
    assert env.mechanism.embed_dim == 12
    assert env.data.actions.shape == (5, 4, 6)
    assert env.data.actions.min() >= 0 and env.data.actions.max() <= 2
    assert (env.train.n_episodes, env.test.n_episodes) == (4, 1)
    assert env.learner == LogitQ(0.2, 6.0, 0.02)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "K"), list(REFERENCE_E7)[1:])
def test_e7_reference_settings_built(n, K):
    env = environments.make("e7", 0, n=n, K=K)
    M, T = REFERENCE_E7[(n, K)]
    assert env.data.actions.shape == (M, T, n)
    assert env.mechanism.embed_dim == min(32, max(12, K))
    assert env.data.actions.max() < K
    assert env.train.n_episodes + env.test.n_episodes == M


# ---------------------------------------------------------------- learners, data, split


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("e1", (0.25, 3.0, 0.06)),
        ("e2", (0.25, 3.0, 0.06)),
        ("e3", (0.25, 3.0, 0.06)),
        ("e7", (0.2, 6.0, 0.02)),
    ],
)
def test_learner(envs, name, want):
    learner = envs[name].learner
    assert isinstance(learner, LogitQ)
    assert (float(learner.alpha), float(learner.beta), float(learner.eps)) == pytest.approx(want)
    assert float(learner.q0) == 0.0


@pytest.mark.parametrize("name", ["e1", "e2", "e3"])
def test_data_shape(envs, name):
    env = envs[name]
    n = len(env.mechanism.n_actions)
    assert env.data.actions.shape == (60, 60, n)
    assert env.data.n_actions == env.mechanism.n_actions
    assert np.all(env.data.lengths == 60)
    assert env.data.actions.min() >= 0
    assert np.all(env.data.actions < np.asarray(env.mechanism.n_actions))
    # learning agents: every agent's first action is not constant across episodes
    assert np.all(np.ptp(env.data.actions[:, 0, :], axis=0) > 0)


@pytest.mark.parametrize(
    ("name", "sizes"), [("e1", (48, 12)), ("e2", (48, 12)), ("e3", (48, 12)), ("e7", (19, 5))]
)
def test_split_disjoint_and_covering(envs, name, sizes):
    env = envs[name]
    assert (env.train.n_episodes, env.test.n_episodes) == sizes
    assert env.train.n_actions == env.test.n_actions == env.data.n_actions
    train = _episode_indices(env.train, env.data)
    test = _episode_indices(env.test, env.data)
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert set(train).isdisjoint(test)
    assert sorted(train + test) == list(range(env.data.n_episodes))
    # not a trivial head/tail split
    assert sorted(test) != list(range(env.data.n_episodes - sizes[1], env.data.n_episodes))


def test_test_fraction(envs):
    env = environments.make("e2", 0, test_fraction=0.5)
    assert (env.train.n_episodes, env.test.n_episodes) == (30, 30)
    # the fraction changes the split, not the truth or the data
    assert _trees_equal(env.params, envs["e2"].params)
    np.testing.assert_array_equal(env.data.actions, envs["e2"].data.actions)


@pytest.mark.parametrize("name", ["e1", "e2"])
def test_reproducible_per_seed(envs, name):
    again = environments.make(name, 0)
    first = envs[name]
    assert _trees_equal(again.params, first.params)
    np.testing.assert_array_equal(again.data.actions, first.data.actions)
    np.testing.assert_array_equal(again.train.actions, first.train.actions)
    np.testing.assert_array_equal(again.test.actions, first.test.actions)
    if first.family_params is not None:
        assert _trees_equal(again.family_params, first.family_params)


@pytest.mark.parametrize("name", ["e1", "e2"])
def test_seeds_differ(envs, name):
    other = environments.make(name, 1)
    first = envs[name]
    for a, b in zip(_np_tree(first.params), _np_tree(other.params), strict=True):
        assert not np.array_equal(a, b)
    assert not np.array_equal(first.data.actions, other.data.actions)
    assert _episode_indices(first.test, first.data) != _episode_indices(other.test, other.data)


def test_record_payoffs(envs):
    """record_payoffs keeps the same actions and stores each agent's realised payoff."""
    env = environments.make("e2", 0, record_payoffs=True)
    first = envs["e2"]
    assert first.data.payoffs is None
    np.testing.assert_array_equal(env.data.actions, first.data.actions)
    assert env.data.payoffs.shape == (60, 60, 4)
    want = np.asarray(env.mechanism.payoffs(env.params, env.data.actions))
    np.testing.assert_allclose(env.data.payoffs, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(env.test.actions, first.test.actions)
    assert env.test.payoffs is not None and env.test.payoffs.shape == env.test.actions.shape


def test_name_is_case_insensitive(envs):
    env = environments.make("E2", 0)
    assert env.name == "e2"
    np.testing.assert_array_equal(env.data.actions, envs["e2"].data.actions)
