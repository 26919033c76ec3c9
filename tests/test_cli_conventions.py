"""The command line's conventions: --json, --quiet, --debug, --strict, exit codes, deprecated spellings.

Fast tests share one tiny simulated game (e7 with 2 agents x 2 actions, 4 episodes x 8 steps)
and a MAP fit of it stopped after a few steps (so that it warns ConvergenceWarning); ``sbc`` is
tested against a stand-in for the study (the conventions are in the command, not the study).
Fits with posterior draws (NUTS, SVI), ``paper`` and ``demo`` are marked slow.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml.cli import main
from bayes_diml.cli import sbc as sbc_module
from bayes_diml.cli.console import EXIT_CODES, json_ready

DEPRECATED = re.compile(r"^Deprecated: (\S+(?: \S+)?) is now (.+?); the old spelling", re.MULTILINE)


def run(*args: Any, code: int = 0):
    """Run the CLI in-process and check its exit code (no traceback unless --debug)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


def notices(result) -> list[tuple[str, str]]:
    """The (old, new) pairs of the deprecation notices on stderr."""
    return DEPRECATED.findall(result.stderr)


def parse(result) -> Any:
    """stdout must be exactly one JSON document."""
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cliconv")


@pytest.fixture(scope="module")
def data_path(work) -> Path:
    path = work / "data.npz"
    args = ["simulate", "--env", "e7", "--n-agents", 2, "--n-actions", 2, "--episodes", 4, "--steps", 8]
    doc = parse(run(*args, "--out", path, "--json"))
    assert doc["out"] == str(path) and doc["n_actions"] == [2, 2]
    assert (doc["n_episodes"], doc["n_steps"], doc["learner"]["family"]) == (4, 8, "logitq")
    assert doc["payoff_noise"] is None
    return path


FIT = ["--mechanism", "tabular", "--method", "map", "--beta", 3, "--num-steps", 5, "--no-progress"]


@pytest.fixture(scope="module")
def map_fit(work, data_path):
    """A MAP fit stopped after 5 steps: saved, with a ConvergenceWarning, its progress bar shown
    (--json leaves stderr to progress and warnings; test_quiet_hides_progress_and_notes)."""
    path = work / "map.nc"
    result = run("fit", data_path, *FIT[:-1], "--out", path, "--json")
    return path, result


# ---------------------------------------------------------------------------- --help
@pytest.mark.parametrize(
    "command, new, old",
    [
        ("sbc", "--num-warmup", "--warmup"),
        ("sbc", "--num-samples", "--samples"),
        ("sbc", "--num-samples", "--draws"),
        ("sbc", "--num-chains", "--chains"),
        ("sbc", "--num-steps", "--svi-steps"),
        ("simulate", "--n-agents", "--n"),
        ("simulate", "--n-actions", "--K"),
    ],
)
def test_help_shows_new_spellings_only(command, new, old):
    text = run(command, "--help").stdout
    assert re.search(rf"{new}\b", text)
    assert not re.search(rf"(^|\s){re.escape(old)}(?![\w-])", text), text


def test_help_shows_old_values_nowhere():
    text = " ".join(run("sbc", "--help").stdout.split())
    assert "[nuts|svi|laplace]" in text and "[logitq|bandit|hedge]" in text
    assert "svi_lowrank" not in text and "logit_q" not in text and "bandit_q" not in text


@pytest.mark.parametrize(
    "command",
    ["simulate", "fit", "summary", "payoffs", "counterfactual", "identify", "compare", "ppc", "sbc",
     "bandit", "paper", "demo", "plot", "design"],
)  # fmt: skip
def test_every_command_has_json_quiet_debug(command):
    text = run(command, "--help").stdout
    for flag in ("--json", "--quiet", "--debug"):
        assert re.search(rf"{flag}\b", text), (command, flag)


def test_group_help_lists_exit_codes_and_flags():
    text = run("--help").stdout
    assert "--quiet" in text and "--debug" in text and "Exit codes:" in text
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning[:20])}", text, re.MULTILINE), code
    fit_help = run("fit", "--help").stdout
    for flag in ("--strict", "--num-warmup", "--num-samples", "--num-chains"):
        assert flag in fit_help


