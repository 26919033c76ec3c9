"""The logit-Q likelihood and the tabular model written in PyMC / PyTensor (benchmark baseline).

Optional: needs the ``bench`` extra (``pip install ".[bench]"``); :func:`available` says
whether PyMC imports. The model is the same as ``bayes_diml``'s:

- counterfactual payoffs from the same plan (``bayes_diml.counterfactual.plan_for``: the data
  preprocessing is shared, the arithmetic is PyTensor's): a table game gathers from the
  payoff table, E2's congestion payoffs are computed on every joint profile, E7's network is
  evaluated once per distinct opponent-count vector;
- ``Q <- (1 - alpha) Q + alpha u`` as one ``pytensor.scan`` over time, then
  ``log((1 - eps) softmax(beta Q) + eps / K_i)`` at the next actions, vectorised;
- :func:`tabular_model`: ``u{i}_free ~ N(0, scale)`` gauge-free coordinates mapped to the
  centred table by the same orthonormal sum-to-zero basis, ``alpha ~ Beta``,
  ``beta ~ LogNormal`` (or fixed), ``eps ~ Beta``, as in ``bayes_diml.models.logit_q_model``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_diml import mechanisms as mm
from bayes_diml.counterfactual import plan_for
from bayes_diml.mechanisms.base import sum_to_zero_basis

__all__ = ["available", "import_error", "log_likelihood_expr", "flat_loglik_model", "tabular_model"]


def import_error() -> str | None:
    """None if PyMC imports, else the reason (for a clean skip)."""
    try:
        import pymc  # noqa: F401
        import pytensor  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the environment
        return f"{type(exc).__name__}: {exc}"
    return None


def available() -> bool:
    """Whether PyMC (the ``bench`` extra) is installed."""
    return import_error() is None


def _counterfactuals(mechanism: Any, params: dict, data) -> Any:
    """u_i(k, a_-i(t)): tensor[M, T-1, n, K] from the package's plan and PyTensor arithmetic."""
    import pytensor.tensor as pt

    plan = plan_for(mechanism, data)
    mask = plan.action_mask
    if plan.kind == "count" and isinstance(mechanism, mm.SymmetricCount):
        K = mask.shape[1]
        shares = np.asarray(plan.points, dtype=float) / max(mechanism.n_agents - 1, 1)  # [U, K]
        d = mechanism.embed_dim
        layers = params["layers"]
        w0 = layers[0]["w"]
        h = pt.dot(params["embed"], w0[:d])[None, :, :] + pt.dot(shares, w0[d:])[:, None, :] + layers[0]["b"]
        h = pt.maximum(h, 0.0)
        for layer in layers[1:-1]:
            h = pt.maximum(pt.dot(h, layer["w"]) + layer["b"], 0.0)
        rows = (pt.dot(h, layers[-1]["w"]) + layers[-1]["b"])[..., 0]  # [U, K]
        cf = rows[plan.index]  # [M, S, n, K]
        assert cf.type.ndim == 4 and K == mask.shape[1]
    elif plan.kind == "count" and isinstance(mechanism, mm.Congestion):
        load = np.asarray(plan.points, dtype=float) + 1.0  # [U, K]: agents on route k if I take it
        rows = -(params["c1"] * load + params["c2"] * load**2) + params["toll"] * load  # [U, K]
        cf = rows[plan.index]  # [M, S, n, K]
    elif plan.kind == "table" and isinstance(mechanism, mm.Tabular):
        cf = params["table"].reshape((-1,))[plan.index]
    elif plan.kind == "table" and isinstance(mechanism, mm.Congestion):
        profiles = np.asarray(plan.points)  # [P, n]
        onehot = np.eye(mechanism.n_choices)[profiles]
        load = np.take_along_axis(onehot.sum(-2), profiles, axis=-1)  # agents on my route, incl. me
        pay = (
            -(params["c1"][profiles] * load + params["c2"][profiles] * load**2)
            + params["toll"][profiles] * load
        )
        cf = pay.reshape((-1,))[plan.index]
    else:
        raise NotImplementedError(
            f"no PyTensor version of {type(mechanism).__name__} with a {plan.kind} plan"
        )
    return pt.where(mask, cf, 0.0), plan


