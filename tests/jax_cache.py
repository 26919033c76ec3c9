"""JAX's persistent compilation cache in a temporary directory, for tests that fit a model twice.

Fast tests are compile-bound: a second fit of the same model traces and lowers its programs again
but, with the cache on, loads XLA's compiled code instead of compiling it (a vectorized BlackJAX
fit: 26 -> 9 CPU s). What the tests check is unchanged: the programs are the same, and a cache
hit needs the same lowered program.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import jax
from jax._src import compilation_cache as jax_cache

import bayes_diml as bd

_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_compilation_cache_max_size",
)


@contextlib.contextmanager
def compilation_cache(directory: Path) -> Iterator[Path]:
    """Turn the cache on in ``directory`` (process-wide JAX settings), restore them on exit."""
    saved = {name: getattr(jax.config, name) for name in _SETTINGS}
    where = bd.enable_compilation_cache(directory)
    jax_cache.reset_cache()  # JAX decides once per process whether the cache is used
    try:
        yield where
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        jax_cache.reset_cache()
