"""Contrasts of a stacked fit with context: ``StackedPosterior.contrast`` / ``contrast_covariates``.

Every contrast draw must be A minus B of one draw: a family's posterior draw of both contexts,
or, for the payoff-blind nulls' share, one joint prior draw of the whole context model. The
"families" here are prior draws stored as posteriors (no fitting: the tests are fast), stacked
by hand with chosen mixture weights, so what each share must give is known exactly.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import Posterior, StackedPosterior
from bayes_diml.inference.auto import AUTO_PRIORS, auto_learner
from bayes_diml.inference.groups import CONTRAST_COLUMNS
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.identification import prior_draws
from bayes_diml.inference.labelled import cell_interval
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.inference.stacked import STACKED_UNITS, mix_stacked_draws, prior_payoff_draws
from bayes_diml.inference.stacked_context import group_contrast, prior_contrast_draws

K = (2, 2)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
FAMILY = auto_learner("logitq", bias=0.0)  # temperature fixed at 1: scaled payoffs = centred payoffs
NUM = 4000  # stacked draws
#: sd of a centred cell's contrast between two groups under the grouped prior: group_scale * N(0, c^2)
C_GROUPED = math.sqrt(2 * (K[0] - 1) / K[0])


def _prior_posterior(data, mech, n_draws=1000, seed=1):
    """A posterior whose draws are the model's prior draws (auto's family spec and priors)."""
    spec = ModelSpec.build(data, mech, FAMILY, AUTO_PRIORS)
    sites = prior_draws(spec, list(spec.latent_names), n_draws, seed=seed)
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()}, log_likelihood=False)
    return Posterior(tree, spec, "nuts")


def _stack(posts, shares, context, seed=0):
    """A StackedPosterior of ``posts`` (name -> Posterior) and the two nulls, mixture weights ``shares``."""
    names = [*posts, "null_stationary", "null_markov"]
    table = pd.DataFrame(index=names)
    table["family"] = [*("logitq" for _ in posts), "stationary", "markov"]
    table["kind"] = ["learner"] * len(posts) + ["null", "null"]
    table["weight"] = [float(shares.get(n, 0.0)) for n in names]
    for col in ("elpd", "se", "elpd_diff", "dse", "max_pareto_k"):
        table[col] = 0.0
    table["n_high_k"] = 0
    table["mixture_weight"] = table["weight"]
    table["note"] = ""
    info = {
        "verdict": "informative",
        "message": "a hand-made stack",
        "best_learner": next(iter(posts)),
        "best_null": "null_stationary",
        "seed": seed,
        "num_draws": NUM,
        "null_draws": 200,
        "context": context,
        "bagged": [],
        "prior_weight": float("nan"),
    }
    return StackedPosterior(posts, table, np.zeros((0,)), np.zeros((0,), dtype=str), info)


def _rows(diff: np.ndarray, prob: float) -> pd.DataFrame:
    """cell_interval of contrast draws float[D, K_1, K_2, n] in the contrast's row order (agent outer)."""
    flat = diff.reshape(len(diff), -1, len(K))
    return pd.DataFrame(
        [cell_interval(flat[:, p, i], prob) for i in range(len(K)) for p in range(flat.shape[1])]
    )


@pytest.fixture(scope="module")
def grouped():
    tab = mechanisms.Tabular(K)
    da = bd.simulate(tab, tab.init(jax.random.key(0)), LEARNER, 3, 8, key=1)
    db = bd.simulate(tab, tab.init(jax.random.key(1)), LEARNER, 3, 8, key=2)
    data = bd.Trajectories.concat([da, db], groups=["A", "B"])
    return _prior_posterior(data, mechanisms.GroupedTabular(K, ("A", "B")))


@pytest.fixture(scope="module")
def covariate():
    mech = mechanisms.CovariateTabular(K, ("price",))
    tab = mech.tabular
    parts = [bd.simulate(tab, tab.init(jax.random.key(j)), LEARNER, 2, 8, key=j) for j in range(2)]
    d = bd.Trajectories.concat(parts)
    data = bd.Trajectories(
        d.actions,
        K,
        lengths=d.lengths,
        covariates=np.array([[-1.0], [-1.0], [1.0], [1.0]]),
        covariate_names=("price",),
    )
    return _prior_posterior(data, mech, 600)


