"""Every matrix product of the built-in mechanisms and of the model asks for full float32 precision.

On the CPU float32 products are exact to float32 whatever is asked; on GPUs JAX's default is
TF32 (a 10-bit mantissa), which on an H100 moved the neural and count mechanisms' payoffs by up
to 2.5e-4 and the E7 MAP log joint by 6 nats against the CPU's (docs/gpu.md). The products'
requested precision is part of the traced program, so it is checked here, on any machine, by
reading every ``dot_general`` in the jaxpr (sub-programs of scan, jit, custom_jvp included).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest
from numpyro.infer.util import potential_energy, unconstrain_fn
from reference import MECHANISM_BUILDERS

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.inference.spec import ModelSpec, initial_values

FULL = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
#: user code (``mechanisms.Function``): its products are the user's (docs/gpu.md says how)
USER_DEFINED = {"function"}


def _subjaxprs(value):
    if hasattr(value, "eqns"):  # a jaxpr
        yield value
    elif hasattr(getattr(value, "jaxpr", None), "eqns"):  # a closed jaxpr
        yield value.jaxpr
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _subjaxprs(v)


def dot_precisions(fn, *args) -> list:
    """The ``precision`` parameter of every dot_general in the jaxpr of ``fn(*args)``."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(eqn.params["precision"])
            for value in eqn.params.values():
                for sub in _subjaxprs(value):
                    walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_the_walk_finds_default_and_full_precision_products():
    a = jnp.ones((3, 3))
    assert dot_precisions(lambda x: x @ x, a) == [None]
    inner = jax.jit(lambda x: jnp.matmul(x, x, precision=jax.lax.Precision.HIGHEST))
    assert dot_precisions(lambda x: jax.lax.scan(lambda c, _: (inner(c), None), x, None, 2)[0], a) == [FULL]


@pytest.mark.parametrize("name", sorted(set(MECHANISM_BUILDERS) - USER_DEFINED))
def test_mechanism_payoffs_use_full_precision(name):
    mech, params = MECHANISM_BUILDERS[name](jax.random.key(0))
    joints = jnp.asarray(mm.base.joint_profiles(mech.n_actions))
    found = dot_precisions(lambda p: mech.payoffs(p, joints), params)
    assert all(p == FULL for p in found), found
    if hasattr(mech, "count_payoffs"):
        K = mech.n_actions[0]
        own = jnp.arange(K)
        counts = jnp.zeros((K, K), jnp.int32).at[:, 0].set(len(mech.n_actions) - 1)
        found = dot_precisions(lambda p: mech.count_payoffs(p, own, counts), params)
        assert all(p == FULL for p in found), found


@pytest.mark.parametrize("name", ["e1", "e2", "e3", "e7"])
def test_environment_mechanisms_and_families_use_full_precision(name):
    env = bd.environments.make(name, n_episodes=2, T=3)
    joints = jnp.asarray(env.data.actions[0, :2])
    found = dot_precisions(lambda p: env.mechanism.payoffs(p, joints), env.params)
    if env.family is not None:
        found += dot_precisions(lambda p: env.family.payoffs(p, joints), env.family_params)
        sites = env.family.identified_sites() if hasattr(env.family, "identified_sites") else None
        if sites:
            zeros = {k: jnp.zeros(s) for k, s in sites.items()}
            found += dot_precisions(env.family.params_from_identified, zeros)
    assert found, "no matrix product found: the check would pass vacuously"
    assert all(p == FULL for p in found), found


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("mechanism", [mm.Tabular((3, 4)), mm.NeuralJoint((2, 3), width=4, depth=2)])
def test_model_potential_uses_full_precision(mechanism):
    truth = mechanism.init(jax.random.key(1))
    data = bd.simulate(mechanism, truth, bd.LogitQ(0.3, 2.0, 0.05), 2, 5, jax.random.key(2))
    spec = ModelSpec.build(data, mechanism, bd.LogitQ("infer", 2.0, "infer"), None)
    model = spec.model()
    z = unconstrain_fn(model, (), {}, initial_values(spec, jax.random.key(0)))
    found = dot_precisions(functools.partial(potential_energy, model, (), {}), z)
    found += dot_precisions(jax.grad(functools.partial(potential_energy, model, (), {})), z)
    assert found, "no matrix product found: the check would pass vacuously"
    assert all(p == FULL for p in found), found
