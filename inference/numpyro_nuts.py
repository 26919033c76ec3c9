"""NumPyro's NUTS run as compiled programs per chain (warm-up and sampling together).

``NUTSConfig(backend="numpyro")`` with sequential chains started at dispersed points or the MAP
(``init="dispersed"`` or ``"map"``) and no checkpoint.
The kernel is NumPyro's own (``numpyro.infer.hmc.hmc(potential_fn=..., algo="NUTS")``, the
functional form of ``numpyro.infer.NUTS``): the same multinomial NUTS, Stan's window adaptation
of the step size and mass matrix, the same random keys as ``MCMC.run`` with sequential chains
(so the same chains up to floating-point rounding). What differs is the driver: ``MCMC.run``
(on its progress-bar path, see ``samplers._discard_progress_output``) calls one compiled
iteration from Python per draw, formats a progress string from three device scalars (a host
round trip per iteration) and sets the kernel up op by op; here the kernel's initialisation is
one compiled program and the ``num_warmup + num_samples`` iterations one ``lax.scan``, both
compiled once and reused for every chain. On the 3 x 4 table game (20 x 40, 2 x (500 + 500))
that removes ~0.14 ms of overhead per iteration and the 0.1 s set-up (``docs/performance.md``).
With a progress bar the iterations run in about :data:`PROGRESS_CHUNKS` calls of one compiled
chunk after a compiled initialisation (the bar moves between them; no host callback inside the
program, which would keep it out of JAX's persistent cache on some versions); without one, each
chain is a single program and call. Either way the
kernel runs the same sequence of iterations.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from tqdm.auto import tqdm

from .programs import as_program_argument

__all__ = [
    "STAT_FIELDS",
    "PROGRESS_CHUNKS",
    "ChainSettings",
    "chunk_length",
    "nuts_chain_programs",
    "run_numpyro_nuts",
]

#: Per-draw statistics returned (``numpyro.infer.hmc.HMCState`` fields, the names
#: ``samplers.run_nuts`` reads as NumPyro's extra fields).
STAT_FIELDS = ("diverging", "num_steps", "accept_prob", "energy", "potential_energy")

#: About how many times per chain a progress bar is updated.
PROGRESS_CHUNKS = 20


def chunk_length(num_iterations: int, progress: bool) -> int:
    """Return the iterations per compiled call.

    All of them without a progress bar; with one, a divisor of ``num_iterations`` giving 20-40
    (else 5-19) calls when there is one, else ``ceil(n / 20)`` (then the last call is shorter
    and compiles a second program).
    """
    n = int(num_iterations)
    if not progress or n <= PROGRESS_CHUNKS:
        return max(n, 1)
    for calls in (*range(PROGRESS_CHUNKS, 2 * PROGRESS_CHUNKS + 1), *range(PROGRESS_CHUNKS - 1, 4, -1)):
        if n % calls == 0:
            return n // calls
    return -(-n // PROGRESS_CHUNKS)


def nuts_chain_programs(potential: Any, config: Any) -> tuple[Any, Any]:
    """``(init, advance)``, not jitted: one NUTS chain of NumPyro's kernel, in steps.

    ``init(key, z0) -> (start_finite, state)``: ``key`` is the chain's key as ``MCMC.run`` hands
    it to ``NUTS.init`` (which splits it and keeps the first half for the kernel);
    ``start_finite`` tells whether the potential and its gradient are finite at ``z0``.
    ``advance(state, length) -> (state, (positions, stats))``: ``length`` (static) iterations,
    warm-up or sampling as the kernel's own counter says (it adapts while the counter is below
    ``config.num_warmup``; ``config``: a ``NUTSConfig`` or :class:`ChainSettings`);
    ``positions`` is the position pytree and ``stats`` the
    :data:`STAT_FIELDS`, each with a leading axis of ``length``.
    """
    init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
    num_warmup = int(config.num_warmup)

    def init(key: jax.Array, z0: Any) -> tuple[jax.Array, Any]:
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
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])), state

    def advance(state: Any, length: int) -> tuple[Any, tuple[Any, dict[str, jax.Array]]]:
        def step(s, _):
            s = sample_kernel(s)
            return s, (s.z, {f: getattr(s, f) for f in STAT_FIELDS})

        # one loop over warm-up and sampling: one copy of the NUTS kernel in the program, not
        # two (a fori_loop for the warm-up and a scan for the draws took 0.25 s more to lower
        # and load on the small default benchmark)
        return jax.lax.scan(step, state, None, length=length)

    return init, advance


class ChainSettings(NamedTuple):
    """What a compiled NUTS chain depends on besides the potential (hashable: a static argument)."""

    num_warmup: int
    dense_mass: bool
    target_accept: float
    max_tree_depth: Any

    @classmethod
    def of(cls, config: Any) -> ChainSettings:
        """Return the settings of a ``NUTSConfig``."""
        depth = config.max_tree_depth
        return cls(
            int(config.num_warmup),
            bool(config.dense_mass),
            float(config.target_accept),
            tuple(depth) if isinstance(depth, (tuple, list)) else int(depth),
        )


# The chain programs are module-level jitted functions that take the potential as an argument
# (a pytree: ``programs.Potential`` of a bound model, whose leaves are the data), so fits of
# equal structure and shapes share them: a bootstrap bag or a new data set of a study runs the
# programs compiled for the first one.
@functools.partial(jax.jit, static_argnames=("settings", "total"))
def _whole_chain(potential: Any, key: jax.Array, z0: Any, settings: ChainSettings, total: int) -> Any:
    init, advance = nuts_chain_programs(potential, settings)
    ok, state = init(key, z0)
    return ok, advance(state, total)[1]


@functools.partial(jax.jit, static_argnames=("settings",))
def _init_chain(potential: Any, key: jax.Array, z0: Any, settings: ChainSettings) -> Any:
    return nuts_chain_programs(potential, settings)[0](key, z0)


@functools.partial(jax.jit, static_argnames=("settings", "length"))
def _advance_chain(potential: Any, state: Any, settings: ChainSettings, length: int) -> Any:
    init, advance = nuts_chain_programs(potential, settings)
    # NumPyro's sample kernel reads what its init kernel set up (adaptation and integrator
    # closures, built from the settings and the potential): trace init without running it
    jax.eval_shape(init, state.rng_key, state.z)
    return advance(state, length)


def run_numpyro_nuts(
    potential: Any, starts: Any, key: jax.Array, config: Any, *, progress: bool = True
) -> tuple[bool | int, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``config.num_chains`` chains one after another, chain ``c`` from ``starts[c]``.

    ``potential``: position pytree -> float[]; a pytree itself (``programs.Potential``) shares
    the compiled chain programs with every potential of the same structure, a plain function is
    wrapped and compiles its own. ``starts``: a position pytree whose leaves hold one start per
    chain ([C, ...]). Returns ``True`` when every start was finite, else the index of the first
    chain whose start was not (then nothing else: the run stops there), the unconstrained draws
    ``{site: [C, S, ...]}`` and the per-draw statistics ``[C, S]`` (:data:`STAT_FIELDS`). The
    chains' keys are ``jax.random.split(key, C)``, as ``MCMC.run`` derives them. ``progress``: a
    bar over all chains' iterations (see :func:`chunk_length`). Every chain runs the same
    compiled program(s).
    """
    potential = as_program_argument(potential)
    settings = ChainSettings.of(config)
    num_chains, num_warmup = int(config.num_chains), int(config.num_warmup)
    total = num_warmup + int(config.num_samples)
    length = chunk_length(total, progress)
    if length == total:  # one program per chain (a second one cost ~0.1 s to prepare)

        def run_chain(k, z0, bar, name):
            ok, part = jax.device_get(_whole_chain(potential, k, z0, settings, total))
            bar.update(total)
            return ok, [part]

    else:  # a compiled initialisation, then chunks of iterations: the bar moves between them

        def run_chain(k, z0, bar, name):
            ok, state = _init_chain(potential, k, z0, settings)
            if not ok:
                return False, []
            parts, done = [], 0
            while done < total:
                bar.set_postfix_str(f"{name}, {'warm-up' if done < num_warmup else 'sampling'}")
                n = min(length, total - done)
                state, part = _advance_chain(potential, state, settings, n)
                parts.append(jax.device_get(part))
                done += n
                bar.update(n)
            return True, parts

    draws, stats = [], []
    with tqdm(total=num_chains * total, desc="NUTS", unit="it", disable=not progress) as bar:
        for c, k in enumerate(jax.random.split(key, num_chains)):
            z0 = jax.tree.map(lambda x, c=c: x[c], starts)
            ok, parts = run_chain(k, z0, bar, f"chain {c + 1}/{num_chains}")
            if not ok:
                return c, {}, {}
            z, st = jax.tree.map(lambda *xs: np.concatenate(xs)[num_warmup:], *parts)
            draws.append(z)
            stats.append(st)
    stack = lambda *xs: np.stack(xs)  # noqa: E731
    return True, jax.tree.map(stack, *draws), jax.tree.map(stack, *stats)
