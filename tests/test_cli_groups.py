"""The command line for grouped fits: ``fit --group-by``, ``payoffs --group`` and ``--contrast``.

One small two-arm 2 x 2 data set (CSV, the arm in column ``arm``) and one tiny NUTS fit of it
per module, reused by every test; the errors are checked with their messages.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest
from cli_runner import fails, invoke
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main

CONTRAST_FIRST = ["agent", "joint", "mean", "lower", "upper", "prob_positive"]
PAIR_COLUMNS = ["agent", "opponents", "a", "b", "mean", "lower", "upper", "prob_greater", "support"]
NUTS = ["--method", "nuts", "--num-warmup", "60", "--num-samples", "60", "--num-chains", "1", "--no-progress"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("groups")


@pytest.fixture(scope="module")
def csv_path(work):
    """Two arms of a 2 x 2 game (agent 0's action 1 pays 1 more in arm B), the arm in column 'arm'."""
    tab = mechanisms.Tabular((2, 2))
    truth = np.array(tab.init(jax.random.key(3))["table"])
    truth_b = truth.copy()
    truth_b[1, :, 0] += 1.0
    learner = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
    da = bd.simulate(tab, {"table": truth}, learner, n_episodes=6, T=20, key=1)
    db = bd.simulate(tab, {"table": truth_b}, learner, n_episodes=6, T=20, key=2)
    data = bd.Trajectories.concat([da, db], groups=["A", "B"])
    path = work / "arms.csv"
    data.to_frame().rename(columns={"group": "arm"}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def grouped_fit(work, csv_path):
    out = work / "grouped.nc"
    result = invoke("fit", csv_path, "--group-by", "arm", "--beta", "2", *NUTS, "--out", out)
    assert "Payoff tables: one per group (A, B)" in " ".join(result.output.split())
    return out


@pytest.fixture(scope="module")
def post(grouped_fit):
    p = bd.load(grouped_fit)
    assert p.grouped and tuple(p.mechanism.groups) == ("A", "B")
    return p


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_fit_group_by_prints_the_groups(work, csv_path, grouped_fit, post):
    assert isinstance(post.mechanism, mechanisms.GroupedTabular)
    assert post.mechanism.group_scale_dist == "lognormal" and post.mechanism.group_scale_prior == 1.0
    assert post.method == "nuts"
    assert post.n_draws == 60


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_contrast_csv_columns_and_values(work, grouped_fit, post):
    out = work / "contrast.csv"
    result = invoke("payoffs", grouped_fit, "--contrast", "B:A", "--prob", "0.8", "--out", out)
    frame = pd.read_csv(out, dtype={"joint": str})
    assert list(frame.columns) == CONTRAST_FIRST + ["support_a", "support_b", "units"]
    want = post.contrast("B", "A", 0.8)
    assert len(frame) == len(want) == 2 * 4
    assert list(frame["joint"]) == list(want["joint"])
    np.testing.assert_array_equal(frame["agent"], want["agent"])
    for col in ("mean", "lower", "upper", "prob_positive"):
        np.testing.assert_allclose(frame[col], want[col], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(frame["support_a"], want["support_a"])
    k = int(((want["lower"] > 0) | (want["upper"] < 0)).sum())
    assert f"{k} of 8 intervals (80%) exclude 0" in " ".join(result.output.split())
    # negative control: the reverse contrast is the negation, not the same numbers
    rev = post.contrast("A", "B", 0.8)
    np.testing.assert_allclose(rev["mean"], -want["mean"], atol=1e-9)
    assert not np.allclose(frame["mean"], rev["mean"])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_contrast_json_rows(work, grouped_fit, post):
    out = work / "contrast_json.csv"
    result = invoke("payoffs", grouped_fit, "--contrast", "A:B", "--out", out, "--json")
    doc = json.loads(result.stdout)
    assert (doc["group_a"], doc["group_b"], doc["prob"]) == ("A", "B", 0.9)
    want = post.contrast("A", "B", 0.9)
    assert len(doc["rows"]) == len(want)
    assert list(doc["rows"][0])[:6] == CONTRAST_FIRST
    np.testing.assert_allclose([r["mean"] for r in doc["rows"]], want["mean"], atol=1e-9)
    assert doc["intervals_excluding_zero"] == int(((want["lower"] > 0) | (want["upper"] < 0)).sum())


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("group", ["A", "B"])
def test_payoffs_group_equals_for_group(work, grouped_fit, post, group):
    out = work / f"table_{group}.npz"
    invoke("payoffs", grouped_fit, "--group", group, "--out", out)
    want = post.for_group(group).payoff_table(0.9)
    with np.load(out) as got:
        assert {"mean", "lower", "upper", "support"} <= set(got.files)
        for key in ("mean", "lower", "upper", "support"):
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-9)
    other = post.for_group("B" if group == "A" else "A").payoff_table(0.9)
    assert not np.allclose(want["mean"], other["mean"])  # the groups' tables differ


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoffs_group_pairs(work, grouped_fit, post):
    out = work / "pairs_B.csv"
    invoke("payoffs", grouped_fit, "--group", "B", "--pairs", "--out", out)
    frame = pd.read_csv(out)
    assert list(frame.columns)[: len(PAIR_COLUMNS)] == PAIR_COLUMNS
    want = post.for_group("B").payoff_pairs(0.9)
    assert len(frame) == len(want)
    np.testing.assert_allclose(frame["mean"], want["mean"], atol=1e-9)
    np.testing.assert_allclose(frame["prob_greater"], want["prob_greater"], atol=1e-9)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoffs_errors_on_a_grouped_fit(work, grouped_fit):
    npz, csv = work / "e.npz", work / "e.csv"
    fails("payoffs", grouped_fit, "--out", npz, match="pass --group G")
    fails("payoffs", grouped_fit, "--pairs", "--out", csv, match="--contrast A:B")
    fails(
        "payoffs", grouped_fit, "--group", "C", "--out", npz, match="unknown group 'C'; the groups are A, B"
    )
    fails("payoffs", grouped_fit, "--contrast", "A-B", "--out", csv, match="expected two group names as A:B")
    fails("payoffs", grouped_fit, "--contrast", "A:", "--out", csv, match="as A:B")
    fails("payoffs", grouped_fit, "--contrast", "A:B:C", "--out", csv, match="as A:B")
    fails(
        "payoffs",
        grouped_fit,
        "--contrast",
        "A:C",
        "--out",
        csv,
        match="unknown group 'C'; the groups are A, B",
    )
    fails("payoffs", grouped_fit, "--contrast", "A:A", "--out", csv, match="the two groups are the same")
    fails("payoffs", grouped_fit, "--contrast", "A:B", "--group", "A", "--out", csv, match="without --group")
    fails("payoffs", grouped_fit, "--contrast", "A:B", "--out", npz, match="unknown suffix")
    assert not csv.exists() and not npz.exists()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoffs_group_or_contrast_on_an_ungrouped_fit(work, post):
    plain = work / "plain.nc"
    post.for_group("A").save(plain)  # an ordinary tabular fit, without a second fit
    assert not bd.load(plain).grouped
    fails("payoffs", plain, "--group", "A", "--out", work / "x.npz", match="this fit is not grouped")
    fails("payoffs", plain, "--contrast", "A:B", "--out", work / "x.csv", match="this fit is not grouped")
    invoke("payoffs", plain, "--out", work / "x.npz")  # the ungrouped path still works
    with np.load(work / "x.npz") as got:
        np.testing.assert_allclose(got["mean"], post.for_group("A").payoff_table()["mean"], atol=1e-9)


def test_fit_group_by_refusals(work, csv_path):
    out = work / "never.nc"
    fails(
        "fit", csv_path, "--group-by", "arm", "--out", out, match="--group-by needs --method nuts (got map)"
    )
    fails(
        "fit",
        csv_path,
        "--group-by",
        "arm",
        "--method",
        "laplace",
        "--out",
        out,
        match="--group-by needs --method nuts (got laplace)",
    )
    fails(
        "fit",
        csv_path,
        "--group-by",
        "arm",
        "--mechanism",
        "neural",
        *NUTS,
        "--out",
        out,
        match="--mechanism tabular",
    )
    # --learner-family auto fits by group (tests/test_cli_auto_groups.py), one value per group it cannot
    auto = ["--learner-family", "auto", "--learner-by-group"]
    fails(
        "fit",
        csv_path,
        "--group-by",
        "arm",
        *auto,
        *NUTS,
        "--out",
        out,
        match="does not apply to --learner-family auto",
    )
    fails("fit", csv_path, "--group-scale-dist", "half_normal", *NUTS, "--out", out, match="need --group-by")
    bad_prior = ["--group-by", "arm", "--group-scale-dist", "cauchy"]
    fails("fit", csv_path, *bad_prior, *NUTS, "--out", out, match="cauchy")
    fails("fit", csv_path, "--group-by", "nope", *NUTS, "--out", out, match="no column(s) ['nope']")
    assert not out.exists()


def test_fit_group_scale_options_reach_the_mechanism(work, csv_path, monkeypatch):
    from bayes_diml.cli import fit as cli_fit

    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(data, mechanism, *args, **kwargs):
        seen["mechanism"] = mechanism
        raise Stop

    monkeypatch.setattr(cli_fit, "fit", fake_fit)
    args = ["fit", str(csv_path), "--group-by", "arm", *NUTS, "--out", str(work / "never.nc")]
    prior = ["--group-scale-dist", "half_normal", "--group-scale-prior", "0.4"]
    result = CliRunner().invoke(main, [*args, *prior])
    assert isinstance(result.exception, Stop), result.output
    assert seen["mechanism"].group_scale_dist == "half_normal" and seen["mechanism"].group_scale_prior == 0.4


def test_fit_group_by_column_varying_within_an_episode(work, csv_path):
    frame = pd.read_csv(csv_path)
    row = int(np.flatnonzero(frame["episode"].to_numpy() == 3)[5])
    frame.loc[row, "arm"] = "B" if frame.loc[row, "arm"] == "A" else "A"
    bad = work / "varying.csv"
    frame.to_csv(bad, index=False)
    fails("fit", bad, "--group-by", "arm", *NUTS, "--out", work / "never.nc", match="varies within episode 3")


def test_fit_group_by_npz(work, csv_path):
    data = bd.load_trajectories(csv_path, group_by="arm")
    npz = work / "arms.npz"
    data.save(npz)
    out = work / "never.nc"
    fails("fit", npz, "--group-by", "arm", *NUTS, "--out", out, match="stores its own groups")
    assert not out.exists()
