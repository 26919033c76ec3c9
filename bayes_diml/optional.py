"""Optional dependencies: import one on first use, or say which extra installs it.

``import bayes_diml`` needs only the required dependencies. BlackJAX (the ``blackjax`` NUTS
backend), pyarrow (Parquet trajectory files) and zarr (``.zarr`` fits) are extras, imported by
the code that uses them through :func:`require`; when one is missing, that use (not the import
of the package) fails with :class:`MissingExtraError`, an ``ImportError`` whose message names
the command that installs the extra, e.g. ``pip install "bayes-diml[blackjax]"``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed (or does not import); the message names its extra."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` (an optional dependency) or raise :class:`MissingExtraError`.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"blackjax"`` or ``"pyarrow.parquet"``.
    extra : str
        The bayes-diml extra that installs it, e.g. ``"blackjax"`` or ``"parquet"``.
    purpose : str
        What needs it, for the message, e.g. ``"Reading Parquet trajectory files"``.

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtraError
        If importing ``module`` fails; the message says what needs it, the install command
        ``pip install "bayes-diml[<extra>]"`` and why the import failed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.partition(".")[0]
        raise MissingExtraError(
            f'{purpose} needs the optional package {package}: pip install "bayes-diml[{extra}]" '
            f"(import {module} failed: {exc})",
            name=module,
        ) from exc
