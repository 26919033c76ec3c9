"""Mechanisms and learners by name: the factories behind ``bayes-diml fit`` and ``simulate``.

``make_mechanism("congestion", data)`` builds the mechanism family of that name for the
game of the data (or of ``n_actions``); ``make_learner("hedge", eta="infer", eps="0.05")``
builds a learner from values as the command line spells them (numbers, comma-separated
numbers one per agent, ``"infer"``, ``"infer-per-agent"`` or ``"infer-hierarchical"``).

Bad input raises :class:`ParameterError`, a ``ValueError`` that names the parameter at fault.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bayes_diml import mechanisms
from bayes_diml.bandit import bandit_mechanism
from bayes_diml.data import Trajectories
from bayes_diml.learners import learner_family, parameter_names

__all__ = [
    "MECHANISM_NAMES",
    "INFER_VALUES",
    "TABULAR_LIMIT",
    "ParameterError",
    "make_mechanism",
    "make_learner",
    "parse_learner_value",
    "parse_n_actions",
    "short_n_actions",
]

#: Names of :func:`make_mechanism`; congestion, public-goods and symmetric need equal K_i, covariate
#: data with covariates.
MECHANISM_NAMES = ("tabular", "neural", "congestion", "public-goods", "symmetric", "bandit", "covariate")
#: Learner values that ask for inference: :data:`bayes_diml.models.INFER`, ``INFER_PER_AGENT``,
#: ``INFER_HIERARCHICAL`` and ``INFER_SUBJECT`` (the models floor reads them; core cannot import it).
INFER_VALUES = ("infer", "infer_per_agent", "infer_hierarchical", "infer_subject")
#: Largest number of payoff entries (prod K_i x n) :func:`make_mechanism` builds a tabular mechanism for.
TABULAR_LIMIT = 1_000_000

_STRUCTURED = {
    "congestion": mechanisms.StructuredCongestion,
    "public-goods": mechanisms.StructuredPublicGoods,
    "symmetric": mechanisms.SymmetricCount,
}


class ParameterError(ValueError):
    """A bad value of one named parameter (``parameter``); ``message`` says what is wrong.

    ``str(error)`` is ``"<parameter>: <message>"``; the command line shows ``message`` against
    its flag.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def short_n_actions(n_actions: Sequence[int]) -> str:
    """Return action counts as text, ``(K,) * n`` for more than four equal ones."""
    k = tuple(n_actions)
    return f"({k[0]},) * {len(k)}" if len(k) > 4 and len(set(k)) == 1 else str(k)


def parse_n_actions(value: str | None) -> tuple[int, ...] | None:
    """Parse ``"K_1,K_2,..."`` (one action count per agent); ``None`` stays ``None``.

    Raises
    ------
    ParameterError
        (parameter ``n_actions``) if a part is not an integer.
    """
    if value is None:
        return None
    try:
        return tuple(int(p) for p in value.split(","))
    except ValueError:
        raise ParameterError(
            "n_actions", f"expected comma-separated integers K_1,K_2,... (one per agent); got {value!r}."
        ) from None


def make_mechanism(
    name: str, n_actions_or_data: Trajectories | Sequence[int], *, tabular_limit: int = TABULAR_LIMIT
) -> Any:
    """Build the mechanism family ``name`` (one of :data:`MECHANISM_NAMES`) for a game.

    Parameters
    ----------
    name : tabular (any game), neural (``NeuralJoint``), congestion, public-goods, symmetric
        (these three need every agent to have the same number of actions), bandit (one agent,
        one payoff per arm, level included: :func:`bayes_diml.bandit.bandit_mechanism`) or
        covariate (``CovariateTabular(data.n_actions, data.covariate_names)``: needs data with
        covariates).
    n_actions_or_data : the data (their ``n_actions``) or the action counts ``int[n]``.
    tabular_limit : most payoff entries ``prod K_i x n`` a tabular mechanism may have.

    Raises
    ------
    ParameterError
        (parameter ``mechanism``) for an unknown name, a family that does not fit the game, or
        ``covariate`` without data that carry covariates.
    """
    data = n_actions_or_data
    k = tuple(int(v) for v in (data.n_actions if isinstance(data, Trajectories) else data))
    if name == "bandit":  # one agent, one payoff per arm, level included (docs/bandit.md)
        if len(k) != 1:
            raise ParameterError(
                "mechanism", f"'bandit' is for single-agent data; these data have {len(k)} agents."
            )
        return bandit_mechanism(k[0])
    if name in ("tabular", "covariate"):
        cells = math.prod(k) * len(k)
        if cells > tabular_limit:
            raise ParameterError(
                "mechanism",
                f"a {name} mechanism of this game has prod K_i x n = {cells:,} payoff entries "
                f"(n_actions = {short_n_actions(k)}), more than {tabular_limit:,}; use 'neural', "
                "'symmetric' or a structured family.",
            )
        if name == "covariate":
            return _covariate_mechanism(data, k)
        return mechanisms.Tabular(k)
    if name == "neural":
        return mechanisms.NeuralJoint(k)
    if name not in _STRUCTURED:
        raise ParameterError(
            "mechanism", f"unknown mechanism {name!r}; choose one of {', '.join(MECHANISM_NAMES)}."
        )
    if len(set(k)) != 1:
        raise ParameterError(
            "mechanism",
            f"{name!r} needs every agent to have the same number of actions; the data have "
            f"n_actions = {k}. Use 'tabular' or 'neural'.",
        )
    return _STRUCTURED[name](len(k), k[0])


