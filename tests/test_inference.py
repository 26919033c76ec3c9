"""The Bayesian layer: model, MAP/Laplace/SVI/NUTS, Posterior reporting, counterfactuals, I/O.

Statistical checks share a false-failure budget of 1e-3 across the suite's ~20 such checks:
z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20)) = 4.06.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from reference import split_r_hat_bound

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConfoundingWarning, FitError, Posterior
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors, free_from_table, params_from_sites, sum_to_zero_basis

Z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20))
LEARNER = bd.LogitQ(0.3, 2.0, 0.05)


def prior_table(mech: mechanisms.Tabular, key, scale: float = 1.0) -> dict:
    """A table drawn from the model's own gauge-fixed prior (so Bayesian coverage is exact)."""
    sites = {}
    for i in range(mech.n_agents):
        key, sub = jax.random.split(key)
        shape = list(mech.n_actions)
        shape[i] -= 1
        sites[f"u{i}_free"] = scale * jax.random.normal(sub, tuple(shape))
    return params_from_sites(mech, sites)


@pytest.fixture(scope="module")
def game():
    mech = mechanisms.Tabular((2, 3))
    params = prior_table(mech, jax.random.key(3))
    data = bd.simulate(mech, params, LEARNER, 30, 30, 11)
    return mech, params, data


@pytest.fixture(scope="module")
def nuts_fit(game):
    mech, _, data = game
    # the package warns above R-hat 1.01; test_nuts_small_game_converges checks the chains against
    # a bound derived from their ESS instead, so the warning is incidental here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=bd.inference.ConvergenceWarning)
        return _nuts_fit(mech, data)


@pytest.fixture(scope="module")
def map_fit(game):
    """The default MAP (3 restarts) of ``game``: the reference of the SVI/Laplace checks."""
    mech, _, data = game
    return bd.fit(data, mech, LEARNER, method="map", seed=0, progress=False)


@pytest.fixture(scope="module")
def svi_fit(game):
    """One SVI fit of ``game`` for the agreement check and the predictive groups: 1500 steps
    (converged), 200 draws (the agreement check's Monte Carlo error in the mean is sd / 14,
    small against its z = 4.06 band), with prior and posterior predictive groups."""
    mech, _, data = game
    return bd.fit(
        data,
        mech,
        LEARNER,
        method="svi",
        seed=0,
        progress=False,
        num_steps=1500,
        num_draws=200,
        prior_predictive=15,
        posterior_predictive=True,
    )


def _nuts_fit(mech, data):
    return bd.fit(
        data,
        mech,
        LEARNER,
        method="nuts",
        seed=0,
        progress=False,
        num_warmup=500,
        num_samples=500,
        num_chains=2,
    )


# ------------------------------------------------------------------ gauge-fixed model
def test_sum_to_zero_basis_is_orthonormal_and_centred():
    for K in (1, 2, 3, 6):
        H = sum_to_zero_basis(K)
        assert H.shape == (K, K - 1)
        np.testing.assert_allclose(H.T @ H, np.eye(K - 1), atol=1e-12)
        np.testing.assert_allclose(H.sum(0), 0.0, atol=1e-12)


def test_free_coordinates_round_trip_to_centred_table():
    mech = mechanisms.Tabular((2, 3, 4))
    table = np.asarray(mech.init(jax.random.key(0))["table"], dtype=float)
    sites = free_from_table(mech, table)
    back = np.asarray(params_from_sites(mech, sites)["table"])
    centred = np.asarray(bd.metrics.payoff_differences(mech, {"table": jnp.asarray(table)}))
    np.testing.assert_allclose(back, centred, atol=1e-5)
    for i in range(3):
        np.testing.assert_allclose(back[..., i].mean(axis=i), 0.0, atol=1e-5)


def test_model_log_density_equals_core_likelihood(game):
    from numpyro.infer.util import log_density

    from bayes_diml.models import logit_q_model

    mech, params, data = game
    sites = free_from_table(mech, params["table"])
    logp, trace = log_density(logit_q_model, (data, mech, LEARNER, Priors(mechanism_scale=None)), {}, sites)
    np.testing.assert_allclose(float(logp), float(bd.log_likelihood(mech, params, LEARNER, data)), rtol=1e-5)
    assert trace["actions"]["fn"].__class__.__name__ == "MaskedDistribution"  # Categorical with a mask
    assert trace["actions"]["value"].shape == (data.n_episodes, data.n_steps - 1, data.n_agents)


