"""Learning rules: counterfactual payoffs in, log-probabilities of next actions out.

A learner is a NamedTuple of (traceable) parameters with three pure methods, so that
``jit``, ``grad``, ``vmap`` and NumPyro see through it:

- ``init_state(action_mask, dtype) -> state`` (``action_mask: bool[n, K]``),
- ``update(state, counterfactual, actions) -> state`` with ``counterfactual: float[..., n, K]``
  the payoffs each agent would have got for each own action against the others' realised
  actions and ``actions: int[..., n]`` the realised actions,
- ``log_policy(state, action_mask) -> float[..., n, K]``, the log-probabilities of the
  next action (``-inf`` on padded actions ``k >= K_i``).

Parameters may be scalars (shared) or ``float[n]`` (per agent). Every family has an optional
action bias (habit) ``bias``: a number or ``float[n, K]`` added to each agent's logits
(:func:`~bayes_diml.learners.policy.add_bias`), 0 (none) by default.

Layout: ``policy`` (policies from scores), ``parameters`` (parameter tables, validation,
scaling), ``base`` (the interface and the methods every family shares), one module per family
(``logit_q``, ``bandit_q``, ``hedge``, ``fictitious_play``, ``ewa``, ``aspiration``,
``regret_matching``, ``markov_q``) and ``registry`` (families by name).
"""

from bayes_diml.learners.aspiration import Aspiration
from bayes_diml.learners.bandit_q import BanditQ
from bayes_diml.learners.base import Learner
from bayes_diml.learners.ewa import EWA
from bayes_diml.learners.fictitious_play import FictitiousPlay
from bayes_diml.learners.hedge import Hedge
from bayes_diml.learners.logit_q import LogitQ
from bayes_diml.learners.markov_q import MarkovQ
from bayes_diml.learners.parameters import (
    Parameter,
    check_bias,
    check_parameters,
    learner_parameters,
    parameter_names,
    temperature_name,
)
from bayes_diml.learners.policy import (
    add_bias,
    epsilon_mixture,
    epsilon_mixture_at,
    log_softplus,
    logit_policy_log_prob,
    masked_log_softmax,
    per_agent,
)
from bayes_diml.learners.registry import FAMILIES, family_name, learner_family, uses_payoff_levels
from bayes_diml.learners.regret_matching import RegretMatching

__all__ = [
    "Learner",
    "LogitQ",
    "BanditQ",
    "Hedge",
    "FictitiousPlay",
    "EWA",
    "Aspiration",
    "RegretMatching",
    "MarkovQ",
    "Parameter",
    "FAMILIES",
    "learner_family",
    "family_name",
    "learner_parameters",
    "parameter_names",
    "temperature_name",
    "check_parameters",
    "check_bias",
    "uses_payoff_levels",
    "add_bias",
    "masked_log_softmax",
    "epsilon_mixture",
    "epsilon_mixture_at",
    "logit_policy_log_prob",
    "log_softplus",
    "per_agent",
]
