"""Learning rules: counterfactual payoffs in, log-probabilities of next actions out.

A learner is a NamedTuple of (traceable) parameters with three pure methods, so that
``jit``, ``grad``, ``vmap`` and NumPyro see through it:

- ``init_state(action_mask, dtype) -> state`` (``action_mask: bool[n, K]``),
- ``update(state, counterfactual, actions) -> state`` with ``counterfactual: float[..., n, K]``
  the payoffs each agent would have got for each own action against the others' realised
  actions and ``actions: int[..., n]`` the realised actions,
- ``log_policy(state, action_mask) -> float[..., n, K]``, the log-probabilities of the
  next action (``-inf`` on padded actions ``k >= K_i``).

Parameters may be scalars (shared) or ``float[n]`` (per agent).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Learner",
    "LogitQ",
    "BanditQ",
    "Hedge",
    "FictitiousPlay",
    "EWA",
    "Parameter",
    "FAMILIES",
    "learner_family",
    "family_name",
    "learner_parameters",
    "parameter_names",
    "temperature_name",
    "check_parameters",
    "uses_payoff_levels",
    "masked_log_softmax",
    "epsilon_mixture",
    "epsilon_mixture_at",
    "logit_policy_log_prob",
    "per_agent",
]


@runtime_checkable
class Learner(Protocol):
    """The interface the likelihood and the simulator use."""

    def init_state(self, action_mask: jax.Array, dtype: Any) -> Any:
        """Initial learner state for one episode."""
        ...

    def update(self, state: Any, counterfactual: jax.Array, actions: jax.Array) -> Any:
        """State after observing one step."""
        ...

    def log_policy(self, state: Any, action_mask: jax.Array) -> jax.Array:
        """Log-probabilities of the next action: float[..., n, K]."""
        ...


def per_agent(x: Any, dtype: Any = None) -> jax.Array:
    """Broadcastable against float[..., n, K]: scalars stay scalars, float[n] -> float[n, 1]."""
    x = jnp.asarray(x, dtype=dtype)
    return x[..., None] if x.ndim >= 1 else x


def masked_log_softmax(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """log softmax over the last axis restricted to ``action_mask``; 0 on masked entries.

    Masked entries are returned as 0 (not -inf) so that later arithmetic and its
    gradients stay finite; callers mask them again at the end.
    """
    x = jnp.where(action_mask, logits, -jnp.inf)
    return jnp.where(action_mask, jax.nn.log_softmax(x, axis=-1), 0.0)


def _safe_log(x: jax.Array) -> jax.Array:
    """log(x) with log(0) = -inf and a finite (zero) gradient at 0."""
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, 1.0)), -jnp.inf)


def epsilon_mixture(log_greedy: jax.Array, eps: jax.Array, action_mask: jax.Array) -> jax.Array:
    """``log((1 - eps) exp(log_greedy) + eps / K_i)``, -inf on masked actions.

    log_greedy: float[..., n, K] (0 on masked entries); eps: scalar or per_agent-shaped.
    Written as ``log p + log1p(eps (1 / (K p) - 1))`` wherever ``p`` is not tiny, so that
    value and gradient stay exact at the boundaries ``eps = 0`` and ``eps = 1``; for tiny
    ``p`` (log p < -30) as a ``logaddexp`` of the two branches.
    """
    dtype = log_greedy.dtype
    log_k = jnp.log(action_mask.sum(-1, keepdims=True).astype(dtype))
    return jnp.where(action_mask, _mixture(log_greedy, jnp.asarray(eps, dtype), log_k), -jnp.inf)


def epsilon_mixture_at(
    log_greedy: jax.Array, eps: jax.Array, action_mask: jax.Array, actions: jax.Array
) -> jax.Array:
    """``epsilon_mixture(log_greedy, eps, action_mask)`` at ``actions: int[..., n]``: float[..., n].

    The same values and gradients, with the mixture computed on the selected entries only
    (K times fewer transcendental functions than mixing the whole policy).
    """
    dtype = log_greedy.dtype
    # a select, not a gather: its gradient is a select too (no scatter-add, which is slow on
    # CPU and which XLA tries to constant-fold when the actions are constants)
    hit = jnp.arange(log_greedy.shape[-1]) == actions[..., None]  # [..., n, K]
    sel = jnp.where(hit, log_greedy, 0.0).sum(-1, keepdims=True)  # [..., n, 1]
    counts = action_mask.sum(-1, keepdims=True)  # [n, 1]
    log_k = jnp.log(counts.astype(dtype))
    valid = actions[..., None] < counts  # padded actions have probability 0
    return jnp.where(valid, _mixture(sel, jnp.asarray(eps, dtype), log_k), -jnp.inf)[..., 0]


def logit_policy_log_prob(
    logits: jax.Array, eps: jax.Array, action_mask: jax.Array, actions: jax.Array
) -> jax.Array:
    """``epsilon_mixture(masked_log_softmax(logits, action_mask), eps, action_mask)`` at ``actions``.

    logits: float[..., n, K]; eps: scalar or float[n, 1] (:func:`per_agent`); actions:
    int[..., n]; returns float[..., n]. Computed without a log-softmax array as
    ``log((1 - eps) e_a + eps Z / K_i) - log Z`` with ``e_k = exp(logit_k - max)`` and
    ``Z = sum_k e_k``: one exponential per action and two logarithms per agent, exact (value
    and gradient) at ``eps = 0`` and ``eps = 1``; where ``(1 - eps) e_a + eps Z / K_i``
    underflows (``eps = 0`` and a probability below the dtype's smallest normal) it is
    ``log p_a`` itself. The selections are selects, so their gradients are not scatters.
    """
    mask = jnp.asarray(action_mask)
    dtype, K = logits.dtype, logits.shape[-1]
    # action-major layout: the reductions over the (few) actions become elementwise
    # operations between contiguous slices, which XLA vectorises; the trailing-axis
    # reductions of [..., n, K] with K ~ 2-10 do not vectorise (benchmarks/likelihood.py)
    x = jnp.moveaxis(logits, -1, 0)  # [K, ..., n]
    mask_k = jnp.moveaxis(mask, -1, 0).reshape(K, *(1,) * (x.ndim - 2), mask.shape[0])
    if not _all_true(action_mask):
        x = jnp.where(mask_k, x, -jnp.inf)
    top = jax.lax.stop_gradient(jnp.max(x, axis=0))  # [..., n]
    shifted = x - top
    e = jnp.exp(shifted)  # [K, ..., n]; 0 on padded actions
    total = jnp.sum(e, axis=0)
    log_total = jnp.log(total)
    hit = jnp.arange(K).reshape(K, *(1,) * actions.ndim) == actions  # a select, not a gather
    e_sel = jnp.where(hit, e, 0.0).sum(0)
    counts = mask.sum(-1)  # [n]
    valid = actions < counts  # padded actions have probability 0
    eps = jnp.asarray(eps, dtype)
    eps = eps[..., 0] if eps.ndim >= 1 else eps  # per_agent shape float[n, 1] -> float[n]
    mixed = (1.0 - eps) * e_sel + (eps / counts.astype(dtype)) * total
    ok = mixed > 0.0
    log_pi = jnp.log(jnp.where(ok, mixed, 1.0)) - log_total
    # the underflow case (eps = 0): log p_a from the logits themselves
    log_greedy = jnp.where(hit, shifted, 0.0).sum(0) - log_total
    return jnp.where(valid, jnp.where(ok, log_pi, log_greedy), -jnp.inf)


def _all_true(mask: Any) -> bool:
    """Whether a concrete mask is all True (False when it is traced: unknown)."""
    if isinstance(mask, jax.core.Tracer):
        return False
    return bool(np.all(np.asarray(mask)))


def _mixture(log_greedy: jax.Array, eps: jax.Array, log_k: jax.Array) -> jax.Array:
    """The unmasked mixture of :func:`epsilon_mixture` (``log_k = log K_i``, broadcastable)."""
    ok = log_greedy > -30.0
    lg_a = jnp.where(ok, log_greedy, 0.0)
    direct = lg_a + jnp.log1p(eps * (jnp.exp(-lg_a - log_k) - 1.0))
    # tiny p: a logaddexp of the two branches, whose eps terms are per agent (not per entry);
    # _safe_log keeps the unused branch's gradient finite at eps = 0 and eps = 1
    lg_b = jnp.where(ok, -1.0, log_greedy)
    split = jnp.logaddexp(_safe_log(1.0 - eps) + lg_b, _safe_log(eps) - log_k)
    return jnp.where(ok, direct, split)


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
        """Whether the parameter lives in the unit interval (a rate or weight)."""
        return self.low == 0.0 and self.high == 1.0

    def describe(self) -> str:
        """The range as text, e.g. ``(0.0, 1.0]``."""
        return f"{'(' if self.low_open else '['}{self.low}, {self.high}{')' if np.isinf(self.high) else ']'}"


class LogitQ(NamedTuple):
    """Logit-Q learning (DIML eq. 2-3).

    ``Q_i <- (1 - alpha) Q_i + alpha u_i(., a_-i(t))`` and
    ``pi_i = (1 - eps) softmax(beta Q_i) + eps / K_i``, with ``Q_i = q0`` at each
    episode's first step.

    Attributes
    ----------
    alpha : float[] or float[n]
        Learning rate in (0, 1].
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    q0 : float[], float[n] or float[n, K]
        Initial scores.
    """

    alpha: Any
    beta: Any
    eps: Any
    q0: Any = 0.0

    # inferable parameters with their ranges, and the one confounded with the payoff scale
    PARAMETERS = (
        Parameter("alpha", 0.0, 1.0, low_open=True),
        Parameter("beta", 0.0, np.inf),
        Parameter("eps", 0.0, 1.0),
    )
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Q at an episode's first step: float[n, K] (0 on padded actions)."""
        dtype = dtype or jnp.result_type(float)
        q0 = jnp.asarray(self.q0, dtype=dtype)
        if q0.ndim == 1:
            q0 = q0[:, None]
        return jnp.where(action_mask, jnp.broadcast_to(q0, action_mask.shape), 0.0).astype(dtype)

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """``(1 - alpha) Q + alpha u``: float[..., n, K] (``actions`` unused: full feedback)."""
        a, b = self.linear_update(state.dtype)
        return a * state + b * counterfactual

    def linear_update(self, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """``(a, b)`` with ``update(Q, u, actions) = a Q + b u`` for every ``actions``.

        Both broadcast against float[n, K] (``1 - alpha`` and ``alpha`` per agent). The
        likelihood runs such learners through :func:`bayes_diml.recurrence.linear_recurrence`.
        """
        alpha = per_agent(self.alpha, dtype)
        return 1.0 - alpha, alpha

    def log_policy(self, state: jax.Array, action_mask: jax.Array) -> jax.Array:
        """``log((1 - eps) softmax(beta Q) + eps / K_i)``: float[..., n, K]."""
        beta = per_agent(self.beta, state.dtype)
        eps = per_agent(self.eps, state.dtype)
        return epsilon_mixture(masked_log_softmax(beta * state, action_mask), eps, action_mask)

    def log_prob(self, state: jax.Array, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
        """``log_policy(state, action_mask)`` at ``actions: int[..., n]``: float[..., n] (cheaper)."""
        beta = per_agent(self.beta, state.dtype)
        eps = per_agent(self.eps, state.dtype)
        return logit_policy_log_prob(beta * state, eps, action_mask, actions)

    def check(self, n_agents: int) -> LogitQ:
        """Validate shapes and ranges of concrete parameters (no-op on traced ones)."""
        for name, lo, hi, lo_open in (
            ("alpha", 0.0, 1.0, True),
            ("beta", 0.0, np.inf, False),
            ("eps", 0.0, 1.0, False),
        ):
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            arr = np.asarray(value, dtype=float)
            if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_agents):
                raise ValueError(
                    f"LogitQ.{name} must be a scalar or have shape (n,) = ({n_agents},); got {arr.shape}."
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"LogitQ.{name} must be finite; got {value!r}.")
            below = arr <= lo if lo_open else arr < lo
            if np.any(below) or np.any(arr > hi):
                left = "(" if lo_open else "["
                raise ValueError(f"LogitQ.{name} must lie in {left}{lo}, {hi}]; got {value!r}.")
        if not isinstance(self.q0, jax.core.Tracer):
            q0 = np.asarray(self.q0, dtype=float)
            if q0.ndim > 2 or (q0.ndim >= 1 and q0.shape[0] != n_agents):
                raise ValueError(
                    f"LogitQ.q0 must be a scalar, (n,) or (n, K) with n = {n_agents}; got {q0.shape}."
                )
        return self

    def replace(self, **changes: Any) -> LogitQ:
        """A copy with some parameters changed (``learner.replace(beta=5.0)``)."""
        return self._replace(**changes)

    def scaled(self, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5) -> LogitQ:
        """Multiply alpha, beta, eps by factors (alpha capped at 1, eps at ``eps_cap``)."""
        return self._replace(
            alpha=jnp.minimum(jnp.asarray(self.alpha) * alpha, 1.0),
            beta=jnp.asarray(self.beta) * beta,
            eps=jnp.minimum(jnp.asarray(self.eps) * eps, eps_cap),
        )


# ------------------------------------------------------------------ learner families
def _initial_scores(q0: Any, action_mask: jax.Array, dtype: Any) -> jax.Array:
    """Initial scores float[n, K] from a scalar, float[n] or float[n, K] (0 on padded actions)."""
    q0 = jnp.asarray(q0, dtype=dtype)
    if q0.ndim == 1:
        q0 = q0[:, None]
    return jnp.where(action_mask, jnp.broadcast_to(q0, action_mask.shape), 0.0).astype(dtype)


def _played(actions: jax.Array, K: int, dtype: Any) -> jax.Array:
    """One-hot of the realised actions: int[..., n] -> float[..., n, K]."""
    return jax.nn.one_hot(actions, K, dtype=dtype)


def learner_parameters(learner: Any) -> tuple[Parameter, ...]:
    """The inferable parameters of a learner (instance or class)."""
    params = getattr(learner, "PARAMETERS", None)
    if params is None:
        raise TypeError(
            f"{getattr(learner, '__name__', type(learner).__name__)} declares no PARAMETERS; "
            f"use one of {', '.join(c.__name__ for c in FAMILIES.values())}."
        )
    return tuple(params)


def parameter_names(learner: Any) -> tuple[str, ...]:
    """Names of the inferable parameters, e.g. ``("alpha", "beta", "eps")`` for LogitQ."""
    return tuple(p.name for p in learner_parameters(learner))


def temperature_name(learner: Any) -> str:
    """The parameter that multiplies the scores in the softmax (confounded with the payoff scale)."""
    return str(learner.TEMPERATURE)


def uses_payoff_levels(learner: Any) -> bool:
    """Whether payoff *levels* (not only differences between own actions) enter the policy.

    True for learners that reinforce the played action more than the others (``BanditQ``,
    ``EWA`` unless ``delta`` is fixed at 1): adding ``c_i(a_-i)`` to agent i's payoffs then
    changes the likelihood, so centred (gauge-fixed) payoffs are a restriction, not a gauge.
    """
    if isinstance(learner, BanditQ):
        return True
    if isinstance(learner, EWA):
        delta = learner.delta
        if isinstance(delta, str | jax.core.Tracer):
            return True
        return not np.all(np.asarray(delta) == 1.0)
    return False


def check_parameters(learner: Any, n_agents: int) -> Any:
    """Validate shapes and ranges of a learner's concrete parameters (traced ones are skipped).

    Every parameter must be a finite scalar or ``float[n]`` inside its declared range;
    ``q0`` a scalar, ``float[n]`` or ``float[n, K]``. Raises ``ValueError`` naming the field.
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
    return learner


def _scaled(learner: Any, alpha: float, beta: float, eps: float, eps_cap: float) -> Any:
    """Multiply the learning rate ``alpha`` (if any), the temperature and eps (DIML's learner shift)."""
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


class BanditQ(NamedTuple):
    """Q-learning from the realised payoff only (no counterfactuals).

    ``Q_i(a_i) <- (1 - alpha) Q_i(a_i) + alpha u_i(a_i, a_-i(t))`` for the played action
    ``a_i = a_i(t)``; the other actions' scores stay. ``pi_i = (1 - eps) softmax(beta Q_i)
    + eps / K_i``; ``Q_i = q0`` at each episode's first step.

    Attributes
    ----------
    alpha : float[] or float[n]
        Learning rate in (0, 1].
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1].
    q0 : float[], float[n] or float[n, K]
        Initial scores.
    """

    alpha: Any
    beta: Any
    eps: Any
    q0: Any = 0.0

    PARAMETERS = LogitQ.PARAMETERS
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Q at an episode's first step: float[n, K]."""
        return _initial_scores(self.q0, action_mask, dtype or jnp.result_type(float))

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """Move the played action's Q towards its realised payoff ``counterfactual[..., i, a_i]``."""
        alpha = per_agent(self.alpha, state.dtype)
        played = _played(actions, state.shape[-1], state.dtype)
        return state + alpha * played * (counterfactual - state)

    def log_policy(self, state: jax.Array, action_mask: jax.Array) -> jax.Array:
        """``log((1 - eps) softmax(beta Q) + eps / K_i)``: float[..., n, K]."""
        beta = per_agent(self.beta, state.dtype)
        eps = per_agent(self.eps, state.dtype)
        return epsilon_mixture(masked_log_softmax(beta * state, action_mask), eps, action_mask)

    def log_prob(self, state: jax.Array, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
        """``log_policy`` at ``actions: int[..., n]``: float[..., n] (cheaper)."""
        beta, eps = per_agent(self.beta, state.dtype), per_agent(self.eps, state.dtype)
        return logit_policy_log_prob(beta * state, eps, action_mask, actions)

    def check(self, n_agents: int) -> BanditQ:
        """Validate shapes and ranges of concrete parameters (no-op on traced ones)."""
        return check_parameters(self, n_agents)

    def replace(self, **changes: Any) -> BanditQ:
        """A copy with some parameters changed."""
        return self._replace(**changes)

    def scaled(
        self, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5
    ) -> BanditQ:
        """Multiply alpha, beta, eps by factors (alpha capped at 1, eps at ``eps_cap``)."""
        return _scaled(self, alpha, beta, eps, eps_cap)


class Hedge(NamedTuple):
    """Exponential weights (Hedge) on cumulative counterfactual payoffs.

    ``S_i(t) = q0_i + sum_{s <= t} u_i(., a_-i(s))`` and
    ``pi_i = (1 - eps) softmax(eta S_i) + eps / K_i``.

    Attributes
    ----------
    eta : float[] or float[n]
        Learning rate (inverse temperature of the cumulative scores), >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1] (default 0: plain Hedge).
    q0 : float[], float[n] or float[n, K]
        Initial cumulative scores.
    """

    eta: Any
    eps: Any = 0.0
    q0: Any = 0.0

    PARAMETERS = (Parameter("eta", 0.0, np.inf), Parameter("eps", 0.0, 1.0))
    TEMPERATURE = "eta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> jax.Array:
        """Cumulative scores at an episode's first step: float[n, K]."""
        return _initial_scores(self.q0, action_mask, dtype or jnp.result_type(float))

    def update(self, state: jax.Array, counterfactual: jax.Array, actions: jax.Array) -> jax.Array:
        """``S + u``: float[..., n, K] (``actions`` unused: full feedback)."""
        return state + counterfactual

    def log_policy(self, state: jax.Array, action_mask: jax.Array) -> jax.Array:
        """``log((1 - eps) softmax(eta S) + eps / K_i)``: float[..., n, K]."""
        eta = per_agent(self.eta, state.dtype)
        eps = per_agent(self.eps, state.dtype)
        return epsilon_mixture(masked_log_softmax(eta * state, action_mask), eps, action_mask)

    def log_prob(self, state: jax.Array, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
        """``log_policy`` at ``actions: int[..., n]``: float[..., n] (cheaper)."""
        eta, eps = per_agent(self.eta, state.dtype), per_agent(self.eps, state.dtype)
        return logit_policy_log_prob(eta * state, eps, action_mask, actions)

    def check(self, n_agents: int) -> Hedge:
        """Validate shapes and ranges of concrete parameters (no-op on traced ones)."""
        return check_parameters(self, n_agents)

    def replace(self, **changes: Any) -> Hedge:
        """A copy with some parameters changed."""
        return self._replace(**changes)

    def scaled(self, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5) -> Hedge:
        """Multiply eta by ``beta`` and eps by ``eps`` (capped); Hedge has no alpha (must be 1)."""
        return _scaled(self, alpha, beta, eps, eps_cap)


class FictitiousPlay(NamedTuple):
    """Smoothed (logit) fictitious play.

    The expected payoff of each own action under the empirical distribution of the
    opponents' profiles is the running average of the counterfactual payoffs, with the
    initial value ``q0`` counted as ``prior_weight`` observations:
    ``V_i(t) = (w q0_i + sum_{s <= t} u_i(., a_-i(s))) / (w + t)``, and
    ``pi_i = (1 - eps) softmax(beta V_i) + eps / K_i`` (``V_i(0) = q0_i``).

    Attributes
    ----------
    beta : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1] (default 0).
    prior_weight : float[] or float[n]
        Weight ``w >= 0`` of the initial value, in observations (default 1).
    q0 : float[], float[n] or float[n, K]
        Initial expected payoffs.
    """

    beta: Any
    eps: Any = 0.0
    prior_weight: Any = 1.0
    q0: Any = 0.0

    PARAMETERS = (
        Parameter("beta", 0.0, np.inf),
        Parameter("eps", 0.0, 1.0),
        Parameter("prior_weight", 0.0, np.inf),
    )
    TEMPERATURE = "beta"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """``(V float[n, K], t float[n, 1])`` at an episode's first step."""
        dtype = dtype or jnp.result_type(float)
        return _initial_scores(self.q0, action_mask, dtype), jnp.zeros((action_mask.shape[0], 1), dtype)

    def update(self, state: tuple, counterfactual: jax.Array, actions: jax.Array) -> tuple:
        """``V <- V + (u - V) / (w + t + 1)``, ``t <- t + 1`` (``actions`` unused)."""
        values, count = state
        w = per_agent(self.prior_weight, values.dtype)
        count = count + 1.0
        return values + (counterfactual - values) / (w + count), count

    def log_policy(self, state: tuple, action_mask: jax.Array) -> jax.Array:
        """``log((1 - eps) softmax(beta V) + eps / K_i)``: float[..., n, K]."""
        values = state[0]
        beta = per_agent(self.beta, values.dtype)
        eps = per_agent(self.eps, values.dtype)
        return epsilon_mixture(masked_log_softmax(beta * values, action_mask), eps, action_mask)

    def log_prob(self, state: tuple, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
        """``log_policy`` at ``actions: int[..., n]``: float[..., n] (cheaper)."""
        values = state[0]
        beta, eps = per_agent(self.beta, values.dtype), per_agent(self.eps, values.dtype)
        return logit_policy_log_prob(beta * values, eps, action_mask, actions)

    def check(self, n_agents: int) -> FictitiousPlay:
        """Validate shapes and ranges of concrete parameters (no-op on traced ones)."""
        return check_parameters(self, n_agents)

    def replace(self, **changes: Any) -> FictitiousPlay:
        """A copy with some parameters changed."""
        return self._replace(**changes)

    def scaled(
        self, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5
    ) -> FictitiousPlay:
        """Multiply beta and eps (capped); fictitious play has no alpha (must be 1)."""
        return _scaled(self, alpha, beta, eps, eps_cap)


class EWA(NamedTuple):
    """Experience-weighted attraction (Camerer and Ho, 1999).

    ``N(t) = rho N(t-1) + 1`` with ``N(0) = n0``;
    ``A_j(t) = (phi N(t-1) A_j(t-1) + [delta + (1 - delta) 1{j = a_i(t)}] u_i(j, a_-i(t))) / N(t)``
    with ``A(0) = q0``; ``pi_i = (1 - eps) softmax(lam A_i) + eps / K_i``.

    Nestings (exact): ``delta = 1, phi = rho = 1 - alpha, n0 = 1 / alpha`` is ``LogitQ(alpha,
    lam, eps)``; ``delta = 1, phi = rho = 1`` is ``FictitiousPlay(lam, eps, prior_weight=n0)``;
    ``delta = 1, phi = 1, rho = 0, n0 = 1`` is ``Hedge(lam, eps)``.

    Attributes
    ----------
    phi : float[] or float[n]
        Decay of past attractions, in [0, 1].
    delta : float[] or float[n]
        Weight of forgone (counterfactual) payoffs, in [0, 1].
    rho : float[] or float[n]
        Decay of the experience weight, in [0, 1].
    lam : float[] or float[n]
        Inverse temperature, >= 0.
    eps : float[] or float[n]
        Exploration rate in [0, 1] (default 0).
    n0 : float[] or float[n]
        Initial experience weight ``N(0) >= 0`` (default 1).
    q0 : float[], float[n] or float[n, K]
        Initial attractions.
    """

    phi: Any
    delta: Any
    rho: Any
    lam: Any
    eps: Any = 0.0
    n0: Any = 1.0
    q0: Any = 0.0

    PARAMETERS = (
        Parameter("phi", 0.0, 1.0),
        Parameter("delta", 0.0, 1.0),
        Parameter("rho", 0.0, 1.0),
        Parameter("lam", 0.0, np.inf),
        Parameter("eps", 0.0, 1.0),
        Parameter("n0", 0.0, np.inf),
    )
    TEMPERATURE = "lam"

    def init_state(self, action_mask: jax.Array, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """``(A float[n, K], N float[n, 1])`` at an episode's first step."""
        dtype = dtype or jnp.result_type(float)
        n0 = jnp.broadcast_to(per_agent(self.n0, dtype), (action_mask.shape[0], 1)).astype(dtype)
        return _initial_scores(self.q0, action_mask, dtype), n0

    def update(self, state: tuple, counterfactual: jax.Array, actions: jax.Array) -> tuple:
        """One EWA step; the realised actions ``int[..., n]`` get the full payoff weight."""
        attractions, experience = state
        dtype = attractions.dtype
        phi, delta, rho = (per_agent(v, dtype) for v in (self.phi, self.delta, self.rho))
        new_experience = rho * experience + 1.0
        weight = delta + (1.0 - delta) * _played(actions, attractions.shape[-1], dtype)
        new = (phi * experience * attractions + weight * counterfactual) / new_experience
        return new, new_experience

    def log_policy(self, state: tuple, action_mask: jax.Array) -> jax.Array:
        """``log((1 - eps) softmax(lam A) + eps / K_i)``: float[..., n, K]."""
        attractions = state[0]
        lam = per_agent(self.lam, attractions.dtype)
        eps = per_agent(self.eps, attractions.dtype)
        return epsilon_mixture(masked_log_softmax(lam * attractions, action_mask), eps, action_mask)

    def log_prob(self, state: tuple, action_mask: jax.Array, actions: jax.Array) -> jax.Array:
        """``log_policy`` at ``actions: int[..., n]``: float[..., n] (cheaper)."""
        attractions = state[0]
        lam, eps = per_agent(self.lam, attractions.dtype), per_agent(self.eps, attractions.dtype)
        return logit_policy_log_prob(lam * attractions, eps, action_mask, actions)

    def check(self, n_agents: int) -> EWA:
        """Validate shapes and ranges of concrete parameters (no-op on traced ones)."""
        return check_parameters(self, n_agents)

    def replace(self, **changes: Any) -> EWA:
        """A copy with some parameters changed."""
        return self._replace(**changes)

    def scaled(self, alpha: float = 1.0, beta: float = 1.0, eps: float = 1.0, eps_cap: float = 0.5) -> EWA:
        """Multiply lam by ``beta`` and eps (capped); EWA has no alpha (must be 1)."""
        return _scaled(self, alpha, beta, eps, eps_cap)


#: Learner families by their command-line name.
FAMILIES: dict[str, type] = {
    "logitq": LogitQ,
    "bandit": BanditQ,
    "hedge": Hedge,
    "fp": FictitiousPlay,
    "ewa": EWA,
}


def learner_family(name: str) -> type:
    """The learner class of a family name (``logitq``, ``bandit``, ``hedge``, ``fp``, ``ewa``) or class."""
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    for short, cls in FAMILIES.items():
        if key in (short, cls.__name__.lower()):
            return cls
    raise ValueError(f"unknown learner family {name!r}; choose one of {', '.join(FAMILIES)}.")


def family_name(learner: Any) -> str:
    """The short family name of a learner (instance or class), e.g. ``"hedge"``."""
    cls = learner if isinstance(learner, type) else type(learner)
    for short, c in FAMILIES.items():
        if c is cls:
            return short
    return cls.__name__
