"""Vectorised fits for simulation-based calibration: many data sets, one compiled program.

A calibration study fits the *same* model to hundreds of data sets of the same shape.
Fitting them one by one through :func:`bayes_diml.fit` recompiles the model for every
data set (the data are constants of the compiled program). Here the data are *arguments*:
the logit-Q model of :mod:`bayes_diml.models.logit_q` is restated with the data set
(``actions``, the counterfactual index of its table plan and, optionally, ``payoffs``)
as traced inputs (its prior and observation sites are the model's own functions), and
NumPyro's functional NUTS (``numpyro.infer.hmc.hmc``) or SVI is ``jax.vmap``-ed over data
sets and chains and compiled once.

Only complete episodes (no padding) of a ``Tabular`` mechanism (a table plan) are
supported; :func:`sbc_model` is checked against ``logit_q_model`` in the tests (same log
density at random points), so calibrating this path calibrates the package's model.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO, init_to_median
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from numpyro.optim import optax_to_numpyro

from bayes_diml.counterfactual import CounterfactualPlan, action_mask, make_plan
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import joint_profiles
from bayes_diml.models import observe_trajectories, sample_learner, sample_mechanism

__all__ = ["sbc_model", "table_index", "nuts_batch", "svi_batch"]


def table_index(mechanism: Any, actions: np.ndarray, n_actions: tuple[int, ...]) -> np.ndarray:
    """Counterfactual index of the table plan: int[B, M, T-1, n, K] for ``actions: int[B, M, T, n]``."""
    return np.stack([make_plan(mechanism, a[:, :-1], n_actions, kind="table").index for a in actions])


def sbc_model(
    actions: jax.Array,
    index: jax.Array,
    payoffs: jax.Array | None,
    *,
    mechanism: Any,
    learner: LogitQ,
    priors: Any,
    n_actions: tuple[int, ...],
) -> None:
    """Run ``logit_q_model`` for complete episodes with the data as traced arguments.

    actions: int[M, T, n]; index: int[M, T-1, n, K] (table plan); payoffs: float[M, T, n] or None.
    The mechanism's and learner's sites and the observation block are the model's own
    (:func:`~bayes_diml.models.sample_mechanism`, :func:`~bayes_diml.models.sample_learner`,
    :func:`~bayes_diml.models.observe_trajectories`).
    """
    n = actions.shape[-1]
    params = sample_mechanism(mechanism, priors)
    lq = sample_learner(learner, priors, n, n_actions=n_actions)
    plan = CounterfactualPlan("table", joint_profiles(n_actions), index, action_mask(n_actions))
    observe_trajectories(mechanism, params, lq, plan, actions, priors, payoffs=payoffs)


def _model(mechanism, learner, priors, n_actions):
    return functools.partial(
        sbc_model, mechanism=mechanism, learner=learner, priors=priors, n_actions=tuple(n_actions)
    )


def _repeat(x: np.ndarray | None, chains: int) -> np.ndarray | None:
    return None if x is None else np.repeat(np.asarray(x), chains, axis=0)


@functools.lru_cache(maxsize=8)
def _nuts_runner(
    mechanism,
    learner,
    priors,
    n_actions,
    with_payoffs,
    num_warmup,
    num_samples,
    target_accept,
    max_tree_depth,
):
    """Jitted ``(keys, actions, index, payoffs) -> (draws, divergences, steps)``, built once per setting."""
    model = _model(mechanism, learner, priors, n_actions)
    M_T_n = (1, 2, len(n_actions))
    a0 = jnp.zeros(M_T_n, jnp.int32)
    i0 = jnp.asarray(table_index(mechanism, np.zeros((1, *M_T_n), np.int64), n_actions)[0])
    p0 = jnp.zeros(M_T_n) if with_payoffs else None
    info, pot_gen, post_gen, _ = initialize_model(
        jax.random.key(0),
        model,
        model_args=(a0, i0, p0),
        dynamic_args=True,
        init_strategy=init_to_median(num_samples=15),
    )
    z0 = info.z  # the prior median: independent of the data
    init_kernel, sample_kernel = hmc(potential_fn_gen=pot_gen, algo="NUTS")

    def one(key, a, idx, p):
        args = (a, idx, p)
        state = init_kernel(
            z0,
            num_warmup,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            model_args=args,
            rng_key=jax.random.wrap_key_data(key),
        )

        def body(s, _):
            s = sample_kernel(s, model_args=args)
            return s, (s.z, s.diverging, s.num_steps)

        _, (zs, div, steps) = jax.lax.scan(body, state, None, length=num_warmup + num_samples)
        zs = jax.tree_util.tree_map(lambda x: x[num_warmup:], zs)
        constrained = jax.vmap(post_gen(*args))(zs)
        return constrained, div[num_warmup:].sum(), steps[num_warmup:].mean()

    return jax.jit(jax.vmap(one))


def _keys(seeds: np.ndarray, repeat: int = 1) -> jax.Array:
    keys = jnp.stack([jax.random.key_data(jax.random.key(int(s))) for s in seeds])
    return jnp.repeat(keys, repeat, axis=0)


def nuts_batch(
    mechanism: Any,
    learner: LogitQ,
    priors: Any,
    n_actions: tuple[int, ...],
    actions: np.ndarray,
    payoffs: np.ndarray | None,
    seeds: np.ndarray,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    target_accept: float = 0.85,
    max_tree_depth: int = 8,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """NUTS on B data sets at once (vmap over data sets x chains, compiled once per setting).

    Every chain starts at the prior median and adapts step size and a diagonal mass matrix
    over ``num_warmup`` iterations. actions: int[B, M, T, n]; payoffs: float[B, M, T, n] or
    None; seeds: int[B]. Returns ``(draws, stats)``: draws name -> float[B, C, S, ...]
    (constrained latent sites); stats ``diverging`` int[B], ``mean_steps`` float[B].
    """
    B = actions.shape[0]
    index = table_index(mechanism, actions, n_actions)
    run = _nuts_runner(
        mechanism,
        learner,
        priors,
        tuple(n_actions),
        payoffs is not None,
        int(num_warmup),
        int(num_samples),
        float(target_accept),
        int(max_tree_depth),
    )
    out, div, steps = run(
        _keys(seeds, num_chains),
        jnp.asarray(_repeat(actions, num_chains)),
        jnp.asarray(_repeat(index, num_chains)),
        None if payoffs is None else jnp.asarray(_repeat(payoffs, num_chains)),
    )
    draws = {k: np.asarray(v).reshape(B, num_chains, num_samples, *np.shape(v)[2:]) for k, v in out.items()}
    stats = {
        "diverging": np.asarray(div).reshape(B, num_chains).sum(1),
        "mean_steps": np.asarray(steps).reshape(B, num_chains).mean(1),
    }
    return draws, stats


@functools.lru_cache(maxsize=8)
def _svi_runner(
    mechanism, learner, priors, n_actions, with_payoffs, guide, rank, num_steps, learning_rate, num_draws
):
    model = _model(mechanism, learner, priors, n_actions)
    init = init_to_median(num_samples=15)
    if guide == "normal":
        g = AutoNormal(model, init_loc_fn=init, init_scale=0.05)
    elif guide == "lowrank":
        g = AutoLowRankMultivariateNormal(model, init_loc_fn=init, rank=rank, init_scale=0.05)
    else:
        raise ValueError(f"guide must be 'normal' or 'lowrank'; got {guide!r}.")
    svi = SVI(model, g, optax_to_numpyro(optax.adam(learning_rate)), Trace_ELBO())
    M_T_n = (1, 2, len(n_actions))
    a0 = jnp.zeros(M_T_n, jnp.int32)
    i0 = jnp.asarray(table_index(mechanism, np.zeros((1, *M_T_n), np.int64), n_actions)[0])
    # set the guide's prototype up eagerly on concrete data (no tracers stored on the guide);
    # its initial locations are the prior medians, which do not depend on the data
    svi.init(jax.random.key(0), a0, i0, jnp.zeros(M_T_n) if with_payoffs else None)

    def one(key, a, idx, p):
        k0, k1 = jax.random.split(jax.random.wrap_key_data(key))
        state = svi.init(k0, a, idx, p)

        def body(s, _):
            s, loss = svi.stable_update(s, a, idx, p)
            return s, loss

        state, losses = jax.lax.scan(body, state, None, length=num_steps)
        draws = g.sample_posterior(k1, svi.get_params(state), sample_shape=(num_draws,))
        return draws, losses[-min(100, num_steps) :].mean()

    return jax.jit(jax.vmap(one))


def svi_batch(
    mechanism: Any,
    learner: LogitQ,
    priors: Any,
    n_actions: tuple[int, ...],
    actions: np.ndarray,
    payoffs: np.ndarray | None,
    seeds: np.ndarray,
    *,
    guide: str = "normal",
    rank: int | None = None,
    num_steps: int = 3000,
    learning_rate: float = 0.01,
    num_draws: int = 1000,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """SVI (AutoNormal or AutoLowRankMultivariateNormal) on B data sets at once.

    Returns ``(draws, stats)``: draws name -> float[B, 1, num_draws, ...]; stats
    ``final_loss`` float[B] (mean of the last 100 ELBO losses).
    """
    index = table_index(mechanism, actions, n_actions)
    run = _svi_runner(
        mechanism,
        learner,
        priors,
        tuple(n_actions),
        payoffs is not None,
        guide,
        rank,
        int(num_steps),
        float(learning_rate),
        int(num_draws),
    )
    out, loss = run(
        _keys(seeds),
        jnp.asarray(actions),
        jnp.asarray(index),
        None if payoffs is None else jnp.asarray(payoffs),
    )
    draws = {k: np.asarray(v)[:, None] for k, v in out.items() if k not in ("actions", "payoffs")}
    return draws, {"final_loss": np.asarray(loss)}
