"""The Laplace approximation as one compiled program shared by fits of equal shapes.

NumPyro's ``AutoLaplaceApproximation`` refined by ``SVI`` is the same approximation: its loss at
a point mass in the unconstrained space is the potential energy (minus the log joint plus the
log-Jacobian of the transforms), so its refinement is Adam on the potential from the MAP, and its
covariance the inverse Hessian there. Written as one jitted function of the model (whose data
are its leaves, ``programs.py``), the refinement, the Hessian and the draws compile once per
model structure and shapes instead of once per fit.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax
from jax.flatten_util import ravel_pytree
from numpyro.distributions.util import cholesky_of_inverse
from numpyro.infer.util import constrain_fn, potential_energy

__all__ = ["laplace_draws"]


@functools.partial(jax.jit, static_argnames=("refine_steps", "learning_rate", "num_draws"))
def laplace_draws(
    model: Any,
    z0: dict[str, jax.Array],
    key: jax.Array,
    refine_steps: int,
    learning_rate: float,
    num_draws: int,
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Refine the mode, then draw from the Gaussian at it.

    Parameters
    ----------
    model : BoundModel
        The model (``ModelSpec.model()``); a pytree argument.
    z0 : dict of arrays
        The start in the unconstrained space (the MAP's ``unconstrained``).
    key : jax.Array
    refine_steps, learning_rate : Adam steps on the potential from ``z0`` and their step size.
    num_draws : int

    Returns
    -------
    draws : dict name -> [num_draws, ...]
        Constrained latent sites.
    singular : bool[]
        Whether the Hessian at the refined mode is singular or indefinite (then the draws are
        not a posterior approximation: the caller refuses them).
    """
    flat, unravel = ravel_pytree(z0)

    def loss(x):
        return potential_energy(model, (), {}, unravel(x))

    opt = optax.adam(learning_rate)

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(jax.grad(loss)(x), state, x)
        return (optax.apply_updates(x, updates), state), None

    (x, _), _ = jax.lax.scan(step, (flat, opt.init(flat)), None, length=refine_steps)
    scale_tril = cholesky_of_inverse(jax.hessian(loss)(x))
    singular = ~jnp.all(jnp.isfinite(scale_tril))
    scale_tril = jnp.where(jnp.isfinite(scale_tril), scale_tril, 0.0)
    latent = dist.MultivariateNormal(x, scale_tril=scale_tril, validate_args=False).sample(key, (num_draws,))
    draws = jax.vmap(lambda v: constrain_fn(model, (), {}, unravel(v)))(latent)
    return draws, singular
