"""Full float32 precision for the matrix products of mechanisms and models, on every backend."""

import jax
import jax.numpy as jnp

__all__ = ["FULL_PRECISION", "matmul"]

#: Matrix products of mechanisms and of the model run in full float32 precision on every
#: backend. On the CPU that is the default anyway; on GPUs JAX's default for float32 products
#: is TF32 (a 10-bit mantissa, ~1e-4 relative error): on an H100 it moved the batched payoffs of
#: the neural and count mechanisms by up to 2.5e-4 and the E7 MAP log joint (n = 3000) by 6 nats
#: against the CPU's (docs/gpu.md).
FULL_PRECISION = jax.lax.Precision.HIGHEST


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Compute ``a @ b`` in full float32 precision (:data:`FULL_PRECISION`) on every backend."""
    return jnp.matmul(a, b, precision=FULL_PRECISION)