# ----------------------------------------------------------------- (a) one family at weight 1
def test_one_family_at_weight_one_gives_that_familys_contrast(grouped):
    sp = _stack({"logitq": grouped}, {"logitq": 1.0}, "grouped")
    got = sp.contrast("B", "A", prob=0.9)
    own = grouped.contrast("B", "A", prob=0.9)
    assert list(got.columns) == list(own.columns) == [*CONTRAST_COLUMNS, "support_a", "support_b", "units"]
    for col in ("agent", "joint", "support_a", "support_b"):
        assert got[col].tolist() == own[col].tolist()
    assert set(got["units"]) == {STACKED_UNITS} and set(own["units"]) == {"payoff"}  # temperature 1
    assert got.attrs["prior_weight"] == 0.0 and got.attrs["verdict"] == "informative"
    # exactly: draw by draw the difference of the two groups' stacks (same seed, same resampling)
    st_b, st_a = sp.for_group("B"), sp.for_group("A")
    assert set(st_b.sources) == {"logitq"}
    want = _rows(st_b.payoff_differences() - st_a.payoff_differences(), 0.9)
    for col in ("mean", "lower", "upper", "prob_positive"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())
    # and the family's own contrast up to resampling noise of NUM draws (5 standard errors)
    own_draws = grouped.for_group("B").payoff_differences() - grouped.for_group("A").payoff_differences()
    sd = own_draws.reshape(len(own_draws), -1, 2).transpose(2, 1, 0).reshape(-1, len(own_draws)).std(1)
    assert np.all(np.abs(got["mean"] - own["mean"]) <= 5 * sd / math.sqrt(NUM))
    assert np.all(np.abs(got["prob_positive"] - own["prob_positive"]) <= 5 * 0.5 / math.sqrt(NUM))
    width, own_width = got["upper"] - got["lower"], own["upper"] - own["lower"]
    assert np.all(np.abs(width / own_width - 1) < 0.1)
    # negative control: unpaired draws (B of one draw minus A of another) are much wider here,
    # because the shared table (prior sd e) does not cancel
    rng = np.random.default_rng(0)
    b, a = grouped.for_group("B").payoff_differences(), grouped.for_group("A").payoff_differences()
    unpaired = _rows(b - a[rng.permutation(len(a))], 0.9)
    assert np.all((unpaired["upper"] - unpaired["lower"]) / own_width > 2)


def test_a_mixed_stack_pairs_family_draws_and_fills_the_nulls_share_with_joint_prior_draws(grouped):
    other = _prior_posterior(grouped.data, grouped.mechanism, seed=2)  # same shapes: no new compilation
    sp = _stack(
        {"logitq": grouped, "hedge": other}, {"logitq": 0.3, "hedge": 0.3, "null_markov": 0.4}, "grouped"
    )
    job = group_contrast(grouped, "B", "A")
    draws, sources, prior_weight = mix_stacked_draws(
        sp.table, 0, sp.posteriors, {}, NUM, pool=job.family_draws, prior=job.prior_draws
    )
    assert prior_weight == pytest.approx(0.4)
    st_b, st_a = sp.for_group("B"), sp.for_group("A")
    np.testing.assert_array_equal(sources, st_b.sources)  # same seed: the same sources in the same order
    fam = sources != "prior"
    np.testing.assert_array_equal(draws[fam], (st_b.payoff_differences() - st_a.payoff_differences())[fam])
    key = jax.random.fold_in(jax.random.key(0), 2)  # mix_stacked_draws' key of the prior share
    prior = prior_contrast_draws(grouped.mechanism, AUTO_PRIORS, "B", "A", key, int((~fam).sum()))
    np.testing.assert_array_equal(draws[~fam], prior)
    frame = sp.contrast("B", "A", prob=0.8)
    want = _rows(draws, 0.8)
    for col in ("mean", "lower", "upper", "prob_positive"):
        np.testing.assert_array_equal(frame[col].to_numpy(), want[col].to_numpy())
    assert frame.attrs["prior_weight"] == pytest.approx(0.4) and frame.attrs["group_a"] == "B"


