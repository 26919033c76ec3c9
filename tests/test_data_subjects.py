"""``Trajectories.subjects``: episodes grouped by subject (for per-subject learner parameters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayes_diml as bd
from bayes_diml.data import DataError


def _data(subjects=None) -> bd.Trajectories:
    actions = np.arange(4 * 3 * 1).reshape(4, 3, 1) % 2
    return bd.Trajectories(actions, (2,), lengths=[3, 2, 3, 3], subjects=subjects)


def test_default_is_one_subject_per_episode():
    data = _data()
    assert data.subjects is None and data.n_subjects == 4
    np.testing.assert_array_equal(data.subject_index, [0, 1, 2, 3])


def test_labels_become_0_to_S_minus_1_and_follow_subsets():
    data = _data([7, 3, 7, 11])
    np.testing.assert_array_equal(data.subjects, [1, 0, 1, 2])
    assert data.n_subjects == 3 and "3 subjects" in repr(data)
    part = data.subset([0, 2, 3])  # subjects 1, 1, 2 -> renumbered 0, 0, 1
    np.testing.assert_array_equal(part.subjects, [0, 0, 1])
    assert part.n_subjects == 2


BAD = [
    ([0, 1, 2], r"subjects must have shape \(M,\) = \(4,\)"),
    ([0.5, 1, 2, 3], r"subjects\[0\] = 0\.5 is not an integer"),
]


@pytest.mark.parametrize("subjects, match", BAD)
def test_bad_subjects_are_refused(subjects, match):
    with pytest.raises(DataError, match=match):
        _data(subjects)


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".parquet"])
def test_subjects_survive_files(tmp_path, suffix):
    data = _data([2, 0, 2, 1])
    back = bd.load_trajectories(data.save(tmp_path / f"d{suffix}"))
    np.testing.assert_array_equal(back.subjects, data.subjects)
    np.testing.assert_array_equal(back.actions, data.actions)
    assert bd.load_trajectories(_data().save(tmp_path / f"plain{suffix}")).subjects is None


def test_long_format_subject_must_be_constant_within_an_episode():
    frame = _data([2, 0, 2, 1]).to_frame()
    frame.loc[1, "subject"] = 1  # episode 0, step 1
    with pytest.raises(DataError, match=r"episode 0 has more than one subject \(row 1\)"):
        bd.Trajectories.from_frame(frame)
    assert bd.Trajectories.from_frame(pd.DataFrame(frame.drop(columns="subject"))).subjects is None
