"""The bagged posterior (BayesBag): fit(..., robust="bagging"), inference/bagging.py."""

from __future__ import annotations

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.inference import ConvergenceWarning, bootstrap_indices, fit_bagged
from bayes_diml.inference.bag_diagnostics import diagnostics_table
from bayes_diml.inference.bagging import BAG_DEFAULTS, resample

FITTED = bd.learners.LogitQ(alpha="infer", beta=1.0, eps="infer")
TINY = {"num_warmup": 60, "num_samples": 40}
NOT_CONVERGED = "ignore::bayes_diml.inference.ConvergenceWarning"  # tiny chains: incidental


def _data(M: int = 10, T: int = 15, seed: int = 0, learner=None) -> bd.Trajectories:
    mech = mechanisms.Tabular((2, 2))
    table = jax.random.normal(jax.random.key(3), (2, 2, 2))
    learner = learner or bd.learners.Hedge(eta=0.3, eps=0.05)
    return bd.simulate(mech, {"table": table}, learner, M, T, seed)


# ------------------------------------------------------------------ resampling


def test_bootstrap_indices_draw_with_replacement_reproducibly():
    M, B = 50, 200
    idx = bootstrap_indices(jax.random.key(0), M, B)
    assert idx.shape == (B, M) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < M
    assert (np.diff(idx, axis=1) >= 0).all()  # sorted within a bag
    np.testing.assert_array_equal(idx, bootstrap_indices(jax.random.key(0), M, B))
    assert not np.array_equal(idx, bootstrap_indices(jax.random.key(1), M, B))
    # with replacement: a bag holds 1 - (1 - 1/M)^M = 0.636 of the episodes on average
    # (sd of one bag's share ~0.05, so the mean of 200 bags has se ~0.004; tolerance 0.025)
    distinct = np.mean([np.unique(row).size / M for row in idx])
    assert abs(distinct - (1 - (1 - 1 / M) ** M)) < 0.025
    # every episode is equally likely: counts per episode ~ Binomial(B * M, 1 / M), mean 200, sd ~14
    counts = np.bincount(idx.reshape(-1), minlength=M)
    assert abs(counts.mean() - B) < 1e-9 and counts.min() > B - 6 * 14 and counts.max() < B + 6 * 14
    assert bootstrap_indices(jax.random.key(0), M, 3, size=7).shape == (3, 7)


def test_resample_takes_whole_episodes_with_repeats():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(4, 6, 2))
    payoffs = rng.normal(size=(4, 6, 2))
    data = bd.Trajectories(actions, (2, 2), lengths=[6, 3, 6, 2], payoffs=payoffs)
    bag = resample(data, np.array([1, 1, 3, 0]))
    assert bag.n_episodes == 4
    np.testing.assert_array_equal(bag.lengths, [3, 3, 2, 6])
    for j, m in enumerate([1, 1, 3, 0]):
        L = data.lengths[m]
        np.testing.assert_array_equal(bag.actions[j, :L], data.actions[m, :L])
        np.testing.assert_array_equal(bag.payoffs[j, :L], data.payoffs[m, :L])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"robust": "bagging", "n_bags": 0}, "n_bags must be an int >= 1"),
        ({"robust": "bagging", "n_bags": 2.5}, "n_bags must be an int >= 1"),
        ({"robust": "bagging", "bag_size": 0}, "bag_size must be an int >= 1"),
        ({"robust": "bootstrap"}, "unknown robust='bootstrap'"),
        ({"robust": "bagging", "method": "map"}, "method='map' gives none"),
        ({"robust": "bagging", "checkpoint": "ckpt"}, "checkpoint cannot be combined"),
        ({"robust": "bagging", "posterior_predictive": True}, "posterior_predictive cannot be combined"),
        ({"n_bags": 5}, "n_bags apply to robust='bagging'"),
        ({"workers": 2}, "workers apply to robust='bagging'"),
    ],
)
def test_bad_bagging_arguments_are_refused_before_fitting(kwargs, match):
    kwargs = {"method": "nuts", **kwargs}
    with pytest.raises(ValueError, match=match):
        bd.fit(_data(M=4, T=5), mechanisms.Tabular((2, 2)), FITTED, progress=False, **kwargs)


def test_explicit_indices_must_be_a_matrix():
    with pytest.raises(ValueError, match=r"indices must be int\[B, size\]"):
        fit_bagged(_data(M=4, T=5), mechanisms.Tabular((2, 2)), FITTED, indices=np.arange(4))


def test_cli_bag_flags_need_robust(tmp_path):
    path = tmp_path / "d.npz"
    _data(M=4, T=5).save(path)
    res = CliRunner().invoke(main, ["fit", str(path), "--bags", "3", "--out", str(tmp_path / "f.nc")])
    assert res.exit_code != 0 and "apply to --robust bagging" in res.output


