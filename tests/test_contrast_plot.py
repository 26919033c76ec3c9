"""The contrast plot of a grouped fit (``Posterior.plot("contrast")``, ``bayes-diml plot --kind contrast``).

One small labelled two-arm 2 x 2 NUTS fit per module (2 chains x (100 + 100)) serves every
test; a tiny confounded fit checks the units.
"""

from __future__ import annotations

import json
import warnings

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest
from arviz_plots import PlotCollection
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.inference.contrast_plot import contrast_tree
from bayes_diml.inference.plots import GROUP_KINDS, KINDS

K = (2, 2)
AGENTS = ["firm", "buyer"]
ACTIONS = [["low", "high"], ["stay", "switch"]]
LEARNER = bd.LogitQ(0.3, 2.0, 0.05)


def _arms(episodes: int, T: int, labelled: bool = True) -> bd.Trajectories:
    tab = mechanisms.Tabular(K)
    table_a = np.asarray(tab.init(jax.random.key(3))["table"])
    table_b = table_a.copy()
    table_b[1, :, 0] += 1.0  # arm B: agent 0's action 1 pays 1 more against every opponent action
    parts = [
        bd.simulate(tab, {"table": t}, LEARNER, n_episodes=episodes, T=T, key=j)
        for j, t in enumerate([table_a, table_b])
    ]
    data = bd.Trajectories.concat(parts, groups=["A", "B"])
    if not labelled:
        return data
    return bd.Trajectories(data.actions, K, agent_labels=AGENTS, action_labels=ACTIONS, groups=data.groups)


def _fit(data, learner, warmup, samples):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.inference.ConvergenceWarning)  # short chains
        warnings.simplefilter("ignore", bd.inference.ConfoundingWarning)
        return bd.fit(
            data,
            mechanisms.GroupedTabular(K, data.group_names),
            learner,
            method="nuts",
            num_warmup=warmup,
            num_samples=samples,
            num_chains=2,
            seed=0,
            progress=False,
        )


@pytest.fixture(scope="module")
def grouped():
    return _fit(_arms(6, 15), LEARNER, 100, 100)


def _close(pc: PlotCollection) -> None:
    plt.close(pc.viz["figure"].item())


def _plotted(pc: PlotCollection):
    """The plotted draws: the one variable over (chain, draw, cell) of ``pc.data``."""
    (name,) = pc.data.data_vars
    da = pc.data[name]
    return name, da.sel(column="forest") if "column" in da.dims else da