def test_spec_builds_its_plan_once_and_the_model_uses_it(game):
    from numpyro.infer.util import log_density

    mech, params, data = game
    spec = ModelSpec.build(data, mech, LEARNER, Priors(mechanism_scale=None))
    assert spec.plan.kind == "table" and spec.plan.index.shape[:3] == (data.n_episodes, data.n_steps - 1, 2)
    model = spec.model()
    assert model.data.plan_index is spec.plan.index or np.array_equal(model.data.plan_index, spec.plan.index)
    assert model.data.plan.kind == spec.plan.kind
    assert not hasattr(data, "_cache")  # nothing is cached on the data object
    sites = free_from_table(mech, params["table"])
    logp, _ = log_density(spec.model(), (), {}, sites)
    np.testing.assert_allclose(float(logp), float(bd.log_likelihood(mech, params, LEARNER, data)), rtol=1e-5)
    # the plan follows the data
    part = data.subset([0, 1])
    moved = spec.with_data(part)
    assert moved.data is part and moved.plan.index.shape[0] == 2
    same = ModelSpec.from_parts(data, spec.mechanism, spec.learner, spec.priors)
    np.testing.assert_array_equal(same.plan.index, spec.plan.index)
    # a spec is still hashable (a static argument of jax.jit): the plan compares by value
    assert same == spec and hash(same) == hash(spec) and moved != spec


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_pointwise_log_likelihood_is_per_step_and_sums_to_total(game):
    mech, params, data = game
    ragged = bd.Trajectories(data.actions[:4], data.n_actions, lengths=[30, 12, 2, 25])
    spec = ModelSpec.build(ragged, mech, LEARNER, Priors())
    sites = {k: np.asarray(v)[None] for k, v in free_from_table(mech, params["table"]).items()}
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()})
    ll = np.asarray(tree["log_likelihood"]["actions"].values)[0, 0]
    assert ll.shape == (4, 29, 2)
    expected = np.asarray(bd.log_likelihood(mech, params, LEARNER, ragged, per_step=True))
    np.testing.assert_allclose(ll, expected, rtol=1e-4, atol=1e-5)
    assert np.all(ll[2, 1:] == 0.0) and np.all(ll[2, 0] < 0.0)  # length 2: one scored step
    assert tree["log_likelihood"]["actions"].dims[2:] == ("episode", "step", "agent")


# ------------------------------------------------------------------------------ MAP
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_map_with_flat_priors_is_the_mle(game):
    mech, _, data = game
    post = bd.fit(
        data, mech, LEARNER, method="map", priors=Priors(mechanism_scale=None), seed=0, progress=False
    )
    assert post.info["converged"]
    fitted = post.mechanism_params()

    # an independent MLE: plain Adam on the raw table with the core likelihood
    loss = jax.jit(jax.value_and_grad(lambda p: -bd.log_likelihood(mech, p, LEARNER, data)))
    opt = optax.adam(0.05)

    @jax.jit
    def adam(p):  # 3000 steps in one compiled loop (a Python loop dispatches ~10 ops per step)
        def step(_, carry):
            p, state = carry
            upd, state = opt.update(loss(p)[1], state)
            return optax.apply_updates(p, upd), state

        return jax.lax.fori_loop(0, 3000, step, (p, opt.init(p)))[0]

    p = adam({"table": jnp.zeros((2, 3, 2))})
    mle = np.asarray(bd.metrics.payoff_differences(mech, p))
    ll_map = float(bd.log_likelihood(mech, fitted, LEARNER, data))
    np.testing.assert_allclose(ll_map, post.info["map_log_joint"], rtol=1e-6)
    # the MAP stops when a chunk changes the float32 objective by less than 16 float32 epsilons
    # relative (MAPConfig.tol): it may end about that many nats short of the maximum (2.5e-3 here)
    gap = 16 * float(np.finfo(np.float32).eps) * abs(ll_map)
    assert ll_map >= float(-loss(p)[0]) - gap
    # A point ``gap`` nats below a quadratic maximum lies within sqrt(2 gap) standard deviations
    # of it in every direction (1/2 d'H d = gap), so each payoff difference may differ from the
    # MLE's by sqrt(2 gap) (0.07) of its sd (Laplace: H the likelihood's Hessian at the MLE,
    # pseudo-inverted over the gauge's flat directions). Measured: 0.005 sd on a CPU, 0.05 on a
    # GPU (absolute 0.0007 and 0.002: the stopping point differs between machines).
    with jax.enable_x64(True):
        table = jnp.asarray(np.asarray(p["table"]), jnp.float64)
        lq = bd.LogitQ(*(jnp.float64(x) for x in (0.3, 2.0, 0.05)))
        # jitted: one program each (eager, every operation of the Hessian compiles on its own)
        hess = jax.jit(jax.hessian(lambda t: -bd.log_likelihood(mech, {"table": t}, lq, data)))(table)
        jac = jax.jit(jax.jacobian(lambda t: bd.metrics.payoff_differences(mech, {"table": t})))(table)
        hess, jac = np.asarray(hess).reshape(table.size, -1), np.asarray(jac).reshape(-1, table.size)
        sd = np.sqrt(np.diag(jac @ np.linalg.pinv(hess, hermitian=True) @ jac.T)).reshape(mle.shape)
    moved = np.abs(np.asarray(post.payoff_table()["mean"]) - mle)
    identified = sd > 1e-6  # the gauge-fixed reference entries are zero in both
    assert np.all(moved[~identified] < 1e-6)
    assert np.max(moved[identified] / sd[identified]) <= np.sqrt(2 * gap), moved / np.where(identified, sd, 1)


