"""NumPyro model of action trajectories under logit-Q learning and an unknown mechanism.

Sites (names are the ArviZ variable names):

- mechanism weights: ``u{i}_free`` for a ``Tabular`` mechanism (gauge-fixed, see
  :func:`sum_to_zero_basis`), else ``mech.<path>`` per leaf of the params pytree;
- learner: ``alpha``, ``beta``, ``eps`` (scalars, or ``float[n]`` inside the ``agent``
  plate) unless fixed; other learner families (``Hedge``, ``EWA``, ...) have one site per
  inferred parameter, named after it (``eta``, ``phi``, ``delta``, ``rho``, ``lam``, ...);
- ``payoff_noise`` when payoffs are observed;
- observations: ``actions`` (:class:`LearnerPolicy`, the learner's categorical policy over the
  next action, scoring only the observed action; plates
  ``episode x step x agent``, masked on padding) and ``payoffs`` (Normal, plates
  ``episode x time x agent``, masked where unobserved);
- deterministic: ``centred_payoffs`` float[K_1, ..., K_n, n] for small games, and
  ``scaled_payoffs = beta * centred_payoffs`` (the identified product) when beta and
  the payoff scale are confounded (for Hedge eta, for EWA lam in place of beta).
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
from bayes_diml.learners import FAMILIES, LogitQ, learner_parameters, parameter_names, temperature_name
from bayes_diml.likelihood import scan_states
from bayes_diml.mechanisms import Tabular, flatten_params, joint_profiles, param_count
from bayes_diml.mechanisms.base import sum_to_zero_basis
from bayes_diml.metrics import payoff_differences
from bayes_diml.precision import FULL_PRECISION

from .hierarchical import hierarchical_site_names, sample_hierarchical
from .policy import LearnerPolicy

__all__ = [
    "INFER",
    "INFER_PER_AGENT",
    "INFER_HIERARCHICAL",
    "LEARNER_FIELDS",
    "LEARNER_PRIOR_KINDS",
    "learner_fields",
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
#: One value per agent from a population prior, non-centred (see ``models/hierarchical.py``).
INFER_HIERARCHICAL = "infer_hierarchical"
LEARNER_FIELDS = ("alpha", "beta", "eps")  # LogitQ's; other families: learner_fields(learner)
#: Prior kind of every learner parameter of every family: Beta on the unit interval, else LogNormal.
LEARNER_PRIOR_KINDS = {
    p.name: ("beta" if p.unit else "lognormal") for cls in FAMILIES.values() for p in learner_parameters(cls)
}
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
    eta : (loc, scale)
        LogNormal prior on Hedge's learning rate (it multiplies cumulative payoffs, so it is
        smaller than beta: median e^-1.5 = 0.22).
    lam : (loc, scale)
        LogNormal prior on EWA's inverse temperature.
    phi, delta, rho : (a, b)
        Beta priors on EWA's attraction decay, forgone-payoff weight and experience decay.
    n0 : (loc, scale)
        LogNormal prior on EWA's initial experience weight N(0).
    prior_weight : (loc, scale)
        LogNormal prior on fictitious play's weight of the initial value.
    population : (mu_scale, sigma_scale)
        Hierarchical (``"infer_hierarchical"``) parameters: ``link(theta_i) = mu + sigma z_i``
        with ``mu ~ Normal(link(centre of the parameter's prior above), mu_scale)`` and
        ``sigma ~ HalfNormal(sigma_scale)`` (``models/hierarchical.py``).
    h : (a, b)
        Beta prior on the aspiration learner's aspiration adaptation rate (mean 0.25).

    Parameters in the unit interval have Beta(a, b) priors, the others LogNormal(loc, scale)
    (see ``bayes_diml.learners.Parameter``).
    """

    mechanism_scale: float | None = 1.0
    alpha: tuple[float, float] = (2.0, 4.0)
    beta: tuple[float, float] = (1.0, 1.0)
    eps: tuple[float, float] = (1.0, 15.0)
    payoff_noise: float = 1.0
    eta: tuple[float, float] = (-1.5, 1.0)
    lam: tuple[float, float] = (1.0, 1.0)
    phi: tuple[float, float] = (4.0, 2.0)
    delta: tuple[float, float] = (1.0, 1.0)
    rho: tuple[float, float] = (2.0, 2.0)
    n0: tuple[float, float] = (0.0, 1.0)
    prior_weight: tuple[float, float] = (0.0, 1.0)
    population: tuple[float, float] = (1.0, 0.5)
    h: tuple[float, float] = (2.0, 6.0)

    def __post_init__(self) -> None:
        pop = tuple(float(v) for v in self.population)
        if len(pop) != 2 or not all(np.isfinite(v) and v > 0 for v in pop):
            raise ValueError(
                f"Priors.population must be (mu_scale, sigma_scale), both > 0; got {self.population!r}."
            )
        object.__setattr__(self, "population", pop)
        if self.mechanism_scale is not None and not float(self.mechanism_scale) > 0:
            raise ValueError(f"Priors.mechanism_scale must be > 0 or None; got {self.mechanism_scale}.")
        for name in LEARNER_PRIOR_KINDS:
            pair = getattr(self, name)
            if isinstance(pair, str) or len(tuple(pair)) != 2:
                raise ValueError(f"Priors.{name} must be a pair of numbers; got {pair!r}.")
            object.__setattr__(self, name, tuple(float(v) for v in pair))
        if not (self.alpha[0] > 0 and self.alpha[1] > 0 and self.eps[0] > 0 and self.eps[1] > 0):
            raise ValueError("Beta prior parameters of alpha and eps must be > 0.")
        if not self.beta[1] > 0 or not float(self.payoff_noise) > 0:
            raise ValueError("Priors.beta scale and Priors.payoff_noise must be > 0.")
        for name, kind in LEARNER_PRIOR_KINDS.items():
            a, b = getattr(self, name)
            if not (np.isfinite(a) and np.isfinite(b)) or not b > 0 or (kind == "beta" and not a > 0):
                what = "Beta(a, b) parameters" if kind == "beta" else "LogNormal(loc, scale) scale"
                raise ValueError(f"Priors.{name}: the {what} must be > 0 and finite; got {(a, b)!r}.")

    def learner_distribution(self, name: str) -> dist.Distribution:
        """The prior distribution of a learner parameter (``alpha``, ``beta``, ``eps``, ``eta``, ...)."""
        kind = LEARNER_PRIOR_KINDS.get(name)
        if kind is None:
            raise KeyError(name)
        return dist.Beta(*getattr(self, name)) if kind == "beta" else dist.LogNormal(*getattr(self, name))

    def learner_centre(self, name: str) -> float:
        """A central value of a learner parameter's prior (Beta mean, LogNormal median)."""
        a, b = getattr(self, name)
        return a / (a + b) if LEARNER_PRIOR_KINDS[name] == "beta" else float(np.exp(a))

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
        # axis i -> last; full float32 precision on GPUs too, as the mechanisms' products
        axes = ([z.ndim - mechanism.n_agents + i], [1])
        c = jnp.tensordot(z, H, axes=axes, precision=FULL_PRECISION)
        cols.append(jnp.moveaxis(c, -1, z.ndim - mechanism.n_agents + i))
    return jnp.stack(cols, axis=-1)


