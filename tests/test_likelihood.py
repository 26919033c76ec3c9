"""The exact likelihood (``bayes_diml.log_likelihood``) against the literal loop of ``reference.py``.

Every test uses fixed keys and seeds. Float64 runs inside the ``x64`` fixture (a context), with
params built inside it; x64 is never switched on globally.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from reference import (
    MECHANISM_BUILDERS,
    numpy_payoff_fn,
    plan_kinds,
    random_trajectories,
    reference_counterfactuals,
    reference_log_likelihood,
    reference_log_likelihood_per_step,
    to_float64,
)

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.counterfactual import evaluate_plan, make_plan, plan_for
from bayes_diml.likelihood import scan_log_policies

# Per-agent learner parameters for the n = 3 test games (agent 2 never explores).
ALPHA = (0.2, 0.55, 0.9)
BETA = (1.5, 3.0, 0.7)
EPS = (0.05, 0.2, 0.0)
Q0 = (0.1, -0.2, 0.3)


def _per_agent(values, n: int) -> np.ndarray:
    """The per-agent values for n agents (cycled when n > 3): float64[n]."""
    return np.resize(np.asarray(values, dtype=np.float64), n)


def _learner(dtype, n: int = 3, alpha=ALPHA, beta=BETA, eps=EPS, q0=Q0) -> bd.LogitQ:
    """LogitQ with per-agent float[n] parameters of the given dtype."""
    return bd.LogitQ(*(jnp.asarray(_per_agent(v, n), dtype=dtype) for v in (alpha, beta, eps, q0)))


def _reference(mech, params, data, alpha=ALPHA, beta=BETA, eps=EPS, q0=Q0, per_step=False):
    fn = reference_log_likelihood_per_step if per_step else reference_log_likelihood
    n = data.n_agents
    per_agent = [
        v if np.ndim(v) == 0 or np.ndim(v) == 2 else _per_agent(v, n) for v in (alpha, beta, eps, q0)
    ]
    return fn(
        numpy_payoff_fn(mech, params),
        data.actions,
        data.n_actions,
        *per_agent[:3],
        lengths=data.lengths,
        q0=per_agent[3],
    )


# ---------------------------------------------------------------- reference agreement


def test_reference_agreement_float64(build_mechanism, ragged_data, x64):
    mech, params = build_mechanism(jax.random.key(0))
    data = ragged_data(mech.n_actions)
    learner = _learner(jnp.float64, data.n_agents)

    ll = bd.log_likelihood(mech, params, learner, data)
    assert ll.shape == () and ll.dtype == jnp.float64
    # the test games exercise every default plan: count (anonymous), table (small), joint
    n_profiles = math.prod(mech.n_actions)
    expected_kind = "count" if plan_kinds(mech)[-1] == "count" else "table" if n_profiles <= 4096 else "joint"
    assert plan_for(mech, data).kind == expected_kind
    ref = _reference(mech, params, data)
    np.testing.assert_allclose(float(ll), ref, rtol=1e-9)

    per = np.asarray(bd.log_likelihood(mech, params, learner, data, per_step=True))
    assert per.shape == (data.n_episodes, data.n_steps - 1, data.n_agents)
    np.testing.assert_allclose(per, _reference(mech, params, data, per_step=True), rtol=1e-9, atol=1e-12)
    padding = ~np.broadcast_to(data.scored_mask[:, :, None], per.shape)
    assert padding.any() and np.all(per[padding] == 0.0)
    assert np.all(per[~padding] < 0.0) or data.n_actions[0] == 1
    np.testing.assert_allclose(per.sum(), float(ll), rtol=1e-12)

    # jit equals no-jit
    jitted = jax.jit(lambda p, lrn: bd.log_likelihood(mech, p, lrn, data))(params, learner)
    np.testing.assert_allclose(float(jitted), float(ll), rtol=1e-12)

    # a plan built once and passed in gives the same value; one for other data is refused
    plan = plan_for(mech, data)
    np.testing.assert_allclose(float(bd.log_likelihood(mech, params, learner, data, plan=plan)), float(ll))
    lp = bd.log_policies(mech, params, learner, data, plan=plan)
    np.testing.assert_array_equal(np.asarray(lp), np.asarray(bd.log_policies(mech, params, learner, data)))
    with pytest.raises(ValueError, match="plan covers"):
        bd.log_likelihood(mech, params, learner, data.subset([0]), plan=plan)


def test_counterfactuals_per_plan_kind(build_mechanism, ragged_data, x64):
    """Each counterfactual plan kind reproduces the literal counterfactuals u_i(k, a_-i(t)).

    ``log_likelihood`` uses the default kind; the learner scan that follows is the same for all.
    """
    mech, params = build_mechanism(jax.random.key(1))
    data = ragged_data(mech.n_actions, seed=1)
    ref_cf = reference_counterfactuals(numpy_payoff_fn(mech, params), data.actions, data.n_actions)
    for kind in plan_kinds(mech):
        plan = plan_for(mech, data, kind=kind)
        assert plan.kind == kind
        cf = evaluate_plan(mech, params, plan)
        assert cf.shape == ref_cf.shape and cf.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(cf), ref_cf, rtol=1e-12, atol=1e-12, err_msg=kind)
        # make_plan gives the same plan as plan_for (which checks the memory limit first)
        fresh = make_plan(mech, data.actions[:, :-1], data.n_actions, kind=kind)
        np.testing.assert_array_equal(fresh.index, plan.index)
        np.testing.assert_array_equal(fresh.points, plan.points)


@pytest.mark.slow
def test_likelihood_with_forced_plan_kind(x64):
    """The learner scan fed by a forced ``"count"`` or ``"joint"`` plan gives the reference likelihood."""
    mech = mm.Congestion(3, 4)
    params = jax.tree_util.tree_map(lambda x: 5.0 * x, mech.init(jax.random.key(14)))
    data = random_trajectories(mech.n_actions, 4, 7, seed=14, lengths=[7, 4, 1, 6])
    learner = _learner(jnp.float64, data.n_agents)
    ref = _reference(mech, params, data)
    actions = jnp.asarray(data.actions)
    scored = jnp.asarray(data.scored_mask)[:, :, None]
    for kind in ("count", "joint"):
        plan = plan_for(mech, data, kind=kind)
        cf = evaluate_plan(mech, params, plan)
        per = scan_log_policies(learner, cf, actions[:, :-1], jnp.asarray(plan.action_mask), actions[:, 1:])
        np.testing.assert_allclose(float(jnp.where(scored, per, 0.0).sum()), ref, rtol=1e-9, err_msg=kind)


_FAST_FLOAT32 = {"tabular", "congestion", "function"}


@pytest.mark.parametrize(
    "name", [n if n in _FAST_FLOAT32 else pytest.param(n, marks=pytest.mark.slow) for n in MECHANISM_BUILDERS]
)
def test_reference_agreement_float32(name, ragged_data):
    mech, params = MECHANISM_BUILDERS[name](jax.random.key(2))
    data = ragged_data(mech.n_actions, seed=2)
    ll = bd.log_likelihood(mech, params, _learner(jnp.float32, data.n_agents), data)
    assert ll.dtype == jnp.float32
    with jax.enable_x64(True):
        # the same (float32-representable) parameter values, evaluated in float64
        ref = _reference(mech, to_float64(params), data)
    rtol = 10 * data.n_steps * data.n_agents * np.finfo(np.float32).eps
    np.testing.assert_allclose(float(ll), ref, rtol=rtol)


def test_reference_agreement_q0_table_and_scalar_params(x64):
    """Shared scalar alpha/beta/eps and a per-(agent, action) q0 float[n, K_max]."""
    mech = mm.Tabular((3, 2))
    params = mech.init(jax.random.key(3))
    data = random_trajectories((3, 2), 3, 9, seed=3, lengths=[9, 2, 5])
    q0 = np.array([[0.5, -1.0, 2.0], [1.0, 0.25, 0.0]])  # agent 1's third entry is padding
    learner = bd.LogitQ(jnp.float64(0.3), jnp.float64(2.5), jnp.float64(0.1), jnp.asarray(q0))
    ll = bd.log_likelihood(mech, params, learner, data)
    ref = _reference(mech, params, data, alpha=0.3, beta=2.5, eps=0.1, q0=q0)
    np.testing.assert_allclose(float(ll), ref, rtol=1e-9)
    # q0 matters: the same data under q0 = 0 score differently
    ref0 = _reference(mech, params, data, alpha=0.3, beta=2.5, eps=0.1, q0=0.0)
    assert abs(ref - ref0) > 1e-3


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("beta, eps", [(0.0, 0.3), (2.0, 1.0)], ids=["beta0", "eps1"])
@pytest.mark.parametrize("n_actions", [(2, 3, 4), (1, 3, 2)], ids=["K234", "K132"])
def test_uniform_policy_closed_form(beta, eps, n_actions, x64):
    mech = mm.Tabular(n_actions)
    params = mech.init(jax.random.key(4))
    data = random_trajectories(n_actions, 4, 7, seed=4, lengths=[7, 4, 1, 6])
    expected = -int(data.scored_mask.sum()) * sum(math.log(k) for k in n_actions)
    ll = bd.log_likelihood(mech, params, bd.LogitQ(0.4, beta, eps), data)
    np.testing.assert_allclose(float(ll), expected, rtol=1e-12, atol=1e-12)
    with jax.enable_x64(False):
        params32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), params)
        ll32 = bd.log_likelihood(mech, params32, bd.LogitQ(0.4, beta, eps), data)
        assert ll32.dtype == jnp.float32
    rtol = 10 * data.n_steps * data.n_agents * np.finfo(np.float32).eps
    np.testing.assert_allclose(float(ll32), expected, rtol=rtol, atol=1e-5)


# ---------------------------------------------------------------- transformations


def test_vmap_over_betas_equals_loop(x64):
    mech = mm.Congestion(3, 4)
    params = jax.tree_util.tree_map(lambda x: 5.0 * x, mech.init(jax.random.key(6)))
    data = random_trajectories(mech.n_actions, 4, 7, seed=6, lengths=[7, 4, 1, 6])

    def f(beta):
        return bd.log_likelihood(mech, params, bd.LogitQ(jnp.float64(0.3), beta, jnp.float64(0.1)), data)

    shared = jnp.linspace(0.0, 4.0, 5)  # float[B]
    per_agent = jnp.asarray(np.random.default_rng(6).uniform(0.5, 4.0, size=(4, 3)))  # float[B, n]
    jf = jax.jit(f)  # the loop: one compile per beta shape
    results = {}
    for name, betas in (("shared", shared), ("per_agent", per_agent)):
        batched = results[name] = np.asarray(jax.vmap(f)(betas))
        looped = np.array([float(jf(b)) for b in betas])
        assert batched.shape == (betas.shape[0],)
        np.testing.assert_allclose(batched, looped, rtol=1e-12)
    assert len(set(np.round(results["shared"], 6))) == 5  # beta matters


@pytest.mark.slow
def test_episode_sum_equals_loop_over_subsets(x64):
    """The likelihood of M episodes is the sum of the likelihoods of each episode alone."""
    mech, params = mm.Tabular.from_table(np.random.default_rng(7).normal(size=(2, 3, 4, 3)))
    data = random_trajectories((2, 3, 4), 4, 7, seed=7, lengths=[7, 4, 1, 6])
    learner = _learner(jnp.float64, data.n_agents)
    total = float(bd.log_likelihood(mech, params, learner, data))
    parts = [float(bd.log_likelihood(mech, params, learner, data.subset([m]))) for m in range(4)]
    np.testing.assert_allclose(total, sum(parts), rtol=1e-12)
    assert parts[2] == 0.0  # an episode of length 1 has no scored step


def test_relabelling_agents_in_symmetric_game(x64):
    mech = mm.Congestion(3, 4)
    params = jax.tree_util.tree_map(lambda x: 5.0 * x, mech.init(jax.random.key(8)))
    data = random_trajectories(mech.n_actions, 4, 7, seed=8, lengths=[7, 4, 1, 6])
    permuted = bd.Trajectories(data.actions[:, :, [2, 0, 1]], mech.n_actions, lengths=data.lengths)
    learner = bd.LogitQ(0.3, 2.0, 0.1)
    np.testing.assert_allclose(
        float(bd.log_likelihood(mech, params, learner, permuted)),
        float(bd.log_likelihood(mech, params, learner, data)),
        rtol=1e-12,
    )


# ---------------------------------------------------------------- gradients


def _check_leafwise_directional_derivatives(f, params, seed, h=1e-6):
    """``<grad f, v>`` against central differences, one random direction ``v`` per leaf."""
    grads = jax.jit(jax.grad(f))(params)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    grad_leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in grad_leaves)
    assert any(np.any(np.abs(g) > 1e-6) for g in grad_leaves)
    rng = np.random.default_rng(seed)
    for j, (leaf, g) in enumerate(zip(leaves, grad_leaves, strict=True)):
        v = rng.normal(size=np.shape(leaf))

        def shifted(s, j=j, leaf=leaf, v=v):
            new = list(leaves)
            new[j] = leaf + s * v
            return jax.tree_util.tree_unflatten(treedef, new)

        fd = (float(f(shifted(h))) - float(f(shifted(-h)))) / (2 * h)
        np.testing.assert_allclose(
            float(np.sum(np.asarray(g) * v)), fd, rtol=1e-5, atol=1e-6, err_msg=f"leaf {j}"
        )


# in the default run: the table, count and joint plans, and a mechanism with scalar and MLP leaves
_FAST_GRADIENTS = {"tabular", "structured_public_goods", "symmetric_count", "function"}


@pytest.mark.parametrize(
    "name",
    [n if n in _FAST_GRADIENTS else pytest.param(n, marks=pytest.mark.slow) for n in MECHANISM_BUILDERS],
)
def test_gradient_wrt_mechanism_params(name, ragged_data, x64):
    mech, params = MECHANISM_BUILDERS[name](jax.random.key(9))
    data = ragged_data(mech.n_actions, seed=9)
    learner = _learner(jnp.float64, data.n_agents, eps=(0.05, 0.2, 0.1))
    f = jax.jit(lambda p: bd.log_likelihood(mech, p, learner, data))
    _check_leafwise_directional_derivatives(f, params, seed=9)


def test_gradient_wrt_learner_params_central_differences(x64):
    mech, params = mm.Tabular.from_table(np.random.default_rng(10).normal(size=(2, 3, 4, 3)))
    data = random_trajectories((2, 3, 4), 4, 7, seed=10, lengths=[7, 4, 1, 6])
    values = {
        "alpha": np.array([0.2, 0.55, 0.9]),
        "beta": np.array([1.5, 3.0, 0.7]),
        "eps": np.array([0.05, 0.2, 0.1]),
    }

    @jax.jit
    def f(alpha, beta, eps):
        return bd.log_likelihood(mech, params, bd.LogitQ(alpha, beta, eps), data)

    args = tuple(jnp.asarray(values[k]) for k in ("alpha", "beta", "eps"))
    grads = jax.grad(f, argnums=(0, 1, 2))(*args)
    h = 1e-6
    for j, name in enumerate(("alpha", "beta", "eps")):
        for i in range(3):
            up = [np.array(a) for a in args]
            down = [np.array(a) for a in args]
            up[j][i] += h
            down[j][i] -= h
            fd = (float(f(*map(jnp.asarray, up))) - float(f(*map(jnp.asarray, down)))) / (2 * h)
            np.testing.assert_allclose(float(grads[j][i]), fd, rtol=1e-6, atol=1e-7, err_msg=f"{name}[{i}]")
        assert np.any(np.abs(np.asarray(grads[j])) > 1e-3), name
    check_grads(f, args, order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


def test_gradient_wrt_eps_at_the_boundaries(x64):
    """One-sided derivatives at eps = 0 and eps = 1 (both in LogitQ's documented range [0, 1]).

    Regression test: ``epsilon_mixture`` used to give -1 per term at eps = 0 (the eps / K_i
    branch's 0 * inf derivative masked to 0) and NaN at eps = 1.
    """
    mech, params = mm.Tabular.from_table(np.random.default_rng(15).normal(size=(2, 3, 2)))
    data = random_trajectories((2, 3), 3, 6, seed=15)

    def ll(eps):
        return bd.log_likelihood(mech, params, bd.LogitQ(0.3, 2.0, eps), data)

    # one compiled program for the values and one for the derivative (rather than op by op)
    f, grad = jax.jit(ll), jax.jit(jax.grad(ll))
    h = 1e-7
    for eps, fd in ((0.0, (f(h) - f(0.0)) / h), (1.0, (f(1.0) - f(1.0 - h)) / h)):
        np.testing.assert_allclose(float(grad(jnp.float64(eps))), float(fd), rtol=1e-4, err_msg=f"eps={eps}")


# ---------------------------------------------------------------- gauge


def test_gauge_invariance_tabular(x64):
    n_actions = (2, 3, 4)
    rng = np.random.default_rng(11)
    table = rng.normal(size=(*n_actions, 3))
    mech, params = mm.Tabular.from_table(table)
    data = random_trajectories(n_actions, 4, 7, seed=11, lengths=[7, 4, 1, 6])
    learner = _learner(jnp.float64, data.n_agents)
    base = float(bd.log_likelihood(mech, params, learner, data))

    shifted = table.copy()
    for i in range(3):
        shape = list(n_actions)
        shape[i] = 1  # c_i(a_-i): constant along agent i's own action
        shifted[..., i] += 3.0 * rng.normal(size=shape)
    gauge = float(bd.log_likelihood(mech, mech.params_from_table(shifted), learner, data))
    assert abs(gauge - base) <= 1e-10 * abs(base)

    changed = table.copy()
    changed[..., 0] += np.array([0.0, 1.0])[:, None, None]  # depends on agent 0's own action
    other = float(bd.log_likelihood(mech, mech.params_from_table(changed), learner, data))
    assert abs(other - base) > 1e-3


# ---------------------------------------------------------------- tracing


def test_likelihood_traces_once_under_jit(x64):
    traces = []

    def payoff(params, joint):
        traces.append(1)  # runs only while JAX traces
        return params["w"][jnp.arange(joint.shape[0]), joint] * (1.0 + 0.1 * joint.sum())

    mech = mm.Function(payoff, lambda key: {"w": jax.random.normal(key, (3, 4))}, n_actions=(2, 3, 4))
    data = random_trajectories(mech.n_actions, 4, 7, seed=12, lengths=[7, 4, 1, 6])
    f = jax.jit(lambda p, lrn: bd.log_likelihood(mech, p, lrn, data))
    values = []
    for seed in range(3):
        params = mech.init(jax.random.key(seed))
        learner = bd.LogitQ(jnp.float64(0.2 + 0.1 * seed), jnp.float64(1.0 + seed), jnp.float64(0.1))
        values.append(float(f(params, learner)))
    assert len(traces) == 1
    assert len(set(values)) == 3


# ---------------------------------------------------------------- shapes and errors


def test_per_step_shape_float32():
    mech = mm.Congestion(3, 4)
    params = mech.init(jax.random.key(13))
    data = random_trajectories(mech.n_actions, 4, 7, seed=13, lengths=[7, 4, 1, 6])
    per = bd.log_likelihood(mech, params, bd.LogitQ(0.3, 2.0, 0.1), data, per_step=True)
    assert per.shape == (4, 6, 3) and per.dtype == jnp.float32
    assert np.all(np.asarray(per)[2] == 0.0) and np.all(np.asarray(per)[1, 3:] == 0.0)


def test_mismatched_n_actions_raises():
    mech = mm.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    data = random_trajectories((2, 4), 2, 3, seed=0)
    with pytest.raises(ValueError, match=re.escape("(2, 3)")) as info:
        bd.log_likelihood(mech, params, bd.LogitQ(0.3, 2.0, 0.1), data)
    assert "(2, 4)" in str(info.value)


def test_non_trajectories_data_raises():
    mech = mm.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    actions = random_trajectories((2, 3), 2, 3, seed=0).actions
    with pytest.raises(TypeError, match="Trajectories"):
        bd.log_likelihood(mech, params, bd.LogitQ(0.3, 2.0, 0.1), actions)


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": np.full(3, 0.3)}, "alpha"),  # n = 2 agents
        ({"alpha": np.full((2, 1), 0.3)}, "alpha"),
        ({"beta": -1.0}, "beta"),
        ({"eps": 1.5}, "eps"),
        ({"eps": np.array([0.1, np.nan])}, "eps"),
    ],
)
def test_invalid_learner_raises(changes, name):
    mech = mm.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    data = random_trajectories((2, 3), 2, 3, seed=0)
    learner = bd.LogitQ(0.3, 2.0, 0.1)._replace(**changes)
    with pytest.raises(ValueError, match=name):
        bd.log_likelihood(mech, params, learner, data)