def test_map_reports_a_single_point(map_fit):
    post = map_fit  # three restarts, one point
    assert post.n_draws == 1
    s = post.summary()
    assert np.isnan(s["sd"]).all() and s["mean"].notna().all()


# ----------------------------------------------------------------------------- NUTS
def test_nuts_small_game_converges(nuts_fit):
    import arviz as az

    assert nuts_fit.info["divergences"] == 0
    diag = az.summary(nuts_fit.idata, var_names=["centred_payoffs"], kind="diagnostics", round_to="none")
    ess = float(np.nanmin(diag[["ess_bulk", "ess_tail"]].to_numpy()))
    bound = split_r_hat_bound(ess, chains=2, quantities=2 * len(diag))  # bulk and folded R-hat
    assert bound < 1.05  # still fails a chain that has not mixed (R-hat 1.1 and more)
    assert nuts_fit.info["max_r_hat"] < bound, (nuts_fit.info["max_r_hat"], bound)
    assert nuts_fit.info["min_ess_bulk"] > 200
    tree = nuts_fit.idata
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data"):
        assert group in tree.children, group
    assert tree["posterior"].sizes["chain"] == 2 and tree["posterior"].sizes["draw"] == 500


def test_nuts_recovers_payoff_differences(game, nuts_fit):
    _, params, _ = game
    truth = np.asarray(bd.metrics.payoff_differences(*game[:2]))
    draws = nuts_fit.payoff_differences()
    z = np.abs(draws.mean(0) - truth) / draws.std(0)
    assert np.all(z < Z), z.max()
    # negative control: a scaled (wrong) table is rejected by the same check
    assert np.any(np.abs(draws.mean(0) - 0.5 * truth) / draws.std(0) > Z)


def test_payoff_differences_of_one_agent_per_joint_action(game, nuts_fit):
    """``agent=`` returns each joint action's chosen agent's entry of the full draws."""
    mech = game[0]
    rng = np.random.default_rng(1)
    k = np.asarray(mech.n_actions)
    joint = (rng.random((30, k.size)) * k).astype(np.int32)
    agent = rng.integers(0, k.size, 30)
    full = nuts_fit.payoff_differences(joint, n_draws=40)[:, np.arange(30), agent]
    one = nuts_fit.payoff_differences(joint, n_draws=40, agent=agent)
    assert one.shape == (40, 30)
    np.testing.assert_allclose(one, full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="agent= needs joint"):
        nuts_fit.payoff_differences(agent=agent)


