"""Simulation-based calibration: rank / coverage bookkeeping, JSON, the vectorised model, CLI, a small SBC.

Statistical checks state their false-failure budget; every seed is fixed, so each test is
deterministic, and each can fail (a miscalibrated posterior must be flagged).
"""

from __future__ import annotations

import importlib
import json
import sys

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.learners import LogitQ
from bayes_diml.models import Priors
from bayes_diml.studies import calibration as cal
from bayes_diml.studies.calibration import runner as cal_runner


def _conjugate_study(n: int, d: int, sd_factor: float, seed: int = 0) -> cal.SBCResult:
    """theta ~ N(0, 1), y ~ N(theta, 1): exact posterior N(y / 2, 1 / 2); draws from
    N(y / 2, sd_factor^2 / 2) (sd_factor = 1: calibrated; < 1: overconfident)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    y = theta + rng.normal(size=n)
    draws = y[:, None] / 2 + sd_factor * np.sqrt(0.5) * rng.normal(size=(n, d))
    ranks = cal.ranks_from_draws(theta, draws, n_ranks=99)
    inside = cal.coverage_from_draws(theta, draws)
    return cal.SBCResult(
        setup={"method": "synthetic"},
        ranks={"theta": ranks},
        inside={"theta": inside},
        truth={"theta": theta},
        identified={"theta": True},
        n_ranks=99,
    )


def test_rank_and_coverage_by_hand():
    draws = np.array([[0.0, 0.25, 0.75, 1.0], [0.0, 0.25, 0.75, 1.0]])
    truth = np.array([0.5, -1.0])
    np.testing.assert_array_equal(cal.ranks_from_draws(truth, draws), [2, 0])
    # thinning keeps evenly spaced draws (first and last): [0, 1] -> ranks 1 and 0
    np.testing.assert_array_equal(cal.ranks_from_draws(truth, draws, n_ranks=2), [1, 0])
    inside = cal.coverage_from_draws(truth, draws, levels=(0.5, 0.95))
    assert inside.tolist() == [[True, True], [False, False]]
    with pytest.raises(ValueError, match="n_ranks"):
        cal.ranks_from_draws(truth, draws, n_ranks=5)
    with pytest.raises(ValueError, match="float\\[N, D\\]"):
        cal.ranks_from_draws(truth, draws[0])


def test_coverage_band_is_the_binomial_acceptance_region():
    for n, p in ((100, 0.9), (40, 0.5), (250, 0.95)):
        lo, hi = cal.coverage_band(p, n, alpha=0.05)
        mass = stats.binom.cdf(round(hi * n), n, p) - stats.binom.cdf(round(lo * n) - 1, n, p)
        assert mass >= 0.95
        assert lo <= p <= hi


def test_calibrated_posterior_passes_and_overconfident_one_is_flagged():
    # N = 400 data sets, 400 draws each. Budget: flagged() tests at alpha = 0.01 split
    # (Bonferroni) over 4 levels + 2 uniformity tests, so a calibrated posterior is
    # flagged with probability <= 1%; the seed is fixed, so the outcome is deterministic.
    good = _conjugate_study(400, 400, 1.0)
    assert good.flagged(alpha=0.01) == []
    cov = good.coverage()["theta"]
    for p, c in cov.items():
        assert c["ci_low"] <= float(p) <= c["ci_high"], (p, c)
    # posterior sd half the truth: 90% intervals cover ~ 52%; ranks pile up at 0 and L
    bad = _conjugate_study(400, 400, 0.5)
    assert bad.flagged(alpha=0.01) == ["theta"]
    assert bad.coverage()["theta"]["0.9"]["rate"] < 0.7
    assert min(bad.uniformity()["theta"].values()) < 1e-6


def test_json_round_trip(tmp_path):
    res = _conjugate_study(30, 120, 1.0)
    res.diagnostics = {"diverging": np.zeros(30)}
    path = res.save(tmp_path / "sbc.json")
    back = cal.load_sbc(path)
    assert back.n_ranks == res.n_ranks and back.levels == res.levels and back.setup == res.setup
    np.testing.assert_array_equal(back.ranks["theta"], res.ranks["theta"])
    np.testing.assert_array_equal(back.inside["theta"], res.inside["theta"])
    np.testing.assert_allclose(back.truth["theta"], res.truth["theta"])
    assert (
        json.loads(path.read_text())["coverage"]["theta"]["0.9"]["rate"]
        == res.coverage()["theta"]["0.9"]["rate"]
    )
    (tmp_path / "bad.json").write_text('{"ranks": {}}')
    with pytest.raises(ValueError, match="not an SBC result"):
        cal.load_sbc(tmp_path / "bad.json")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_vectorised_model_has_the_log_density_of_logit_q_model():
    """The vmap engine's model must be the package's model: equal log joint at random points."""
    from numpyro.infer.util import log_density

    import bayes_diml as bd
    from bayes_diml.models import logit_q_model
    from bayes_diml.studies.sbc_batched import sbc_model, table_index

    mech = mechanisms.Tabular((2, 3))
    truth = mech.init(jax.random.key(1))
    data = bd.simulate(mech, truth, LogitQ(0.3, 2.0, 0.1), n_episodes=2, T=4, key=2, record_payoffs=True)
    learner = LogitQ("infer", "infer", "infer")
    idx = table_index(mech, data.actions[None], (2, 3))[0]
    rng = np.random.default_rng(0)
    params = {
        "u0_free": rng.normal(size=(1, 3)),
        "u1_free": rng.normal(size=(2, 2)),
        "alpha": 0.4,
        "beta": 1.7,
        "eps": 0.08,
        "payoff_noise": 0.6,
    }
    ours, _ = log_density(
        sbc_model,
        (data.actions, idx, data.payoffs),
        {"mechanism": mech, "learner": learner, "priors": Priors(), "n_actions": (2, 3)},
        params,
    )
    theirs, _ = log_density(logit_q_model, (data, mech, learner, Priors()), {}, params)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)


def test_learner_priors_and_input_errors():
    mech = mechanisms.Tabular((2, 2))
    with pytest.raises(ValueError, match="unknown field"):
        cal.sbc(mech, None, {"gamma": 1.0}, 2, progress=False)
    with pytest.raises(ValueError, match="proper prior"):
        cal.sbc(mech, Priors(mechanism_scale=None), None, 2, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        cal.sbc(mech, None, None, 2, method="map", progress=False)
    with pytest.raises(ValueError, match="simulator"):
        cal.make_learner("ewa", 0.1, 1.0, 0.1)
    with pytest.raises(ValueError, match="n_ranks"):
        cal.sbc(mech, None, None, 2, method="nuts", num_samples=10, num_chains=1, n_ranks=50, progress=False)


def test_cli_errors_are_one_line():
    for args, match in (
        (["--game", "2", "--out", "x.json"], "at least two agents"),
        (["--fix", "gamma=1", "--out", "x.json"], "--fix takes"),
        (["--out", "x.csv"], "must end in .json"),
    ):
        result = CliRunner().invoke(main, ["sbc", *args])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert match in " ".join(result.output.split()), result.output


TINY = ["--game", "2x2", "--n-datasets", "4", "--episodes", "2", "--steps", "4", "--method", "svi"]
TINY += ["--num-steps", "20", "--num-samples", "10", "--n-ranks", "9", "--chunk-size", "2", "--json"]


@pytest.mark.slow
def test_cli_smoke_and_resume(tmp_path, monkeypatch):
    out, png = tmp_path / "sbc.json", tmp_path / "sbc.png"
    result = CliRunner().invoke(main, ["sbc", *TINY, "--out", out, "--plot", png, "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_datasets"] == 4 and "scaled_payoffs[0,0,0]" in summary["quantities"]
    res = cal.load_sbc(out)
    assert res.n_datasets == 4 and not res.identified["beta"] and res.identified["alpha"]
    assert all(0 <= r <= 9 for r in res.ranks["alpha"])
    assert png.stat().st_size > 10_000
    # every chunk is in the partial file: a rerun with the same settings fits nothing
    monkeypatch.setattr(
        cal_runner, "_chunk_records", lambda *a, **k: pytest.fail("refitted a finished chunk")
    )
    again = cal.sbc(
        mechanisms.Tabular((2, 2)), None, None, 4, 2, 4, "svi", 0, n_ranks=9, chunk_size=2,
        num_steps=20, num_draws=10, out=out, progress=False,
    )  # fmt: skip
    np.testing.assert_array_equal(again.ranks["alpha"], res.ranks["alpha"])


@pytest.mark.slow
def test_small_nuts_sbc_coverage_stays_in_binomial_band():
    """40 prior draws on a 2 x 2 game with observed payoffs, NUTS (1 chain, 100 + 150, depth <= 6).

    False-failure budget 1%: ``flagged(alpha=0.01)`` checks every identified quantity's
    coverage at 50/80/90/95% against the central binomial band Binomial(40, p) and its
    rank uniformity (chi-square and PIT-ECDF), Bonferroni-split over all those checks.
    """
    res = cal.sbc(
        mechanisms.Tabular((2, 2)), Priors(), None, 40, 5, 10, "nuts", 3, observe_payoffs=True,
        n_ranks=49, chunk_size=40, num_warmup=100, num_samples=150, num_chains=1, max_tree_depth=6,
        progress=False,
    )  # fmt: skip
    assert res.n_datasets == 40
    assert all(res.identified.values()) and "beta" in res.quantities
    assert res.flagged(alpha=0.01) == [], res.coverage()


def test_chunks_run_on_a_dask_client_or_serially():
    chunks = [np.arange(i, i + 3) for i in range(0, 9, 3)]
    seen = []
    cal._run_chunks(lambda c: {"idx": [int(i) for i in c]}, chunks, None, 1, False, seen.append)
    assert sorted(i for r in seen for i in r["idx"]) == list(range(9))
    distributed = pytest.importorskip("dask.distributed")
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        seen.clear()
        cal._run_chunks(lambda c: {"idx": [int(i) for i in c]}, chunks, client, 1, False, seen.append)
    assert sorted(i for r in seen for i in r["idx"]) == list(range(9))


def test_deprecated_alias_warns_and_gives_the_same_objects(monkeypatch):
    """``bayes_diml.calibration`` (the old path) still works: a DeprecationWarning, the same objects."""
    monkeypatch.delitem(sys.modules, "bayes_diml.calibration", raising=False)
    with pytest.warns(DeprecationWarning, match="bayes_diml.studies.calibration"):
        old = importlib.import_module("bayes_diml.calibration")
    assert list(old.__all__) == list(cal.__all__)
    assert all(getattr(old, name) is getattr(cal, name) for name in cal.__all__)
