"""``fit(..., learner="auto")``: candidates, stacking, verdicts, abstention, save / load, CLI.

Fast tests fit Laplace approximations of one or two families on tiny data; the slow ones fit
every family by NUTS (2 chains x 300 + 300) on 30 episodes x 30 steps.
"""

from __future__ import annotations

import json
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main as cli
from bayes_diml.inference import ConvergenceWarning, ParetoKWarning, StackedPosterior, load_stacked
from bayes_diml.inference.auto import (
    ABSTAIN_PRIOR_WEIGHT,
    NULL_NAMES,
    auto_candidates,
    auto_learner,
    bag_targets,
    compare_candidates,
    decide,
    mixture_weights,
    nesting_notes,
    stack_draws,
)
from bayes_diml.inference.stacked import NO_INFORMATION, mixture_counts
from bayes_diml.learners import FAMILIES, temperature_name
from bayes_diml.mechanisms import joint_profiles
from bayes_diml.metrics import payoff_differences
from bayes_diml.models import INFER

GAME = (2, 3)
BETA = 3.0


def payoff_blind(M: int, T: int, seed: int) -> bd.Trajectories:
    """Each agent plays one fixed mixed strategy (drawn once from Dirichlet(1)), whatever the payoffs."""
    rng = np.random.default_rng(seed)
    cols = [rng.choice(k, size=(M, T), p=rng.dirichlet(np.ones(k))) for k in GAME]
    return bd.Trajectories(np.stack(cols, axis=-1), GAME)


def logit_q_game(M: int, T: int, seed: int):
    """LogitQ data (beta 3) on a 2 x 3 table of N(0, 1) payoffs.

    (With N(0, 1.5^2) payoffs, beta x payoff reaches 7: play locks on one profile at 97%, eps
    explains the rare deviations, and payoff magnitudes, not signs, are left to the prior.)
    """
    mech = mechanisms.Tabular(GAME)
    params = {"table": jax.random.normal(jax.random.key(seed + 1), (*GAME, len(GAME)))}
    data = bd.simulate(mech, params, bd.LogitQ(0.3, BETA, 0.05), M, T, seed)
    truth = np.asarray(
        payoff_differences(mech, params, joint_profiles(GAME).reshape(*GAME, 2), n_actions=GAME)
    )
    return mech, data, BETA * truth  # temperature fixed at 1: the fit's units are beta x payoff


def sure(pairs) -> np.ndarray:
    return ((pairs["lower"] > 0) | (pairs["upper"] < 0)).to_numpy()


# ------------------------------------------------------------------ candidates and rules


def test_auto_learner_fixes_the_temperature_at_one_and_infers_the_rest():
    for name, cls in FAMILIES.items():
        spec = auto_learner(name)
        assert isinstance(spec, cls)
        t = temperature_name(spec)
        assert getattr(spec, t) == 1.0
        others = [n for n in spec.PARAMETERS if n != t] if hasattr(spec, "PARAMETERS") else []
        assert all(getattr(spec, n) == INFER for n in others if isinstance(n, str))


def test_candidates_default_names_and_duplicates():
    assert list(auto_candidates()) == list(FAMILIES)
    specs = auto_candidates(["LogitQ", "ewa", bd.EWA("infer", "infer", "infer", 1.0, "infer"), "markov"])
    assert list(specs) == ["logitq", "ewa", "ewa_2"]


def test_unknown_candidate_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown candidate 'qlearning'.*logitq, bandit, hedge, fp, ewa"):
        auto_candidates(["logitq", "qlearning"])
    data = payoff_blind(4, 6, 0)
    with pytest.raises(ValueError, match="unknown candidate"):
        bd.fit(data, mechanisms.Tabular(GAME), "auto", method="laplace", candidates=["nope"])


