"""bayes-diml: Bayesian inverse mechanism learning from the trajectories of learning agents."""

from . import environments, mechanisms, metrics
from .counterfactual import counterfactual_payoffs
from .data import DataError, Trajectories, load_trajectories
from .learners import Learner, LogitQ
from .likelihood import log_likelihood, log_policies
from .simulation import simulate

# the Bayesian layer (models/ and inference/ are installed as bayes_diml.models / .inference)
from . import models, inference  # noqa: E402,I001
from .inference import Posterior, fit, load  # noqa: E402
from .models import Priors  # noqa: E402

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
    "fit",
    "load",
    "Posterior",
    "Priors",
    "models",
    "inference",
    "mechanisms",
    "environments",
    "metrics",
    "__version__",
]
