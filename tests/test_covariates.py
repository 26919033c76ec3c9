"""Covariate fits (CovariateTabular): plan, literal likelihood, model, recovery, answers and errors."""

from __future__ import annotations

import types
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from context_programs import assert_contexts_share_one_program
from numpyro.infer.util import log_density
from reference import reference_log_likelihood
from scipy.stats import norm

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.counterfactual import (
    counterfactual_payoffs,
    covariate_plan,
    episode_contexts,
    evaluate_plan,
    plan_for,
)
from bayes_diml.data import DataError
from bayes_diml.inference import ConvergenceWarning, ModelSpec
from bayes_diml.metrics import payoff_differences
from bayes_diml.models import Priors, params_from_sites, sites_from_params

K = (2, 3)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
NAMES = ("price", "week")


def _with_covariates(data, x, names=NAMES):
    """``data`` with covariates ``x: float[M, C]``."""
    return bd.Trajectories(
        data.actions, data.n_actions, lengths=data.lengths, covariates=x, covariate_names=names
    )


def _simulate(mech, params, xs, episodes, T, seed0=0, learner=LEARNER):
    """Episodes simulated per covariate row of ``xs: float[G, C]`` (each with its own table), stacked."""
    parts = [
        bd.simulate(
            mech.tabular, mech.context_params(params, x), learner, n_episodes=episodes, T=T, key=seed0 + g
        )
        for g, x in enumerate(np.asarray(xs, dtype=float))
    ]
    data = bd.Trajectories.concat(parts)
    return _with_covariates(
        data, np.repeat(np.asarray(xs, dtype=float), episodes, axis=0), mech.covariate_names
    )


@pytest.fixture(scope="module")
def truth():
    mech = mechanisms.CovariateTabular(K, NAMES)
    return mech, {k: np.asarray(v) for k, v in mech.init(jax.random.key(5)).items()}


@pytest.fixture(scope="module")
def data(truth):
    mech, params = truth
    return _simulate(mech, params, [[0.0, 1.0], [1.5, 0.0], [-1.0, 2.0]], episodes=3, T=8)


# ------------------------------------------------------------------ mechanism and plan


def test_payoffs_are_the_table_plus_covariates_times_slopes(truth):
    mech, params = truth
    joint = np.array([[0, 2], [1, 0], [1, 1]])
    x = np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.0]])
    got = np.asarray(mech.payoffs(params, joint, covariates=x))
    for r, (a, xr) in enumerate(zip(joint, x, strict=True)):
        for i in range(2):
            want = params["table"][a[0], a[1], i] + sum(
                xr[c] * params["slopes"][c, a[0], a[1], i] for c in range(2)
            )
            assert got[r, i] == pytest.approx(want, rel=1e-6)
    np.testing.assert_array_equal(
        np.asarray(mech.payoffs(params, joint)), params["table"][joint[:, 0], joint[:, 1]]
    )
    at = np.asarray(mech.context_params(params, {"week": -1.0, "price": 0.5})["table"])  # by name, any order
    np.testing.assert_allclose(at[tuple(joint[0])], got[0], rtol=1e-6)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_the_plan_gives_each_episode_its_contexts_counterfactuals(truth, data):
    mech, params = truth
    plan = plan_for(mech, data)
    assert plan.contexts.shape == (3, 2) and plan.points.shape == (3 * 6, 3)  # every profile in every context
    cf = np.asarray(counterfactual_payoffs(mech, params, data, plan=plan))  # [M, T-1, n, K]
    for m in range(data.n_episodes):
        own = mech.context_params(params, data.covariates[m])
        want = np.asarray(counterfactual_payoffs(mech.tabular, own, data.subset([m])))[0]
        np.testing.assert_allclose(cf[m], want, rtol=1e-6, atol=1e-6)
    # negative control: another episode's context gives other counterfactuals
    other = mech.context_params(params, data.covariates[-1])
    assert not np.allclose(
        cf[0], np.asarray(counterfactual_payoffs(mech.tabular, other, data.subset([0])))[0]
    )
    # a large game's plan (only the joints that occur) agrees with the full one
    sparse = covariate_plan(data.actions[:, :-1], K, *episode_contexts(mech, data), table_limit=1)
    rows = {tuple(r) for r in plan.points.tolist()}
    assert all(tuple(r) in rows for r in sparse.points.tolist()) and sparse.contexts is not None
    np.testing.assert_allclose(
        np.asarray(counterfactual_payoffs(mech, params, data, plan=sparse)), cf, rtol=1e-6
    )
    # a minibatch of fewer points than planned evaluates its own points (the "direct" path)
    many = _with_covariates(data, data.covariates + 0.1 * np.arange(data.n_episodes)[:, None])
    plan_many = plan_for(mech, many)  # 9 contexts x 6 profiles = 54 points > 1 episode's 42 cells
    assert plan_many.points.shape[0] > np.prod(plan_many.index.shape[1:])
    batch = np.asarray(evaluate_plan(mech, params, plan_many, episodes=np.array([2])))
    whole = np.asarray(evaluate_plan(mech, params, plan_many))
    np.testing.assert_allclose(batch[0], whole[2], rtol=1e-6)
    assert not np.allclose(whole[2], cf[2])  # the shifted covariates do change episode 2's payoffs


