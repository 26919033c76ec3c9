"""Per-subject learner parameters (``"infer_subject"``): sites, exact likelihood, recovery.

A subject is an episode (one person of an hBayesDM file). Statistical checks use the
suite-wide false-failure budget 1e-3 over ~20 checks: Z = NormalDist().inv_cdf(1 - 1e-3 / 40).
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_likelihood as numpyro_log_likelihood

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.bandit import bandit_mechanism, example_hbayesdm_path
from bayes_diml.inference.spec import ModelSpec, initial_values
from bayes_diml.models import INFER_SUBJECT, Priors, population_summary

Z = NormalDist().inv_cdf(1 - 1e-3 / (2 * 20))
#: Matching pennies: the agents keep cycling, so each episode's learning rate shows all along.
PENNIES = jnp.array([[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]])
BETA, EPS = 3.0, 0.05


def subject_data(n_subjects: int, T: int, mu: float, sigma: float, seed: int = 0):
    """One episode of a 2 x 2 game per subject, ``logit alpha_s ~ N(mu, sigma)``; returns (data, alphas)."""
    rng = np.random.default_rng(seed)
    alphas = 1.0 / (1.0 + np.exp(-rng.normal(mu, sigma, n_subjects)))
    mech = mechanisms.Tabular((2, 2))
    episodes = [
        bd.simulate(mech, {"table": PENNIES}, bd.LogitQ(float(a), BETA, EPS), 1, T, seed + 1 + s)
        for s, a in enumerate(alphas)
    ]
    actions = np.concatenate([e.actions for e in episodes])
    return bd.Trajectories(actions, (2, 2)), alphas


def test_subject_sites_dims_and_initial_values():
    data, _ = subject_data(5, 6, -1.0, 0.5)
    spec = ModelSpec.build(data, mechanisms.Tabular((2, 2)), bd.LogitQ(INFER_SUBJECT, BETA, EPS), Priors())
    assert spec.latent_names == ["u0_free", "u1_free", "alpha_mu", "alpha_sigma", "alpha_z"]
    init = initial_values(spec, jax.random.key(0))
    assert init["alpha_z"].shape == (5,)
    trace = numpyro.handlers.trace(
        numpyro.handlers.substitute(numpyro.handlers.seed(spec.model(), 0), data=init)
    ).get_trace()
    assert trace["alpha"]["type"] == "deterministic" and trace["alpha"]["value"].shape == (5,)
    assert trace["alpha_z"]["fn"].batch_shape == (5,)
    assert trace["actions"]["fn"].batch_shape == (5, 5, 2)
    with pytest.raises(ValueError, match=r"'infer_subject'"):
        ModelSpec.build(data, mechanisms.Tabular((2, 2)), bd.LogitQ("infer_subjects", BETA, EPS), Priors())


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("subjects", [None, [5, 2, 5, 2]])
def test_each_episode_is_scored_with_its_own_subject_values(subjects):
    """The model's log-likelihood equals the core likelihood of each episode with its subject's alpha and eps.

    Without ``subjects`` every episode is a subject; with ``[5, 2, 5, 2]`` episodes 0 and 2 are
    subject 1 (label 5) and episodes 1 and 3 subject 0 (label 2).
    """
    data, _ = subject_data(4, 7, -1.0, 0.5, seed=3)
    ragged = bd.Trajectories(data.actions, data.n_actions, lengths=[7, 5, 7, 2], subjects=subjects)
    mech = mechanisms.Tabular((2, 2))
    spec = ModelSpec.build(ragged, mech, bd.LogitQ(INFER_SUBJECT, BETA, INFER_SUBJECT), Priors())
    z_alpha, z_eps = jnp.array([-1.0, 0.0, 0.5, 2.0]), jnp.array([0.3, -0.7, 1.1, 0.0])
    if subjects is not None:
        z_alpha, z_eps = z_alpha[:2], z_eps[:2]
    of = ragged.subject_index  # the subject of each episode
    start = initial_values(spec, jax.random.key(1), jitter=0.5)  # random payoff tables
    free = {k: start[k] for k in ("u0_free", "u1_free")}
    sites = {
        **free,
        "alpha_mu": jnp.asarray(-0.5),
        "alpha_sigma": jnp.asarray(0.8),
        "alpha_z": z_alpha,
        "eps_mu": jnp.asarray(-2.0),
        "eps_sigma": jnp.asarray(0.4),
        "eps_z": z_eps,
    }
    alphas = jax.nn.sigmoid(-0.5 + 0.8 * z_alpha)
    epss = jax.nn.sigmoid(-2.0 + 0.4 * z_eps)
    trace = numpyro.handlers.trace(
        numpyro.handlers.substitute(numpyro.handlers.seed(spec.model(), 0), data=sites)
    ).get_trace()
    table = trace["centred_payoffs"]["value"]  # the model's payoff table at these sites
    np.testing.assert_allclose(trace["alpha"]["value"], alphas, rtol=1e-6)
    per_episode = numpyro_log_likelihood(spec.model(), {k: v[None] for k, v in sites.items()}, batch_ndims=1)
    got = np.asarray(per_episode["actions"])[0] * ragged.scored_mask[:, :, None]
    for m in range(4):
        one = ragged.subset([m])
        want = bd.log_likelihood(
            mech, {"table": table}, bd.LogitQ(float(alphas[of[m]]), BETA, float(epss[of[m]])), one
        )
        np.testing.assert_allclose(got[m].sum(), float(want), rtol=1e-5)
    # one shared value would score them differently: the per-episode values are what is used
    first = bd.LogitQ(float(alphas[0]), BETA, float(epss[0]))
    shared = bd.log_likelihood(mech, {"table": table}, first, ragged)
    assert abs(float(shared) - got.sum()) > 1e-3


def test_per_subject_temperature_without_payoffs_is_refused():
    data, _ = subject_data(3, 5, -1.0, 0.5)
    with pytest.raises(ValueError, match=r"learner\.beta = 'infer_subject' needs observed payoffs"):
        ModelSpec.build(
            data, mechanisms.Tabular((2, 2)), bd.LogitQ(0.3, INFER_SUBJECT, EPS), Priors()
        ).model()()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_hbayesdm_subjects_fit_with_per_subject_alpha(tmp_path):
    """The shipped hBayesDM file, its 6 episodes grouped into 3 subjects: one alpha per subject.

    MAP runs; the fit saves and loads with its subjects.
    """
    raw = bd.read_hbayesdm(example_hbayesdm_path())
    data = bd.Trajectories(
        raw.actions, raw.n_actions, lengths=raw.lengths, payoffs=raw.payoffs, subjects=[0, 0, 1, 1, 2, 2]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAP convergence warnings are not the point here
        post = bd.fit(
            data,
            bandit_mechanism(3),
            bd.LogitQ(INFER_SUBJECT, "infer", "infer"),
            method="map",
            progress=False,
            # shapes, ranges and save / load are the point, not the optimum: one short restart
            num_steps=300,
            num_restarts=1,
        )
    alpha = post.draws("alpha")
    assert alpha.shape == (1, 3) and np.all((alpha > 0) & (alpha < 1))
    assert post.idata["posterior"]["alpha"].dims[-1] == "subject"
    assert post.learner_draws().alpha.shape == (1,)  # the typical subject: link^-1(alpha_mu)
    back = bd.load(post.save(tmp_path / "fit.nc"))
    np.testing.assert_array_equal(back.data.subjects, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(back.draws("alpha"), alpha)


@pytest.mark.slow
def test_population_of_subject_alphas_recovered_with_nuts():
    """24 subjects x 60 steps of matching pennies; logit alpha_s ~ N(logit 0.25, 0.6)."""
    mu, sigma = float(np.log(0.25 / 0.75)), 0.6
    data, alphas = subject_data(24, 60, mu, sigma, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bd.fit(
            data,
            mechanisms.Tabular((2, 2)),
            bd.LogitQ(INFER_SUBJECT, BETA, EPS),
            method="nuts",
            seed=0,
            progress=False,
            num_warmup=300,
            num_samples=300,
            num_chains=1,
        )
    pop = population_summary(post, "alpha")
    for name, truth in (("alpha_mu", mu), ("alpha_sigma", sigma)):
        d = post.draws(name)
        assert abs(d.mean() - truth) < Z * d.std(), (name, d.mean(), d.std(), truth)
    lo, hi = pop["median"][1:]
    assert lo < 0.25 < hi, pop["median"]
    per = post.draws("alpha")  # float[D, M]
    assert np.corrcoef(per.mean(0), alphas)[0, 1] > 0.5  # subjects are told apart
    # negative control: a population centred at logit 0.6 is far outside the interval
    d = post.draws("alpha_mu")
    assert abs(d.mean() - np.log(0.6 / 0.4)) > Z * d.std()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_nonfinite_diagnosis_runs_each_episode_with_its_subject_values():
    """The NaN diagnosis scores actions as the model does (3 subjects, 5 episodes, 2 agents)."""
    from bayes_diml.inference import diagnose_nonfinite

    data, _ = subject_data(5, 6, -1.0, 0.5)
    data = bd.Trajectories(data.actions, data.n_actions, subjects=[0, 1, 1, 2, 0])
    spec = ModelSpec.build(data, mechanisms.Tabular((2, 2)), bd.LogitQ(INFER_SUBJECT, BETA, EPS), Priors())
    values = initial_values(spec, jax.random.key(0), jitter=0.3)
    text, sites = diagnose_nonfinite(spec, values)
    assert text.startswith("The log density is finite") and sites == (), text
