"""``LogitQ.log_prob`` / ``epsilon_mixture_at``: the selected entries of the full log-policy.

The likelihood uses them instead of picking from ``log_policy``; values and gradients must be
identical (same elementwise formula on fewer entries), including eps at 0 and 1, tiny
probabilities and padded actions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml.learners import epsilon_mixture, epsilon_mixture_at, masked_log_softmax

MASK = jnp.asarray(np.arange(4)[None, :] < np.array([3, 4])[:, None])  # n = 2 agents, K = (3, 4)


def _states(seed: int) -> jax.Array:
    q = jax.random.normal(jax.random.key(seed), (5, 2, 4))
    q = q.at[0, 1, 2].set(60.0)  # tiny probabilities elsewhere (log p < -30 at beta = 3)
    return jnp.where(MASK, q, 0.0)


def _actions(seed: int) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(np.stack([rng.integers(0, 3, 5), rng.integers(0, 4, 5)], axis=-1))


@pytest.mark.parametrize("eps", [0.0, 0.06, 1.0])
def test_log_prob_equals_picked_log_policy(x64, eps):
    q, a = _states(0).astype(jnp.float64), _actions(0)

    def full(q, beta, eps):
        lp = bd.LogitQ(0.3, beta, eps).log_policy(q, MASK)
        return jnp.take_along_axis(lp, a[..., None], axis=-1)[..., 0]

    def sel(q, beta, eps):
        return bd.LogitQ(0.3, beta, eps).log_prob(q, MASK, a)

    args = (q, jnp.asarray(3.0), jnp.asarray(eps))
    np.testing.assert_allclose(sel(*args), full(*args), rtol=1e-12, atol=0)
    g_full = jax.grad(lambda *x: full(*x).sum(), argnums=(0, 1, 2))(*args)
    g_sel = jax.grad(lambda *x: sel(*x).sum(), argnums=(0, 1, 2))(*args)
    for gf, gs in zip(g_full, g_sel, strict=True):
        # at eps = 1 with a tiny greedy probability both give a NaN d/d eps (existing behaviour
        # of epsilon_mixture's tiny-p branch); elsewhere the gradients are finite and equal
        if eps < 1.0:
            assert np.all(np.isfinite(gs))
        np.testing.assert_allclose(gs, gf, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_padded_action_has_probability_zero():
    lg = masked_log_softmax(jnp.zeros((2, 4)), MASK)
    out = epsilon_mixture_at(lg, 0.1, MASK, jnp.asarray([3, 3]))  # agent 0 has only 3 actions
    assert out[0] == -jnp.inf and np.isfinite(out[1])
    np.testing.assert_allclose(out[1], epsilon_mixture(lg, 0.1, MASK)[1, 3], rtol=1e-6)
