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
    # compiled as whole programs (eager, each of the many small operations compiles on its own)
    np.testing.assert_allclose(jax.jit(sel)(*args), jax.jit(full)(*args), rtol=1e-12, atol=0)
    g_full = jax.jit(jax.grad(lambda *x: full(*x).sum(), argnums=(0, 1, 2)))(*args)
    g_sel = jax.jit(jax.grad(lambda *x: sel(*x).sum(), argnums=(0, 1, 2)))(*args)
    for gf, gs in zip(g_full[:2], g_sel[:2], strict=True):
        assert np.all(np.isfinite(gs))
        np.testing.assert_allclose(gs, gf, rtol=1e-10, atol=1e-12)
    # d/d eps of log((1 - eps) p + eps / K) is (1 / K - p) / ((1 - eps) p + eps / K), also at
    # eps = 0 and 1 and for tiny p (up to 1 / (K p) = 1e77 here, where the full policy's
    # tiny-p branch is not exact)
    p = jnp.exp(jnp.take_along_axis(masked_log_softmax(3.0 * q, MASK), a[..., None], axis=-1)[..., 0])
    k = jnp.asarray([3.0, 4.0])
    analytic = ((1.0 / k - p) / ((1.0 - eps) * p + eps / k)).sum()
    assert np.isfinite(float(g_sel[2]))
    np.testing.assert_allclose(float(g_sel[2]), float(analytic), rtol=1e-10)


def test_padded_action_has_probability_zero():
    lg = masked_log_softmax(jnp.zeros((2, 4)), MASK)
    out = epsilon_mixture_at(lg, 0.1, MASK, jnp.asarray([3, 3]))  # agent 0 has only 3 actions
    assert out[0] == -jnp.inf and np.isfinite(out[1])
    np.testing.assert_allclose(out[1], epsilon_mixture(lg, 0.1, MASK)[1, 3], rtol=1e-6)


FAMILY_LEARNERS = {
    "logit_q": bd.LogitQ(0.3, jnp.asarray([2.0, 3.5]), jnp.asarray([0.05, 0.2])),
    "bandit": bd.BanditQ(0.3, 2.5, 0.1),
    "hedge": bd.Hedge(0.7, jnp.asarray([0.0, 0.3])),
    "fp": bd.FictitiousPlay(4.0, 0.05, 2.0),
    "ewa": bd.EWA(0.9, 0.4, 0.5, jnp.asarray([3.0, 1.5]), 0.05, 1.0),
}


@pytest.mark.parametrize("family", list(FAMILY_LEARNERS))
def test_every_family_log_prob_and_learner_policy_match_categorical(x64, family):
    """``log_prob`` (per family) and ``LearnerPolicy`` equal ``Categorical(log_policy)``, with gradients."""
    import numpyro.distributions as dist

    from bayes_diml.likelihood import scan_states
    from bayes_diml.models import LearnerPolicy

    learner = FAMILY_LEARNERS[family]
    rng = np.random.default_rng(1)
    actions = jnp.asarray(np.stack([rng.integers(0, 3, (3, 7)), rng.integers(0, 4, (3, 7))], axis=-1))
    cf0 = jnp.where(MASK, jax.random.normal(jax.random.key(2), (3, 6, 2, 4), jnp.float64), 0.0)

    def scores(cf, policy):
        states = scan_states(learner, cf, actions[:, :-1], MASK)
        if policy == "learner":
            return LearnerPolicy(learner, states, MASK).log_prob(actions[:, 1:])
        lp = learner.log_policy(states, MASK)
        lp = jnp.where(jnp.isneginf(lp), jnp.finfo(lp.dtype).min, lp)
        return dist.Categorical(logits=lp).log_prob(actions[:, 1:])

    compiled = jax.jit(scores, static_argnums=1)  # one program each (eager: op by op)
    np.testing.assert_allclose(compiled(cf0, "learner"), compiled(cf0, "categorical"), rtol=1e-12, atol=1e-13)
    g_new = jax.jit(jax.grad(lambda c: scores(c, "learner").sum()))(cf0)
    g_ref = jax.jit(jax.grad(lambda c: scores(c, "categorical").sum()))(cf0)
    np.testing.assert_allclose(g_new, g_ref, rtol=1e-10, atol=1e-12)
    assert np.abs(np.asarray(g_new)).max() > 0
    # sampling forms the whole policy: draws stay within each agent's actions
    draws = LearnerPolicy(learner, scan_states(learner, cf0, actions[:, :-1], MASK), MASK).sample(
        jax.random.key(0), (50,)
    )
    assert draws.shape == (50, 3, 6, 2) and int(draws[..., 0].max()) <= 2 and int(draws[..., 1].max()) <= 3