def test_likelihood_equals_the_literal_loop(truth, data):
    mech, params = truth
    ll = float(bd.log_likelihood(mech, params, LEARNER, data))

    def literal_payoffs(x):
        def payoff(joint):
            out = []
            for i in range(len(K)):
                u = float(params["table"][tuple(joint)][i])
                for c in range(len(x)):
                    u += float(x[c]) * float(params["slopes"][c][tuple(joint)][i])
                out.append(u)
            return np.array(out)

        return payoff

    ref = 0.0
    for m in range(data.n_episodes):
        ref += reference_log_likelihood(
            literal_payoffs(data.covariates[m]),
            data.actions[m : m + 1],
            K,
            0.3,
            2.0,
            0.05,
            lengths=data.lengths[m : m + 1],
        )
    assert ll == pytest.approx(ref, rel=1e-5)
    shuffled = _with_covariates(data, data.covariates[::-1])
    assert abs(float(bd.log_likelihood(mech, params, LEARNER, shuffled)) - ref) > 1e-2  # covariates matter


# ------------------------------------------------------------------ the model


def _log_density(spec, values):
    return float(log_density(spec.model(), (), {}, {k: np.asarray(v) for k, v in values.items()})[0])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_with_covariates_zero_the_model_is_the_tabular_model(truth):
    mech, params = truth
    plain = bd.simulate(mechanisms.Tabular(K), {"table": params["table"]}, LEARNER, n_episodes=4, T=8, key=3)
    zero = _with_covariates(plain, np.zeros((4, 2)))
    cov = ModelSpec.build(zero, mech, LEARNER, Priors())
    tab = ModelSpec.build(plain, mechanisms.Tabular(K), LEARNER, Priors())
    values = sites_from_params(mech, params)
    slopes = [values[f"u{i}_slope"] for i in range(2)]
    assert all(np.abs(s).max() > 0.1 for s in slopes)  # slopes far from 0: they must not enter
    slope_prior = sum(norm.logpdf(s, 0.0, mech.slope_prior).sum() for s in slopes)
    tab_values = {f"u{i}_free": values[f"u{i}_free"] for i in range(2)}
    assert _log_density(cov, values) - slope_prior == pytest.approx(_log_density(tab, tab_values), rel=1e-5)
    ones = ModelSpec.build(_with_covariates(plain, np.ones((4, 2))), mech, LEARNER, Priors())
    assert abs(_log_density(ones, values) - _log_density(cov, values)) > 1e-2  # negative control


def test_sites_round_trip_the_centred_table_and_slopes(truth):
    mech, params = truth
    back = params_from_sites(mech, sites_from_params(mech, params))
    tab = mechanisms.Tabular(K)
    np.testing.assert_allclose(back["table"], payoff_differences(tab, {"table": params["table"]}), atol=1e-5)
    for c in range(2):
        centred = payoff_differences(tab, {"table": params["slopes"][c]})
        np.testing.assert_allclose(back["slopes"][c], centred, atol=1e-5)


def test_data_of_equal_shapes_share_one_compiled_program(truth, data):
    mech, _ = truth
    other = _with_covariates(data, data.covariates * 2.0 + 1.0)  # same shapes, other contexts
    assert_contexts_share_one_program(mech, data, other, LEARNER, lambda x: x * 2.0 + 1.0)


# ------------------------------------------------------------------ recovery and answers

K2 = (2, 2)
SLOPE = 2.0  # agent 0's payoff of action 1 against action 0 rises by SLOPE per unit of x


