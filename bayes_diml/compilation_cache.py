"""JAX's persistent compilation cache for bayes-diml's programs.

XLA compiles each program a fit runs (the MAP's Adam steps, the NUTS warm-up and sampling
loops, the model evaluated op by op while NumPyro sets up SVI and Laplace guides) afresh in
every process: 5-13 s of a small fit. With the cache on, a later process with the same
model shapes loads the compiled programs from disk instead (what PyMC's compile directory
does for its C code). Measured on a 3 x 4 game (10 x 20 data, 2 cores): first SVI fit in a
process 13.1 s cold, 4.6 s warm; Laplace 13.3 s / 4.4 s; a NUTS fit (2 x 300 + 300 draws) ~9 s
/ 3.3 s (``docs/performance.md``).

The command line turns the cache on (``~/.cache/bayes-diml/jax``, or ``$XDG_CACHE_HOME``;
``bayes-diml --no-compilation-cache`` or ``BAYES_DIML_COMPILATION_CACHE=off`` turn it off,
``BAYES_DIML_COMPILATION_CACHE=DIR`` moves it). The Python API changes no global JAX
setting by itself: call :func:`enable_compilation_cache` once, before the first fit.

The cache is trusted code: keep it in a directory only you can write to (JAX's advice).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

__all__ = ["enable_compilation_cache", "default_cache_dir", "cache_from_environment", "ENV_VAR"]

#: Environment variable read by the command line: a directory, or off/0/false/no.
ENV_VAR = "BAYES_DIML_COMPILATION_CACHE"

#: Least recently used entries are deleted beyond this size (a small fit writes ~5 MB).
DEFAULT_MAX_SIZE_BYTES = 2 * 1024**3

_OFF = ("off", "0", "false", "no")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bayes-diml/jax``, else ``~/.cache/bayes-diml/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayes-diml" / "jax"


def enable_compilation_cache(
    path: str | os.PathLike | None = None,
    *,
    min_compile_time_s: float = 0.0,
    max_size_bytes: int = DEFAULT_MAX_SIZE_BYTES,
) -> Path:
    """Store compiled JAX programs in ``path`` (default ``default_cache_dir()``) and reuse them.

    Sets JAX's ``jax_compilation_cache_dir``, ``jax_persistent_cache_min_compile_time_secs``
    and ``jax_compilation_cache_max_size`` (process-wide JAX settings; call before the first
    fit). ``min_compile_time_s=0`` caches every program: the many small ones that NumPyro's
    guide set-up compiles one operation at a time are most of a first SVI or Laplace fit.
    Returns the directory (created, readable only by you).
    """
    if min_compile_time_s < 0:
        raise ValueError(f"min_compile_time_s must be >= 0; got {min_compile_time_s}.")
    if max_size_bytes == 0 or max_size_bytes < -1:
        raise ValueError(f"max_size_bytes must be positive, or -1 for no limit; got {max_size_bytes}.")
    directory = Path(path).expanduser() if path is not None else default_cache_dir()
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"compilation cache: {directory} exists and is not a directory.")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_compilation_cache_max_size", int(max_size_bytes))
    return directory


def _configured_dir() -> str | None:
    """Return the cache directory JAX already has (its own ``JAX_COMPILATION_CACHE_DIR``, or a call)."""
    return jax.config.jax_compilation_cache_dir


def cache_from_environment(enabled: bool = True) -> Path | None:
    """Turn on the command line's compilation cache unless told not to.

    The cache is on unless ``enabled`` is False or ``BAYES_DIML_COMPILATION_CACHE`` says off; a
    directory JAX was already given (``JAX_COMPILATION_CACHE_DIR``) is left as it is.

    Returns the directory in use, or None when the cache stays off. A directory that cannot
    be created turns the cache off with a warning rather than stopping the command.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if not enabled or value.lower() in _OFF:
        return None
    configured = _configured_dir()
    if configured:
        return Path(configured)
    try:
        return enable_compilation_cache(value or None)
    except OSError as exc:
        warnings.warn(f"compilation cache off: {exc}", RuntimeWarning, stacklevel=2)
        return None