# ---------------------------------------------------------------------------- deprecated spellings
class FakeStudy:
    """What ``sbc`` needs of a calibration result; one NaN rate (JSON: null)."""

    n_datasets = 3
    quantities = ["alpha", "beta"]

    def coverage(self):
        return {q: {"0.5": {"rate": 0.5}, "0.9": {"rate": float("nan")}} for q in self.quantities}

    def uniformity(self):
        return {q: {"chi2": 0.25, "ecdf": 0.5} for q in self.quantities}

    def flagged(self):
        return ["beta"]

    def plot(self, path):
        Path(path).write_bytes(b"figure")


@pytest.fixture
def study_calls(monkeypatch) -> list[tuple[tuple, dict]]:
    """Replace the SBC study by a stand-in that records its arguments."""
    calls: list[tuple[tuple, dict]] = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return FakeStudy()

    monkeypatch.setattr(sbc_module, "sbc", fake)
    return calls


def test_sbc_old_draw_flags_reach_the_study_as_the_new_ones(tmp_path, study_calls):
    out = tmp_path / "s.json"
    old = run("sbc", "--warmup", 7, "--samples", 11, "--chains", 3, "--out", out, "--json")
    new = run("sbc", "--num-warmup", 7, "--num-samples", 11, "--num-chains", 3, "--out", out, "--json")
    assert study_calls[0] == study_calls[1]
    kwargs = study_calls[0][1]
    assert (kwargs["num_warmup"], kwargs["num_samples"], kwargs["num_chains"]) == (7, 11, 3)
    assert sorted(notices(old)) == [
        ("--chains", "--num-chains"),
        ("--samples", "--num-samples"),
        ("--warmup", "--num-warmup"),
    ]
    assert notices(new) == []
    assert parse(old) == parse(new)


def test_sbc_old_svi_spellings(tmp_path, study_calls):
    out = tmp_path / "s.json"
    old = run("sbc", "--method", "svi_lowrank", "--svi-steps", 20, "--draws", 9, "--simulator", "bandit_q",
              "--out", out, "--json")  # fmt: skip
    run("sbc", "--method", "svi", "--guide", "lowrank", "--num-steps", 20, "--num-samples", 9,
        "--simulator", "bandit", "--out", out, "--json")  # fmt: skip
    assert study_calls[0] == study_calls[1]
    args, kwargs = study_calls[0]
    assert args[6] == "svi_lowrank" and kwargs["simulator"] == "bandit_q"
    assert (kwargs["num_steps"], kwargs["num_draws"]) == (20, 9)
    assert sorted(notices(old)) == [
        ("--draws", "--num-samples"),
        ("--method svi_lowrank", "--method svi --guide lowrank"),
        ("--simulator bandit_q", "--simulator bandit"),
        ("--svi-steps", "--num-steps"),
    ]
    # --num-samples defaults by method: NUTS draws per chain 300, SVI and Laplace draws 1000
    run("sbc", "--method", "laplace", "--out", out)
    run("sbc", "--out", out)
    assert study_calls[2][1]["num_draws"] == 1000 and study_calls[3][1]["num_samples"] == 300


def test_old_and_new_spelling_together_is_a_usage_error(tmp_path, study_calls):
    out = tmp_path / "s.json"
    for args in (["--warmup", 5, "--num-warmup", 6], ["--num-warmup", 6, "--warmup", 5]):
        result = run("sbc", *args, "--out", out, code=2)
        assert "give only --num-warmup" in result.stderr
    result = run("sbc", "--method", "nuts", "--guide", "lowrank", "--out", out, code=2)
    assert "--guide applies to --method svi" in result.stderr
    assert study_calls == []


def test_simulate_old_agent_and_action_flags(work):
    old, new = work / "old.npz", work / "new.npz"
    base = ["simulate", "--env", "e7", "--episodes", 2, "--steps", 3]
    result = run(*base, "--n", 3, "--K", 2, "--out", old)
    run(*base, "--n-agents", 3, "--n-actions", 2, "--out", new)
    assert sorted(notices(result)) == [("--K", "--n-actions"), ("--n", "--n-agents")]
    assert result.stdout.startswith(f"Wrote {old}") and "Deprecated" not in result.stdout
    a, b = bd.load_trajectories(old), bd.load_trajectories(new)
    assert a.n_actions == b.n_actions == (2, 2, 2)
    np.testing.assert_array_equal(a.actions, b.actions)


