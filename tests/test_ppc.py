"""Posterior-predictive checks in behaviour space (action frequencies, switching rates).

Under a correct model the observed switching rate and the simulated ones are draws of one
distribution, so (obs - mean_sim) / sd_sim is ~N(0, 1 + 1/D); we require |z| < Z with the
suite-wide budget 1e-3 over ~20 checks (Z = 4.06) and, for the misfit, |z| > Z.
"""

from __future__ import annotations

from statistics import NormalDist

import jax
import matplotlib
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import BehaviourCheck, Posterior, ppc_behaviour
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.ppc import behaviour_statistics
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors, free_from_table

matplotlib.use("Agg")
Z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20))
LEARNER = bd.LogitQ(0.3, 3.0, 0.05)


@pytest.fixture(scope="module")
def setting():
    mech = mechanisms.Tabular((2, 3))
    params = {"table": jax.random.normal(jax.random.key(4), (2, 3, 2)) * 1.5}
    data = bd.simulate(mech, params, LEARNER, 20, 20, 1)
    spec = ModelSpec.build(data, mech, LEARNER, Priors())
    sites = {k: np.asarray(v)[None] for k, v in free_from_table(mech, params["table"]).items()}
    det = deterministic_sites(spec, sites)
    post = Posterior(
        build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()}, log_likelihood=False),
        spec,
        "map",
    )
    return mech, params, data, post


def _z(check: BehaviourCheck) -> np.ndarray:
    sim = check.simulated_switching
    return (check.observed_switching - sim.mean(0)) / sim.std(0)


def test_statistics_by_hand():
    actions = np.array([[[0], [1], [1], [0]], [[2], [2], [0], [0]]])  # M=2, T=4, n=1
    freq, switch = behaviour_statistics(actions, np.array([4, 2]), (3,))
    np.testing.assert_allclose(freq[0, 0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(freq[2, 0], [0.0, 1.0, 0.0])  # episode 2 ended: only episode 1 counts
    # transitions: episode 1: 0->1 (switch), 1->1, 1->0 (switch); episode 2: 2->2
    np.testing.assert_allclose(switch, [2 / 4])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_correct_fit_passes_and_different_switching_is_detected(setting, tmp_path):
    mech, params, data, post = setting
    check = post.ppc_behaviour(n_draws=300, seed=0)
    assert check.simulated_frequencies.shape == (300, 20, 2, 3)
    assert np.all(np.abs(_z(check)) < Z), _z(check)
    assert not check.switching_outside.any() and not check.misfit
    assert np.all(check.frequency_coverage > 0.75)
    # the same game played by agents that explore 80% of the time switch far more often
    jumpy = bd.simulate(mech, params, LEARNER.replace(eps=0.8), 20, 20, 2)
    bad = ppc_behaviour(post, n_draws=300, seed=0, data=jumpy)
    assert np.all(_z(bad) > Z), _z(bad)
    assert bad.switching_outside.all() and bad.misfit
    assert np.all(bad.switching_p_values < 0.01)
    table = bad.summary()
    assert list(table.columns)[:2] == ["switching_observed", "switching_mean"] and len(table) == 2
    fig = check.plot()
    assert len(fig.axes) == 4  # 2 agents x (frequencies, switching)
    path = check.save(tmp_path / "ppc.png")
    assert path.stat().st_size > 1000


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_ppc_errors_and_cli(setting, tmp_path):
    _, _, data, post = setting
    with pytest.raises(ValueError, match="prob must lie"):
        post.ppc_behaviour(prob=1.5)
    with pytest.raises(ValueError, match="fitted shape"):
        ppc_behaviour(post, data=bd.Trajectories(data.actions[:5], data.n_actions))
    from click.testing import CliRunner

    from bayes_diml.cli import main

    fit_path = post.save(tmp_path / "fit.nc")
    res = CliRunner().invoke(
        main, ["ppc", str(fit_path), "--out", str(tmp_path / "p.png"), "--draws", "50", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.png").exists() and '"switching_p_value"' in res.output
    res = CliRunner().invoke(main, ["ppc", str(fit_path), "--out", str(tmp_path / "p.txt")])
    assert res.exit_code != 0 and "suffix" in res.output
