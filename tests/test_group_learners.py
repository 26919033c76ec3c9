"""Learner parameters that differ by group: each group one subject, ``"infer_subject"`` fields.

``Trajectories.with_group_subjects`` makes each group one subject, so a learner field set to
``"infer_subject"`` takes one value per group from a population over the groups (the per-subject
hierarchy of docs/hierarchical.md). ``Posterior.for_group`` then hands each group its own value.
"""

from __future__ import annotations

import types

import jax
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.data import DataError
from bayes_diml.inference.groups import _group_subjects

K = (2, 2)
ALPHAS = {"slow": 0.05, "fast": 0.6}  # the groups' true learning rates; beta and eps shared


def _arms(n_episodes: int = 12, T: int = 30) -> bd.Trajectories:
    tab = mechanisms.Tabular(K)
    table = np.asarray(tab.init(jax.random.key(3))["table"]) * 1.5
    parts = [
        bd.simulate(
            tab, {"table": table}, bd.LogitQ(alpha=a, beta=2.0, eps=0.05), n_episodes=n_episodes, T=T, key=j
        )
        for j, a in enumerate(ALPHAS.values())
    ]
    return bd.Trajectories.concat(parts, groups=list(ALPHAS))


def test_with_group_subjects_makes_each_group_one_subject():
    data = _arms(n_episodes=3, T=6)
    out = data.with_group_subjects()
    np.testing.assert_array_equal(out.subjects, data.group_index)
    assert out.n_subjects == data.n_groups == 2
    np.testing.assert_array_equal(out.actions, data.actions)
    assert data.subjects is None  # the original is unchanged
    # negative control: without groups there is nothing to group by
    with pytest.raises(DataError, match="no groups"):
        bd.Trajectories(data.actions, data.n_actions).with_group_subjects()


def _fake_fit(subjects, groups_of_episodes):
    """A posterior-like object: alpha per subject (float[1, 4, S]), its data's subjects."""
    S = int(np.max(subjects)) + 1
    draws = np.arange(4 * S, dtype=float).reshape(1, 4, S)
    ds = xr.Dataset(
        {
            "alpha": (("chain", "draw", "subject"), draws),
            "alpha_z": (("chain", "draw", "subject"), -draws),
            "alpha_mu": (("chain", "draw"), np.zeros((1, 4))),
            "alpha_sigma": (("chain", "draw"), np.ones((1, 4))),
            "beta_other": (("chain", "draw"), np.ones((1, 4))),
        }
    )
    data = types.SimpleNamespace(subject_index=np.asarray(subjects))
    post = types.SimpleNamespace(learner=bd.LogitQ(alpha="infer_subject", beta=2.0, eps=0.05), data=data)
    return ds, post, draws


def test_a_group_that_is_one_subject_gets_its_own_value():
    ds, post, draws = _fake_fit([1, 1, 0, 0], None)
    out, learner = _group_subjects(ds, post, np.array([0, 1]))  # the episodes of subject 1
    assert learner.alpha == "infer" and learner.beta == 2.0
    np.testing.assert_array_equal(out["alpha"].values, draws[..., 1])
    assert not {"alpha_mu", "alpha_sigma", "alpha_z"} & set(out.data_vars)
    assert "beta_other" in out  # other sites stay
    other, _ = _group_subjects(ds, post, np.array([2, 3]))
    assert not np.array_equal(other["alpha"].values, out["alpha"].values)  # negative control


def test_a_group_of_several_subjects_keeps_their_values_in_subset_order():
    ds, post, draws = _fake_fit([0, 3, 1, 2], None)
    episodes = np.array([1, 2])  # subjects 3 and 1: Trajectories.subset codes them 1 -> 0, 3 -> 1
    out, learner = _group_subjects(ds, post, episodes)
    assert learner.alpha == "infer_subject"
    np.testing.assert_array_equal(out["alpha"].values, draws[..., [1, 3]])
    np.testing.assert_array_equal(out["alpha_z"].values, -draws[..., [1, 3]])
    assert "alpha_mu" in out


def test_without_subject_fields_nothing_changes():
    ds, post, _ = _fake_fit([0, 1], None)
    post.learner = bd.LogitQ(alpha="infer", beta=2.0, eps=0.05)
    out, learner = _group_subjects(ds, post, np.array([0]))
    assert out is ds and learner is post.learner


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_group_learning_rates_are_recovered_and_each_group_uses_its_own():
    data = _arms().with_group_subjects()
    mech = mechanisms.GroupedTabular(K, data.group_names)
    learner = bd.LogitQ(alpha="infer_subject", beta=2.0, eps=0.05)
    post = bd.fit(data, mech, learner, "nuts", num_warmup=200, num_samples=200, num_chains=2, progress=False)
    alpha = post.draws("alpha")  # float[D, G], groups in data.group_names order
    assert alpha.shape[1] == 2
    for g, code in zip(data.group_names, range(2), strict=True):
        lo, hi = np.quantile(alpha[:, code], [0.005, 0.995])
        assert lo < ALPHAS[g] < hi, (g, lo, hi)  # 99% intervals: 2% failure budget for the pair
        own = post.for_group(g)
        assert own.learner.alpha == "infer"
        np.testing.assert_array_equal(own.draws("alpha"), alpha[:, code])
        np.testing.assert_array_equal(np.asarray(own.learner_draws().alpha), alpha[:, code])
    # the groups are told apart: the difference is many posterior sd from 0
    diff = alpha[:, data.group_names.index("fast")] - alpha[:, data.group_names.index("slow")]
    assert diff.mean() > 4 * diff.std()


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("group_learners") / "arms.csv"
    _arms(n_episodes=4, T=12).to_frame().rename(columns={"group": "arm"}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--alpha", "infer_subject"], "--learner-by-group needs --group-by"),
        (["--group-by", "arm", "--alpha", "infer"], "set one, e.g. --alpha infer_subject"),
    ],
)
def test_cli_learner_by_group_errors(csv_path, tmp_path, flags, message):
    result = _invoke(
        "fit",
        csv_path,
        "--learner-by-group",
        *flags,
        "--beta",
        "2",
        "--method",
        "nuts",
        "--out",
        tmp_path / "f.nc",
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "f.nc").exists()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_learner_by_group_fits_one_alpha_per_group(csv_path, tmp_path):
    out = tmp_path / "f.nc"
    result = _invoke(
        "fit",
        csv_path,
        "--group-by",
        "arm",
        "--learner-by-group",
        "--alpha",
        "infer_subject",
        "--beta",
        "2",
        "--method",
        "nuts",
        "--num-warmup",
        "60",
        "--num-samples",
        "60",
        "--num-chains",
        "1",
        "--no-progress",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    post = bd.load(out)
    assert post.draws("alpha").shape[1] == 2  # one value per group, not per episode (8)
    assert post.for_group("fast").learner.alpha == "infer"
