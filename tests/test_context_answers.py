"""Answers at a covariate value (``Posterior.at_covariates``) and ``--group`` / ``--at`` on every command.

One tiny covariate fit (MAP, 2 x 2 game, x in {-1, 0, 1}, agent 0's payoff of action 1
rising with x) serves the Python API and the command line. Identification's prior is checked
with "posteriors" that are prior draws (a covariate fit's and a grouped fit's): compared with the
right prior, their contraction is about 0; compared with the table's prior alone it is about
``1 - 5 = -4`` (x = 2) or ``1 - 2 = -1`` (a group).
"""

from __future__ import annotations

import json
import math

import click
import jax
import numpy as np
import pandas as pd
import pytest
from cli_runner import fails, invoke

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli.context import parse_at, select_context
from bayes_diml.inference import Posterior
from bayes_diml.inference.covariates import COVARIATE_CONTRAST_COLUMNS
from bayes_diml.inference.groups import group_table_priors
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.identification import prior_draws
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors, params_from_sites

K2 = (2, 2)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
PAIR_COLUMNS = ["agent", "opponents", "a", "b", "mean", "lower", "upper", "prob_greater", "support", "units"]


def _covariate_data(mech, params, xs, episodes, T):
    parts = [
        bd.simulate(mech.tabular, mech.context_params(params, {"x": x}), LEARNER, episodes, T, key=j)
        for j, x in enumerate(xs)
    ]
    stacked = bd.Trajectories.concat(parts)
    return bd.Trajectories(
        stacked.actions,
        stacked.n_actions,
        lengths=stacked.lengths,
        covariates=np.repeat(xs, episodes),
        covariate_names=("x",),
    )


def _prior_posterior(data, mech, n_draws=1000, learner=LEARNER):
    """A Laplace-labelled posterior whose draws are the model's prior draws (no data in them)."""
    spec = ModelSpec.build(data, mech, learner, Priors())
    sites = prior_draws(spec, list(spec.latent_names), n_draws, seed=1)
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()}, log_likelihood=False)
    return Posterior(tree, spec, "laplace")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("context")


@pytest.fixture(scope="module")
def fit():
    mech = mechanisms.CovariateTabular(K2, ("x",))
    table = np.array([[[0.5, -0.5], [-0.5, 0.5]], [[-0.2, 0.4], [0.3, -0.4]]])
    slopes = np.zeros((1, 2, 2, 2))
    slopes[0, 1, 0, 0] = 2.0
    data = _covariate_data(mech, {"table": table, "slopes": slopes}, [-1.0, 0.0, 1.0], 3, 12)
    return bd.fit(data, mech, learner=LEARNER, method="map", seed=0, progress=False)


@pytest.fixture(scope="module")
def fit_path(work, fit):
    return fit.save(work / "cov.nc")


@pytest.fixture(scope="module")
def prior_fit(fit):
    """Draws of the covariate model's prior, as a posterior of the fit's data."""
    return _prior_posterior(fit.data, fit.mechanism)


@pytest.fixture(scope="module")
def grouped_path(work):
    tab = mechanisms.Tabular(K2)
    da = bd.simulate(tab, tab.init(jax.random.key(0)), LEARNER, 3, 8, key=1)
    db = bd.simulate(tab, tab.init(jax.random.key(1)), LEARNER, 3, 8, key=2)
    data = bd.Trajectories.concat([da, db], groups=["A", "B"])
    return _prior_posterior(data, mechanisms.GroupedTabular(K2, ("A", "B")), 400).save(work / "grouped.nc")


# ------------------------------------------------------------------ Posterior.at_covariates
def test_at_zero_is_the_table_exactly(fit):
    p0 = fit.at_covariates({"x": 0.0})
    assert isinstance(p0.mechanism, mechanisms.Tabular) and p0.info["covariates"] == {"x": 0.0}
    assert p0.n_draws == fit.n_draws and p0.data is fit.data  # all episodes, draws in order
    for name in ("u0_free", "u1_free", "centred_payoffs"):
        np.testing.assert_array_equal(p0.draws(name), fit.draws(name))
    assert not any(v.endswith("_slope") for v in p0.idata["posterior"].data_vars)
    np.testing.assert_array_equal(p0.learner_draws().alpha, fit.learner_draws().alpha)
    assert p0.priors.mechanism_scale == fit.priors.mechanism_scale  # x = 0: the table's own prior


