"""Deprecated alias of :mod:`bayes_diml.studies.experiments` (kept for old imports)."""

import warnings

from bayes_diml.studies.experiments import *  # noqa: F403
from bayes_diml.studies.experiments import __all__  # noqa: F401

warnings.warn(
    "bayes_diml.experiments moved to bayes_diml.studies.experiments; import it from there "
    "(this alias will be removed in a future release).",
    DeprecationWarning,
    stacklevel=2,
)
