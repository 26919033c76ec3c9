"""SymmetricCount with episode covariates (issue 26): input layout, count plan with contexts,
literal likelihood, the covariate-free network unchanged, payoff tables and errors."""

from __future__ import annotations

import json
import types
import warnings

import jax
import numpy as np
import pytest
from context_programs import assert_contexts_share_one_program
from reference import random_trajectories, reference_log_likelihood_by_context

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.counterfactual import evaluate_plan, plan_for, takes_covariates
from bayes_diml.data import DataError
from bayes_diml.inference import ConvergenceWarning, ModelSpec
from bayes_diml.inference.context_mechanisms import mechanism_payoff_table
from bayes_diml.inference.persistence import mechanism_from_spec, mechanism_to_spec
from bayes_diml.mechanisms._util import mlp_init
from bayes_diml.models import Priors, sites_from_params

N, K = 3, 2
NAMES = ("price",)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
ALPHA, BETA, EPS = 0.3, 2.0, 0.05
MECH = mechanisms.SymmetricCount(N, K, width=8, depth=1, covariate_names=NAMES)
PLAIN = mechanisms.SymmetricCount(N, K, width=8, depth=1)
PRICES = np.repeat([-1.5, 0.0, 2.0], 2)  # three distinct contexts, two episodes each
LENGTHS = [9, 4, 9, 2, 7, 9]  # ragged: padding must not be scored


def _with_covariates(data, x, names=NAMES):
    x = np.asarray(x, dtype=float)
    return bd.Trajectories(
        data.actions,
        data.n_actions,
        lengths=data.lengths,
        covariates=x[:, None] if x.ndim == 1 else x,
        covariate_names=names,
    )


@pytest.fixture(scope="module")
def data():
    return _with_covariates(random_trajectories((K,) * N, 6, 9, seed=5, lengths=LENGTHS), PRICES)


def _scaled(params, factor=3.0):
    """Larger weights than PyTorch's init, so that x moves the payoffs visibly."""
    return jax.tree_util.tree_map(lambda v: factor * v, params)


def _numpy_network(mech, params):
    """``x -> (joint -> payoffs float64[n])``: the network written out, input [embed(own), shares, x]."""
    embed = np.asarray(params["embed"], dtype=np.float64)
    layers = [{k: np.asarray(v, dtype=np.float64) for k, v in layer.items()} for layer in params["layers"]]
    n, k = mech.n_agents, mech.n_choices

    def at(x):
        def payoff(joint):
            out = []
            for i in range(n):
                others = np.zeros(k)
                for j in range(n):
                    if j != i:
                        others[int(joint[j])] += 1.0
                h = np.concatenate([embed[int(joint[i])], others / max(n - 1, 1), np.asarray(x, float)])
                for layer in layers[:-1]:
                    h = np.maximum(h @ layer["w"] + layer["b"], 0.0)
                out.append((h @ layers[-1]["w"] + layers[-1]["b"])[0])
            return np.array(out)

        return payoff

    return at


def _literal(data, payoff_at):
    """Sum over episodes of the reference loop (steps, agents, own actions) at each episode's x."""
    return reference_log_likelihood_by_context(payoff_at, data, (K,) * N, ALPHA, BETA, EPS)


# ------------------------------------------------------------------ the network


