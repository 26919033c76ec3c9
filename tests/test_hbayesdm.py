"""hBayesDM-format bandit files: the reader, its errors, the shipped example and the command line."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml.bandit import (
    EXAMPLE_TRUTH,
    example_bandit_path,
    example_hbayesdm_path,
    load_bandit_csv,
    make_hbayesdm_example,
    read_hbayesdm,
)
from bayes_diml.cli import main
from bayes_diml.data import DataError


def _write(path, text: str):
    path.write_text(text)
    return path


def test_rows_are_trials_in_file_order_and_subjects_are_ragged(tmp_path):
    # subjects interleaved; a trial column that disagrees with the row order is ignored
    rows = ["subjID\ttrial\tchoice\toutcome", "b\t9\t2\t1", "a\t1\t1\t0", "b\t1\t1\t0", "a\t2\t2\t"]
    text = "\n".join([*rows, "b\t3\t2\t1", "b\t4\t1\t0", ""])
    data = read_hbayesdm(_write(tmp_path / "d.txt", text))
    assert data.n_actions == (2,) and data.n_episodes == 2  # subjects in sorted order: a, b
    np.testing.assert_array_equal(data.lengths, [2, 4])
    np.testing.assert_array_equal(data.actions[0, :2, 0], [0, 1])
    np.testing.assert_array_equal(data.actions[1, :, 0], [1, 0, 1, 0])
    np.testing.assert_array_equal(data.payoffs[1, :, 0], [1.0, 0.0, 1.0, 0.0])
    assert data.payoffs[0, 0, 0] == 0.0 and np.isnan(data.payoffs[0, 1, 0])  # an empty outcome: unobserved
    assert read_hbayesdm(tmp_path / "d.txt", n_arms=4).n_actions == (4,)
    assert not read_hbayesdm(tmp_path / "d.txt", outcome=None).has_payoffs
    assert bd.read_hbayesdm is read_hbayesdm


@pytest.mark.parametrize(
    "text, options, match",
    [
        ("", {}, r"the file is empty"),
        ("subjID\tchoice\toutcome\n", {}, r"the table has no rows"),
        ("subjID\tchoice\n1\t1\n1\t2\n", {}, r"missing column\(s\) \['outcome'\]"),
        ("subjID,choice,outcome\n1,1,0\n1,2,1\n", {}, r"missing column.*\(is it tab-separated\?\)"),
        ("subjID\tchoice\toutcome\n1\t1.5\t0\n1\t2\t1\n", {}, r"'choice' must hold integers; row 0 has 1\.5"),
        ("subjID\tchoice\toutcome\n1\tleft\t0\n1\t2\t1\n", {}, r"'choice' must hold integers"),
        ("subjID\tchoice\toutcome\n1\t0\t0\n1\t2\t1\n", {}, r"choice = 0 is below 1.*numbers choices from 1"),
        ("subjID\tchoice\toutcome\n1\t1\t0\n1\t3\t1\n", {"n_arms": 2}, r"row 1: choice = 3 is not one of 2"),
        ("subjID\tchoice\toutcome\n1\t1\tx\n1\t2\t1\n", {}, r"column 'outcome' must be numeric"),
        ("subjID\tchoice\toutcome\n1\t1\t0\n2\t2\t1\n", {}, r"every subject has a single trial"),
    ],
)
def test_errors_name_the_problem(tmp_path, text, options, match):
    path = _write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError, match=match) as info:
        read_hbayesdm(path, **options)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"no hBayesDM data at"):
        read_hbayesdm(tmp_path / "none.txt")


def test_shipped_example_is_the_csv_example_in_hbayesdm_format(tmp_path):
    path = example_hbayesdm_path()
    assert make_hbayesdm_example(tmp_path / "again.txt").read_text() == path.read_text()
    data = read_hbayesdm(path)
    np.testing.assert_array_equal(data.lengths, [30, 24, 30, 18, 27, 30])
    full = load_bandit_csv(example_bandit_path(), one_based=True)
    for m, n in enumerate(data.lengths):
        np.testing.assert_array_equal(data.actions[m, :n], full.actions[m, :n])
        np.testing.assert_array_equal(data.payoffs[m, :n], full.payoffs[m, :n])
    frame = pd.read_csv(path, sep="\t")
    assert list(frame.columns) == ["subjID", "trial", "choice", "outcome"] and frame["choice"].min() == 1


def test_bandit_command_reads_hbayesdm_text(tmp_path):
    out = tmp_path / "b.npz"
    res = CliRunner().invoke(main, ["bandit", str(example_hbayesdm_path()), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "6 subjects, 159 trials (up to 30 each), 3 arms" in res.output
    np.testing.assert_array_equal(bd.load_trajectories(out).lengths, [30, 24, 30, 18, 27, 30])
    other = tmp_path / "data.dat"  # another suffix: --format hbayesdm
    other.write_text(example_hbayesdm_path().read_text())
    res = CliRunner().invoke(main, ["bandit", str(other), "--format", "hbayesdm", "--out", str(out)])
    assert res.exit_code == 0, res.output
    args = ["bandit", str(other), "--trial", "trial", "--format", "hbayesdm", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "trials are in row order" in res.output


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_fit_command_fits_the_shipped_hbayesdm_file(tmp_path):
    """`bayes-diml fit example.txt`: MAP arm payoffs near the rewards' generating means."""
    out = tmp_path / "fit.nc"
    args = ["fit", str(example_hbayesdm_path()), "--mechanism", "bandit", "--out", str(out), "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAP convergence warnings are not the point here
        res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    post = bd.load(out)
    w = post.draws("mech.weights").mean(0)
    # 159 rewards with noise sd 0.3: every arm mean within 0.2 of the truth, and their order right
    assert np.all(np.abs(w - np.asarray(EXAMPLE_TRUTH["arm_means"])) < 0.2), w
    assert np.all(np.diff(w) > 0), w
    bad = CliRunner().invoke(main, [*args, "--n-actions", "3,3"])
    assert bad.exit_code != 0 and "hBayesDM data have one agent" in bad.output


def test_sessions_are_episodes_grouped_by_subject(tmp_path):
    rows = ["subjID\tblock\tchoice\toutcome", "b\t1\t2\t1", "a\t2\t1\t0", "a\t1\t2\t1", "b\t1\t1\t0"]
    rows += ["a\t2\t2\t1", "a\t1\t1\t0", "b\t2\t1\t0", "b\t2\t2\t1", ""]
    path = _write(tmp_path / "s.txt", "\n".join(rows))
    data = read_hbayesdm(path, session="block")
    # episodes (a, 1), (a, 2), (b, 1), (b, 2); each session's trials in row order
    np.testing.assert_array_equal(data.subjects, [0, 0, 1, 1])
    np.testing.assert_array_equal(data.actions[:, :, 0], [[1, 0], [0, 1], [1, 0], [0, 1]])
    assert read_hbayesdm(path).subjects is None and read_hbayesdm(path).n_episodes == 2
    with pytest.raises(DataError, match=r"missing column\(s\) \['session'\]"):
        read_hbayesdm(path, session="session")
