"""``bayes-diml fit --learner-family auto`` with groups or covariates, and ``payoffs`` on the saved stack.

The fast tests check the default candidates (the fit's own per-candidate rule), the refusals
that remain, and ``payoffs --contrast A:B`` / ``--group G --pairs`` on a saved stack made by
hand from prior draws (no fitting). The slow tests run the whole command line: a tiny NUTS fit
of two arms and a Laplace fit of a covariate, then ``payoffs`` per group, between groups and at
a covariate value.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest
from cli_runner import fails, invoke
from click.testing import CliRunner
from test_stacked_contrast import _prior_posterior, _stack

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import fit as cli_fit
from bayes_diml.cli import main
from bayes_diml.inference.auto import context_candidates
from bayes_diml.inference.stacked import STACKED_UNITS, load_stacked

K = (2, 2)
LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
NUTS = ["--method", "nuts", "--num-warmup", "40", "--num-samples", "40", "--num-chains", "1", "--no-progress"]
AUTO = ["--learner-family", "auto", "--candidates", "logitq,hedge", "--robust", "none"]
CONTRAST_FIRST = ["agent", "joint", "mean", "lower", "upper", "prob_positive"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("auto_groups")


@pytest.fixture(scope="module")
def arms() -> bd.Trajectories:
    tab = mechanisms.Tabular(K)
    table = np.asarray(tab.init(jax.random.key(3))["table"])
    shifted = table.copy()
    shifted[1, :, 0] += 1.5
    parts = [
        bd.simulate(tab, {"table": t}, LEARNER, n_episodes=4, T=12, key=j)
        for j, t in enumerate((table, shifted))
    ]
    return bd.Trajectories.concat(parts, groups=["A", "B"])


@pytest.fixture(scope="module")
def csv_path(work, arms):
    path = work / "arms.csv"
    arms.to_frame().rename(columns={"group": "arm"}).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------- fit: candidates, refusals
def test_fit_passes_the_context_families_as_candidates(csv_path, work, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(data, mechanism, learner, method, seed, **options):
        seen.update(mechanism=mechanism, learner=learner, candidates=options["candidates"])
        raise Stop

    monkeypatch.setattr(cli_fit, "fit", fake_fit)
    out = work / "never.nc"
    args = ["fit", str(csv_path), "--group-by", "arm", "--learner-family", "auto", *NUTS, "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, Stop), result.output
    assert isinstance(seen["mechanism"], mechanisms.GroupedTabular) and seen["learner"] == "auto"
    assert seen["candidates"] == context_candidates(
        bd.load_trajectories(csv_path, group_by="arm"), seen["mechanism"]
    )
    assert "left out: bandit" in " ".join(result.output.split())
    # --bias none: the same families, each without its action bias
    result = CliRunner().invoke(main, [*args, "--bias", "none"])
    assert isinstance(result.exception, Stop), result.output
    names = {type(s).__name__ for s in seen["candidates"]}
    assert {"LogitQ", "Hedge"} <= names and not {"BanditQ", "EWA", "Aspiration"} & names
    assert all(s.bias == 0.0 for s in seen["candidates"])


def test_fit_refuses_what_cannot_run_with_groups(csv_path, work):
    out = work / "x.nc"
    base = ["fit", csv_path, "--group-by", "arm", "--learner-family", "auto", "--out", out]
    fails(*base, "--method", "laplace", match="--group-by needs --method nuts (got laplace)")
    fails(
        *base, *NUTS, "--learner-by-group", match="--learner-by-group does not apply to --learner-family auto"
    )
    fails(*base, *NUTS, "--candidates", "logitq,bandit", match="cannot fit candidate 'bandit'")
    assert not out.exists()


# ---------------------------------------------------------- payoffs on a saved stack (no fitting)
@pytest.fixture(scope="module")
def saved_stack(work, arms):
    post = _prior_posterior(arms, mechanisms.GroupedTabular(K, arms.group_names))
    sp = _stack({"logitq": post}, {"logitq": 0.6, "null_markov": 0.4}, "grouped")
    return sp, sp.save(work / "stack.nc")


def test_payoffs_contrast_of_a_saved_stack_is_the_stacked_contrast(saved_stack, work):
    sp, path = saved_stack
    back = load_stacked(path)
    out = work / "contrast.csv"
    result = invoke("payoffs", path, "--contrast", "B:A", "--out", out)
    assert "centred payoff in group B minus group A" in " ".join(result.output.split())
    frame = pd.read_csv(out)
    want = back.contrast("B", "A")
    assert list(frame.columns) == list(want.columns) and list(frame.columns[:6]) == CONTRAST_FIRST
    assert set(frame["units"]) == {STACKED_UNITS}
    for col in ("mean", "lower", "upper", "prob_positive"):
        np.testing.assert_allclose(frame[col], want[col], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(frame[col], sp.contrast("B", "A")[col], rtol=1e-6, atol=1e-6)
    assert frame["support_a"].tolist() == want["support_a"].tolist()
    doc = json.loads(invoke("payoffs", path, "--contrast", "B:A", "--out", out, "--json").output)
    assert doc["group_a"] == "B" and doc["units"] == STACKED_UNITS and len(doc["rows"]) == len(frame)
    fails("payoffs", path, "--contrast", "B:C", "--out", out, match="unknown group 'C'; the groups are A, B")
    pairs = work / "pairs.csv"
    invoke("payoffs", path, "--group", "A", "--pairs", "--out", pairs)
    np.testing.assert_allclose(
        pd.read_csv(pairs)["mean"], back.for_group("A").payoff_pairs()["mean"], rtol=1e-12
    )


# --------------------------------------------------------------------- the whole command line
@pytest.mark.slow  # two tiny NUTS fits (one per family): 75 s on 2 shared cores
def test_fit_auto_by_group_then_payoffs_per_group_and_between_groups(csv_path, work):
    out = work / "auto_grouped.nc"
    result = invoke("fit", csv_path, "--group-by", "arm", *AUTO, *NUTS, "--out", out)
    text = " ".join(result.output.split())
    assert "--contrast B:A" in text and f"Saved the stacked fit to {out}" in text
    sp = load_stacked(out)
    assert sp.context == "grouped" and set(sp.posteriors) == {"logitq", "hedge"}
    pairs = work / "auto_pairs_a.csv"
    invoke("payoffs", out, "--group", "A", "--pairs", "--out", pairs)
    np.testing.assert_allclose(
        pd.read_csv(pairs)["mean"], sp.for_group("A").payoff_pairs()["mean"], rtol=1e-6
    )
    contrast = work / "auto_contrast.csv"
    invoke("payoffs", out, "--contrast", "B:A", "--out", contrast)
    frame, want = pd.read_csv(contrast), sp.contrast("B", "A")
    np.testing.assert_allclose(frame["mean"], want["mean"], rtol=1e-9, atol=1e-12)
    assert set(frame["units"]) == {STACKED_UNITS}


@pytest.mark.slow  # two Laplace fits of a covariate: 40 s on 2 shared cores
def test_fit_auto_with_a_covariate_then_payoffs_at_a_value(work):
    mech = mechanisms.CovariateTabular(K, ("price",))
    params = {k: np.asarray(v) for k, v in mech.init(jax.random.key(5)).items()}
    xs = [-1.0, 0.0, 1.0]
    parts = [
        bd.simulate(mech.tabular, mech.context_params(params, {"price": x}), LEARNER, 4, 12, key=j)
        for j, x in enumerate(xs)
    ]
    d = bd.Trajectories.concat(parts)
    data = bd.Trajectories(
        d.actions, K, lengths=d.lengths, covariates=np.repeat(xs, 4)[:, None], covariate_names=("price",)
    )
    csv = work / "priced.csv"
    data.to_frame().to_csv(csv, index=False)
    out = work / "auto_cov.nc"
    args = ["--mechanism", "covariate", "--covariates", "price", *AUTO, "--bias", "none"]
    result = invoke("fit", csv, *args, "--method", "laplace", "--no-progress", "--out", out)
    assert "--at price=0" in " ".join(result.output.split())
    sp = load_stacked(out)
    assert sp.context == "covariate"
    pairs = work / "auto_pairs_at.csv"
    invoke("payoffs", out, "--at", "price=1", "--pairs", "--out", pairs)
    want = sp.at_covariates({"price": 1.0}).payoff_pairs()
    np.testing.assert_allclose(pd.read_csv(pairs)["mean"], want["mean"], rtol=1e-6)
    fails(
        "payoffs", out, "--covariate-effects", "--out", work / "e.csv", match="answers at a covariate value"
    )
