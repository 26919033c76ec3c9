"""What the data determine: support of payoff cells and prior-to-posterior contraction.

- Support of a cell (joint action a, agent i): ``"played"`` when agent i played a_i against
  a_-i at a step whose update reaches a scored action; ``"counterfactual only"`` when a_-i
  was observed but agent i played another action there (the cell enters only through the
  counterfactual update); ``"not observed"`` when a_-i never occurred: only the prior (and
  parameter sharing, for structured mechanisms) speaks about it.
- Contraction ``1 - posterior variance / prior variance`` of every scalar parameter and
  centred payoff, labelled ``well identified`` (>= 0.5), ``weakly identified`` (>= 0.1) or
  ``prior-driven`` (< 0.1).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import numpy as np
from numpyro.infer import Predictive

from bayes_diml.data import Trajectories
from bayes_diml.learners import parameter_names, temperature_name

from .programs import as_program_argument

__all__ = [
    "support_categories",
    "support_mask",
    "support_mask_if_small",
    "MAX_SUPPORT_CELLS",
    "prior_draws",
    "contraction_label",
    "identification_table",
]

WELL, WEAK = 0.5, 0.1
_TABLE_SITES = ("centred_payoffs", "scaled_payoffs")
SUPPORT_NAMES = {2: "played", 1: "counterfactual only", 0: "not observed"}


def support_categories(data: Trajectories) -> np.ndarray:
    """int8[K_1, ..., K_n, n]: 2 played, 1 counterfactual only, 0 not observed (see module doc)."""
    n, k = data.n_agents, data.n_actions
    steps = data.actions[:, :-1][data.scored_mask]  # int[N, n]
    out = np.zeros((*k, n), dtype=np.int8)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        seen = np.zeros([k[j] for j in others], dtype=bool)
        seen[tuple(steps[:, others].T)] = steps.shape[0] > 0
        out[..., i] = np.expand_dims(seen, i)
        played = np.zeros(k, dtype=bool)
        played[tuple(steps.T)] = steps.shape[0] > 0
        out[..., i][played] = 2
    return out


def support_mask(data: Trajectories) -> np.ndarray:
    """Return bool[K_1, ..., K_n, n]: cell ``(a, i)`` is informed directly when ``a_-i`` was observed.

    An opponent profile counts when it occurred at a step whose counterfactual update
    reaches a scored action (``t <= L_m - 2``); see :func:`support_categories`.
    """
    return support_categories(data) >= 1


#: Largest payoff table (``n * prod K_i`` cells) whose support mask a fit stores.
MAX_SUPPORT_CELLS = 10**6


def support_mask_if_small(data: Trajectories, max_cells: int = MAX_SUPPORT_CELLS) -> np.ndarray | None:
    """Return :func:`support_mask` when the payoff table has at most ``max_cells`` cells, else None.

    The cells are counted with Python integers, exactly: 300 agents with 40 actions have 40^300
    joint actions, beyond float64.
    """
    n_actions = [int(k) for k in data.n_actions]
    return support_mask(data) if len(n_actions) * math.prod(n_actions) <= max_cells else None


def prior_draws(spec: Any, names: list[str], num_samples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Draws from the prior of latent and deterministic sites: dict name -> float[S, ...]."""
    model = as_program_argument(spec.model(observe=False))
    out = _prior_draws(model, jax.random.key(seed), int(num_samples), tuple(names))
    return {k: np.asarray(v) for k, v in out.items()}


# compiled once per model structure and shapes (the model's data are leaves: programs.py)
@functools.partial(jax.jit, static_argnames=("num_samples", "names"))
def _prior_draws(model: Any, key: jax.Array, num_samples: int, names: tuple[str, ...]) -> dict:
    return Predictive(model, num_samples=num_samples, return_sites=list(names))(key)


def contraction_label(c: float, se: float = 0.0) -> str:
    """Plain-language label of a contraction value ``c`` with Monte Carlo standard error ``se``.

    ``prior-driven`` unless ``c`` exceeds 0.1 by two standard errors; ``well identified``
    from 0.5 on; ``weakly identified`` between.
    """
    if not np.isfinite(c):
        return "n/a (point estimate)"
    if c < WEAK + 2.0 * se:
        return "prior-driven"
    if c >= WELL:
        return "well identified"
    return "weakly identified"


