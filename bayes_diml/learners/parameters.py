"""Inferable learner parameters: their table, validation and DIML's learner shift.

Every family declares ``PARAMETERS`` (a tuple of :class:`Parameter`: name and range) and
``TEMPERATURE`` (the parameter multiplying the scores in the softmax, confounded with the
payoff scale). The functions here read those two class attributes, so that validation and
scaling are written once for every family (and any learner that declares them).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Parameter",
    "ALPHA",
    "BETA",
    "EPS",
    "learner_parameters",
    "parameter_names",
    "temperature_name",
    "check_parameters",
    "check_bias",
    "scaled",
]


class Parameter(NamedTuple):
    """An inferable learner parameter: its name and range ``[low, high]`` (``(low, high]`` if ``low_open``).

    Parameters inside the unit interval get Beta priors, the others LogNormal ones
    (see :class:`bayes_diml.models.Priors`).
    """

    name: str
    low: float
    high: float
    low_open: bool = False

    @property
    def unit(self) -> bool:
        """Tell whether the parameter lives in the unit interval (a rate or weight)."""
        return self.low == 0.0 and self.high == 1.0

    def describe(self) -> str:
        """Return the range as text, e.g. ``(0.0, 1.0]``."""
        return f"{'(' if self.low_open else '['}{self.low}, {self.high}{')' if np.isinf(self.high) else ']'}"


#: The parameters most families share: learning rate in (0, 1], inverse temperature >= 0,
#: exploration rate in [0, 1] (one definition, so their ranges cannot drift apart).
ALPHA = Parameter("alpha", 0.0, 1.0, low_open=True)
BETA = Parameter("beta", 0.0, np.inf)
EPS = Parameter("eps", 0.0, 1.0)


def learner_parameters(learner: Any) -> tuple[Parameter, ...]:
    """Return the inferable parameters of a learner (instance or class)."""
    params = getattr(learner, "PARAMETERS", None)
    if params is None:
        raise TypeError(
            f"{getattr(learner, '__name__', type(learner).__name__)} declares no PARAMETERS; "
            "use one of the learner families (bayes_diml.learners.FAMILIES) "
            "or declare PARAMETERS and TEMPERATURE."
        )
    return tuple(params)


def parameter_names(learner: Any) -> tuple[str, ...]:
    """Return the names of the inferable parameters, e.g. ``("alpha", "beta", "eps")`` for LogitQ."""
    return tuple(p.name for p in learner_parameters(learner))


def temperature_name(learner: Any) -> str:
    """Return the parameter that multiplies the scores in the softmax (confounded with the payoff scale)."""
    return str(learner.TEMPERATURE)


def check_parameters[L](learner: L, n_agents: int) -> L:
    """Validate shapes and ranges of a learner's concrete parameters (traced ones are skipped).

    Every parameter must be a finite scalar or ``float[n]`` inside its declared range;
    ``q0`` a scalar, ``float[n]`` or ``float[n, K]``; ``bias`` a scalar or ``float[n, K]``
    (:func:`check_bias`). Raises ``ValueError`` naming the field. Returns the learner, so
    that ``learner.check(n)`` chains.
    """
    cls = type(learner).__name__
    for p in learner_parameters(learner):
        value = getattr(learner, p.name)
        if isinstance(value, jax.core.Tracer):
            continue
        if isinstance(value, str):
            raise ValueError(
                f"{cls}.{p.name} = {value!r}: a learner used for likelihoods or simulation needs numbers; "
                "'infer' values are for bayes_diml.fit."
            )
        arr = np.asarray(value, dtype=float)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_agents):
            raise ValueError(
                f"{cls}.{p.name} must be a scalar or have shape (n,) = ({n_agents},); got {arr.shape}."
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{cls}.{p.name} must be finite; got {value!r}.")
        below = arr <= p.low if p.low_open else arr < p.low
        if np.any(below) or np.any(arr > p.high):
            raise ValueError(f"{cls}.{p.name} must lie in {p.describe()}; got {value!r}.")
    q0 = getattr(learner, "q0", 0.0)
    if not isinstance(q0, jax.core.Tracer):
        q = np.asarray(q0, dtype=float)
        if q.ndim > 2 or (q.ndim >= 1 and q.shape[0] != n_agents):
            raise ValueError(f"{cls}.q0 must be a scalar, (n,) or (n, K) with n = {n_agents}; got {q.shape}.")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"{cls}.q0 must be finite.")
    check_bias(learner, n_agents)
    return learner


def check_bias(learner: Any, n_agents: int, n_actions: Any = None) -> None:
    """Validate a learner's action bias (its ``bias`` field; learners without one pass).

    The bias must be a finite number or ``float[n, K]`` (per agent and action; ``K`` the largest
    action count, checked when ``n_actions``, the ``K_i``, are given). Raises ``ValueError``
    naming ``bias``; a traced bias is skipped.
    """
    bias = getattr(learner, "bias", 0.0)
    if isinstance(bias, jax.core.Tracer):
        return
    cls = type(learner).__name__
    if isinstance(bias, str):
        raise ValueError(
            f"{cls}.bias = {bias!r}: a learner used for likelihoods or simulation needs numbers; "
            "'infer' values are for bayes_diml.fit."
        )
    try:
        arr = np.asarray(bias, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{cls}.bias must be a number or float[n, K]; got {bias!r}.") from exc
    K = None if n_actions is None else max(int(k) for k in n_actions)
    if arr.ndim == 2 and arr.shape[0] == n_agents and K in (None, arr.shape[1]):
        pass
    elif arr.ndim != 0:
        raise ValueError(
            f"{cls}.bias must be a number or have shape (n, K) = ({n_agents}, {K or 'K'}), one value "
            f"per agent and action; got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{cls}.bias must be finite; got {bias!r}.")


def scaled[L](learner: L, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5) -> L:
    """Return a copy with the learning rate, temperature and eps multiplied (DIML's learner shift).

    ``alpha`` multiplies the learning rate ``alpha`` (capped at 1) of the families that have
    one (LogitQ, BanditQ, Aspiration, RegretMatching, MarkovQ; for the others it must stay 1),
    ``beta`` the temperature (:func:`temperature_name`: ``beta``, ``eta`` or ``lam``) and
    ``eps`` the exploration rate (capped at ``eps_cap``).
    """
    names = parameter_names(learner)
    changes = {}
    if "alpha" in names:
        changes["alpha"] = jnp.minimum(jnp.asarray(learner.alpha) * alpha, 1.0)
    elif alpha != 1.0:
        raise ValueError(
            f"{type(learner).__name__} has no learning rate alpha to scale (parameters: {names})."
        )
    temp = temperature_name(learner)
    changes[temp] = jnp.asarray(getattr(learner, temp)) * beta
    changes["eps"] = jnp.minimum(jnp.asarray(learner.eps) * eps, eps_cap)
    return learner._replace(**changes)
