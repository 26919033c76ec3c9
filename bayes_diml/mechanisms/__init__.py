"""Mechanisms: maps from joint actions to payoffs, with parameters as separate pytrees.

Every mechanism offers ``init(key) -> params`` and ``payoffs(params, joint) -> float[..., n]``
for ``joint: int[..., n]``; anonymous ones also ``count_payoffs(params, own, opponent_counts)``.
"""

from .base import (
    CountMechanism,
    Mechanism,
    agent_payoffs,
    flatten_params,
    joint_profiles,
    n_profiles,
    param_count,
)
from .covariate import CovariateTabular
from .generic import Function, Linear
from .grouped import GroupedTabular
from .neural import NeuralJoint, SymmetricCount
from .structured import Congestion, PublicGoods, StructuredCongestion, StructuredPublicGoods
from .tabular import Tabular

__all__ = [
    "Mechanism",
    "CountMechanism",
    "Tabular",
    "GroupedTabular",
    "CovariateTabular",
    "NeuralJoint",
    "SymmetricCount",
    "Congestion",
    "StructuredCongestion",
    "PublicGoods",
    "StructuredPublicGoods",
    "Linear",
    "Function",
    "joint_profiles",
    "n_profiles",
    "param_count",
    "flatten_params",
    "agent_payoffs",
]
