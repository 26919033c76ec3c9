"""``bayes-diml fit --validation FILE [--patience N]``: MAP early stopping on held-out episodes;
``--polish-steps N``: the MAP run on to its optimum by L-BFGS instead."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_runner import fails, invoke

import bayes_diml as bd
from bayes_diml.cli.console import diagnostics_line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """E2 play (4 agents x 5 routes), 8 episodes: 6 to fit, 2 held out; and a 3-route file."""
    work = tmp_path_factory.mktemp("early")
    invoke("simulate", "--env", "e2", "--seed", "0", "--episodes", 8, "--steps", 8, "--out", work / "all.npz")
    train, held_out = bd.load_trajectories(work / "all.npz").split(0.25, seed=0)
    other = bd.Trajectories(np.zeros((2, 8, 4), dtype=int), (3, 3, 3, 3))
    return (
        work,
        train.save(work / "train.npz"),
        held_out.save(work / "held.npz"),
        other.save(work / "other.npz"),
    )


def test_fit_stops_on_the_held_out_episodes(files):
    work, train, held, _ = files
    out = work / "fit.nc"
    result = invoke(
        "fit", train, "--mechanism", "neural", "--method", "map", "--alpha", 0.3, "--beta", 3, "--eps", 0.05,
        "--validation", held, "--num-steps", 400, "--patience", 2, "--out", out, "--no-progress", "--json",
    )  # fmt: skip
    diagnostics = json.loads(result.stdout)["diagnostics"]
    post = bd.load(out)
    trace = np.asarray(post.info["validation_trace"])
    best = int(np.argmax(trace))
    assert diagnostics["map_steps"] == post.info["map_steps"] == 100 * (best + 1)
    assert len(trace) == min(4, best + 1 + 2)  # stopped by --patience 2 or at --num-steps
    n_scored = bd.load_trajectories(held).n_scored
    assert diagnostics["validation_per_action"] == pytest.approx(trace.max() / n_scored)
    line = diagnostics_line(post)
    assert f"early stopping kept step {100 * (best + 1)}" in line and "per action" in line


def test_fit_polishes_the_adam_fit_with_lbfgs(files):
    work, train, _, _ = files
    out = work / "polished.nc"
    result = invoke(
        "fit", train, "--mechanism", "tabular", "--method", "map", "--alpha", 0.3, "--beta", 3, "--eps", 0.05,
        "--num-steps", 100, "--polish-steps", 1000, "--out", out, "--no-progress", "--json",
    )  # fmt: skip
    diagnostics = json.loads(result.stdout)["diagnostics"]
    post = bd.load(out)
    lbfgs = post.info["map_polish_steps"]
    assert diagnostics["converged"] and post.info["converged"]
    assert 0 < lbfgs < 1000 and diagnostics["map_polish_steps"] == lbfgs
    assert diagnostics["map_steps"] == post.info["map_steps"] == 100 + lbfgs
    assert f"(100 Adam, {lbfgs} L-BFGS polishing)" in diagnostics_line(post)


def test_bad_early_stopping_flags_are_clear_errors(files):
    work, train, held, other = files
    base = ("fit", train, "--out", work / "x.nc", "--no-progress")
    fails(
        *base,
        "--method",
        "nuts",
        "--validation",
        held,
        match="--validation (early stopping) applies to --method map",
    )
    fails(*base, "--method", "map", "--patience", 3, match="--patience needs --validation")
    fails(*base, "--method", "map", "--validation", held, "--polish-steps", 100, match="give one")
    fails(*base, "--method", "svi", "--polish-steps", 100, match="--polish-steps")
    fails(*base, "--method", "map", "--validation", other, match="n_actions")
