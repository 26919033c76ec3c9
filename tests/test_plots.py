"""Diagnostic plots (Posterior.plot, bayes-diml plot), the SBC figure, and no backend switching."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import jax
import matplotlib
import numpy as np
import pytest
from arviz_plots import PlotCollection
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.inference.compare import ParetoKWarning
from bayes_diml.inference.plots import KINDS, plot_tree, ppc_tree
from bayes_diml.studies.calibration import SBCResult, plot_sbc

AGENTS = ["row", "col"]
ACTIONS = [["up", "down"], ["left", "centre", "right"]]
LEARNER = bd.LogitQ(0.3, 2.0, 0.05)


@pytest.fixture(scope="module")
def data():
    mech = mechanisms.Tabular((2, 3))
    params = mech.init(jax.random.key(0))
    sim = bd.simulate(mech, params, LEARNER, n_episodes=8, T=10, key=2)
    lengths = [10, 10, 6, 10, 10, 3, 10, 10]  # ragged: padding must not be counted
    return mech, bd.Trajectories(
        sim.actions, sim.n_actions, lengths=lengths, agent_labels=AGENTS, action_labels=ACTIONS
    )


@pytest.fixture(scope="module")
def laplace(data):
    """Laplace fit with its own posterior-predictive draws (one fit serves every Laplace test;
    the simulated predictive path is tested on the MAP fit, which has no stored draws)."""
    mech, d = data
    return bd.fit(
        d,
        mech,
        bd.LogitQ("infer", 2.0, 0.05),
        method="laplace",
        seed=0,
        progress=False,
        posterior_predictive=True,
    )


@pytest.fixture(scope="module")
def nuts(data):
    mech, d = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.inference.ConvergenceWarning)  # 2 x 20 draws: too few
        return bd.fit(
            d,
            mech,
            bd.LogitQ("infer", 2.0, 0.05),
            method="nuts",
            seed=0,
            progress=False,
            num_warmup=30,
            num_samples=20,
            num_chains=2,
        )


@pytest.fixture(scope="module")
def map_fit(data):
    mech, d = data
    return bd.fit(d, mech, LEARNER, method="map", seed=0, progress=False)


def _close(pc: PlotCollection) -> None:
    import matplotlib.pyplot as plt

    plt.close(pc.viz["figure"].item())


@pytest.mark.parametrize(
    "kind",
    [
        # the rank plot needs a NUTS fit (chains): slow, for the fast-suite budget
        pytest.param(k, marks=pytest.mark.slow) if k == "rank" else k
        for k in KINDS
        if k != "pareto-k"
    ],
)
def test_every_kind_returns_a_plot_collection_of_identified_quantities(request, laplace, kind):
    # ranks compare chains (a Laplace fit has one); the NUTS fixture is built only for them
    post = request.getfixturevalue("nuts") if kind == "rank" else laplace
    pc = post.plot(kind, max_cells=3, ppc_draws=5)
    assert isinstance(pc, PlotCollection)
    plotted = set(pc.data.data_vars)
    assert not any(v.endswith("_free") or v.startswith("u0") for v in plotted)  # never raw weights
    if kind in ("trace", "rank", "ess"):
        assert plotted == {"alpha", "centred_payoffs"}
        assert list(pc.data["centred_payoffs"]["cell"].values) == [
            "row: up, left",
            "col: up, left",
            "row: up, centre",
        ]
    elif kind == "forest":
        assert plotted == {"centred_payoffs"}
    else:
        assert plotted == {"actions of row", "actions of col"}
        ax = pc.get_target("actions of col", {})
        assert [t.get_text() for t in ax.get_xticklabels()] == ACTIONS[1]
    _close(pc)


def test_pareto_k_plots_the_episode_diagnostics(laplace):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParetoKWarning)  # few episodes: k may be large
        pc = laplace.plot("pareto-k")
    assert isinstance(pc, PlotCollection)
    _close(pc)


def test_plot_tree_holds_the_draws_of_observed_cells(laplace):
    tree = plot_tree(laplace, max_cells=100)
    cp = tree["posterior"]["centred_payoffs"]
    support = laplace.support.reshape(-1)
    assert cp.sizes["cell"] == int(support.sum())
    flat = laplace.payoff_differences().reshape(laplace.n_draws, -1)[:, support]
    np.testing.assert_allclose(cp.values.reshape(-1, cp.sizes["cell"]), flat)
    assert tree["posterior"]["alpha"].shape == (
        tree["posterior"].sizes["chain"],
        tree["posterior"].sizes["draw"],
    )
    assert plot_tree(laplace, max_cells=0)["posterior"].data_vars.keys() == {"alpha"}


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_confounded_fit_plots_the_identified_product(data):
    mech, d = data
    with pytest.warns(bd.inference.ConfoundingWarning):
        post = bd.fit(d, mech, bd.LogitQ(0.3, "infer", 0.05), method="laplace", seed=0, progress=False)
    tree = plot_tree(post, max_cells=2, payoffs_only=True)
    assert set(tree["posterior"].data_vars) == {"scaled_payoffs"}
    beta = post.draws("beta")[:, None]
    cells = np.flatnonzero(post.support.reshape(-1))[:2]
    want = (post.payoff_differences().reshape(post.n_draws, -1) * beta)[:, cells]
    np.testing.assert_allclose(
        tree["posterior"]["scaled_payoffs"].values.reshape(-1, 2), want, rtol=1e-5, atol=1e-6
    )


def test_ppc_tree_counts_scored_steps_only(data, map_fit):
    _, d = data
    tree = ppc_tree(map_fit, n_draws=7, seed=1)
    n_obs = int(d.scored_mask.sum())
    for i, agent in enumerate(AGENTS):
        obs = tree["observed_data"][f"actions of {agent}"].values
        assert obs.shape == (n_obs,)
        np.testing.assert_array_equal(np.bincount(obs, minlength=d.n_actions[i]), _scored_counts(d, i))
        pred = tree["posterior_predictive"][f"actions of {agent}"]
        assert pred.shape == (1, 7, n_obs) and pred.values.max() < d.n_actions[i]


def _scored_counts(d, i):
    counts = np.zeros(d.n_actions[i], dtype=int)
    for m, length in enumerate(d.lengths):
        for t in range(1, length):
            counts[d.actions[m, t, i]] += 1
    return counts


def test_ppc_tree_uses_the_fits_own_predictive_draws(laplace, map_fit):
    post = laplace
    assert "posterior_predictive" in post.idata.children
    assert "posterior_predictive" not in map_fit.idata.children  # so its ppc tree simulates
    pred = ppc_tree(post, n_draws=3)["posterior_predictive"]["actions of row"]
    assert pred.shape[1] == post.n_draws  # all of them, not the 3 a simulation would make


def test_plot_errors(laplace, map_fit):
    with pytest.raises(
        ValueError, match=r"unknown plot kind 'density'; choose one of trace, rank, forest, ess"
    ):
        laplace.plot("density")
    with pytest.raises(ValueError, match="a trace plot needs posterior draws; this is a map fit"):
        map_fit.plot("trace")
    with pytest.raises(ValueError, match="a rank plot compares chains; this fit has 1 chain"):
        laplace.plot("rank")
    with pytest.raises(ValueError, match="max_cells must be >= 0"):
        laplace.plot("forest", max_cells=-1)
    pc = map_fit.plot("forest", max_cells=2)  # a point estimate still has a forest
    _close(pc)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_plot_writes_the_figure(tmp_path, laplace):
    fit = laplace.save(tmp_path / "fit.nc")
    out = tmp_path / "forest.png"
    res = CliRunner().invoke(
        main, ["plot", str(fit), "--kind", "forest", "--out", str(out), "--max-cells", "4"]
    )
    assert res.exit_code == 0, res.output
    assert f"Wrote {out}" in res.output and out.stat().st_size > 5_000
    args = ["plot", str(fit), "--kind", "forest", "--out", str(out), "--max-cells", "4", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # stdout is one JSON document
    assert doc == {"out": str(out), "fit": str(fit), "kind": "forest", "stacked_best_learner": None}
    bad = CliRunner().invoke(main, ["plot", str(fit), "--kind", "violin", "--out", str(out)])
    assert bad.exit_code == 2 and "'violin' is not one of 'trace', 'rank'" in bad.output
    bad = CliRunner().invoke(main, ["plot", str(fit), "--kind", "trace", "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code != 0 and "unknown suffix '.txt'" in bad.output


def test_cli_plot_refuses_a_map_trace_with_a_message(tmp_path, map_fit):
    fit = map_fit.save(tmp_path / "map.nc")
    res = CliRunner().invoke(main, ["plot", str(fit), "--kind", "rank", "--out", str(tmp_path / "r.png")])
    assert res.exit_code == 1 and "needs posterior draws" in res.output and "Traceback" not in res.output


# ------------------------------------------------------------------------------ SBC figure
def _sbc_result(n=40):
    rng = np.random.default_rng(0)
    levels = (0.5, 0.8, 0.9)
    qs = ["alpha", "beta", "centred_payoffs[0, 1, 0]"]
    return SBCResult(
        setup={"method": "nuts", "n_actions": (2, 2), "simulator": "logit_q"},
        ranks={q: rng.integers(0, 100, n) for q in qs},
        inside={q: rng.random((n, len(levels))) < np.array(levels) for q in qs},
        truth={q: rng.random(n) for q in qs},
        identified={"alpha": True, "beta": False, "centred_payoffs[0, 1, 0]": True},
        n_ranks=99,
        levels=levels,
        diagnostics={},
    )


def test_sbc_figure_has_arviz_pit_panels_and_a_coverage_panel(tmp_path):
    path = tmp_path / "sbc.png"
    fig = plot_sbc(_sbc_result(), path)
    assert path.stat().st_size > 10_000
    titles = [ax.get_title() for ax in fig.axes]
    assert any("beta (not identified)" in t for t in titles)
    pit_axes = [ax for ax in fig.axes if "rank PIT" in ax.get_title()]
    assert len(pit_axes) == 3
    for ax in pit_axes:  # arviz-plots' pot_c test writes its p-value into each panel
        assert any(re.match(r"p=\d\.\d\d", t.get_text()) for t in ax.texts)
    (cov,) = [ax for ax in fig.axes if ax.get_title().startswith("coverage")]
    assert cov.get_ylim()[1] > 0.8  # its own y axis, not the ECDF panels' shared one
    assert len(cov.get_lines()) == 1 + 2  # the diagonal and the two identified quantities


# ------------------------------------------------------------------------- no backend switching
PACKAGE = [Path(__file__).parents[1] / d for d in ("bayes_diml", "models", "inference")]


def _backend_switches(roots) -> list[str]:
    """Source lines that call ``matplotlib.use(`` (it breaks inline figures in notebooks)."""
    hits = []
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            for no, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\bmatplotlib\.use\(", line):
                    hits.append(f"{path}:{no}")
    return hits


def test_library_code_never_chooses_a_matplotlib_backend():
    assert _backend_switches(PACKAGE) == []


def test_the_backend_check_finds_a_switch(tmp_path):
    (tmp_path / "m.py").write_text("import matplotlib\n\nmatplotlib.use('Agg')\n")
    assert _backend_switches([tmp_path]) == [f"{tmp_path / 'm.py'}:3"]


def test_figures_leave_the_backend_alone(tmp_path, laplace):
    before = matplotlib.get_backend()
    _close(laplace.plot("forest", max_cells=2))
    plot_sbc(_sbc_result(), tmp_path / "s.png")
    assert matplotlib.get_backend() == before