def test_summary_labels_and_intervals(nuts_fit):
    s = nuts_fit.summary(prob=0.9)
    assert {"mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "support", "label"} <= set(s.columns)
    assert (s["lower"] <= s["mean"]).all() and (s["mean"] <= s["upper"]).all()
    # every cell of this fully played game contracts well away from its prior
    assert set(s["label"]) == {"well identified"}
    assert (s["contraction"] >= 0.5).all() and (s["contraction"] <= 1.0).all()
    assert set(s.loc[[i for i in s.index if i.startswith("centred")], "data_support"]) <= {
        "played",
        "counterfactual only",
    }
    # without the identification pass the labels come from the support alone
    assert set(nuts_fit.summary(prob=0.9, identification=False)["label"]) == {"identified"}
    ci = nuts_fit.credible_interval(0.5)["centred_payoffs"]
    ci90 = nuts_fit.credible_interval(0.9)["centred_payoffs"]
    assert np.all(ci90[0] <= ci[0]) and np.all(ci[1] <= ci90[1])
    with pytest.raises(ValueError, match="prob"):
        nuts_fit.summary(prob=1.5)


@pytest.mark.slow
# coverage is the check; a short chain's ESS note (e.g. bulk ESS 92 < 100) is not
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
@pytest.mark.parametrize("beta_factor, expect_calibrated", [(1.0, True), (0.4, False)])
def test_interval_coverage_is_nominal(beta_factor, expect_calibrated):
    """Truth drawn from the prior: 90% intervals of centred payoffs cover at ~90% on supported cells.

    Cells within one (agent, opponent profile) are tied by the sum-to-zero constraint, so the
    binomial tolerance uses the number of free coordinates, sum over profiles of (K_i - 1).
    The wrong-learner control (beta x 0.4) must fall outside the band.
    """
    mech = mechanisms.Tabular((3, 3))
    covered, cells, free = 0, 0, 0
    for seed in range(6):
        params = prior_table(mech, jax.random.key(100 + seed))
        data = bd.simulate(mech, params, LEARNER, 40, 30, 200 + seed)
        wrong = LEARNER._replace(beta=LEARNER.beta * beta_factor)
        post = bd.fit(
            data,
            mech,
            wrong,
            method="nuts",
            seed=seed,
            progress=False,
            num_warmup=300,
            num_samples=300,
            num_chains=1,
        )
        table = post.payoff_table(0.9)
        truth = np.asarray(bd.metrics.payoff_differences(mech, params))
        sup = table["support"]
        hit = (table["lower"] <= truth) & (truth <= table["upper"])
        covered += int(hit[sup].sum())
        cells += int(sup.sum())
        free += int(sup.sum() * 2 / 3)  # K_i - 1 = 2 free coordinates per 3 cells
    rate = covered / cells
    half_width = Z * np.sqrt(0.9 * 0.1 / free)
    if expect_calibrated:
        assert abs(rate - 0.9) < half_width, (rate, half_width)
    else:
        assert rate < 0.9 - half_width, (rate, half_width)


# ---------------------------------------------------------------- confounding, beta
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_confounding_is_warned_and_labelled(game):
    mech, _, data = game
    with pytest.warns(ConfoundingWarning, match="confounded"):
        post = bd.fit(data, mech, bd.LogitQ(0.3, "infer", 0.05), method="map", seed=0, progress=False)
    assert post.confounded
    s = post.summary()
    assert s.loc["beta", "label"] == "confounded with payoff scale"
    assert any(str(i).startswith("scaled_payoffs[") for i in s.index)


@pytest.mark.slow
def test_observed_payoffs_identify_beta():
    mech = mechanisms.Tabular((2, 2))
    params = prior_table(mech, jax.random.key(7), scale=1.5)
    truth = bd.LogitQ(0.3, 2.5, 0.05)
    data = bd.simulate(mech, params, truth, 30, 30, 5, record_payoffs=True)
    noisy = data.payoffs + 0.2 * np.random.default_rng(0).standard_normal(data.payoffs.shape)
    data = bd.Trajectories(data.actions, data.n_actions, payoffs=noisy)
    spec = bd.LogitQ(0.3, "infer", 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfoundingWarning)  # no confounding warning with payoffs
        post = bd.fit(
            data,
            mech,
            spec,
            method="nuts",
            seed=0,
            progress=False,
            num_warmup=400,
            num_samples=800,  # 2 x 300 draws sat at R-hat 1.010, on the 1.01 warning line
            num_chains=2,
        )
    assert not post.confounded
    beta = post.draws("beta")
    lo, hi = np.quantile(beta, [0.005, 0.995])
    assert lo <= 2.5 <= hi
    prior_sd = np.sqrt((np.exp(1.0) - 1) * np.exp(2 * 1.0 + 1.0))  # LogNormal(1, 1)
    assert beta.std() < 0.25 * prior_sd
    assert post.summary().loc["beta", "label"] == "well identified"


# --------------------------------------------------------------------- support
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_unplayed_opponent_profiles_are_off_support():
    mech = mechanisms.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    data = bd.simulate(mech, params, LEARNER, 10, 20, 0)
    actions = data.actions.copy()
    actions[..., 1] = np.minimum(actions[..., 1], 1)  # agent 1 never plays action 2
    data = bd.Trajectories(actions, (2, 3))
    post = bd.fit(data, mech, LEARNER, method="map", seed=0, progress=False, num_restarts=1)
    sup = post.support
    assert not sup[:, 2, 0].any()  # agent 0's cells against a_1 = 2 were never informed
    assert sup[:, :2, 0].all() and sup[..., 1].all()
    labels = post.summary()["label"]
    assert (labels == "prior only (opponent profile never observed)").sum() == 2


def test_support_mask_is_kept_for_small_tables_only_and_counts_huge_games_exactly():
    from bayes_diml.inference.identification import support_mask, support_mask_if_small

    small = bd.Trajectories(np.zeros((1, 3, 2), dtype=int), (2, 3))
    np.testing.assert_array_equal(support_mask_if_small(small), support_mask(small))
    assert support_mask_if_small(small, max_cells=2 * 6 - 1) is None  # 12 cells > 11
    assert support_mask_if_small(small, max_cells=2 * 6) is not None
    # 300 agents x 40 actions: 40^300 joint actions overflow float64; counted exactly, no warning
    # (pytest turns warnings into errors) and no mask
    huge = bd.Trajectories(np.zeros((1, 2, 300), dtype=int), (40,) * 300)
    assert support_mask_if_small(huge) is None


# --------------------------------------------------------------- counterfactuals
def _point_mass_posterior(mech, params, data, learner) -> Posterior:
    spec = ModelSpec.build(data, mech, learner, Priors())
    sites = {k: np.asarray(v)[None] for k, v in free_from_table(mech, params["table"]).items()}
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()}, log_likelihood=False)
    return Posterior(tree, spec, "map")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_counterfactual_matches_direct_simulation(game):
    mech, params, data = game
    post = _point_mass_posterior(mech, params, data, LEARNER)
    shifted = LEARNER.scaled(alpha=0.6, beta=1.4, eps=1.5)
    E, T = 3000, 12
    freq = post.counterfactual(learner=shifted, n_episodes=E, T=T, n_draws=1, seed=5)[0]  # [n, K]
    direct = bd.simulate(mech, params, shifted, E, T, 99)
    per_episode = np.stack([(direct.actions == k).mean(1) for k in range(3)], -1)  # [E, n, K]
    se = per_episode.std(0) / np.sqrt(E) * np.sqrt(2)  # two independent estimates
    mask = np.arange(3)[None, :] < np.array([2, 3])[:, None]
    diff = np.abs(freq - per_episode.mean(0))[mask]
    assert np.all(diff < Z * se[mask] + 1e-6)
    # power: a different learner is detected by the same check
    other = post.counterfactual(learner=LEARNER.scaled(beta=0.2), n_episodes=E, T=T, n_draws=1, seed=5)[0]
    assert np.any(np.abs(other - per_episode.mean(0))[mask] > Z * se[mask])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_counterfactual_edit_and_statistics(nuts_fit):
    toll = nuts_fit.counterfactual(
        mechanism_edit=lambda u, a: u - 3.0 * (a == 0),
        n_episodes=50,
        T=20,
        n_draws=20,
        statistic="action_frequencies",
    )
    base = nuts_fit.counterfactual(n_episodes=50, T=20, n_draws=20, statistic="action_frequencies")
    assert toll.shape == base.shape == (20, 2, 3)
    assert toll[:, :, 0].mean() < base[:, :, 0].mean()  # taxing action 0 makes it rarer
    w = nuts_fit.counterfactual(n_episodes=20, T=10, n_draws=5, statistic="welfare")
    assert w.shape == (5,)
    mp = nuts_fit.counterfactual(n_episodes=20, T=10, n_draws=5, statistic="mean_payoff")
    assert mp.shape == (5, 2)
    custom = nuts_fit.counterfactual(
        n_episodes=20, T=10, n_draws=5, statistic=lambda a, u: (a[:, 1:] != a[:, :-1]).mean()
    )
    assert custom.shape == (5,) and np.all((custom >= 0) & (custom <= 1))
    with pytest.raises(ValueError, match="statistic"):
        nuts_fit.counterfactual(statistic="median")


