"""Deprecated alias of :mod:`bayes_diml.studies.calibration` (kept for old imports)."""

import warnings

from bayes_diml.studies.calibration import *  # noqa: F403
from bayes_diml.studies.calibration import __all__  # noqa: F401

warnings.warn(
    "bayes_diml.calibration moved to bayes_diml.studies.calibration; import it from there "
    "(this alias will be removed in a future release).",
    DeprecationWarning,
    stacklevel=2,
)
