"""``bayes-diml design``: the CSV contract, --plot, --json, product grids and clear errors.

One small fit is built once: a 2-agent Tabular game with 2 and 3 actions (10 episodes x 15
steps) and a posterior of four draws (the true table plus noise, the learner fixed), saved as
``fit.nc``. The command runs twice (each run mostly JAX compilation): the contract example
with --out, --plot and --json, compared with ``Posterior.design`` called in Python, and a
two-action product grid; the error cases stop before any simulation.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.cli.design import CONTRACT_COLUMNS, build_edit, import_hook
from bayes_diml.inference import ConfoundingWarning, Posterior
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors, free_from_table

LEARNER = bd.LogitQ(0.3, 2.0, 0.05)
#: the contract example at test size: 5 tolls on action 2, 4 draws x 20 episodes x 10 steps
EXAMPLE = ["--edit", "toll", "--on-action", 2, "--grid", "0:1:5", "--objective", "welfare"]
SIZE = ["--episodes", 20, "--steps", 10, "--draws", 4, "--seed", 3, "--prob", 0.8]


def invoke(*args, code: int = 0):
    """Run the CLI in-process; check the exit code and that no traceback leaked."""
    result = CliRunner().invoke(main, ["design", *(str(a) for a in args)])
    assert "Traceback" not in result.output
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


def fails(*args, match: str, code: int = 2):
    """The command must fail with a one-line message containing ``match`` (exit 2: usage, 1: input)."""
    result = invoke(*args, code=code)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert match.lower() in " ".join(result.output.split()).lower(), result.output
    return result


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_design")


@pytest.fixture(scope="module")
def fit_path(work) -> Path:
    """Four posterior draws: the true table plus N(0, 0.5^2) noise on every cell."""
    mech = mechanisms.Tabular((2, 3))
    params = mech.init(jax.random.key(3))
    data = bd.simulate(mech, params, LEARNER, 10, 15, 11)
    keys = jax.random.split(jax.random.key(8), 4)
    free = [free_from_table(mech, params["table"] + 0.5 * jax.random.normal(k, (2, 3, 2))) for k in keys]
    sites = {k: np.stack([np.asarray(f[k]) for f in free]) for k in free[0]}
    spec = ModelSpec.build(data, mech, LEARNER, Priors())
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()}, log_likelihood=False)
    return Posterior(tree, spec, "map").save(work / "fit.nc")


@pytest.fixture(scope="module")
def example(work, fit_path):
    """The contract example with --out, --plot and --json: (result, csv path, png path)."""
    out, plot = work / "design.csv", work / "design.png"
    result = invoke(fit_path, *EXAMPLE, *SIZE, "--out", out, "--plot", plot, "--json")
    return result, out, plot


# ---------------------------------------------------------------------------- the contract
def test_csv_has_the_contract_columns_and_one_chosen_row(example):
    _, out, _ = example
    header = out.read_text().splitlines()[0].split(",")
    assert header == [*CONTRACT_COLUMNS, "mean_improvement", "mcse_improvement"]
    table = pd.read_csv(out)
    assert table["chosen"].dtype == bool and table["chosen"].sum() == 1
    np.testing.assert_allclose(table["theta"], np.linspace(0, 1, 5))
    assert np.all(table["lower"] <= table["mean"]) and np.all(table["mean"] <= table["upper"])
    assert table["lower"].lt(table["upper"]).any()  # four draws with real spread
    # criterion mean, maximised: the chosen row has the largest posterior mean
    assert table["chosen"].to_numpy().argmax() == table["mean"].to_numpy().argmax()


def test_csv_matches_posterior_design_in_python(example, fit_path):
    _, out, _ = example
    post = bd.load(fit_path)
    with warnings.catch_warnings():  # the welfare of a fit without payoffs is gauge-dependent
        warnings.simplefilter("ignore", ConfoundingWarning)
        d = post.design(
            bd.edits.toll(2),
            np.linspace(0, 1, 5),
            "welfare",
            n_episodes=20,
            T=10,
            n_draws=4,
            seed=3,
            prob=0.8,
        )
    expected, got = d.table(), pd.read_csv(out)
    assert list(got.columns) == list(expected.columns)
    for col in expected.columns:
        np.testing.assert_allclose(
            got[col].to_numpy(float), expected[col].to_numpy(float), rtol=1e-12, err_msg=col
        )
    # --prob reached the design: the default 90% interval has other bounds
    assert not np.allclose(got["lower"], np.quantile(d.draws, 0.05, axis=0))


def test_plot_is_written(example):
    _, _, plot = example
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000


def test_json_names_the_chosen_theta(example):
    result, out, plot = example
    doc = json.loads(result.stdout)  # stdout holds the JSON document only
    table = pd.read_csv(out)
    row = table[table["chosen"]].iloc[0]
    assert doc["chosen_theta"] == [row["theta"]] and doc["chosen"] == int(row.name)
    assert doc["objective"] == "welfare" and doc["criterion"] == "mean" and doc["maximize"] is True
    assert (doc["n_draws"], doc["episodes"], doc["steps"], doc["prob"]) == (4, 20, 10, 0.8)
    assert len(doc["rows"]) == 5 and [r["chosen"] for r in doc["rows"]] == table["chosen"].tolist()
    assert doc["evpi"] >= 0 and doc["out"] == str(out) and doc["plot"] == str(plot)
    assert all(set(w) == {"category", "message"} for w in doc["warnings"])  # welfare: a gauge warning


def test_two_grids_give_a_product_grid_and_the_printed_decision(work, fit_path):
    out = work / "two.csv"
    result = invoke(
        fit_path, "--edit", "subsidy", "--on-action", 0, "--on-action", 2, "--grid", "0:1:2",
        "--grid", "0:0.5:3", "--objective", "share:2", "--minimize", "--criterion", "prob-improvement",
        "--episodes", 10, "--steps", 10, "--draws", 4, "--out", out,
    )  # fmt: skip
    table = pd.read_csv(out)
    assert list(table.columns[:8]) == ["theta_0", "theta_1", *CONTRACT_COLUMNS[1:]]
    np.testing.assert_allclose(table["theta_0"], np.repeat([0.0, 1.0], 3))
    np.testing.assert_allclose(table["theta_1"], np.tile([0.0, 0.25, 0.5], 2))
    assert table["mean"].between(0, 1).all()  # a share
    # criterion prob_improvement, minimised: the most probable improvement, ties to the lowest share
    p, mean = table["prob_improvement"].to_numpy(), table["mean"].to_numpy()
    best = np.flatnonzero(p == p.max())
    assert table["chosen"].to_numpy().argmax() == best[np.argmin(mean[best])]
    text = " ".join(result.stdout.split())
    assert "theta_0" in text and "share:2 (minimise)" in text
    assert "Chosen theta = (" in text and "P(improvement)" in text and "EVPI" in text
    assert f"Wrote the candidates to {out}" in text


# ---------------------------------------------------------------------------- Python edits
def test_a_python_edit_is_imported_from_the_working_directory(fit_path, tmp_path, monkeypatch):
    (tmp_path / "bd_cli_design_hook.py").write_text(
        "def edit(u, joint, theta):\n    return u - theta[0] * (joint == 1)\n\nnot_a_function = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "bd_cli_design_hook", raising=False)
    edit, name = build_edit("bd_cli_design_hook:edit", (), 2)
    assert name == "bd_cli_design_hook:edit" and edit is import_hook("bd_cli_design_hook:edit")
    u = edit(np.array([1.0, 2.0]), np.array([1, 0]), np.array([0.5]))
    np.testing.assert_allclose(u, [0.5, 2.0])
    assert str(tmp_path) not in sys.path  # the working directory was searched, not added for good
    fails(fit_path, "--edit", "bd_cli_design_hook:missing", "--grid", "0:1:3", match="has no 'missing'")
    fails(fit_path, "--edit", "bd_cli_design_hook:not_a_function", "--grid", "0:1:3", match="not a function")


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--edit", "tax", "--on-action", 2, "--grid", "0:1:3"], "unknown edit 'tax'"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1"], "'0:1' is not LOW:HIGH:NUM"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1:zero"], "is not LOW:HIGH:NUM"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1:0"], "NUM must be at least 1"),
        (["--edit", "toll", "--grid", "0:1:3"], "needs at least one --on-action"),
        (["--edit", "toll", "--on-action", 0, "--on-action", 2, "--grid", "0:1:3"] + ["--grid", "0:1:2"] * 2,
         "3 --grid flags for 2 --on-action flags"),
        (["--edit", "toll", "--on-action", 2, "--on-action", 2, "--grid", "0:1:3"], "distinct"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1:3", "--out", "design.txt"], "use one of .csv"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1:3", "--plot", "design.jpg"], "--plot"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1:3", "--objective", "share:x"], "share:K"),
        (["--edit", "toll", "--on-action", 2, "--grid", "0:1:3", "--objective", "profit"], "'profit' is not"),
        (["--edit", "nosuchmodule_bd:edit", "--grid", "0:1:3"], "cannot import module 'nosuchmodule_bd'"),
        (["--edit", "nosuchmodule_bd:edit", "--on-action", 1, "--grid", "0:1:3"], "applies to the built-in"),
    ],
)  # fmt: skip
def test_bad_flags_are_named_before_any_work(fit_path, args, match):
    fails(fit_path, *args, match=match)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--on-action", 2, "--objective", "share:3"], "share:3: action 3 is not in the game"),
        (["--on-action", 3], "action 3 is not in the game: its actions are 0..2"),
    ],
)
def test_actions_outside_the_game_are_named(fit_path, args, match):
    fails(fit_path, "--edit", "toll", "--grid", "0:1:3", *args, match=match)