# -------------------------------------------------------------------------- I/O
def test_save_load_round_trip(tmp_path, nuts_fit):
    path = nuts_fit.save(tmp_path / "fit.nc")
    back = bd.load(path)
    assert back.method == "nuts" and back.n_draws == nuts_fit.n_draws
    np.testing.assert_array_equal(back.data.actions, nuts_fit.data.actions)
    np.testing.assert_allclose(back.summary()["mean"], nuts_fit.summary()["mean"])
    assert back.learner.beta == pytest.approx(LEARNER.beta)
    with pytest.raises(FileNotFoundError):
        bd.load(tmp_path / "missing.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="not a readable"):
        bd.load(bad)


# ---------------------------------------------------------------- other methods
def _assert_agrees_with_map(post, map_fit, label):
    d = post.payoff_differences()
    z = np.abs(d.mean(0) - map_fit.payoff_table()["mean"]) / d.std(0)
    assert np.all(z < Z), (label, z.max())


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_svi_agrees_with_map(svi_fit, map_fit):
    _assert_agrees_with_map(svi_fit, map_fit, "svi")


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, opts",
    [("svi", {"num_steps": 1500, "guide": "lowrank"}), ("laplace", {})],
)
def test_svi_and_laplace_agree_with_map(game, map_fit, method, opts):
    mech, _, data = game
    post = bd.fit(data, mech, LEARNER, method=method, seed=0, progress=False, **opts)
    _assert_agrees_with_map(post, map_fit, (method, opts))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_learner_per_agent_and_flat_priors_errors(game):
    mech, _, data = game
    post = bd.fit(
        data,
        mech,
        bd.LogitQ("infer_per_agent", 2.0, 0.05),
        method="map",
        seed=0,
        progress=False,
        num_restarts=1,
    )
    assert post.draws("alpha").shape == (1, 2)
    assert set(post.scalar_summary()) == {"alpha[0]", "alpha[1]"}
    with pytest.raises(ValueError, match="flat"):
        bd.fit(data, mech, LEARNER, method="nuts", priors=Priors(mechanism_scale=None))
    with pytest.raises(ValueError, match="unknown method"):
        bd.fit(data, mech, LEARNER, method="hmc")
    with pytest.raises(TypeError, match="unknown option"):
        bd.fit(data, mech, LEARNER, method="map", num_samples=10)
    with pytest.raises(TypeError, match="Trajectories"):
        bd.fit(data.actions, mech, LEARNER)
    with pytest.raises(ValueError, match="n_actions"):
        bd.fit(data, mechanisms.Tabular((3, 3)), LEARNER)
    with pytest.raises(ValueError, match="learner.beta"):
        bd.fit(data, mech, bd.LogitQ(0.3, "guess", 0.05))
    with pytest.raises(ValueError, match="alpha"):
        bd.fit(data, mech, bd.LogitQ(1.5, 2.0, 0.05))
    with pytest.raises(ValueError, match="mechanism_scale"):
        Priors(mechanism_scale=-1.0)
    assert FitError is not None


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_neural_mechanism_map_fit_runs():
    mech = mechanisms.NeuralJoint((2, 3), width=8, depth=1)
    params = mech.init(jax.random.key(0))
    data = bd.simulate(mech, params, LEARNER, 8, 15, 0)
    post = bd.fit(data, mech, LEARNER, method="map", seed=0, progress=False, num_restarts=1, num_steps=300)
    assert post.payoff_table()["mean"].shape == (2, 3, 2)
    assert float(bd.log_likelihood(mech, post.mechanism_params(), LEARNER, data)) > float(
        bd.log_likelihood(mech, mech.init(jax.random.key(5)), LEARNER, data)
    )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_predictive_groups_and_zarr(tmp_path, game, svi_fit):
    data = game[2]
    post = svi_fit
    tree = post.idata
    assert {"prior", "prior_predictive", "posterior_predictive"} <= set(tree.children)
    assert tree["prior_predictive"]["actions"].shape == (1, 15, *data.actions[:, 1:].shape)
    pp = np.asarray(tree["posterior_predictive"]["actions"].values)
    assert pp.shape == (1, 200, *data.actions[:, 1:].shape)
    assert np.all((pp >= 0) & (pp < np.array([2, 3])))
    pytest.importorskip("zarr")
    back = bd.load(post.save(tmp_path / "fit.zarr"))
    np.testing.assert_allclose(back.draws("centred_payoffs"), post.draws("centred_payoffs"))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_identification_labels_never_observed_cells_prior_driven():
    mech = mechanisms.Tabular((2, 3))
    params = prior_table(mech, jax.random.key(4))
    data = bd.simulate(mech, params, LEARNER, 15, 25, 2)
    actions = data.actions.copy()
    actions[..., 1] = np.minimum(actions[..., 1], 1)  # agent 1 never plays action 2
    data = bd.Trajectories(actions, (2, 3))
    post = bd.fit(
        data,
        mech,
        LEARNER,
        method="nuts",
        seed=0,
        progress=False,
        num_warmup=400,
        num_samples=600,
        num_chains=2,  # the variance's ESS (its SE in the label rule) is far below the draws'
    )
    table = post.identification(num_prior_draws=4000)
    never = [f"centred_payoffs[{a0}, 2, 0]" for a0 in range(2)]
    assert set(table.loc[never, "support"]) == {"not observed"}
    assert set(table.loc[never, "label"]) == {"prior-driven"}
    played = table[table["support"] == "played"]
    assert len(played) > 0 and set(played["label"]) == {"well identified"}
    # summary() prints the same labels next to each quantity
    summ = post.summary(num_prior_draws=4000)
    assert set(summ.loc[never, "label"]) == {"prior-driven"}
    assert set(summ.loc[never, "data_support"]) == {"not observed"}
    assert set(summ.loc[played.index, "label"]) == {"well identified"}
    # never-observed cells keep the prior: N(0, 1/2) for the centred payoff of a 2-action agent
    draws = post.draws("centred_payoffs")[:, 0, 2, 0]
    q = np.quantile(draws, [0.05, 0.95])
    prior_q = NormalDist(0.0, np.sqrt(0.5)).inv_cdf(0.95)
    se = (
        2.0 * np.sqrt(0.05 * 0.95 / 600) / 0.103 * np.sqrt(0.5)
    )  # quantile SE: sqrt(p(1-p)/N)/f(q), x2 for MCMC
    assert abs(q[1] - prior_q) < Z * se and abs(q[0] + prior_q) < Z * se
    # a played cell is much narrower than the prior
    assert post.draws("centred_payoffs")[:, 0, 0, 0].std() < 0.6 * np.sqrt(0.5)
    # power-scaling sensitivity (ArviZ) flags the never-observed cells as prior-dominated
    ps = post.prior_sensitivity()
    assert set(ps.loc[never, "diagnosis"]) == {"potential strong prior / weak likelihood"}