def _free_shape(mechanism: Tabular, i: int) -> tuple[int, ...]:
    shape = list(mechanism.n_actions)
    shape[i] -= 1
    return tuple(shape)


def _level_shape(mechanism: Tabular, i: int) -> tuple[int, ...]:
    """Shape of agent i's level site: one mean payoff per opponent profile (axis i dropped)."""
    return tuple(k for j, k in enumerate(mechanism.n_actions) if j != i)


def _add_levels(mechanism: Tabular, table: jax.Array, sites: dict[str, Any]) -> jax.Array:
    """``table[..., i] + level_i`` broadcast over agent i's own actions (batch dims allowed)."""
    n = mechanism.n_agents
    cols = []
    for i in range(n):
        level = jnp.asarray(sites[f"u{i}_level"], dtype=table.dtype)
        cols.append(table[..., i] + jnp.expand_dims(level, level.ndim - (n - 1) + i))
    return jnp.stack(cols, axis=-1)


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
        sites = {f"u{i}_free": _free_shape(mechanism, i) for i in range(mechanism.n_agents)}
        if mechanism.levels:
            sites.update({f"u{i}_level": _level_shape(mechanism, i) for i in range(mechanism.n_agents)})
        return sites
    ident = _identified_sites(mechanism)
    if ident is not None:
        return {f"mech.{k}": tuple(v) for k, v in ident.items()}
    template = mechanism.init(jax.random.key(0))
    return {f"mech.{k}": tuple(np.shape(v)) for k, v in flatten_params(template).items()}


