"""The command line: simulate -> fit -> summary -> payoffs -> counterfactual, demo, and clear errors.

Fast tests share one tiny simulated E2 data set (4 agents x 5 routes, 4 episodes x 8 steps)
and MAP fits of it (each command a few seconds, mostly JAX compilation). NUTS round trips and
the quick demo are marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml.cli import main

STAT_FIELDS = {"mean", "sd", "lower", "upper", "r_hat", "ess_bulk"}


def invoke(*args, ok: bool = True):
    """Run the CLI in-process; check the exit code and that no traceback leaked."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    if ok:
        assert result.exit_code == 0, result.output
    return result


def fails(*args, match: str):
    """The command must fail with a one-line message containing ``match`` and no traceback."""
    result = invoke(*args, ok=False)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert match.lower() in " ".join(result.output.split()).lower(), result.output
    return result


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def data_path(work) -> Path:
    path = work / "data.npz"
    result = invoke("simulate", "--env", "e2", "--seed", "0", "--episodes", 4, "--steps", 8, "--out", path)
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(f"Wrote {path}")
    assert "4 episodes x 8 steps" in result.stdout
    return path


@pytest.fixture(scope="module")
def map_fit(work, data_path):
    """MAP fit of the congestion family with alpha, beta, eps inferred (confounded)."""
    path = work / "map.nc"
    result = invoke(
        "fit", data_path, "--mechanism", "congestion", "--method", "map", "--num-steps", 100,
        "--out", path, "--no-progress",
    )  # fmt: skip
    return path, result


# ---------------------------------------------------------------------------- simulate
def test_simulate_writes_loadable_data(data_path):
    data = bd.load_trajectories(data_path)
    assert data.actions.shape == (4, 8, 4)
    assert data.n_actions == (5, 5, 5, 5)
    assert data.payoffs is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_simulate_payoff_noise_formats(work, suffix):
    clean, noisy = work / f"clean{suffix}", work / f"noisy{suffix}"
    common = ("simulate", "--env", "e2", "--seed", 3, "--episodes", 2, "--steps", 5)
    invoke(*common, "--record-payoffs", "--out", clean)
    out = invoke(*common, "--payoff-noise", 0.5, "--out", noisy).stdout
    assert "payoffs recorded with noise sd 0.5" in out
    a, b = bd.load_trajectories(clean), bd.load_trajectories(noisy)
    np.testing.assert_array_equal(a.actions, b.actions)  # the noise never changes the actions
    assert np.isfinite(a.payoffs).all() and np.isfinite(b.payoffs).all()
    diff = b.payoffs - a.payoffs
    assert 0.2 < diff.std() < 1.0


# ---------------------------------------------------------------------------- fit
def test_fit_prints_summary_and_warnings(map_fit):
    path, result = map_fit
    assert path.exists()
    out = result.stdout
    assert "StructuredCongestion fitted by MAP" in out
    assert "Learner parameters" in out and "alpha" in out
    assert f"Saved the fit to {path}" in out
    # confounding is a visible warning, on stderr only
    assert "ConfoundingWarning" in result.stderr and "confounded" in result.stderr
    assert "ConfoundingWarning" not in out


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_fit_per_agent_with_observed_payoffs_csv(work):
    data = work / "pay.csv"
    invoke("simulate", "--env", "e2", "--episodes", 3, "--steps", 6, "--payoff-noise", 0.05, "--out", data)
    fit_path = work / "pay.nc"
    result = invoke(
        "fit", data, "--n-actions", "5,5,5,5", "--mechanism", "congestion", "--alpha", "infer_per_agent",
        "--beta", 3, "--num-steps", 100, "--out", fit_path, "--no-progress",
    )  # fmt: skip
    assert "ConfoundingWarning" not in result.output  # beta fixed and payoffs observed
    stats = json.loads(invoke("summary", fit_path, "--json").stdout)
    assert set(stats) == {"alpha[0]", "alpha[1]", "alpha[2]", "alpha[3]", "eps", "payoff_noise"}
    post = bd.load(fit_path)
    assert post.learner.beta == 3.0 and post.data.has_payoffs


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_fit_tabular_fixed_eps(work, data_path):
    path = work / "tab.nc"
    invoke("fit", data_path, "--mechanism", "tabular", "--num-steps", 50, "--eps", 0.06, "--out", path,
           "--no-progress")  # fmt: skip
    post = bd.load(path)
    assert type(post.mechanism).__name__ == "Tabular" and post.method == "map"
    assert float(post.learner.eps) == pytest.approx(0.06)
    stats = json.loads(invoke("summary", path, "--json").stdout)
    assert set(stats) == {"alpha", "beta"}