@pytest.fixture(scope="module")
def recovery():
    mech = mechanisms.CovariateTabular(K2, ("x",))
    table = np.array([[[0.5, -0.5], [-0.5, 0.5]], [[-0.2, 0.4], [0.3, -0.4]]])
    slopes = np.zeros((1, 2, 2, 2))
    slopes[0, 1, 0, 0] = SLOPE
    truth = {"table": table, "slopes": slopes}
    xs = np.linspace(-1.0, 1.0, 5)[:, None]
    data = _simulate(mech, truth, xs, episodes=8, T=40, seed0=10)
    kw = dict(learner=LEARNER, seed=0, progress=False)
    return (
        mech,
        truth,
        data,
        bd.fit(data, mech, method="map", **kw),
        bd.fit(data, mech, method="laplace", **kw),
    )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_map_recovers_the_slope_within_the_laplace_sd(recovery):
    mech, truth, _, mode, laplace = recovery
    est = mode.covariate_effects()
    sd = laplace.covariate_effects(prob=0.6827)  # +-1 sd interval of the Gaussian approximation
    half_width = (sd["upper"] - sd["lower"]) / 2
    want = np.asarray(payoff_differences(mechanisms.Tabular(K2), {"table": truth["slopes"][0]}))
    want = [
        want[tuple(int(v) for v in j.split("-"))][a] for a, j in zip(est["agent"], est["joint"], strict=True)
    ]
    err = np.abs(est["mean"].to_numpy() - np.asarray(want))
    assert np.all(err < 3 * half_width.to_numpy()), (est, half_width)  # every slope, the zero ones too
    moving = (est["agent"] == 0) & (est["joint"] == "1-0")
    assert float(est.loc[moving, "mean"].iloc[0]) > 3 * float(half_width[moving].iloc[0])  # sign: clearly > 0
    assert float(laplace.covariate_effects().loc[moving, "prob_positive"].iloc[0]) > 0.99
    assert list(est.columns[:7]) == ["agent", "joint", "covariate", "mean", "lower", "upper", "prob_positive"]
    assert set(est["covariate"]) == {"x"} and len(est) == 2 * 4


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoff_table_at_covariates_is_table_plus_x_times_slopes(recovery):
    mech, _, data, _, laplace = recovery
    sites = {k: laplace.draws(k) for k in ("u0_free", "u1_free", "u0_slope", "u1_slope")}
    params = params_from_sites(mech, sites)
    d = np.asarray(params["table"]) + 0.7 * np.asarray(params["slopes"])[:, 0]
    t = laplace.payoff_table(0.8, covariates={"x": 0.7})
    np.testing.assert_allclose(t["mean"], d.mean(0), rtol=1e-6)
    np.testing.assert_allclose(t["lower"], np.quantile(d, 0.1, axis=0), rtol=1e-6)
    np.testing.assert_array_equal(t["support"], laplace.support)
    # at x = 0 the table is the recorded centred_payoffs
    np.testing.assert_allclose(
        laplace.payoff_table(covariates={"x": 0})["mean"], laplace.draws("centred_payoffs").mean(0), atol=1e-5
    )
    ds = laplace.payoff_table(covariates={"x": 0.7}, labelled=True)
    np.testing.assert_allclose(ds["mean"].values, t["mean"], rtol=1e-6)
    assert "0.7" in ds.attrs["covariates"]
    with pytest.raises(ValueError, match="missing covariate.*'x'"):
        laplace.payoff_table(covariates={})
    with pytest.raises(ValueError, match="unknown covariate.*'z'"):
        laplace.payoff_table(covariates={"x": 1.0, "z": 2.0})
    with pytest.raises(ValueError, match="'x' must be finite"):
        laplace.payoff_table(covariates={"x": np.nan})
    with pytest.raises(ValueError, match="pass covariates="):
        laplace.payoff_table()
    with pytest.raises(ValueError, match="moves with the covariates"):
        laplace.payoff_pairs()