def params_from_sites(mechanism: Any, sites: dict[str, Any]) -> Any:
    """Mechanism params from site values (works with extra leading batch dims on Tabular)."""
    if isinstance(mechanism, Tabular):
        free = [jnp.asarray(sites[f"u{i}_free"]) for i in range(mechanism.n_agents)]
        table = _tabular_from_free(mechanism, free)
        if mechanism.levels:
            table = _add_levels(mechanism, table, sites)
        return {"table": table}
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
        if mechanism.levels:
            out[f"u{i}_level"] = table[..., i].mean(axis=i)
    return out


def _site_scale(mechanism: Any, name: str, scale: float) -> float:
    """Prior sd of a mechanism site: ``scale``, or ``scale / sqrt(K_i)`` for a Tabular level.

    With that choice the full table of a ``Tabular(levels=True)`` has i.i.d. N(0, scale^2)
    entries: the centred part (isotropic in the sum-to-zero subspace) plus the mean over
    agent i's K_i own actions.
    """
    if isinstance(mechanism, Tabular) and name.endswith("_level"):
        i = int(name[1 : -len("_level")])
        return scale / math.sqrt(mechanism.n_actions[i])
    return scale


def _sample_mechanism(mechanism: Any, priors: Priors) -> Any:
    scale = priors.mechanism_scale
    sites = {}
    for name, shape in mechanism_sites(mechanism).items():
        if scale is None:
            d = dist.ImproperUniform(dist.constraints.real, (), shape)
        else:
            sd = _site_scale(mechanism, name, float(scale))
            d = dist.Normal(0.0, sd).expand(shape).to_event(len(shape))
        sites[name] = numpyro.sample(name, d)
    params = params_from_sites(mechanism, sites)
    if _identified_sites(mechanism) is not None and param_count(params) <= 200:
        for k, v in flatten_params(params).items():  # the original parameters, recoverable
            numpyro.deterministic(f"param.{k}", v)
    return params


# ------------------------------------------------------------------------- learner
def learner_fields(learner: Any) -> tuple[str, ...]:
    """Names of a learner family's inferable parameters (``("alpha", "beta", "eps")`` for LogitQ)."""
    return parameter_names(learner)


def resolve_learner(learner: Any) -> Any:
    """Normalise a learner spec: ``None`` -> ``LogitQ`` with everything inferred; checks field values.

    ``learner`` is an instance of a learner family (``LogitQ``, ``BanditQ``, ``Hedge``,
    ``FictitiousPlay``, ``EWA``, or any learner declaring ``PARAMETERS`` and ``TEMPERATURE``);
    each of its parameters is a number or array (fixed), ``"infer"`` (one shared value) or
    ``"infer_per_agent"``.
    """
    if learner is None:
        return LogitQ(INFER, INFER, INFER)
    if getattr(type(learner), "PARAMETERS", None) is None or not hasattr(learner, "_replace"):
        families = ", ".join(c.__name__ for c in FAMILIES.values())
        raise TypeError(
            f"learner must be one of the learner families ({families}; fields may be 'infer'); "
            f"got {type(learner).__name__}."
        )
    for name in learner_fields(learner):
        v = getattr(learner, name)
        if isinstance(v, str) and v not in (INFER, INFER_PER_AGENT, INFER_HIERARCHICAL):
            raise ValueError(
                f"learner.{name} = {v!r}: use a number, {INFER!r}, {INFER_PER_AGENT!r} "
                f"or {INFER_HIERARCHICAL!r}."
            )
    return learner