def test_at_one_is_table_plus_slope(fit):
    p1, p0 = fit.at_covariates({"x": 1.0}), fit.at_covariates({"x": 0.0})
    for i in range(2):
        want = fit.draws(f"u{i}_free") + fit.draws(f"u{i}_slope")[:, 0]
        np.testing.assert_allclose(p1.draws(f"u{i}_free"), want, rtol=0, atol=1e-6)
        assert not np.allclose(p1.draws(f"u{i}_free"), p0.draws(f"u{i}_free"))  # negative control
    table = p1.payoff_table(0.9)
    want = fit.payoff_table(0.9, covariates={"x": 1.0})
    for key in ("mean", "lower", "upper"):
        np.testing.assert_allclose(table[key], want[key], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(table["support"], want["support"])
    # the recorded table and the table from the derived sites agree draw by draw
    params = params_from_sites(fit.mechanism, {k: v[0] for k, v in fit.site_draws().items()})
    at_x = fit.mechanism.context_params(params, {"x": 1.0})["table"]
    np.testing.assert_allclose(p1.mechanism_params(0)["table"], at_x, atol=1e-6)
    np.testing.assert_allclose(p1.draws("centred_payoffs")[0], at_x, atol=1e-6)
    assert math.isclose(p1.priors.mechanism_scale, math.sqrt(2.0))


def test_two_values_give_different_pairs_and_their_contrast(fit):
    hi, lo = fit.at_covariates({"x": 1.0}), fit.at_covariates({"x": -1.0})
    pairs_hi, pairs_lo = hi.payoff_pairs(0.9), lo.payoff_pairs(0.9)
    assert list(pairs_hi.columns) == PAIR_COLUMNS and len(pairs_hi) == len(pairs_lo) == 4
    assert not np.allclose(pairs_hi["mean"], pairs_lo["mean"])
    frame = fit.contrast_covariates({"x": 1.0}, {"x": -1.0}, prob=0.9)
    assert tuple(frame.columns) == COVARIATE_CONTRAST_COLUMNS and len(frame) == 8
    diff = (hi.draws("centred_payoffs") - lo.draws("centred_payoffs")).reshape(fit.n_draws, -1, 2)
    want = np.concatenate([diff[:, :, 0].mean(0), diff[:, :, 1].mean(0)])  # agent outer, C order
    np.testing.assert_allclose(frame["mean"], want, atol=1e-6)
    slopes = fit.covariate_effects(0.9)
    np.testing.assert_allclose(frame["mean"], 2.0 * slopes["mean"], atol=1e-5)  # x: 1 - (-1) = 2
    moving = frame[(frame["agent"] == 0) & (frame["joint"] == "1-0")].iloc[0]
    assert moving["prob_positive"] > 0.9 and (frame["units"] == "payoff").all()
    same = fit.contrast_covariates({"x": 0.5}, {"x": 0.5})
    assert (same["mean"] == 0).all() and (same["prob_positive"] == 0).all()  # negative control


def test_bad_covariates_are_named(fit):
    with pytest.raises(ValueError, match="unknown covariate.*'y'"):
        fit.at_covariates({"x": 1.0, "y": 1.0})
    with pytest.raises(ValueError, match="missing covariate.*'x'"):
        fit.at_covariates({})
    with pytest.raises(ValueError, match="'x' must be finite"):
        fit.at_covariates({"x": float("nan")})
    with pytest.raises(ValueError, match="needs a covariate fit"):
        fit.at_covariates({"x": 0.0}).at_covariates({"x": 0.0})


def test_the_covariate_models_likelihood_is_left_out(fit):
    p1 = fit.at_covariates({"x": 1.0})
    assert "log_likelihood" in fit.idata.children  # control: the fit has it
    assert "log_likelihood" not in p1.idata.children and "log_prior" not in p1.idata.children
    with pytest.raises(ValueError, match="pointwise log-likelihood"):
        p1.loo()
    with pytest.raises(ValueError, match="its own covariates"):
        p1.flat_directions()
    with pytest.raises(ValueError, match="ppc_behaviour scores the data"):
        p1.ppc_behaviour()  # the table at x = 1 did not generate every episode


def _same(lq):
    return lq.scaled(alpha=1.0, beta=1.0, eps=1.0, eps_cap=0.5)  # what the command line passes


#: counterfactual and design sizes shared by Python and the command line (one compiled program)
SIZE = dict(n_episodes=4, T=6, n_draws=3, seed=0)


@pytest.fixture(scope="module")
def answers_at_one(fit):
    """Counterfactual action frequencies and a design table at x = 1, from Python."""
    hi = fit.at_covariates({"x": 1.0})
    design = hi.design(bd.edits.toll(1), np.array([0.0, 1.0]), "share:1", **SIZE)
    return hi.counterfactual(_same, **SIZE), design.table()


def test_counterfactual_and_design_at_a_value(fit, answers_at_one):
    a, table = answers_at_one
    b = fit.at_covariates({"x": -1.0}).counterfactual(_same, **SIZE)
    assert a.shape == (1, 2, 2) and not np.allclose(a, b)  # one MAP draw; the two tables play differently
    with pytest.raises(ValueError, match="moves with the covariates x"):
        fit.counterfactual(_same, **SIZE)
    assert len(table) == 2 and table["chosen"].sum() == 1


def test_identification_at_x_uses_the_prior_of_table_plus_x_slopes(prior_fit):
    prior = prior_fit
    for x, wrong in ((2.0, 1.0 - 5.0), (0.0, None)):
        table = prior.at_covariates({"x": x}).identification(num_prior_draws=4000)
        c = table["contraction"].to_numpy(dtype=float)
        assert np.all(np.abs(c) < 0.3), table  # the right prior: no contraction
        want = math.sqrt((1.0 + x**2) / 2.0)  # a 2-action centred cell: scale / sqrt(2)
        np.testing.assert_allclose(table["prior_sd"], want, rtol=0.1)
        if wrong is not None:  # the table's prior alone would say contraction ~ -4
            assert np.all(np.abs(c - wrong) > 2.0)


def test_scaled_payoffs_follow_the_table_at_x(fit):
    """Temperature inferred, no payoffs: ``scaled_payoffs = beta x centred payoffs`` at x too."""
    post = _prior_posterior(fit.data, fit.mechanism, 50, bd.LogitQ(alpha=0.3, beta="infer", eps=0.05))
    assert post.confounded
    p0, p1 = post.at_covariates({"x": 0.0}), post.at_covariates({"x": 1.0})
    np.testing.assert_array_equal(p0.draws("scaled_payoffs"), post.draws("scaled_payoffs"))
    beta = post.draws("beta").reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(p1.draws("scaled_payoffs"), beta * p1.draws("centred_payoffs"), atol=1e-5)
    assert not np.allclose(p1.draws("scaled_payoffs"), p0.draws("scaled_payoffs"))
    draws, units = p1.identified_payoff_draws()
    assert units.startswith("beta") and np.array_equal(draws, p1.draws("scaled_payoffs"))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_groups_identification_uses_shared_plus_deviation_prior(grouped_path):
    post = bd.load(grouped_path)
    for g in ("A", "B"):
        p = post.for_group(g)
        rms = post.mechanism.group_scale_rms  # sqrt(E[group_scale^2]): exp(0.5^2) under the lognormal
        assert math.isclose(rms, math.exp(0.25)) and math.isclose(
            p.priors.mechanism_scale, math.sqrt(1 + rms**2)
        )
        c = p.identification(num_prior_draws=4000)["contraction"].to_numpy(dtype=float)
        assert np.all(np.abs(c) < 0.35), c  # with the table prior alone: about -1
    assert group_table_priors(Priors(mechanism_scale=None), post.mechanism).mechanism_scale is None


# ------------------------------------------------------------------ the command line
def test_parse_at():
    assert parse_at(("a=1", "b=-2.5")) == parse_at(("a=1,b=-2.5",)) == {"a": 1.0, "b": -2.5}
    assert parse_at(()) == {}
    for bad, match in (("a", "NAME=VALUE"), ("=1", "NAME=VALUE"), ("a=x", "must be a number")):
        with pytest.raises(Exception, match=match):
            parse_at((bad,))
    with pytest.raises(Exception, match="given twice"):
        parse_at(("a=1,a=2",))


def test_payoffs_at_a_value(work, fit_path, fit):
    p1 = fit.at_covariates({"x": 1.0})
    out = work / "t.npz"
    invoke("payoffs", fit_path, "--at", "x=1", "--out", out)
    with np.load(out) as got:
        want = p1.payoff_table(0.9)
        for key in ("mean", "lower", "upper", "support"):
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-6)
    pairs = work / "p.csv"
    invoke("payoffs", fit_path, "--at", "x=1", "--pairs", "--out", pairs)
    frame = pd.read_csv(pairs)
    assert list(frame.columns) == PAIR_COLUMNS
    np.testing.assert_allclose(frame["mean"], p1.payoff_pairs(0.9)["mean"], atol=1e-6)


