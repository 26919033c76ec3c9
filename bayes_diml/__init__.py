"""bayes-diml: Bayesian inverse mechanism learning from the trajectories of learning agents."""

from . import environments, mechanisms, metrics
from .counterfactual import counterfactual_payoffs
from .data import DataError, Trajectories, load_trajectories
from .learners import Learner, LogitQ
from .likelihood import log_likelihood, log_policies
from .simulation import simulate

__version__ = "0.1.0"

__all__ = [
    "Trajectories",
    "DataError",
    "load_trajectories",
    "Learner",
    "LogitQ",
    "log_likelihood",
    "log_policies",
    "counterfactual_payoffs",
    "simulate",
    "mechanisms",
    "environments",
    "metrics",
    "__version__",
]
