"""Hashed count-vector buckets in ``joint_action_histogram`` / ``cfkl_params`` (the reference's E7 mode).

With many agents (n > 10) the histogram falls back to action-count vectors. Exact count-vector
bins are useless at E7 sizes (n = 40, K = 10: nearly every step has a count vector of its own),
so two simulations of the *same* mechanism have a huge KL. ``buckets=B`` hashes the count vector
into B bins, as the reference does. For two independent samples of N steps each, spread over
many distinct count vectors that a hash scatters over the B buckets, ``N * KL`` is
approximately chi-square with B - 1 degrees of freedom (plug-in KL of two multinomial samples
of the same distribution); the tolerance below is its 1 - 1e-3 quantile.
"""

from __future__ import annotations

from collections import Counter

import jax
import numpy as np
import pytest
from scipy.stats import chi2

from bayes_diml import metrics
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import SymmetricCount
from bayes_diml.simulation import simulate

FALSE_FAILURE_BUDGET = 1e-3
N_AGENTS, K = 40, 10
EPISODES, T = 40, 25  # N = 1,000 steps per histogram
B = 64
LEARNER = LogitQ(0.25, 3.0, 0.06)


def _count_vectors(actions: np.ndarray, k: int) -> np.ndarray:
    flat = actions.reshape(-1, actions.shape[-1])
    return np.stack([np.bincount(row, minlength=k) for row in flat])


def test_hashed_histogram_is_a_function_of_the_count_vector():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, size=(5, 7, 12))  # n = 12 > 10: count-vector mode
    hist = metrics.joint_action_histogram(actions, (3,) * 12, buckets=16)
    assert sum(hist.values()) == 5 * 7
    assert all(isinstance(b, int) and 0 <= b < 16 for b in hist)
    # bucket of each step = hash of its count vector; permuting the agents changes nothing
    vecs = _count_vectors(actions, 3)
    codes = metrics._count_vector_hash(vecs, 16)
    assert hist == dict(Counter(int(c) for c in codes))
    assert metrics.joint_action_histogram(actions[..., rng.permutation(12)], (3,) * 12, buckets=16) == hist
    # pinned values: the hash is the same on every platform and run
    assert metrics._count_vector_hash(np.array([[12, 0, 0], [0, 12, 0], [4, 4, 4]]), 1000).tolist() == [
        311,
        658,
        477,
    ]
    # the exact modes are unchanged when buckets is None, and exact-index games ignore buckets
    assert all(isinstance(k, bytes) for k in metrics.joint_action_histogram(actions, (3,) * 12))
    small = rng.integers(0, 2, size=(3, 4, 2))
    assert metrics.joint_action_histogram(small, (2, 2), buckets=3) == metrics.joint_action_histogram(
        small, (2, 2)
    )


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64"])
def test_bad_buckets(bad):
    with pytest.raises(ValueError, match="buckets must be a positive int"):
        metrics.joint_action_histogram(np.zeros((2, 3, 12), dtype=int), (3,) * 12, buckets=bad)


def test_hash_spreads_distinct_vectors_evenly():
    """The 3,003 count vectors of 10 agents over 6 actions fill the buckets like a uniform draw."""
    from itertools import combinations_with_replacement

    vecs = np.array([np.bincount(c, minlength=6) for c in combinations_with_replacement(range(6), 10)])
    codes = metrics._count_vector_hash(vecs, B)
    observed = np.bincount(codes, minlength=B)
    expected = len(vecs) / B
    stat = float(((observed - expected) ** 2 / expected).sum())
    assert stat < chi2.ppf(1 - FALSE_FAILURE_BUDGET, B - 1)


@pytest.fixture(scope="module")
def e7_like():
    """A random 40-agent, 10-action anonymous game and two independent simulations of it."""
    mech = SymmetricCount(N_AGENTS, K, width=16)
    params = mech.init(jax.random.key(0))
    shifted = LEARNER.scaled(alpha=0.6, beta=1.4, eps=1.5, eps_cap=0.5)
    a1, a2 = (simulate(mech, params, shifted, EPISODES, T, seed).actions for seed in (1, 2))
    return mech, params, a1, a2


def test_two_simulations_of_the_truth_give_a_small_kl_with_buckets(e7_like):
    mech, _, a1, a2 = e7_like
    k = mech.n_actions
    n_steps = EPISODES * T
    exact = metrics.kl_divergence(
        metrics.joint_action_histogram(a1, k), metrics.joint_action_histogram(a2, k)
    )
    hashed = metrics.kl_divergence(
        metrics.joint_action_histogram(a1, k, buckets=B), metrics.joint_action_histogram(a2, k, buckets=B)
    )
    bound = chi2.ppf(1 - FALSE_FAILURE_BUDGET, B - 1) / n_steps  # about 0.057
    assert exact > 3.0  # exact count vectors: almost no shared bins
    assert hashed < bound


def test_buckets_still_detect_concentrated_play(e7_like):
    """Play locked on one count vector falls into one bucket: far outside the same-process band."""
    mech, _, a1, _ = e7_like
    k = mech.n_actions
    locked = np.zeros_like(a1)
    locked[..., : N_AGENTS // 2] = 3  # every step: 20 agents on action 0, 20 on action 3
    kl = metrics.kl_divergence(
        metrics.joint_action_histogram(a1, k, buckets=B), metrics.joint_action_histogram(locked, k, buckets=B)
    )
    assert kl > 10 * chi2.ppf(1 - FALSE_FAILURE_BUDGET, B - 1) / (EPISODES * T)


def test_cfkl_params_passes_buckets():
    """With one bucket every step falls in the same bin: KL exactly 0 for two different mechanisms."""
    mech = SymmetricCount(12, 3, width=8)
    p1, p2 = mech.init(jax.random.key(0)), mech.init(jax.random.key(1))
    assert metrics.cfkl_params(mech, p1, mech, p2, LEARNER, n_episodes=10, T=6, seed=3, buckets=1) == 0.0
