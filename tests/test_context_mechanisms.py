"""Function and NeuralJoint mechanisms of episode covariates: payoffs, plan, literal likelihood,
shared programs, recovery, answers, idata dims of covariate fits, registry and errors."""

from __future__ import annotations

import json
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from context_programs import assert_contexts_share_one_program
from reference import reference_log_likelihood_by_context

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.counterfactual import counterfactual_payoffs, plan_for, takes_covariates
from bayes_diml.data import DataError
from bayes_diml.inference import ConvergenceWarning, MAPConfig, ModelSpec
from bayes_diml.inference.context_mechanisms import mechanism_payoff_table
from bayes_diml.inference.idata import build_idata
from bayes_diml.inference.persistence import mechanism_from_spec, mechanism_to_spec
from bayes_diml.metrics import payoff_differences
from bayes_diml.models import Priors, sites_from_params
from bayes_diml.registry import MECHANISM_NAMES, ParameterError, make_mechanism

K = (2, 3)
NAMES = ("price", "week")
ALPHA, BETA, EPS = 0.3, 2.0, 0.05
LEARNER = bd.LogitQ(alpha=ALPHA, beta=BETA, eps=EPS)
ROWS = np.array([[0.0, 1.0], [1.5, -0.5], [-1.0, 2.0]])  # three distinct contexts


def _with_covariates(data, x, names=NAMES):
    return bd.Trajectories(
        data.actions, data.n_actions, lengths=data.lengths, covariates=x, covariate_names=names
    )


def _fn_x(params, joint, x):
    """One joint action int[2] and covariates float[2] -> payoffs float[2] (nonlinear in x)."""
    a = (joint[0], joint[1])
    return params["table"][a] + jnp.sin(x[0]) * params["slopes"][0][a] + x[1] ** 2 * params["slopes"][1][a]


def _init(key):
    k1, k2 = jax.random.split(key)
    return {"table": jax.random.normal(k1, (*K, 2)), "slopes": jax.random.normal(k2, (2, *K, 2))}


FUNCTION = mechanisms.Function(_fn_x, _init, n_actions=K, covariate_names=NAMES)
NEURAL = mechanisms.NeuralJoint(K, width=5, depth=1, covariate_names=NAMES)


@pytest.fixture(scope="module")
def data():
    tab = mechanisms.Tabular(K)
    plain = bd.simulate(tab, tab.init(jax.random.key(0)), LEARNER, n_episodes=6, T=7, key=1)
    return _with_covariates(plain, np.repeat(ROWS, 2, axis=0))


def _literal(data, payoff_at):
    """Sum over episodes of the reference loop (steps, agents, own actions) at each episode's x."""
    return reference_log_likelihood_by_context(payoff_at, data, K, ALPHA, BETA, EPS)


# ------------------------------------------------------------------ mechanisms


def test_function_payoffs_one_joint_batched_and_broadcast_agree():
    params = FUNCTION.init(jax.random.key(3))
    batched = mechanisms.Function(
        jax.vmap(_fn_x, in_axes=(None, 0, 0)), _init, n_actions=K, batched=True, covariate_names=NAMES
    )
    joint = np.array([[0, 2], [1, 0], [1, 1]])
    x = np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 3.0]])
    got = np.asarray(FUNCTION.payoffs(params, joint, covariates=x))
    for r in range(3):
        want = np.asarray(_fn_x(params, jnp.asarray(joint[r]), jnp.asarray(x[r])))
        np.testing.assert_allclose(got[r], want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(batched.payoffs(params, joint, covariates=x)), got, rtol=1e-6)
    # one x for every joint action (broadcast), and the default x = 0 (the table)
    one = np.asarray(FUNCTION.payoffs(params, joint, covariates=x[0]))
    np.testing.assert_allclose(
        one[1], np.asarray(_fn_x(params, jnp.asarray(joint[1]), jnp.asarray(x[0]))), rtol=1e-6
    )
    zero = np.asarray(FUNCTION.payoffs(params, joint))
    np.testing.assert_allclose(zero, np.asarray(params["table"])[joint[:, 0], joint[:, 1]], rtol=1e-6)
    assert takes_covariates(FUNCTION) and takes_covariates(NEURAL)
    assert not takes_covariates(mechanisms.Function(lambda p, a: p * a, lambda k: 1.0))
    assert not takes_covariates(mechanisms.NeuralJoint(K))