def test_contrast_is_a_group_kind_not_a_plain_one():
    assert GROUP_KINDS == ("contrast",) and "contrast" not in KINDS


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_the_plot_has_one_row_per_agent_and_joint_action_of_the_contrast(grouped):
    frame = grouped.contrast("B", "A", prob=0.9)
    pc = grouped.plot("contrast", groups=("B", "A"), prob=0.9)
    assert isinstance(pc, PlotCollection)
    name, da = _plotted(pc)
    assert name == "B - A, centred payoff" and frame["units"].eq("payoff").all()
    # labelled like the CSV rows (agent outer, joint in C order), in the data's labels
    want = [
        f"agent {AGENTS[i]}, {ACTIONS[0][a0]}-{ACTIONS[1][a1]}"
        for i in range(2)
        for a0 in range(2)
        for a1 in range(2)
    ]
    assert list(da["cell"].values) == want and len(want) == len(frame)
    assert [f"{r.agent}-{r.joint}" for r in frame.itertuples()] == [
        f"{i}-{a0}-{a1}" for i in range(2) for a0 in range(2) for a1 in range(2)
    ]
    assert da.sizes["chain"] == 2 and da.sizes["draw"] == 100  # the chains' draws, not intervals
    forest = pc.get_target(name, {"column": "forest"})
    assert "B - A" in forest.get_title() and "90%" in forest.get_title()
    zero = [ln for ln in forest.get_lines() if list(ln.get_xdata()) == [0, 0]]
    assert len(zero) == 1  # the reference line at 0 (and none in the labels column)
    labels_ax = pc.get_target(name, {"column": "labels"})
    assert not any(ln.get_visible() for ln in labels_ax.get_lines() if list(ln.get_xdata()) == [0, 0])
    _close(pc)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_the_plotted_draws_are_the_contrasts_joint_draws(grouped):
    frame = grouped.contrast("B", "A", prob=0.8)
    pc = grouped.plot("contrast", groups=("B", "A"), prob=0.8)
    _, da = _plotted(pc)
    flat = da.values.reshape(-1, da.sizes["cell"])  # [D, rows]
    np.testing.assert_allclose(flat.mean(0), frame["mean"].to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose((flat > 0).mean(0), frame["prob_positive"].to_numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(np.quantile(flat, 0.1, axis=0), frame["lower"].to_numpy(), rtol=0, atol=1e-6)
    # the joint draws, not independent marginals: B - A per draw from the two group posteriors
    b, a = grouped.for_group("B"), grouped.for_group("A")
    diff = (b.payoff_differences() - a.payoff_differences())[:, 1, 0, 0]  # agent 0, joint 1-0
    np.testing.assert_allclose(flat[:, 2], diff, rtol=0, atol=1e-6)
    shuffled = np.random.default_rng(0).permutation(b.payoff_differences()[:, 1, 0, 0])
    assert np.abs(flat[:, 2] - (shuffled - a.payoff_differences()[:, 1, 0, 0])).max() > 1e-3
    _close(pc)
    # reversed groups negate, draw by draw
    back = contrast_tree(grouped, "A", "B")["posterior"]["A - B, centred payoff"].values
    np.testing.assert_allclose(back, -da.values, rtol=0, atol=1e-6)
    assert not np.allclose(back, da.values)  # negative control: a real, non-zero contrast


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_confounded_fit_plots_temperature_times_payoff(grouped):
    post = _fit(_arms(3, 8, labelled=False), bd.LogitQ(0.3, "infer", 0.05), 30, 30)
    assert post.confounded
    frame = post.contrast("B", "A")
    units = frame["units"].iloc[0]
    assert units.startswith("beta")
    pc = post.plot("contrast", groups=("B", "A"))
    name, da = _plotted(pc)
    assert name == f"B - A, {units}" and list(da["cell"].values)[:2] == ["agent 0, 0-0", "agent 0, 0-1"]
    assert "confounded" in pc.get_target(name, {"column": "forest"}).get_title()
    np.testing.assert_allclose(
        da.values.reshape(-1, len(frame)).mean(0), frame["mean"].to_numpy(), rtol=0, atol=1e-6
    )
    _close(pc)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_contrast_plot_errors(grouped):
    with pytest.raises(ValueError, match=r"needs groups=\(B, A\).*got None. The groups are A, B"):
        grouped.plot("contrast")
    with pytest.raises(ValueError, match="needs groups=.*got 'BA'"):
        grouped.plot("contrast", groups="BA")
    with pytest.raises(ValueError, match="needs groups=.*got \\('A', 'B', 'A'\\)"):
        grouped.plot("contrast", groups=("A", "B", "A"))
    with pytest.raises(ValueError, match="unknown group 'C'; the groups are A, B"):
        grouped.plot("contrast", groups=("C", "A"))
    with pytest.raises(ValueError, match="two different groups; got 'A' twice"):
        grouped.plot("contrast", groups=("A", "A"))
    with pytest.raises(ValueError, match=r"prob must lie in \(0, 1\)"):
        grouped.plot("contrast", groups=("B", "A"), prob=1.5)
    with pytest.raises(ValueError, match="a contrast plot needs a grouped fit.*mechanism is Tabular"):
        grouped.for_group("A").plot("contrast", groups=("B", "A"))
    with pytest.raises(ValueError, match="groups=... applies to kind='contrast'"):
        grouped.for_group("A").plot("forest", groups=("B", "A"))
    with pytest.raises(ValueError, match="choose one of trace, .*, ppc, contrast"):
        grouped.plot("violin")


def _cli(*args):
    return CliRunner().invoke(main, ["plot", *(str(a) for a in args)])


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_writes_the_contrast_png(tmp_path, grouped):
    fit = grouped.save(tmp_path / "grouped.nc")
    out = tmp_path / "contrast.png"
    res = _cli(fit, "--kind", "contrast", "--contrast", "B:A", "--out", out)
    assert res.exit_code == 0, res.output
    assert f"Wrote {out}: contrast (B - A) plot" in res.output and out.stat().st_size > 5_000
    res = _cli(fit, "--kind", "contrast", "--contrast", "A:B", "--prob", "0.8", "--out", out, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["group_b"] == "A" and doc["group_a"] == "B" and doc["prob"] == 0.8
    for args, code, message in [
        (["--contrast", "B:Z"], 1, "unknown group 'Z'; the groups are A, B"),
        (["--contrast", "B:B"], 2, "the two groups are the same"),
        (["--contrast", "BA"], 2, "expected two group names as B:A"),
        ([], 2, "--kind contrast needs --contrast B:A"),
    ]:
        res = _cli(fit, "--kind", "contrast", *args, "--out", out)
        assert res.exit_code == code and message in " ".join(res.output.split()), res.output
        assert "Traceback" not in res.output
    res = _cli(fit, "--kind", "forest", "--contrast", "B:A", "--out", out)
    assert res.exit_code == 2 and "--contrast applies to --kind contrast" in res.output


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_refuses_a_fit_that_is_not_grouped(tmp_path, grouped):
    data = _arms(2, 6, labelled=False)
    plain = bd.Trajectories(data.actions, K)  # no groups
    fit = bd.fit(plain, mechanisms.Tabular(K), LEARNER, method="map", progress=False).save(tmp_path / "m.nc")
    res = _cli(fit, "--kind", "contrast", "--contrast", "B:A", "--out", tmp_path / "c.png")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "a contrast plot needs a grouped fit" in " ".join(res.output.split())
    assert not (tmp_path / "c.png").exists()
