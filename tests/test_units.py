"""Posterior.identified_payoff_differences: centred payoffs at given joint actions in identified units."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms


@pytest.fixture(scope="module")
def small_game():
    mech = mechanisms.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    data = bd.simulate(mech, params, bd.LogitQ(0.3, (1.5, 3.0), 0.05), n_episodes=12, T=15, key=2)
    return mech, data


@pytest.fixture(scope="module")
def confounded(small_game):
    """A MAP with one beta per agent inferred and no observed payoffs: the payoff scale is confounded."""
    mech, data = small_game
    with pytest.warns(bd.inference.ConfoundingWarning):
        return bd.fit(
            data,
            mech,
            bd.LogitQ(0.3, "infer_per_agent", 0.05),
            method="map",
            num_restarts=1,
            seed=0,
            progress=False,
        )


def test_confounded_context_draws_are_beta_times_payoff_per_agent(confounded):
    post = confounded
    assert post.confounded
    rng = np.random.default_rng(0)
    joint = np.stack([rng.integers(0, 2, 40), rng.integers(0, 3, 40)], axis=1)
    agent = rng.integers(0, 2, 40)
    draws, units = post.identified_payoff_differences(joint, agent=agent)
    assert units == "beta x payoff"
    raw = post.payoff_differences(joint, agent=agent)  # [D, S] in the prior's payoff units
    beta = np.asarray(post.learner_draws().beta)  # [D, n]
    assert not np.allclose(beta[:, 0], beta[:, 1], rtol=0.05)  # so a mixed-up agent would show
    np.testing.assert_allclose(draws, raw * beta[:, agent], rtol=1e-6)
    # negative control: the other agent's temperature does not reproduce the draws
    assert not np.allclose(draws, raw * beta[:, 1 - agent], rtol=1e-3)


def test_full_table_agrees_with_identified_payoff_draws(confounded):
    table, units = confounded.identified_payoff_differences()
    reference, ref_units = confounded.identified_payoff_draws()
    assert units == ref_units == "beta x payoff"
    np.testing.assert_allclose(table, reference, rtol=1e-5, atol=1e-6)


def test_identified_scale_stays_payoff_units(small_game):
    mech, data = small_game
    post = bd.fit(
        data, mech, bd.LogitQ(0.3, (1.5, 3.0), 0.05), method="map", num_restarts=1, seed=0, progress=False
    )
    assert not post.confounded
    joint = np.array([[0, 1], [1, 2]])
    draws, units = post.identified_payoff_differences(joint, agent=np.array([0, 1]))
    assert units == "payoff"
    np.testing.assert_array_equal(draws, post.payoff_differences(joint, agent=np.array([0, 1])))
    with pytest.raises(ValueError, match="agent= needs joint"):
        post.identified_payoff_differences(agent=np.array([0]))


def test_suite_draws_are_in_identified_units_unless_asked():
    from types import SimpleNamespace

    from bayes_diml.studies.experiments.fitting import _posterior_fit

    raw = np.arange(6.0).reshape(2, 3)
    seen = {}

    def identified(joint, n_draws, agent):
        seen.update(n_draws=n_draws, agent=agent)
        return raw * 2.0, "beta x payoff"

    post = SimpleNamespace(
        mechanism="m",
        mechanism_params=lambda: "p",
        confounded=True,
        identified_payoff_differences=identified,
        payoff_differences=lambda joint, n_draws, agent: raw,
    )
    fit = _posterior_fit(post, {"final_elbo_loss": 1.0})
    assert fit.info == {"final_elbo_loss": 1.0, "confounded": True}
    np.testing.assert_array_equal(fit.draws(np.zeros((3, 2), int), 2, agent=np.array([0, 1, 0])), raw * 2.0)
    assert seen["n_draws"] == 2 and seen["agent"].tolist() == [0, 1, 0]
    np.testing.assert_array_equal(fit.draws(np.zeros((3, 2), int), 2, identified=False), raw)
