"""The linear Q recursion with its custom JVP (sequential and associative).

Both equal the generic scan in value and in every derivative.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import random_trajectories

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.recurrence import RECURRENCE_METHODS, linear_recurrence, resolve_recurrence

METHODS = pytest.mark.parametrize("method", ["sequential", "associative"])

# The recurrence compiled as one program: run op by op, the associative scan's slices at each
# level of its recursion are each compiled on their own (most of these tests' CPU time).
_jitted = jax.jit(linear_recurrence, static_argnames=("method",))


def _literal(q0, a, b, u):
    """Python loop over steps (float64 NumPy)."""
    q, out = np.array(q0, dtype=float), []
    for u_t in np.asarray(u):
        q = np.asarray(a) * q + np.asarray(b) * u_t
        out.append(q)
    return np.stack(out)


def _plain(q0, a, b, u):
    def step(q, u_t):
        q = a * q + b * u_t
        return q, q

    return jax.lax.scan(step, q0, u)[1]


def _inputs(seed=0, S=9, M=3, D=5):
    rng = np.random.default_rng(seed)
    q0 = jnp.asarray(rng.normal(size=(M, D)))
    a = jnp.asarray(rng.uniform(0.1, 0.9, size=D))
    b = jnp.asarray(rng.uniform(0.1, 0.9, size=D))
    u = jnp.asarray(rng.normal(size=(S, M, D)))
    return q0, a, b, u


@METHODS
@pytest.mark.parametrize("S", [1, 2, 9, 64, 100])
def test_values_equal_the_literal_loop(x64, method, S):
    """Lengths below, at and between powers of two (the associative scan's odd/even split).

    S = 100 halves through 50, 25 (odd), 12, 6, 3 (odd), 1: odd and even lengths at several
    levels, as a longer S would, with a shallower (cheaper to compile) recursion.
    """
    args = _inputs(S=S)
    np.testing.assert_allclose(
        np.asarray(_jitted(*args, method=method)), _literal(*args), rtol=1e-12, atol=1e-12
    )


@METHODS
def test_all_derivatives_equal_the_generic_scan(x64, method):
    """Reverse mode, forward mode and the Hessian of a nonlinear loss, wrt q0, a, b and u."""
    args = _inputs(seed=1)
    w = jnp.asarray(np.random.default_rng(2).normal(size=args[3].shape))

    def loss(f):
        return lambda *xs: jnp.sum(jnp.sin(f(*xs)) * w) + jnp.sum(f(*xs) ** 2) / 7

    def recurrence(*xs):
        return linear_recurrence(*xs, method=method)

    ours, plain = loss(recurrence), loss(_plain)
    # each transformation compiled as one program (op by op, it compiles many small ones)
    grads = [jax.jit(jax.grad(fn, argnums=(0, 1, 2, 3)))(*args) for fn in (ours, plain)]
    for g_ours, g_plain in zip(*grads, strict=True):
        assert np.any(np.abs(np.asarray(g_plain)) > 1e-3)
        np.testing.assert_allclose(np.asarray(g_ours), np.asarray(g_plain), rtol=1e-11, atol=1e-12)
    tangents = _inputs(seed=3)
    _, t_ours = jax.jit(lambda a, t: jax.jvp(recurrence, a, t))(args, tangents)
    _, t_plain = jax.jit(lambda a, t: jax.jvp(_plain, a, t))(args, tangents)
    np.testing.assert_allclose(np.asarray(t_ours), np.asarray(t_plain), rtol=1e-11, atol=1e-12)
    # second derivatives in the coefficients (as flat_directions needs): both blocks and their
    # cross terms from one Hessian program per function
    h_ours = jax.jit(jax.hessian(ours, argnums=(1, 2)))(*args)
    h_plain = jax.jit(jax.hessian(plain, argnums=(1, 2)))(*args)
    for x, y in zip(jax.tree_util.tree_leaves(h_ours), jax.tree_util.tree_leaves(h_plain), strict=True):
        assert x.shape == (5, 5)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-11)


@METHODS
def test_scalar_coefficients_and_vmap(x64, method):
    q0, _, _, u = _inputs(seed=4)
    alphas = jnp.asarray([0.2, 0.5, 1.0])
    out = jax.jit(jax.vmap(lambda al: linear_recurrence(q0, 1.0 - al, al, u, method)))(alphas)
    for k, al in enumerate(np.asarray(alphas)):
        np.testing.assert_allclose(np.asarray(out[k]), _literal(q0, 1.0 - al, al, u), rtol=1e-13, atol=1e-13)
    # alpha = 1: Q is the last payoff, and the derivative in alpha stays finite
    g = jax.jit(jax.grad(lambda al: linear_recurrence(q0, 1.0 - al, al, u, method).sum()))(1.0)
    assert np.isfinite(float(g))


def test_float32_long_horizon_methods_agree():
    """T = 10,000 in float32: the two summation orders agree to float32 rounding."""
    q0, a, b, u = _inputs(seed=6, S=10_000)
    q0, a, b, u = (jnp.asarray(x, jnp.float32) for x in (q0, a, b, u))
    seq = np.asarray(_jitted(q0, a, b, u, method="sequential"))
    par = np.asarray(_jitted(q0, a, b, u, method="associative"))
    exact = _literal(q0, a, b, u)
    scale = np.abs(exact).max()
    # each state is a geometrically weighted sum (weights < 1/(1 - max a) = 10) of O(1) terms:
    # float32 rounding bounds both errors by ~ 1e-5 of the largest state
    assert np.abs(seq - exact).max() <= 1e-5 * scale
    assert np.abs(par - exact).max() <= 1e-5 * scale


def test_auto_takes_sequential_on_cpu_and_associative_elsewhere(monkeypatch):
    assert RECURRENCE_METHODS == ("auto", "sequential", "associative")
    assert resolve_recurrence("auto") == ("sequential" if jax.default_backend() == "cpu" else "associative")
    for backend, expected in (("cpu", "sequential"), ("gpu", "associative"), ("tpu", "associative")):
        monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
        assert resolve_recurrence("auto") == expected
        assert resolve_recurrence("sequential") == "sequential"
        assert resolve_recurrence("associative") == "associative"


def test_unknown_method_raises_a_clear_error():
    q0, a, b, u = _inputs()
    with pytest.raises(
        ValueError, match="recurrence must be one of 'auto', 'sequential', 'associative'; got 'parallel'"
    ):
        linear_recurrence(q0, a, b, u, method="parallel")
    mech, params = mm.Tabular.from_table(np.zeros((2, 2, 2)))
    data = random_trajectories((2, 2), 2, 5, seed=0)
    with pytest.raises(ValueError, match="got 'fast'"):
        bd.log_likelihood(mech, params, bd.LogitQ(0.1, 1.0, 0.1), data, recurrence="fast")


def test_mismatched_shapes_raise_a_clear_error():
    q0, a, b, u = _inputs()
    with pytest.raises(
        ValueError, match=r"u must be float\[S, \*q0.shape\] = \[S, 3, 5\]; got q0 \(3, 5\) and u \(9, 5, 3\)"
    ):
        linear_recurrence(q0, a, b, jnp.swapaxes(u, 1, 2))
    with pytest.raises(ValueError, match="got q0 \\(3, 5\\) and u \\(\\)"):
        linear_recurrence(q0, a, b, jnp.float32(1.0))


class _GenericLogitQ(NamedTuple):
    """LogitQ without ``linear_update``: the likelihood takes its generic ``lax.scan`` path."""

    inner: Any

    def init_state(self, action_mask, dtype=None):
        return self.inner.init_state(action_mask, dtype)

    def update(self, state, counterfactual, actions):
        return self.inner.update(state, counterfactual, actions)

    def log_policy(self, state, action_mask):
        return self.inner.log_policy(state, action_mask)

    def log_prob(self, state, action_mask, actions):
        return self.inner.log_prob(state, action_mask, actions)


@METHODS
def test_likelihood_fast_path_equals_generic_path(x64, method):
    """Ragged episodes, per-agent learner parameters, with and without checkpointed segments."""
    mech, params = mm.Tabular.from_table(np.random.default_rng(5).normal(size=(2, 3, 4, 3)))
    data = random_trajectories((2, 3, 4), 5, 13, seed=5, lengths=[13, 4, 1, 9, 12])
    assert hasattr(bd.LogitQ(0.1, 1.0, 0.1), "linear_update")
    assert not hasattr(_GenericLogitQ(None), "linear_update")

    def f(wrap, segment):
        def ll(p, alpha, beta, eps):
            learner = bd.LogitQ(alpha, beta, eps)
            return bd.log_likelihood(mech, p, wrap(learner), data, segment_length=segment, recurrence=method)

        return jax.jit(jax.value_and_grad(ll, argnums=(0, 1, 2, 3)))

    args = (
        params,
        jnp.asarray([0.2, 0.55, 1.0]),
        jnp.asarray([1.5, 3.0, 0.7]),
        jnp.asarray([0.05, 0.2, 0.0]),
    )
    for segment in (0, 4):
        v_fast, g_fast = f(lambda lq: lq, segment)(*args)
        v_gen, g_gen = f(_GenericLogitQ, segment)(*args)
        np.testing.assert_allclose(float(v_fast), float(v_gen), rtol=1e-12)
        for x, y in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_gen), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("method", ["sequential", "associative"])
def test_likelihood_runs_the_recurrence_it_is_asked_for(method):
    """The likelihood's program holds a time scan only when the sequential recurrence is used."""
    mech, params = mm.Tabular.from_table(np.random.default_rng(7).normal(size=(3, 3, 2)))
    data = random_trajectories((3, 3), 4, 11, seed=7)

    def ll(p):
        return bd.log_likelihood(mech, p, bd.LogitQ(0.3, 2.0, 0.1), data, segment_length=0, recurrence=method)

    jaxpr = str(jax.make_jaxpr(jax.value_and_grad(ll))(params))
    assert ("scan[" in jaxpr) == (method == "sequential")
