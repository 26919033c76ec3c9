"""bayes-diml: Bayesian inverse mechanism learning from the trajectories of learning agents."""

from importlib import metadata as _metadata

# the Bayesian layer (models/ and inference/ are installed as bayes_diml.models / .inference)
from . import edits, environments, inference, mechanisms, metrics, models  # noqa: E402,I001
from .bandit import read_hbayesdm
from .compilation_cache import enable_compilation_cache
from .counterfactual import counterfactual_payoffs
from .data import DataError, Trajectories, load_trajectories
from .inference import Posterior, fit, load  # noqa: E402
from .learners import (
    EWA,
    Aspiration,
    BanditQ,
    FictitiousPlay,
    Hedge,
    Learner,
    LogitQ,
    MarkovQ,
    RegretMatching,
)
from .likelihood import log_likelihood, log_policies
from .models import Priors  # noqa: E402
from .simulation import simulate


def _installed_version(distribution: str = "bayes-diml") -> str:
    """The installed distribution's version (pyproject's ``version``), or ``"0+unknown"`` if not installed."""
    try:
        return _metadata.version(distribution)
    except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


__version__ = _installed_version()

__all__ = [
    "Trajectories",
    "DataError",
    "load_trajectories",
    "read_hbayesdm",
    "Learner",
    "LogitQ",
    "BanditQ",
    "Hedge",
    "FictitiousPlay",
    "EWA",
    "Aspiration",
    "RegretMatching",
    "MarkovQ",
    "log_likelihood",
    "log_policies",
    "counterfactual_payoffs",
    "simulate",
    "fit",
    "load",
    "enable_compilation_cache",
    "Posterior",
    "Priors",
    "models",
    "inference",
    "mechanisms",
    "environments",
    "edits",
    "metrics",
    "__version__",
]