def identification_table(post: Any, num_prior_draws: int = 4000, seed: int = 0):
    """One row per scalar parameter and centred payoff cell: support, contraction, label.

    Returns a ``pandas.DataFrame`` with columns ``support``, ``prior_sd``, ``posterior_sd``,
    ``contraction``, ``contraction_se``, ``label`` (and ``note`` with the beta-scale
    confound where it applies). When beta and the payoff scale are confounded, the
    ``scaled_payoffs`` rows (beta x centred payoffs, the identified product) get their own
    contraction labels while ``beta`` and ``centred_payoffs`` are labelled confounded.
    The Monte Carlo standard error of the contraction uses the delta method for a ratio
    of variances, ``(1 - c) sqrt(2 / D_eff + 2 / S)`` with S independent prior draws and
    ``D_eff`` the effective sample size of the posterior variance: for NUTS, the ESS of the
    squared deviations ``(x - mean)^2`` (ArviZ ``method="mean"``, at most the number of draws
    D), which is often far below the ESS of the mean (HMC's draws are anticorrelated in ``x``
    but mix slowly in energy); for independent draws (SVI, Laplace), D.
    """
    import pandas as pd

    if post.spec.flat_priors:
        raise ValueError("contraction needs a proper prior; this fit used flat mechanism priors (MLE).")
    names = post._scalar_names()
    has_table = "centred_payoffs" in post.idata["posterior"].data_vars
    if has_table:
        names = [*names, "centred_payoffs"]
        if "scaled_payoffs" in post.idata["posterior"].data_vars:
            names.append("scaled_payoffs")
    prior = prior_draws(post.spec, names, num_prior_draws, seed)
    rows: dict[str, dict[str, Any]] = {}
    cats = support_categories(post.data) if has_table else None
    for name in names:
        pv = post.draws(name)
        qv = prior[name]
        post_sd = pv.std(0) if pv.shape[0] > 1 else np.full(pv.shape[1:], np.nan)
        prior_sd = qv.std(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            contraction = 1.0 - post_sd**2 / prior_sd**2
        n_eff = _variance_ess(post, name, pv.shape[0])
        for idx in np.ndindex(*pv.shape[1:]):
            label = name if not idx else f"{name}[{', '.join(map(str, idx))}]"
            c = float(contraction[idx]) if np.ndim(contraction) else float(contraction)
            d_eff = float(n_eff[idx]) if np.ndim(n_eff) else float(n_eff)
            se = (1.0 - c) * np.sqrt(2.0 / d_eff + 2.0 / qv.shape[0]) if np.isfinite(c) else np.nan
            row = {
                "support": SUPPORT_NAMES[int(cats[idx])] if name in _TABLE_SITES else "",
                "prior_sd": float(prior_sd[idx]) if np.ndim(prior_sd) else float(prior_sd),
                "posterior_sd": float(post_sd[idx]) if np.ndim(post_sd) else float(post_sd),
                "contraction": c,
                "contraction_se": float(se),
                "label": contraction_label(c, float(se) if np.isfinite(se) else 0.0),
                "note": "",
            }
            temp = temperature_name(post.learner)
            if post.confounded and (name.startswith(temp) or name == "centred_payoffs"):
                row["label"] = "confounded with payoff scale"
                row["note"] = (
                    f"confounded with the payoff scale: observe payoffs, fix {temp}, or use a mechanism "
                    "with known units to identify it"
                )
            rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _variance_ess(post: Any, name: str, n_draws: int) -> np.ndarray | float:
    """Effective sample size of the posterior variance of each entry of ``name``: float[...].

    MCMC (``post.method == "nuts"``): ArviZ's ESS of the mean of ``(x - mean)^2`` over chains
    and draws, clipped to [1, D]; otherwise (independent draws) D.
    """
    if post.method != "nuts" or n_draws < 4:
        return float(n_draws)
    import arviz as az
    import xarray as xr

    x = np.asarray(post.idata["posterior"][name].values, dtype=float)  # [C, S, ...]
    shape = x.shape[2:]
    x = x.reshape(x.shape[0], x.shape[1], -1)
    dev2 = (x - x.mean(axis=(0, 1))) ** 2
    ess = np.asarray(az.ess(xr.DataArray(dev2, dims=("chain", "draw", "cell")), method="mean"), dtype=float)
    ess = np.where(np.isfinite(ess), ess, n_draws)  # constant draws: no information either way
    return np.clip(ess, 1.0, n_draws).reshape(shape)


def flat_directions(post: Any, k: int = 3, max_params: int = 3000, top: int = 4) -> list[dict[str, Any]]:
    """Smallest-curvature directions of the log-likelihood at the posterior mean of the sites.

    Eigen-decomposes the Hessian of the negative log-likelihood (no prior) over the
    flattened latent sites; near-zero eigenvalues are directions the data do not
    determine. Each entry: ``eigenvalue``, ``relative`` (to the largest), ``components``
    (the ``top`` (parameter, weight) pairs of the unit eigenvector) and ``hint`` (what
    would identify it).
    """
    from jax.flatten_util import ravel_pytree

    from bayes_diml.likelihood import log_likelihood
    from bayes_diml.models import learner_from_sites, params_from_sites

    sites = {name: np.asarray(post.draws(name)).mean(0) for name in post.spec.latent_names}
    flat, unravel = ravel_pytree({k_: jax.numpy.asarray(v) for k_, v in sites.items()})
    if flat.size > max_params:
        raise ValueError(f"{flat.size} parameters: the dense Hessian is too large (max_params={max_params}).")
    names = []
    for name in sorted(sites):  # ravel_pytree flattens dict leaves in sorted key order
        shape = np.shape(sites[name])
        names += [name if not shape else f"{name}[{', '.join(map(str, i))}]" for i in np.ndindex(*shape)]

    def nll(z):
        s = unravel(z)
        params = params_from_sites(post.mechanism, s)
        lq = learner_from_sites(post.learner, s, post.data.n_actions)
        return -log_likelihood(post.mechanism, params, lq, post.data)

    H = np.asarray(jax.jit(jax.hessian(nll))(flat), dtype=np.float64)  # one program, not op by op
    # coordinates the likelihood never sees: the unused bias_free entries of agents with fewer actions
    ka = post.data.n_actions
    unused = {f"bias_free[{i}, {j}]" for i in range(len(ka)) for j in range(ka[i] - 1, max(ka) - 1)}
    keep = np.array([nm not in unused for nm in names])
    H, names = H[np.ix_(keep, keep)], [nm for nm, kept in zip(names, keep, strict=True) if kept]
    vals, vecs = np.linalg.eigh(0.5 * (H + H.T))
    out = []
    for j in range(min(k, vals.size)):
        v = vecs[:, j]
        order = np.argsort(-np.abs(v))[:top]
        comps = [(names[o], float(v[o])) for o in order]
        temp = temperature_name(post.learner)
        others = tuple(n for n in parameter_names(post.learner) if n != temp)
        uses_beta = any(c[0].startswith(temp) and abs(c[1]) > 0.3 for c in comps)
        if uses_beta and post.confounded:
            hint = f"{temp} vs payoff scale: observe payoffs, fix {temp}, or use a mechanism with known units"
        elif any(c[0].startswith("bias_free") and abs(c[1]) > 0.3 for c in comps):
            hint = (
                "action bias vs payoffs: a habit and an action that pays more against every opponent "
                "profile look alike; only scores that move with experienced payoffs separate them"
            )
        elif others and any(c[0].startswith(others) and abs(c[1]) > 0.3 for c in comps):
            hint = "learner parameter weakly determined: longer episodes or more exploration would help"
        else:
            hint = "payoff directions the play never exercised: more varied opponent profiles would help"
        out.append(
            {
                "eigenvalue": float(vals[j]),
                "relative": float(vals[j] / max(vals[-1], 1e-300)),
                "components": comps,
                "hint": hint,
            }
        )
    return out
