"""Payoff-blind nulls: exact conjugate draws and per-episode log-likelihood against literal loops."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml.inference.nulls import NULL_KINDS, fit_null, null_counts, null_terms


def literal_log_likelihood(data: bd.Trajectories, kind: str, profiles: np.ndarray, probs: np.ndarray):
    """Loop over draws, episodes, scored steps t = 1..length-1 and agents; float[D, M]."""
    rows = {tuple(int(v) for v in p): j for j, p in enumerate(profiles)}
    out = np.zeros((probs.shape[0], data.n_episodes))
    for d in range(probs.shape[0]):
        for m in range(data.n_episodes):
            for t in range(1, int(data.lengths[m])):
                prev = tuple(int(v) for v in data.actions[m, t - 1])
                j = 0 if kind == "stationary" else rows[prev]
                for i in range(data.n_agents):
                    out[d, m] += np.log(probs[d, j, i, data.actions[m, t, i]])
    return out


@pytest.mark.parametrize("kind", NULL_KINDS)
def test_null_log_likelihood_matches_literal_loop(kind, ragged_data):
    data = ragged_data((2, 3))  # lengths 7, 4, 1, 6: one episode with nothing scored
    fit = fit_null(data, kind, jax.random.key(0), num_draws=25)
    ref = literal_log_likelihood(data, kind, fit.profiles, fit.probs)
    got = fit.episode_ll.values[0]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert np.all(got[:, 2] == 0.0)  # a length-1 episode has no scored action
    assert fit.episode_ll.dims == ("chain", "draw", "episode")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("kind", NULL_KINDS)
def test_null_draws_are_the_conjugate_dirichlet(kind):
    """Posterior means match (1 + counts) / (K_i + n_i): the exact Dirichlet posterior."""
    rng = np.random.default_rng(1)
    actions = np.stack([rng.integers(0, 2, (6, 9)), rng.integers(0, 3, (6, 9))], axis=-1)
    data = bd.Trajectories(actions, (2, 3), lengths=[9, 9, 5, 9, 2, 9])
    fit = fit_null(data, kind, jax.random.key(3), num_draws=20_000)
    terms = null_terms(data, kind)
    counts = null_counts(data, terms)
    assert counts.sum() == data.n_scored  # exactly the observations the learning models score
    K = np.array([[1, 1, 0], [1, 1, 1]], dtype=float)  # agent 0 has 2 actions, agent 1 has 3
    alpha = (1.0 + counts) * K
    mean = alpha / alpha.sum(-1, keepdims=True)
    sd = np.sqrt(mean * (1 - mean) / (alpha.sum(-1, keepdims=True) + 1))
    se = sd / np.sqrt(fit.n_draws)
    assert np.all(np.abs(fit.probs.mean(0) - mean) <= 5 * se + 1e-12)
    assert np.all(fit.probs[:, :, 0, 2] == 0.0)  # agent 0's padded action
    np.testing.assert_allclose(fit.probs.sum(-1), 1.0, rtol=1e-12)


def test_markov_null_beats_stationary_on_sticky_data():
    """Negative control for the stationary null: habit data are predicted better by the Markov null."""
    rng = np.random.default_rng(2)
    M, T = 20, 30
    actions = np.zeros((M, T, 2), dtype=int)
    actions[:, 0] = rng.integers(0, 2, (M, 2))
    for t in range(1, T):
        stay = rng.random((M, 2)) < 0.9
        actions[:, t] = np.where(stay, actions[:, t - 1], 1 - actions[:, t - 1])
    data = bd.Trajectories(actions, (2, 2))
    key = jax.random.key(0)
    sta = fit_null(data, "stationary", key, num_draws=1000).loo()
    mar = fit_null(data, "markov", key, num_draws=1000).loo()
    diff = np.asarray(mar.elpd_i) - np.asarray(sta.elpd_i)
    assert diff.sum() > 4 * np.sqrt(M * diff.var())


def test_unknown_null_is_an_error(ragged_data):
    with pytest.raises(ValueError, match="stationary, markov"):
        fit_null(ragged_data((2, 2)), "uniform", jax.random.key(0))