def test_select_context_names_the_problem(fit, grouped_path):
    grouped, plain = bd.load(grouped_path), fit.at_covariates({"x": 0.0})  # plain: an ordinary tabular fit
    assert select_context(fit, None, {"x": 1.0}).info["covariates"] == {"x": 1.0}
    assert select_context(grouped, "B", {}).info["group"] == "B"
    assert select_context(plain, None, None) is plain
    cases = [
        (fit, None, {}, click.UsageError, "moves with the covariates x: pass --at NAME=VALUE"),
        (fit, None, {"y": 1.0, "x": 1.0}, click.BadParameter, "unknown covariate(s) 'y'"),
        (fit, None, {"x": float("inf")}, click.BadParameter, "'x' must be finite"),
        (fit, "A", {}, click.UsageError, "this fit is not grouped"),
        (fit, "A", {"x": 1.0}, click.UsageError, "not both"),
        (plain, None, {"x": 1.0}, click.UsageError, "has no covariates"),
        (grouped, None, {}, click.UsageError, "one payoff table per group (A, B): pass --group G"),
        (grouped, "C", {}, click.BadParameter, "unknown group 'C'; the groups are A, B"),
        (grouped, None, {"x": 1.0}, click.UsageError, "has no covariates"),
    ]
    for post, group, at, kind, match in cases:
        with pytest.raises(kind) as info:
            select_context(post, group, at)
        assert match in info.value.format_message(), (group, at)


