"""NUTS with BlackJAX: Stan's window adaptation and the No-U-Turn kernel on our potential.

``NUTSConfig(backend="blackjax")``. The sampler is the same algorithm as NumPyro's (multinomial
NUTS, diagonal or dense mass matrix, step size adapted to ``target_accept`` in Stan's
windows), run on the same unconstrained potential (``numpyro.infer.util.potential_energy``)
from the same starts (one dispersed point per chain, or the MAP). Warm-up and sampling are
each one compiled ``lax.scan`` over draws, compiled together on two threads before any draw is
taken, so the time spent compiling is known (``info["compile_seconds"]``) and the sampling time
is sampling alone.
Per leapfrog step both backends cost about the same once compiled (41 and 57 us on a 3 x 4
game, against ~250 us for PyMC; ``docs/performance.md``).

Chains run one after another (``"sequential"``: the compiled program is reused) or in
lockstep under ``vmap`` (``"vectorized"``). Progress is reported per chain: warm-up, then
sampling in ``PROGRESS_CHUNKS`` compiled chunks.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from bayes_diml.optional import require

__all__ = ["run_blackjax_nuts", "PROGRESS_CHUNKS"]

#: Sampling is split into this many compiled chunks (progress steps); the last one may run
#: a few surplus draws, which are discarded.
PROGRESS_CHUNKS = 10


def _import_blackjax():
    return require("blackjax", "blackjax", "NUTSConfig(backend='blackjax')")


def _programs(logdensity, z0, config):
    """Return jitted (warmup, sample) for one chain.

    ``warmup(key, z) -> (state, params)``; ``sample(state, params, keys[L]) -> (state, draws, stats)``.
    """
    blackjax = _import_blackjax()
    kernel_options = {"max_num_doublings": int(config.max_tree_depth)}
    dim = ravel_pytree(z0)[0].shape[0]

    def warmup(key, z):
        if config.num_warmup == 0:  # NumPyro's defaults without adaptation: step 1, identity mass
            params = {
                "step_size": jnp.asarray(1.0, _dtype_of(z)),
                "inverse_mass_matrix": jnp.eye(dim) if config.dense_mass else jnp.ones(dim),
            }
            return blackjax.nuts(logdensity, **params, **kernel_options).init(z), params
        adapt = blackjax.window_adaptation(
            blackjax.nuts,
            logdensity,
            is_mass_matrix_diagonal=not config.dense_mass,
            target_acceptance_rate=float(config.target_accept),
            adaptation_info_fn=blackjax.adaptation.base.get_filter_adapt_info_fn(),
            **kernel_options,
        )
        (state, params), _ = adapt.run(key, z, num_steps=int(config.num_warmup))
        return state, {k: params[k] for k in ("step_size", "inverse_mass_matrix")}

    def sample(state, params, keys):
        step = blackjax.nuts(logdensity, **params, **kernel_options).step

        def one(st, k):
            st, info = step(k, st)
            stats = {
                "diverging": info.is_divergent,
                "num_steps": info.num_integration_steps,
                "accept_prob": info.acceptance_rate,
                "energy": info.energy,
                "potential_energy": -st.logdensity,
            }
            return st, (st.position, stats)

        state, (draws, stats) = jax.lax.scan(one, state, keys)
        return state, draws, stats

    return warmup, sample


def _dtype_of(z: Any):
    """Return the float dtype of a position pytree."""
    return jnp.result_type(*jax.tree.leaves(z))


def _compile_both(warmup_fn, sample_fn, key, z, keys):
    """Compile the warm-up and the sampling program at once, on two threads.

    XLA compiles each NUTS program for seconds (two tree builders around the model's
    gradient) and releases the GIL while it does, so the two compilations overlap.
    """
    state, params = jax.eval_shape(warmup_fn, key, z)
    with ThreadPoolExecutor(max_workers=1) as pool:
        sampling = pool.submit(lambda: sample_fn.lower(state, params, keys).compile())
        warming = warmup_fn.lower(key, z).compile()
        return warming, sampling.result()


def _timed(fn, *args):
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def run_blackjax_nuts(
    potential: Any, starts: Any, key: jax.Array, config: Any, *, progress: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """Warm up and sample ``config.num_chains`` chains, chain ``c`` from ``starts[c]``.

    ``starts``: a position pytree whose leaves hold one start per chain ([C, ...]).

    Returns unconstrained draws ``{site: [C, S, ...]}``, per-draw statistics ``[C, S]``
    (``diverging``, ``num_steps``, ``accept_prob``, ``energy``, ``potential_energy``, the
    names :func:`~bayes_diml.inference.samplers.run_nuts` reads from NumPyro) and the
    seconds spent tracing and compiling.
    """

    def logdensity(z):
        return -potential(z)

    first = jax.tree.map(lambda x: x[0], starts)
    warmup, sample = _programs(logdensity, first, config)
    C, S = int(config.num_chains), int(config.num_samples)
    L = -(-S // min(PROGRESS_CHUNKS, S))  # draws per compiled chunk
    n_chunks = -(-S // L)
    k_warm, k_draw = jax.random.split(key)
    warm_keys = jax.random.split(k_warm, C)
    draw_keys = jax.random.split(k_draw, C * n_chunks * L).reshape(C, n_chunks, L)
    vectorized = config.chain_method == "vectorized"
    if vectorized:  # one group of C chains in lockstep
        groups = [(warm_keys, draw_keys, starts)]
        (warmup_fn, sample_fn), compile_s = _timed(_compile_both, jax.jit(jax.vmap(warmup)),
                                                   jax.jit(jax.vmap(sample)), warm_keys, starts,
                                                   draw_keys[:, 0])  # fmt: skip
    else:  # C groups of one chain, one compiled program
        groups = [(warm_keys[c], draw_keys[c], jax.tree.map(lambda x, c=c: x[c], starts)) for c in range(C)]
        (warmup_fn, sample_fn), compile_s = _timed(_compile_both, jax.jit(warmup), jax.jit(sample),
                                                   warm_keys[0], first, draw_keys[0, 0])  # fmt: skip
    width = C if vectorized else 1
    draws, stats = [], []
    with tqdm(total=C * (1 + n_chunks), desc="NUTS (BlackJAX)", unit="step", disable=not progress) as bar:
        for g, (k_w, k_d, z_in) in enumerate(groups):
            bar.set_postfix_str("chains" if vectorized else f"chain {g + 1}/{C}")
            state, params = warmup_fn(k_w, z_in)
            bar.update(width)
            parts = []
            for j in range(n_chunks):
                state, z, st = sample_fn(state, params, k_d[:, j] if vectorized else k_d[j])
                parts.append(jax.device_get((z, st)))
                bar.update(width)
            draw_axis = 1 if vectorized else 0
            z, st = jax.tree.map(lambda *xs, a=draw_axis: np.concatenate(xs, axis=a), *parts)
            if not vectorized:
                z, st = jax.tree.map(lambda x: x[None], (z, st))
            draws.append(z)
            stats.append(st)
    z = jax.tree.map(lambda *xs: np.concatenate(xs, axis=0)[:, :S], *draws)
    st = jax.tree.map(lambda *xs: np.concatenate(xs, axis=0)[:, :S], *stats)
    return z, st, compile_s
