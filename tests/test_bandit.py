"""Single-agent bandit data: the long-format CSV loader, the shipped example, recovery.

Recovery uses the suite-wide false-failure budget 1e-3 over ~20 checks:
|posterior mean - truth| / posterior sd < Z = NormalDist().inv_cdf(1 - 1e-3 / 40) = 4.06.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

import bayes_diml as bd
from bayes_diml.bandit import (
    EXAMPLE_TRUTH,
    bandit_from_frame,
    bandit_mechanism,
    example_bandit_path,
    load_bandit_csv,
)
from bayes_diml.data import DataError

Z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20))


def frame(**cols):
    base = {
        "subject": ["b", "b", "b", "a", "a"],
        "trial": [3, 1, 2, 10, 20],
        "choice": [2, 1, 1, 2, 2],
        "reward": [1.0, 0.0, np.nan, 0.5, 1.0],
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_loader_orders_trials_and_handles_ragged_subjects():
    data = bandit_from_frame(frame(), one_based=True)
    assert data.n_actions == (2,) and data.actions.shape == (2, 3, 1)
    np.testing.assert_array_equal(data.lengths, [2, 3])  # subjects sorted: a, b
    np.testing.assert_array_equal(data.actions[1, :, 0], [0, 0, 1])  # b's trials 1, 2, 3
    np.testing.assert_array_equal(data.actions[0, :2, 0], [1, 1])
    assert np.isnan(data.payoffs[1, 1, 0]) and data.payoffs[1, 2, 0] == 1.0  # unobserved reward stays NaN
    no_reward = bandit_from_frame(frame().drop(columns="reward"), reward=None, one_based=True)
    assert no_reward.payoffs is None
    renamed = frame().rename(columns={"subject": "subjID", "choice": "arm"})
    assert bandit_from_frame(renamed, subject="subjID", choice="arm", one_based=True).n_episodes == 2
    assert bandit_from_frame(frame(), one_based=True, n_arms=4).n_actions == (4,)


@pytest.mark.parametrize(
    ("bad", "options", "match"),
    [
        (frame().drop(columns="choice"), {}, r"missing column\(s\) \['choice'\]"),
        (frame(choice=[2, 1, 0, 2, 2]), {"one_based": True}, r"row 2: choice = 0 is below 1"),
        (frame(choice=[2, 1, -1, 2, 2]), {}, r"below 0 \(arms numbered from 1\?"),
        (frame(choice=[2, 1, 1.5, 2, 2]), {}, r"column 'choice' must hold integers; row 2"),
        (frame(choice=[2, 1, 1, 2, 5]), {"n_arms": 3}, r"row 4: choice = 5 is not one of 3 arms"),
        (frame(trial=[1, 1, 2, 10, 20]), {}, r"subject 'b' has trial 1 twice"),
        (frame(choice=[2, 1, None, 2, 2]), {}, r"column 'choice' is empty in row 2"),
        (frame(reward=["x", 0, 0, 0, 0]), {}, r"column 'reward' must be numeric"),
        (frame(subject=list("abcde")), {}, r"every subject has a single trial"),
    ],
)
def test_loader_errors_name_the_problem(bad, options, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=match):
            bandit_from_frame(bad, **options)


def test_zero_based_arms_warning_and_file_errors(tmp_path):
    with pytest.warns(UserWarning, match="one_based=True"):
        bandit_from_frame(frame())  # arms 1, 2 but 0-based: arm 0 never chosen
    with pytest.raises(DataError, match="no bandit data at"):
        load_bandit_csv(tmp_path / "missing.csv")


def test_shipped_example_loads_and_bandit_cli(tmp_path):
    path = example_bandit_path()
    assert path.exists()
    data = load_bandit_csv(path, one_based=True)
    M, T = EXAMPLE_TRUTH["n_subjects"], EXAMPLE_TRUTH["n_trials"]
    assert data.actions.shape == (M, T, 1) and data.n_actions == (3,) and data.has_payoffs
    # the data are what the documented truth generates
    from bayes_diml.bandit import make_example

    assert make_example(tmp_path / "again.csv").read_text() == path.read_text()
    from click.testing import CliRunner

    from bayes_diml.cli import main

    res = CliRunner().invoke(main, ["bandit", str(path), "--one-based", "--out", str(tmp_path / "b.npz")])
    assert res.exit_code == 0, res.output
    assert bd.load_trajectories(tmp_path / "b.npz").actions.shape == (M, T, 1)
    res = CliRunner().invoke(main, ["bandit", str(path), "--choice", "arm", "--out", str(tmp_path / "c.npz")])
    assert res.exit_code != 0 and "missing column(s) ['arm']" in res.output


@pytest.mark.slow
def test_alpha_beta_recovered_on_shipped_data():
    data = load_bandit_csv(example_bandit_path(), one_based=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bd.fit(
            data,
            bandit_mechanism(3),
            None,
            method="nuts",
            seed=0,
            progress=False,
            num_warmup=300,
            num_samples=300,
            num_chains=1,
        )
    for name in ("alpha", "beta"):
        d = post.draws(name)
        assert abs(d.mean() - EXAMPLE_TRUTH[name]) < Z * d.std(), (name, d.mean(), d.std())
    w = post.draws("mech.weights")
    assert np.all(np.abs(w.mean(0) - np.asarray(EXAMPLE_TRUTH["arm_means"])) < Z * w.std(0))
    noise = post.draws("payoff_noise")
    assert abs(noise.mean() - EXAMPLE_TRUTH["reward_sd"]) < Z * noise.std()