# ---------------------------------------------------------------------------- --json
def test_json_ready_is_strict_json():
    doc = json_ready({"a": np.float32(1.5), "b": [np.nan, np.inf], 3: np.arange(2), "p": Path("x.nc")})
    assert doc == {"a": 1.5, "b": [None, None], "3": [0, 1], "p": "x.nc"}
    assert json_ready((np.bool_(True), np.int64(2), None, "s")) == [True, 2, None, "s"]
    with pytest.raises(TypeError, match="cannot write object"):
        json_ready(object())


def test_fit_json(map_fit):
    path, result = map_fit
    doc = parse(result)
    assert doc["out"] == str(path) and path.exists()
    assert (doc["mechanism"], doc["method"], doc["learner"], doc["n_draws"]) == (
        "Tabular",
        "map",
        "logitq",
        1,
    )
    assert set(doc["parameters"]) == {"alpha", "eps"}
    assert doc["parameters"]["alpha"]["sd"] is None  # a point estimate: NaN as null
    assert doc["diagnostics"]["converged"] is False
    assert [w["category"] for w in doc["warnings"]] == ["ConvergenceWarning"]
    assert "Warning (ConvergenceWarning)" in result.stderr


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_summary_payoffs_counterfactual_json(work, map_fit):
    path, _ = map_fit
    stats = parse(run("summary", path, "--json"))
    assert set(stats) == {"alpha", "eps"} and stats["eps"]["r_hat"] is None
    table = parse(run("payoffs", path, "--out", work / "p.npz", "--json"))
    assert table["shape"] == [2, 2, 2] and table["cells"] == 8 and table["confounded"] is False
    assert np.load(work / "p.npz")["mean"].shape == (2, 2, 2)
    pairs = parse(run("payoffs", path, "--pairs", "--out", work / "p.csv", "--json"))
    assert pairs["pairs"] == 4 and 0 <= pairs["intervals_excluding_zero"] <= 4
    cf = parse(run("counterfactual", path, "--episodes", 2, "--steps", 4, "--draws", 1, "--json"))
    assert cf["statistic"] == "action_frequencies" and cf["n_draws"] == 1 and cf["steps"] == 4
    np.testing.assert_allclose(np.sum(cf["mean"], axis=1), 1.0, rtol=1e-6)
    welfare = parse(run("counterfactual", path, "--episodes", 2, "--steps", 4, "--draws", 1,
                        "--statistic", "welfare", "--json"))  # fmt: skip
    assert isinstance(welfare["mean"], float) and welfare["lower"] <= welfare["upper"]


def test_bandit_json(tmp_path):
    csv = tmp_path / "b.csv"
    csv.write_text("subject,trial,choice,reward\n1,1,0,1\n1,2,1,0\n1,3,1,1\n2,1,0,0\n2,2,0,1\n")
    doc = parse(run("bandit", csv, "--out", tmp_path / "b.npz", "--json"))
    assert (doc["subjects"], doc["trials"], doc["max_trials"], doc["arms"]) == (2, 5, 3, 2)
    assert doc["counts"] == [3, 2] and doc["rewards_observed"] is True


def test_sbc_json_and_table(tmp_path, study_calls):
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    result = run("sbc", "--out", out, "--plot", png, "--json")
    doc = parse(result)
    assert doc["n_datasets"] == 3 and doc["flagged"] == ["beta"]
    assert doc["quantities"]["alpha"] == {"0.5": 0.5, "0.9": None, "p_unif": 0.25}
    assert f"Wrote {out} and {png}." in result.stderr and png.exists()
    table = run("sbc", "--out", out)
    assert "flagged: beta" in table.stdout and "alpha" in table.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(table.stdout)


