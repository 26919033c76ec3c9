"""The MAP's compiled program, the start it hands to NUTS, and the model's compiled steps."""

from __future__ import annotations

import logging
import warnings

import jax
import numpy as np
import pytest
from numpyro.infer.util import constrain_fn

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import MAPConfig
from bayes_diml.inference.map import fit_map_spec
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors

LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)


@pytest.fixture(scope="module")
def spec():
    mech = mechanisms.Tabular((2, 3))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), LEARNER, n_episodes=4, T=8, key=1)
    # alpha and eps inferred: their starting values are scalars built from Python floats
    # (weakly typed in JAX), the case that used to compile the chunk program three times
    return ModelSpec.build(data, mech, bd.LogitQ("infer", 2.0, "infer"), Priors(mechanism_scale=1.0))


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def map_run(spec):
    """One MAP of ``spec`` (2 restarts x 5 chunks of 100 Adam steps, tol=0 so that every chunk
    runs) and the names of the jitted programs compiled while it ran."""
    config = MAPConfig(num_steps=500, chunk=100, num_restarts=2, tol=0.0)
    logger, handler = logging.getLogger("jax"), _Messages()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    jax.clear_caches()  # the chunk program is shared by fits of equal shapes: count this one's
    try:
        with warnings.catch_warnings(), jax.log_compiles(True):
            warnings.simplefilter("ignore")  # tol=0: "did not converge" is expected
            m = fit_map_spec(spec, jax.random.key(0), config, progress=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    prefix = "Compiling jit("
    names = [msg[len(prefix) : msg.index(")")] for msg in handler.messages if msg.startswith(prefix)]
    return names, m


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_map_compiles_its_chunk_program_once(map_run):
    """Five chunks of Adam steps run one compiled program: the first chunk's outputs have the
    types of its inputs (no retrace for weakly typed starting values)."""
    names = map_run[0]
    assert names.count("_run_chunk") == 1, names


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_map_result_carries_the_unconstrained_optimum(spec, map_run):
    m = map_run[1]  # convergence is not the point here
    assert set(m.unconstrained) == set(m.values)
    back = constrain_fn(spec.model(), (), {}, m.unconstrained)
    for name, value in m.values.items():
        np.testing.assert_allclose(np.asarray(back[name]), value, rtol=0, atol=0)
    assert m.unconstrained["alpha"].dtype == m.unconstrained["eps"].dtype == np.float32


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_lbfgs_and_adam_reach_the_same_map():
    """Both optimisers run through the same chunk program (L-BFGS carries a line-search state)
    and agree at an interior optimum (3 x 4 game, 20 x 40 steps: alpha ~ 0.25, eps ~ 0.06)."""
    mech = mechanisms.Tabular((3, 4))
    truth = mech.init(jax.random.key(1))
    data = bd.simulate(mech, truth, bd.LogitQ(alpha=0.25, beta=3.0, eps=0.06), 20, 40, jax.random.key(2))
    spec = ModelSpec.build(data, mech, bd.LogitQ("infer", 3.0, "infer"), Priors())
    fits = {
        opt: fit_map_spec(spec, jax.random.key(0), MAPConfig(optimizer=opt, num_restarts=1), progress=False)
        for opt in ("adam", "lbfgs")
    }
    assert all(f.converged for f in fits.values())
    # each stops when the objective (~940 nats) changes by < 1e-7 relative per 100 steps;
    # measured apart by 2e-4 nats, so 0.01 nats leaves room without hiding a wrong optimum
    assert abs(fits["adam"].log_joint - fits["lbfgs"].log_joint) < 0.01
    # the optimum is flat along eps (measured: eps 0.0482 vs 0.0496 for 2e-4 nats), so the
    # learner parameters are compared at a tolerance well inside their posterior sd
    # (eps 0.020, alpha 0.039 by NUTS on these data)
    for name in ("alpha", "eps"):
        np.testing.assert_allclose(fits["adam"].values[name], fits["lbfgs"].values[name], atol=0.005)


def test_unhashable_mechanism_takes_the_uncompiled_centred_payoffs(spec):
    """The model compiles ``payoff_differences`` with the mechanism as a static (hashed)
    argument; a mechanism that cannot be hashed gets the plain call and the same answer."""

    class Unhashable(mechanisms.Tabular):
        __hash__ = None

    mech, data = spec.mechanism, spec.data
    other = Unhashable(mech.n_actions)
    with pytest.raises(TypeError):
        hash(other)
    fits = {}
    for m in (mech, other):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MAP convergence of a short run
            fits[m is other] = bd.fit(
                data, m, LEARNER, "map", 0, priors=Priors(mechanism_scale=1.0), progress=False,
                log_likelihood=False, num_steps=200,
            )  # fmt: skip
    a, b = (np.asarray(f.idata["posterior"]["centred_payoffs"]) for f in fits.values())
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