def test_auto_needs_draws_and_candidates_need_auto():
    data = payoff_blind(4, 6, 0)
    mech = mechanisms.Tabular(GAME)
    with pytest.raises(ValueError, match="needs posterior draws.*method='nuts'"):
        bd.fit(data, mech, "auto", method="map")
    with pytest.raises(ValueError, match="candidates= applies to learner='auto'"):
        bd.fit(data, mech, None, method="map", candidates=["logitq"])
    observed = bd.Trajectories(data.actions, GAME, payoffs=np.zeros(data.actions.shape))
    with pytest.raises(ValueError, match="with observed payoffs"):
        bd.fit(observed, mech, "auto", method="nuts")
    with pytest.raises(ValueError, match="'autopilot'"):
        bd.fit(data, mech, "autopilot", method="laplace")


def test_decide_and_abstention_weights():
    assert decide(10.0, 4.0) == "informative"
    assert decide(7.9, 4.0) == "no_signal"
    assert decide(-7.9, 4.0) == "no_signal"
    assert decide(-9.0, 4.0) == "misspecified"
    w = {"logitq": 0.9, "null_stationary": 0.02, "null_markov": 0.08}
    nulls = list(NULL_NAMES)
    assert mixture_weights(w, nulls, "informative") == pytest.approx(w)
    ab = mixture_weights(w, nulls, "no_signal")
    assert ab["null_stationary"] + ab["null_markov"] == pytest.approx(ABSTAIN_PRIOR_WEIGHT)
    assert ab["null_markov"] == pytest.approx(4 * ab["null_stationary"])
    assert sum(ab.values()) == pytest.approx(1.0)
    high = mixture_weights({"logitq": 0.2, "null_stationary": 0.0, "null_markov": 0.8}, nulls, "misspecified")
    assert high["null_markov"] == pytest.approx(0.8)  # never less prior than the stacking weight
    assert mixture_counts(np.array([0.6, 0.3, 0.1]), 7).tolist() == [4, 2, 1]  # largest remainder


def test_nesting_notes():
    notes = nesting_notes({"logitq": "logitq", "ewa": "ewa", "bandit": "bandit", **NULL_NAMES})
    assert notes["logitq"].startswith("nested in EWA: weight is not evidence against it")
    assert notes["ewa"] == notes["bandit"] == notes["null_markov"] == ""
    assert "Markov" in notes["null_stationary"]
    assert nesting_notes({"logitq": "logitq"})["logitq"] == ""  # EWA not among the candidates


# ------------------------------------------------------------------ Laplace fits (fast)


@pytest.fixture(scope="module")
def blind_fit():
    # 8 x 10 (was 12 x 20): the Laplace fit runs its MAP steps on less data; a blind fit of less
    # data has even less to go on, so the abstention it checks only gets more certain
    data = payoff_blind(8, 10, 1)
    with warnings.catch_warnings():  # Laplace: some episodes' Pareto k may exceed 0.7 (incidental here)
        warnings.filterwarnings("ignore", category=ParetoKWarning)
        return bd.fit(
            data,
            mechanisms.Tabular(GAME),
            "auto",
            method="laplace",
            candidates=["logitq"],
            robust=None,
            progress=False,
        )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_payoff_blind_data_abstain(blind_fit):
    st = blind_fit
    assert isinstance(st, StackedPosterior)
    assert st.verdict in ("no_signal", "misspecified")
    assert NO_INFORMATION in st.message
    pairs = st.payoff_pairs(0.9)
    assert not sure(pairs).any()
    assert pairs["prob_greater"].between(0.25, 0.75).all()
    assert not pairs["informative"].any() and pairs.attrs["verdict"] == st.verdict
    assert st.info["prior_weight"] >= ABSTAIN_PRIOR_WEIGHT
    table = st.summary(0.9)
    assert set(table.index) == {"logitq", *NULL_NAMES}
    for col in ("family", "weight", "elpd", "se", "elpd_diff", "dse", "max_pareto_k", "n_high_k", "note"):
        assert col in table.columns
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    assert NO_INFORMATION in st.report(0.9)
    assert st.info["robust"] is None and st.info["bagged"] == [] and "not bagged" in st.report(0.9)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_stacked_draws_follow_the_mixture_weights(blind_fit):
    st = blind_fit
    shares = st.table["mixture_weight"]
    prior = shares[list(NULL_NAMES)].sum()
    n = st.n_draws
    assert abs(np.mean(st.sources == "prior") - prior) <= 2.0 / n
    assert abs(np.mean(st.sources == "logitq") - shares["logitq"]) <= 2.0 / n
    draws = st.payoff_differences()
    assert draws.shape == (n, *GAME, 2)
    # the prior draws are antithetic: their mean is exactly 0
    np.testing.assert_allclose(draws[st.sources == "prior"].mean(0), 0.0, atol=1e-12)
    # the family's draws are draws of its own posterior (temperature 1: the centred payoffs)
    own = st.candidates["logitq"].payoff_differences()
    rows = draws[st.sources == "logitq"].reshape(-1, own[0].size)
    assert np.isin(rows[:, 0], own.reshape(len(own), -1)[:, 0]).all()