# ------------------------------------------------------------- diagnostics within bags


def test_diagnostics_are_computed_within_bags():
    """Two bags with different means: R-hat across them is large, within ~1 (literal per-bag summaries)."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(4, 300))
    draws[2:] += 10.0  # bag 1 (chains 2, 3) targets another posterior
    tree = az.from_dict({"posterior": {"x": draws}})
    pooled = pd.DataFrame(az.summary(tree, kind="diagnostics", round_to="none"))
    assert pooled.loc["x", "r_hat"] > 1.5
    got = diagnostics_table(tree, ["x"], per_bag=2)
    bags = [
        pd.DataFrame(az.summary(az.from_dict({"posterior": {"x": d}}), kind="diagnostics", round_to="none"))
        for d in (draws[:2], draws[2:])
    ]
    assert got.loc["x", "r_hat"] == pytest.approx(max(b.loc["x", "r_hat"] for b in bags), rel=1e-12)
    assert got.loc["x", "ess_bulk"] == pytest.approx(min(b.loc["x", "ess_bulk"] for b in bags), rel=1e-12)
    assert got.loc["x", "r_hat"] < 1.02
    with pytest.raises(ValueError, match="do not split into bags"):
        diagnostics_table(tree, ["x"], per_bag=3)


# ------------------------------------------------------------------ fits


@pytest.fixture(scope="module")
def bagged():
    data = _data()
    with pytest.warns(ConvergenceWarning):  # 2 x 40 draws per bag: too few for the ESS target
        post = bd.fit(
            data,
            mechanisms.Tabular((2, 2)),
            FITTED,
            "nuts",
            4,
            progress=False,
            robust="bagging",
            n_bags=3,
            bag_seed=7,
            **TINY,
        )
    return data, post


@pytest.mark.slow
def test_pooled_posterior_holds_every_bag(bagged, tmp_path):
    data, post = bagged
    info = post.info
    assert info["robust"] == "bagging" and info["n_bags"] == 3 and info["chains_per_bag"] == 2
    assert post.idata["posterior"].sizes["chain"] == 3 * 2 and post.n_draws == 3 * 2 * TINY["num_samples"]
    np.testing.assert_array_equal(
        info["bag_indices"], bootstrap_indices(jax.random.key(7), data.n_episodes, 3)
    )
    assert (
        info["bag_seed"] == 7 and info["bag_fit_seeds"] == [4, 5, 6] and info["bag_size"] == data.n_episodes
    )
    assert info["divergences"] == sum(info["bag_divergences"]) and len(info["bag_seconds"]) == 3
    # what users call on a Posterior works on the pooled one
    assert post.payoff_table()["lower"].shape == (2, 2, 2)
    assert len(post.payoff_pairs()) == 4
    assert post.counterfactual(n_episodes=2, n_draws=5).shape[0] == 5
    # summary reports R-hat and ESS within bags, not across them
    summ = post.summary(identification=False)
    within = diagnostics_table(post.idata, ["alpha"], per_bag=2)
    assert summ.loc["alpha", "r_hat"] == pytest.approx(within.loc["alpha", "r_hat"])
    assert info["max_r_hat"] >= summ.loc["alpha", "r_hat"] - 1e-12
    # save / load keeps the draws and the bagging record
    back = bd.load(post.save(tmp_path / "bagged.nc"))
    np.testing.assert_array_equal(back.draws("centred_payoffs"), post.draws("centred_payoffs"))
    assert back.info["robust"] == "bagging"
    np.testing.assert_array_equal(back.info["bag_indices"], info["bag_indices"])
    assert back.summary(identification=False).loc["alpha", "r_hat"] == pytest.approx(
        within.loc["alpha", "r_hat"]
    )
    # LOO / compare are refused with a reason
    with pytest.raises(ValueError, match="not meaningful for a bagged posterior"):
        post.loo()
    with pytest.raises(ValueError, match="not meaningful for a bagged posterior"):
        bd.inference.compare({"a": post, "b": post})


@pytest.mark.slow
@pytest.mark.filterwarnings(NOT_CONVERGED)
def test_one_bag_of_every_episode_is_the_ordinary_fit():
    """B = 1 with the identity resample: the same draws, bit for bit, as fit(seed)."""
    data = _data()
    mech = mechanisms.Tabular((2, 2))
    # the same number of chains in both (a bag's default is 2, an ordinary fit's 4)
    ordinary = bd.fit(data, mech, FITTED, "nuts", 3, progress=False, num_chains=2, **TINY)
    one = fit_bagged(
        data,
        mech,
        FITTED,
        "nuts",
        3,
        indices=np.arange(data.n_episodes)[None],
        progress=False,
        num_chains=2,
        **TINY,
    )
    assert one.info["bag_seed"] is None and one.info["bag_fit_seeds"] == [3]
    for name in ordinary.idata["posterior"].data_vars:
        np.testing.assert_array_equal(one.draws(name), ordinary.draws(name), err_msg=name)
    np.testing.assert_array_equal(one.payoff_table()["upper"], ordinary.payoff_table()["upper"])


@pytest.mark.slow
@pytest.mark.filterwarnings(NOT_CONVERGED)
def test_dask_client_gives_the_serial_draws():
    distributed = pytest.importorskip("dask.distributed")
    data = _data(M=6, T=10)
    mech = mechanisms.Tabular((2, 2))
    kw = {"robust": "bagging", "n_bags": 2, "progress": False, "method": "laplace", "num_draws": 30}
    serial = bd.fit(data, mech, FITTED, **kw)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1) as client:
        tasks = bd.fit(data, mech, FITTED, client=client, **kw)
    np.testing.assert_array_equal(tasks.draws("centred_payoffs"), serial.draws("centred_payoffs"))
    assert tasks.n_draws == 2 * 30 and tasks.info["chains_per_bag"] == 1


def test_bag_defaults_are_lighter_than_an_ordinary_fit():
    nuts = bd.inference.NUTSConfig()
    assert BAG_DEFAULTS["nuts"]["num_warmup"] < nuts.num_warmup
    assert BAG_DEFAULTS["nuts"]["num_samples"] < nuts.num_samples


@pytest.mark.slow
@pytest.mark.filterwarnings(NOT_CONVERGED)
def test_bagged_intervals_are_wider_on_misspecified_data():
    """Hedge agents fitted as LogitQ: the bagged 90% intervals of the pairwise differences are wider.

    Bagged variance ~ posterior variance of a bag + variance of the bags' means across bootstrap
    data sets, so the width ratio is about sqrt(1 + between / within) >= 1 (sqrt(2) in regular,
    well-specified models; benchmarks/bagging.py measures ~1.2 on 2 x 3 Hedge data). With 10
    bags the between-bag variance has relative sd ~0.47 (chi-square, 9 df): we require the
    median ratio over the supported pairs to exceed 1.05 (between / within > 0.1).
    """
    mech = mechanisms.Tabular((2, 2))
    data = _data(M=30, T=20, seed=1)
    kw = {"num_warmup": 150, "num_samples": 150}
    ordinary = bd.fit(data, mech, FITTED, "nuts", 1, progress=False, **kw)
    bag = bd.fit(data, mech, FITTED, "nuts", 1, progress=False, robust="bagging", n_bags=10, **kw)
    o, b = ordinary.payoff_pairs(), bag.payoff_pairs()
    sup = o["support"].to_numpy()
    ratio = ((b["upper"] - b["lower"]) / (o["upper"] - o["lower"])).to_numpy()[sup]
    assert sup.sum() == 4 and np.median(ratio) > 1.05


@pytest.mark.slow
@pytest.mark.filterwarnings(NOT_CONVERGED)
def test_cli_fits_a_bagged_posterior(tmp_path):
    path = tmp_path / "d.npz"
    _data(M=6, T=10).save(path)
    out = tmp_path / "bagged.nc"
    args = ["fit", str(path), "--method", "laplace", "--beta", "1", "--robust", "bagging", "--bags", "2"]
    res = CliRunner().invoke(
        main, [*args, "--bag-seed", "3", "--num-samples", "20", "--no-progress", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    post = bd.load(out)
    assert post.info["robust"] == "bagging" and post.info["n_bags"] == 2 and post.n_draws == 40
    np.testing.assert_array_equal(post.info["bag_indices"], bootstrap_indices(jax.random.key(3), 6, 2))


def test_a_failing_bag_is_named_in_the_error(monkeypatch):
    """A bag whose fit fails stops the bagged fit with the fit's error and which bag it was."""
    from bayes_diml.inference import FitError, bagging

    seeds = []

    def failing_fit(data, mechanism, learner, method, seed, **kwargs):
        seeds.append(seed)
        raise FitError("the Laplace covariance is singular or indefinite")

    monkeypatch.setattr(bagging, "run_fit", failing_fit)
    with pytest.raises(FitError, match=r"^bootstrap bag 1 of 3 \(fit seed 7\): the Laplace covariance"):
        fit_bagged(_data(4, 6), mechanisms.Tabular((2, 2)), FITTED, "laplace", 7, n_bags=3, progress=False)
    assert seeds == [7]  # the first failure stops the run
