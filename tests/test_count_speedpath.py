"""``SymmetricCount.count_grid`` (the count plan's fast path) against the plain MLP per pair.

The literal reference evaluates ``MLP([embed(k), counts / (n - 1)])`` one (own action, count
vector) pair at a time in NumPy float64. ``count_grid`` folds the first-layer units whose sign
is fixed over the call's rows into the second layer and keeps a ReLU only for the others (at
most 16, 64 or ``width`` of them: three branches, each exercised below).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import random_trajectories

import bayes_diml as bd
from bayes_diml.counterfactual import evaluate_plan, plan_for
from bayes_diml.mechanisms import SymmetricCount


@dataclass(frozen=True)
class PlainCount(SymmetricCount):
    """The same mechanism without ``count_grid``: the count plan calls ``count_payoffs``."""

    count_grid = None


def _pair_mlp(mech: SymmetricCount, params, own: int, counts: np.ndarray) -> float:
    """The plain MLP on one (own action, opponent counts) pair, float64."""
    p = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float64), params)
    x = np.concatenate([p["embed"][own], np.asarray(counts, np.float64) / max(mech.n_agents - 1, 1)])
    for layer in p["layers"][:-1]:
        x = np.maximum(x @ layer["w"] + layer["b"], 0.0)
    return float((x @ p["layers"][-1]["w"] + p["layers"][-1]["b"])[0])


def _reference_grid(mech, params, counts: np.ndarray) -> np.ndarray:
    """float64[U, K]: every pair through :func:`_pair_mlp`."""
    return np.array([[_pair_mlp(mech, params, k, row) for k in range(mech.n_choices)] for row in counts])


def _random_counts(n: int, K: int, U: int, seed: int) -> np.ndarray:
    """U opponent-count vectors of n - 1 agents over K actions (concentrated and spread)."""
    rng = np.random.default_rng(seed)
    rows = [
        np.bincount(rng.choice(K, n - 1, p=rng.dirichlet(np.full(K, 0.3))), minlength=K) for _ in range(U)
    ]
    return np.stack(rows).astype(np.float32)


def _n_unstable(mech, params, counts: np.ndarray) -> int:
    """Most first-layer units of any own action whose pre-activation range over the rows spans 0."""
    d = mech.embed_dim
    w, b = (np.asarray(params["layers"][0][k], np.float64) for k in ("w", "b"))
    c = np.asarray(params["embed"], np.float64) @ w[:d] + b  # [K, W]
    z = counts / (mech.n_agents - 1) @ w[d:]  # [U, W]
    return int(((c + z.min(0) <= 0) & (c + z.max(0) > 0)).sum(-1).max())


def _scaled(params, factor: float):
    """Params with the first layer's count block scaled (more units change sign)."""
    w = params["layers"][0]["w"]
    d = params["embed"].shape[1]
    layers = [dict(params["layers"][0], w=w.at[d:].multiply(factor)), *params["layers"][1:]]
    return dict(params, layers=layers)


# factor on the count block -> most unstable units: <= 16, 17..64, > 64 of width 128
BRANCHES = {"fold_16": 0.2, "fold_64": 1.0, "all_units": 8.0}


@pytest.mark.parametrize("branch", list(BRANCHES))
def test_count_grid_matches_pair_mlp(branch):
    mech = SymmetricCount(30, 5, width=128)
    params = _scaled(mech.init(jax.random.key(3)), BRANCHES[branch])
    counts = _random_counts(30, 5, 60, seed=1)
    unstable = _n_unstable(mech, params, counts)
    expected = {"fold_16": unstable <= 16, "fold_64": 16 < unstable <= 64, "all_units": unstable > 64}
    assert expected[branch], unstable
    ref = _reference_grid(mech, params, counts)
    got = np.asarray(jax.jit(mech.count_grid)(params, jnp.asarray(counts)))
    assert got.shape == (60, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6 * np.abs(ref).max())
    # negative control: a 1e-3 change of one count weight is far outside that tolerance
    bad = _reference_grid(mech, _scaled(params, 1.0 + 1e-3), counts)
    assert not np.allclose(got, bad, rtol=2e-5, atol=2e-6 * np.abs(ref).max())


def test_count_grid_float64_is_exact(x64):
    mech = SymmetricCount(12, 4, width=32, depth=3)
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), mech.init(jax.random.key(5)))
    counts = _random_counts(12, 4, 25, seed=2)
    for factor in (1.0, 300.0):  # few and all units unstable
        p = _scaled(params, factor)
        got = np.asarray(mech.count_grid(p, jnp.asarray(counts, jnp.float64)))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, _reference_grid(mech, p, counts), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("depth", [0, 1])
