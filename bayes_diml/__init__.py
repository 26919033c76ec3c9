"""bayes-diml: Bayesian inverse mechanism learning from the trajectories of learning agents."""

# the Bayesian layer (models/ and inference/ are installed as bayes_diml.models / .inference)
from . import environments, inference, mechanisms, metrics, models  # noqa: E402,I001
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

__version__ = "0.1.0"

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
    "metrics",
    "__version__",
]