@pytest.mark.slow
def test_sum_to_zero_congestion_matches_raw_with_fewer_leapfrog_steps():
    """Orthonormal identified coordinates: the same prior, so the same posterior, in far fewer steps."""
    env = bd.environments.make("e2", 0, n_episodes=30, T=40)
    fits = {}
    for identified in (True, False):
        fam = mechanisms.StructuredCongestion(4, 5, identified=identified)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one chain: no R-hat; ESS is used below
            fits[identified] = bd.fit(
                env.train,
                fam,
                env.learner,
                method="nuts",
                seed=0,
                progress=False,
                num_warmup=300,
                num_samples=400,
                num_chains=1,
                # the parametrisations compared under a diagonal metric: a dense one (the
                # default for small models) largely absorbs the raw one's linear ridge
                dense_mass=False,
            )
    a, b = (fits[k].payoff_differences() for k in (True, False))
    ess = {k: fits[k].info["min_ess_bulk"] for k in (True, False)}
    se = np.sqrt(a.var(0) / ess[True] + b.var(0) / ess[False])
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < Z * se + 1e-6)
    # the gauge ridge and the collinear 1 / load / load^2 basis cost the raw parametrisation
    # several times more leapfrog steps per draw (measured: 73 vs 326 on this data)
    assert fits[True].info["mean_leapfrog_steps"] < 0.5 * fits[False].info["mean_leapfrog_steps"]
    # the original parameters are recoverable as deterministic sites, and b sums to zero
    assert "param.b" in fits[True].idata["posterior"].data_vars
    np.testing.assert_allclose(fits[True].draws("param.b").sum(-1), 0.0, atol=1e-4)