def test_count_grid_shallow_networks(depth):
    mech = SymmetricCount(9, 3, width=16, depth=depth)
    params = mech.init(jax.random.key(depth))
    counts = _random_counts(9, 3, 11, seed=depth)
    ref = _reference_grid(mech, params, counts)
    got = np.asarray(mech.count_grid(params, jnp.asarray(counts)))
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def test_count_grid_edge_cases():
    mech = SymmetricCount(6, 3, width=8)
    params = mech.init(jax.random.key(0))
    assert mech.count_grid(params, jnp.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"float\[U, 3\]"):
        mech.count_grid(params, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"float\[U, 3\]"):
        mech.count_grid(params, jnp.zeros((2, 1, 3)))


def _loss(mech, learner, data):
    return jax.jit(jax.value_and_grad(lambda p: bd.log_likelihood(mech, p, learner, data)))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("factor", [1.0, 200.0])
def test_likelihood_value_and_grad_agree_with_plain_path(factor):
    """The count plan through count_grid and through count_payoffs: same value and gradient."""
    n, K = 20, 4
    mech, plain = SymmetricCount(n, K, width=64), PlainCount(n, K, width=64)
    params = _scaled(mech.init(jax.random.key(11)), factor)
    data = random_trajectories((K,) * n, 3, 9, seed=4, lengths=[9, 5, 9])
    learner = bd.LogitQ(0.3, 4.0, 0.05)
    # the plan evaluation itself: count_grid's rows against the per-pair reference
    plan = plan_for(mech, data)
    ref_rows = _reference_grid(mech, params, np.asarray(plan.points, np.float32))
    cf = np.asarray(evaluate_plan(mech, params, plan))
    expected = np.where(plan.action_mask, ref_rows[plan.index], 0.0)
    np.testing.assert_allclose(cf, expected, rtol=2e-5, atol=1e-6)
    v_new, g_new = _loss(mech, learner, data)(params)
    v_old, g_old = _loss(plain, learner, data)(params)
    np.testing.assert_allclose(float(v_new), float(v_old), rtol=1e-6)
    scale = max(float(jnp.abs(g).max()) for g in jax.tree_util.tree_leaves(g_old))
    for a, b in zip(jax.tree_util.tree_leaves(g_new), jax.tree_util.tree_leaves(g_old), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * scale)
    # negative control: a 1% change of the count block moves the gradient beyond that tolerance
    _, g_bad = _loss(plain, learner, data)(_scaled(params, 1.01))
    pairs = zip(jax.tree_util.tree_leaves(g_new), jax.tree_util.tree_leaves(g_bad), strict=True)
    assert not all(np.allclose(a, b, rtol=1e-4, atol=1e-5 * scale) for a, b in pairs)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_likelihood_float64_agrees_with_plain_path(x64):
    n, K = 10, 3
    mech, plain = SymmetricCount(n, K, width=32), PlainCount(n, K, width=32)
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), mech.init(jax.random.key(2)))
    data = random_trajectories((K,) * n, 2, 6, seed=7)
    learner = bd.LogitQ(0.3, 4.0, 0.05)
    v_new, g_new = _loss(mech, learner, data)(params)
    v_old, g_old = _loss(plain, learner, data)(params)
    np.testing.assert_allclose(float(v_new), float(v_old), rtol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(g_new), jax.tree_util.tree_leaves(g_old), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-10)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_count_grid_forward_mode_matches_count_payoffs():
    """jvp (forward mode, e.g. Hessian-vector products) through the branches and the checkpoints."""
    mech = SymmetricCount(15, 4, width=32)
    params = mech.init(jax.random.key(4))
    counts = jnp.asarray(_random_counts(15, 4, 20, seed=3))
    tangent = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 0.01), params)

    def plain(p):
        return mech.count_payoffs(p, jnp.arange(4)[None, :], counts[:, None, :])

    out_new, jvp_new = jax.jvp(lambda p: mech.count_grid(p, counts), (params,), (tangent,))
    out_old, jvp_old = jax.jvp(plain, (params,), (tangent,))
    np.testing.assert_allclose(np.asarray(out_new), np.asarray(out_old), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jvp_new), np.asarray(jvp_old), rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_count_grid_all_at_once_path(monkeypatch):
    """Off the CPU the pairs run all at once (one block); same rows. Small blocks on the CPU too."""
    from bayes_diml.mechanisms import neural

    mech = SymmetricCount(30, 5, width=128)
    params = _scaled(mech.init(jax.random.key(3)), 1.0)
    counts = _random_counts(30, 5, 60, seed=1)
    ref = _reference_grid(mech, params, counts)
    tol = {"rtol": 2e-5, "atol": 2e-6 * np.abs(ref).max()}
    monkeypatch.setattr(neural, "GRID_BLOCK_ROWS", 7)  # 60 rows: 9 blocks, the last padded
    monkeypatch.setattr(neural, "GRID_BLOCK_ACTIONS", 3)  # 5 actions: a remainder batch
    np.testing.assert_allclose(np.asarray(mech.count_grid(params, jnp.asarray(counts))), ref, **tol)
    monkeypatch.setattr(neural.jax, "default_backend", lambda: "gpu")
    np.testing.assert_allclose(np.asarray(mech.count_grid(params, jnp.asarray(counts))), ref, **tol)