def inferred_learner_fields(learner: Any) -> tuple[str, ...]:
    """Names of the learner parameters that are inferred."""
    return tuple(n for n in learner_fields(learner) if isinstance(getattr(learner, n), str))


def hierarchical_learner_fields(learner: Any) -> list[str]:
    """Names of the parameters set to ``"infer_hierarchical"``."""
    return [n for n in inferred_learner_fields(learner) if getattr(learner, n) == INFER_HIERARCHICAL]


def learner_latent_sites(learner: Any) -> list[str]:
    """Latent sample sites of the learner: inferred fields, hierarchical ones as ``(mu, sigma, z)``."""
    out = []
    for n in inferred_learner_fields(learner):
        out += list(hierarchical_site_names(n)) if getattr(learner, n) == INFER_HIERARCHICAL else [n]
    return out


def check_fixed_learner(learner: Any, n_agents: int) -> None:
    """Check the fixed parameters (inferred ones replaced by a valid placeholder)."""
    placeholder = {p.name: (0.5 if p.unit else 1.0) for p in learner_parameters(learner)}
    fixed = {n: placeholder[n] for n in inferred_learner_fields(learner)}
    learner._replace(**fixed).check(n_agents)


def _sample_learner(learner: Any, priors: Priors, n_agents: int) -> Any:
    """Sample (or fix) every parameter of the learner family: one ``if/elif`` per spec value."""
    values = {}
    for name in learner_fields(learner):
        v = getattr(learner, name)
        if isinstance(v, str) and v == INFER:
            values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif isinstance(v, str) and v == INFER_PER_AGENT:
            with numpyro.plate("agent", n_agents, dim=-1):
                values[name] = numpyro.sample(name, priors.learner_distribution(name))
        elif isinstance(v, str) and v == INFER_HIERARCHICAL:
            values[name] = sample_hierarchical(learner, name, priors, n_agents)
        else:
            values[name] = jnp.asarray(v, dtype=jnp.result_type(float))
    return learner._replace(**values)


def learner_from_sites(learner: Any, sites: dict[str, Any]) -> Any:
    """The learner with inferred fields taken from ``sites`` (e.g. one posterior draw)."""
    return learner._replace(**{n: jnp.asarray(sites[n]) for n in inferred_learner_fields(learner)})


# --------------------------------------------------------------------- identification
def has_fixed_units(mechanism: Any) -> bool:
    """Whether the mechanism's payoff scale is fixed (known constants set its units)."""
    return bool(getattr(mechanism, "fixed_units", False))


def is_confounded(mechanism: Any, learner: Any, data: Trajectories) -> bool:
    """Temperature (beta, Hedge's eta, EWA's lam) inferred, no observed payoffs and a free payoff scale.

    Then only temperature x payoff differences is identified.
    """
    temperature = getattr(learner, temperature_name(learner))
    return isinstance(temperature, str) and not data.has_payoffs and not has_fixed_units(mechanism)


def _reports_table(n_actions: tuple[int, ...]) -> bool:
    return math.prod(n_actions) * len(n_actions) <= REPORT_TABLE_LIMIT