# ---------------------------------------------------------------------------- summary
def test_summary_json_is_exactly_one_object(map_fit):
    path, _ = map_fit
    result = invoke("summary", path, "--json", "--prob", 0.8)
    stats = json.loads(result.stdout)  # nothing else on stdout
    assert set(stats) == {"alpha", "beta", "eps"}
    for name, row in stats.items():
        assert set(row) == STAT_FIELDS, name
        assert math.isfinite(row["mean"])
        assert all(v is None or math.isfinite(v) for v in row.values())


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_summary_table_truncates_payoff_cells(map_fit):
    path, _ = map_fit
    out = invoke("summary", path, "--max-cells", 3).stdout
    assert "Parameters (90% intervals)" in out
    assert "Payoff cells by label" in out and "prior only" in out
    assert "first 3 of" in out and "scaled_payoffs" in out  # confounded: the identified product
    assert "confounded" in out
    full = invoke("summary", path, "--all").stdout
    assert full.count("\n") > 5000  # 2 x 2,500 cells


# ---------------------------------------------------------------------------- payoffs
def test_payoffs_npz(work, map_fit):
    path, _ = map_fit
    out = work / "payoffs.npz"
    result = invoke("payoffs", path, "--prob", 0.9, "--out", out)
    assert result.stdout.startswith(f"Wrote {out}")
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    assert set(arrays) == {"mean", "lower", "upper", "support"}
    for key in ("mean", "lower", "upper"):
        assert arrays[key].shape == (5, 5, 5, 5, 4) and arrays[key].dtype == np.float64
    assert arrays["support"].shape == (5, 5, 5, 5, 4) and arrays["support"].dtype == bool
    assert np.all(arrays["lower"] <= arrays["mean"]) and np.all(arrays["mean"] <= arrays["upper"])
    assert 0 < arrays["support"].sum() < arrays["support"].size
    for i in range(4):  # centred: mean over own actions is 0
        np.testing.assert_allclose(arrays["mean"][..., i].mean(axis=i), 0.0, atol=1e-5)
    post = bd.load(path)
    np.testing.assert_allclose(arrays["mean"], post.payoff_table(0.9)["mean"], rtol=1e-6)


def test_payoffs_pairs_csv(work, map_fit):
    import pandas as pd

    path, _ = map_fit
    out = work / "pairs.csv"
    result = invoke("payoffs", path, "--pairs", "--prob", 0.9, "--out", out)
    assert result.stdout.startswith(f"Wrote {out}: 5,000 pairs")
    assert "beta x payoff" in result.stderr  # confounded fit: identified units, said on stderr
    frame = pd.read_csv(out, dtype={"opponents": str})
    assert list(frame.columns) == [
        "agent", "opponents", "a", "b", "mean", "lower", "upper", "prob_greater", "support", "units"
    ]  # fmt: skip
    assert len(frame) == 4 * 125 * 10 and (frame["a"] < frame["b"]).all()
    assert (frame["units"] == "beta x payoff").all()
    assert frame["opponents"].iloc[0] == "0-0-0"
    expected = bd.load(path).payoff_pairs(0.9)
    np.testing.assert_allclose(frame["mean"], expected["mean"], rtol=1e-6, atol=1e-6)
    assert frame["support"].tolist() == expected["support"].tolist()
    fails(
        "payoffs",
        path,
        "--pairs",
        "--out",
        work / "pairs.npz",
        match="unknown suffix '.npz'; use one of .csv",
    )


# ---------------------------------------------------------------------------- counterfactual
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_counterfactual_action_frequencies(work, map_fit):
    path, _ = map_fit
    out = work / "cf.npz"
    result = invoke(
        "counterfactual", path, "--beta-scale", 1.4, "--alpha-scale", 0.6, "--eps-scale", 1.5,
        "--episodes", 4, "--steps", 6, "--draws", 5, "--out", out,
    )  # fmt: skip
    assert "alpha x 0.6, beta x 1.4, eps x 1.5" in result.stdout
    assert "agent" in result.stdout and "action" in result.stdout
    with np.load(out) as z:
        draws, mean, lower, upper = z["draws"], z["mean"], z["lower"], z["upper"]
    assert draws.shape == (1, 4, 5)  # a MAP fit has one draw
    np.testing.assert_allclose(draws.sum(-1), 1.0, rtol=1e-6)
    assert np.all(lower <= mean + 1e-12) and np.all(mean <= upper + 1e-12)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_counterfactual_welfare_warns_when_confounded(map_fit):
    path, _ = map_fit
    result = invoke("counterfactual", path, "--statistic", "welfare", "--episodes", 2, "--steps", 4)
    assert "welfare" in result.stdout
    assert "ConfoundingWarning" in result.stderr


