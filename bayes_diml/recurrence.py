"""The linear learner recursion ``Q(t) = a Q(t-1) + b u(t)`` with a cheap exact derivative.

``lax.scan`` differentiates this recursion generically: its reverse pass accumulates the
gradient of ``a`` and ``b`` inside the loop (a reduction per step). Here the tangent is
itself a linear recursion, ``dQ(t) = a dQ(t-1) + v(t)`` with ``v = da Q(t-1) + db u(t) + b du(t)``
formed for all steps at once, so reverse mode runs one backward recursion that carries only
``dQ`` and reduces over steps afterwards, vectorised. A ``custom_jvp`` (not ``custom_vjp``)
keeps forward mode and higher derivatives (Hessians) available.

Two ways to run the recursion, the same numbers up to float rounding:

- ``"sequential"``: one ``lax.scan`` step per time step. Fastest on a CPU, where a loop
  iteration is cheap.
- ``"associative"``: ``lax.associative_scan`` over the affine maps ``q -> a q + v(t)``,
  ``O(log S)`` steps of whole-array work (about twice the arithmetic). On a GPU each scan
  step costs kernel launches, and this is 3-20x faster than the sequential scan there
  (NVIDIA H100, value + gradient of the E2, table and E7 likelihoods; docs/gpu.md); on a
  2-core CPU it is 1.4-2.3x slower.

``"auto"`` (the default) takes ``"sequential"`` on the CPU backend and ``"associative"`` on
any other (GPU, TPU), by :func:`jax.default_backend` when the recursion is traced.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["linear_recurrence", "resolve_recurrence", "RECURRENCE_METHODS"]

#: Accepted values of ``method`` (``recurrence=`` in :mod:`bayes_diml.likelihood`).
RECURRENCE_METHODS = ("auto", "sequential", "associative")


def resolve_recurrence(method: str = "auto") -> str:
    """``"sequential"`` or ``"associative"``: ``"auto"`` by the default backend (CPU: sequential)."""
    if method not in RECURRENCE_METHODS:
        raise ValueError(
            f"recurrence must be one of {', '.join(map(repr, RECURRENCE_METHODS))}; got {method!r}."
        )
    if method == "auto":
        return "sequential" if jax.default_backend() == "cpu" else "associative"
    return method


def _sequential(q0: jax.Array, a: jax.Array, v: jax.Array) -> jax.Array:
    """States of ``q <- a q + v(t)``, one scan step per time step: float[S, *q0.shape]."""

    def step(q, v_t):
        q = a * q + v_t
        return q, q

    return jax.lax.scan(step, q0, v)[1]


def _associative(q0: jax.Array, a: jax.Array, v: jax.Array) -> jax.Array:
    """States of ``q <- a q + v(t)`` by a parallel prefix over affine maps: float[S, *q0.shape].

    The composition of ``q -> a1 q + v1`` then ``q -> a2 q + v2`` is ``(a1 a2, a2 v1 + v2)``;
    the prefix compositions ``(a^(t+1), sum_s a^(t-s) v(s))`` applied to ``q0`` give the states.
    Powers of ``|a| <= 1`` only shrink, so nothing overflows.
    """

    def compose(first, second):
        a1, v1 = first
        a2, v2 = second
        return a1 * a2, a2 * v1 + v2

    powers, sums = jax.lax.associative_scan(compose, (jnp.broadcast_to(a, v.shape), v))
    return powers * q0 + sums


def _run(q0: jax.Array, a: jax.Array, v: jax.Array, method: str) -> jax.Array:
    return (_associative if method == "associative" else _sequential)(q0, a, v)


def linear_recurrence(
    q0: jax.Array, a: jax.Array, b: jax.Array, u: jax.Array, method: str = "auto"
) -> jax.Array:
    """States after each step of ``Q <- a Q + b u(t)``: float[S, *shape].

    q0: float[*shape]; a, b: broadcastable to ``shape`` (constant over time);
    u: float[S, *shape]. ``method``: ``"sequential"``, ``"associative"`` or ``"auto"``
    (see the module docstring); value and derivatives agree to float rounding.
    """
    if jnp.ndim(u) < 1 or jnp.shape(u)[1:] != jnp.shape(q0):
        raise ValueError(
            f"linear_recurrence: u must be float[S, *q0.shape] = [S, {', '.join(map(str, jnp.shape(q0)))}]; "
            f"got q0 {jnp.shape(q0)} and u {jnp.shape(u)}."
        )
    return _linear_recurrence(resolve_recurrence(method), q0, a, b, u)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _linear_recurrence(method: str, q0: jax.Array, a: jax.Array, b: jax.Array, u: jax.Array) -> jax.Array:
    if method == "associative":
        return _associative(q0, a, b * u)

    # the same recursion as _sequential's, with b applied inside the loop: forming b * u for
    # all steps first measured 4-6% slower on the 60 x 200 table game's value+grad (CPU)
    def step(q, u_t):
        q = a * q + b * u_t
        return q, q

    return jax.lax.scan(step, q0, u)[1]


@_linear_recurrence.defjvp
def _linear_recurrence_jvp(method, primals, tangents):
    q0, a, b, u = primals
    dq0, da, db, du = tangents
    qs = _linear_recurrence(method, q0, a, b, u)
    q_prev = jnp.concatenate([q0[None], qs[:-1]], axis=0)
    v = da * q_prev + db * u + b * du
    return qs, _run(jnp.broadcast_to(dq0, qs.shape[1:]), a, v, method)
