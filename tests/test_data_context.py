"""Episode-level context of ``Trajectories``: ``groups``, ``covariates`` and ``covariate_names``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayes_diml as bd
from bayes_diml.data import DataError

M = 4


def _data(**context) -> bd.Trajectories:
    rng = np.random.default_rng(3)
    actions = rng.integers(0, 2, size=(M, 3, 2))
    payoffs = rng.normal(size=(M, 3, 2))
    return bd.Trajectories(actions, (2, 2), lengths=[3, 2, 3, 1], payoffs=payoffs, **context)


def _full() -> bd.Trajectories:
    cov = np.array([[0.5, 1.0], [-1.25, 2.0], [3.0, 0.1], [1 / 3, -7.0]])
    return _data(groups=["b", "a", "b", "c"], covariates=cov, covariate_names=("age", "dose"))


def _assert_same(got: bd.Trajectories, want: bd.Trajectories) -> None:
    np.testing.assert_array_equal(got.actions[:, : want.n_steps], want.actions[:, : got.n_steps])
    np.testing.assert_array_equal(got.lengths, want.lengths)
    assert got.groups is not None and got.groups.dtype.kind == "U"
    np.testing.assert_array_equal(got.groups, want.groups)
    assert got.covariates is not None and got.covariates.dtype == np.float64
    np.testing.assert_array_equal(got.covariates, want.covariates)  # exact, not approximate
    assert got.covariate_names == want.covariate_names


# ------------------------------------------------------------------ construction
def test_groups_and_covariates_are_stored_and_described():
    data = _full()
    assert data.groups.dtype.kind == "U" and data.groups.tolist() == ["b", "a", "b", "c"]
    assert data.group_names == ("a", "b", "c") and data.n_groups == 3
    np.testing.assert_array_equal(data.group_index, [1, 0, 1, 2])
    assert data.group_index.dtype.kind == "i"
    np.testing.assert_array_equal(data.episodes_of("b"), [0, 2])
    np.testing.assert_array_equal(data.episodes_of("c"), [3])
    assert data.n_covariates == 2 and data.covariate_names == ("age", "dose")
    assert data.covariates.dtype == np.float64 and data.covariates.shape == (M, 2)
    assert "3 groups" in repr(data) and "2 covariates" in repr(data)


def test_defaults_without_context():
    data = _data()
    assert data.groups is None and data.covariates is None and data.covariate_names is None
    assert data.group_names == () and data.n_groups == 0 and data.n_covariates == 0
    assert "groups" not in repr(data) and "covariates" not in repr(data)
    with pytest.raises(DataError, match="no groups"):
        _ = data.group_index
    with pytest.raises(DataError, match="no groups"):
        data.episodes_of("a")


def test_int_groups_become_str_and_1d_covariates_one_column():
    data = _data(groups=np.array([2, 10, 2, 10]), covariates=np.array([1, 2, 3, 4]))
    assert data.groups.dtype.kind == "U" and data.groups.tolist() == ["2", "10", "2", "10"]
    assert data.group_names == ("10", "2")  # sorted as text
    np.testing.assert_array_equal(data.episodes_of(10), [1, 3])  # an int label is read as its str
    assert data.covariates.shape == (M, 1) and data.covariates.dtype == np.float64
    assert data.covariate_names == ("x0",)
    assert _data(groups=[1, "a", 1, "a"]).group_names == ("1", "a")
    assert _data(covariates=np.zeros((M, 3))).covariate_names == ("x0", "x1", "x2")


def test_unknown_group_lists_the_known_ones():
    with pytest.raises(DataError, match=r"unknown group 'z'; the groups are \['a', 'b', 'c'\]"):
        _full().episodes_of("z")


BAD = [
    ({"groups": ["a", "b", "a"]}, r"groups must have shape \(M,\) = \(4,\), one per episode; got \(3,\)"),
    ({"groups": [["a", "b", "a", "b"]]}, r"groups must have shape \(M,\) = \(4,\)"),
    ({"groups": ["a", "", "a", "b"]}, r"groups\[1\] is an empty string"),
    ({"groups": ["a", None, "a", "b"]}, r"groups\[1\] is missing \(None\)"),
    ({"groups": ["a", "b", np.nan, "b"]}, r"groups\[2\] is missing \(nan\)"),
    ({"groups": np.array([1.0, np.nan, 1.0, 2.0])}, r"groups\[1\] is missing \(nan\)"),
    ({"groups": [0.5, 1.5, 0.5, 1.5]}, r"groups\[0\] = 0\.5 is not a group label"),
    ({"groups": [True, False, True, False]}, r"groups\[0\] = True is not a group label"),
    (
        {"covariates": [[0.0], [np.nan], [1.0], [2.0]], "covariate_names": ["age"]},
        r"covariates\[1, 0\] is nan \(episode 1, column 'age'\); covariates must be finite",
    ),
    (
        {"covariates": [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, np.inf]]},
        r"covariates\[3, 1\] is inf \(episode 3, column 'x1'\)",
    ),
    ({"covariates": np.zeros((3, 2))}, r"covariates must have shape \(M, C\) = \(4, C\).*got \(3, 2\)"),
    ({"covariates": np.zeros((M, 0))}, r"C >= 1"),
    ({"covariates": np.zeros((M, 2, 1))}, r"got \(4, 2, 1\)"),
    ({"covariates": np.array(["a"] * M)}, r"covariates must be a float array; got dtype <U1"),
    ({"covariate_names": ("age",)}, r"covariate_names is given without covariates"),
    (
        {"covariates": np.zeros((M, 2)), "covariate_names": ("age",)},
        r"covariate_names has 1 names but .* C = 2",
    ),
    ({"covariates": np.zeros((M, 2)), "covariate_names": ("a", "a")}, r"distinct; 'a' appears twice"),
    ({"covariates": np.zeros((M, 2)), "covariate_names": ("a", "")}, r"non-empty str; got ''"),
    ({"covariates": np.zeros((M, 1)), "covariate_names": (3,)}, r"non-empty str; got 3"),
    ({"covariates": np.zeros((M, 2)), "covariate_names": "ab"}, r"must be a sequence of 2 str"),
    (
        {"covariates": np.zeros((M, 1)), "covariate_names": ("group",)},
        r"'group' is a column of the long format",
    ),
]


@pytest.mark.parametrize("context, match", BAD)
def test_bad_context_is_refused(context, match):
    with pytest.raises(DataError, match=match):
        _data(**context)


# ------------------------------------------------------------------ selection
def test_subset_and_split_keep_the_context():
    data = _full()
    part = data.subset([3, 0])
    assert part.groups.tolist() == ["c", "b"] and part.group_names == ("b", "c")
    np.testing.assert_array_equal(part.covariates, data.covariates[[3, 0]])
    assert part.covariate_names == ("age", "dose")
    train, test = data.split(0.5, seed=1)
    perm = np.random.default_rng(1).permutation(M)  # split's own permutation: test = perm[:2]
    for piece, idx in ((train, np.sort(perm[2:])), (test, np.sort(perm[:2]))):
        assert piece.groups.dtype.kind == "U" and piece.covariate_names == ("age", "dose")
        np.testing.assert_array_equal(piece.groups, data.groups[idx])
        np.testing.assert_array_equal(piece.covariates, data.covariates[idx])
        np.testing.assert_array_equal(piece.actions, data.subset(idx).actions)


# ------------------------------------------------------------------ files
def test_npz_round_trip_is_exact_and_never_pickles(tmp_path):
    data = _full()
    path = data.save(tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as z:
        assert z["groups"].dtype.kind == "U" and z["groups"].tolist() == ["b", "a", "b", "c"]
        assert z["covariate_names"].tolist() == ["age", "dose"]
        np.testing.assert_array_equal(z["covariates"], data.covariates)
    back = bd.load_trajectories(path)
    _assert_same(back, data)
    assert bd.Trajectories.load(path, group_by="group", covariates=["age", "dose"]).n_groups == 3


def test_npz_refuses_options_that_do_not_match(tmp_path):
    path = _full().save(tmp_path / "d.npz")
    with pytest.raises(DataError, match=r"group_by='arm' does not match"):
        bd.load_trajectories(path, group_by="arm")
    with pytest.raises(DataError, match=r"stores its own covariates \['age', 'dose'\]; covariates=\['age'\]"):
        bd.load_trajectories(path, covariates=["age"])
    plain = _data().save(tmp_path / "plain.npz")
    with pytest.raises(DataError, match=r"the file has no groups"):
        bd.Trajectories.load(plain, group_by="group")
    assert bd.load_trajectories(plain).groups is None


def test_csv_round_trip_with_named_covariates(tmp_path):
    data = _full()
    path = data.save(tmp_path / "d.csv")
    frame = pd.read_csv(path)
    assert {"group", "age", "dose"} <= set(frame.columns)
    back = bd.load_trajectories(path, covariates=["age", "dose"])
    _assert_same(back, data)
    np.testing.assert_array_equal(back.payoffs, data.payoffs[:, : back.n_steps])
    alone = bd.load_trajectories(path)  # the group column is found by name; covariates must be named
    assert alone.groups.tolist() == data.groups.tolist() and alone.covariates is None


def test_csv_keeps_text_group_labels_that_look_like_numbers(tmp_path):
    data = _data(groups=["01", "1", "01", "1"])
    back = bd.load_trajectories(data.save(tmp_path / "d.csv"))
    assert back.groups.tolist() == ["01", "1", "01", "1"]


def test_parquet_round_trip_records_covariates_and_verifies_the_checksum(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = _full()
    path = data.save(tmp_path / "d.parquet")
    back = bd.load_trajectories(path)  # nothing named: the metadata records the covariates
    _assert_same(back, data)
    assert back.group_names == ("a", "b", "c")
    # negative control: an edited group label or covariate no longer matches the checksum
    import pyarrow as pa

    table = pq.read_table(path)
    for col, change in (("group", lambda v: "z" if v == "a" else v), ("dose", lambda v: v + 1.0)):
        frame = table.to_pandas()
        frame[col] = [change(v) for v in frame[col]]
        edited = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
            table.schema.metadata
        )
        pq.write_table(edited, tmp_path / "e.parquet")
        with pytest.raises(DataError, match="does not match the checksum"):
            bd.load_trajectories(tmp_path / "e.parquet")


def test_parquet_without_context_still_round_trips(tmp_path):
    pytest.importorskip("pyarrow")
    data = _data()
    back = bd.load_trajectories(data.save(tmp_path / "d.parquet"))
    assert back.groups is None and back.covariates is None
    np.testing.assert_array_equal(back.actions, data.actions)


# ------------------------------------------------------------------ long frames
def _frame() -> pd.DataFrame:
    """The long table of :func:`_full`, its group column renamed ``arm``."""
    return _full().to_frame().rename(columns={"group": "arm"})


def test_from_frame_with_a_custom_group_column():
    back = bd.Trajectories.from_frame(_frame(), group_by="arm", covariates=["dose"])
    assert back.groups.tolist() == ["b", "a", "b", "c"]
    np.testing.assert_array_equal(back.covariates[:, 0], _full().covariates[:, 1])
    assert back.covariate_names == ("dose",)
    assert bd.Trajectories.from_frame(_frame()).groups is None  # 'arm' is not read unless named
    assert bd.Trajectories.from_frame(_frame(), covariates="age").covariate_names == ("age",)


def test_from_frame_refuses_absent_and_non_numeric_columns():
    with pytest.raises(DataError, match=r"no column\(s\) \['team'\]; the table has columns \['episode', 't'"):
        bd.Trajectories.from_frame(_frame(), group_by="team")
    with pytest.raises(DataError, match=r"no column\(s\) \['weight'\].*'arm', 'age', 'dose'\]"):
        bd.Trajectories.from_frame(_frame(), covariates=["age", "weight"])
    with pytest.raises(DataError, match=r"covariate column 'arm' must be numeric"):
        bd.Trajectories.from_frame(_frame(), covariates=["arm"])
    frame = _frame()
    frame.loc[2, "arm"] = None
    with pytest.raises(DataError, match=r"column 'arm' \(row 2\) is missing"):
        bd.Trajectories.from_frame(frame, group_by="arm")


def test_group_varying_within_an_episode_is_refused():
    frame = _frame()
    ep = frame["episode"].to_numpy()
    row = int(np.flatnonzero(ep == 2)[1])  # second row of episode 2
    varied = frame.copy()
    varied.loc[row, "arm"] = "a"
    with pytest.raises(
        DataError, match=r"column 'arm' varies within episode 2 \(row \d+ holds 'b', row \d+ holds 'a'\)"
    ):
        bd.Trajectories.from_frame(varied, group_by="arm")
    # negative control: the same frame with the group constant is accepted
    assert bd.Trajectories.from_frame(frame, group_by="arm").groups.tolist() == ["b", "a", "b", "c"]


def test_covariate_varying_within_an_episode_is_refused_and_labels_are_named():
    frame = _frame()
    frame["episode"] = frame["episode"].map({0: "e0", 1: "e1", 2: "e2", 3: "e3"})
    varied = frame.copy()
    varied.loc[int(np.flatnonzero(frame["episode"] == "e1")[-1]), "dose"] = 99.0
    with pytest.raises(DataError, match=r"column 'dose' varies within episode 'e1'"):
        bd.Trajectories.from_frame(varied, covariates=["age", "dose"])
    back = bd.Trajectories.from_frame(frame, covariates=["age", "dose"])
    np.testing.assert_array_equal(back.covariates, _full().covariates)


def test_csv_load_passes_group_by_and_refuses_a_varying_group(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "arm.csv", index=False)
    back = bd.load_trajectories(tmp_path / "arm.csv", group_by="arm", covariates=["age"])
    assert back.groups.tolist() == ["b", "a", "b", "c"] and back.covariate_names == ("age",)
    frame.loc[1, "arm"] = "x"  # episode 0, second row
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: column 'arm' varies within episode 0"):
        bd.load_trajectories(tmp_path / "bad.csv", group_by="arm")


# ------------------------------------------------------------------ concat
def _arm(seed: int, M: int, T: int, **kw) -> bd.Trajectories:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=M)
    return bd.Trajectories(rng.integers(0, 3, size=(M, T, 2)), (3, 3), lengths=lengths, **kw)


def test_concat_with_groups_stacks_the_episodes():
    a, b = _arm(0, 3, 5), _arm(1, 4, 5)
    both = bd.Trajectories.concat([a, b], groups=["control", "treated"])
    np.testing.assert_array_equal(both.actions, np.concatenate([a.actions, b.actions]))
    np.testing.assert_array_equal(both.lengths, np.concatenate([a.lengths, b.lengths]))
    assert both.groups.tolist() == ["control"] * 3 + ["treated"] * 4
    np.testing.assert_array_equal(both.episodes_of("treated"), [3, 4, 5, 6])
    assert both.payoffs is None and both.subjects is None


def test_concat_pads_to_the_longest_and_keeps_context():
    cov = {"covariate_names": ("age",)}
    a = _arm(0, 2, 3, payoffs=np.ones((2, 3, 2)), covariates=[1.0, 2.0], groups=["x", "x"], **cov)
    b = _arm(1, 3, 6, payoffs=np.zeros((3, 6, 2)), covariates=[3.0, 4.0, 5.0], groups=["y", "z", "y"], **cov)
    both = bd.Trajectories.concat([a, b])
    assert both.n_steps == 6 and both.n_episodes == 5
    np.testing.assert_array_equal(both.actions[:2, :3], a.actions)
    np.testing.assert_array_equal(both.actions[2:], b.actions)
    np.testing.assert_array_equal(both.lengths, np.concatenate([a.lengths, b.lengths]))
    assert both.groups.tolist() == ["x", "x", "y", "z", "y"]
    np.testing.assert_array_equal(both.covariates[:, 0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert both.covariate_names == ("age",)
    assert np.isnan(both.payoffs[:2, 3:]).all()
    relabelled = bd.Trajectories.concat([a, b], groups=["p", "q"])  # groups= replaces the parts' own
    assert relabelled.group_names == ("p", "q")


def test_concat_labels_and_subjects():
    names = {"agent_labels": ("row", "col"), "action_labels": ("r", "p", "s")}
    a, b = _arm(0, 2, 4, subjects=[5, 6], **names), _arm(1, 2, 4, subjects=[1, 1], **names)
    both = bd.Trajectories.concat([a, b])
    assert both.agent_labels == ("row", "col") and both.action_labels == a.action_labels
    np.testing.assert_array_equal(both.subjects, [0, 1, 2, 2])  # parts' subjects are distinct
    mixed = bd.Trajectories.concat([a, _arm(1, 2, 4, agent_labels=("row", "col"))])
    assert mixed.agent_labels == ("row", "col") and mixed.action_labels is None and mixed.subjects is None


CONCAT_BAD = [
    (lambda: [_arm(0, 2, 3), bd.Trajectories(np.zeros((1, 3, 2), int), (3, 2))], r"parts\[1\] has n_actions"),
    (
        lambda: [_arm(0, 2, 3, payoffs=np.ones((2, 3, 2))), _arm(1, 2, 3)],
        r"parts \[0\] have payoffs but parts \[1\]",
    ),
    (
        lambda: [_arm(0, 2, 3, groups=["a", "a"]), _arm(1, 2, 3)],
        r"parts \[0\] have groups but parts \[1\] do not",
    ),
    (
        lambda: [_arm(0, 2, 3), _arm(1, 2, 3, covariates=[1.0, 2.0])],
        r"parts \[1\] have covariates but parts \[0\]",
    ),
    (
        lambda: [
            _arm(0, 2, 3, covariates=[1.0, 2.0]),
            _arm(1, 2, 3, covariates=[1.0, 2.0], covariate_names=["a"]),
        ],
        r"parts\[1\] has covariates \['a'\] but parts\[0\] has \['x0'\]",
    ),
    (lambda: [], r"non-empty sequence of Trajectories"),
    (lambda: [_arm(0, 2, 3), "x"], r"parts\[1\] is a str"),
]


@pytest.mark.parametrize("parts, match", CONCAT_BAD)
def test_concat_refuses_mismatched_parts(parts, match):
    with pytest.raises(DataError, match=match):
        bd.Trajectories.concat(parts())


def test_concat_refuses_bad_groups():
    a, b = _arm(0, 2, 3), _arm(1, 2, 3)
    with pytest.raises(DataError, match=r"groups has 3 labels for 2 parts"):
        bd.Trajectories.concat([a, b], groups=["x", "y", "z"])
    with pytest.raises(DataError, match=r"groups must be a sequence of one label per part"):
        bd.Trajectories.concat([a, b], groups="xy")
    with pytest.raises(DataError, match=r"groups\[1\] is an empty string"):
        bd.Trajectories.concat([a, b], groups=["x", ""])


def test_parquet_metadata_with_malformed_covariate_names_is_refused(tmp_path):
    pytest.importorskip("pyarrow")
    import json

    import pyarrow.parquet as pq

    path = _full().save(tmp_path / "d.parquet")
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    ours = json.loads(meta[b"bayes_diml"])
    assert ours["covariate_names"] == ["age", "dose"]
    meta[b"bayes_diml"] = json.dumps(ours | {"covariate_names": "age"}).encode()
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="malformed covariate names"):
        bd.load_trajectories(tmp_path / "bad.parquet")


def test_hand_written_parquet_with_a_group_column(tmp_path):
    pytest.importorskip("pyarrow")
    _frame().to_parquet(tmp_path / "h.parquet")  # no bayes_diml metadata
    back = bd.load_trajectories(tmp_path / "h.parquet", group_by="arm", covariates=["age"])
    assert back.groups.tolist() == ["b", "a", "b", "c"]
    np.testing.assert_array_equal(back.covariates[:, 0], _full().covariates[:, 0])