def test_command_line_errors_name_the_problem(work, fit_path, grouped_path):
    npz = work / "e.npz"
    text = fails("payoffs", fit_path, "--out", npz, match="moves with the covariates x")
    assert "--at" in text and "--covariate-effects" in text
    fails("payoffs", fit_path, "--at", "x", "--out", npz, match="NAME=VALUE")
    fails("payoffs", fit_path, "--covariate-effects", "--at", "x=1", "--out", work / "e.csv", match="--at")
    fails("counterfactual", fit_path, match="--at NAME=VALUE")
    fails("design", fit_path, "--edit", "toll", "--on-action", 1, "--grid", "0:1:2", match="--at")
    fails("identify", grouped_path, "--group", "C", match="unknown group 'C'; the groups are A, B")
    assert not npz.exists()


@pytest.mark.slow  # fast-suite budget: three commands, each compiling its own programs (~10 s)
def test_counterfactual_design_identify_at_a_value(work, fit_path, answers_at_one, prior_fit):
    want, table = answers_at_one
    args = ("--episodes", 4, "--steps", 6, "--draws", 3, "--seed", 0, "--json")
    hi = json.loads(invoke("counterfactual", fit_path, "--at", "x=1", *args).stdout)
    np.testing.assert_allclose(hi["mean"], want.mean(0), atol=1e-9)
    grid = ("--edit", "toll", "--on-action", 1, "--grid", "0:1:2", "--objective", "share:1")
    design = json.loads(invoke("design", fit_path, "--at", "x=1", *grid, *args).stdout)
    np.testing.assert_allclose([r["mean"] for r in design["rows"]], table["mean"], atol=1e-9)
    fails("identify", fit_path, "--at", "x=2", match="needs posterior draws")  # a MAP fit
    prior_path = prior_fit.save(work / "prior.nc")  # draws of the prior: contraction about 0
    ident = json.loads(invoke("identify", prior_path, "--at", "x=2", "--prior-draws", 400, "--json").stdout)
    assert ident["covariates"] == {"x": 2.0} and ident["flat_directions"] == []
    prior_sd = [q["prior_sd"] for q in ident["quantities"].values()]  # {quantity: row}, payoff cells
    assert len(prior_sd) == 8
    np.testing.assert_allclose(prior_sd, math.sqrt(5.0 / 2.0), rtol=0.15)  # the prior of table + 2 slopes


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_identify_a_group(grouped_path):
    ident = json.loads(
        invoke("identify", grouped_path, "--group", "B", "--prior-draws", 2000, "--json").stdout
    )
    assert ident["group"] == "B"
    contraction = [q["contraction"] for q in ident["quantities"].values()]
    assert len(contraction) == 8 and np.all(np.abs(contraction) < 0.4)  # the group's own prior