def _covariate_mechanism(data: Any, k: tuple[int, ...]) -> Any:
    """``CovariateTabular(k, data.covariate_names)``; ParameterError when the data carry no covariates."""
    if not isinstance(data, Trajectories):
        raise ParameterError(
            "mechanism",
            "'covariate' needs the data (with covariates) to name its covariates, not only n_actions; "
            "pass the Trajectories.",
        )
    if data.covariates is None or not data.covariate_names:
        raise ParameterError(
            "mechanism",
            "'covariate' needs data with covariates (Trajectories(..., covariates=..., "
            "covariate_names=...), or --covariates NAMES on the command line); these data have none.",
        )
    return mechanisms.CovariateTabular(k, tuple(data.covariate_names))


def parse_learner_value(value: Any, name: str) -> Any:
    """Parse one learner value: an inference mode, a number, or numbers (one per agent).

    Parameters
    ----------
    value : ``"infer"``, ``"infer_per_agent"``, ``"infer_hierarchical"``, ``"infer_subject"``
        (any case, ``-`` for ``_``), ``"0.3"``, ``"0.2,0.3"``; a number or array is returned as it is.
    name : the parameter, named in the error.

    Returns
    -------
    str | float | np.ndarray
        The inference mode (one of :data:`INFER_VALUES`), a float, or ``float[n]``.

    Raises
    ------
    ParameterError
        (parameter ``name``) if ``value`` is none of these.
    """
    if not isinstance(value, str):
        return value
    v = value.strip().lower().replace("-", "_")
    if v in INFER_VALUES:
        return v
    try:
        numbers = [float(p) for p in value.split(",")]
    except ValueError:
        infer, per_agent, hierarchical, subject = INFER_VALUES
        raise ParameterError(
            name,
            f"expected a number, comma-separated numbers (one per agent), {infer!r}, "
            f"{per_agent!r}, {hierarchical!r} or {subject!r}; got {value!r}.",
        ) from None
    return numbers[0] if len(numbers) == 1 else np.asarray(numbers)


def make_learner(family: str, *, numbers_only: bool = False, **values: Any) -> Any:
    """Build a learner of ``family`` (e.g. ``"logitq"``, ``"hedge"``) from its parameter values.

    Parameters
    ----------
    family : a name of :data:`bayes_diml.learners.FAMILIES` (or a class name).
    numbers_only : reject inference modes (a learner to simulate with needs numbers).
    **values : every parameter of the family (``parameter_names``), each parsed by
        :func:`parse_learner_value`; ``None`` values are left out (the class default).

    Raises
    ------
    ValueError
        for an unknown family.
    ParameterError
        for a parameter the family does not have, a value that does not parse, an inference
        mode with ``numbers_only``, or a parameter without a default left out.
    """
    cls = learner_family(family)
    names = parameter_names(cls)
    given = {n: v for n, v in values.items() if v is not None}
    for name in given:
        if name not in names:
            raise ParameterError(
                name, f"does not apply to learner family {family} (its parameters: {', '.join(names)})."
            )
    parsed = {}
    for name in names:
        if name not in given:
            continue
        v = parse_learner_value(given[name], name)
        if numbers_only and isinstance(v, str):
            raise ParameterError(name, "simulation needs numbers, not 'infer'.")
        parsed[name] = v
    missing = [n for n in names if n not in parsed and n not in cls._field_defaults]
    if missing:
        raise ParameterError(
            missing[0], f"learner family {family} needs a value of {', '.join(missing)} (number or 'infer')."
        )
    return cls(**parsed)
