"""The learner families by command-line name, and what only the families' identities tell."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from bayes_diml.learners.aspiration import Aspiration
from bayes_diml.learners.bandit_q import BanditQ
from bayes_diml.learners.ewa import EWA
from bayes_diml.learners.fictitious_play import FictitiousPlay
from bayes_diml.learners.hedge import Hedge
from bayes_diml.learners.logit_q import LogitQ
from bayes_diml.learners.markov_q import MarkovQ
from bayes_diml.learners.regret_matching import RegretMatching

__all__ = ["FAMILIES", "learner_family", "family_name", "uses_payoff_levels"]

#: Learner families by their command-line name.
FAMILIES: dict[str, type] = {
    "logitq": LogitQ,
    "bandit": BanditQ,
    "hedge": Hedge,
    "fp": FictitiousPlay,
    "ewa": EWA,
    "aspiration": Aspiration,
    "regret": RegretMatching,
    "markovq": MarkovQ,
}


def learner_family(name: str) -> type:
    """Return the learner class of a family name, a key of :data:`FAMILIES` (``logitq``, ``hedge``, ...).

    Class names work too (``"LogitQ"``, ``"fictitious_play"``), case and ``-``/``_`` ignored.
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    for short, cls in FAMILIES.items():
        if key in (short, cls.__name__.lower()):
            return cls
    raise ValueError(f"unknown learner family {name!r}; choose one of {', '.join(FAMILIES)}.")


def family_name(learner: Any) -> str:
    """Return the short family name of a learner (instance or class), e.g. ``"hedge"``."""
    cls = learner if isinstance(learner, type) else type(learner)
    for short, c in FAMILIES.items():
        if c is cls:
            return short
    return cls.__name__


def uses_payoff_levels(learner: Any) -> bool:
    """Tell whether payoff *levels* (not only differences between own actions) enter the policy.

    True for learners that reinforce the played action more than the others (``BanditQ``,
    ``Aspiration``, ``EWA`` unless ``delta`` is fixed at 1): adding ``c_i(a_-i)`` to agent i's payoffs then
    changes the likelihood, so centred (gauge-fixed) payoffs are a restriction, not a gauge.
    """
    if isinstance(learner, BanditQ | Aspiration):
        return True
    if isinstance(learner, EWA):
        delta = learner.delta
        if isinstance(delta, str | jax.core.Tracer):
            return True
        return not np.all(np.asarray(delta) == 1.0)
    return False
