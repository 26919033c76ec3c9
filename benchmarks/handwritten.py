"""Hand-specialised JAX log-likelihoods, one per benchmarked mechanism (benchmark baselines).

Each is a minimal direct ``jnp`` implementation of DIML eq. (5) for *one* mechanism,
written the way one would by hand for that game alone: no plan objects, no masks beyond
what the game needs, the naive ``log((1 - eps) softmax(beta Q) + eps / K)`` policy, and
the counterfactual payoffs computed in the cheapest way the mechanism allows:

- ``tabular_2p``: two players; ``u_0(k, a_1) = table[k, a_1, 0]`` and
  ``u_1(k, a_0) = table[a_0, k, 1]`` are slices of the table, one scan per agent;
- ``congestion``: elementwise from the others' route counts (no gather at all);
- ``symmetric_count``: the network evaluated on the distinct opponent-count vectors
  (precomputed from the data, as any implementation must) and gathered.

Every function takes ``(params, alpha, beta, eps)`` and returns the scalar
log-likelihood; the arrays that depend only on the data are closed over. Each builder
returns two variants: ``"scan"`` (the policy computed inside the scan step) and
``"scan-q"`` (only the linear Q recurrence is scanned; the policy is vectorised over all
steps afterwards). The benchmark reports the faster one as "hand-specialised JAX".
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["HANDWRITTEN", "tabular_2p", "congestion", "symmetric_count"]

LogLik = Callable[..., jax.Array]


def _scan_q(u: jax.Array, alpha: jax.Array) -> jax.Array:
    """Q after each step: u float[M, S, ..., K] -> float[M, S, ..., K] (Q(0) = 0)."""

    def step(q, u_t):
        q = (1.0 - alpha) * q + alpha * u_t
        return q, q

    _, qs = jax.lax.scan(step, jnp.zeros_like(u[:, 0]), jnp.swapaxes(u, 0, 1))
    return jnp.swapaxes(qs, 0, 1)


def _log_pi(q: jax.Array, beta, eps, n_choices: int) -> jax.Array:
    """Naive log((1 - eps) softmax(beta Q) + eps / K) over the last axis."""
    return jnp.log((1.0 - eps) * jax.nn.softmax(beta * q, axis=-1) + eps / n_choices)


def _pick(logp: jax.Array, nxt: jax.Array) -> jax.Array:
    return jnp.take_along_axis(logp, nxt[..., None], axis=-1)[..., 0]


def _loglik_scan_policy(u, nxt, alpha, beta, eps, n_choices: int) -> jax.Array:
    """Policy inside the scan step: u float[M, S, ..., K], nxt int[M, S, ...]."""

    def step(q, inputs):
        u_t, a_t = inputs
        q = (1.0 - alpha) * q + alpha * u_t
        return q, _pick(_log_pi(q, beta, eps, n_choices), a_t).sum()

    _, terms = jax.lax.scan(step, jnp.zeros_like(u[:, 0]), (jnp.swapaxes(u, 0, 1), jnp.swapaxes(nxt, 0, 1)))
    return terms.sum()


def _loglik_scan_q(u, nxt, alpha, beta, eps, n_choices: int) -> jax.Array:
    """Only Q scanned; the policy vectorised afterwards."""
    return _pick(_log_pi(_scan_q(u, alpha), beta, eps, n_choices), nxt).sum()


_VARIANTS = {"scan": _loglik_scan_policy, "scan-q": _loglik_scan_q}


def tabular_2p(actions: np.ndarray) -> dict[str, LogLik]:
    """Two-player table game, params ``{"table": float[K_0, K_1, 2]}``; actions int[M, T, 2]."""
    a = jnp.asarray(actions)
    prev0, prev1 = a[:, :-1, 0], a[:, :-1, 1]
    next0, next1 = a[:, 1:, 0], a[:, 1:, 1]

    def make(variant):
        def loglik(params, alpha, beta, eps):
            table = params["table"]
            k0, k1 = table.shape[0], table.shape[1]
            u0 = jnp.swapaxes(table[:, :, 0], 0, 1)[prev1]  # [M, S, K_0]: table[k, a_1, 0]
            u1 = table[:, :, 1][prev0]  # [M, S, K_1]: table[a_0, k, 1]
            return variant(u0, next0, alpha, beta, eps, k0) + variant(u1, next1, alpha, beta, eps, k1)

        return loglik

    return {name: make(v) for name, v in _VARIANTS.items()}


def congestion(actions: np.ndarray, n_choices: int) -> dict[str, LogLik]:
    """E2 congestion, params ``{"c1", "c2", "toll": float[K]}``; actions int[M, T, n]."""
    onehot = np.eye(n_choices)[np.asarray(actions)[:, :-1]]  # [M, S, n, K]
    load_np = onehot.sum(-2, keepdims=True) - onehot + 1.0  # others on route k, plus me
    nxt = jnp.asarray(actions[:, 1:])

    def make(variant):
        def loglik(params, alpha, beta, eps):
            load = jnp.asarray(load_np, dtype=params["c1"].dtype)
            u = -(params["c1"] * load + params["c2"] * load**2) + params["toll"] * load
            return variant(u, nxt, alpha, beta, eps, n_choices)

        return loglik

    return {name: make(v) for name, v in _VARIANTS.items()}


def symmetric_count(actions: np.ndarray, n_agents: int, n_choices: int) -> dict[str, LogLik]:
    """E7 ``SymmetricCount`` (ReLU MLP on [embed(own), others' shares]); actions int[M, T, n]."""
    onehot = np.eye(n_choices, dtype=np.int64)[np.asarray(actions)[:, :-1]]  # [M, S, n, K]
    others = onehot.sum(-2, keepdims=True) - onehot
    uniq, inverse = np.unique(others.reshape(-1, n_choices), axis=0, return_inverse=True)
    index = jnp.asarray(inverse.reshape(others.shape[:-1]).astype(np.int32))  # [M, S, n]
    nxt = jnp.asarray(actions[:, 1:])

    def make(variant):
        def loglik(params, alpha, beta, eps):
            dtype = params["embed"].dtype
            shares = jnp.asarray(uniq, dtype) / max(n_agents - 1, 1)  # [U, K]
            layers = params["layers"]
            # first layer split into its embedding and share parts: [U, K_own, width]
            d = params["embed"].shape[1]
            w0 = layers[0]["w"]
            h = (params["embed"] @ w0[:d])[None, :, :] + (shares @ w0[d:])[:, None, :] + layers[0]["b"]
            h = jax.nn.relu(h)
            for layer in layers[1:-1]:
                h = jax.nn.relu(h @ layer["w"] + layer["b"])
            rows = (h @ layers[-1]["w"] + layers[-1]["b"])[..., 0]  # [U, K_own]
            return variant(rows[index], nxt, alpha, beta, eps, n_choices)

        return loglik

    return {name: make(v) for name, v in _VARIANTS.items()}


HANDWRITTEN = {"tabular_2p": tabular_2p, "congestion": congestion, "symmetric_count": symmetric_count}
