"""NumPyro model of action trajectories under logit-Q learning and an unknown mechanism.

Sites (names are the ArviZ variable names):

- mechanism weights: ``u{i}_free`` for a ``Tabular`` mechanism (gauge-fixed, see
  :func:`sum_to_zero_basis`), else ``mech.<path>`` per leaf of the params pytree;
- learner: ``alpha``, ``beta``, ``eps`` (scalars, or ``float[n]`` inside the ``agent``
  plate) unless fixed;
- ``payoff_noise`` when payoffs are observed;
- observations: ``actions`` (Categorical over the next action, plates
  ``episode x step x agent``, masked on padding) and ``payoffs`` (Normal, plates
  ``episode x time x agent``, masked where unobserved);
- deterministic: ``centred_payoffs`` float[K_1, ..., K_n, n] for small games, and
  ``scaled_payoffs = beta * centred_payoffs`` (the identified product) when beta and
  the payoff scale are confounded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_diml.counterfactual import evaluate_plan, plan_for
from bayes_diml.data import Trajectories
from bayes_diml.learners import LogitQ
from bayes_diml.likelihood import scan_log_policies
from bayes_diml.mechanisms import Tabular, flatten_params, joint_profiles, param_count
from bayes_diml.mechanisms.base import sum_to_zero_basis
from bayes_diml.metrics import payoff_differences

__all__ = [
    "INFER",
    "INFER_PER_AGENT",
    "LEARNER_FIELDS",
    "Priors",
    "logit_q_model",
    "sum_to_zero_basis",
    "mechanism_sites",
    "params_from_sites",
    "sites_from_params",
    "resolve_learner",
    "learner_from_sites",
    "inferred_learner_fields",
    "is_confounded",
    "has_fixed_units",
    "REPORT_TABLE_LIMIT",
    "deterministic_site_names",
]

INFER = "infer"
INFER_PER_AGENT = "infer_per_agent"
LEARNER_FIELDS = ("alpha", "beta", "eps")
#: Largest number of (profile, agent) cells for which the centred payoff table is recorded.
REPORT_TABLE_LIMIT = 20_000


@dataclass(frozen=True)
class Priors:
    """Prior hyper-parameters (plain numbers, so fits can be saved and rebuilt).

    Attributes
    ----------
    mechanism_scale : float or None
        Normal(0, scale) on every mechanism weight (for a ``Tabular`` mechanism, on the
        gauge-free coordinates: the centred payoffs get an isotropic N(0, scale^2) prior
        inside the sum-to-zero subspace). ``None`` means flat (improper): MAP with flat
        priors and a fixed learner is DIML's maximum-likelihood estimate.
    alpha : (a, b)
        Beta(a, b) prior on the learning rate.
    beta : (loc, scale)
        LogNormal(loc, scale) prior on the inverse temperature.
    eps : (a, b)
        Beta(a, b) prior on the exploration rate.
    payoff_noise : float
        HalfNormal(scale) prior on the noise of observed payoffs.
    """

    mechanism_scale: float | None = 1.0
    alpha: tuple[float, float] = (2.0, 4.0)
    beta: tuple[float, float] = (1.0, 1.0)
    eps: tuple[float, float] = (1.0, 15.0)
    payoff_noise: float = 1.0

    def __post_init__(self) -> None:
        if self.mechanism_scale is not None and not float(self.mechanism_scale) > 0:
            raise ValueError(f"Priors.mechanism_scale must be > 0 or None; got {self.mechanism_scale}.")
        for name in ("alpha", "beta", "eps"):
            pair = getattr(self, name)
            if len(tuple(pair)) != 2:
                raise ValueError(f"Priors.{name} must be a pair of numbers; got {pair!r}.")
            object.__setattr__(self, name, tuple(float(v) for v in pair))
        if not (self.alpha[0] > 0 and self.alpha[1] > 0 and self.eps[0] > 0 and self.eps[1] > 0):
            raise ValueError("Beta prior parameters of alpha and eps must be > 0.")
        if not self.beta[1] > 0 or not float(self.payoff_noise) > 0:
            raise ValueError("Priors.beta scale and Priors.payoff_noise must be > 0.")

    def learner_distribution(self, name: str) -> dist.Distribution:
        """The prior distribution of ``alpha``, ``beta`` or ``eps``."""
        if name == "alpha":
            return dist.Beta(*self.alpha)
        if name == "beta":
            return dist.LogNormal(*self.beta)
        if name == "eps":
            return dist.Beta(*self.eps)
        raise KeyError(name)

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Priors:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


# ----------------------------------------------------------------------- gauge fixing
def _tabular_from_free(mechanism: Tabular, free: list[jax.Array]) -> jax.Array:
    """Centred table float[K_1..K_n, n] from gauge-free coordinates (one array per agent)."""
    cols = []
    for i, z in enumerate(free):
        H = jnp.asarray(sum_to_zero_basis(mechanism.n_actions[i]), dtype=z.dtype)
        c = jnp.tensordot(z, H, axes=([z.ndim - mechanism.n_agents + i], [1]))  # axis i -> last
        cols.append(jnp.moveaxis(c, -1, z.ndim - mechanism.n_agents + i))
    return jnp.stack(cols, axis=-1)


def _free_shape(mechanism: Tabular, i: int) -> tuple[int, ...]:
    shape = list(mechanism.n_actions)
    shape[i] -= 1
    return tuple(shape)


def _identified_sites(mechanism: Any) -> dict[str, tuple[int, ...]] | None:
    fn = getattr(mechanism, "identified_sites", None)
    return fn() if callable(fn) else None


def mechanism_sites(mechanism: Any) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the mechanism's sample sites (its identified parametrisation).

    ``Tabular``: gauge-free coordinates ``u{i}_free``; mechanisms with
    ``identified_sites()`` (structured families, networks without their output bias):
    ``mech.<name>``; otherwise every leaf of the params pytree as ``mech.<path>``.
    """
    if isinstance(mechanism, Tabular):
        return {f"u{i}_free": _free_shape(mechanism, i) for i in range(mechanism.n_agents)}
    ident = _identified_sites(mechanism)
    if ident is not None:
        return {f"mech.{k}": tuple(v) for k, v in ident.items()}
    template = mechanism.init(jax.random.key(0))
    return {f"mech.{k}": tuple(np.shape(v)) for k, v in flatten_params(template).items()}


