"""The model with its data as arguments: same values as the closed model, programs shared by
fits of equal shapes, and a new program for anything that changes the model's structure."""

from __future__ import annotations

import logging
import warnings

import jax
import numpy as np
import pytest
from numpyro.infer.util import log_density

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ModelSpec
from bayes_diml.inference.spec import initial_values
from bayes_diml.models import BoundModel, ClosedModel, Priors, bind_model, logit_q_model
from bayes_diml.models.bound import ModelData

K = (2, 3)
TAB = mechanisms.Tabular(K)
TRUTH = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
FIT = bd.LogitQ(alpha="infer", beta=1.0, eps="infer")
NUTS = dict(num_warmup=40, num_samples=20, num_chains=2)


def _data(seed, episodes=6, T=10, payoffs=False):
    params = TAB.init(jax.random.key(11))
    return bd.simulate(TAB, params, TRUTH, n_episodes=episodes, T=T, key=seed, record_payoffs=payoffs)


class _Compiles(logging.Handler):
    """Names of the programs JAX compiles while active (``jax.log_compiles``)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Compiling jit("):
            self.names.append(msg[len("Compiling jit(") : msg.index(")")])


def _fit_compiles(data, learner=FIT, **kw):
    handler, logger = _Compiles(), logging.getLogger("jax")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings(), jax.log_compiles(True):
            warnings.simplefilter("ignore")  # short runs: diagnostics warn
            post = bd.fit(data, TAB, learner, method="nuts", seed=0, progress=False, **{**NUTS, **kw})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return post, handler.names


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_bound_model_has_the_closed_models_log_density():
    data = _data(0, payoffs=True)
    spec = ModelSpec.build(data, TAB, FIT, Priors())
    bound = spec.model()
    assert isinstance(bound, BoundModel)
    closed = ClosedModel(lambda: logit_q_model(data, spec.mechanism, FIT, Priors(), plan=spec.plan))
    start = initial_values(spec, jax.random.key(0), jitter=0.5)  # every latent site, off zero
    values = {k: np.asarray(v) for k, v in start.items()}
    a, _ = log_density(bound, (), {}, values)
    b, _ = log_density(closed, (), {}, values)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
    # and traced: the data as arguments of a jitted program give the same number
    c = jax.jit(lambda m, v: log_density(m, (), {}, v)[0])(bound, values)
    np.testing.assert_allclose(float(c), float(b), rtol=1e-5)
    # other data of the same shape: the same tree structure, another value
    other = ModelSpec.build(_data(1, payoffs=True), TAB, FIT, Priors()).model()
    assert jax.tree.structure(other) == jax.tree.structure(bound)
    assert float(log_density(other, (), {}, values)[0]) != pytest.approx(float(a))


def test_structure_changes_with_anything_but_the_data_values():
    base = ModelSpec.build(_data(0), TAB, FIT, Priors()).model()
    structure = jax.tree.structure(base)
    changed = {
        "shape": ModelSpec.build(_data(0, episodes=7), TAB, FIT, Priors()).model(),
        "learner value": ModelSpec.build(_data(0), TAB, FIT._replace(beta=2.0), Priors()).model(),
        "learner family": ModelSpec.build(_data(0), TAB, bd.Hedge(eta=1.0, eps="infer"), Priors()).model(),
        "priors": ModelSpec.build(_data(0), TAB, FIT, Priors(mechanism_scale=2.0)).model(),
        "observe": ModelSpec.build(_data(0), TAB, FIT, Priors()).model(observe=False),
    }
    for what, model in changed.items():
        same_shapes = jax.tree.map(np.shape, model) == jax.tree.map(np.shape, base)
        assert jax.tree.structure(model) != structure or not same_shapes, what


def test_a_learner_holding_arrays_closes_over_its_data():
    data = _data(0)
    learner = FIT._replace(q0=np.zeros((2, 3)))  # an array: no hash, no comparison by value
    model = bind_model(logit_q_model, data, ModelSpec.build(data, TAB, FIT, Priors()).plan, TAB, learner)
    assert isinstance(model, ClosedModel)


def test_model_data_keeps_what_the_model_reads():
    data = _data(0, payoffs=True)
    spec = ModelSpec.build(data, TAB, FIT, Priors())
    md = ModelData.of(data, spec.plan)
    np.testing.assert_array_equal(md.actions, data.actions)
    np.testing.assert_array_equal(md.scored_mask, data.scored_mask)
    np.testing.assert_array_equal(md.payoff_mask, np.isfinite(data.payoffs))
    assert md.n_actions == K and md.has_payoffs and md.plan.kind == spec.plan.kind
    np.testing.assert_array_equal(md.plan.action_mask, spec.plan.action_mask)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_fits_of_equal_shapes_share_their_programs_and_give_their_own_answers():
    jax.clear_caches()
    first, compiled_first = _fit_compiles(_data(0))
    second, compiled_second = _fit_compiles(_data(1))
    # the first fit compiles the chain, the starts, the constraint map (with the deterministic
    # sites) and the log-likelihood for LOO; the second (new data, same shapes) compiles none of them
    for name in ("_whole_chain", "_evaluate_draws", "_constrain", "_log_likelihood"):
        assert name in compiled_first, (name, compiled_first)
        assert name not in compiled_second, (name, compiled_second)
    a = np.asarray(first.idata["posterior"]["centred_payoffs"])
    b = np.asarray(second.idata["posterior"]["centred_payoffs"])
    assert a.shape == b.shape and not np.allclose(a, b)  # each fit answers for its own data
    # the same data refitted: the same draws (shared programs hold no state of the last fit)
    again, _ = _fit_compiles(_data(0))
    np.testing.assert_array_equal(np.asarray(again.idata["posterior"]["centred_payoffs"]), a)
    # a new shape compiles its own chain
    _, compiled_new = _fit_compiles(_data(0, episodes=7))
    assert "_whole_chain" in compiled_new


def test_laplace_draws_match_a_gaussian_and_flag_a_flat_direction():
    import numpyro
    import numpyro.distributions as dist

    from bayes_diml.inference.laplace import laplace_draws

    def gaussian():
        numpyro.sample("x", dist.Normal(1.0, 2.0))
        numpyro.sample("s", dist.LogNormal(0.5, 0.25))

    z0 = {"x": np.float32(1.0), "s": np.float32(0.5)}  # the mode, unconstrained (log s)
    draws, singular = laplace_draws(ClosedModel(gaussian), z0, jax.random.key(0), 1, 1e-6, 20_000)
    assert not bool(singular)
    # exact Gaussian in the unconstrained space: mean and sd within 4 Monte Carlo standard errors
    se = 2.0 / np.sqrt(20_000)
    assert abs(float(np.mean(draws["x"])) - 1.0) < 4 * se
    assert abs(float(np.std(draws["x"])) - 2.0) < 4 * 2.0 / np.sqrt(2 * 20_000)
    log_s = np.log(np.asarray(draws["s"]))  # s is drawn through its transform: log s ~ N(0.5, 0.25)
    assert abs(log_s.mean() - 0.5) < 4 * 0.25 / np.sqrt(20_000)

    def flat():
        x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.ImproperUniform(dist.constraints.real, (), ()))
        return x

    _, singular = laplace_draws(ClosedModel(flat), {"x": np.float32(0.0), "y": np.float32(0.0)},
                                jax.random.key(0), 1, 1e-6, 10)  # fmt: skip
    assert bool(singular)  # no curvature along y: refused by run_laplace, not drawn at the mode


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_svi_minibatches_reach_the_bound_model():
    """``SVIConfig(batch_size=B)`` passes ``batch_size`` through the bound model to the likelihood."""
    from numpyro.handlers import seed, trace

    from bayes_diml.inference import SVIConfig

    data = _data(0, episodes=8)
    model = ModelSpec.build(data, TAB, FIT, Priors()).model()
    site = trace(seed(model, 0)).get_trace(batch_size=3)["actions"]
    assert site["value"].shape[0] == 3 and site["scale"] == pytest.approx(8 / 3)
    post = bd.fit(data, TAB, FIT, method="svi", seed=0, progress=False,
                  config=SVIConfig(num_steps=30, batch_size=3, num_draws=20))  # fmt: skip
    assert np.asarray(post.idata["posterior"]["alpha"]).shape == (1, 20)
