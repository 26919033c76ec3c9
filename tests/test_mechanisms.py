"""Mechanisms: payoff shapes, hand-checked formulas, family embeddings, init and validation."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import to_float64

from bayes_diml import mechanisms as mm
from bayes_diml.mechanisms.base import joint_profiles


def _all_profiles(mech) -> jax.Array:
    return jnp.asarray(joint_profiles(mech.n_actions))


# ---------------------------------------------------------------- the shared interface


def test_batched_payoffs_shape_and_values(build_mechanism):
    mech, params = build_mechanism(jax.random.key(0))
    n = len(mech.n_actions)
    rng = np.random.default_rng(0)
    joints = np.stack([rng.integers(0, k, size=(2, 5)) for k in mech.n_actions], axis=-1)  # int[2, 5, n]
    batched = mech.payoffs(params, jnp.asarray(joints))
    assert batched.shape == (2, 5, n)
    assert jnp.issubdtype(batched.dtype, jnp.floating)
    single = mech.payoffs(params, jnp.asarray(joints[1, 3]))
    assert single.shape == (n,)
    np.testing.assert_allclose(np.asarray(batched[1, 3]), np.asarray(single), rtol=1e-6, atol=1e-6)
    flat = mech.payoffs(params, jnp.asarray(joints.reshape(-1, n)))
    np.testing.assert_allclose(np.asarray(flat).reshape(2, 5, n), np.asarray(batched), rtol=1e-6, atol=1e-6)
    # payoffs depend on the joint action (not a constant)
    table = np.asarray(mech.payoffs(params, _all_profiles(mech)))
    assert np.ptp(table, axis=0).max() > 1e-3


def test_init_reproducible_per_key(build_mechanism):
    mech, params = build_mechanism(jax.random.key(2))
    _, again = build_mechanism(jax.random.key(2))
    _, other = build_mechanism(jax.random.key(3))
    leaves, leaves_again = jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(again)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(other)
    for a, b in zip(leaves, leaves_again, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(leaves, jax.tree_util.tree_leaves(other), strict=True)
    )


# ---------------------------------------------------------------- Tabular


def test_tabular_table_round_trip():
    table = np.random.default_rng(3).normal(size=(2, 3, 2)).astype(np.float32)
    mech = mm.Tabular((2, 3))
    for params in (mm.Tabular.params_from_table(table), mech.params_from_table(table)):
        assert set(params) == {"table"}
        np.testing.assert_array_equal(np.asarray(mm.Tabular.table(params)), table)
        np.testing.assert_array_equal(np.asarray(mech.table(params)), table)
    mech2, params2 = mm.Tabular.from_table(table)
    assert mech2.n_actions == (2, 3) and mech2.table_shape == (2, 3, 2)
    np.testing.assert_array_equal(np.asarray(mech2.table(params2)), table)
    # payoffs read the table
    np.testing.assert_array_equal(np.asarray(mech.payoffs(params2, jnp.asarray([1, 2]))), table[1, 2])
    assert mech.init(jax.random.key(0))["table"].shape == (2, 3, 2)


def test_tabular_table_shape_errors():
    mech = mm.Tabular((2, 3))
    with pytest.raises(ValueError, match=re.escape("(2, 3, 2)")):
        mech.params_from_table(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="table must have shape"):
        mm.Tabular.params_from_table(np.zeros((2, 3, 3)))  # last axis must be n = 2
    with pytest.raises(ValueError, match="table must have shape"):
        mm.Tabular.params_from_table(np.zeros(4))


# ---------------------------------------------------------------- structured families


def test_congestion_formula_by_hand():
    mech = mm.Congestion(3, 4)
    params = {
        "c1": jnp.asarray([0.1, 0.2, 0.3, 0.4]),
        "c2": jnp.asarray([0.05, 0.06, 0.07, 0.08]),
        "toll": jnp.asarray([0.0, 0.1, 0.15, 0.2]),
    }
    # agents 0 and 1 share route 1 (load 2); agent 2 is alone on route 3 (load 1)
    got = np.asarray(mech.payoffs(params, jnp.asarray([1, 1, 3])))
    on_1 = -(0.2 * 2 + 0.06 * 4) + 0.1 * 2
    on_3 = -(0.4 * 1 + 0.08 * 1) + 0.2 * 1
    np.testing.assert_allclose(got, [on_1, on_1, on_3], rtol=1e-6)
    # everyone on route 0 (load 3)
    got = np.asarray(mech.payoffs(params, jnp.asarray([0, 0, 0])))
    np.testing.assert_allclose(got, [-(0.1 * 3 + 0.05 * 9)] * 3, rtol=1e-6)


def test_congestion_init_ranges():
    params = mm.Congestion(4, 5).init(jax.random.key(4))
    for name, lo, hi in (("c1", 0.1, 0.4), ("c2", 0.05, 0.15), ("toll", 0.0, 0.2)):
        x = np.asarray(params[name])
        assert x.shape == (5,) and x.min() >= lo and x.max() <= hi


def test_structured_congestion_contains_congestion(x64):
    mech = mm.Congestion(3, 4)
    params = mech.init(jax.random.key(5))
    family = mm.StructuredCongestion(3, 4)
    embedded = family.params_from_congestion(params)
    assert set(embedded) == {"b", "w1", "w2"}
    profiles = _all_profiles(mech)
    np.testing.assert_allclose(
        np.asarray(family.payoffs(embedded, profiles)), np.asarray(mech.payoffs(params, profiles)), rtol=1e-13
    )
    # a common shift of b is a constant per agent: gauge, payoff differences unchanged
    shifted = dict(embedded, b=embedded["b"] + 1.5)
    np.testing.assert_allclose(
        np.asarray(family.payoffs(shifted, profiles)), np.asarray(mech.payoffs(params, profiles)) + 1.5
    )


@pytest.mark.parametrize("n, K", [(4, 5), (2, 3), (7, 4)])
def test_structured_congestion_identified_coordinates_are_orthonormal(x64, n, K):
    """(contrasts, common) -> (b, w1, w2) is an isometry onto sum(b) = 0: isotropic priors agree."""
    from jax.flatten_util import ravel_pytree

    family = mm.StructuredCongestion(n, K)
    assert family.identified_sites() == {"contrasts": (K - 1, 3), "common": (2,)}
    params = family.init(jax.random.key(K))
    sites = family.identified_from_params(params)
    back = family.params_from_identified(sites)
    # round trip up to the gauge: b comes back centred, w1 and w2 unchanged
    centred_b = np.asarray(params["b"] - params["b"].mean())
    np.testing.assert_allclose(np.asarray(back["b"]), centred_b, atol=1e-12)
    for k in ("w1", "w2"):
        np.testing.assert_allclose(np.asarray(back[k]), np.asarray(params[k]), atol=1e-12)
    flat, unravel = ravel_pytree({k: jnp.asarray(v) for k, v in sites.items()})
    J = np.asarray(jax.jacobian(lambda z: ravel_pytree(family.params_from_identified(unravel(z)))[0])(flat))
    assert J.shape == (3 * K, 3 * K - 1)
    np.testing.assert_allclose(J.T @ J, np.eye(3 * K - 1), atol=1e-12)
    # the image is orthogonal to the gauge direction (a common shift of b)
    gauge = np.zeros((K, 3))
    gauge[:, 0] = 1.0
    np.testing.assert_allclose(J.T @ gauge.T.reshape(-1), 0.0, atol=1e-12)


def test_structured_public_goods_contains_public_goods(x64):
    mech = mm.PublicGoods(3, 5, width=16)
    params = mech.init(jax.random.key(6))
    family = mm.StructuredPublicGoods(3, 5, width=16)
    embedded = family.params_from_public_goods(params)
    profiles = _all_profiles(mech)
    np.testing.assert_allclose(
        np.asarray(family.payoffs(embedded, profiles)), np.asarray(mech.payoffs(params, profiles)), rtol=1e-13
    )
    # and a different member differs
    other = dict(embedded, rate=jnp.asarray(1.0))
    assert np.abs(np.asarray(family.payoffs(other, profiles) - mech.payoffs(params, profiles))).max() > 1e-2


def test_public_goods_formula_by_hand(x64):
    mech = mm.PublicGoods(2, 3, width=4)
    params = to_float64(mech.init(jax.random.key(7)))
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)  # subsidy 0
    got = np.asarray(mech.payoffs(zero, jnp.asarray([1, 2])))  # levels 0.5 and 1.0, total 1.5
    benefit = 1.0 - np.exp(-2.0 * 1.5)
    np.testing.assert_allclose(got, [benefit - 0.8 * 0.25, benefit - 0.8 * 1.0], rtol=1e-13)


@pytest.mark.parametrize(
    "make",
    [
        lambda: mm.Congestion(4, 3),
        lambda: mm.StructuredCongestion(4, 3, init_scale=1.0),
        lambda: mm.PublicGoods(4, 3, width=8),
        lambda: mm.StructuredPublicGoods(4, 3, width=8),
        lambda: mm.SymmetricCount(4, 3, width=8),
    ],
    ids=["congestion", "structured_congestion", "public_goods", "structured_public_goods", "symmetric_count"],
)
def test_count_payoffs_consistent_with_payoffs(make):
    mech = make()
    params = mech.init(jax.random.key(8))
    profiles = joint_profiles(mech.n_actions)  # int[P, n]
    full = np.asarray(mech.payoffs(params, jnp.asarray(profiles)))  # [P, n]
    K = mech.n_choices
    for i in range(mech.n_agents):
        others = np.delete(profiles, i, axis=1)
        counts = np.stack([(others == k).sum(1) for k in range(K)], axis=-1).astype(np.float32)  # [P, K]
        own = jnp.asarray(profiles[:, i])
        via_counts = np.asarray(mech.count_payoffs(params, own, jnp.asarray(counts)))
        np.testing.assert_allclose(via_counts, full[:, i], rtol=1e-5, atol=1e-6)
    # broadcasting: every own action against one count vector
    row = mech.count_payoffs(params, jnp.arange(K), jnp.asarray([[1.0, 2.0, 0.0]]))
    assert row.shape == (K,)


# ---------------------------------------------------------------- neural mechanisms


def test_neural_joint_embed_dim():
    """embed_dim = min(24, max(6, K_max)) unless given."""
    for n_actions, expected in [((2, 3), 6), ((10, 4), 10), ((30, 2), 24), ((5,) * 3, 6), ((6, 7), 7)]:
        assert mm.NeuralJoint(n_actions, width=4).embed_dim == expected, n_actions
    assert mm.NeuralJoint((2, 3), width=4, embed_dim=3).embed_dim == 3
    params = mm.NeuralJoint((10, 4), width=4).init(jax.random.key(0))
    assert [e.shape for e in params["embed"]] == [(10, 10), (4, 10)]
    assert params["layers"][0]["w"].shape == (2 * 10, 4)


def test_symmetric_count_embed_dim():
    """embed_dim = min(32, max(12, K)) unless given."""
    for n_choices, expected in [(5, 12), (12, 12), (20, 20), (32, 32), (40, 32)]:
        assert mm.SymmetricCount(3, n_choices, width=4).embed_dim == expected, n_choices
    assert mm.SymmetricCount(3, 5, width=4, embed_dim=2).embed_dim == 2
    params = mm.SymmetricCount(3, 20, width=4).init(jax.random.key(0))
    assert params["embed"].shape == (20, 20)
    assert params["layers"][0]["w"].shape == (20 + 20, 4)


def test_neural_joint_architecture():
    mech = mm.NeuralJoint((3, 3), width=16, depth=2)
    params = mech.init(jax.random.key(9))
    shapes = [(layer["w"].shape, layer["b"].shape) for layer in params["layers"]]
    assert shapes == [((12, 16), (16,)), ((16, 16), (16,)), ((16, 2), (2,))]
    # PyTorch default init: U(+-1/sqrt(fan_in)) for affine layers
    assert np.abs(np.asarray(params["layers"][0]["w"])).max() <= 1 / np.sqrt(12)


# ---------------------------------------------------------------- generic mechanisms


def test_linear_callable_and_table_agree():
    def features(joint):
        a = joint.astype(jnp.float32)
        return jnp.stack([a, a * (a.sum() - a)], axis=-1)  # float[n, 2]

    n_actions = (2, 3)
    profiles = joint_profiles(n_actions)
    table = np.zeros((*n_actions, 2, 2), dtype=np.float32)
    for p in profiles:
        table[tuple(p)] = np.asarray(features(jnp.asarray(p)))
    by_fn, by_table = mm.Linear(features, n_actions=n_actions), mm.Linear(table)
    assert by_table.n_actions == n_actions and by_fn.n_features == by_table.n_features == 2
    params = {"weights": jnp.asarray([0.7, -1.3])}
    np.testing.assert_allclose(
        np.asarray(by_fn.payoffs(params, jnp.asarray(profiles))),
        np.asarray(by_table.payoffs(params, jnp.asarray(profiles))),
        rtol=1e-6,
    )
    assert by_fn.init(jax.random.key(0))["weights"].shape == (2,)


def test_function_batched_flag():
    def fn(params, joint):
        return params["w"][joint]

    init = lambda key: {"w": jax.random.normal(key, (3,))}  # noqa: E731
    joints = jnp.asarray(joint_profiles((3, 3)))
    params = init(jax.random.key(0))
    a = mm.Function(fn, init, n_actions=(3, 3)).payoffs(params, joints)
    b = mm.Function(fn, init, n_actions=(3, 3), batched=True).payoffs(params, joints)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------- helpers


def test_flatten_params_names():
    assert set(mm.flatten_params(mm.Congestion(2, 3).init(jax.random.key(0)))) == {"c1", "c2", "toll"}
    assert list(mm.flatten_params(mm.Tabular((2, 2)).init(jax.random.key(0)))) == ["table"]
    names = list(mm.flatten_params(mm.NeuralJoint((2, 3), width=4, depth=1).init(jax.random.key(0))))
    assert names == ["embed.0", "embed.1", "layers.0.b", "layers.0.w", "layers.1.b", "layers.1.w"]
    names = set(mm.flatten_params(mm.StructuredPublicGoods(2, 3, width=4).init(jax.random.key(0))))
    assert {"scale", "rate", "cost", "subsidy.0.w", "subsidy.1.b"} <= names
    assert mm.flatten_params(jnp.zeros(3)).keys() == {"value"}
    params = mm.NeuralJoint((2, 3), width=4, depth=1).init(jax.random.key(0))
    assert mm.param_count(params) == 2 * 6 + 3 * 6 + (12 * 4 + 4) + (4 * 2 + 2)


def test_joint_profiles_c_order():
    profiles = joint_profiles((2, 3))
    assert profiles.shape == (6, 2)
    np.testing.assert_array_equal(profiles, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    assert mm.n_profiles((2, 3, 4)) == 24


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: mm.Tabular((2, 0)), "n_actions"),
        (lambda: mm.Tabular(()), "n_actions"),
        (lambda: mm.Tabular((2, 2.5)), "n_actions"),
        (lambda: mm.Tabular(3), "n_actions"),
        (lambda: mm.NeuralJoint((2, 3), width=0), "width"),
        (lambda: mm.NeuralJoint((2, 3), depth=-1), "depth"),
        (lambda: mm.NeuralJoint((2, 3), embed_dim=0), "embed_dim"),
        (lambda: mm.SymmetricCount(0, 3), "n_agents"),
        (lambda: mm.SymmetricCount(3, 0), "n_choices"),
        (lambda: mm.Congestion(0, 3), "n_agents"),
        (lambda: mm.Congestion(3, 0), "n_choices"),
        (lambda: mm.StructuredCongestion(2, -1), "n_choices"),
        (lambda: mm.PublicGoods(2.5, 3), "n_agents"),
        (lambda: mm.Linear(np.zeros((2, 3, 3, 1))), "feature table"),
        (lambda: mm.Linear(lambda a: jnp.zeros((3,)), n_actions=(2, 2)), "features"),
        (lambda: mm.Function(None, lambda key: {}), "callable"),
        (lambda: mm.Function(lambda p, a: a, lambda key: {}, n_actions=(2, 0)), "n_actions"),
    ],
)
def test_invalid_constructor_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