# ------------------------------------------------------------ (b) the nulls' share is wide
#: the priors of group_scale to check: the mechanism's own choices (half-normal where it has no choice)
DISTS = getattr(mechanisms.grouped, "GROUP_SCALE_DISTS", ("half_normal",))


def _scale_prior(mech) -> stats.rv_continuous:
    """The prior of ``group_scale`` as a scipy distribution (half-normal, or lognormal of median s)."""
    if getattr(mech, "group_scale_dist", "half_normal") == "half_normal":
        return stats.halfnorm(scale=mech.group_scale_prior)
    return stats.lognorm(s=mech.group_scale_log_sd, scale=mech.group_scale_prior)


def _mixture_tail(t: float, scale: stats.rv_continuous, c: float) -> float:
    """P(|X| > t) for X = s * N(0, c^2), s from ``scale``: the grouped prior's contrast of one cell."""
    return integrate.quad(lambda s: 2 * stats.norm.sf(t / (s * c)) * scale.pdf(s), 0, np.inf)[0]


@pytest.mark.parametrize("dist", DISTS)
def test_null_contrast_draws_have_the_grouped_priors_spread_not_zero(grouped, dist):
    n = 20000
    mech = grouped.mechanism
    if dist != getattr(mech, "group_scale_dist", "half_normal"):
        mech = dataclasses.replace(mech, group_scale_dist=dist)
    d = prior_contrast_draws(mech, AUTO_PRIORS, "B", "A", jax.random.key(3), n)
    assert d.shape == (n, *K, 2)
    np.testing.assert_array_equal(d[: n // 2], -d[n // 2 :])  # antithetic pairs
    # a centred cell's contrast is s * (z_B - z_A) * h = s * N(0, c^2): a scale mixture of normals
    scale = _scale_prior(mech)
    m2, m4 = scale.moment(2), scale.moment(4)
    sd_true = math.sqrt(m2) * C_GROUPED
    # sd of n/2 independent draws (the other half are their negatives): Var(x^2) = (3 m4 - m2^2) c^4,
    # se(sd) = se(x^2 mean) / (2 sd); allow 5 se
    tol = 5 * math.sqrt((3 * m4 - m2**2) * C_GROUPED**4 / (n / 2)) / (2 * sd_true)
    sds = d.reshape(n, -1).std(0)

    def spread_ok(sd):
        return np.all(np.abs(np.asarray(sd) - sd_true) <= tol)

    assert spread_ok(sds), (sds, sd_true, tol)
    # the shape is the scale mixture's (heavier tails than a normal of that sd): P(|X| > 2 sd)
    p = _mixture_tail(2 * sd_true, scale, C_GROUPED)
    assert p > 2 * stats.norm.sf(2.0)
    tails = (np.abs(d.reshape(n, -1)) > 2 * sd_true).mean(0)
    assert np.all(np.abs(tails - p) <= 5 * math.sqrt(p * (1 - p) / (n / 2))), (tails, p)
    if mech is not grouped.mechanism:
        return
    # negative controls: each context's table from its own marginal prior with the same seed gives
    # exactly 0; independent draws per context keep the shared table (sd e) and are far too wide
    pa, pb = grouped.for_group("A"), grouped.for_group("B")
    same = prior_payoff_draws(pb, jax.random.key(3), 2000) - prior_payoff_draws(pa, jax.random.key(3), 2000)
    assert np.all(same == 0) and not spread_ok(same.reshape(2000, -1).std(0))
    indep = prior_payoff_draws(pb, jax.random.key(4), 2000) - prior_payoff_draws(pa, jax.random.key(5), 2000)
    assert not spread_ok(indep.reshape(2000, -1).std(0))
    # through the stack: the nulls at weight 1 give the prior draws' intervals, centred on 0
    sp = _stack({"logitq": grouped}, {"null_stationary": 0.5, "null_markov": 0.5}, "grouped")
    frame = sp.contrast("B", "A", prob=0.9)
    assert frame.attrs["prior_weight"] == 1.0
    prior = prior_contrast_draws(mech, AUTO_PRIORS, "B", "A", jax.random.fold_in(jax.random.key(0), 2), NUM)
    want = _rows(prior, 0.9)
    for col in ("lower", "upper", "prob_positive"):
        np.testing.assert_array_equal(frame[col].to_numpy(), want[col].to_numpy())
    np.testing.assert_allclose(frame["mean"], 0.0, atol=1e-6)
    assert np.all(frame["prob_positive"] == 0.5) and np.all(frame["upper"] > 1.0)


def test_covariate_null_contrast_is_the_slopes_spread_and_one_family_pairs_draws(covariate):
    mech = covariate.mechanism
    n = 20000
    a, b = {"price": 2.0}, {"price": -1.0}
    d = prior_contrast_draws(mech, AUTO_PRIORS, a, b, jax.random.key(0), n)
    sd_true = 3.0 * mech.slope_prior * math.sqrt((K[0] - 1) / K[0])  # (x_a - x_b) slope; the table cancels
    tol = 5 * sd_true / math.sqrt(2 * (n / 2))  # normal: se(sd) = sd / sqrt(2 m), m independent draws
    sds = d.reshape(n, -1).std(0)
    assert np.all(np.abs(sds - sd_true) <= tol), (sds, sd_true)
    # independent draws at a and b: (e^2 + 2^2) / 2 + (e^2 + 1^2) / 2 per cell, the table included
    with_table = math.sqrt(
        (AUTO_PRIORS.mechanism_scale**2 + 4) / 2 + (AUTO_PRIORS.mechanism_scale**2 + 1) / 2
    )
    assert abs(with_table - sd_true) > 10 * tol
    sp = _stack({"logitq": covariate}, {"logitq": 1.0}, "covariate")
    got = sp.contrast_covariates({"price": 1.0}, {"price": 0.0})
    own = covariate.contrast_covariates({"price": 1.0}, {"price": 0.0})
    assert list(got.columns) == list(own.columns) and set(got["units"]) == {STACKED_UNITS}
    at1, at0 = sp.at_covariates({"price": 1.0}), sp.at_covariates({"price": 0.0})
    want = _rows(at1.payoff_differences() - at0.payoff_differences(), 0.9)
    for col in ("mean", "lower", "upper", "prob_positive"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())
    assert got.attrs["a"] == {"price": 1.0} and got.attrs["b"] == {"price": 0.0}


# ------------------------------------------------------------------------------ (c) errors
def test_contrast_errors_name_the_problem(grouped, covariate):
    plain = StackedPosterior({}, pd.DataFrame(), np.zeros((3, *K, 2)), np.array(["x"] * 3), {"context": None})
    with pytest.raises(
        ValueError, match=r"contrast needs a stacked fit of a GroupedTabular \(fit --group-by\)"
    ):
        plain.contrast("A", "B")
    with pytest.raises(ValueError, match="contrast_covariates needs a stacked fit of a CovariateTabular"):
        plain.contrast_covariates({"x": 0.0}, {"x": 1.0})
    sp = _stack({"logitq": grouped}, {"logitq": 1.0}, "grouped")
    with pytest.raises(ValueError, match="unknown group 'C'; the groups are A, B"):
        sp.contrast("A", "C")
    with pytest.raises(ValueError, match="two different groups; got 'A' twice"):
        sp.contrast("A", "A")
    with pytest.raises(ValueError, match=r"prob must lie in \(0, 1\)"):
        sp.contrast("A", "B", prob=1.5)
    with pytest.raises(ValueError, match="contrast_covariates needs a stacked fit of a CovariateTabular"):
        sp.contrast_covariates({"price": 0.0}, {"price": 1.0})
    cov = _stack({"logitq": covariate}, {"logitq": 1.0}, "covariate")
    with pytest.raises(ValueError, match="contrast needs a stacked fit of a GroupedTabular"):
        cov.contrast("A", "B")
    with pytest.raises(ValueError, match="week"):
        cov.contrast_covariates({"price": 0.0}, {"week": 1.0})
    sp.info["bagged"] = ["logitq"]  # as read from a file: the bagged posteriors are not kept
    with pytest.raises(ValueError, match="keeps its stacked draws but not the bagged posteriors"):
        sp.contrast("A", "B")