@pytest.mark.slow
def test_nuts_agrees_with_the_laplace_approximation(recovery):
    """A short NUTS run: no divergences, and each slope's mean within half a Laplace sd of Laplace's."""
    mech, _, data, _, laplace = recovery
    with warnings.catch_warnings():  # a short run: its ESS warning is not the point here
        warnings.simplefilter("ignore", ConvergenceWarning)
        nuts = bd.fit(
            data,
            mech,
            learner=LEARNER,
            method="nuts",
            seed=0,
            progress=False,
            num_warmup=150,
            num_samples=150,
            num_chains=2,
        )
    assert nuts.info["divergences"] == 0
    a, b = laplace.covariate_effects(prob=0.6827), nuts.covariate_effects()
    half_width = ((a["upper"] - a["lower"]) / 2).to_numpy()
    assert np.all(np.abs(a["mean"].to_numpy() - b["mean"].to_numpy()) < 0.5 * half_width), (a, b)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_the_fit_saves_and_loads(recovery, tmp_path):
    *_, laplace = recovery
    path = laplace.save(tmp_path / "fit.nc")
    back = bd.load(path)
    assert back.mechanism == laplace.mechanism
    np.testing.assert_array_equal(back.data.covariates, laplace.data.covariates)
    a, b = laplace.covariate_effects(), back.covariate_effects()
    np.testing.assert_array_equal(
        a[["mean", "lower", "upper"]].to_numpy(), b[["mean", "lower", "upper"]].to_numpy()
    )


# ------------------------------------------------------------------ errors


def test_bad_input_errors(truth, data):
    mech, params = truth
    with pytest.raises(ValueError, match="distinct"):
        mechanisms.CovariateTabular(K, ("a", "a"))
    with pytest.raises(ValueError, match="at least one"):
        mechanisms.CovariateTabular(K, ())
    with pytest.raises(ValueError, match="sequence of names"):
        mechanisms.CovariateTabular(K, "ab")
    with pytest.raises(ValueError, match="slope_prior"):
        mechanisms.CovariateTabular(K, ("a",), slope_prior=0.0)
    with pytest.raises(ValueError, match=r"joint int\[..., n\]"):
        mech.payoffs(params, np.zeros((4, 3), int))
    with pytest.raises(ValueError, match=r"float\[..., C\] with C = 2"):
        mech.payoffs(params, np.zeros((4, 2), int), covariates=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"float\[C\] with C = 2"):
        mech.context_params(params, np.zeros(3))
    with pytest.raises(ValueError, match="codes int"):
        covariate_plan(data.actions[:, :-1], K, np.zeros(2, int), np.zeros((1, 2)))
    bare = bd.Trajectories(data.actions, K, lengths=data.lengths)
    with pytest.raises(DataError, match="needs data with covariates 'price', 'week'"):
        ModelSpec.build(bare, mech, LEARNER, Priors())
    with pytest.raises(DataError, match="needs data with covariates"):
        bd.log_likelihood(mech, params, LEARNER, bare)
    renamed = _with_covariates(data, data.covariates, ("price", "day"))
    with pytest.raises(DataError, match="no covariate\\(s\\) 'week'"):
        ModelSpec.build(renamed, mech, LEARNER, Priors())
    fake = types.SimpleNamespace(covariates=np.array([[0.0, np.inf]]), covariate_names=NAMES)
    with pytest.raises(DataError, match="'week' of episode 0 is inf"):
        episode_contexts(mech, fake)
    with pytest.raises(DataError, match="must be finite"):
        _with_covariates(data, np.where(np.arange(data.n_episodes)[:, None] == 1, np.nan, data.covariates))
    paid = bd.Trajectories(
        data.actions,
        K,
        lengths=data.lengths,
        payoffs=np.zeros(data.actions.shape),
        covariates=data.covariates,
        covariate_names=NAMES,
    )
    with pytest.raises(ValueError, match="payoff differences only"):
        ModelSpec.build(paid, mech, LEARNER, Priors())
    # extra covariates in the data are fine: the mechanism's are picked by name
    extra = _with_covariates(
        data, np.c_[data.covariates[:, ::-1], np.ones(data.n_episodes)], ("week", "price", "z")
    )
    codes, contexts = episode_contexts(mech, extra)
    np.testing.assert_array_equal(contexts[codes], data.covariates)


@pytest.fixture(scope="module")
def plain_fit():
    """A MAP fit of a tabular mechanism (no covariates) to tiny data."""
    data = bd.simulate(
        mechanisms.Tabular(K2), mechanisms.Tabular(K2).init(jax.random.key(0)), LEARNER, 3, 6, key=0
    )
    return bd.fit(data, mechanisms.Tabular(K2), learner=LEARNER, method="map", seed=0, progress=False)


