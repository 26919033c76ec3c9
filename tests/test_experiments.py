"""Tests of the experiment suite in quick mode (tiny data, few steps: the numbers mean nothing)."""

from __future__ import annotations

import importlib
import math
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest

from bayes_diml import metrics
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import Tabular
from bayes_diml.studies import experiments as X


@pytest.fixture(scope="module")
def env_e2():
    """Quick-mode E2 environment (4 agents x 5 routes, 6 episodes x 10 steps)."""
    return X.make_environment("e2", "4x5", 0, X.QUICK_SETTINGS)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run of E2 with three methods and two seeds."""
    out = tmp_path_factory.mktemp("paper") / "results.csv"
    df = X.run_paper(["e2"], [0, 1], ["diml", "joint_bc", "equilibrium"], out, quick=True, progress=False)
    return out, df


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_run_paper_writes_exact_columns(quick_run):
    out, df = quick_run
    csv = pd.read_csv(out)
    assert tuple(csv.columns) == X.CSV_COLUMNS
    assert len(csv) == 6 and tuple(df.columns) == X.CSV_COLUMNS
    assert set(csv["method"]) == {"diml", "joint_bc", "equilibrium"}
    assert np.all(np.isfinite(csv["diff_mse"])) and np.all(csv["diff_mse"] >= 0)
    assert np.all(np.isfinite(csv["cfkl_params"])) and np.all(csv["cfkl_params"] >= 0)
    assert csv["interval_coverage_90"].isna().all()  # no Bayesian rows
    params = sorted(p.name for p in (out.parent / "results_params").glob("*.npz"))
    assert len(params) == 6 and "e2_4x5_diml_seed0.npz" in params
    path = X.params_path(str(out), ("e2", "4x5", "joint_bc", 1))
    assert path == out.parent / "results_params" / "e2_4x5_joint_bc_seed1.npz"
    saved = X.load_params(path)
    assert saved["params.table"].shape == (5, 5, 5, 5, 4)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_rerun_skips_done_rows(quick_run, monkeypatch):
    out, _ = quick_run
    before = out.read_text()

    def fail(*args, **kwargs):
        raise AssertionError("a finished row was fitted again")

    monkeypatch.setitem(X.METHOD_FUNCTIONS, "joint_bc", fail)
    df = X.run_paper(["e2"], [0, 1], ["joint_bc"], out, quick=True, progress=False)
    assert out.read_text() == before
    assert len(df) == 2 and set(df["method"]) == {"joint_bc"}


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_saved_params_reproduce_the_metric(quick_run, env_e2):
    out, df = quick_run
    saved = X.load_params(out.parent / "results_params" / "e2_4x5_equilibrium_seed0.npz")
    mech = Tabular(env_e2.data.n_actions)
    value = metrics.diff_mse(
        env_e2.mechanism,
        env_e2.params,
        mech,
        {"table": saved["params.table"]},
        env_e2.test,
        n_samples=X.QUICK_SETTINGS.diff_samples,
    )
    row = df[(df["method"] == "equilibrium") & (df["seed"] == 0)].iloc[0]
    assert math.isclose(value, row["diff_mse"], rel_tol=1e-5)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_summary_table_and_figure(quick_run, tmp_path):
    out, df = quick_run
    summ = X.summarize(out)
    assert len(summ) == 3 and set(summ["n_seeds"]) == {2}
    diml = summ[summ["method"] == "diml"].iloc[0]
    assert diml["published_diff_mse"] == pytest.approx(9.07e-2)
    table = X.format_table(summ)
    assert table.startswith("| experiment |") and "±" in table and "9.07e-02" in table
    png = X.plot_figure1(df, tmp_path / "figure1.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suite_diff_mse_is_diff_mse_on_the_test_split_with_the_settings_contexts(env_e2):
    import jax

    from bayes_diml.studies.experiments.scoring import suite_diff_mse

    s = X.QUICK_SETTINGS
    wrong = jax.tree_util.tree_map(lambda x: 1.5 * x, env_e2.params)  # payoff differences x 1.5
    got = suite_diff_mse(env_e2, env_e2.mechanism, wrong, s)
    literal = metrics.diff_mse(
        env_e2.mechanism,
        env_e2.params,
        env_e2.mechanism,
        wrong,
        env_e2.test,
        n_samples=s.diff_samples,
        seed=s.metric_seed,
    )
    assert got == literal > 0
    assert suite_diff_mse(env_e2, env_e2.mechanism, env_e2.params, s) == 0.0  # the truth scores 0
    # the settings choose the contexts: another metric seed or the training split scores differently
    assert suite_diff_mse(env_e2, env_e2.mechanism, wrong, s.replace(metric_seed=s.metric_seed + 1)) != got
    assert got != metrics.diff_mse(
        env_e2.mechanism,
        env_e2.params,
        env_e2.mechanism,
        wrong,
        env_e2.train,
        n_samples=s.diff_samples,
        seed=s.metric_seed,
    )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("method", ["diml", "struct_mle", "joint_bc", "equilibrium"])
def test_method_functions_feed_the_metrics(method, env_e2):
    fit = X.METHOD_FUNCTIONS[method](env_e2, X.QUICK_SETTINGS, 0)
    assert isinstance(fit, X.MethodFit)
    scores = X.evaluate(env_e2, fit, X.QUICK_SETTINGS)
    assert scores["diff_mse"] >= 0 and scores["cfkl_params"] >= 0
    assert math.isnan(scores["interval_coverage_90"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "method", ["diml_mle", "diml_wrong", "tabular_mle", "diml_joint", "svi", "nuts", "diml_fanin"]
)
def test_other_method_functions(method, env_e2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = X.METHOD_FUNCTIONS[method](env_e2, X.QUICK_SETTINGS, 0)
        scores = X.evaluate(env_e2, fit, X.QUICK_SETTINGS)
    assert scores["diff_mse"] >= 0 and scores["cfkl_params"] >= 0
    if method in X.BAYESIAN_METHODS:
        assert 0.0 <= scores["interval_coverage_90"] <= 1.0
    if method == "diml_joint":
        assert fit.learner is not None


def test_diml_fanin_fits_diml_with_the_fan_in_prior_and_its_own_e7_steps(env_e2, monkeypatch):
    from bayes_diml.studies.experiments import fitting, methods

    seen = {}

    def capture(env, settings, seed, mechanism, learner, prior_scale):
        seen.update(settings=settings, prior_scale=prior_scale)
        return "fit"

    monkeypatch.setattr(methods, "_map_fit", capture)
    monkeypatch.setattr(fitting, "_map_fit", capture)
    settings = X.Settings(fan_in_scale=0.7, fan_in_steps_e7=1234)
    assert X.METHOD_FUNCTIONS["diml_fanin"](env_e2, settings, 0) == "fit"
    assert seen["prior_scale"] == 0.7 and seen["settings"].weight_scaling == "fan_in"
    assert seen["settings"].map_steps_e7 == 1234 and seen["settings"].map_steps == settings.map_steps
    X.METHOD_FUNCTIONS["diml"](env_e2, settings, 0)  # negative control: diml keeps the constant prior
    assert seen["prior_scale"] == settings.prior_scale and seen["settings"].weight_scaling == "constant"


def test_e7_network_fits_use_the_fan_in_prior_and_diml_constant_the_old_recipe(monkeypatch):
    """On E7, diml / diml_wrong / diml_joint / svi fit under ``Settings.e7_prior`` with
    ``fan_in_steps_e7`` Adam steps polished by up to ``fan_in_polish_e7`` L-BFGS steps (diml is
    diml_fanin's fit); diml_constant keeps N(0, 0.3^2) and ``map_steps_e7``, unpolished;
    ``e7_prior=None`` and E1-E3 keep the constant prior (negative controls)."""
    from types import SimpleNamespace

    from bayes_diml.studies.experiments import fitting, methods

    seen = []

    def capture(env, settings, seed, mechanism, learner, prior_scale):
        options = fitting.map_options(env, settings)
        seen.append((settings.weight_scaling, prior_scale, options["num_steps"], options["polish_steps"]))
        return "fit"

    def capture_fit(env, mechanism, learner, method, seed, priors, **options):
        start = options["init_map"]
        seen.append((priors.weight_scaling, priors.mechanism_scale, start.num_steps, start.polish_steps))
        return SimpleNamespace(info={})

    for module in (methods, fitting):
        monkeypatch.setattr(module, "_map_fit", capture)
        monkeypatch.setattr(module, "_network", lambda env: "network")
    monkeypatch.setattr(methods, "_fit", capture_fit)
    monkeypatch.setattr(methods, "_posterior_fit", lambda post, info: "fit")
    e7 = SimpleNamespace(name="e7", learner=LogitQ(0.3, 2.0, 0.05))
    s = X.Settings(fan_in_steps_e7=1234, map_steps_e7=321, fan_in_polish_e7=567)
    for method in ("diml", "diml_wrong", "diml_joint", "svi", "diml_fanin"):
        seen.clear()
        X.METHOD_FUNCTIONS[method](e7, s, 0)
        assert seen == [("fan_in", 1.0, 1234, 567)], method
    seen.clear()
    X.METHOD_FUNCTIONS["diml_constant"](e7, s, 0)
    X.METHOD_FUNCTIONS["diml"](e7, s.replace(e7_prior=None), 0)
    X.METHOD_FUNCTIONS["diml"](e7, s.replace(e7_prior=("fan_in", 2.0)), 0)
    X.METHOD_FUNCTIONS["diml"](e7, s.replace(e7_prior=("fan_in_bias", 1.0)), 0)
    X.METHOD_FUNCTIONS["diml"](e7, s.replace(fan_in_polish_e7=0), 0)
    X.METHOD_FUNCTIONS["diml"](SimpleNamespace(name="e2", learner=e7.learner), s, 0)
    X.METHOD_FUNCTIONS["diml_fanin"](SimpleNamespace(name="e2", learner=e7.learner), s, 0)
    assert seen == [
        ("constant", 0.3, 321, 0),
        ("constant", 0.3, 321, 0),
        ("fan_in", 2.0, 1234, 567),
        ("fan_in_bias", 1.0, 1234, 567),  # biases too: the same fan-in recipe
        ("fan_in", 1.0, 1234, 0),
        ("constant", 0.3, s.map_steps, 0),
        ("fan_in", 1.0, s.map_steps, 0),  # E1-E3 are never polished
    ]


def test_a_bad_e7_prior_fails_when_the_settings_are_made():
    bad_shape = r"e7_prior must be \(weight_scaling, scale\) or None; got \('fan_in',\)"
    with pytest.raises(ValueError, match=bad_shape):
        X.Settings(e7_prior=("fan_in",))
    with pytest.raises(ValueError, match="weight_scaling must be one of.*'fanin'"):
        X.Settings(e7_prior=("fanin", 1.0))
    assert X.Settings(e7_prior=None).e7_prior is None  # the constant prior on E7 too


def test_joint_bc_rows_are_log_probabilities(env_e2):
    fit = X.fit_joint_bc(env_e2, X.QUICK_SETTINGS, 0)
    table = np.asarray(fit.params["table"])
    for i in range(4):
        np.testing.assert_allclose(np.exp(table[..., i]).sum(axis=i), 1.0, rtol=1e-5)


def test_equilibrium_matches_pooled_frequencies(env_e2):
    s = X.QUICK_SETTINGS
    fit = X.fit_equilibrium(env_e2, s, 0)
    table = np.asarray(fit.params["table"], dtype=float)
    prev, nxt = X._transitions(env_e2)
    for i in range(4):
        opp = np.delete(prev, i, axis=1)
        rows = [table[tuple(np.insert(o, i, k))][i] for o in opp for k in range(5)]
        eu = np.asarray(rows).reshape(len(opp), 5).mean(0) * 3.0  # beta * expected payoff
        freq = np.bincount(nxt[:, i], minlength=5) + s.eq_pseudocount
        target = np.log(freq / freq.sum())
        np.testing.assert_allclose(eu - eu.mean(), target - target.mean(), atol=1e-4)


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown experiment 'e9'"):
        X.run_paper(["e9"], [0], ["diml"], "unused.csv", quick=True)
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['dimll'\]"):
        X.run_paper(["e2"], [0], ["dimll"], "unused.csv", quick=True)
    with pytest.raises(ValueError, match="e7:40x10"):
        X.expand_experiments(["e7:forty"])
    assert X.expand_experiments("e7") == [("e7", f"{n}x{k}") for n, k in X.E7_SETTINGS]
    assert not X.applicable("e7", "tabular_mle") and not X.applicable("e1", "struct_mle")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_diml_val_chooses_the_prior_on_training_episodes_only(env_e2):
    """The choice maximises the recorded validation scores, ignores the test split, and the
    returned fit is ``diml`` refitted on all training episodes with the chosen sd."""
    s = X.QUICK_SETTINGS.replace(prior_scale_grid=(None, 0.3))

    class _TestSplit:
        """The test episodes: any use of them (an attribute read) fails the test."""

        def __getattr__(self, name):
            raise AssertionError(f"fit_diml_val read the test split (.{name})")

    # the test episodes play no part: the whole choice and refit run with a test split that
    # fails on any use (one run instead of re-running validation_scores with another test split)
    fit = X.fit_diml_val(env_e2._replace(test=_TestSplit()), s, 0)
    scores = {k[len("val_ll_") :]: v for k, v in fit.info.items() if k.startswith("val_ll_")}
    assert set(scores) == {"flat", "0.3"} and all(np.isfinite(v) and v < 0 for v in scores.values())
    best = max(scores, key=scores.get)
    assert fit.info["prior_scale"] == (np.inf if best == "flat" else 0.3)
    refit = X._map_fit(env_e2, s, 0, X._network(env_e2), env_e2.learner, None if best == "flat" else 0.3)
    for a, b in zip(jax.tree.leaves(fit.params), jax.tree.leaves(refit.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_diml_early_chooses_the_step_count_on_training_episodes_only():
    """The step count is the best held-out chunk end of the recorded trace, the test split plays
    no part, and the returned fit is ``diml`` refitted on all training episodes for that many steps."""
    # 6 of 12 E1 episodes to fit, a weak N(0, 1) prior: the network overfits within 100 steps
    s = X.QUICK_SETTINGS.replace(
        n_episodes=12, T=12, prior_scale=1.0, early_max_steps=200, early_patience=2, validation_fraction=0.5
    )
    env = X.make_environment("e1", "3x6", 0, s)

    class _TestSplit:
        def __getattr__(self, name):
            raise AssertionError(f"fit_diml_early read the test split (.{name})")

    fit = X.fit_diml_early(env._replace(test=_TestSplit()), s, 0)
    trace, steps, chunk = np.asarray(fit.info["val_trace"]), fit.info["early_steps"], 50
    assert steps == chunk * (int(np.argmax(trace)) + 1) < s.early_max_steps
    assert fit.info["val_ll"] == trace.max() < 0
    assert len(trace) == int(np.argmax(trace)) + 1 + s.early_patience  # stopped by patience
    direct = X.fit_diml(env, s.replace(map_steps=steps), 0)
    for a, b in zip(jax.tree.leaves(fit.params), jax.tree.leaves(direct.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = X.fit_diml(env, s.replace(map_steps=steps + chunk), 0)  # the step count matters
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(fit.params), jax.tree.leaves(other.params), strict=True)
    )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_diml_prior_val_chooses_among_whole_priors_and_refits_the_choice(env_e2, monkeypatch):
    """The recorded scores decide the choice (via ``choose_prior``), the test split plays no part,
    and the returned fit is the chosen prior's own fit (``diml`` or ``diml_fanin``)."""
    # half of the 5 training episodes held out: >= 2 validation episodes give a standard error
    s = X.QUICK_SETTINGS.replace(
        prior_candidates=(("constant", 0.3), ("fan_in", 1.0)), validation_fraction=0.5
    )

    class _TestSplit:
        def __getattr__(self, name):
            raise AssertionError(f"fit_diml_prior_val read the test split (.{name})")

    fit = X.fit_diml_prior_val(env_e2._replace(test=_TestSplit()), s, 0)
    scores = {k[len("val_ll_") :]: v for k, v in fit.info.items() if k.startswith("val_ll_")}
    ses = {k[len("val_gain_se_") :]: v for k, v in fit.info.items() if k.startswith("val_gain_se_")}
    assert set(scores) == set(ses) == {"constant_0.3", "fan_in_1"}
    assert all(np.isfinite(v) and v < 0 for v in scores.values())
    assert scores["constant_0.3"] != scores["fan_in_1"]  # the candidates are different priors
    assert ses["constant_0.3"] == 0.0 and ses["fan_in_1"] > 0.0
    chosen = X.choose_prior({k: (scores[k], ses[k]) for k in scores}, s.prior_val_threshold_se)
    assert fit.info["prior_fan_in"] == float(chosen == "fan_in_1")
    direct = (X.fit_diml_fanin if chosen == "fan_in_1" else X.fit_diml)(env_e2, s, 0)
    for a, b in zip(jax.tree.leaves(fit.params), jax.tree.leaves(direct.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the choice follows the scores: a clear gain of the other candidate makes it the choice
    from bayes_diml.studies.experiments import validation

    other = "fan_in_1" if chosen == "constant_0.3" else "constant_0.3"
    rigged = {"constant_0.3": (-2.0, 0.0), "fan_in_1": (-1.0, 0.1)}
    if other == "constant_0.3":  # the incumbent wins when the challenger's gain is negative
        rigged = {"constant_0.3": (-1.0, 0.0), "fan_in_1": (-2.0, 0.1)}
    monkeypatch.setattr(validation, "prior_validation_scores", lambda env, settings, seed: rigged)
    assert X.fit_diml_prior_val(env_e2, s, 0).info["prior_fan_in"] == float(other == "fan_in_1")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_prior_validation_scores_resume_from_the_cache(env_e2, tmp_path, monkeypatch):
    """Each candidate's held-out scores are saved as it finishes; a rerun fits only the missing
    ones, and a change of settings, seed or data never reads another row's scores."""
    from bayes_diml.studies.experiments import validation

    s = X.QUICK_SETTINGS.replace(
        prior_candidates=(("constant", 0.3), ("fan_in", 1.0)),
        validation_fraction=0.5,
        validation_cache=str(tmp_path),
    )
    fitted = []
    real_fit = validation._prior_fit

    def counting_fit(*args, **kwargs):
        fitted.append(kwargs["weight_scaling"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(validation, "_prior_fit", counting_fit)
    first = X.prior_validation_scores(env_e2, s, 0)
    assert fitted == ["constant", "fan_in"]
    files = sorted(tmp_path.glob("*.npz"))
    assert [f.name.split("_")[3] for f in files] == ["constant", "fan"]  # e2_n4_seed0_<label>_<digest>
    assert X.prior_validation_scores(env_e2, s, 0) == first and len(fitted) == 2  # all read back
    uncached = X.prior_validation_scores(env_e2, s.replace(validation_cache=None), 0)
    assert uncached == first and len(fitted) == 4  # the cache changes no number
    next(f for f in files if "fan_in" in f.name).unlink()  # an interrupted row: one candidate left
    assert X.prior_validation_scores(env_e2, s, 0) == first and fitted[4:] == ["fan_in"]
    # negative controls: other settings, seed or episodes are other rows
    X.prior_validation_scores(env_e2, s.replace(map_steps_e7=11, map_steps=21), 0)
    assert len(fitted) == 7
    X.prior_validation_scores(env_e2, s, 1)
    assert len(fitted) == 9
    other_env = X.make_environment("e2", "4x5", 1, X.QUICK_SETTINGS)
    X.prior_validation_scores(other_env, s, 0)
    assert len(fitted) == 11 and len(list(tmp_path.glob("*.npz"))) == 8
    assert not list(tmp_path.glob("*.tmp"))
    # run_paper keeps the cache beside its CSV unless the settings name one
    seen = []

    def record(env, settings, seed):
        seen.append(settings.validation_cache)
        raise RuntimeError("stop after the settings are seen")

    monkeypatch.setitem(X.METHOD_FUNCTIONS, "diml_prior_val", record)
    out = tmp_path / "run" / "results.csv"
    for settings in (X.QUICK_SETTINGS, s):
        with pytest.raises(X.RowFailed):
            X.run_paper(["e2"], [0], ["diml_prior_val"], out, settings=settings, progress=False)
    assert seen == [str(out.parent / "results_params" / "validation"), str(tmp_path)]


def test_choose_prior_keeps_the_incumbent_within_the_noise():
    scores = {"constant_0.3": (-1.80, 0.0), "fan_in_1": (-1.79, 0.02), "fan_in_2": (-1.75, 0.01)}
    assert X.choose_prior(scores, 1.0) == "fan_in_2"  # gain 0.05 > 0.01; fan_in_1's 0.01 < 0.02
    assert X.choose_prior(scores, 6.0) == "constant_0.3"  # no gain exceeds 6 SE (0.05 < 0.06)
    both = {"constant_0.3": (-1.80, 0.0), "fan_in_1": (-1.70, 0.01), "fan_in_2": (-1.75, 0.01)}
    assert X.choose_prior(both, 1.0) == "fan_in_1"  # of the clear gains, the best
    worse = {"constant_0.3": (-1.80, 0.0), "fan_in_1": (-1.90, 0.01)}
    assert X.choose_prior(worse, 0.0) == "constant_0.3"
    assert X.choose_prior({"constant_0.3": (-1.8, 0.0), "fan_in_1": (-1.7, float("nan"))}, 1.0) == (
        "constant_0.3"  # no standard error (one validation episode): no clear gain
    )


def test_bad_prior_candidates_fail_before_any_fit(env_e2, monkeypatch):
    from bayes_diml.studies.experiments import fitting

    def no_fit(*args, **kwargs):
        raise AssertionError("a candidate was fitted before the candidates were checked")

    monkeypatch.setattr(fitting, "_map_fit", no_fit)
    typo = X.QUICK_SETTINGS.replace(prior_candidates=(("constant", 0.3), ("fanin", 1.0)))
    with pytest.raises(ValueError, match="weight_scaling must be one of.*'fanin'"):
        X.prior_validation_scores(env_e2, typo, 0)
    with pytest.raises(ValueError, match="prior_candidates is empty"):
        X.prior_validation_scores(env_e2, X.QUICK_SETTINGS.replace(prior_candidates=()), 0)
    with pytest.raises(ValueError, match="at least one candidate"):
        X.choose_prior({}, 1.0)


def test_gain_standard_error_is_the_paired_episode_formula():
    a = np.array([-100.0, -120.0, -90.0, -110.0])
    b = np.array([-101.0, -119.0, -93.0, -110.5])
    d = a - b  # 1, -1, 3, 0.5
    expected = np.sqrt(4) * np.std(d, ddof=1) / 400
    assert X.gain_standard_error(a, b, 400) == pytest.approx(expected)
    assert X.gain_standard_error(a, a + 2.0, 400) == 0.0  # a constant shift has no noise
    assert np.isnan(X.gain_standard_error(a[:1], b[:1], 100))


def test_deprecated_alias_warns_and_gives_the_same_objects(monkeypatch):
    """``bayes_diml.experiments`` (the old path) still works: a DeprecationWarning, the same objects."""
    monkeypatch.delitem(sys.modules, "bayes_diml.experiments", raising=False)
    with pytest.warns(DeprecationWarning, match="bayes_diml.studies.experiments"):
        old = importlib.import_module("bayes_diml.experiments")
    assert list(old.__all__) == list(X.__all__)
    assert all(getattr(old, name) is getattr(X, name) for name in X.__all__)


def test_a_failing_row_is_a_one_line_error_naming_the_row(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bayes_diml.cli import main

    def broken(env, settings, seed):
        raise FloatingPointError("boom")

    monkeypatch.setitem(X.METHOD_FUNCTIONS, "equilibrium", broken)
    out = tmp_path / "rows.csv"
    with pytest.raises(
        X.RowFailed, match="experiment=e2 setting=4x5 method=equilibrium seed=0 failed"
    ) as err:
        X.run_paper(["e2"], [0], ["equilibrium"], out, quick=True, progress=False)
    assert isinstance(err.value, RuntimeError) and isinstance(err.value.__cause__, FloatingPointError)
    result = CliRunner().invoke(
        main, ["paper", "e2", "--seeds", "0", "--methods", "equilibrium", "--quick", "--out", str(out)]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "method=equilibrium seed=0 failed (FloatingPointError: boom)" in " ".join(result.output.split())
    # --debug shows the traceback instead (the exception propagates to the caller)
    result = CliRunner().invoke(
        main,
        ["--debug", "paper", "e2", "--seeds", "0", "--methods", "equilibrium", "--quick", "--out", str(out)],
    )
    assert isinstance(result.exception, X.RowFailed)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_run_paper_shows_the_progress_of_a_row_and_its_candidates(env_e2, tmp_path, monkeypatch, capsys):
    """A long validation row says which row started and each candidate's score as it finishes;
    a rerun says which scores it read from the cache; ``progress=False`` prints nothing."""
    import logging

    from bayes_diml.studies.experiments import validation

    s = X.QUICK_SETTINGS.replace(
        prior_candidates=(("constant", 0.3), ("fan_in", 1.0)), validation_cache=str(tmp_path / "cache")
    )
    quick_fit = validation._prior_fit(env_e2, s, 0, "constant", 0.3)  # stands in for every fit
    monkeypatch.setattr(validation, "_prior_fit", lambda *a, **k: quick_fit)
    X.run_paper(["e2"], [0], ["diml_prior_val"], tmp_path / "a.csv", settings=s, progress=True)
    err = capsys.readouterr().err
    assert "row 1/1: e2 4x5 diml_prior_val seed 0" in err
    assert "validation of 2 candidates" in err
    assert "candidate 1/2 constant_0.3: held-out log-likelihood" in err
    assert "candidate 2/2 fan_in_1: held-out log-likelihood" in err
    assert "chose constant_0.3; refitting" in err
    assert "diml_prior_val seed 0: diff_mse" in err  # the finished row's line, last
    assert err.index("row 1/1") < err.index("candidate 2/2") < err.index("diff_mse")
    X.run_paper(["e2"], [0], ["diml_prior_val"], tmp_path / "b.csv", settings=s, progress=True)
    err = capsys.readouterr().err
    assert "candidate 1/2 constant_0.3: read from" in err and "held-out log-likelihood" not in err
    X.run_paper(["e2"], [0], ["diml_prior_val"], tmp_path / "c.csv", settings=s, progress=False)
    assert capsys.readouterr().err == ""
    logger = logging.getLogger("bayes_diml.studies.experiments")
    assert logger.handlers == [] and logger.level == logging.NOTSET  # nothing left behind


def test_run_paper_progress_shows_once_where_the_application_logs_to_stderr(tmp_path, monkeypatch, capsys):
    """With ``logging.basicConfig()``-style root handler on stderr the suite adds no handler of its
    own, so each line shows once, in the application's format; without one it adds its own."""
    import logging
    import sys

    from bayes_diml.studies.experiments import fitting

    def stop(*args, **kwargs):
        raise RuntimeError("stop after the row's first line")

    monkeypatch.setattr(fitting, "fit", stop)
    root = logging.getLogger()
    app = logging.StreamHandler(sys.stderr)
    app.setFormatter(logging.Formatter("APP %(message)s"))
    root.addHandler(app)
    try:
        with pytest.raises(X.RowFailed):
            X.run_paper(["e2"], [0], ["diml"], tmp_path / "a.csv", quick=True, progress=True)
    finally:
        root.removeHandler(app)
    err = capsys.readouterr().err
    assert err.count("row 1/1: e2 4x5 diml seed 0") == 1 and "APP row 1/1" in err
    with pytest.raises(X.RowFailed):  # negative control: no application handler, the suite's own
        X.run_paper(["e2"], [0], ["diml"], tmp_path / "b.csv", quick=True, progress=True)
    err = capsys.readouterr().err
    assert err.count("row 1/1: e2 4x5 diml seed 0") == 1 and "APP" not in err
    assert logging.getLogger("bayes_diml.studies.experiments").handlers == []


def test_save_params_round_trips_through_load_params(tmp_path):
    from bayes_diml.mechanisms import SymmetricCount, flatten_params

    mech = SymmetricCount(4, 3)
    params = mech.init(jax.random.key(0))
    fit = X.MethodFit(mech, params, None, None, {"converged": True, "log_joint": -12.5})
    path = tmp_path / "new" / "fit.npz"
    X.save_params(str(path), fit)  # a str path; the folder is created
    saved = X.load_params(path)
    flat = flatten_params(params)
    assert {k for k in saved if k.startswith("params.")} == {f"params.{k}" for k in flat}
    for k, v in flat.items():
        np.testing.assert_array_equal(saved[f"params.{k}"], np.asarray(v))
    assert str(saved["mechanism"]) == "SymmetricCount"
    assert bool(saved["info.converged"]) and float(saved["info.log_joint"]) == -12.5
    assert not any(k.startswith("learner.") for k in saved)


def test_run_paper_passes_progress_to_each_fit(tmp_path, monkeypatch, caplog):
    """A serial run's fits show their own progress bars exactly when the run shows progress,
    also where the application's logging shows INFO records."""
    import logging

    from bayes_diml.studies.experiments import fitting

    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs["progress"])
        raise RuntimeError("stop after the fit's options are seen")

    monkeypatch.setattr(fitting, "fit", record)
    for i, progress in enumerate((True, False)):
        with pytest.raises(X.RowFailed):
            X.run_paper(["e2"], [0], ["diml"], tmp_path / f"{i}.csv", quick=True, progress=progress)
    caplog.set_level(logging.INFO)  # the root logger shows INFO
    caplog.clear()
    with pytest.raises(X.RowFailed):
        X.run_paper(["e2"], [0], ["diml"], tmp_path / "2.csv", quick=True, progress=False)
    assert seen == [True, False, False]
    assert not [r for r in caplog.records if r.name.startswith("bayes_diml.studies")]
    assert logging.getLogger("bayes_diml.studies.experiments").level == logging.NOTSET