# ---------------------------------------------------------------------------- --quiet, --debug
def test_quiet_hides_progress_and_notes(work, data_path, map_fit, study_calls):
    _, loud = map_fit  # the same fit without --quiet (and without --no-progress)
    assert "MAP:" in loud.stderr and "%" in loud.stderr  # the optimiser's progress bar
    for before, after in ((["-q"], []), ([], ["--quiet"])):
        quiet = run(*before, "fit", data_path, *FIT[:-1], "--out", work / "quiet.nc", *after)
        assert "MAP:" not in quiet.stderr and "%" not in quiet.stderr
        assert "Warning (ConvergenceWarning)" in quiet.stderr  # warnings stay
        assert "Saved the fit to" in quiet.stdout  # so does the result
    assert "Wrote" in run("sbc", "--out", work / "s.json").stderr
    assert run("--quiet", "sbc", "--out", work / "s.json").stderr == ""


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    plain = run("fit", bad, "--out", tmp_path / "f.nc", code=1)
    assert isinstance(plain.exception, SystemExit)
    assert plain.stderr.startswith("Error: ") and plain.stderr.count("\n") == 1
    for args in (["--debug", "fit", bad], ["fit", bad, "--debug"]):
        loud = CliRunner().invoke(main, [str(a) for a in (*args, "--out", tmp_path / "f.nc")])
        assert loud.exit_code == 1 and not isinstance(loud.exception, SystemExit)
        assert str(loud.exception).split()[0] in plain.stderr  # the same error, now raised


def test_exit_codes_of_errors(tmp_path, data_path):
    run("fit", data_path, "--method", "bogus", "--out", tmp_path / "f.nc", code=2)  # click's usage error
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = run("fit", bad, "--out", tmp_path / "f.nc", code=1)  # an error in the data
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


# ---------------------------------------------------------------------------- --strict
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_strict_turns_convergence_warnings_into_exit_code_3(work, data_path):
    out = work / "strict.nc"
    result = run("fit", data_path, *FIT, "--out", out, "--strict", "--json", code=3)
    assert out.exists()  # the fit is still saved
    assert parse(result)["warnings"][0]["category"] == "ConvergenceWarning"
    assert "Error: --strict: the fit failed its convergence checks (MAP did not converge" in result.stderr
    # a converged fit passes --strict
    converged = run(
        "fit", data_path, *FIT[:-3], "--no-progress", "--out", work / "ok.nc", "--strict", "--json"
    )
    assert parse(converged)["diagnostics"]["converged"] is True


@pytest.mark.slow
def test_strict_tiny_nuts(work, data_path):
    """2 chains x 10 draws: too short for R-hat and ESS, so --strict fails and plain warns."""
    args = ["fit", data_path, "--mechanism", "tabular", "--method", "nuts", "--beta", 3, "--num-warmup", 10,
            "--num-samples", 10, "--num-chains", 2, "--no-progress", "--json"]  # fmt: skip
    plain = run(*args, "--out", work / "nuts.nc")
    assert "Warning (ConvergenceWarning): NUTS diagnostics" in plain.stderr
    doc = parse(plain)
    assert doc["n_draws"] == 20 and doc["diagnostics"]["min_ess_bulk"] < 200
    strict = run(*args, "--out", work / "nuts_strict.nc", "--strict", code=3)
    assert "--strict" in strict.stderr and parse(strict)["method"] == "nuts"


# ---------------------------------------------------------------------------- slow: draws, studies
@pytest.mark.slow
def test_identify_compare_ppc_json(work, data_path):
    fit = work / "svi.nc"
    run("fit", data_path, "--mechanism", "tabular", "--method", "svi", "--beta", 3, "--num-steps", 50,
        "--num-samples", 40, "--no-progress", "--out", fit)  # fmt: skip
    other = work / "svi_copy.nc"
    shutil.copy(fit, other)
    ident = parse(run("identify", fit, "--prior-draws", 100, "--json"))
    assert "alpha" in ident["quantities"] and isinstance(ident["flat_directions"], list)
    rows = parse(run("compare", fit, other, "--json"))
    assert [r["rank"] for r in rows] == [0, 1] and {r["model"] for r in rows} == {"svi", "svi_copy"}
    ppc = parse(run("ppc", fit, "--draws", 10, "--out", work / "ppc.png", "--json"))
    assert [r["agent"] for r in ppc] == [0, 1]


@pytest.mark.slow
def test_paper_and_demo_json(tmp_path):
    result = run("paper", "e2", "--seeds", 0, "--methods", "struct_mle,equilibrium", "--quick",
                 "--out", tmp_path / "r.csv", "--json")  # fmt: skip
    rows = parse(result)
    assert {r["method"] for r in rows} == {"struct_mle", "equilibrium"}
    demo = parse(run("demo", "--quick", "--out", tmp_path / "demo", "--no-progress", "--json"))
    assert 0 <= demo["coverage"] <= 1 and Path(demo["fit_path"]).exists()