def test_neural_input_is_the_embeddings_then_the_covariates():
    params = NEURAL.init(jax.random.key(4))
    d = NEURAL.embed_dim
    assert params["layers"][0]["w"].shape == (2 * d + 2, 5)
    joint, x = np.array([1, 2]), np.array([0.3, -0.7])
    inp = np.concatenate([np.asarray(params["embed"][0])[1], np.asarray(params["embed"][1])[2], x])
    h = np.tanh(inp @ np.asarray(params["layers"][0]["w"]) + np.asarray(params["layers"][0]["b"]))
    want = h @ np.asarray(params["layers"][1]["w"]) + np.asarray(params["layers"][1]["b"])
    np.testing.assert_allclose(np.asarray(NEURAL.payoffs(params, joint, covariates=x)), want, rtol=1e-5)
    assert not np.allclose(np.asarray(NEURAL.payoffs(params, joint, covariates=-x)), want)  # x is an input
    # the output bias stays the gauge leaf; the covariates change only the first layer's input size
    assert "layers.1.b" not in NEURAL.identified_sites()
    # a saved fit rebuilds the mechanism from JSON (covariate names included, as a tuple)
    back = mechanism_from_spec(json.loads(json.dumps(mechanism_to_spec(NEURAL))))
    assert back == NEURAL and back.covariate_names == NAMES
    assert mechanisms.NeuralJoint(K, width=5, depth=1) != NEURAL  # negative control


# ------------------------------------------------------------------ likelihood


def _numpy_function(params):
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}

    def at(x):
        def payoff(joint):
            a = (int(joint[0]), int(joint[1]))
            out = []
            for i in range(2):
                u = p["table"][a][i] + np.sin(x[0]) * p["slopes"][0][a][i] + x[1] ** 2 * p["slopes"][1][a][i]
                out.append(u)
            return np.array(out)

        return payoff

    return at


def _numpy_neural(params):
    embed = [np.asarray(e, dtype=np.float64) for e in params["embed"]]
    layers = [{k: np.asarray(v, dtype=np.float64) for k, v in layer.items()} for layer in params["layers"]]

    def at(x):
        def payoff(joint):
            h = np.concatenate([embed[0][int(joint[0])], embed[1][int(joint[1])], np.asarray(x, float)])
            for layer in layers[:-1]:
                h = np.tanh(h @ layer["w"] + layer["b"])
            return h @ layers[-1]["w"] + layers[-1]["b"]

        return payoff

    return at


@pytest.mark.parametrize(("mech", "literal"), [(FUNCTION, _numpy_function), (NEURAL, _numpy_neural)])
def test_likelihood_equals_the_literal_loop(data, mech, literal):
    params = mech.init(jax.random.key(7))
    ll = float(bd.log_likelihood(mech, params, LEARNER, data))
    ref = _literal(data, literal(params))
    assert ll == pytest.approx(ref, rel=1e-5)
    shuffled = _with_covariates(data, data.covariates[::-1])  # negative control: each episode another x
    assert abs(float(bd.log_likelihood(mech, params, LEARNER, shuffled)) - ref) > 1e-2
    assert plan_for(mech, data).contexts.shape == (3, 2)  # the covariate (joint) plan


def test_a_function_that_ignores_x_equals_the_function_without_x(data):
    def plain(params, joint):
        return params["table"][joint[0], joint[1]] * params["scale"]

    def init(key):
        return {"table": jax.random.normal(key, (*K, 2)), "scale": jnp.asarray(1.3)}

    without = mechanisms.Function(plain, init, n_actions=K)
    ignoring = mechanisms.Function(lambda p, a, x: plain(p, a), init, n_actions=K, covariate_names=("week",))
    params = init(jax.random.key(2))
    assert plan_for(ignoring, data).contexts is not None and plan_for(without, data).contexts is None
    a = np.asarray(counterfactual_payoffs(ignoring, params, data))
    b = np.asarray(counterfactual_payoffs(without, params, data))
    np.testing.assert_array_equal(a, b)
    la = float(bd.log_likelihood(ignoring, params, LEARNER, data))
    lb = float(bd.log_likelihood(without, params, LEARNER, data))
    assert la == lb
    # negative control: a function that does read x differs (x[0] alone would be a gauge shift)
    reading = mechanisms.Function(
        lambda p, a, x: plain(p, a) * (1.0 + x[0]), init, n_actions=K, covariate_names=("week",)
    )
    assert float(bd.log_likelihood(reading, params, LEARNER, data)) != pytest.approx(la)