# ---------------------------------------------------------------------------- errors
def test_errors_missing_and_wrong_files(work, data_path):
    fails("fit", work / "nope.npz", "--out", work / "x.nc", match="does not exist")
    bad = work / "data.dat"
    bad.write_text("hello")
    fails("fit", bad, "--out", work / "x.nc", match="unknown suffix '.dat'")
    bad = work / "data.txt"  # .txt / .tsv: hBayesDM's tab-separated files
    bad.write_text("hello")
    fails("fit", bad, "--out", work / "x.nc", match="missing column(s) ['subjID', 'choice', 'outcome']")
    fails("fit", data_path, "--out", work / "x.json", match="unknown suffix '.json'")
    fails("fit", data_path, "--out", work / "no_such_dir" / "x.nc", match="does not exist")
    empty = work / "empty.npz"
    np.savez(empty, other=np.zeros(3))
    fails("fit", empty, "--out", work / "x.nc", match="missing key 'actions'")
    fails("summary", data_path, match="does not look like a fit")
    fake = work / "fake.nc"
    fake.write_text("not netcdf")
    fails("summary", fake, match="not a readable bayes-diml fit")
    fails("payoffs", fake, "--out", work / "p.npz", match="not a readable bayes-diml fit")
    fails("summary", work / "missing.nc", match="does not exist")
    fails("simulate", "--env", "e2", "--out", work / "d.txt", match="unknown suffix")


def test_errors_bad_values(work, data_path):
    out = work / "x.nc"
    fails("fit", data_path, "--alpha", "fast", "--out", out, match="--alpha")
    fails("fit", data_path, "--beta", "-1", "--out", out, match="LogitQ.beta must lie in")
    fails("fit", data_path, "--prior-scale", "wide", "--out", out, match="positive number or 'flat'")
    fails("fit", data_path, "--prior-scale", "flat", "--method", "nuts", "--out", out, match="flat")
    fails("fit", data_path, "--num-warmup", 10, "--out", out, match="--num-warmup applies to --method nuts")
    fails(
        "fit",
        data_path,
        "--diag-mass",
        "--out",
        out,
        match="--dense-mass/--diag-mass applies to --method nuts",
    )
    fails("fit", data_path, "--n-actions", "5,5", "--out", out, match="n_actions has length 2")
    fails("fit", data_path, "--n-actions", "a,b", "--out", out, match="comma-separated integers")
    fails("fit", data_path, "--method", "bogus", "--out", out, match="bogus")
    fails("simulate", "--env", "e9", "--out", work / "d.npz", match="e9")
    fails("simulate", "--env", "e2", "--n", 3, "--out", work / "d.npz", match="e7 only")
    fails("summary", work / "missing.nc", "--prob", 2, match="prob")


