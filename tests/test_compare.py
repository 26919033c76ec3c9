"""Model comparison: PSIS-LOO by episode, leave-future-out, ``compare`` and its CLI.

Fast tests use posteriors built from draws around the truth (no sampler); the slow test
fits Laplace approximations. The decision rule "the true learner wins" is that its
elpd_diff to the runner-up exceeds ``Z`` standard errors (``dse``), with the suite-wide
false-failure budget 1e-3 over ~20 checks: Z = NormalDist().inv_cdf(1 - 1e-3 / 40) = 4.06.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import jax
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ParetoKWarning, Posterior, compare
from bayes_diml.inference.compare import episode_log_likelihood, loo, step_log_likelihood
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors, free_from_table

Z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20))
TRUE = bd.LogitQ(0.3, 3.0, 0.05)
WRONG = bd.LogitQ(0.02, 3.0, 0.05)  # learns 15x too slowly


@pytest.fixture(scope="module")
def game():
    mech = mechanisms.Tabular((2, 3))
    table = jax.random.normal(jax.random.key(4), (2, 3, 2)) * 1.5
    params = {"table": table}
    data = bd.simulate(mech, params, TRUE, 24, 16, 7)
    return mech, params, data


def draws_posterior(mech, params, data, learner, n_draws=200, scale=0.05, seed=0) -> Posterior:
    """A Posterior whose draws scatter around the true gauge-free table (one chain)."""
    spec = ModelSpec.build(data, mech, learner, Priors())
    rng = np.random.default_rng(seed)
    sites = {
        k: np.asarray(v)[None] + scale * rng.standard_normal((n_draws, *np.shape(v)))
        for k, v in free_from_table(mech, params["table"]).items()
    }
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()})
    return Posterior(tree, spec, "svi")


@pytest.fixture(scope="module")
def posts(game):
    mech, params, data = game
    return {
        "logit_q": draws_posterior(mech, params, data, TRUE),
        "slow_alpha": draws_posterior(mech, params, data, WRONG),
    }


def test_episode_and_step_log_likelihood_sum_to_total(posts):
    post = posts["logit_q"]
    total = post.idata["log_likelihood"]["actions"].sum(["episode", "step", "agent"]).values
    ep = episode_log_likelihood(post)
    st = step_log_likelihood(post)
    assert ep.dims == ("chain", "draw", "episode") and ep.shape[-1] == post.data.n_episodes
    assert st.dims == ("chain", "draw", "step") and st.shape[-1] == post.data.n_steps - 1
    np.testing.assert_allclose(ep.sum("episode").values, total, rtol=1e-5)
    np.testing.assert_allclose(st.sum("step").values, total, rtol=1e-5)


def test_loo_by_episode_and_true_learner_wins(posts):
    res = posts["logit_q"].loo()
    assert res.elpd_i.dims == ("episode",) and res.elpd_i.size == 24
    assert np.all(np.asarray(res.pareto_k) < 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParetoKWarning)
        table = compare(posts)
    assert list(table.index) == ["logit_q", "slow_alpha"]
    assert table.loc["slow_alpha", "elpd_diff"] < 0
    assert abs(table.loc["slow_alpha", "elpd_diff"]) > Z * table.loc["slow_alpha", "dse"]
    assert table.loc["logit_q", "weight"] > 0.9
    assert {"elpd", "se", "dse", "weight", "max_pareto_k"} <= set(table.columns)


def test_pareto_k_warning_and_errors(game, posts):
    mech, params, data = game
    # a posterior far too wide for its likelihood: importance weights degenerate
    wide = draws_posterior(mech, params, data, TRUE, n_draws=100, scale=3.0, seed=1)
    with pytest.warns(ParetoKWarning, match="Pareto k"):
        loo(wide)
    with pytest.raises(ValueError, match="at least two fits"):
        compare({"a": posts["logit_q"]})
    with pytest.raises(ValueError, match="ic must be one of"):
        compare(posts, ic="waic")
    other = bd.simulate(mech, params, TRUE, 24, 16, 8)
    with pytest.raises(ValueError, match="different actions"):
        compare({"a": posts["logit_q"], "b": draws_posterior(mech, params, other, TRUE, n_draws=30)})
    point = draws_posterior(mech, params, data, TRUE, n_draws=1)
    with pytest.raises(ValueError, match="needs posterior draws"):
        point.loo()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_compare_cli(tmp_path, posts):
    from click.testing import CliRunner

    from bayes_diml.cli import main

    paths = []
    for name, p in posts.items():
        paths.append(str(p.save(tmp_path / f"{name}.nc")))
    res = CliRunner().invoke(main, ["compare", *paths, "--json"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert [r["model"] for r in rows] == ["logit_q", "slow_alpha"]
    res = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["compare", *paths])
    assert res.exit_code == 0 and "elpd" in res.output and "slow_alpha" in res.output
    res = CliRunner().invoke(main, ["compare", paths[0]])
    assert res.exit_code != 0 and "at least two" in res.output


@pytest.mark.slow
def test_true_learner_wins_with_laplace_fits_loo_and_lfo(game):
    mech, _, data = game
    fits = {
        name: bd.fit(data, mech, learner, method="laplace", seed=0, progress=False, num_draws=400)
        for name, learner in (("logit_q", TRUE), ("slow_alpha", WRONG))
    }
    table = compare(fits)
    assert table.index[0] == "logit_q"
    assert abs(table.loc["slow_alpha", "elpd_diff"]) > Z * table.loc["slow_alpha", "dse"]
    # LFO with a single forecast origin (the last step): one exact refit per model
    lfo_table = compare(fits, ic="lfo", min_steps=data.n_steps - 2, num_draws=400)
    assert list(lfo_table["n_refits"]) == [0, 0]  # the first origin's fit is not counted as a refit
    assert lfo_table.index[0] == "logit_q"
    assert lfo_table.loc["slow_alpha", "elpd_diff"] < 0


# Family comparison on simulated data (slow: NUTS fits). Each case: the data-generating
# learner, the rivals fitted to its data, and the rivals that nest it.
FAMILY_SPECS = {
    "logit_q": bd.LogitQ("infer", "infer", "infer"),
    "bandit": bd.BanditQ("infer", "infer", "infer"),
    "hedge": bd.Hedge("infer", "infer"),
    "fp": bd.FictitiousPlay("infer", "infer", "infer"),
    "ewa": bd.EWA("infer", "infer", "infer", "infer", "infer", "infer"),
}
FAMILY_CASES = {
    "bandit": (bd.BanditQ(0.3, 3.0, 0.05), ("logit_q",), ()),
    "fp": (bd.FictitiousPlay(3.0, 0.05, 1.0), ("logit_q",), ()),
    "ewa": (bd.EWA(0.9, 0.1, 0.5, 3.0, 0.05, 1.0), ("logit_q",), ()),
    # Hedge is a limit of logit-Q (alpha -> 0, alpha beta = eta) and of fictitious play with
    # q0 = 0 (prior_weight w -> inf, beta / w = eta); a small eta keeps its scores sharpening
    "hedge": (bd.Hedge(0.1, 0.05), ("bandit",), ("logit_q", "fp")),
    "logit_q": (TRUE, ("bandit", "hedge"), ()),
}
#: elpd differences below 4 are small whatever their SE (Sivula, Magnusson, Vehtari 2020);
#: above it, the SE is trusted and a win needs |elpd_diff| > 2 dse.
SMALL_ELPD = 4.0


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILY_CASES))
def test_true_family_wins_on_its_own_data(family):
    """NUTS fits with every learner parameter inferred; PSIS-LOO by episode.

    The true family ranks first among the families that do not nest it and beats each of
    them by more than SMALL_ELPD and 2 dse. A family that nests the truth fits its data as
    well up to a small complexity term, so for those the test checks that they do not win
    clearly, and that logit-Q's posterior moves to the nesting limit (alpha well below the
    0.3 it has on logit-Q data). Laplace fits are not used: with beta and the payoff scale
    confounded they put Pareto k >> 0.7 on every episode.
    """
    truth, rivals, nesting = FAMILY_CASES[family]
    mech = mechanisms.Tabular((2, 3))
    params = {"table": jax.random.normal(jax.random.key(4), (2, 3, 2)) * 1.5}
    data = bd.simulate(mech, params, truth, 60, 20, 5)
    names = (family, *rivals, *nesting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {
            name: bd.fit(
                data, mech, FAMILY_SPECS[name], method="nuts", seed=0, progress=False,
                num_warmup=300, num_samples=300, num_chains=1,
            )
            for name in names
        }  # fmt: skip
        table = compare(fits)
    ranked = [name for name in table.index if name not in nesting]
    assert ranked[0] == family, table
    for rival in (*rivals, *nesting):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pair = compare({family: fits[family], rival: fits[rival]})  # dse of this pair
        if rival in rivals:
            diff = pair.loc[rival, "elpd"] - pair.loc[family, "elpd"]
            assert diff < -SMALL_ELPD and abs(diff) > 2 * pair["dse"].max(), pair
            continue
        gain = pair.loc[rival, "elpd"] - pair.loc[family, "elpd"]  # > 0: the nesting family is ahead
        assert gain < max(SMALL_ELPD, 2 * pair["dse"].max()), pair  # but not clearly
    if "logit_q" in nesting:
        alpha = fits["logit_q"].draws("alpha").reshape(-1)
        assert np.quantile(alpha, 0.95) < 0.15, np.quantile(alpha, [0.05, 0.5, 0.95])


def test_lfo_training_data_keep_subjects_and_labels():
    from bayes_diml.inference.compare import _truncate

    rng = np.random.default_rng(0)
    data = bd.Trajectories(
        rng.integers(0, 2, size=(3, 6, 2)),
        (2, 2),
        lengths=[6, 4, 2],
        payoffs=rng.normal(size=(3, 6, 2)),
        subjects=[7, 7, 9],
        agent_labels=["row", "col"],
        action_labels=["left", "right"],
    )
    cut = _truncate(data, 3)
    assert cut.actions.shape == (3, 3, 2) and cut.lengths.tolist() == [3, 3, 2]
    np.testing.assert_array_equal(cut.actions, data.actions[:, :3])
    np.testing.assert_array_equal(cut.payoffs, data.payoffs[:, :3])
    np.testing.assert_array_equal(cut.subject_index, data.subject_index)
    assert cut.n_subjects == 2
    assert cut.agent_labels == ("row", "col") and cut.action_labels == data.action_labels
