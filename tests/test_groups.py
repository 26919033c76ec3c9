"""Grouped fits (GroupedTabular): plan, likelihood, model, group posteriors and contrasts."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpyro.handlers import seed, substitute, trace
from reference import reference_log_likelihood, table_payoff_fn

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.counterfactual import counterfactual_payoffs, grouped_plan, plan_for
from bayes_diml.inference import ModelSpec
from bayes_diml.metrics import payoff_differences
from bayes_diml.models import GROUP_SCALE, Priors, params_from_sites, sites_from_params

K = (2, 3)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
TAB = mechanisms.Tabular(K)


def _arms(tables, episodes=(5, 4), T=9, seed0=0):
    tab = mechanisms.Tabular(K)
    parts = [
        bd.simulate(tab, {"table": t}, LEARNER, n_episodes=e, T=T, key=seed0 + j)
        for j, (t, e) in enumerate(zip(tables, episodes, strict=True))
    ]
    return bd.Trajectories.concat(parts, groups=[f"arm{j}" for j in range(len(tables))])


@pytest.fixture(scope="module")
def tables():
    keys = jax.random.split(jax.random.key(7), 3)
    return [np.asarray(mechanisms.Tabular(K).init(k)["table"]) for k in keys]


# ------------------------------------------------------------------ the plan and the likelihood


def test_grouped_plan_gives_each_episode_its_groups_counterfactuals(tables):
    data = _arms(tables, episodes=(3, 2, 2))
    mech = mechanisms.GroupedTabular(K, data.group_names)
    params = {"table": np.stack(tables)}
    cf = np.asarray(counterfactual_payoffs(mech, params, data))  # [M, T-1, n, K]
    codes = np.array([mech.group_code(g) for g in data.groups])
    for m in range(data.n_episodes):
        own = np.asarray(
            counterfactual_payoffs(mechanisms.Tabular(K), {"table": tables[codes[m]]}, data.subset([m]))
        )
        np.testing.assert_allclose(cf[m], own[0], rtol=0, atol=0)
    # negative control: the other group's table gives other counterfactuals
    other = np.asarray(
        counterfactual_payoffs(mechanisms.Tabular(K), {"table": tables[1 - codes[0]]}, data.subset([0]))
    )
    assert not np.allclose(cf[0], other[0])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_grouped_likelihood_equals_the_literal_loop_per_group(tables):
    data = _arms(tables[:2])
    mech = mechanisms.GroupedTabular(K, data.group_names)
    ll = float(bd.log_likelihood(mech, {"table": np.stack(tables[:2])}, LEARNER, data))
    codes = np.array([mech.group_code(g) for g in data.groups])
    ref = sum(
        reference_log_likelihood(
            table_payoff_fn(tables[codes[m]]),
            data.actions[m : m + 1],
            K,
            0.3,
            2.0,
            0.05,
            lengths=data.lengths[m : m + 1],
        )
        for m in range(data.n_episodes)
    )
    assert ll == pytest.approx(ref, rel=1e-5)
    swapped = float(bd.log_likelihood(mech, {"table": np.stack(tables[:2][::-1])}, LEARNER, data))
    assert abs(swapped - ref) > 1e-2  # the group's table matters


def test_the_plan_deduplicates_within_groups_only():
    actions = np.zeros((2, 3, 2), dtype=np.int64)
    plan = grouped_plan(actions, K, np.array([0, 1]))
    # every counterfactual joint of a step of zeros: (k, 0) for k < 2 and (0, k) for k < 3 -> 4 distinct,
    # once per group
    assert plan.points.shape == (8, 3) and set(plan.points[:, -1]) == {0, 1}


# ------------------------------------------------------------------ the model


def test_one_group_is_the_tabular_model(tables):
    """With one group, the grouped model's likelihood at (shared, scale, deviation) is the tabular one's."""
    data = bd.simulate(mechanisms.Tabular(K), {"table": tables[0]}, LEARNER, n_episodes=4, T=8, key=3)
    data = bd.Trajectories.concat([data], groups=["only"])
    grouped = ModelSpec.build(data, mechanisms.GroupedTabular(K, ("only",)), LEARNER, Priors())
    plain = ModelSpec.build(data, mechanisms.Tabular(K), LEARNER, Priors())
    rng = np.random.default_rng(0)
    sites = {f"u{i}_free": rng.normal(size=s) for i, s in enumerate([(1, 3), (2, 2)])}
    sites |= {f"u{i}_group": rng.normal(size=(1, *sites[f"u{i}_free"].shape)) for i in range(2)}
    sites[GROUP_SCALE] = np.asarray(0.7)
    table = np.asarray(params_from_sites(grouped.mechanism, sites)["table"][0])
    plain_sites = sites_from_params(plain.mechanism, {"table": table})

    def loglik(spec, values):
        tr = trace(substitute(seed(spec.model(), 0), data=values)).get_trace()
        return float(
            sum(site["fn"].log_prob(site["value"]).sum() for site in tr.values() if site.get("is_observed"))
        )

    a, b = loglik(grouped, sites), loglik(plain, plain_sites)
    assert a == pytest.approx(b, rel=1e-5)
    centred = np.asarray(payoff_differences(mechanisms.Tabular(K), {"table": table}))
    np.testing.assert_allclose(table, centred, atol=1e-5)  # the grouped tables are centred
    other = dict(sites, group_scale=np.asarray(0.1))
    assert abs(loglik(grouped, other) - b) > 1e-3  # negative control: the deviation enters


def test_sites_round_trip_the_tables(tables):
    mech = mechanisms.GroupedTabular(K, ("a", "b", "c"))
    centred = np.stack([np.asarray(payoff_differences(mechanisms.Tabular(K), {"table": t})) for t in tables])
    back = np.asarray(params_from_sites(mech, sites_from_params(mech, {"table": np.stack(tables)}))["table"])
    np.testing.assert_allclose(back, centred, atol=1e-5)


# ------------------------------------------------------------------ errors


def test_bad_input_errors(tables):
    data = _arms(tables[:2])
    with pytest.raises(ValueError, match="distinct"):
        mechanisms.GroupedTabular(K, ("a", "a"))
    with pytest.raises(ValueError, match="at least one"):
        mechanisms.GroupedTabular(K, ())
    with pytest.raises(ValueError, match="sequence of labels"):
        mechanisms.GroupedTabular(K, "ab")
    with pytest.raises(ValueError, match="group_scale_prior must be > 0"):
        mechanisms.GroupedTabular(K, ("a", "b"), group_scale_prior=0.0)
    mech = mechanisms.GroupedTabular(K, data.group_names)
    with pytest.raises(ValueError, match=r"int\[..., n \+ 1\]"):
        mech.payoffs(mech.init(jax.random.key(0)), np.zeros((4, 2), int))
    with pytest.raises(ValueError, match="unknown group 'z'"):
        mech.group_code("z")
    plain = bd.simulate(mechanisms.Tabular(K), {"table": tables[0]}, LEARNER, n_episodes=2, T=5, key=0)
    with pytest.raises(ValueError, match="needs data with groups"):
        plan_for(mech, plain)
    with pytest.raises(ValueError, match="'arm1' that the mechanism does not know"):
        ModelSpec.build(data, mechanisms.GroupedTabular(K, ("arm0",)), LEARNER, None)
    with pytest.raises(ValueError, match="'extra' of the mechanism have no episode"):
        ModelSpec.build(data, mechanisms.GroupedTabular(K, ("arm0", "arm1", "extra")), LEARNER, None)
    paid = bd.Trajectories(data.actions, K, payoffs=np.zeros(data.actions.shape), groups=data.groups)
    with pytest.raises(ValueError, match="payoff differences only"):
        ModelSpec.build(paid, mech, LEARNER, None)
    with pytest.raises(ValueError, match="payoff differences only"):
        ModelSpec.build(data, mech, bd.BanditQ(alpha=0.3, beta=1.0, eps=0.05), None)
    for method in ("map", "laplace"):  # the mode pools every group: refused, not silently identical
        with pytest.raises(ValueError, match="between-group scale"):
            bd.fit(data, mech, LEARNER, method)


# ------------------------------------------------------------------ a fitted grouped posterior


@pytest.fixture(scope="module")
def fitted(tables):
    shifted = tables[0].copy()
    shifted[1, :, 0] += 1.5  # arm1: agent 0's action 1 pays 1.5 more against every opponent action
    data = _arms([tables[0], shifted], episodes=(12, 12), T=25)
    mech = mechanisms.GroupedTabular(K, data.group_names)
    post = bd.fit(
        data,
        mech,
        bd.LogitQ(0.3, 2.0, 0.05),
        method="nuts",
        num_warmup=150,
        num_samples=150,
        num_chains=2,
        progress=False,
    )
    return post, shifted


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_group_posteriors_and_the_contrast_pair_draw_by_draw(fitted, tables):
    post, shifted = fitted
    assert post.grouped and post.idata["posterior"]["centred_payoffs"].dims[2] == "group"
    a, b = post.for_group("arm0"), post.for_group("arm1")
    assert not a.grouped and a.data.n_episodes == 12 and set(a.data.groups) == {"arm0"}
    da, db = a.payoff_differences(), b.payoff_differences()
    # the group posterior's sites give its table (rebuilt from u{i}_free = shared + scale x deviation)
    np.testing.assert_allclose(a.payoff_differences(n_draws=a.n_draws), da, atol=1e-4)
    c = post.contrast("arm1", "arm0", prob=0.8)
    assert list(c.columns[:6]) == ["agent", "joint", "mean", "lower", "upper", "prob_positive"]
    assert len(c) == 6 * 2 and c["joint"].iloc[0] == "0-0" and c["agent"].iloc[-1] == 1
    diff = (db - da)[:, 1, 2, 0]  # agent 0, joint (1, 2)
    row = c[(c["agent"] == 0) & (c["joint"] == "1-2")].iloc[0]
    assert row["mean"] == pytest.approx(diff.mean(), abs=1e-5)
    assert row["prob_positive"] == pytest.approx((diff > 0).mean())
    assert row["lower"] == pytest.approx(np.quantile(diff, 0.1), abs=1e-5)
    np.testing.assert_allclose(post.payoff_table(group="arm1")["mean"], db.mean(0), atol=1e-5)
    # the changed cells: centred change +0.75 at action 1, -0.75 at action 0 (agent 0), nothing for agent 1
    agent0 = c[c["agent"] == 0]
    up = agent0["joint"].str.startswith("1")
    assert (agent0[up]["mean"] > 0).all() and (agent0[~up]["mean"] < 0).all()
    assert post.summary().index.str.startswith("group[arm1] centred_payoffs").sum() == 12


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_grouped_fit_errors_and_persistence(fitted, tmp_path):
    post, _ = fitted
    with pytest.raises(ValueError, match="pass group= one of arm0, arm1"):
        post.payoff_table()
    with pytest.raises(ValueError, match=r"post.for_group\(g\).payoff_pairs"):
        post.payoff_pairs()
    with pytest.raises(ValueError, match="for_group"):
        post.counterfactual()
    with pytest.raises(ValueError, match="two different groups"):
        post.contrast("arm0", "arm0")
    with pytest.raises(ValueError, match="unknown group 'armX'"):
        post.for_group("armX")
    plain = post.for_group("arm0")
    with pytest.raises(ValueError, match="needs a grouped fit"):
        plain.contrast("arm0", "arm1")
    back = bd.load(post.save(tmp_path / "grouped.nc"))
    assert back.grouped and back.mechanism == post.mechanism
    np.testing.assert_array_equal(back.data.groups, post.data.groups)
    assert back.contrast("arm1", "arm0").equals(post.contrast("arm1", "arm0"))
