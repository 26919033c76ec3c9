"""The DIML paper's experiments E1, E2, E3, E7 as ready-made environments.

``make(name, seed)`` returns the true mechanism and its parameters (drawn with the
reference's initialisation), the data-generating learner, simulated data (60 episodes x
60 steps by default) and its 80/20 train/test split by episode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from .data import Trajectories
from .learners import LogitQ
from .mechanisms import (
    Congestion,
    NeuralJoint,
    PublicGoods,
    StructuredCongestion,
    StructuredPublicGoods,
    SymmetricCount,
)
from .simulation import simulate

__all__ = ["Environment", "make", "default_learner", "E7_SETTINGS", "NAMES"]

NAMES = ("e1", "e2", "e3", "e7")

#: The reference's E7 settings: (n agents, K actions) -> (episodes, steps).
E7_SETTINGS: dict[tuple[int, int], tuple[int, int]] = {
    (40, 10): (24, 30),
    (80, 20): (24, 30),
    (120, 25): (24, 30),
    (200, 30): (20, 30),
    (300, 40): (16, 25),
}


class Environment(NamedTuple):
    """One experiment instance.

    Attributes
    ----------
    name : str
        ``"e1"``, ``"e2"``, ``"e3"`` or ``"e7"``.
    mechanism, params : the true mechanism and its parameters.
    learner : LogitQ
        The data-generating learner.
    data : Trajectories
        All simulated episodes.
    train, test : Trajectories
        80/20 split by episode (seeded).
    family, family_params : the correctly specified parametric family (StructMLE) and the
        truth inside it, for E2 and E3; ``None`` otherwise.
    """

    name: str
    mechanism: Any
    params: Any
    learner: LogitQ
    data: Trajectories
    train: Trajectories
    test: Trajectories
    family: Any = None
    family_params: Any = None


def default_learner(name: str) -> LogitQ:
    """Return the paper's learner of experiment ``name``: LogitQ(0.25, 3, 0.06); E7: LogitQ(0.2, 6, 0.02)."""
    return LogitQ(0.2, 6.0, 0.02) if str(name).lower() == "e7" else LogitQ(0.25, 3.0, 0.06)


def make(
    name: str,
    seed: int = 0,
    *,
    n: int | None = None,
    K: int | None = None,
    n_episodes: int | None = None,
    T: int | None = None,
    test_fraction: float = 0.2,
    record_payoffs: bool = False,
    learner: Any = None,
) -> Environment:
    """Build experiment ``name`` (``e1``, ``e2``, ``e3``, ``e7``) with a seed.

    E1: NeuralJoint, 3 agents x 6 actions. E2: Congestion, 4 agents x 5 routes.
    E3: PublicGoods, 3 agents x 7 levels. E7: SymmetricCount with ``n, K`` (default
    40, 10) and the reference's episodes and steps for that setting (else 24 x 30).
    Learner alpha=0.25, beta=3, eps=0.06 (E7: 0.2, 6, 0.02). Data 60 x 60 unless given.
    ``record_payoffs`` stores the realised (noise-free) payoffs in the data (same actions).
    ``learner`` replaces the data-generating learner (any family, e.g. ``Hedge(0.3)``).
    """
    key_name = str(name).lower()
    if key_name not in NAMES:
        raise ValueError(f"unknown environment {name!r}; choose one of {', '.join(NAMES)}.")
    if key_name != "e7" and (n is not None or K is not None):
        raise ValueError(f"n and K are settings of e7 only; {key_name} has a fixed game.")
    k_mech, k_data = jax.random.split(jax.random.key(seed))
    family = family_params = None
    M, steps = 60, 60
    if key_name == "e1":
        mechanism = NeuralJoint((6, 6, 6))
        params = mechanism.init(k_mech)
    elif key_name == "e2":
        mechanism = Congestion(4, 5)
        params = mechanism.init(k_mech)
        family = StructuredCongestion(4, 5)
        family_params = family.params_from_congestion(params)
    elif key_name == "e3":
        mechanism = PublicGoods(3, 7)
        params = mechanism.init(k_mech)
        family = StructuredPublicGoods(3, 7)
        family_params = family.params_from_public_goods(params)
    else:
        n = 40 if n is None else int(n)
        K = 10 if K is None else int(K)
        mechanism = SymmetricCount(n, K)
        params = mechanism.init(k_mech)
        M, steps = E7_SETTINGS.get((n, K), (24, 30))
    learner = learner if learner is not None else default_learner(key_name)
    M = M if n_episodes is None else int(n_episodes)
    steps = steps if T is None else int(T)
    data = simulate(mechanism, params, learner, M, steps, k_data, record_payoffs=record_payoffs)
    train, test = data.split(test_fraction, seed=seed)
    return Environment(key_name, mechanism, params, learner, data, train, test, family, family_params)