def test_data_of_equal_shapes_share_one_compiled_program(data):
    other = _with_covariates(data, data.covariates * 2.0 - 1.0)  # same shapes, other contexts
    assert_contexts_share_one_program(FUNCTION, data, other, LEARNER, lambda x: x * 2.0 - 1.0)


# ------------------------------------------------------------------ recovery and answers

THETA = (0.2, 1.5)  # agent 0's payoff of action 1 minus action 0: theta0 + theta1 * x
OTHER = np.array([[0.4, -0.4], [-0.3, 0.3]])  # agent 1's payoffs (known)


def _fn_theta(params, joint, x):
    th = params["theta"]
    u0 = jnp.where(joint[0] == 1, th[0] + th[1] * x[0], 0.0)
    return jnp.stack([u0, jnp.asarray(OTHER)[joint[0], joint[1]]])


THETA_MECH = mechanisms.Function(
    _fn_theta, lambda key: {"theta": jax.random.normal(key, (2,))}, n_actions=(2, 2), covariate_names=("x",)
)


@pytest.fixture(scope="module")
def recovery():
    xs = np.linspace(-1.0, 1.0, 5)
    tab = mechanisms.Tabular((2, 2))
    parts = []
    for g, x in enumerate(xs):
        table = np.zeros((2, 2, 2))
        table[1, :, 0] = THETA[0] + THETA[1] * x
        table[..., 1] = OTHER
        parts.append(bd.simulate(tab, {"table": table}, LEARNER, n_episodes=8, T=40, key=20 + g))
    stacked = bd.Trajectories.concat(parts)
    data = bd.Trajectories(
        stacked.actions, (2, 2), lengths=stacked.lengths, covariates=np.repeat(xs, 8), covariate_names=("x",)
    )
    kw = dict(learner=LEARNER, seed=0, progress=False, log_likelihood=False)  # the fast suite's budget
    mode = bd.fit(data, THETA_MECH, method="map", num_restarts=1, **kw)
    laplace = bd.fit(
        data, THETA_MECH, method="laplace", init_map=MAPConfig(num_restarts=1), num_draws=400, **kw
    )
    return data, mode, laplace


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_map_recovers_the_covariate_effect_within_three_laplace_sd(recovery):
    _, mode, laplace = recovery
    est = mode.draws("mech.theta")[0]
    sd = laplace.draws("mech.theta").std(0)
    assert np.all(np.abs(est - np.asarray(THETA)) < 3 * sd), (est, sd)
    assert est[1] > 3 * sd[1]  # the effect is clearly positive
    assert sd[1] < 0.5  # and the data say something


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoff_table_at_covariates_centres_each_draw(recovery):
    _, _, laplace = recovery
    theta = laplace.draws("mech.theta")  # float[D, 2]
    x = 0.7
    d = np.zeros((len(theta), 2, 2, 2))
    diff = theta[:, 0] + theta[:, 1] * x  # u0(1, .) - u0(0, .)
    d[:, 1, :, 0] = diff[:, None] / 2  # centred within agent 0's own actions
    d[:, 0, :, 0] = -diff[:, None] / 2
    d[..., 1] = OTHER - OTHER.mean(1, keepdims=True)  # agent 1: centred over its own action (axis 1)
    t = laplace.payoff_table(0.8, covariates={"x": x})
    np.testing.assert_allclose(t["mean"], d.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t["lower"], np.quantile(d, 0.1, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(t["support"], laplace.support)
    # the recorded centred_payoffs are the table at x = 0
    at0 = laplace.payoff_table(covariates={"x": 0.0})
    np.testing.assert_allclose(at0["mean"], laplace.draws("centred_payoffs").mean(0), atol=1e-5)
    assert not np.allclose(t["mean"], at0["mean"])  # negative control: x moves the table
    ds = laplace.payoff_table(covariates={"x": x}, labelled=True)
    np.testing.assert_allclose(ds["mean"].values, laplace.payoff_table(covariates={"x": x})["mean"])
    assert "0.7" in ds.attrs["covariates"]
    with pytest.raises(ValueError, match=r"move with the covariates x; pass covariates="):
        laplace.payoff_table()
    with pytest.raises(ValueError, match="missing covariate.*'x'"):
        laplace.payoff_table(covariates={})
    with pytest.raises(ValueError, match="unknown covariate.*'z'"):
        laplace.payoff_table(covariates={"x": 1.0, "z": 2.0})
    with pytest.raises(ValueError, match="'x' must be finite"):
        laplace.payoff_table(covariates={"x": np.inf})


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_one_table_answers_refuse_a_fit_whose_payoffs_move_with_covariates(recovery):
    _, _, laplace = recovery
    for ask in (laplace.payoff_pairs, laplace.identification):
        with pytest.raises(ValueError, match="move with the covariates x: use post.payoff_table"):
            ask()
    with pytest.raises(ValueError, match="move with the covariates x"):
        laplace.counterfactual(learner=LEARNER)


def test_neural_payoff_table_at_covariates_is_the_literal_centred_network(data):
    """``mechanism_payoff_table`` on draws of a NeuralJoint (a stand-in posterior: no fit needed)."""
    draws = [
        NEURAL.params_from_identified(NEURAL.identified_from_params(NEURAL.init(jax.random.key(s))))
        for s in range(3)
    ]
    sites = [sites_from_params(NEURAL, p) for p in draws]
    stacked = {k: np.stack([np.asarray(s[k]) for s in sites]) for k in sites[0]}
    support = np.ones((*K, 2), dtype=bool)
    post = types.SimpleNamespace(
        mechanism=NEURAL, data=data, support=support, draws=lambda name: stacked[name]
    )
    x = {"week": -0.5, "price": 1.2}
    want = []
    for p in draws:
        payoff = _numpy_neural(p)(np.array([1.2, -0.5]))
        u = np.array([[payoff((a, b)) for b in range(K[1])] for a in range(K[0])])  # [K_0, K_1, 2]
        want.append(
            np.stack([u[..., 0] - u[..., 0].mean(0), u[..., 1] - u[..., 1].mean(1, keepdims=True)], -1)
        )
    t = mechanism_payoff_table(post, x, 0.8, labelled=False)
    np.testing.assert_allclose(t["mean"], np.mean(want, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(t["support"], support)
    other = mechanism_payoff_table(post, {"week": 0.5, "price": -1.2}, 0.8, labelled=False)
    assert not np.allclose(other["mean"], t["mean"])  # negative control: x enters
    with pytest.raises(ValueError, match="move with the covariates price, week"):
        mechanism_payoff_table(post, None, 0.8, labelled=False)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_centred_payoffs_at_zero_match_payoff_differences(recovery):
    _, mode, _ = recovery
    params = {"theta": mode.draws("mech.theta")[0]}
    want = np.asarray(payoff_differences(THETA_MECH, params))  # payoffs(params, joint): x = 0
    np.testing.assert_allclose(mode.draws("centred_payoffs")[0], want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ idata dims of covariate fits


def _covariate_idata(data, mech):
    spec = ModelSpec.build(data, mech, LEARNER, Priors())
    sites = sites_from_params(mech, mech.init(jax.random.key(0)))
    posterior = {k: np.asarray(v)[None, None] for k, v in sites.items()}
    return build_idata(spec, posterior, log_likelihood=False)


def test_slope_sites_have_the_covariate_dim_with_the_names_as_coords(data):
    tree = _covariate_idata(data, mechanisms.CovariateTabular(K, NAMES))
    post = tree["posterior"]
    for i in range(2):
        slope = post[f"u{i}_slope"]
        assert slope.dims[:3] == ("chain", "draw", "covariate")
        assert slope.dims[3:] == post[f"u{i}_free"].dims[2:]  # then the dims of u{i}_free
    assert list(post["covariate"].values) == list(NAMES)
    np.testing.assert_array_equal(tree["constant_data"]["covariates"].values, data.covariates)
    # data with more covariates than the mechanism: theirs on their own dim
    extra = _with_covariates(
        data, np.c_[data.covariates[:, ::-1], np.ones(data.n_episodes)], ("week", "price", "z")
    )
    tree = _covariate_idata(extra, mechanisms.CovariateTabular(K, ("price",)))
    assert list(tree["posterior"]["covariate"].values) == ["price"]
    const = tree["constant_data"]["covariates"]
    assert const.dims == ("episode", "data_covariate")
    assert list(const["data_covariate"].values) == ["week", "price", "z"]


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_covariate_fit_has_named_slope_dims(data):
    mech = mechanisms.CovariateTabular(K, NAMES)
    with warnings.catch_warnings():  # a few steps: the dims are the point, not the optimum
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = bd.fit(
            data, mech, learner=LEARNER, method="map", seed=0, progress=False, num_steps=20, num_restarts=1
        )
    slope = post.idata["posterior"]["u0_slope"]
    assert slope.dims[:3] == ("chain", "draw", "covariate")
    assert list(slope["covariate"].values) == list(NAMES)


# ------------------------------------------------------------------ registry and command line


def test_registry_builds_the_covariate_mechanism_from_the_data(data):
    mech = make_mechanism("covariate", data)
    assert mech == mechanisms.CovariateTabular(K, NAMES)
    assert "covariate" in MECHANISM_NAMES
    bare = bd.Trajectories(data.actions, K, lengths=data.lengths)
    with pytest.raises(ParameterError, match="'covariate' needs data with covariates") as info:
        make_mechanism("covariate", bare)
    assert info.value.parameter == "mechanism"
    with pytest.raises(ParameterError, match="needs the data"):
        make_mechanism("covariate", K)
    with pytest.raises(ParameterError, match=r"covariate mechanism .* more than 10"):
        make_mechanism("covariate", data, tabular_limit=10)


def test_command_line_mechanism_choice_is_the_registrys(tmp_path, data):
    from click.testing import CliRunner

    from bayes_diml.cli import main
    from bayes_diml.cli.fit import fit_command
    from bayes_diml.cli.fit_inputs import COVARIATE

    choice = next(p for p in fit_command.params if p.name == "mechanism_name").type.choices
    assert tuple(choice) == MECHANISM_NAMES and COVARIATE in choice
    csv = tmp_path / "data.csv"
    data.to_frame().to_csv(csv, index=False)
    result = CliRunner().invoke(
        main, ["fit", str(csv), "--mechanism", "covariate", "--out", str(tmp_path / "f.nc")]
    )
    assert result.exit_code != 0 and "needs --covariates" in " ".join(result.output.split())
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ errors


def test_errors_name_the_problem(data):
    bare = bd.Trajectories(data.actions, K, lengths=data.lengths)
    for mech in (FUNCTION, NEURAL):
        with pytest.raises(DataError, match="needs data with covariates 'price', 'week'"):
            ModelSpec.build(bare, mech, LEARNER, Priors())
        with pytest.raises(DataError, match="needs data with covariates"):
            bd.log_likelihood(mech, mech.init(jax.random.key(0)), LEARNER, bare)
    renamed = _with_covariates(data, data.covariates, ("price", "day"))
    with pytest.raises(DataError, match=r"no covariate\(s\) 'week'"):
        ModelSpec.build(renamed, FUNCTION, LEARNER, Priors())
    params = FUNCTION.init(jax.random.key(0))
    wrong = mechanisms.Function(lambda p, a, x: p["table"][a[0], a[1]].sum(), _init, covariate_names=NAMES)
    with pytest.raises(ValueError, match=r"must return float\[n\] with n = 2 .* returned shape \(\)"):
        wrong.payoffs(params, np.zeros((3, 2), int), covariates=np.zeros(2))
    with pytest.raises(ValueError, match=r"must return float\[n\] with n = 2"):
        bd.log_likelihood(wrong, params, LEARNER, data)
    with pytest.raises(ValueError, match=r"float\[..., C\] with C = 2 \(price, week\)"):
        FUNCTION.payoffs(params, np.zeros((3, 2), int), covariates=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"float\[..., C\] with C = 2"):
        NEURAL.payoffs(NEURAL.init(jax.random.key(0)), np.zeros((3, 2), int), covariates=np.zeros(1))
    with pytest.raises(ValueError, match="takes no covariates"):
        mechanisms.Function(lambda p, a: p["table"][a[0], a[1]], _init).payoffs(
            params, np.zeros(2, int), covariates=np.zeros(2)
        )
    with pytest.raises(ValueError, match="distinct"):
        mechanisms.Function(_fn_x, _init, covariate_names=("a", "a"))
    with pytest.raises(ValueError, match="sequence of names"):
        mechanisms.NeuralJoint(K, covariate_names="ab")
    # a Function of covariates models payoff levels: observed payoffs are accepted
    paid = bd.Trajectories(
        data.actions,
        K,
        lengths=data.lengths,
        payoffs=np.zeros(data.actions.shape),
        covariates=data.covariates,
        covariate_names=NAMES,
    )
    assert ModelSpec.build(paid, FUNCTION, LEARNER, Priors()).plan.contexts is not None
