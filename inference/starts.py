"""Where NUTS chains start: one dispersed point per chain (the default), or the MAP for all.

R-hat compares chains; it can only flag a second mode, or a chain that has not yet found the
bulk of the posterior, when the chains start apart. Chains that all start at the MAP agree with
each other by construction as long as none of them leaves the MAP's mode, so a posterior with a
second, well-separated mode passes the check (``tests/test_dispersed_starts.py`` shows both on a
bimodal target). ``NUTSConfig(init="dispersed")`` therefore starts chain ``c`` at its own draw
from the prior, mapped to the unconstrained space NUTS samples in (as Stan starts each chain at
its own random point): the draw comes from the key ``fold_in(key, c)``, so the starts are
distinct, reproducible from the fit's seed, and chain ``c`` starts at the same point whatever
the number of chains. A draw where the potential or its gradient is not finite is replaced by
the next draw of that chain's key (up to :data:`DISPERSED_TRIES`); a chain that finds none
starts at the MAP (``info["init_fallback_chains"]``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import ParamInfo

from .programs import as_program_argument

__all__ = [
    "INITS",
    "DISPERSED_TRIES",
    "PriorDraw",
    "prior_draw_fn",
    "dispersed_starts",
    "chain_starts",
    "broadcast_start",
    "for_mcmc",
]

#: ``NUTSConfig.init``: ``"dispersed"`` (one prior draw per chain), ``"map"`` (every chain at the
#: MAP) or ``"prior"`` (NumPyro's model initialisation, ``init_to_median``).
INITS = ("dispersed", "map", "prior")
#: Prior draws tried per chain before it falls back to the MAP.
DISPERSED_TRIES = 10


class PriorDraw(NamedTuple):
    """``draw(key) -> {site: array}``: the latent sites drawn from the prior, unconstrained.

    ``model`` is a NumPyro model of no arguments; observed sites are not drawn. The values are
    mapped by each site's ``biject_to(support).inv``, the transforms of NumPyro's
    ``potential_energy``, so a draw is a position of the NUTS potential. A pytree (a bound
    model's data are its leaves), so the compiled start programs are shared across data sets.
    """

    model: Any

    def __call__(self, key: jax.Array) -> dict[str, jax.Array]:
        """Return one prior draw of the latent sites, unconstrained."""
        tr = handlers.trace(handlers.seed(self.model, key)).get_trace()
        return {
            name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in tr.items()
            if site["type"] == "sample" and not site["is_observed"]
        }


def prior_draw_fn(model: Callable[[], Any]) -> PriorDraw:
    """Return ``draw(key) -> {site: array}`` (:class:`PriorDraw`): latent prior draws, unconstrained."""
    return PriorDraw(model)


def _finite_energy(potential: Callable) -> Callable:
    """``z -> (energy, grad, ok)`` for one position; ``ok``: both finite."""

    def one(z):
        energy, grad = jax.value_and_grad(potential)(z)
        ok = jnp.isfinite(energy)
        for g in jax.tree.leaves(grad):
            ok = ok & jnp.all(jnp.isfinite(g))
        return energy, grad, ok

    return one


@jax.jit
def _evaluate_draws(potential: Any, draw: Any, keys: jax.Array) -> tuple:
    """One draw per key, with its energy, gradient and whether both are finite (leaves [C, ...])."""
    z = jax.vmap(draw)(keys)
    return (z, *jax.vmap(_finite_energy(potential))(z))


def dispersed_starts(
    potential: Callable,
    draw: Callable[[jax.Array], Any],
    key: jax.Array,
    num_chains: int,
    *,
    tries: int = DISPERSED_TRIES,
) -> tuple[ParamInfo, np.ndarray]:
    """One start per chain: a draw at which the potential and its gradient are finite.

    Parameters
    ----------
    potential : callable
        Position pytree -> float[] (the negative log density NUTS samples).
    draw : callable
        ``key -> position``: a random start (:func:`prior_draw_fn`).
    key : jax.Array
        Chain ``c`` draws from ``fold_in(key, c)``, its ``t``-th try from
        ``fold_in(fold_in(key, c), t)``.
    num_chains : int
    tries : int
        Draws tried per chain.

    Returns
    -------
    starts : ParamInfo
        ``z`` (position pytree, each leaf [C, ...]), ``potential_energy`` float[C] and
        ``z_grad`` ([C, ...]) at the starts; a chain without a finite draw holds its first try.
    found : bool[C]
        Whether chain ``c`` found a finite start.
    """
    C = int(num_chains)
    if C < 1 or int(tries) < 1:
        raise ValueError(f"dispersed_starts needs num_chains >= 1 and tries >= 1; got {C}, {tries}.")
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    chain_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(C))
    potential, draw = as_program_argument(potential), as_program_argument(draw)
    evaluate = functools.partial(_evaluate_draws, potential, draw)
    starts, found = None, np.zeros(C, dtype=bool)
    for t in range(int(tries)):
        z, energy, grad, ok = evaluate(fold(chain_keys, t))
        ok = np.asarray(ok)
        take = ok & ~found if starts is not None else np.ones(C, dtype=bool)
        new = ParamInfo(z, energy, grad)
        if starts is None:
            starts = new
        else:
            starts = jax.tree.map(lambda a, b, m=take: jnp.where(_lead(m, a), a, b), new, starts)
        found |= ok
        if found.all():
            break
    return starts, found


def _lead(mask: np.ndarray, x: jax.Array) -> jax.Array:
    """``mask`` float[C] reshaped to broadcast against ``x`` [C, ...]."""
    return jnp.asarray(mask).reshape((-1,) + (1,) * (jnp.ndim(x) - 1))


def chain_starts(starts: ParamInfo, fallback: ParamInfo | None, use_fallback: np.ndarray) -> ParamInfo:
    """Return ``starts`` ([C, ...]) with the chains where ``use_fallback`` holds set to ``fallback``.

    ``fallback``: one start (no chain axis), e.g. the MAP's position, energy and gradient.
    """
    if fallback is None or not np.any(use_fallback):
        return starts
    return jax.tree.map(
        lambda s, f: jnp.where(_lead(use_fallback, s), jnp.asarray(f)[None], s), starts, fallback
    )


def broadcast_start(start: ParamInfo, num_chains: int) -> ParamInfo:
    """One start (position, energy, gradient) repeated for ``num_chains`` chains: leaves [C, ...]."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (int(num_chains), *jnp.shape(x))), start)


def for_mcmc(starts: ParamInfo, num_chains: int) -> ParamInfo:
    """``MCMC.run(init_params=...)``: leaves [C, ...] for several chains, without the axis for one."""
    if int(num_chains) == 1:
        return jax.tree.map(lambda x: x[0], starts)
    return starts