def test_covariate_answers_need_a_covariate_fit(plain_fit):
    post = plain_fit
    with pytest.raises(ValueError, match="needs a covariate fit"):
        post.covariate_effects()
    with pytest.raises(ValueError, match="needs a covariate fit"):
        post.payoff_table(covariates={"x": 1.0})


# ------------------------------------------------------------------ the command line


def _invoke(*args, ok=True):
    from click.testing import CliRunner

    from bayes_diml.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert (result.exit_code == 0) == ok, result.output
    return " ".join(result.output.split())


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_command_line_fits_and_writes_the_covariate_effects(recovery, plain_fit, tmp_path):
    _, _, data, mode, _ = recovery
    csv = tmp_path / "data.csv"
    data.to_frame().rename(columns={"x": "price"}).to_csv(csv, index=False)
    fixed = ["--alpha", "0.3", "--beta", "2", "--eps", "0.05", "--method", "map", "--no-progress"]
    out = tmp_path / "fit.nc"
    text = _invoke("fit", csv, "--mechanism", "covariate", "--covariates", "price", *fixed, "--out", out)
    assert "moving linearly with the covariates price" in text
    effects = tmp_path / "effects.csv"
    _invoke("payoffs", out, "--covariate-effects", "--out", effects)
    frame = pd.read_csv(effects, dtype={"joint": str})
    assert list(frame.columns) == [
        "agent",
        "joint",
        "covariate",
        "mean",
        "lower",
        "upper",
        "prob_positive",
        "units",
    ]
    assert set(frame["covariate"]) == {"price"}
    np.testing.assert_allclose(frame["mean"], mode.covariate_effects()["mean"], rtol=1e-5, atol=1e-6)
    # errors, each with its message
    assert "needs --covariates" in _invoke(
        "fit", csv, "--mechanism", "covariate", *fixed, "--out", out, ok=False
    )
    assert "needs --mechanism covariate" in _invoke(
        "fit", csv, "--covariates", "price", *fixed, "--out", out, ok=False
    )
    assert "week" in _invoke(
        "fit", csv, "--mechanism", "covariate", "--covariates", "price,week", *fixed, "--out", out, ok=False
    )
    assert "--covariate-effects" in _invoke("payoffs", out, "--out", tmp_path / "t.npz", ok=False)
    plain = plain_fit.save(tmp_path / "plain.nc")
    assert "applies to a covariate fit" in _invoke(
        "payoffs", plain, "--covariate-effects", "--out", effects, ok=False
    )


def test_auto_refuses_a_level_seeing_candidate_before_fitting_any(truth, data, monkeypatch):
    """learner="auto" checks every candidate first: no fit runs, the error names the candidate."""
    import sys

    fit_module = sys.modules["bayes_diml.inference.fit"]

    def no_fit(*args, **kwargs):
        raise AssertionError("a candidate was fitted before the refusal")

    monkeypatch.setattr(fit_module, "run_fit", no_fit)
    mech, _ = truth
    with pytest.raises(
        ValueError, match=r"cannot fit candidate 'ewa': CovariateTabular models payoff differences"
    ):
        bd.fit(data, mech, learner="auto", method="laplace", candidates=("logit_q", "ewa"))
    bare = bd.Trajectories(data.actions, K, lengths=data.lengths)
    with pytest.raises(DataError, match="needs data with covariates"):  # a data problem is not a candidate's
        bd.fit(bare, mech, learner="auto", method="laplace", candidates=("logit_q", "ewa"))


def test_auto_default_candidates_are_the_families_a_context_mechanism_fits(truth, data, monkeypatch):
    """Without candidates=, auto compares the families that see payoff differences only."""
    import sys

    from bayes_diml.inference.auto import context_candidates
    from bayes_diml.learners import FAMILIES

    mech, _ = truth
    differences_only = ["logitq", "hedge", "fp", "regret", "markovq"]
    assert context_candidates(data, mech) == differences_only
    assert context_candidates(data, mechanisms.Tabular(K)) == list(FAMILIES)  # negative control
    fit_module = sys.modules["bayes_diml.inference.fit"]
    seen = {}

    def stop(candidates):
        seen["candidates"] = candidates
        raise RuntimeError("stopped before fitting")

    monkeypatch.setattr(fit_module, "auto_candidates", stop)
    with pytest.raises(RuntimeError, match="stopped before fitting"):
        bd.fit(data, mech, learner="auto", method="laplace")
    assert seen["candidates"] == differences_only