def test_network_output_bias_is_not_a_parameter():
    mech = mechanisms.NeuralJoint((2, 3), width=4, depth=1)
    from bayes_diml.models import mechanism_sites, sites_from_params

    sites = mechanism_sites(mech)
    assert "mech.layers.1.b" not in sites and "mech.layers.1.w" in sites
    params = mech.init(jax.random.key(1))
    back = params_from_sites(mech, sites_from_params(mech, params))
    # dropping the output bias changes payoffs only by a per-agent constant: the same differences
    np.testing.assert_allclose(
        bd.metrics.payoff_differences(mech, back), bd.metrics.payoff_differences(mech, params), atol=1e-5
    )
    assert np.all(np.asarray(back["layers"][1]["b"]) == 0.0)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_flat_direction_names_the_beta_scale_confound():
    mech = mechanisms.Tabular((2, 2))
    params = prior_table(mech, jax.random.key(2), scale=1.5)
    data = bd.simulate(mech, params, LEARNER, 30, 30, 0)
    with pytest.warns(ConfoundingWarning):
        post = bd.fit(
            data, mech, bd.LogitQ(0.3, "infer", 0.05), method="svi", seed=0, progress=False, num_steps=1000
        )
    flat = post.flat_directions(k=2)
    assert abs(flat[0]["relative"]) < 0.02  # (beta up, payoffs down) leaves the likelihood flat
    assert flat[0]["components"][0][0] == "beta" and "observe payoffs" in flat[0]["hint"]
    assert flat[1]["relative"] > 0.05  # the next direction is determined


