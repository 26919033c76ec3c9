"""Diagnosis of a NaN or infinite log density during a fit.

When an optimiser step, an SVI step or a NUTS state meets a non-finite log density (or
gradient), the fit stops with :class:`NonFiniteError`, whose message says where (method,
restart, step or draw) and why: the first non-finite parameter, prior term, mechanism output
(agent, own action, joint action, episode and step), learner log-probability, observed-payoff
term or gradient entry, with the offending values.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer.util import constrain_fn, log_density, unconstrain_fn

from bayes_diml.counterfactual import evaluate_plan
from bayes_diml.likelihood import scan_log_policies
from bayes_diml.models import (
    EpisodeLearnerPolicy,
    learner_from_sites,
    params_from_sites,
    scan_episode_states,
    subject_learner_fields,
)

from .errors import FitError
from .spec import ModelSpec

__all__ = ["NonFiniteError", "diagnose_nonfinite"]


class NonFiniteError(FitError):
    """The log density or its gradient became NaN/inf during a fit.

    Attributes
    ----------
    method : str
        ``"map"``, ``"svi"``, ``"nuts"`` or ``"laplace"``.
    where : str
        Where it happened, e.g. ``"at step 137 of restart 0"``.
    diagnosis : str
        What is non-finite, with the offending values.
    sites : tuple of str
        Implicated sites: parameter names, ``"mechanism"``, ``"learner"`` or ``"payoffs"``.
    """

    def __init__(self, method: str, where: str, diagnosis: str, sites: tuple[str, ...] = (), hint: str = ""):
        self.method, self.where, self.diagnosis, self.sites = method, where, diagnosis, tuple(sites)
        super().__init__(f"{method}: the log density became non-finite {where}. {diagnosis}{hint}")


def _first(mask: np.ndarray) -> tuple[int, ...] | None:
    idx = np.argwhere(mask)
    return None if idx.size == 0 else tuple(int(i) for i in idx[0])


def _idx(index: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, index))}]" if index else ""


def _fmt(x: Any) -> str:
    a = np.asarray(x)
    if a.size > 8:
        return f"array of shape {a.shape}"
    return np.array2string(a, precision=4) if a.ndim else f"{float(a):.6g}"


def _learner_text(values: dict[str, Any], spec: ModelSpec) -> str:
    parts = []
    for name in ("alpha", "beta", "eps"):
        v = values.get(name, getattr(spec.learner, name))
        parts.append(f"{name}={_fmt(v)}")
    return ", ".join(parts)


def _mechanism_findings(spec: ModelSpec, params: Any) -> tuple[list[str], np.ndarray | None]:
    data, mech, plan = spec.data, spec.mechanism, spec.plan
    cf = np.asarray(evaluate_plan(mech, params, plan))  # [M, T-1, n, K]
    real = data.step_mask[:, :-1, None, None] & plan.action_mask[None, None]
    for region, label in (
        (real, ""),
        (~real, " (on a padded step or action, which still poisons gradients)"),
    ):
        idx = _first(~np.isfinite(cf) & region)
        if idx is None:
            continue
        m, t, i, k = idx
        joint = data.actions[m, t].copy()
        joint[i] = min(k, data.n_actions[i] - 1)
        n_bad = int((~np.isfinite(cf) & real).sum())
        return [
            f"The mechanism output is non-finite{label}: {type(mech).__name__}.payoffs gives agent {i} "
            f"the payoff {cf[m, t, i, k]} for action {k} at joint action {tuple(int(a) for a in joint)} "
            f"(episode {m}, step {t}); {n_bad} counterfactual payoff(s) are non-finite."
        ], None
    return [], cf


def diagnose_nonfinite(
    spec: ModelSpec, values: dict[str, Any], *, gradient: bool = True
) -> tuple[str, tuple[str, ...]]:
    """Say why the log density (or its gradient) is not finite at constrained ``values``.

    Returns ``(text, sites)``: the first problem found, in the order parameters, priors,
    mechanism output, learner log-probabilities, observed payoffs, gradient.
    """
    with numpyro.validation_enabled(False):  # NaN logits must reach us, not a validation error
        return _diagnose(
            spec, {k: jnp.asarray(v) for k, v in values.items() if k in spec.latent_names}, gradient
        )


def _diagnose(spec: ModelSpec, values: dict[str, Any], gradient: bool) -> tuple[str, tuple[str, ...]]:
    for name, v in values.items():
        idx = _first(~np.isfinite(np.asarray(v)))
        if idx is not None:
            return f"Parameter '{name}'{_idx(idx)} = {np.asarray(v)[idx]}.", (name,)
    model = spec.model()
    with numpyro.handlers.block(), numpyro.handlers.seed(rng_seed=0):
        tr = numpyro.handlers.trace(numpyro.handlers.substitute(model, data=values)).get_trace()
    for name, site in tr.items():
        if site["type"] == "sample" and not site["is_observed"]:
            lp = np.asarray(site["fn"].log_prob(site["value"]))
            idx = _first(~np.isfinite(lp))
            if idx is not None:
                at = _fmt(np.asarray(site["value"])[idx])
                return f"The prior of '{name}' is {lp[idx]} at {name}{_idx(idx)} = {at}.", (name,)
    params = params_from_sites(spec.mechanism, values)
    found, cf = _mechanism_findings(spec, params)
    if found:
        names = [k for k in values if k not in ("alpha", "beta", "eps", "payoff_noise", "bias_free")]
        shown = "; ".join(f"{k} = {_fmt(values[k])}" for k in names)
        return f"{found[0]} Mechanism parameters: {shown}.", ("mechanism", *names)
    data = spec.data
    # population parameters' values are deterministic sites of the trace
    sites = {**values, **{k: s["value"] for k, s in tr.items() if s["type"] == "deterministic"}}
    learner = learner_from_sites(spec.learner, sites, spec.data.n_actions)
    actions = jnp.asarray(data.actions)
    plan = spec.plan
    mask = jnp.asarray(plan.action_mask)
    per_subject = tuple(subject_learner_fields(spec.learner))
    if per_subject:  # float[S] -> float[M], each episode run with its subject's values
        subject = jnp.asarray(data.subject_index)
        learner = learner._replace(**{f: getattr(learner, f)[subject] for f in per_subject})
        states = scan_episode_states(learner, per_subject, jnp.asarray(cf), actions[:, :-1], mask)
        logp = np.asarray(EpisodeLearnerPolicy(learner, states, mask, per_subject).log_prob(actions[:, 1:]))
    else:
        logp = np.asarray(scan_log_policies(learner, jnp.asarray(cf), actions[:, :-1], mask, actions[:, 1:]))
    # logp: float[M, T-1, n]
    idx = _first(~np.isfinite(logp) & data.scored_mask[:, :, None])
    if idx is not None:
        m, t, i = idx
        return (
            f"The learner's log-probability of agent {i}'s action {data.actions[m, t + 1, i]} "
            f"at episode {m}, "
            f"step {t + 1} is {logp[idx]} (learner {_learner_text(sites, spec)}; counterfactual payoffs "
            f"{_fmt(cf[m, t, i])}).",
            ("learner",),
        )
    if data.has_payoffs:
        realised = np.asarray(spec.mechanism.payoffs(params, actions))
        idx = _first(~np.isfinite(realised) & np.isfinite(data.payoffs))
        if idx is not None:
            m, t, i = idx
            return (
                f"The mechanism's realised payoff of agent {i} at episode {m}, time {t} (joint action "
                f"{tuple(int(a) for a in data.actions[m, t])}) is {realised[idx]}; it is compared with the "
                f"observed payoff {data.payoffs[idx]}.",
                ("payoffs",),
            )
    total = float(log_density(model, (), {}, values)[0])
    if not np.isfinite(total):
        return f"The log density is {total} although every term checked is finite.", ()
    if gradient:
        z = unconstrain_fn(model, (), {}, values)
        grads = jax.grad(lambda z: log_density(model, (), {}, constrain_fn(model, (), {}, z))[0])(z)
        for name, g in grads.items():
            idx = _first(~np.isfinite(np.asarray(g)))
            if idx is not None:
                return (
                    f"The log density is finite ({total:.6g}) but its gradient in '{name}'{_idx(idx)} is "
                    f"{np.asarray(g)[idx]} at {name} = {_fmt(values[name])} (e.g. a mechanism that is not "
                    "differentiable there, such as sqrt or log at 0, or NaN on padded entries).",
                    (name,),
                )
    return f"The log density is finite ({total:.6g}) and so is its gradient at these values.", ()


def raise_nonfinite(
    spec: ModelSpec, method: str, where: str, values: dict[str, Any] | None, hint: str = ""
) -> None:
    """Raise :class:`NonFiniteError` with the diagnosis at ``values`` (the last finite state)."""
    if values is None:
        text, sites = "No parameter values were available to diagnose.", ()
    else:
        try:
            text, sites = diagnose_nonfinite(spec, values)
        except Exception as exc:  # noqa: BLE001 - a failing diagnosis must not hide the error
            text, sites = f"(The diagnosis itself failed: {type(exc).__name__}: {exc}.)", ()
    raise NonFiniteError(method, where, text, sites, hint)


def first_nonfinite_draw(spec: ModelSpec, draws: dict[str, Any]) -> int | None:
    """Index of the first of flat ``draws`` (constrained, [D, ...]) with a non-finite log density."""
    model = spec.model()
    latent = {k: jnp.asarray(v) for k, v in draws.items() if k in spec.latent_names}
    with numpyro.validation_enabled(False):
        lp = np.asarray(jax.vmap(lambda v: log_density(model, (), {}, v)[0])(latent))
    bad = np.flatnonzero(~np.isfinite(lp))
    return int(bad[0]) if bad.size else None


#: NUTS stops when every transition of a chain diverges over at least this many draws.
STUCK_DRAWS = 20


def check_nuts_draws(
    spec: ModelSpec, samples: dict[str, np.ndarray], stats: dict[str, np.ndarray], offset: int = 0
) -> None:
    """Stop on non-finite NUTS draws or potential energy, or a chain whose every transition diverged.

    ``samples``: site -> [C, S, ...]; ``stats``: ``potential_energy`` and ``diverging`` [C, S];
    ``offset``: index of the first draw (for chunked runs).
    """
    latent = [k for k in spec.latent_names if k in samples]
    pe = np.asarray(stats["potential_energy"])
    bad = ~np.isfinite(pe)
    for k in latent:
        v = np.asarray(samples[k])
        bad |= ~np.isfinite(v.reshape(*v.shape[:2], -1)).all(-1)
    idx = _first(bad)
    if idx is not None:
        c, s = idx
        prev = {k: np.asarray(samples[k])[c, max(s - 1, 0)] for k in latent}
        raise_nonfinite(
            spec, "NUTS", f"at draw {offset + s} of chain {c} (potential energy {pe[c, s]})", prev
        )
    div = np.asarray(stats["diverging"], dtype=bool)
    if div.shape[1] >= STUCK_DRAWS:
        stuck = np.flatnonzero(div.all(axis=1))
        if stuck.size:
            c = int(stuck[0])
            at = {k: np.asarray(samples[k])[c, -1] for k in latent}
            raise_nonfinite(
                spec,
                "NUTS",
                f"in chain {c}: all {div.shape[1]} transitions of draws "
                f"{offset}..{offset + div.shape[1] - 1} "
                "diverged and the chain did not move",
                at,
                hint=" Divergences to a non-finite log density come from a mechanism or learner that "
                "is NaN/inf near this point; check its outputs nearby (or raise target_accept).",
            )
