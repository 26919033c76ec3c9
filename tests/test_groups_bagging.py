"""Bagged grouped fits: the bootstrap resamples episodes within each group."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference.bagging import bootstrap_indices, stratified_indices

K = (2, 2)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)


def test_stratified_indices_keep_every_group_and_its_size():
    groups = np.array([0, 0, 0, 1, 1, 2, 0, 1, 2, 2, 2])
    idx = stratified_indices(jax.random.key(0), groups, 50)
    assert idx.shape == (50, groups.size) and np.all(np.diff(idx, axis=1) >= 0)
    for row in idx:
        np.testing.assert_array_equal(np.bincount(groups[row], minlength=3), np.bincount(groups))
    # a draw with replacement: repeats occur, and every episode is drawn somewhere
    assert any(len(set(row)) < row.size for row in idx) and set(idx.ravel()) == set(range(groups.size))
    np.testing.assert_array_equal(idx, stratified_indices(jax.random.key(0), groups, 50))
    # the plain bootstrap loses whole groups: the negative control of what stratifying prevents
    plain = bootstrap_indices(jax.random.key(0), groups.size, 200)
    assert any(np.bincount(groups[row], minlength=3).min() == 0 for row in plain)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # tiny bags
def test_a_bagged_grouped_fit_pools_bags_that_all_hold_every_group():
    tab = mechanisms.Tabular(K)
    table = np.asarray(tab.init(jax.random.key(3))["table"])
    parts = [
        bd.simulate(tab, {"table": table + d}, LEARNER, n_episodes=e, T=10, key=j)
        for j, (d, e) in enumerate([(0.0, 5), (0.5, 2)])
    ]
    data = bd.Trajectories.concat(parts, groups=["A", "B"])
    mech = mechanisms.GroupedTabular(K, data.group_names)
    post = bd.fit(data, mech, bd.LogitQ("infer", 2.0, 0.05), method="nuts", seed=0, progress=False,
                  robust="bagging", n_bags=2, num_warmup=40, num_samples=20, num_chains=1)  # fmt: skip
    idx = np.asarray(post.info["bag_indices"])
    assert idx.shape == (2, data.n_episodes)
    for row in idx:
        np.testing.assert_array_equal(np.bincount(data.group_index[row]), [5, 2])
    assert post.idata["posterior"].sizes["chain"] == 2
    frame = post.contrast("B", "A", prob=0.9)
    assert len(frame) == 2 * 4 and np.all(frame["lower"] <= frame["upper"])
    with pytest.raises(ValueError, match="bag_size"):
        bd.fit(data, mech, bd.LogitQ("infer", 2.0, 0.05), method="nuts", robust="bagging", n_bags=2,
               bag_size=3, progress=False)  # fmt: skip