def log_likelihood_expr(mechanism: Any, params: dict, alpha, beta, eps, data) -> Any:
    """The exact log-likelihood (DIML eq. 5) of ``data`` as a PyTensor scalar."""
    import pytensor
    import pytensor.tensor as pt

    cf, plan = _counterfactuals(mechanism, params, data)
    mask = plan.action_mask  # [n, K]
    k_i = mask.sum(-1).astype(float)[:, None]  # [n, 1]
    u = cf.dimshuffle(1, 0, 2, 3)  # time-major [S, M, n, K]
    q0 = pt.zeros(u.shape[1:], dtype=cf.dtype)
    qs = pytensor.scan(  # alpha passed explicitly, so that PyMC can replace the variable
        lambda u_t, q, a: (1.0 - a) * q + a * u_t,
        sequences=[u],
        outputs_info=[q0],
        non_sequences=[pt.as_tensor_variable(alpha)],
        return_updates=False,
    )  # [S, M, n, K]
    logits = pt.where(mask, beta * qs, -np.inf)
    greedy = pt.special.softmax(logits, axis=-1)
    log_pi = pt.log((1.0 - eps) * greedy + eps / k_i)
    nxt = np.swapaxes(np.asarray(data.actions[:, 1:]), 0, 1)  # [S, M, n]
    picked = pt.take_along_axis(log_pi, nxt[..., None], axis=-1)[..., 0]
    scored = np.broadcast_to(np.swapaxes(data.scored_mask, 0, 1)[:, :, None], nxt.shape)
    return pt.sum(pt.where(scored, picked, 0.0))


def _flat_vars(params: Any, prefix: str = "mech") -> Any:
    """pm.Flat variables with the structure and shapes of a params pytree (dicts and lists)."""
    import pymc as pm

    if isinstance(params, dict):
        return {k: _flat_vars(v, f"{prefix}.{k}") for k, v in params.items()}
    if isinstance(params, list | tuple):
        return [_flat_vars(v, f"{prefix}.{i}") for i, v in enumerate(params)]
    return pm.Flat(prefix, shape=np.shape(params))


def flat_loglik_model(mechanism: Any, params: Any, data) -> Any:
    """A PyMC model whose log-density is the likelihood alone (flat priors, no transforms).

    Free variables: the mechanism params (``mech.<path>``) and ``alpha``, ``beta``, ``eps``;
    ``model.logp_dlogp_function()`` is then the value and gradient of the likelihood.
    """
    import pymc as pm

    with pm.Model() as model:
        p = _flat_vars(params)
        alpha, beta, eps = (pm.Flat(name) for name in ("alpha", "beta", "eps"))
        pm.Potential("loglik", log_likelihood_expr(mechanism, p, alpha, beta, eps, data))
    return model


def tabular_model(
    mechanism: mm.Tabular,
    data,
    *,
    beta: float | None = None,
    mechanism_scale: float = 1.0,
    alpha_prior: tuple[float, float] = (2.0, 4.0),
    beta_prior: tuple[float, float] = (1.0, 1.0),
    eps_prior: tuple[float, float] = (1.0, 15.0),
) -> Any:
    """The gauge-free tabular model of ``bayes_diml.models.logit_q_model`` in PyMC.

    ``beta=None`` infers beta (LogNormal prior), a number fixes it. Also records
    ``centred_payoffs`` float[K_1, ..., K_n, n] as a deterministic.
    """
    import pymc as pm
    import pytensor.tensor as pt

    n_actions = mechanism.n_actions
    n = len(n_actions)
    with pm.Model() as model:
        cols = []
        for i in range(n):
            shape = list(n_actions)
            shape[i] -= 1
            z = pm.Normal(f"u{i}_free", 0.0, mechanism_scale, shape=tuple(shape))
            H = sum_to_zero_basis(n_actions[i])  # [K_i, K_i - 1]
            c = pt.tensordot(z, H, axes=[[i], [1]])  # axis i moved last
            cols.append(pt.moveaxis(c, -1, i))
        table = pm.Deterministic("centred_payoffs", pt.stack(cols, axis=-1))
        alpha = pm.Beta("alpha", *alpha_prior)
        beta_v = pm.LogNormal("beta", *beta_prior) if beta is None else float(beta)
        eps = pm.Beta("eps", *eps_prior)
        pm.Potential("actions", log_likelihood_expr(mechanism, {"table": table}, alpha, beta_v, eps, data))
    return model