def params_from_sites(mechanism: Any, sites: dict[str, Any]) -> Any:
    """Mechanism params from site values (works with extra leading batch dims on Tabular)."""
    if isinstance(mechanism, Tabular):
        free = [jnp.asarray(sites[f"u{i}_free"]) for i in range(mechanism.n_agents)]
        return {"table": _tabular_from_free(mechanism, free)}
    ident = _identified_sites(mechanism)
    if ident is not None:
        return mechanism.params_from_identified({k: sites[f"mech.{k}"] for k in ident})
    template = mechanism.init(jax.random.key(0))
    leaves, treedef = jax.tree_util.tree_flatten(template)
    names = list(flatten_params(template))
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(sites[f"mech.{k}"]) for k in names])


def sites_from_params(mechanism: Any, params: Any) -> dict[str, Any]:
    """Site values representing ``params`` (up to the gauge): inverse of :func:`params_from_sites`."""
    if isinstance(mechanism, Tabular):
        return free_from_table(mechanism, params["table"])
    if _identified_sites(mechanism) is not None:
        return {f"mech.{k}": jnp.asarray(v) for k, v in mechanism.identified_from_params(params).items()}
    return {f"mech.{k}": jnp.asarray(v) for k, v in flatten_params(params).items()}


def free_from_table(mechanism: Tabular, table: Any) -> dict[str, np.ndarray]:
    """Gauge-free site values of a payoff table (its centred part)."""
    table = np.asarray(table, dtype=float)
    out = {}
    for i in range(mechanism.n_agents):
        c = table[..., i] - table[..., i].mean(axis=i, keepdims=True)
        H = sum_to_zero_basis(mechanism.n_actions[i])
        out[f"u{i}_free"] = np.moveaxis(np.tensordot(c, H, axes=([i], [0])), -1, i)
    return out