# ------------------------------------------------------------------ payoff levels
def test_tabular_levels_prior_is_iid_and_round_trips():
    """With levels, (free, level) -> table is linear with table covariance scale^2 I (i.i.d. cells)."""
    from jax.flatten_util import ravel_pytree

    from bayes_diml.models import mechanism_sites
    from bayes_diml.models.sites import _site_scale

    mech = mechanisms.Tabular((2, 3), levels=True)
    shapes = mechanism_sites(mech)
    assert shapes == {"u0_free": (1, 3), "u1_free": (2, 2), "u0_level": (3,), "u1_level": (2,)}
    table = jax.random.normal(jax.random.key(0), (2, 3, 2)) + 2.0  # far from centred
    sites = free_from_table(mech, table)
    back = params_from_sites(mech, sites)["table"]
    np.testing.assert_allclose(np.asarray(back), np.asarray(table), atol=1e-5)
    flat, unravel = ravel_pytree({k: jnp.asarray(v, jnp.float32) for k, v in sites.items()})
    J = np.asarray(jax.jacobian(lambda z: params_from_sites(mech, unravel(z))["table"].reshape(-1))(flat))
    sd = np.concatenate([np.full(int(np.prod(shapes[k])), _site_scale(mech, k, 1.5)) for k in sorted(shapes)])
    np.testing.assert_allclose((J * sd**2) @ J.T, 1.5**2 * np.eye(J.shape[0]), atol=1e-5)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_observed_payoffs_fit_payoff_levels():
    """Observed payoffs are levels: fit switches Tabular(levels=True) on and recovers the table."""
    mech = mechanisms.Tabular((2, 2))
    table = jnp.asarray([[[1.5, 3.0], [2.5, 2.0]], [[3.0, 3.5], [2.0, 1.0]]])  # levels ~ 2-3
    data = bd.simulate(mech, {"table": table}, LEARNER, 20, 20, 3, record_payoffs=True)
    sigma = 0.1
    noisy = data.payoffs + sigma * np.random.default_rng(1).standard_normal(data.payoffs.shape)
    data = bd.Trajectories(data.actions, data.n_actions, payoffs=noisy)
    post = bd.fit(data, mech, LEARNER, method="map", seed=0, progress=False, num_restarts=1)
    assert post.mechanism.levels and "u0_level" in post.idata["posterior"].data_vars
    fitted = np.asarray(post.mechanism_params()["table"])
    # every cell is played here; each is seen >= ~20 times with noise 0.1: error well under 0.2
    # (a centred-only fit would be off by the levels, ~2.5)
    assert np.abs(fitted - np.asarray(table)).max() < 0.2, fitted


def test_variance_ess_of_correlated_draws():
    """The contraction's SE uses the ESS of the squared deviations: for a Gaussian AR(1) chain
    with coefficient rho that is N (1 - rho^2) / (1 + rho^2), far below the N draws."""
    from types import SimpleNamespace

    from bayes_diml.inference.identification import _variance_ess

    rho, C, S = 0.9, 4, 5000
    rng = np.random.default_rng(0)
    x = np.empty((C, S, 2))
    x[:, 0] = rng.normal(size=(C, 2))
    for t in range(1, S):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=(C, 2))
    x[..., 1] = rng.normal(size=(C, S))  # independent draws in the second entry
    post = SimpleNamespace(method="nuts", idata={"posterior": {"x": SimpleNamespace(values=x)}})
    ess = _variance_ess(post, "x", C * S)
    expected = C * S * (1 - rho**2) / (1 + rho**2)  # 2099
    # the ESS estimate's relative SD is ~sqrt(2 (2 m + 1) / N) ~ 0.1 (m ~ 50 lags): 3 SD
    assert abs(ess[0] / expected - 1) < 0.3
    assert abs(ess[1] / (C * S) - 1) < 0.3 and ess[1] <= C * S
    # independent draws (SVI, Laplace): the number of draws
    assert _variance_ess(SimpleNamespace(method="svi"), "x", 123) == 123.0