@pytest.fixture(scope="module")
def bagged_auto():
    """A bagged ``learner="auto"`` fit (its default) and the unbagged stack of the same fits and seed.

    ``fit(..., robust=None)`` runs the same ordinary fits (same data, specs and seed) as the bagged
    call, then ``stack_draws(compare_candidates(fits, seed), fits)``; restacking the bagged fit's
    own ordinary fits gives that unbagged result without running them a second time.
    """
    data = logit_q_game(16, 20, 4)[1]
    kw = dict(method="laplace", candidates=["logitq", "hedge"], progress=False, seed=3)
    with warnings.catch_warnings():  # this checks how bagged draws are stacked, not Laplace on tiny bags
        warnings.filterwarnings("ignore", category=ParetoKWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        bagged = bd.fit(data, mechanisms.Tabular(GAME), "auto", n_bags=2, **kw)
        plain = stack_draws(compare_candidates(bagged.posteriors, 3), bagged.posteriors)
    assert plain.info["robust"] is None and not plain.bagged
    return plain, bagged


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
def test_auto_bags_the_weighty_families_by_default(bagged_auto):
    plain, st = bagged_auto
    # weights, elpds and the verdict come from the ordinary fits: identical with and without bagging
    pd.testing.assert_frame_equal(st.table, plain.table)
    assert st.verdict == plain.verdict
    targets = bag_targets(st.table)
    assert targets and st.info["bagged"] == targets == list(st.bagged)
    assert st.info["robust"] == "bagging" and st.info["n_bags"] == 2
    assert "bagged posteriors (BayesBag, 2 bootstrap" in st.report(0.9)
    for name in targets:
        bag = st.bagged[name]
        assert bag.info["robust"] == "bagging" and bag.info["n_bags"] == 2
        assert bag.learner == st.candidates[name].learner
        # every stacked draw of a bagged family is a draw of its bagged posterior, none of the ordinary one
        cells = GAME[0] * GAME[1] * len(GAME)
        rows = st.payoff_differences()[st.sources == name].reshape(-1, cells)
        assert len(rows) > 0
        assert np.isin(rows[:, 0], bag.payoff_differences().reshape(-1, cells)[:, 0]).all()
        ordinary = st.candidates[name].payoff_differences().reshape(-1, cells)[:, 0]
        assert not np.isin(rows[:, 0], ordinary).any()
    # the bags of every family are the same bootstrap data sets
    idx = [st.bagged[n].info["bag_indices"] for n in targets]
    for other in idx[1:]:
        np.testing.assert_array_equal(other, idx[0])


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ParetoKWarning")
def test_stack_draws_checks_the_bagged_fits(bagged_auto):
    plain, st = bagged_auto
    fits = plain.posteriors
    comparison = compare_candidates(fits, 3)
    name = next(iter(st.bagged))
    with pytest.raises(ValueError, match="not among the compared families"):
        stack_draws(comparison, fits, bagged={"ewa": st.bagged[name]})
    with pytest.raises(ValueError, match="must be a bagged fit"):
        stack_draws(comparison, fits, bagged={name: fits[name]})
    again = stack_draws(comparison, fits, bagged=st.bagged)
    np.testing.assert_array_equal(again.payoff_differences(), st.payoff_differences())


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
def test_high_pareto_k_is_one_warning_naming_every_candidate(bagged_auto):
    plain, _ = bagged_auto
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ParetoKWarning)
        comparison = compare_candidates(plain.posteriors, 3)
    high = comparison.table[comparison.table["n_high_k"] > 0]
    assert len(high) > 0  # Laplace on 16 episodes: some episodes' PSIS estimates are unreliable
    pareto = [w for w in caught if issubclass(w.category, ParetoKWarning)]
    assert len(pareto) == 1
    for name, row in high.iterrows():
        assert f"{name} ({row.n_high_k} of 16" in str(pareto[0].message)


