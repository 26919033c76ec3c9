"""``learner="auto"`` with context: grouped and covariate mechanisms give one stack per context.

A stacked fit of a ``GroupedTabular`` or ``CovariateTabular`` has no single payoff table, so it
holds no pooled draws: ``payoff_table``/``payoff_pairs``/``design`` refuse, naming the way to ask,
and ``for_group(g)`` / ``at_covariates(x)`` restack each family's posterior of that context with
the comparison's weights and seed.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.inference import StackedPosterior
from bayes_diml.inference.auto import auto_learner
from bayes_diml.inference.stacked import load_stacked, mix_stacked_draws

K = (2, 2)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
AUTO = dict(candidates=["logit_q", "hedge"], robust=None, progress=False)


def _rows_come_from(stacked: np.ndarray, pool: np.ndarray) -> bool:
    """Tell whether every stacked draw float[D, ...] is one of the pool's draws (resampled, not made up)."""
    flat = pool.reshape(len(pool), -1)
    return all(
        np.any(np.all(np.isclose(flat, row, rtol=0, atol=1e-6), axis=1))
        for row in stacked.reshape(len(stacked), -1)
    )


@pytest.fixture(scope="module")
def grouped_stack(tmp_path_factory):
    tab = mechanisms.Tabular(K)
    table = np.asarray(tab.init(jax.random.key(3))["table"])
    shifted = table.copy()
    shifted[1, :, 0] += 1.5
    parts = [
        bd.simulate(tab, {"table": t}, LEARNER, n_episodes=5, T=15, key=j)
        for j, t in enumerate((table, shifted))
    ]
    data = bd.Trajectories.concat(parts, groups=["A", "B"])
    mech = mechanisms.GroupedTabular(K, data.group_names)
    with pytest.warns(UserWarning):  # short chains: convergence/Pareto-k warnings are expected here
        sp = bd.fit(data, mech, "auto", method="nuts", num_warmup=80, num_samples=80, num_chains=1, **AUTO)
    return sp, tmp_path_factory.mktemp("stack") / "grouped.nc"


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_grouped_stack_refuses_pooled_answers_and_restacks_per_group(grouped_stack):
    sp, path = grouped_stack
    assert isinstance(sp, StackedPosterior) and sp.context == "grouped" and sp.n_draws == 0
    for ask in (sp.payoff_table, sp.payoff_pairs, sp.payoff_differences):
        with pytest.raises(ValueError, match=r"one payoff table per group \(A, B\).*for_group"):
            ask()
    assert "fit.for_group(g)" in sp.report()
    with pytest.raises(ValueError, match="at_covariates needs a stacked fit of a CovariateTabular"):
        sp.at_covariates({"x": 1.0})
    stacks = {g: sp.for_group(g) for g in ("A", "B")}
    for g, st in stacks.items():
        assert st.context is None and st.info["group"] == g and st.weights == sp.weights
        table = st.payoff_table(0.9)
        assert table["mean"].shape == (*K, 2)
        pairs = st.payoff_pairs(0.9)
        assert len(pairs) == 4 and pairs["informative"].all() == (not sp.abstains)
        # the family draws are resampled from that family's posterior of group g
        for name, post in sp.posteriors.items():
            rows = st.payoff_differences()[st.sources == name]
            assert _rows_come_from(rows, post.for_group(g).scaled_payoff_draws())
    # same seed and pool sizes: the two groups' stacks draw the same sources in the same order
    np.testing.assert_array_equal(stacks["A"].sources, stacks["B"].sources)
    assert not np.allclose(stacks["A"].payoff_differences(), stacks["B"].payoff_differences())
    # the restack is the documented mixture (exact)
    fits = {n: p.for_group("B") for n, p in sp.posteriors.items()}
    want, _, _ = mix_stacked_draws(sp.table, sp.info["seed"], fits, {}, sp.info["num_draws"])
    np.testing.assert_array_equal(stacks["B"].payoff_differences(), want)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_grouped_stack_saves_and_restacks_after_loading(grouped_stack):
    sp, path = grouped_stack
    sp.save(path)
    back = load_stacked(path)
    assert back.context == "grouped"
    with pytest.raises(ValueError, match="for_group"):
        back.payoff_table()
    np.testing.assert_allclose(
        back.for_group("A").payoff_differences(), sp.for_group("A").payoff_differences(), rtol=1e-6
    )
    # the command line asks a saved stack per group like a grouped fit
    out = path.with_name("pairs_a.csv")
    ok = CliRunner().invoke(main, ["payoffs", str(path), "--group", "A", "--pairs", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    np.testing.assert_allclose(
        pd.read_csv(out)["mean"].to_numpy(), sp.for_group("A").payoff_pairs()["mean"].to_numpy(), rtol=1e-5
    )
    bad = CliRunner().invoke(main, ["payoffs", str(path), "--out", str(path.with_name("t.npz"))])
    assert bad.exit_code == 2 and "one payoff table per group (A, B)" in " ".join(bad.output.split())
    # a loaded stack whose draws came from bagged posteriors cannot restack from the plain fits
    back.info["bagged"] = ["logitq"]
    with pytest.raises(ValueError, match="keeps its stacked draws but not the bagged posteriors"):
        back.for_group("A")


@pytest.fixture(scope="module")
def covariate_stack():
    mech = mechanisms.CovariateTabular(K, ("price",))
    params = {k: np.asarray(v) for k, v in mech.init(jax.random.key(5)).items()}
    xs = np.array([[-1.0], [0.0], [1.0]])
    parts = [
        bd.simulate(mech.tabular, mech.context_params(params, x), LEARNER, n_episodes=4, T=15, key=g)
        for g, x in enumerate(xs)
    ]
    d = bd.Trajectories.concat(parts)
    data = bd.Trajectories(
        d.actions,
        d.n_actions,
        lengths=d.lengths,
        covariates=np.repeat(xs, 4, axis=0),
        covariate_names=("price",),
    )
    with warnings.catch_warnings():  # Laplace on tiny data: Pareto-k warnings are expected here
        warnings.simplefilter("ignore", UserWarning)
        no_bias = [auto_learner(name, bias=0.0) for name in ("logit_q", "hedge")]  # no flat bias direction
        return bd.fit(data, mech, "auto", method="laplace", **{**AUTO, "candidates": no_bias})


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_covariate_stack_answers_at_a_value(covariate_stack):
    sp = covariate_stack
    assert sp.context == "covariate" and sp.n_draws == 0
    with pytest.raises(ValueError, match=r"move with the covariates price.*at_covariates"):
        sp.payoff_pairs()
    with pytest.raises(ValueError, match="for_group needs a stacked fit of a GroupedTabular"):
        sp.for_group("A")
    at0, at1 = sp.at_covariates({"price": 0.0}), sp.at_covariates({"price": 1.0})
    assert at0.context is None and at0.info["covariates"] == {"price": 0.0}
    np.testing.assert_array_equal(at0.sources, at1.sources)
    used = [name for name in sp.posteriors if np.any(at1.sources == name)]
    assert used  # at least one family holds mixture weight
    for name in used:
        rows = at1.payoff_differences()[at1.sources == name]
        assert _rows_come_from(rows, sp.posteriors[name].at_covariates({"price": 1.0}).scaled_payoff_draws())
    assert not np.allclose(at0.payoff_differences(), at1.payoff_differences())  # the slopes move the table
    with pytest.raises(ValueError, match="price"):
        sp.at_covariates({"week": 1.0})  # an unknown covariate is named
