"""Prior draws, the data sets simulated from them, and the scalar quantities SBC checks."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from bayes_diml.data import Trajectories
from bayes_diml.learners import LogitQ
from bayes_diml.models import logit_q_model, mechanism_sites, params_from_sites
from bayes_diml.simulation import simulate_arrays
from bayes_diml.studies.calibration.spec import _learner_spec, make_learner

__all__ = ["prior_datasets"]


def prior_datasets(
    mechanism: Any,
    priors: Any,
    learner_priors: Any,
    n_datasets: int,
    M: int,
    T: int,
    seed: int,
    *,
    observe_payoffs: bool = False,
    simulator: str = "logit_q",
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """Prior draws and data sets simulated from them.

    The parameters are drawn by running the model's prior (``logit_q_model`` with
    ``observe=False``, seeded per data set), so they follow exactly the prior the fit uses;
    data set ``i`` depends only on ``(seed, i)``. Returns ``(truth, actions, payoffs)``:
    truth site -> float[N, ...] (latent sites, ``centred_payoffs`` float[N, K_1..K_n, n]);
    ``actions: int[N, M, T, n]``; ``payoffs: float[N, M, T, n]`` (realised plus
    Normal(0, payoff_noise) noise) or None.
    """
    spec = _learner_spec(learner_priors)
    n_actions = tuple(mechanism.n_actions)
    n = len(n_actions)
    dummy = Trajectories(
        np.zeros((1, 2, n), int), n_actions, payoffs=np.zeros((1, 2, n)) if observe_payoffs else None
    )
    key = jax.random.key(int(seed))
    k_prior, k_sim, k_noise = jax.random.split(key, 3)
    N = int(n_datasets)
    # data set i depends on (seed, i) only, not on N: a larger study extends a smaller one
    per = jax.vmap(jax.random.fold_in, in_axes=(None, 0))
    ids = jnp.arange(N)
    model = functools.partial(logit_q_model, dummy, mechanism, LogitQ(**spec), priors, observe=False)

    def draw(k):
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, k)).get_trace()
        return {
            name: site["value"]
            for name, site in tr.items()
            if site["type"] in ("sample", "deterministic")
            and name not in ("actions", "payoffs", "scaled_payoffs")
        }

    truth = {k: np.asarray(v) for k, v in jax.vmap(draw)(per(k_prior, ids)).items()}
    lq = {
        n_: truth[n_] if isinstance(spec[n_], str) else np.full(N, spec[n_])
        for n_ in ("alpha", "beta", "eps")
    }
    sites = {k: jnp.asarray(truth[k]) for k in mechanism_sites(mechanism)}

    def one(site, a, b, e, k):
        learner = make_learner(simulator, a, b, e)
        return simulate_arrays(mechanism, params_from_sites(mechanism, site), learner, int(M), int(T), k)

    actions, realised = jax.jit(jax.vmap(one))(
        sites, jnp.asarray(lq["alpha"]), jnp.asarray(lq["beta"]), jnp.asarray(lq["eps"]), per(k_sim, ids)
    )
    actions = np.asarray(actions)  # [N, M, T, n]
    payoffs = None
    if observe_payoffs:
        sigma = truth["payoff_noise"].reshape(N, 1, 1, 1)
        noise = np.asarray(jax.vmap(lambda k: jax.random.normal(k, actions.shape[1:]))(per(k_noise, ids)))
        payoffs = np.asarray(realised, dtype=float) + sigma * noise
    for n_ in ("alpha", "beta", "eps"):
        truth[n_] = np.asarray(lq[n_], dtype=float)
    return truth, actions, payoffs


def _cells(n_actions: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Non-redundant centred-payoff cells ``(a_1, ..., a_n, i)`` with ``a_i < K_i - 1``."""
    out = []
    for idx in np.ndindex(*n_actions, len(n_actions)):
        i = idx[-1]
        if idx[i] < n_actions[i] - 1:
            out.append(tuple(int(v) for v in idx))
    return out


def _quantities(
    values: dict[str, np.ndarray], spec: dict, n_actions: tuple[int, ...], payoffs: bool, lead: int
) -> dict[str, np.ndarray]:
    """Scalar quantities from site values with ``lead`` leading batch dims: name -> float[*lead]."""
    confounded = isinstance(spec["beta"], str) and not payoffs
    out = {}
    for n_ in ("alpha", "beta", "eps"):
        if isinstance(spec[n_], str):
            out[n_] = np.asarray(values[n_], dtype=float)
    if payoffs:
        out["payoff_noise"] = np.asarray(values["payoff_noise"], dtype=float)
    table = np.asarray(values["centred_payoffs"], dtype=float)
    if confounded:
        beta = np.asarray(values["beta"], dtype=float).reshape(
            table.shape[:lead] + (1,) * (table.ndim - lead)
        )
        table, name = table * beta, "scaled_payoffs"
    else:
        name = "centred_payoffs"
    for c in _cells(n_actions):
        out[f"{name}[{','.join(map(str, c))}]"] = table[(Ellipsis, *c)] if lead else table[c]
    return out


def _identified(name: str, spec: dict, payoffs: bool) -> bool:
    return not (name == "beta" and not payoffs)