def deterministic_site_names(data: Trajectories, mechanism: Any, learner: LogitQ | None) -> list[str]:
    """Names of the model's deterministic sites for these inputs."""
    names = hierarchical_learner_fields(resolve_learner(learner))  # per-agent values of populations
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
    batch_size: int | None = None,
    mesh: Any = None,
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
    batch_size : int, optional
        Subsample this many episodes per evaluation (``numpyro.plate`` subsampling, for
        SVI): counterfactuals and the learner scan are computed for those episodes only and
        their log-likelihood is scaled by ``M / batch_size`` (an unbiased estimate).
    mesh : jax.sharding.Mesh, optional
        Split the episode axis of the likelihood over the mesh's ``"episode"`` devices
        (see :mod:`bayes_diml.sharding`).
    """
    learner = resolve_learner(learner)
    M, T, n = data.actions.shape
    params = _sample_mechanism(mechanism, priors)
    lq = _sample_learner(learner, priors, n)

    if _reports_table(data.n_actions):
        profiles = jnp.asarray(joint_profiles(data.n_actions).reshape(*data.n_actions, n))
        centred = numpyro.deterministic(
            "centred_payoffs", _payoff_differences(mechanism, params, profiles, data.n_actions)
        )
        if is_confounded(mechanism, learner, data):
            numpyro.deterministic("scaled_payoffs", centred * getattr(lq, temperature_name(lq)))

    _observe(data, mechanism, params, lq, priors, observe, batch_size, mesh)


#: The likelihood's heavy steps as compiled programs of stable identity. Run eagerly (NumPyro
#: evaluates the model op by op while it sets up SVI and Laplace guides and checks a start),
#: each is one dispatch instead of hundreds of separately compiled operations; traced inside a
#: jitted program (MAP, NUTS), JAX reuses their traced form across programs.
_scan_states = jax.jit(scan_states)
_payoff_differences_jit = jax.jit(payoff_differences, static_argnums=(0,), static_argnames=("n_actions",))


def _payoff_differences(mechanism: Any, params: Any, profiles: Any, n_actions: tuple[int, ...]) -> jax.Array:
    """``payoff_differences`` compiled per mechanism (a static argument), or as it is for a
    mechanism that cannot be hashed.
    """
    try:
        hash(mechanism)
    except TypeError:
        return payoff_differences(mechanism, params, profiles, n_actions=n_actions)
    return _payoff_differences_jit(mechanism, params, profiles, n_actions=tuple(n_actions))


def _episode_plate(M: int, batch_size: int | None) -> tuple[Any, bool]:
    """The ``episode`` plate (dim -3), subsampling ``batch_size`` of ``M`` episodes if given."""
    if batch_size is None or int(batch_size) >= M:
        return numpyro.plate("episode", M, dim=-3), False
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive number of episodes; got {batch_size}.")
    return numpyro.plate("episode", M, subsample_size=int(batch_size), dim=-3), True


def _observe(data, mechanism, params, lq, priors, observe, batch_size, mesh) -> None:
    """Observation sites ``actions`` (and ``payoffs``) of the episodes in the (sub)sampled plate."""
    from bayes_diml.sharding import shard_episodes

    M, T, n = data.actions.shape
    plan = plan_for(mechanism, data)
    episodes, subsampled = _episode_plate(M, batch_size)
    with episodes as idx:  # idx: int[B], the episodes of this evaluation (all M unless subsampled)
        sel = idx if subsampled else None

        def rows(x):
            x = jnp.asarray(x)
            return x if sel is None else x[sel]

        all_actions = rows(data.actions)  # [B, T, n]
        cf = evaluate_plan(mechanism, params, plan, sel)  # [B, T-1, n, K]
        cf, all_actions = shard_episodes((cf, all_actions), mesh)
        states = _scan_states(lq, cf, all_actions[:, :-1], jnp.asarray(plan.action_mask))
        scored = rows(data.scored_mask)[:, :, None]
        with numpyro.plate("step", T - 1, dim=-2), numpyro.plate("agent", n, dim=-1):
            numpyro.sample(
                "actions",
                LearnerPolicy(lq, states, plan.action_mask).mask(scored),
                obs=all_actions[:, 1:] if observe else None,
            )

    if data.has_payoffs:
        sigma = numpyro.sample("payoff_noise", dist.HalfNormal(priors.payoff_noise))
        with episodes:
            realised = mechanism.payoffs(params, all_actions)  # [B, T, n]
            observed = rows(np.isfinite(data.payoffs))
            with numpyro.plate("time", T, dim=-2), numpyro.plate("agent", n, dim=-1):
                numpyro.sample(
                    "payoffs",
                    dist.Normal(realised, sigma).mask(observed),
                    obs=rows(np.nan_to_num(data.payoffs)) if observe else None,
                )