def _sample_mechanism(mechanism: Any, priors: Priors) -> Any:
    scale = priors.mechanism_scale
    sites = {}
    for name, shape in mechanism_sites(mechanism).items():
        if scale is None:
            d = dist.ImproperUniform(dist.constraints.real, (), shape)
        else:
            d = dist.Normal(0.0, float(scale)).expand(shape).to_event(len(shape))
        sites[name] = numpyro.sample(name, d)
    params = params_from_sites(mechanism, sites)
    if _identified_sites(mechanism) is not None and param_count(params) <= 200:
        for k, v in flatten_params(params).items():  # the original parameters, recoverable
            numpyro.deterministic(f"param.{k}", v)
    return params


# ------------------------------------------------------------------------- learner
def resolve_learner(learner: Any) -> LogitQ:
    """Normalise a learner spec: ``None`` -> everything inferred; checks field values.

    Each of ``alpha, beta, eps`` is a number or array (fixed), ``"infer"`` (one shared
    value) or ``"infer_per_agent"``.
    """
    if learner is None:
        return LogitQ(INFER, INFER, INFER)
    if not isinstance(learner, LogitQ):
        raise TypeError(f"learner must be a LogitQ (fields may be 'infer'); got {type(learner).__name__}.")
    for name in LEARNER_FIELDS:
        v = getattr(learner, name)
        if isinstance(v, str) and v not in (INFER, INFER_PER_AGENT):
            raise ValueError(f"learner.{name} = {v!r}: use a number, {INFER!r} or {INFER_PER_AGENT!r}.")
    return learner


def inferred_learner_fields(learner: LogitQ) -> tuple[str, ...]:
    """Names of the learner parameters that are inferred."""
    return tuple(n for n in LEARNER_FIELDS if isinstance(getattr(learner, n), str))


def _fixed_learner_check(learner: LogitQ, n_agents: int) -> None:
    fixed = {
        n: (0.5 if isinstance(getattr(learner, n), str) else getattr(learner, n)) for n in LEARNER_FIELDS
    }
    LogitQ(**fixed, q0=learner.q0).check(n_agents)


def _sample_learner(learner: LogitQ, priors: Priors, n_agents: int) -> LogitQ:
    values = {}
    for name in LEARNER_FIELDS:
        v = getattr(learner, name)
        if v == INFER:
            values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif v == INFER_PER_AGENT:
            with numpyro.plate("agent", n_agents, dim=-1):
                values[name] = numpyro.sample(name, priors.learner_distribution(name))
        else:
            values[name] = jnp.asarray(v, dtype=jnp.result_type(float))
    return LogitQ(values["alpha"], values["beta"], values["eps"], learner.q0)


def learner_from_sites(learner: LogitQ, sites: dict[str, Any]) -> LogitQ:
    """The learner with inferred fields taken from ``sites`` (e.g. one posterior draw)."""
    return learner._replace(
        **{n: jnp.asarray(sites[n]) for n in LEARNER_FIELDS if isinstance(getattr(learner, n), str)}
    )


# --------------------------------------------------------------------- identification
def has_fixed_units(mechanism: Any) -> bool:
    """Whether the mechanism's payoff scale is fixed (known constants set its units)."""
    return bool(getattr(mechanism, "fixed_units", False))


def is_confounded(mechanism: Any, learner: LogitQ, data: Trajectories) -> bool:
    """beta inferred, no observed payoffs and a free payoff scale: beta x scale is all that is identified."""
    return isinstance(learner.beta, str) and not data.has_payoffs and not has_fixed_units(mechanism)


