"""Scale features: count-plan deduplication, checkpointed time segments, episode minibatches, sharding.

Deterministic (fixed seeds). Float64 comparisons run inside the ``x64`` fixture.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density
from reference import random_trajectories

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.counterfactual import evaluate_plan, make_plan, plan_for
from bayes_diml.likelihood import auto_segment_length, scan_log_policies
from bayes_diml.models import Priors, logit_q_model

# ------------------------------------------------------------------ count plans


def test_count_plan_is_exactly_the_distinct_opponent_counts():
    """Every (step, agent) maps to its own opponent counts, and no point is planned twice."""
    rng = np.random.default_rng(3)
    n, K = 9, 4
    actions = rng.integers(0, K, size=(3, 6, n))
    actions[1, 2] = actions[0, 1]  # a repeated step: its pairs must be shared
    plan = make_plan(mm.SymmetricCount(n, K, width=4), actions, (K,) * n, kind="count")
    onehot = np.eye(K, dtype=int)[actions]
    opp = onehot.sum(-2, keepdims=True) - onehot  # [M, T, n, K], brute force
    np.testing.assert_array_equal(plan.points[plan.index], opp)
    assert (
        len(np.unique(plan.points, axis=0)) == len(plan.points) == len(np.unique(opp.reshape(-1, K), axis=0))
    )


def test_count_plan_cost_follows_distinct_count_vectors_not_agents():
    """Identical agents: 3000 agents playing two count profiles need 2 x (own actions) points."""
    n, K = 3000, 50
    base = np.arange(n) % 3  # agents play actions 0, 1, 2
    actions = np.stack([base, np.roll(base, 1), base[::-1].copy()])[None]  # [1, 3, n]: one count vector
    plan = make_plan(mm.SymmetricCount(n, K, width=4), actions, (K,) * n, kind="count")
    assert plan.points.shape == (3, K)  # 1 count vector x 3 own actions
    assert plan.n_evaluations == 3 * K  # not 3 steps x 3000 agents x 50 actions


# ------------------------------------------------------------------ time segments


def _tabular_case(T: int, M: int = 3, seed: int = 0):
    mech = mm.Tabular((3, 2, 4))
    data = random_trajectories(mech.n_actions, M, T, seed, lengths=[T, T - 5, 2][:M])
    params = mech.init(jax.random.key(seed))
    params = {"table": params["table"] + jax.random.normal(jax.random.key(seed + 1), params["table"].shape)}
    return mech, params, data


def test_segmented_scan_equals_plain_scan(x64):
    """Value and gradient with checkpointed segments (dividing T-1 = 22 or not) equal the plain scan's."""
    mech, params, data = _tabular_case(T=23)  # 22 transitions

    def ll(p, beta, seg):
        return bd.log_likelihood(mech, p, bd.LogitQ(0.3, beta, 0.1), data, segment_length=seg)

    f = jax.jit(jax.value_and_grad(ll, argnums=(0, 1)), static_argnums=2)
    v0, (g0, b0) = f(params, 2.0, 0)
    for segment in (4, 11):  # 5 segments + a tail of 2; 2 whole segments
        v1, (g1, b1) = f(params, 2.0, segment)
        np.testing.assert_allclose(v1, v0, rtol=1e-13)
        np.testing.assert_allclose(g1["table"], g0["table"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b1, b0, rtol=1e-10)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_segmented_scan_full_log_policies_and_errors(x64):
    mech, params, data = _tabular_case(T=12)
    plan = plan_for(mech, data)
    cf = evaluate_plan(mech, params, plan)
    args = (bd.LogitQ(0.3, 2.0, 0.1), cf, jnp.asarray(data.actions[:, :-1]), jnp.asarray(plan.action_mask))
    np.testing.assert_allclose(
        scan_log_policies(*args, segment_length=3), scan_log_policies(*args, segment_length=0)
    )
    with pytest.raises(ValueError, match="segment_length must be >= 0"):
        scan_log_policies(*args, segment_length=-2)


def test_auto_segment_length():
    assert auto_segment_length(200, 8 * 4 * 5) == 0  # small: one plain scan
    assert auto_segment_length(9_999, 2_000) == 100  # ceil(sqrt(9999))
    assert auto_segment_length(10_000, 2_000) == 100
    assert auto_segment_length(10_001, 2_000) == 101


@pytest.mark.slow
def test_segmented_gradient_at_ten_thousand_steps(x64):
    """T = 10,000: the sqrt(T)-segmented gradient equals the unsegmented one to 1e-10 (float64).

    Also the float64 ``value`` agrees to 1e-12 relative. A segment that dropped or repeated a
    step, or a checkpoint that restored the wrong state, changes both far beyond that.
    """
    mech = mm.Congestion(4, 5)
    truth = mech.init(jax.random.key(0))
    data = bd.simulate(mech, truth, bd.LogitQ(0.25, 3.0, 0.06), n_episodes=2, T=10_000, key=1)
    params = mech.init(jax.random.key(7))

    def ll(p, seg):
        return bd.log_likelihood(mech, p, bd.LogitQ(0.25, 3.0, 0.06), data, segment_length=seg)

    f = jax.jit(jax.value_and_grad(ll), static_argnums=1)
    v0, g0 = f(params, 0)
    v1, g1 = f(params, 100)  # 9,999 transitions: 99 segments of 100 and a tail of 99
    np.testing.assert_allclose(v1, v0, rtol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * float(np.max(np.abs(b))))


# ------------------------------------------------------------------ episode minibatches


def _minibatch_case(M: int = 12):
    mech = mm.Tabular((3, 2))
    data = random_trajectories(mech.n_actions, M, 6, seed=5, lengths=[6, 4, 6, 2] * (M // 4))
    learner = bd.LogitQ(0.3, "infer", 0.1)
    values = {
        "u0_free": jnp.array([[0.3, -0.2], [0.5, 0.1]]),
        "u1_free": jnp.array([[0.4], [-0.3], [0.2]]),
        "beta": 1.7,
    }
    return mech, data, learner, values


def _grad_log_joint(data, mech, learner, values, key, batch_size):
    def lj(v):
        model = numpyro.handlers.seed(logit_q_model, key)
        return log_density(model, (data, mech, learner, Priors()), {"batch_size": batch_size}, v)[0]

    return jax.jit(jax.grad(lj))(values)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_minibatch_log_joint_gradient_is_unbiased(x64):
    """Average of minibatch gradients (B = 4 of M = 12 episodes) = full-batch gradient, within MC error.

    The estimator is prior + (M / B) x sum over a uniformly subsampled batch. Its mean over
    1000 draws is compared per coordinate with z = 5 (with 9 coordinates a false failure
    has probability < 1e-5); the test fails for a wrong scale (e.g. no M / B factor) or a
    batch that always holds the same episodes.
    """
    mech, data, learner, values = _minibatch_case()
    full = _grad_log_joint(data, mech, learner, values, jax.random.key(0), None)
    keys = jax.random.split(jax.random.key(1), 1000)
    draws = jax.jit(jax.vmap(lambda k: _grad_log_joint(data, mech, learner, values, k, 4)))(keys)
    for name in values:
        d = np.asarray(draws[name]).reshape(len(keys), -1)
        mean, se = d.mean(0), d.std(0, ddof=1) / np.sqrt(len(keys))
        assert np.all(se > 0), name  # the batches do vary
        np.testing.assert_array_less(np.abs(mean - np.asarray(full[name]).reshape(-1)), 5 * se + 1e-12)


def test_minibatch_evaluates_only_the_batch(x64):
    """The subsampled model's counterfactuals and scan are batch-sized and match the full model's rows."""
    mech, data, learner, values = _minibatch_case()
    model = numpyro.handlers.substitute(numpyro.handlers.seed(logit_q_model, 3), data=values)

    @functools.partial(jax.jit, static_argnums=0)
    def actions_site(batch_size):  # (episodes, observed actions, their log-probs, scale)
        tr = numpyro.handlers.trace(model).get_trace(data, mech, learner, Priors(), batch_size=batch_size)
        site = tr["actions"]
        scale = 1.0 if site["scale"] is None else site["scale"]
        return tr["episode"]["value"], site["value"], site["fn"].log_prob(site["value"]), jnp.asarray(scale)

    idx, obs, lp, scale = (np.asarray(x) for x in actions_site(4))
    _, _, lp_full, _ = (np.asarray(x) for x in actions_site(None))
    assert obs.shape == (4, 5, 2) and len(set(idx.tolist())) == 4
    np.testing.assert_array_equal(obs, data.actions[idx, 1:])
    np.testing.assert_allclose(lp, lp_full[idx], rtol=1e-12)
    assert float(scale) == pytest.approx(12 / 4)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("kind", ["count", "joint"])
def test_evaluate_plan_on_episode_subset(kind, x64):
    """Selecting episodes gives the same rows whether points are shared or evaluated directly."""
    mech = mm.SymmetricCount(3, 4, width=8)
    params = mech.init(jax.random.key(0))
    data = random_trajectories(mech.n_actions, 6, 5, seed=2)
    plan = plan_for(mech, data, kind=kind)
    full = np.asarray(evaluate_plan(mech, params, plan))
    for sel in (np.array([4, 1]), np.arange(6)):  # 2 episodes: direct path; all 6: shared rows
        np.testing.assert_allclose(evaluate_plan(mech, params, plan, jnp.asarray(sel)), full[sel], rtol=1e-12)


def test_svi_config_batch_size_is_checked():
    from bayes_diml.inference import SVIConfig

    with pytest.raises(ValueError, match="batch_size"):
        SVIConfig(batch_size=0)


@pytest.mark.slow
def test_minibatch_svi_recovers_payoffs():
    """M = 2000 episodes, batches of 50: SVI recovers the payoff differences of a 3 x 3 game.

    Tolerance: the posterior mean's RMSE against the truth must be below 0.15 (the payoffs
    have scale ~1; a fit that ignores the data stays at 0 with RMSE ~0.7).
    """
    mech = mm.Tabular((3, 3))
    truth = mech.init(jax.random.key(0))
    truth = {"table": jax.random.normal(jax.random.key(4), truth["table"].shape)}
    learner = bd.LogitQ(0.3, 2.0, 0.05)
    data = bd.simulate(mech, truth, learner, n_episodes=2000, T=12, key=1)
    post = bd.fit(
        data,
        mech,
        learner=learner,
        method="svi",
        seed=0,
        progress=False,
        log_likelihood=False,
        init="prior",
        num_steps=1500,
        learning_rate=0.03,
        num_draws=200,
        batch_size=50,
    )
    est = np.asarray(post.idata["posterior"]["centred_payoffs"]).mean(axis=(0, 1))
    true = np.asarray(bd.metrics.payoff_differences(mech, truth, n_actions=mech.n_actions))
    assert float(np.sqrt(np.mean((est - true) ** 2))) < 0.15


# ------------------------------------------------------------------ sharding (2 host devices)

_SHARDING_SCRIPT = textwrap.dedent(
    """
    import json, jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import bayes_diml as bd
    from bayes_diml import mechanisms as mm
    from bayes_diml.sharding import episode_mesh
    assert len(jax.devices()) == 2, jax.devices()
    mech = mm.Tabular((3, 2))
    truth = {"table": jax.random.normal(jax.random.key(4), (3, 2, 2))}
    data = bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.1), n_episodes=5, T=8, key=1)
    mesh = episode_mesh()
    def ll(p, beta, mesh):
        return bd.log_likelihood(mech, p, bd.LogitQ(0.3, beta, 0.1), data, mesh=mesh)
    f = jax.jit(jax.value_and_grad(ll, argnums=(0, 1)), static_argnums=2)
    (v0, g0), (v1, g1) = f(truth, 2.0, None), f(truth, 2.0, mesh)
    out = {"value": [float(v0), float(v1)],
           "grad_err": float(max(np.max(np.abs(np.asarray(a) - np.asarray(b)))
                                 for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1))))}
    lq = bd.LogitQ(0.3, 2.0, 0.1)
    post = bd.fit(data, mech, learner=lq, method="nuts", seed=0, progress=False, log_likelihood=False,
                  init="prior", num_warmup=20, num_samples=10, num_chains=2, chain_method="parallel")
    out["chains"] = int(post.idata["posterior"].sizes["chain"])
    from numpyro.infer.util import log_density
    from bayes_diml.inference.spec import ModelSpec
    spec = ModelSpec.build(data, mech, lq, None)
    values = {"u0_free": jnp.ones((2, 2)) * 0.3, "u1_free": jnp.ones((3, 1)) * -0.2}
    lj = jax.jit(jax.value_and_grad(lambda v, s: log_density(s.model(), (), {}, v)[0]), static_argnums=1)
    (l0, d0), (l1, d1) = lj(values, spec), lj(values, spec._replace(mesh=mesh))
    out["model"] = [float(l0), float(l1), float(max(np.max(np.abs(d0[k] - d1[k])) for k in values))]
    maps = [bd.fit(data, mech, learner=lq, method="map", seed=0, progress=False, log_likelihood=False,
                   num_steps=300, num_restarts=1, shard_episodes=shard) for shard in (False, True)]
    out["map_err"] = float(max(np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in
                               zip(*(jax.tree.leaves(m.mechanism_params()) for m in maps))))
    out["map_moved"] = float(max(np.max(np.abs(np.asarray(a))) for a in
                                 jax.tree.leaves(maps[0].mechanism_params())))
    try:
        bd.fit(data, mech, method="nuts", shard_episodes=True, chain_method="parallel")
    except ValueError as e:
        out["conflict"] = str(e)
    print(json.dumps(out))
    """
)


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
def test_episodes_sharded_over_two_host_devices():
    """Two forced host devices: sharded likelihood and model log density (value, gradient) equal
    the unsharded ones; a sharded MAP fit equals the unsharded one; NUTS runs one chain per
    device; fit refuses sharding + parallel chains."""
    # keep this run's flags (the fast run's compile level; conftest.py), add the two host devices
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    res = subprocess.run(
        [sys.executable, "-c", _SHARDING_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["value"][0] == pytest.approx(out["value"][1], rel=1e-12)
    assert out["grad_err"] < 1e-10
    assert out["chains"] == 2
    assert out["model"][0] == pytest.approx(out["model"][1], rel=1e-12) and out["model"][2] < 1e-10
    assert "chain_method='parallel'" in out["conflict"]
    # a whole MAP fit with episodes sharded lands where the unsharded one does
    assert out["map_moved"] > 0.1 and out["map_err"] < 1e-8


def test_cli_batch_size_reaches_svi_config_and_is_refused_elsewhere(tmp_path):
    from click.testing import CliRunner

    from bayes_diml.cli import main
    from bayes_diml.cli.fit import _method_options

    assert _method_options("svi", {"batch_size": 64}) == {"batch_size": 64}
    data = random_trajectories((2, 2), 4, 5, seed=0)
    path = tmp_path / "d.npz"
    data.save(path)
    res = CliRunner().invoke(
        main, ["fit", str(path), "--method", "map", "--batch-size", "2", "--out", str(tmp_path / "f.nc")]
    )
    assert res.exit_code != 0 and "--batch-size applies to --method svi" in res.output
