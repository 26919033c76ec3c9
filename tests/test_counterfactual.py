"""Counterfactual payoffs: the three plan kinds, the simulator's per-step path, padding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import numpy_payoff_fn, random_trajectories, reference_counterfactuals

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.counterfactual import (
    action_mask,
    counterfactual_payoffs,
    evaluate_plan,
    make_plan,
    plan_for,
    step_counterfactuals,
)


@pytest.fixture
def congestion_game():
    """Congestion, 3 agents x 4 routes: small enough for all three plan kinds."""
    mech = mm.Congestion(3, 4)
    params = mech.init(jax.random.key(0))
    data = random_trajectories(mech.n_actions, 5, 8, seed=0, lengths=[8, 3, 1, 8, 5])
    return mech, params, data


def test_three_plan_kinds_agree(congestion_game, x64):
    mech, params, data = congestion_game
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), params)
    out = {
        kind: np.asarray(counterfactual_payoffs(mech, params, data, kind=kind))
        for kind in ("table", "joint", "count")
    }
    ref = reference_counterfactuals(numpy_payoff_fn(mech, params), data.actions, data.n_actions)
    for kind, cf in out.items():
        assert cf.shape == (5, 7, 3, 4), kind
        np.testing.assert_allclose(cf, ref, rtol=1e-13, atol=1e-14, err_msg=kind)
    # a count mechanism gets the count plan by default (fewer rows than its table, P = 64)
    assert plan_for(mech, data).kind == "count"
    assert plan_for(mech, data, kind="table").n_evaluations == 64
    assert plan_for(mech, data, kind="count").n_evaluations % 4 == 0
    assert plan_for(mech, data, kind="joint").n_evaluations <= 64


@pytest.mark.parametrize("n_actions", [(3, 2, 4), (4, 3), (2, 2, 2, 3)])
def test_table_row_gather_matches_joint_plan_in_value_and_gradient(n_actions, x64):
    """The table plan gathers whole rows u_i(., a_-i); the joint plan gathers cells one by one."""
    mech = mm.Tabular(n_actions)
    params = {"table": jax.random.normal(jax.random.key(3), (*n_actions, len(n_actions)), jnp.float64)}
    data = random_trajectories(n_actions, 4, 9, seed=2, lengths=[9, 2, 5, 9])
    weights = jax.random.normal(jax.random.key(5), (4, 8, len(n_actions), max(n_actions)), jnp.float64)

    def loss(p, kind):
        return (weights * counterfactual_payoffs(mech, p, data, kind=kind)).sum()

    ref = reference_counterfactuals(numpy_payoff_fn(mech, params), data.actions, data.n_actions)
    np.testing.assert_allclose(counterfactual_payoffs(mech, params, data, kind="table"), ref, rtol=1e-13)
    g_table = jax.grad(loss)(params, "table")["table"]
    g_joint = jax.grad(loss)(params, "joint")["table"]
    np.testing.assert_allclose(g_table, g_joint, rtol=1e-12, atol=1e-13)
    assert np.abs(g_table).max() > 0


def test_plans_are_built_per_call_and_not_cached_on_the_data(congestion_game):
    mech, params, data = congestion_game
    first, again = plan_for(mech, data, kind="joint"), plan_for(mech, data, kind="joint")
    assert first is not again  # no hidden cache: whoever reuses a plan holds it
    np.testing.assert_array_equal(first.index, again.index)
    np.testing.assert_array_equal(first.points, again.points)
    assert plan_for(mech, data, kind="count").kind == "count"
    # a plan passed in is used as it is; the result equals the one built inside
    np.testing.assert_array_equal(
        counterfactual_payoffs(mech, params, data, plan=first), counterfactual_payoffs(mech, params, data)
    )
    assert not hasattr(data, "_cache")  # nothing is cached on the data object


def test_default_kind_follows_table_limit():
    mech = mm.Congestion(3, 4)
    actions = random_trajectories(mech.n_actions, 2, 4, seed=1).actions
    assert make_plan(mech, actions, mech.n_actions).kind == "count"
    assert make_plan(mech, actions, mech.n_actions, table_limit=10).kind == "count"
    tab = mm.Tabular((3, 4))
    actions = random_trajectories(tab.n_actions, 2, 4, seed=1).actions
    assert make_plan(tab, actions, tab.n_actions).kind == "table"
    assert make_plan(tab, actions, tab.n_actions, table_limit=10).kind == "joint"


@pytest.mark.parametrize(
    "build, table_limit, branch",
    [
        (lambda key: (mm.Tabular((2, 3, 4)), mm.Tabular((2, 3, 4)).init(key)), None, "table"),
        (lambda key: (mm.Congestion(3, 4), mm.Congestion(3, 4).init(key)), 1, "count"),
        (
            lambda key: (mm.SymmetricCount(3, 4, width=8), mm.SymmetricCount(3, 4, width=8).init(key)),
            1,
            "count",
        ),
        (
            lambda key: (mm.NeuralJoint((2, 3, 4), width=8), mm.NeuralJoint((2, 3, 4), width=8).init(key)),
            1,
            "joint",
        ),
        (lambda key: (mm.Tabular((2, 3, 4)), mm.Tabular((2, 3, 4)).init(key)), 1, "joint"),
    ],
    ids=["tabular-table", "congestion-count", "symmetric-count", "neural-joint", "tabular-joint"],
)
def test_step_counterfactuals_agree_with_counterfactual_payoffs(build, table_limit, branch, x64):
    mech, params = build(jax.random.key(2))
    data = random_trajectories(mech.n_actions, 3, 6, seed=2)
    expected = np.asarray(counterfactual_payoffs(mech, params, data))  # [M, T-1, n, K]
    kwargs = {} if table_limit is None else {"table_limit": table_limit}
    step = step_counterfactuals(mech, params, mech.n_actions, **kwargs)
    joints = jnp.asarray(data.actions[:, :-1].reshape(-1, data.n_agents))
    got = np.asarray(jax.vmap(step)(joints)).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)
    # one joint at a time (as the simulator's scan calls it), under jit
    np.testing.assert_allclose(np.asarray(jax.jit(step)(joints[0])), expected[0, 0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("table_limit", [None, 1], ids=["table", "joint"])
def test_padded_actions_are_zero(table_limit):
    mech = mm.Tabular((2, 4, 3))
    params = {"table": 1.0 + jax.random.uniform(jax.random.key(3), mech.table_shape)}  # all payoffs >= 1
    data = random_trajectories(mech.n_actions, 3, 5, seed=3)
    mask = action_mask(mech.n_actions)
    np.testing.assert_array_equal(mask, [[True, True, False, False], [True] * 4, [True, True, True, False]])
    for kind in ("table", "joint"):
        cf = np.asarray(counterfactual_payoffs(mech, params, data, kind=kind))
        assert np.all(cf[..., ~mask] == 0.0), kind
        assert np.all(cf[..., mask] >= 1.0), kind
    kwargs = {} if table_limit is None else {"table_limit": table_limit}
    step = step_counterfactuals(mech, params, mech.n_actions, **kwargs)
    for joint in data.actions[:, 0]:
        out = np.asarray(step(jnp.asarray(joint)))
        assert np.all(out[~mask] == 0.0) and np.all(out[mask] >= 1.0)


def test_counterfactuals_hold_realised_payoff_at_realised_action(congestion_game):
    mech, params, data = congestion_game
    cf = np.asarray(counterfactual_payoffs(mech, params, data))  # [M, T-1, n, K]
    realised = np.take_along_axis(cf, data.actions[:, :-1, :, None], axis=-1)[..., 0]
    expected = np.asarray(mech.payoffs(params, jnp.asarray(data.actions[:, :-1])))
    np.testing.assert_allclose(realised, expected, rtol=1e-6)


def test_plan_errors():
    mech = mm.Congestion(3, 4)
    actions = random_trajectories(mech.n_actions, 2, 4, seed=4).actions
    with pytest.raises(ValueError, match="unknown plan kind"):
        make_plan(mech, actions, mech.n_actions, kind="tabel")
    tab = mm.Tabular((3, 4))
    with pytest.raises(ValueError, match="count_payoffs"):
        make_plan(tab, actions[..., :2], tab.n_actions, kind="count")
    with pytest.raises(ValueError, match="n_actions"):
        make_plan(mech, actions, (4, 4, 5))
    with pytest.raises(TypeError, match="not a mechanism"):
        make_plan(object(), actions, mech.n_actions)
    data = random_trajectories(mech.n_actions, 2, 4, seed=4)
    params = mech.init(jax.random.key(4))
    assert evaluate_plan(mech, params, make_plan(mech, data.actions[:, :-1], data.n_actions)).shape == (
        2,
        3,
        3,
        4,
    )
    assert isinstance(data, bd.Trajectories)