def _reports_table(n_actions: tuple[int, ...]) -> bool:
    return math.prod(n_actions) * len(n_actions) <= REPORT_TABLE_LIMIT


def deterministic_site_names(data: Trajectories, mechanism: Any, learner: LogitQ | None) -> list[str]:
    """Names of the model's deterministic sites for these inputs."""
    names = []
    if _identified_sites(mechanism) is not None:
        template = mechanism.init(jax.random.key(0))
        if param_count(template) <= 200:
            names += [f"param.{k}" for k in flatten_params(template)]
    if not _reports_table(data.n_actions):
        return names
    names.append("centred_payoffs")
    if is_confounded(mechanism, resolve_learner(learner), data):
        names.append("scaled_payoffs")
    return names


# --------------------------------------------------------------------------- model
def logit_q_model(
    data: Trajectories,
    mechanism: Any,
    learner: LogitQ | None = None,
    priors: Priors = Priors(),
    *,
    observe: bool = True,
) -> None:
    """NumPyro model: priors on mechanism and learner, exact logit-Q likelihood of actions.

    Parameters
    ----------
    data : Trajectories
        ``actions: int[M, T, n]``; the history that conditions every next-action term.
    mechanism : Mechanism
    learner : LogitQ, optional
        Fields fixed (numbers) or ``"infer"`` / ``"infer_per_agent"``; ``None`` infers all.
    priors : Priors
    observe : bool
        If False, next actions and payoffs are sampled (posterior/prior predictive of one
        step ahead given the observed history) instead of observed.
    """
    learner = resolve_learner(learner)
    M, T, n = data.actions.shape
    params = _sample_mechanism(mechanism, priors)
    lq = _sample_learner(learner, priors, n)

    if _reports_table(data.n_actions):
        profiles = jnp.asarray(joint_profiles(data.n_actions).reshape(*data.n_actions, n))
        centred = numpyro.deterministic(
            "centred_payoffs", payoff_differences(mechanism, params, profiles, n_actions=data.n_actions)
        )
        if is_confounded(mechanism, learner, data):
            numpyro.deterministic("scaled_payoffs", centred * lq.beta)

    plan = plan_for(mechanism, data)
    cf = evaluate_plan(mechanism, params, plan)  # [M, T-1, n, K]
    log_pi = scan_log_policies(lq, cf, jnp.asarray(data.actions[:, :-1]), jnp.asarray(plan.action_mask))
    # padded actions (k >= K_i) get the smallest finite logit: probability 0, valid parameter
    log_pi = jnp.where(jnp.isneginf(log_pi), jnp.finfo(log_pi.dtype).min, log_pi)
    scored = jnp.asarray(data.scored_mask)[:, :, None]
    with (
        numpyro.plate("episode", M, dim=-3),
        numpyro.plate("step", T - 1, dim=-2),
        numpyro.plate("agent", n, dim=-1),
    ):
        numpyro.sample(
            "actions",
            dist.Categorical(logits=log_pi).mask(scored),
            obs=jnp.asarray(data.actions[:, 1:]) if observe else None,
        )

    if data.has_payoffs:
        sigma = numpyro.sample("payoff_noise", dist.HalfNormal(priors.payoff_noise))
        realised = mechanism.payoffs(params, jnp.asarray(data.actions))  # [M, T, n]
        observed = np.isfinite(data.payoffs)
        with (
            numpyro.plate("episode", M, dim=-3),
            numpyro.plate("time", T, dim=-2),
            numpyro.plate("agent", n, dim=-1),
        ):
            numpyro.sample(
                "payoffs",
                dist.Normal(realised, sigma).mask(jnp.asarray(observed)),
                obs=jnp.asarray(np.nan_to_num(data.payoffs)) if observe else None,
            )
