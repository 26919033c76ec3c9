"""Agent and action labels: Trajectories, file round trips, and every report that names them."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.data import DataError, Trajectories
from bayes_diml.labels import encode_action_labels, encode_labels, relabel_row

AGENTS = ("zoe", "adam")  # not in sorted order: codes must follow the given order
ACTIONS = (("rock", "paper", "scissors"), ("stay", "go"))


def _actions(seed=0, shape=(3, 5)):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 3, shape), rng.integers(0, 2, shape)], axis=-1)


def _labelled(**kw):
    return Trajectories(
        _actions(), (3, 2), lengths=[5, 3, 4], agent_labels=AGENTS, action_labels=ACTIONS, **kw
    )


def _decoded(d: Trajectories) -> list[tuple[str, str]]:
    """(agent label, action label) of every valid cell, in (episode, step, agent) order."""
    frame = d.to_frame()
    return list(zip(frame["agent"], frame["action"], strict=True))


# ------------------------------------------------------------------------------ Trajectories
def test_labels_are_stored_as_tuples_and_shared_action_labels_expand():
    d = _labelled()
    assert d.agent_labels == AGENTS and d.action_labels == ACTIONS
    shared = Trajectories(np.zeros((1, 3, 2), int), (3, 3), action_labels=["a", "b", "c"])
    assert shared.action_labels == (("a", "b", "c"), ("a", "b", "c")) and shared.agent_labels is None
    assert Trajectories(np.zeros((1, 3, 2), int), (3, 3)).labels == {
        "agent_labels": None,
        "action_labels": None,
    }


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"agent_labels": ["a"]}, r"agent_labels has 1 labels but the data have n = 2 agents"),
        ({"agent_labels": ["a", "a"]}, r"agent_labels must be distinct; 'a' appears twice"),
        ({"agent_labels": ["a", 1]}, r"agent_labels must be non-empty strings; got 1"),
        ({"agent_labels": "ab"}, r"agent_labels must be a sequence of strings"),
        (
            {"action_labels": ["x", "y", "z"]},
            r"3 labels shared by every agent, but the agents have n_actions = \(3, 2\)",
        ),
        ({"action_labels": [["x", "y", "z"]]}, r"action_labels has 1 entries but the data have n = 2 agents"),
        (
            {"action_labels": [["x", "y", "z"], ["u"]]},
            r"action_labels\[1\] has 1 labels but agent 1 has K_1 = 2",
        ),
        ({"action_labels": [["x", "y", "z"], ["u", ""]]}, r"action_labels\[1\] must be non-empty strings"),
    ],
)
def test_bad_labels_are_refused_with_the_problem_named(kw, match):
    with pytest.raises(DataError, match=match):
        Trajectories(_actions(), (3, 2), **kw)


def test_subset_and_split_keep_the_labels():
    d = _labelled()
    assert d.subset([2, 0]).labels == d.labels
    train, test = d.split(0.34, seed=0)
    assert train.labels == test.labels == d.labels


def test_to_frame_writes_labels():
    d = _labelled()
    m, t, i = np.nonzero(np.broadcast_to(d.step_mask[:, :, None], d.actions.shape))
    want = [(AGENTS[a], ACTIONS[a][d.actions[e, s, a]]) for e, s, a in zip(m, t, i, strict=True)]
    assert _decoded(d) == want
    assert d.to_frame()["agent"].tolist()[:2] == ["zoe", "adam"]


# ------------------------------------------------------------------------------ files
@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_binary_files_keep_codes_and_labels_exactly(tmp_path, suffix):
    d = _labelled()
    back = Trajectories.load(d.save(tmp_path / f"t{suffix}"))
    np.testing.assert_array_equal(back.actions, d.actions)
    np.testing.assert_array_equal(back.lengths, d.lengths)
    assert back.labels == d.labels


def test_csv_keeps_labels_agent_order_and_every_cell(tmp_path):
    d = _labelled()
    back = Trajectories.load(d.save(tmp_path / "t.csv"))
    assert back.agent_labels == AGENTS  # agents in the order they first appear
    assert back.action_labels == (("paper", "rock", "scissors"), ("go", "stay"))  # sorted per agent
    assert _decoded(back) == _decoded(d)  # the same action of the same agent in every cell


def test_unlabelled_npz_keys_are_unchanged(tmp_path):
    path = Trajectories(_actions(), (3, 2)).save(tmp_path / "plain.npz")
    with np.load(path) as z:
        assert sorted(z.files) == ["actions", "lengths", "n_actions"]
    with np.load(_labelled().save(tmp_path / "lab.npz")) as z:
        assert sorted(z.files) == ["actions", "labels", "lengths", "n_actions"]


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".csv"])
def test_labels_and_subjects_travel_together(tmp_path, suffix):
    d = _labelled(subjects=[7, 3, 7])
    back = Trajectories.load(d.save(tmp_path / f"both{suffix}"))
    assert back.agent_labels == AGENTS and sorted(back.action_labels[0]) == sorted(ACTIONS[0])
    assert list(back.subjects) == [1, 0, 1] and _decoded(back) == _decoded(d)
    sub = d.subset([2, 0])
    assert list(sub.subjects) == [0, 0] and sub.labels == d.labels  # subjects renumbered


@pytest.mark.parametrize("raw, match", [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object")])
def test_malformed_npz_labels_raise_data_error(tmp_path, raw, match):
    path = tmp_path / "bad.npz"
    np.savez(path, actions=_actions(), n_actions=np.asarray((3, 2)), labels=np.asarray(raw))
    with pytest.raises(DataError, match=rf"bad\.npz: key 'labels' is {match}"):
        Trajectories.load(path)


def test_hand_written_csv_with_text_labels(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text(
        "episode,t,agent,action\n"
        "a,0,bob,high\na,0,amy,left\na,1,bob,low\na,1,amy,right\na,2,bob,high\na,2,amy,left\n"
    )
    d = Trajectories.load(path)
    assert d.agent_labels == ("bob", "amy") and d.action_labels == (("high", "low"), ("left", "right"))
    assert d.n_actions == (2, 2)
    np.testing.assert_array_equal(d.actions[0], [[0, 0], [1, 1], [0, 0]])


def test_given_labels_fix_the_codes_of_a_frame():
    frame = pd.DataFrame(
        {"episode": 0, "t": [0, 0, 1, 1], "agent": ["b", "a", "b", "a"], "action": ["y", "x", "x", "z"]}
    )
    d = Trajectories.from_frame(frame, agent_labels=["a", "b"], action_labels=["z", "y", "x"])
    assert d.agent_labels == ("a", "b") and d.action_labels == (("z", "y", "x"),) * 2
    np.testing.assert_array_equal(d.actions[0], [[2, 1], [0, 2]])  # (a, b) at t = 0, 1


@pytest.mark.parametrize(
    "agent, action, match",
    [
        (
            ["b", "a", "b", "a"],
            ["x", "y", "x", "q"],
            r"row 3 holds action 'q' of agent 1, which is not one of",
        ),
        (["b", "a", None, "a"], ["x", "y", "x", "y"], r"column 'agent' is empty in row 2"),
        (
            ["b", "a", "b", "a"],
            ["1", "y", "x", "y"],
            r"column 'action' mixes integer codes and text labels \(row 1",
        ),
    ],
)
def test_bad_text_columns_raise_data_error(agent, action, match):
    frame = pd.DataFrame({"episode": 0, "t": [0, 0, 1, 1], "agent": agent, "action": action})
    labels = {"action_labels": ["x", "y"]} if "'q'" in match else {}
    with pytest.raises(DataError, match=match):
        Trajectories.from_frame(frame, **labels)


def test_encoders():
    codes, labels = encode_labels("col", np.array(["b", "a", "b"], dtype=object))
    assert labels == ("b", "a") and codes.tolist() == [0, 1, 0]
    codes, labels = encode_action_labels("col", np.array(["y", "x", "x"], dtype=object), np.array([0, 0, 1]))
    assert labels == (("x", "y"), ("x",)) and codes.tolist() == [1, 0, 0]


def test_relabel_row():
    agents, actions = ("ann", "bo"), (("u", "d"), ("l", "c", "r"))
    assert relabel_row("centred_payoffs[1, 2, 0]", ["action_0", "action_1", "agent"], agents, actions) == (
        "centred_payoffs[d, r, ann]"
    )
    assert relabel_row("bias[1, 2]", ["agent", "action"], agents, actions) == "bias[bo, r]"
    assert relabel_row("alpha[1]", ["agent"], agents, actions) == "alpha[bo]"
    assert relabel_row("beta", [], agents, actions) == "beta"


# ------------------------------------------------------------------------------ reports
@pytest.fixture(scope="module")
def fit():
    mech = mechanisms.Tabular((3, 2))
    params = mech.init(jax.random.key(0))
    learner = bd.LogitQ(0.3, 2.0, 0.05)
    sim = bd.simulate(mech, params, learner, n_episodes=8, T=12, key=1)
    data = Trajectories(sim.actions, sim.n_actions, agent_labels=AGENTS, action_labels=ACTIONS)
    return bd.fit(data, mech, bd.LogitQ("infer", 2.0, 0.05), method="laplace", seed=0, progress=False)


def test_summary_rows_use_the_labels(fit):
    rows = fit.summary(identification=False).index.tolist()
    assert "centred_payoffs[paper, go, adam]" in rows and "centred_payoffs[rock, stay, zoe]" in rows
    assert not any(r.startswith("centred_payoffs[0") for r in rows)
    assert list(fit.scalar_summary()) == ["alpha"]


def test_identification_rows_use_the_labels_and_summary_still_merges_them(fit):
    table = fit.identification(num_prior_draws=200)
    assert "centred_payoffs[scissors, stay, zoe]" in table.index
    summary = fit.summary(num_prior_draws=200)
    row = summary.loc["centred_payoffs[scissors, stay, zoe]"]
    assert np.isfinite(row["contraction"])  # merged by index before the rows were renamed
    assert row["contraction"] == pytest.approx(
        table.loc["centred_payoffs[scissors, stay, zoe]", "contraction"]
    )


def test_labelled_payoff_table_is_the_table_with_coordinates(fit):
    plain = fit.payoff_table(0.8)
    ds = fit.payoff_table(0.8, labelled=True)
    assert isinstance(ds, xr.Dataset) and ds.attrs["prob"] == 0.8
    assert ds["mean"].dims == ("action_zoe", "action_adam", "agent")
    assert ds["agent"].values.tolist() == list(AGENTS)
    assert ds["action_zoe"].values.tolist() == list(ACTIONS[0])
    for name in ("mean", "lower", "upper", "support"):
        np.testing.assert_array_equal(ds[name].values, plain[name])
    # adam's centred payoff of "go" against zoe's "scissors" is cell [2, 1, 1]
    cell = ds["mean"].sel(agent="adam", action_zoe="scissors", action_adam="go")
    assert float(cell) == plain["mean"][2, 1, 1]


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_pairs_name_agents_and_actions(fit, tmp_path):
    frame = fit.payoff_pairs(0.9)
    adam = frame[frame["agent"] == "adam"]
    assert set(adam["opponents"]) == set(ACTIONS[0]) and set(zip(adam["a"], adam["b"], strict=True)) == {
        ("stay", "go")
    }
    zoe = frame[frame["agent"] == "zoe"]
    assert set(zip(zoe["a"], zoe["b"], strict=True)) == {
        ("rock", "paper"),
        ("rock", "scissors"),
        ("paper", "scissors"),
    }
    path = fit.save(tmp_path / "fit.nc")
    assert bd.load(path).data.labels == fit.data.labels  # the fit file keeps them
    out = tmp_path / "pairs.csv"
    res = CliRunner().invoke(main, ["payoffs", str(path), "--pairs", "--out", str(out)])
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(out)
    assert set(csv["agent"]) == set(AGENTS) and set(csv["a"]) == {"rock", "paper", "stay"}
    np.testing.assert_allclose(csv["mean"], frame["mean"])
    npz = tmp_path / "table.npz"
    assert CliRunner().invoke(main, ["payoffs", str(path), "--out", str(npz)]).exit_code == 0
    with np.load(npz) as z:
        labels = json.loads(str(z["labels"]))
    assert labels == {"agent_labels": list(AGENTS), "action_labels": [list(a) for a in ACTIONS]}