def test_input_is_embedding_then_shares_then_covariates():
    params = _scaled(MECH.init(jax.random.key(4)))
    d = MECH.embed_dim
    assert params["layers"][0]["w"].shape == (d + K + 1, 8)
    assert takes_covariates(MECH) and not takes_covariates(PLAIN)
    joints = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]])
    x = np.array([[0.7], [-1.2], [2.0]])
    got = np.asarray(MECH.payoffs(params, joints, covariates=x))
    literal = _numpy_network(MECH, params)
    want = np.stack([literal(x[r])(joints[r]) for r in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # one x for every joint action (broadcast), and count_payoffs at the same rows
    np.testing.assert_allclose(
        np.asarray(MECH.payoffs(params, joints, covariates=x[0]))[2], literal(x[0])(joints[2]), rtol=1e-5
    )
    own = joints[:, 0]
    counts = np.stack([np.bincount(j[1:], minlength=K) for j in joints])
    via_counts = np.asarray(MECH.count_payoffs(params, own, counts, covariates=x))
    np.testing.assert_allclose(via_counts, got[:, 0], rtol=1e-6)
    # x is an input: another x, other payoffs (negative control)
    assert np.abs(np.asarray(MECH.payoffs(params, joints, covariates=-x)) - got).max() > 1e-2
    # the output bias stays the gauge leaf
    assert "layers.1.b" not in MECH.identified_sites()
    back = mechanism_from_spec(json.loads(json.dumps(mechanism_to_spec(MECH))))
    assert back == MECH and back.covariate_names == NAMES and back != PLAIN


def test_x_zero_is_the_network_without_the_x_weights_exactly():
    params = _scaled(MECH.init(jax.random.key(5)))
    d = MECH.embed_dim
    dropped = {
        "embed": params["embed"],
        "layers": [
            {"w": params["layers"][0]["w"][: d + K], "b": params["layers"][0]["b"]},
            params["layers"][1],
        ],
    }
    joints = np.array([[a, b, c] for a in range(K) for b in range(K) for c in range(K)])
    without = np.asarray(PLAIN.payoffs(dropped, joints))
    np.testing.assert_array_equal(np.asarray(MECH.payoffs(params, joints)), without)  # default x = 0
    np.testing.assert_array_equal(np.asarray(MECH.payoffs(params, joints, covariates=np.zeros(1))), without)
    counts = np.array([[2, 0], [1, 1], [0, 2]])
    np.testing.assert_array_equal(
        np.asarray(MECH.count_payoffs(params, np.arange(K)[None, :], counts[:, None, :], covariates=[0.0])),
        np.asarray(PLAIN.count_payoffs(dropped, np.arange(K)[None, :], counts[:, None, :])),
    )
    # count_grid of a covariate mechanism is count_payoffs at x = 0 (no speed path)
    np.testing.assert_array_equal(
        np.asarray(MECH.count_grid(params, counts)),
        np.asarray(MECH.count_payoffs(params, np.arange(K)[None, :], counts[:, None, :])),
    )
    shifted = np.asarray(MECH.payoffs(params, joints, covariates=np.ones(1)))
    assert np.abs(shifted - without).max() > 1e-2  # negative control: a nonzero x moves them


def _old_init(key, n_choices, width, depth, embed_dim):
    """SymmetricCount.init before covariates (copied from the E7 version)."""
    k_emb, k_mlp = jax.random.split(key)
    sizes = [embed_dim + n_choices] + [width] * depth + [1]
    return {"embed": jax.random.normal(k_emb, (n_choices, embed_dim)), "layers": mlp_init(k_mlp, sizes)}


@pytest.mark.parametrize(("n", "k", "width", "depth"), [(N, K, 8, 1), (5, 4, 16, 2)])
def test_without_covariates_params_and_payoffs_are_bit_identical(n, k, width, depth):
    mech = mechanisms.SymmetricCount(n, k, width=width, depth=depth)
    assert mech.covariate_names == () and mechanisms.SymmetricCount(n, k, width, depth, None, None) == mech
    params = mech.init(jax.random.key(11))
    old = _old_init(jax.random.key(11), k, width, depth, mech.embed_dim)
    assert jax.tree.structure(params) == jax.tree.structure(old)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(old), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # payoffs: the E7 formula (first layer as the sum of its embedding and share blocks, ReLU MLP)
    rng = np.random.default_rng(0)
    joints = rng.integers(0, k, size=(7, n))
    onehot = jax.nn.one_hot(joints, k, dtype=params["embed"].dtype)
    others = onehot.sum(-2, keepdims=True) - onehot
    first = params["layers"][0]
    d = mech.embed_dim
    h = (params["embed"] @ first["w"][:d])[joints] + (others / max(n - 1, 1)) @ first["w"][d:] + first["b"]
    for layer in params["layers"][1:]:
        h = jax.nn.relu(h) @ layer["w"] + layer["b"]
    np.testing.assert_array_equal(np.asarray(mech.payoffs(params, joints)), np.asarray(h[..., 0]))
    with pytest.raises(ValueError, match="takes no covariates"):
        mech.payoffs(params, joints, covariates=np.zeros(1))
    with pytest.raises(ValueError, match="takes no covariates"):
        mech.count_payoffs(params, joints[:, 0], np.asarray(others[:, 0]), covariates=np.zeros(1))


# ------------------------------------------------------------------ plan and likelihood


def test_likelihood_equals_the_literal_loop(data, x64):
    params = _scaled(MECH.init(jax.random.key(7)))
    ref = _literal(data, _numpy_network(MECH, params))
    count, joint = plan_for(MECH, data), plan_for(MECH, data, kind="joint")
    assert count.kind == "count" and count.points.shape[1] == K + 1  # (opponent counts, context)
    np.testing.assert_array_equal(count.contexts, [[-1.5], [0.0], [2.0]])
    assert joint.kind == "joint" and joint.contexts.shape == (3, 1)
    # the count plan (the default); the joint plan's payoffs equal its payoffs (next test)
    assert float(bd.log_likelihood(MECH, params, LEARNER, data)) == pytest.approx(ref, rel=1e-9)
    shuffled = _with_covariates(data, data.covariates[::-1, 0])  # negative control: each episode another x
    assert abs(float(bd.log_likelihood(MECH, params, LEARNER, shuffled)) - ref) > 1e-2
    # and the payoffs without x are not these (the network does read x)
    plain_ref = _literal(data, lambda x: _numpy_network(MECH, params)(np.zeros(1)))
    assert abs(plain_ref - ref) > 1e-2


def test_count_plan_rows_are_distinct_count_context_pairs_and_batches_agree():
    """n = 6, K = 3, six contexts: more planned rows than one episode needs (the direct path)."""
    mech = mechanisms.SymmetricCount(6, 3, width=8, depth=1, covariate_names=("a", "b"))
    base = random_trajectories((3,) * 6, 6, 3, seed=9)
    x = np.stack([np.linspace(-1.0, 1.0, 6), np.arange(6.0)], axis=1)
    # the data hold (b, a, z): matched by name, in the mechanism's order (a, b)
    data = _with_covariates(base, np.c_[x[:, 1], x[:, 0], -x[:, 0]], ("b", "a", "z"))
    plan = plan_for(mech, data)
    np.testing.assert_array_equal(plan.contexts, x)  # columns (a, b), rows sorted: already in order
    rows = {tuple(r) for r in plan.points}
    want = set()
    for m in range(6):
        for t in range(2):
            for i in range(6):
                others = np.bincount(np.delete(base.actions[m, t], i), minlength=3)
                want.add((*others, m))
    assert rows == want and len(plan.points) == len(want)
    params = _scaled(mech.init(jax.random.key(2)))
    episodes = np.array([1, 5])
    assert 2 * 2 * 6 < plan.points.shape[0]  # the batch evaluates its own rows (the direct path)
    joint = plan_for(mech, data, kind="joint")

    @jax.jit  # one program for the three evaluations
    def evaluate(params):
        return tuple(
            evaluate_plan(mech, params, p, e) for p, e in ((plan, None), (plan, episodes), (joint, None))
        )

    full, batch, via_joints = (np.asarray(v) for v in evaluate(params))
    literal = _numpy_network(mech, params)
    for m in (0, 4):
        for i in range(6):
            for k in range(3):
                actions = base.actions[m, 1].copy()
                actions[i] = k
                assert full[m, 1, i, k] == pytest.approx(literal(x[m])(actions)[i], rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(batch, full[episodes], rtol=1e-6)
    np.testing.assert_allclose(via_joints, full, rtol=1e-5, atol=1e-6)
    assert np.abs(full[0] - full[1]).max() > 1e-2  # negative control: episodes differ


def test_data_of_equal_shapes_share_one_compiled_program(data):
    other = _with_covariates(data, data.covariates[:, 0] * 2.0 - 1.0)  # same shapes, other contexts
    assert_contexts_share_one_program(MECH, data, other, LEARNER, lambda x: x * 2.0 - 1.0)


# ------------------------------------------------------------------ answers


def _stand_in_posterior(mech, data, seeds=(0, 1, 2)):
    draws = [
        mech.params_from_identified(mech.identified_from_params(mech.init(jax.random.key(s)))) for s in seeds
    ]
    sites = [sites_from_params(mech, p) for p in draws]
    stacked = {k: np.stack([np.asarray(s[k]) for s in sites]) for k in sites[0]}
    support = np.ones((*mech.n_actions, mech.n_agents), dtype=bool)
    post = types.SimpleNamespace(mechanism=mech, data=data, support=support, draws=lambda name: stacked[name])
    return post, draws


def test_payoff_table_at_covariates_is_the_literal_centred_network(data):
    post, draws = _stand_in_posterior(MECH, data)
    want = []
    for p in draws:
        payoff = _numpy_network(MECH, p)(np.array([1.5]))
        u = np.array(
            [[[payoff((a, b, c)) for c in range(K)] for b in range(K)] for a in range(K)]
        )  # [K, K, K, 3]
        want.append(np.stack([u[..., i] - u[..., i].mean(i, keepdims=True) for i in range(N)], -1))
    t = mechanism_payoff_table(post, {"price": 1.5}, 0.8, labelled=False)
    np.testing.assert_allclose(t["mean"], np.mean(want, 0), rtol=1e-4, atol=1e-5)
    other = mechanism_payoff_table(post, {"price": -1.5}, 0.8, labelled=False)
    assert not np.allclose(other["mean"], t["mean"])  # negative control: x enters
    with pytest.raises(ValueError, match="move with the covariates price"):
        mechanism_payoff_table(post, None, 0.8, labelled=False)


def test_payoff_table_of_many_agents_names_the_size_and_count_payoffs():
    big = mechanisms.SymmetricCount(40, 10, width=4, depth=1, covariate_names=NAMES)
    data = types.SimpleNamespace(n_actions=big.n_actions)
    post = types.SimpleNamespace(mechanism=big, data=data, support=None, draws=None)
    with pytest.raises(
        ValueError, match=r"of 40 agents .* about 10\^41 cells, more than 10,000,000.*count_payoffs"
    ):
        mechanism_payoff_table(post, {"price": 1.0}, 0.9, labelled=False)


@pytest.mark.slow  # a MAP fit: fast-suite budget
def test_a_fit_answers_payoff_table_at_covariates(data):
    with warnings.catch_warnings():  # a few steps: the route is the point, not the optimum
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = bd.fit(
            data, MECH, learner=LEARNER, method="map", seed=0, progress=False, num_steps=20, num_restarts=1
        )
    assert post.spec.plan.kind == "count" and post.spec.plan.contexts is not None
    t = post.payoff_table(covariates={"price": 1.0})
    assert t["mean"].shape == (K, K, K, N)
    want = mechanism_payoff_table(post, {"price": 1.0}, 0.9, labelled=False)
    np.testing.assert_allclose(t["mean"], want["mean"])
    with pytest.raises(ValueError, match="move with the covariates price"):
        post.payoff_table()


# ------------------------------------------------------------------ errors


def test_errors_name_the_problem(data):
    params = MECH.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"float\[..., C\] with C = 1 \(price\)"):
        MECH.payoffs(params, np.zeros((3, N), int), covariates=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"float\[..., C\] with C = 1 \(price\)"):
        MECH.count_payoffs(params, np.zeros(3, int), np.ones((3, K)), covariates=np.zeros(2))
    bare = bd.Trajectories(data.actions, data.n_actions, lengths=data.lengths)
    with pytest.raises(DataError, match="needs data with covariates 'price'"):
        ModelSpec.build(bare, MECH, LEARNER, Priors())
    with pytest.raises(DataError, match="needs data with covariates 'price'"):
        bd.log_likelihood(MECH, params, LEARNER, bare)
    renamed = _with_covariates(data, data.covariates, ("cost",))
    with pytest.raises(DataError, match=r"no covariate\(s\) 'price'"):
        ModelSpec.build(renamed, MECH, LEARNER, Priors())
    with pytest.raises(DataError, match=r"no covariate\(s\) 'price'"):
        plan_for(MECH, renamed)
    with pytest.raises(ValueError, match="a joint or count plan; got kind='table'"):
        plan_for(MECH, data, kind="table")
    with pytest.raises(ValueError, match="sequence of names"):
        mechanisms.SymmetricCount(N, K, covariate_names="ab")
    with pytest.raises(ValueError, match="distinct"):
        mechanisms.SymmetricCount(N, K, covariate_names=("a", "a"))
    # it models payoff levels as without covariates: check_context_fit accepts observed payoffs
    paid = bd.Trajectories(
        data.actions,
        data.n_actions,
        lengths=data.lengths,
        payoffs=np.zeros(data.actions.shape),
        covariates=data.covariates,
        covariate_names=NAMES,
    )
    spec = ModelSpec.build(paid, MECH, LEARNER, Priors())
    assert spec.plan.kind == "count" and spec.plan.contexts is not None
