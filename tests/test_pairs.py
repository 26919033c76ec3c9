"""Pairwise payoff differences (Posterior.payoff_pairs, bayes-diml payoffs --pairs)."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference.pairs import PAIR_COLUMNS, count_pairs, payoff_pairs_frame


def _literal_rows(draws, support, prob):
    """One dict per (agent, opponent profile, a < b), by explicit indexing."""
    n_actions = draws.shape[1:-1]
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows = []
    for i, k in enumerate(n_actions):
        others = [j for j in range(len(n_actions)) if j != i]
        for profile in itertools.product(*(range(n_actions[j]) for j in others)):
            for a, b in itertools.combinations(range(k), 2):
                ja, jb = [0] * len(n_actions), [0] * len(n_actions)
                for j, x in zip(others, profile, strict=True):
                    ja[j] = jb[j] = x
                ja[i], jb[i] = a, b
                d = draws[(slice(None), *ja, i)] - draws[(slice(None), *jb, i)]
                rows.append(
                    {
                        "agent": i,
                        "opponents": "-".join(map(str, profile)),
                        "a": a,
                        "b": b,
                        "mean": d.mean(),
                        "lower": np.quantile(d, lo),
                        "upper": np.quantile(d, hi),
                        "prob_greater": (d > 0).mean(),
                        "support": bool(support[(*ja, i)]),
                    }
                )
    return rows


@pytest.mark.parametrize("n_actions", [(2, 3), (3, 2, 2), (4,)])
def test_pairs_equal_a_literal_loop(n_actions):
    rng = np.random.default_rng(0)
    n = len(n_actions)
    draws = rng.normal(size=(200, *n_actions, n))
    support = np.zeros((*n_actions, n), dtype=bool)
    for i in range(n):  # support depends on the opponents only
        opp = rng.random(tuple(k if j != i else 1 for j, k in enumerate(n_actions))) < 0.6
        support[..., i] = np.broadcast_to(opp, n_actions)
    frame = payoff_pairs_frame(draws, support, prob=0.8)
    assert tuple(frame.columns) == PAIR_COLUMNS
    assert len(frame) == count_pairs(n_actions)
    expected = _literal_rows(draws, support, 0.8)
    assert len(expected) == len(frame)
    for got, want in zip(frame.to_dict("records"), expected, strict=True):
        for key in ("agent", "opponents", "a", "b", "support"):
            assert got[key] == want[key], key
        for key in ("mean", "lower", "upper", "prob_greater"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)
    assert (frame["units"] == "payoff").all()


def test_opponent_labels_list_the_other_agents_in_order():
    draws = np.zeros((4, 2, 3, 4, 3))
    frame = payoff_pairs_frame(draws, np.ones((2, 3, 4, 3), dtype=bool))
    agent1 = frame[frame["agent"] == 1]
    assert agent1["opponents"].iloc[:3].tolist() == ["0-0", "0-0", "0-0"]  # pairs (0,1), (0,2), (1,2)
    assert set(agent1["opponents"]) == {f"{x}-{z}" for x in range(2) for z in range(4)}


def test_pairs_are_gauge_free_and_use_joint_draws():
    """Adding c_i(a_-i) to every draw changes nothing; prob_greater comes from joint draws."""
    rng = np.random.default_rng(1)
    common = rng.normal(0, 5, size=(400, 1, 2))  # wide, shared by both own actions of agent 0
    draws = np.zeros((400, 2, 2, 2))
    draws[:, 0, :, 0] = common[:, 0] + 0.1  # action 0 pays 0.1 more in every draw
    draws[:, 1, :, 0] = common[:, 0]
    support = np.ones((2, 2, 2), dtype=bool)
    frame = payoff_pairs_frame(draws, support)
    row = frame[(frame["agent"] == 0) & (frame["opponents"] == "0")].iloc[0]
    assert row["prob_greater"] == 1.0 and row["lower"] > 0  # sure, though marginals overlap widely
    shifted = draws + rng.normal(size=(400, 1, 2, 2))  # c_i(a_-i): constant over own actions
    shifted[..., 1] = draws[..., 1] + rng.normal(size=(400, 2, 1))
    np.testing.assert_allclose(
        payoff_pairs_frame(shifted, support)[["mean", "lower", "upper", "prob_greater"]].to_numpy(),
        frame[["mean", "lower", "upper", "prob_greater"]].to_numpy(),
        atol=1e-12,
    )


def test_pairs_bad_input():
    with pytest.raises(ValueError, match="prob must lie in"):
        payoff_pairs_frame(np.zeros((3, 2, 2, 2)), np.ones((2, 2, 2), bool), prob=1.0)
    with pytest.raises(ValueError, match=r"draws must be float\[D, K_1, \.\.\., K_n, n\]"):
        payoff_pairs_frame(np.zeros((3, 2, 2, 2)), np.ones((2, 2), bool))


@pytest.fixture(scope="module")
def small_game():
    mech = mechanisms.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    data = bd.simulate(mech, params, bd.LogitQ(0.3, 2.0, 0.05), n_episodes=12, T=15, key=2)
    return mech, data


def test_posterior_pairs_in_payoff_units(small_game):
    mech, data = small_game
    # MAP (one draw), not Laplace: this checks the table's plumbing and units; a Laplace fit adds
    # ~6x the CPU (its SVI refinement and Hessian compile). Per-draw arithmetic over many draws is
    # checked by the confounded Laplace fit below and by the frame tests above.
    post = bd.fit(data, mech, bd.LogitQ(0.3, 2.0, 0.05), method="map", num_restarts=1, seed=0, progress=False)
    assert post.n_draws == 1
    frame = post.payoff_pairs(0.9)
    draws = post.payoff_differences()
    direct = payoff_pairs_frame(draws, post.support, 0.9)
    np.testing.assert_allclose(frame["mean"], direct["mean"])
    assert (frame["units"] == "payoff").all()
    assert frame["support"].tolist() == direct["support"].tolist()
    with pytest.raises(ValueError, match="prob"):
        post.payoff_pairs(1.5)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_confounded_pairs_are_in_identified_units(small_game):
    mech, data = small_game
    with pytest.warns(bd.inference.ConfoundingWarning):
        post = bd.fit(data, mech, bd.LogitQ(0.3, "infer", 0.05), method="laplace", seed=0, progress=False)
    assert post.confounded
    frame = post.payoff_pairs(0.9)
    assert (frame["units"] == "beta x payoff").all()
    beta = post.draws("beta").reshape(-1, 1, 1, 1)
    scaled = payoff_pairs_frame(post.payoff_differences() * beta, post.support, 0.9)
    np.testing.assert_allclose(frame["mean"], scaled["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frame["prob_greater"], scaled["prob_greater"])
    # the computed product (used where the table is too large to record) equals the recorded site
    np.testing.assert_allclose(post.scaled_payoff_draws(), post.draws("scaled_payoffs"), rtol=1e-5, atol=1e-6)
