"""The action bias (habit) of every learner family: policy, gauge, model sites, honesty of the fit.

``pi_i = (1 - eps) softmax(T_i S_i + b_i) + eps / K_i`` (RegretMatching: ``b_i`` added to its
log-weights ``log softplus(beta R_i)``), with ``bias = 0`` (the default) unchanged bit for bit.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from click.testing import CliRunner
from numpyro.infer.util import log_density
from reference import (
    reference_family_log_likelihood_per_step,
    reference_log_likelihood_per_step,
    reference_new_family_log_likelihood_per_step,
    split_r_hat_bound,
)

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.cli.app import main
from bayes_diml.counterfactual import evaluate_plan, plan_for
from bayes_diml.inference import ConfoundingWarning, ConvergenceWarning
from bayes_diml.inference.spec import ModelSpec, initial_values
from bayes_diml.learners import FAMILIES, learner_family, log_softplus, logit_policy_log_prob, per_agent
from bayes_diml.likelihood import action_log_prob, scan_states
from bayes_diml.models import Priors, bias_from_free, free_from_bias

N_ACTIONS = (3, 2, 4)  # unequal K_i: padded actions must be ignored
K = max(N_ACTIONS)
M, T = 4, 12
LENGTHS = [12, 7, 1, 10]
# a bias per agent and action; padded entries (k >= K_i) hold junk that must not matter
BIAS = np.array([[0.8, -0.3, 0.1, 9.0], [-0.6, 0.4, -7.0, 5.0], [0.2, 0.0, -0.9, 0.5]])

#: Parameters of every family (scalars), in the reference loops' spelling.
PARAMS = {
    "logitq": {"alpha": 0.3, "beta": 2.0, "eps": 0.05},
    "bandit": {"alpha": 0.3, "beta": 2.0, "eps": 0.05},
    "hedge": {"eta": 0.4, "eps": 0.05},
    "fp": {"beta": 2.0, "eps": 0.05, "prior_weight": 1.5},
    "ewa": {"phi": 0.8, "delta": 0.6, "rho": 0.7, "lam": 2.0, "eps": 0.05, "n0": 1.2},
    "aspiration": {"alpha": 0.3, "beta": 2.0, "eps": 0.05, "h": 0.2},
    "regret": {"alpha": 0.3, "beta": 3.0, "eps": 0.05},
    "markovq": {"alpha": 0.3, "beta": 2.0, "eps": 0.05},
}


def _learner(family: str, **extra):
    return learner_family(family)(**PARAMS[family], **extra)


def _game(seed: int = 0, dtype=jnp.float32):
    params = {"table": jax.random.normal(jax.random.key(seed + 1), (*N_ACTIONS, 3), dtype=dtype)}
    return mm.Tabular(N_ACTIONS), params


def _data(seed: int = 0) -> bd.Trajectories:
    rng = np.random.default_rng(seed)
    actions = np.stack([rng.integers(0, k, size=(M, T)) for k in N_ACTIONS], axis=-1)
    return bd.Trajectories(actions, N_ACTIONS, lengths=LENGTHS)


def _reference(family: str, table, data, bias):
    table = np.asarray(table, dtype=np.float64)

    def payoff(joint):
        return table[tuple(int(a) for a in joint)]

    args = (payoff, data.actions, N_ACTIONS)
    if family == "logitq":
        p = PARAMS[family]
        return reference_log_likelihood_per_step(
            *args, p["alpha"], p["beta"], p["eps"], lengths=LENGTHS, bias=bias
        )
    if family in ("aspiration", "regret", "markovq"):
        return reference_new_family_log_likelihood_per_step(
            *args, family, PARAMS[family], lengths=LENGTHS, bias=bias
        )
    return reference_family_log_likelihood_per_step(*args, family, PARAMS[family], lengths=LENGTHS, bias=bias)


def test_every_family_has_a_last_bias_field_defaulting_to_zero():
    for cls in FAMILIES.values():
        assert cls._fields[-1] == "bias" and cls._field_defaults["bias"] == 0.0, cls.__name__


# ---------------------------------------------------------------- (i) zero bias: nothing changes


@pytest.mark.parametrize("family", list(FAMILIES))
def test_zero_bias_is_bit_identical_to_no_bias(family):
    """bias = 0 (default), 0.0 and zeros[n, K] give the log-likelihood of the policy without a bias.

    "Without a bias" is the policy written as before the bias existed:
    ``logit_policy_log_prob(temperature * scores)`` (RegretMatching: of ``log softplus(beta R)``)
    on the same learner states; equality is exact (``==``), and simulations draw the same actions.
    """
    mech, params = _game()
    data = _data()
    plan = plan_for(mech, data)
    cf = evaluate_plan(mech, params, plan)
    mask = jnp.asarray(plan.action_mask)
    actions = jnp.asarray(data.actions)
    default = _learner(family)
    states = scan_states(default, cf, actions[:, :-1], mask)
    cls = type(default)
    temperature = per_agent(getattr(default, cls.TEMPERATURE), jnp.float32)
    scores = default.scores(states)
    logits = log_softplus(temperature * scores) if family == "regret" else temperature * scores
    before = logit_policy_log_prob(logits, per_agent(default.eps, jnp.float32), mask, actions[:, 1:])
    for learner in (default, _learner(family, bias=0.0), _learner(family, bias=np.zeros((3, K)))):
        now = action_log_prob(learner, states, mask, actions[:, 1:])
        assert np.array_equal(np.asarray(now), np.asarray(before)), learner.bias
    total = [
        np.asarray(bd.log_likelihood(mech, params, lq, data, per_step=True))
        for lq in (default, _learner(family, bias=np.zeros((3, K), np.float32)))
    ]
    assert np.array_equal(total[0], total[1])
    sims = [bd.simulate(mech, params, lq, 3, 8, 5).actions for lq in (default, _learner(family, bias=0.0))]
    assert np.array_equal(sims[0], sims[1])


# ---------------------------------------------------------------- (ii) a numeric bias: literal loops


@pytest.mark.parametrize("family", list(FAMILIES))
def test_numeric_bias_matches_literal_loop_and_is_gauge_free(family, x64):
    """Per-step log-likelihood with a bias float[n, K] matches the float64 loop of the family.

    Tolerance as the families' own literal-loop tests: float64 sums in different orders
    (~1e-14 relative), rtol 1e-10. Power: the same loop without the bias differs by > 1e-2.

    Gauge (one test with the loop: the biased log-likelihood is computed, and compiled, once):
    b_i -> b_i + c_i leaves every log-probability unchanged (float64 rounding only).
    """
    mech, params = _game(dtype=jnp.float64)
    data = _data()
    per = np.asarray(
        bd.log_likelihood(mech, params, _learner(family, bias=jnp.asarray(BIAS)), data, per_step=True)
    )
    ref = _reference(family, params["table"], data, BIAS)
    np.testing.assert_allclose(per, ref, rtol=1e-10, atol=1e-12)
    assert np.abs(_reference(family, params["table"], data, 0.0) - ref).sum() > 1e-2
    shifted = BIAS + np.array([[3.0], [-2.0], [0.7]])
    moved = np.asarray(
        bd.log_likelihood(mech, params, _learner(family, bias=jnp.asarray(shifted)), data, per_step=True)
    )
    np.testing.assert_allclose(per, moved, rtol=1e-12, atol=1e-12)


def test_simulated_frequencies_follow_the_biased_policy():
    """With all-equal payoffs the scores never move: play is i.i.d. from (1 - eps) softmax(b) + eps / K.

    500 episodes x 10 steps = 5000 draws per agent: each frequency within 4.5 binomial
    standard errors of its probability (familywise error < 1e-4 over the 9 actions).
    """
    mech = mm.Tabular(N_ACTIONS)
    eps = 0.1
    data = bd.simulate(
        mech, {"table": jnp.zeros((*N_ACTIONS, 3))}, bd.LogitQ(0.3, 2.0, eps, bias=BIAS), 500, 10, 0
    )
    for i, k in enumerate(N_ACTIONS):
        p = (1 - eps) * np.exp(BIAS[i, :k]) / np.exp(BIAS[i, :k]).sum() + eps / k
        freq = np.bincount(data.actions[..., i].ravel(), minlength=k) / data.actions[..., i].size
        se = np.sqrt(p * (1 - p) / data.actions[..., i].size)
        assert freq.shape == (k,) and np.all(np.abs(freq - p) < 4.5 * se), (i, freq, p)


# ---------------------------------------------------------------- (iii) gauge


# (the per-agent constant: test_numeric_bias_matches_literal_loop_and_is_gauge_free)


def test_bias_sites_are_gauge_free_coordinates():
    """bias_from_free sums to 0 per agent (0 on padded actions); free_from_bias inverts it up to the gauge."""
    free = np.random.default_rng(0).normal(size=(3, K - 1))
    free[1, 1:] = 0.0  # agent 1 (K_1 = 2) uses one coordinate only
    free[0, 2:] = 0.0  # agent 0 (K_0 = 3) two
    b = np.asarray(bias_from_free(free, N_ACTIONS))
    for i, k in enumerate(N_ACTIONS):
        assert abs(b[i, :k].sum()) < 1e-6 and np.all(b[i, k:] == 0.0)
    np.testing.assert_allclose(free_from_bias(b, N_ACTIONS), free, atol=1e-6)
    # any bias maps to its centred version: the policy-relevant part
    back = np.asarray(bias_from_free(free_from_bias(BIAS, N_ACTIONS), N_ACTIONS))
    for i, k in enumerate(N_ACTIONS):
        np.testing.assert_allclose(back[i, :k], BIAS[i, :k] - BIAS[i, :k].mean(), atol=1e-6)


# ---------------------------------------------------------------- the model


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_inferred_bias_model_adds_its_prior_and_records_the_bias():
    """log p(bias="infer", free) = log p(bias fixed at bias_from_free(free)) + sum log Normal(free; 0, s).

    The ``bias`` site is the deterministic bias_from_free(bias_free); initial values start at 0.
    """
    data = _data()
    mech = mm.Tabular(N_ACTIONS)
    priors = Priors(bias=0.7)
    spec = ModelSpec.build(data, mech, bd.LogitQ(0.3, 2.0, 0.05, bias="infer"), priors)
    assert "bias_free" in spec.latent_names and "bias" not in spec.latent_names
    start = initial_values(spec, jax.random.key(0))
    assert np.all(np.asarray(start["bias_free"]) == 0.0) and start["bias_free"].shape == (3, K - 1)
    free = jnp.asarray(np.random.default_rng(1).normal(size=(3, K - 1)), jnp.float32)
    values = {**start, "bias_free": free}
    logp, trace = log_density(spec.model(), (), {}, values)
    bias = bias_from_free(free, N_ACTIONS)
    np.testing.assert_allclose(trace["bias"]["value"], bias, atol=1e-6)
    fixed = ModelSpec.build(data, mech, bd.LogitQ(0.3, 2.0, 0.05, bias=np.asarray(bias)), priors)
    logp_fixed, _ = log_density(fixed.model(), (), {}, {k: start[k] for k in fixed.latent_names})
    prior = float(dist.Normal(0.0, 0.7).log_prob(free).sum())
    assert float(logp) == pytest.approx(float(logp_fixed) + prior, rel=1e-5)


@pytest.fixture(scope="module")
def map_bias_fit():
    """A quick MAP fit with bias="infer" on unequal action counts (a few seconds)."""
    data = bd.simulate(
        mm.Tabular((2, 3)), {"table": jnp.zeros((2, 3, 2))}, bd.LogitQ(0.3, 2.0, 0.05), 6, 10, 0
    )
    with warnings.catch_warnings():  # incidental: a short MAP need not converge
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return bd.fit(
            data,
            mm.Tabular((2, 3)),
            bd.LogitQ("infer", 2.0, 0.05, bias="infer"),
            method="map",
            num_steps=150,
            num_restarts=1,
            progress=False,
        )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_fit_reports_the_bias_with_dims_and_survives_save_load(map_bias_fit, tmp_path):
    post = map_bias_fit
    tree = post.idata["posterior"]
    assert tree["bias"].dims == ("chain", "draw", "agent", "action") and tree["bias"].shape[2:] == (2, 3)
    assert np.all(tree["bias"].values[..., 0, 2] == 0.0)  # agent 0 has 2 actions: padded entry
    rows = post.summary(identification=False).index
    assert {"bias[0, 0]", "bias[0, 1]", "bias[1, 0]", "bias[1, 1]", "bias[1, 2]"} <= set(rows)
    assert "bias[0, 2]" not in rows  # padded action: not reported
    assert "bias" in post.credible_interval() and post.learner_draws().bias.shape == (1, 2, 3)
    # the Hessian's flat directions leave out the bias coordinate agent 0 (2 actions) never uses
    names = [c[0] for d in post.flat_directions(k=4) for c in d["components"]]
    assert "bias_free[0, 1]" not in names and any(n.startswith("bias_free") for n in names)
    path = post.save(tmp_path / "fit.nc")
    again = bd.load(path)
    assert again.learner.bias == "infer"
    np.testing.assert_array_equal(again.draws("bias"), post.draws("bias"))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_a_fixed_bias_survives_save_load(tmp_path):
    data = bd.simulate(
        mm.Tabular((2, 2)), {"table": jnp.zeros((2, 2, 2))}, bd.LogitQ(0.3, 2.0, 0.05), 4, 6, 0
    )
    bias = np.array([[0.5, -0.5], [0.0, 1.0]])
    post = bd.fit(
        data,
        mm.Tabular((2, 2)),
        bd.LogitQ(0.3, 2.0, 0.05, bias=bias),
        num_steps=20,
        num_restarts=1,
        progress=False,
    )
    again = bd.load(post.save(tmp_path / "fixed.nc"))
    np.testing.assert_array_equal(np.asarray(again.learner.bias), bias)
    assert "bias_free" not in again.spec.latent_names


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_cli_fit_infers_the_bias(tmp_path):
    data = bd.simulate(
        mm.Tabular((2, 2)), {"table": jnp.zeros((2, 2, 2))}, bd.LogitQ(0.3, 2.0, 0.05), 4, 8, 0
    )
    path = data.save(tmp_path / "d.npz")
    out = tmp_path / "f.nc"
    args = ["fit", path, "--bias", "infer", "--beta", "2", "--num-steps", "30"]
    result = CliRunner().invoke(main, [str(a) for a in (*args, "--no-progress", "--out", out)])
    assert result.exit_code == 0, result.output
    assert "bias[" in result.output
    assert bd.load(out).learner.bias == "infer"


# ---------------------------------------------------------------- (v) bad input


@pytest.mark.parametrize(
    ("bias", "match"),
    [
        (np.zeros(3), r"bias must be a number or have shape \(n, K\)"),
        (np.zeros((2, K)), r"bias must be a number or have shape \(n, K\)"),
        (np.zeros((3, K + 1)), r"bias must be a number or have shape \(n, K\) = \(3, 4\)"),
        (np.where(np.eye(3, K) > 0, np.nan, 0.0), "bias must be finite"),
        (np.full((3, K), np.inf), "bias must be finite"),
        ("infer", "bias = 'infer'"),
    ],
)
def test_bad_bias_is_a_clear_error(bias, match):
    mech, params = _game()
    data = _data()
    learner = bd.LogitQ(0.3, 2.0, 0.05, bias=bias)
    with pytest.raises(ValueError, match=match):
        bd.log_likelihood(mech, params, learner, data)
    with pytest.raises(ValueError, match=match):
        bd.simulate(mech, params, learner, 2, 4, 0)


@pytest.mark.parametrize("bias", ["infer_per_agent", "infer_hierarchical", "learn"])
def test_fit_rejects_other_bias_modes(bias):
    with pytest.raises(ValueError, match="learner.bias"):
        ModelSpec.build(_data(), mm.Tabular(N_ACTIONS), bd.LogitQ("infer", 2.0, 0.05, bias=bias), None)


def test_fit_rejects_a_bias_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"LogitQ.bias must be a number or have shape \(n, K\) = \(3, 4\)"):
        ModelSpec.build(
            _data(), mm.Tabular(N_ACTIONS), bd.LogitQ("infer", 2.0, 0.05, bias=np.zeros((3, 3))), None
        )


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), "wide", None])
def test_bias_prior_scale_must_be_positive(scale):
    with pytest.raises(ValueError, match="Priors.bias"):
        Priors(bias=scale)


# ---------------------------------------------------------------- (iv) identification and honesty


def _fit_habit(bias_spec, data):
    with pytest.warns(ConfoundingWarning), warnings.catch_warnings():
        # incidental: 2 x 300 draws may fall short of the ESS target; R-hat is checked below
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return bd.fit(
            data,
            mm.Tabular((2, 2)),
            bd.LogitQ("infer", "infer", "infer", bias=bias_spec),
            method="nuts",
            num_chains=2,
            num_warmup=300,
            num_samples=300,
            progress=False,
            seed=0,
        )


@pytest.mark.slow
def test_habit_with_equal_payoffs_stays_honest():
    """A habit (b_i = (+1, -1) for each agent) under all-equal payoffs, everything else inferred.

    With the bias the fit recovers the habit (90% intervals cover the true (+1, -1), means of
    the right sign) and every identified payoff difference (temperature x centred payoff)
    keeps 0 in its 90% interval. Without it (negative control) the habit is read as
    incentives: intervals exclude 0, all with the habit's sign (action 0 "pays more").
    Measured (20 x 20 steps, 2 x 300 NUTS draws, ~25 s per fit): bias means 0.82 / 0.68 with
    intervals [-0.06, 1.41] / [-0.21, 1.34]; without the bias every one of the 8 cells excludes 0.
    """
    truth = bd.LogitQ(0.3, 2.0, 0.05, bias=np.array([[1.0, -1.0], [1.0, -1.0]]))
    data = bd.simulate(mm.Tabular((2, 2)), {"table": np.zeros((2, 2, 2))}, truth, 20, 20, 0)
    with_bias, without = _fit_habit("infer", data), _fit_habit(0.0, data)
    for post in (with_bias, without):
        bound = split_r_hat_bound(max(post.info["min_ess_bulk"], 50.0), chains=2, quantities=20)
        assert post.info["max_r_hat"] < bound, post.info

    b = with_bias.draws("bias")  # [D, 2, 2]
    lo, hi = np.quantile(b, [0.05, 0.95], axis=0)
    assert np.all(lo <= np.array([[1.0, -1.0]] * 2)) and np.all(np.array([[1.0, -1.0]] * 2) <= hi)
    assert np.all(b.mean(0)[:, 0] > 0)

    def intervals(post):
        draws, units = post.identified_payoff_draws()
        assert units != "payoff"  # confounded: temperature x payoff
        return np.quantile(draws, [0.05, 0.95], axis=0)

    lo, hi = intervals(with_bias)
    assert np.all(lo < 0) and np.all(hi > 0), (lo, hi)
    lo, hi = intervals(without)
    excludes = (lo > 0) | (hi < 0)
    assert excludes.any()
    # the habit's sign, never the other: u_i(0, .) > u_i(1, .) for each agent
    a0, a1 = np.meshgrid(np.arange(2), np.arange(2), indexing="ij")
    own0 = np.stack([a0 == 0, a1 == 0], axis=-1)  # cell [a_0, a_1, i]: agent i plays its action 0
    assert np.all(lo[own0 & excludes] > 0) and np.all(hi[~own0 & excludes] < 0)
