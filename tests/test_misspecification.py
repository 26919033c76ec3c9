"""The misspecification study's generators, truth and scoring (bayes_diml/studies/misspecification.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_diml.inference.pairs import payoff_pairs_frame
from bayes_diml.studies import misspecification as ms


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_every_generator_simulates_reproducibly():
    for gen in ms.GENERATORS:
        a, b = ms.make_dataset(gen, 3, 4, 6), ms.make_dataset(gen, 3, 4, 6)
        np.testing.assert_array_equal(a.data.actions, b.data.actions)
        game = a.data.n_actions
        assert a.data.actions.shape == (4, 6, len(game))
        assert a.truth.shape == (*game, len(game))
        assert a.scaled == (gen not in ms.EXTERNAL)
        for i, k in enumerate(game):  # actions in range
            assert 0 <= a.data.actions[..., i].min() and a.data.actions[..., i].max() < k
    assert not np.array_equal(
        ms.make_dataset("logitq", 0, 4, 6).data.actions, ms.make_dataset("logitq", 1, 4, 6).data.actions
    )
    with pytest.raises(ValueError, match="unknown generator 'wolf'"):
        ms.make_dataset("wolf", 0)


def test_truth_is_temperature_times_centred_payoffs():
    ds = ms.make_dataset("hedge", 5, 2, 3)
    eta = ds.learner["eta"]
    centred = ds.truth / eta
    np.testing.assert_allclose(
        centred.mean(axis=0)[..., 0], 0.0, atol=1e-12
    )  # agent 0 centred over own action
    np.testing.assert_allclose(centred.mean(axis=1)[..., 1], 0.0, atol=1e-12)
    blind = ms.make_dataset("blind", 5, 2, 3)
    np.testing.assert_allclose(blind.truth.mean(axis=0)[..., 0], 0.0, atol=1e-12)


def test_egreedy_without_exploration_locks_on_the_best_reply():
    table = np.zeros((2, 3, 2))
    table[1, :, 0] = 1.0  # agent 0: action 1 always pays 1
    table[:, 2, 1] = 1.0  # agent 1: action 2 always pays 1
    acts = ms.egreedy_actions(table, 3, 40, np.random.default_rng(0), alpha=0.5, eps=0.0)
    # greedy with ties broken at random: once the paying action is tried it is never left
    assert (acts[:, -10:, 0] == 1).all() and (acts[:, -10:, 1] == 2).all()


def test_imitation_copies_the_richer_neighbour():
    table = np.zeros((2, 2, 2, 3))
    for i in range(3):  # an agent playing 1 earns 1, whatever the others do
        idx = [slice(None)] * 3
        idx[i] = 1
        table[(*idx, i)] = 1.0
    acts = ms.imitation_actions(table, 20, 30, np.random.default_rng(1), scale=1.0, eps=0.0)
    # without trembles action 1 spreads and is never abandoned: play 1 only grows along an episode
    share = (acts == 1).mean(axis=(0, 2))
    assert share[-1] == 1.0 or share[-1] > share[0] + 0.3
    assert (np.diff((acts == 1).sum(axis=2), axis=1) >= 0).all()


def test_true_pairs_match_a_literal_loop():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(2, 3, 2))
    support = np.ones_like(truth, dtype=bool)
    frame = payoff_pairs_frame(truth[None], support, prob=0.5)
    got = ms.true_pairs(truth, support)
    for (_, r), g in zip(frame.iterrows(), got, strict=True):
        i, opp, a, b = int(r["agent"]), int(r["opponents"]), int(r["a"]), int(r["b"])
        ca, cb = ((a, opp), (b, opp)) if i == 0 else ((opp, a), (opp, b))
        assert g == pytest.approx(truth[(*ca, i)] - truth[(*cb, i)])


def test_score_pairs_counts_sure_right_and_covered():
    truth = np.zeros((2, 2, 2))
    truth[0, :, 0], truth[1, :, 0] = 1.0, -1.0  # agent 0: u(0) - u(1) = 2 against both profiles
    truth[:, 0, 1], truth[:, 1, 1] = -0.5, 0.5  # agent 1: u(0) - u(1) = -1
    support = np.ones((2, 2, 2), dtype=bool)
    support[:, 1, 0] = False  # agent 0 never saw opponent action 1
    pairs = payoff_pairs_frame(truth[None], support, prob=0.5)  # rows: (0, opp 0), (0, opp 1), (1, 0), (1, 1)
    pairs["lower"] = [0.5, -3.0, 0.1, -2.0]
    pairs["upper"] = [3.0, -1.0, 2.0, 0.5]
    s = ms.score_pairs(pairs, truth, support, scaled=True)
    # unsupported row 2 skipped; row 1 sure right and covered; row 3 sure wrong, not covered; row 4 covers
    assert s == {"pairs": 3, "sure": 2, "sure_right": 1, "covered": 2}
    assert ms.score_pairs(pairs, truth, support, scaled=False)["covered"] is None


def test_run_study_saves_every_record_and_resumes(tmp_path, monkeypatch):
    calls = []

    def fake_fit(ds, fit_name, nuts):
        calls.append((ds.generator, ds.seed, fit_name))
        return {
            "generator": ds.generator,
            "seed": ds.seed,
            "fit": fit_name,
            "seconds": 0.0,
            "learner": {},
            "pairs": 4,
            "sure": 2,
            "sure_right": 1 if fit_name == "logitq" else 2,
            "covered": None,
        }

    monkeypatch.setattr(ms, "_fit_one", fake_fit)
    path = tmp_path / "study.jsonl"
    recs = ms.run_study(path, ["blind", "egreedy"], range(2), n_episodes=2, T=3)
    assert len(recs) == len(calls) == 8 and len(path.read_text().splitlines()) == 8
    again = ms.run_study(path, ["blind", "egreedy"], range(3), n_episodes=2, T=3)
    assert len(calls) == 12 and len(again) == 12  # only seed 2 was new
    table = ms.summarise(again).set_index(["generator", "fit"])
    assert table.loc[("blind", "logitq"), "sure_right"] == pytest.approx(0.5)
    assert table.loc[("blind", "auto"), "wrong_sure"] == 0
    assert table.loc[("egreedy", "auto"), "sure_share"] == pytest.approx(0.5)
    assert pd.isna(table.loc[("egreedy", "auto"), "coverage"])
