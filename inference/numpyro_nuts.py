"""NumPyro's NUTS run as one compiled program per chain (warm-up and sampling together).

``NUTSConfig(backend="numpyro")`` with sequential chains started at the MAP and no checkpoint.
The kernel is NumPyro's own (``numpyro.infer.hmc.hmc(potential_fn=..., algo="NUTS")``, the
functional form of ``numpyro.infer.NUTS``): the same multinomial NUTS, Stan's window adaptation
of the step size and mass matrix, the same random keys as ``MCMC.run`` with sequential chains
(so the same chains up to floating-point rounding). What differs is the driver: ``MCMC.run``
(on its progress-bar path, see ``samplers._discard_progress_output``) calls one compiled
iteration from Python per draw, formats a progress string from three device scalars (a host
round trip per iteration) and sets the kernel up op by op; here the kernel's initialisation, the
``num_warmup`` adaptation iterations (``lax.fori_loop``) and the ``num_samples`` draws
(``lax.scan``) are one program, compiled once and reused for every chain. On the 3 x 4 table
game (20 x 40, 2 x (500 + 500)) that removes ~0.14 ms of overhead per iteration and the
0.1 s set-up (``docs/performance.md``). Progress is reported per chain.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from tqdm.auto import tqdm

__all__ = ["STAT_FIELDS", "nuts_chain_program", "run_numpyro_nuts"]

#: Per-draw statistics returned (``numpyro.infer.hmc.HMCState`` fields, the names
#: ``samplers.run_nuts`` reads as NumPyro's extra fields).
STAT_FIELDS = ("diverging", "num_steps", "accept_prob", "energy", "potential_energy")


def nuts_chain_program(potential: Any, config: Any) -> Any:
    """``chain(key, z0) -> (start_finite, draws, stats)``: one NUTS chain from ``z0``, not jitted.

    ``key`` is the chain's key as ``MCMC.run`` hands it to ``NUTS.init`` (which splits it
    and keeps the first half for the kernel). ``start_finite`` tells whether the potential
    and its gradient are finite at ``z0``; ``draws`` is the position pytree with a leading
    axis of ``config.num_samples``, ``stats`` the :data:`STAT_FIELDS` of every draw.
    """
    init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
    num_warmup, num_samples = int(config.num_warmup), int(config.num_samples)

    def chain(key: jax.Array, z0: Any) -> tuple[jax.Array, Any, dict[str, jax.Array]]:
        key, _ = jax.random.split(key)  # as NUTS.init: the second half would initialise a model
        state = init_kernel(
            z0,
            num_warmup=num_warmup,
            step_size=1.0,
            adapt_step_size=True,
            adapt_mass_matrix=True,
            dense_mass=bool(config.dense_mass),
            target_accept_prob=float(config.target_accept),
            num_steps=None,
            trajectory_length=None,
            max_tree_depth=config.max_tree_depth,
            rng_key=key,
        )
        leaves = [state.potential_energy, *jax.tree.leaves(state.z_grad)]
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))

        def step(s, _):
            s = sample_kernel(s)
            return s, (s.z, {f: getattr(s, f) for f in STAT_FIELDS})

        # one loop over warm-up and sampling (the kernel adapts while its counter is below
        # num_warmup): one copy of the NUTS kernel in the program, not two (a fori_loop for
        # the warm-up and a scan for the draws took 0.25 s more to lower and load)
        _, (draws, stats) = jax.lax.scan(step, state, None, length=num_warmup + num_samples)
        draws, stats = jax.tree.map(lambda x: x[num_warmup:], (draws, stats))
        return finite, draws, stats

    return chain


def run_numpyro_nuts(
    potential: Any, start_z: Any, key: jax.Array, config: Any, *, progress: bool = True
) -> tuple[bool, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``config.num_chains`` chains one after another from ``start_z`` (one position pytree).

    Returns whether the start was finite (if not, nothing else: the first chain stops there),
    the unconstrained draws ``{site: [C, S, ...]}`` and
    the per-draw statistics ``[C, S]`` (:data:`STAT_FIELDS`). The chains' keys are
    ``jax.random.split(key, C)``, as ``MCMC.run`` derives them.
    """
    program = jax.jit(nuts_chain_program(potential, config))
    keys = jax.random.split(key, int(config.num_chains))
    draws, stats = [], []
    for k in tqdm(keys, desc="NUTS", unit="chain", disable=not progress):
        ok, z, st = jax.device_get(program(k, start_z))
        if not ok:  # the same start for every chain: no need to run the others
            return False, {}, {}
        draws.append(z)
        stats.append(st)
    stack = lambda *xs: np.stack(xs)  # noqa: E731
    return True, jax.tree.map(stack, *draws), jax.tree.map(stack, *stats)