def test_error_mechanism_needs_equal_action_counts(work):
    path = work / "unequal.npz"
    bd.Trajectories(np.zeros((2, 4, 2), int), n_actions=(2, 3)).save(path)
    for name in ("congestion", "public-goods", "symmetric"):
        fails("fit", path, "--mechanism", name, "--out", work / "u.nc", match="same number of actions")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_error_payoff_table_too_large(work):
    data = work / "e7.npz"
    invoke("simulate", "--env", "e7", "--n", 12, "--K", 3, "--episodes", 2, "--steps", 3, "--out", data)
    fails("fit", data, "--mechanism", "tabular", "--out", work / "t7.nc", match="more than 1,000,000")
    fit_path = work / "e7.nc"
    invoke("fit", data, "--mechanism", "symmetric", "--num-steps", 5, "--beta", 6, "--out", fit_path,
           "--no-progress")  # fmt: skip
    fails("payoffs", fit_path, "--out", work / "p7.npz", match="too large for a payoff table")
    out = invoke("summary", fit_path).stdout
    assert "too large to record" in out


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_python_dash_m_entry_point(tmp_path):
    # run outside the repository: `python -m` puts the working directory first on sys.path
    result = subprocess.run(
        [sys.executable, "-m", "bayes_diml", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for command in ("simulate", "fit", "summary", "payoffs", "counterfactual", "demo", "identify"):
        assert command in result.stdout


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
def test_nuts_blackjax_backend_with_dense_mass(work, data_path):
    # the fit is also the round trip of a .zarr fit file (one NUTS fit instead of an extra MAP fit)
    zarr = importlib.util.find_spec("zarr") is not None
    path = work / ("nuts_bj.zarr" if zarr else "nuts_bj.nc")
    result = invoke(
        "fit", data_path, "--mechanism", "congestion", "--method", "nuts", "--beta", 3,
        "--backend", "blackjax", "--num-warmup", 40, "--num-samples", 20, "--num-chains", 1,
        "--dense-mass", "--init", "map", "--out", path, "--no-progress",
    )  # fmt: skip
    assert "NUTS diagnostics" in result.stdout
    post = bd.load(path)
    assert post.info["nuts_backend"] == "blackjax" and post.info["divergences"] >= 0
    # "auto" would be diagonal here (a 40-draw warm-up): the flag reached the sampler
    # (--diag-mass reaching the options as False: test_errors_bad_values)
    assert post.info["dense_mass"] is True
    assert np.asarray(post.idata["posterior"]["alpha"]).shape == (1, 20)
    assert post.info["init"] == "map" and "map_log_joint" in post.info  # --init reached the sampler
    assert path.is_dir() == zarr  # a .zarr fit is a directory store
    stats = json.loads(invoke("summary", path, "--json").stdout)
    assert set(stats) == {"alpha", "eps"}
    fails("fit", data_path, "--backend", "blackjax", "--out", work / "m.nc",
          match="--backend applies to --method nuts")  # fmt: skip
    fails("fit", data_path, "--init", "map", "--out", work / "m.nc", match="--init applies to --method nuts")


# ---------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_nuts_round_trip(work, data_path):
    path = work / "nuts.nc"
    result = invoke(
        "fit", data_path, "--mechanism", "congestion", "--method", "nuts", "--beta", 3,
        "--num-warmup", 30, "--num-samples", 30, "--num-chains", 2, "--dense-mass", "--out", path,
        "--no-progress",
    )  # fmt: skip
    assert "NUTS diagnostics" in result.stdout and "divergences" in result.stdout
    stats = json.loads(invoke("summary", path, "--json").stdout)
    assert set(stats) == {"alpha", "eps"}
    for row in stats.values():
        assert set(row) == STAT_FIELDS
        assert all(v is not None and math.isfinite(v) for v in row.values())
        assert row["lower"] <= row["mean"] <= row["upper"]
    out = work / "nuts_payoffs.npz"
    invoke("payoffs", path, "--out", out)
    with np.load(out) as z:
        assert np.all(z["lower"] <= z["upper"]) and np.any(z["lower"] < z["upper"])
    cf = work / "nuts_cf.npz"
    invoke("counterfactual", path, "--beta-scale", 1.4, "--episodes", 3, "--steps", 5, "--draws", 8,
           "--statistic", "mean_payoff", "--out", cf)  # fmt: skip
    with np.load(cf) as z:
        assert z["draws"].shape == (8, 4)


@pytest.mark.slow
def test_demo_quick(work):
    out_dir = work / "demo"
    result = invoke("demo", "--quick", "--out", out_dir, "--no-progress")
    out = result.stdout
    assert "beta is fixed because beta and the payoff scale are otherwise confounded" in out
    assert "Coverage" in out and "NUTS diagnostics" in out and "covers" in out
    for name in ("demo_intervals.png", "demo_fit.nc", "demo_data.npz"):
        assert (out_dir / name).stat().st_size > 0, name
    assert (out_dir / "demo_intervals.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    post = bd.load(out_dir / "demo_fit.nc")
    assert post.method == "nuts" and type(post.mechanism).__name__ == "StructuredCongestion"


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
def test_identify_command(work, data_path, map_fit):
    # the shared 4 x 8 data set (no simulation of its own); SVI, not Laplace: the Laplace
    # fit's Hessian compiles far longer than SVI's steps
    fit = work / "ident.nc"
    invoke(
        "fit", data_path, "--mechanism", "congestion", "--method", "svi", "--alpha", 0.25,
        "--beta", "infer", "--eps", 0.06, "--num-steps", 300, "--no-progress", "--out", fit,
    )  # fmt: skip
    out = invoke("identify", fit, "--prior-draws", 200).output
    assert "Payoff cells by support and label" in out
    assert "confounded" in out and "Flat direction 1" in out
    payload = json.loads(invoke("identify", fit, "--json", "--prior-draws", 200).stdout)
    assert payload["quantities"]["beta"]["label"] == "confounded with payoff scale"
    assert len(payload["flat_directions"]) == 3
    # summary prints the contraction and the identification label next to each quantity
    out = invoke("summary", fit, "--max-cells", 3).output
    assert "contraction" in out and "confounded" in out
    assert "identified" in out or "prior-driven" in out
    # a MAP fit has no draws to identify from: a clear one-line error
    fails("identify", map_fit[0], match="identification needs posterior draws")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_paper_command_quick(tmp_path):
    from click.testing import CliRunner

    from bayes_diml.cli import main

    out = tmp_path / "r.csv"
    res = CliRunner().invoke(
        main,
        [
            "paper",
            "e2",
            "--seeds",
            "0",
            "--methods",
            "struct_mle,equilibrium",
            "--quick",
            "--no-progress",
            "--out",
            str(out),
            "--plot",
            str(tmp_path / "f.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "struct_mle" in res.output and (tmp_path / "f.png").exists()
    header = out.read_text().splitlines()[0]
    assert (
        header
        == "experiment,setting,method,seed,diff_mse,cfkl_params,fit_seconds,n_params,interval_coverage_90"
    )
    bad = CliRunner().invoke(main, ["paper", "e9", "--quick", "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