def test_bag_targets_take_learners_above_the_threshold():
    table = pd.DataFrame(
        {"kind": ["learner", "learner", "null", "learner"], "mixture_weight": [0.6, 0.049, 0.3, 0.05]},
        index=["ewa", "hedge", "null_markov", "logitq"],
    )
    assert bag_targets(table) == ["ewa", "logitq"]
    assert bag_targets(table, 0.5) == ["ewa"]


def test_auto_bagging_keyword_errors():
    data = payoff_blind(4, 6, 2)
    with pytest.raises(ValueError, match="n_bags apply to robust='bagging'"):
        bd.fit(data, mechanisms.Tabular(GAME), "auto", method="laplace", robust=None, n_bags=3)
    with pytest.raises(ValueError, match="unknown robust='bootstrap'"):
        bd.fit(data, mechanisms.Tabular(GAME), "auto", method="laplace", robust="bootstrap")


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_stacked_save_load_round_trip(blind_fit, tmp_path):
    path = blind_fit.save(tmp_path / "auto.nc")
    back = load_stacked(path)
    np.testing.assert_array_equal(back.payoff_differences(), blind_fit.payoff_differences())
    assert back.verdict == blind_fit.verdict and back.message == blind_fit.message
    assert back.weights == pytest.approx(blind_fit.weights)
    assert list(back.table.columns) == list(blind_fit.table.columns)
    for name in NULL_NAMES:  # redrawn from the stored seed: the same draws
        np.testing.assert_array_equal(back.candidates[name].probs, blind_fit.candidates[name].probs)
    with pytest.raises(ValueError, match="stacked fit"):
        bd.load(path)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_reads_a_stacked_fit(blind_fit, tmp_path):
    out = blind_fit.save(tmp_path / "auto.nc")
    runner = CliRunner()
    res = runner.invoke(cli, ["summary", str(out)])
    assert res.exit_code == 0, res.output
    assert NO_INFORMATION in res.output and "null_markov" in res.output
    res = runner.invoke(cli, ["summary", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["verdict"] == blind_fit.verdict
    res = runner.invoke(cli, ["payoffs", str(out), "--pairs", "--out", str(tmp_path / "pairs.csv")])
    assert res.exit_code == 0, res.output
    assert "0 intervals exclude 0" in res.output and NO_INFORMATION in res.output
    res = runner.invoke(cli, ["identify", str(out), "--prior-draws", "200"])
    assert res.exit_code == 0, res.output
    assert NO_INFORMATION in res.output and "best learner family, 'logitq'" in res.output


def test_cli_auto_flag_errors(tmp_path):
    npz = payoff_blind(4, 6, 2).save(tmp_path / "blind.npz")
    runner = CliRunner()
    base = ["fit", str(npz), "--out", str(tmp_path / "x.nc")]
    res = runner.invoke(cli, [*base, "--learner-family", "auto", "--beta", "2"])
    assert res.exit_code != 0 and "does not apply to --learner-family auto" in res.output
    res = runner.invoke(cli, [*base, "--candidates", "logitq"])
    assert res.exit_code != 0 and "--candidates applies to --learner-family auto" in res.output
    res = runner.invoke(cli, [*base, "--learner-family", "auto"])  # default --method map
    assert res.exit_code != 0 and "needs posterior draws" in res.output


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ParetoKWarning")
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # short chains
def test_cli_fit_auto(tmp_path):
    # learning data: a learner family takes enough weight to be bagged (on payoff-blind data the
    # nulls take it all and nothing is bagged)
    npz = logit_q_game(16, 20, 4)[1].save(tmp_path / "learning.npz")
    out = tmp_path / "auto.nc"
    args = [
        "fit",
        str(npz),
        "--learner-family",
        "auto",
        "--method",
        "nuts",  # Laplace refuses this data's bags: their Hessian at the refined MAP is indefinite
        "--num-warmup",
        "100",
        "--num-samples",
        "100",
        "--num-chains",
        "2",
        "--candidates",
        "logitq,hedge",
        "--bags",
        "2",
    ]
    res = CliRunner().invoke(cli, [*args, "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "verdict:" in res.output
    back = load_stacked(out)
    assert set(back.candidates) == {"logitq", "hedge", *NULL_NAMES}
    assert back.info["robust"] == "bagging" and back.info["n_bags"] == 2 and back.info["bagged"]
    assert "bagged posteriors (BayesBag, 2 bootstrap" in res.output


# ------------------------------------------------------------------ NUTS, every family (slow)

NUTS = dict(num_warmup=300, num_samples=300, num_chains=2, progress=False)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ParetoKWarning")
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_auto_on_logit_q_data_is_informative_and_covers_the_truth():
    mech, data, truth = logit_q_game(30, 30, 0)
    st = bd.fit(data, mech, "auto", method="nuts", n_bags=5, **NUTS)  # bagged intervals (the default)
    assert st.verdict == "informative", st.summary()
    assert st.info["robust"] == "bagging" and st.info["bagged"], st.info
    learners = st.table[st.table["kind"] == "learner"]["weight"].sum()
    assert learners > 0.5, st.summary()
    table = st.payoff_table(0.9)
    covered = (table["lower"] <= truth) & (truth <= table["upper"])  # bool[a_0, a_1, agent]
    # 7 free values (agent 0: cells (0, a_1); agent 1: cells (a_0, 0) and (a_0, 1); the others
    # follow from the centring). P(Binomial(7, 0.9) <= 4) = 0.026: at least 5 must be covered.
    free = np.concatenate([covered[0, :, 0], covered[:, :2, 1].ravel()])
    assert free.sum() >= 5, (table, truth)
    pairs = st.payoff_pairs(0.9)
    wrong = sure(pairs) & (np.sign(pairs["mean"]) != np.sign(_true_pairs(truth, pairs)))
    assert not wrong.any()


def _true_pairs(truth: np.ndarray, pairs) -> np.ndarray:
    """The true u_i(a, a_-i) - u_i(b, a_-i) of each row of a 2-agent pair table (literal loop)."""
    out = []
    for _, r in pairs.iterrows():
        i, opp, a, b = int(r["agent"]), int(r["opponents"]), int(r["a"]), int(r["b"])
        cell_a, cell_b = ((a, opp), (b, opp)) if i == 0 else ((opp, a), (opp, b))
        out.append(truth[(*cell_a, i)] - truth[(*cell_b, i)])
    return np.array(out)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ParetoKWarning")
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")
def test_auto_on_payoff_blind_data_abstains():
    data = payoff_blind(30, 30, 3)
    # unbagged: the abstention (>= 50% antithetic prior draws) does not depend on the intervals
    st = bd.fit(data, mechanisms.Tabular(GAME), "auto", method="nuts", robust=None, **NUTS)
    assert st.verdict in ("no_signal", "misspecified"), st.summary()
    assert not sure(st.payoff_pairs(0.9)).any()
