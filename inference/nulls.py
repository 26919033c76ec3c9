"""Payoff-blind behavioural nulls: conjugate Dirichlet-categorical models of the actions alone.

Two models of how agents act when payoffs do not matter, scored on exactly the observations the
learning models score (steps ``t = 1 .. length - 1`` of every episode; the first action of an
episode is not scored):

- ``"stationary"``: a fixed mixed strategy per agent, ``a_i(t) ~ Categorical(p_i)``,
  ``p_i ~ Dirichlet(1)``;
- ``"markov"``: a habit, ``a_i(t) ~ Categorical(p_i[a(t - 1)])``, one ``Dirichlet(1)`` per agent
  and previous joint action profile ``a(t - 1)``.

Both are conjugate, so their posteriors are drawn exactly (Dirichlet with the counts added), and
their per-episode log-likelihood draws enter ``arviz.compare`` like any fit's. They carry no
information on payoffs: their payoff "posterior" is the prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayes_diml.data import Trajectories

from .quiet import PARETO_SHAPE, silenced

__all__ = ["NULL_KINDS", "NullFit", "null_terms", "null_episode_log_likelihood", "fit_null"]

#: The payoff-blind nulls, by name.
NULL_KINDS = ("stationary", "markov")


@dataclass(frozen=True, eq=False)
class NullFit:
    """Exact posterior draws of a payoff-blind null and their per-episode log-likelihood.

    Attributes
    ----------
    kind : str
        ``"stationary"`` or ``"markov"``.
    data : Trajectories
    profiles : int[P, n]
        The previous joint action profiles the probabilities are indexed by (``"stationary"``:
        one row of zeros, standing for "any history").
    probs : float[D, P, n, K]
        Draws of ``p_i[profile]`` (0 on padded actions ``k >= K_i``).
    episode_ll : xarray.DataArray
        ``float[chain, draw, episode]`` (one chain): log-likelihood of each episode's scored
        actions under each draw.
    """

    kind: str
    data: Trajectories
    profiles: np.ndarray
    probs: np.ndarray
    episode_ll: xr.DataArray

    @property
    def n_draws(self) -> int:
        """Return the number of draws."""
        return int(self.probs.shape[0])

    def loo(self, label: str | None = None) -> Any:
        """Return PSIS-LOO with whole episodes left out (arviz ELPDData, pointwise)."""
        import arviz as az

        tree = az.from_dict(
            {
                "posterior": {"p": self.probs[None]},
                "log_likelihood": {"episode_ll": self.episode_ll.values},
            },
            dims={"episode_ll": ["episode"]},
        )
        with silenced(PARETO_SHAPE):
            return az.loo(tree, var_name="episode_ll", pointwise=True)


def null_terms(data: Trajectories, kind: str) -> dict[str, np.ndarray]:
    """Return the scored observations of a null as flat index arrays.

    Parameters
    ----------
    data : Trajectories
    kind : ``"stationary"`` or ``"markov"``

    Returns
    -------
    dict with ``episode``, ``profile``, ``agent``, ``action`` (int[N], one entry per scored
    (episode, step, agent) term, ``profile`` indexing ``profiles``) and ``profiles`` int[P, n]
    (the distinct previous joint profiles seen before a scored step; ``"stationary"``: one).
    """
    if kind not in NULL_KINDS:
        raise ValueError(f"unknown null {kind!r}; choose one of {', '.join(NULL_KINDS)}.")
    acts = np.asarray(data.actions)
    M, T, n = acts.shape
    m, t = np.nonzero(data.scored_mask)  # scored step t scores the actions at time t + 1
    if kind == "stationary":
        profiles = np.zeros((1, n), dtype=np.int64)
        prof = np.zeros(len(m), dtype=np.int64)
    else:
        profiles, prof = np.unique(acts[m, t], axis=0, return_inverse=True)
        prof = prof.reshape(-1)
    current = acts[m, t + 1]  # int[S, n]
    return {
        "episode": np.repeat(m, n),
        "profile": np.repeat(prof, n),
        "agent": np.tile(np.arange(n), len(m)),
        "action": current.reshape(-1),
        "profiles": profiles.reshape(-1, n),
    }


def null_counts(data: Trajectories, terms: dict[str, np.ndarray]) -> np.ndarray:
    """Return the counts ``float[P, n, K]`` of each agent's action after each previous profile."""
    counts = np.zeros((len(terms["profiles"]), data.n_agents, max(data.n_actions)))
    np.add.at(counts, (terms["profile"], terms["agent"], terms["action"]), 1.0)
    return counts


def dirichlet_draws(
    key: jax.Array, concentration: np.ndarray, n_actions: tuple[int, ...], num: int
) -> np.ndarray:
    """Return ``num`` draws ``float[num, P, n, K]`` of Dirichlet(concentration) per (profile, agent).

    Padded actions ``k >= K_i`` get probability 0 (their concentration is ignored).
    """
    K = concentration.shape[-1]
    mask = np.arange(K)[None, :] < np.asarray(n_actions)[:, None]  # bool[n, K]
    alpha = np.where(mask, concentration, 1.0)
    g = jax.random.gamma(key, jnp.asarray(alpha), shape=(num, *alpha.shape), dtype=jnp.float64)
    g = np.where(mask, np.asarray(g, dtype=np.float64), 0.0)
    g = np.maximum(g, np.finfo(np.float64).tiny) * mask  # no exact zeros on real actions
    return g / g.sum(axis=-1, keepdims=True)


def null_episode_log_likelihood(
    probs: np.ndarray, terms: dict[str, np.ndarray], n_episodes: int, chunk: int = 512
) -> np.ndarray:
    """Return the log-likelihood ``float[D, M]`` of each episode's scored actions per draw.

    ``probs: float[D, P, n, K]`` (as :func:`dirichlet_draws`); ``terms`` from :func:`null_terms`.
    Identical terms are counted once and weighted by their multiplicity.
    """
    keys = np.stack([terms["episode"], terms["profile"], terms["agent"], terms["action"]], axis=1)
    out = np.zeros((probs.shape[0], n_episodes))
    if not len(keys):
        return out
    uniq, count = np.unique(keys, axis=0, return_counts=True)
    ep, prof, agent, action = uniq.T
    onehot = np.zeros((len(uniq), n_episodes))
    onehot[np.arange(len(uniq)), ep] = count
    for start in range(0, probs.shape[0], chunk):
        logp = np.log(probs[start : start + chunk, prof, agent, action])  # float[d, U]
        out[start : start + chunk] = logp @ onehot
    return out


def fit_null(data: Trajectories, kind: str, key: jax.Array, num_draws: int = 4000) -> NullFit:
    """Draw the exact posterior of a payoff-blind null and its per-episode log-likelihood.

    Parameters
    ----------
    data : Trajectories
        Actions ``int[M, T, n]`` (ragged ``lengths`` respected; observed payoffs are ignored).
    kind : ``"stationary"`` or ``"markov"``
    key : jax PRNG key
    num_draws : int
        Posterior draws (one chain).

    Returns
    -------
    NullFit
    """
    if int(num_draws) < 20:
        raise ValueError(f"num_draws must be >= 20 (PSIS-LOO needs draws); got {num_draws}.")
    terms = null_terms(data, kind)
    with jax.enable_x64(True):
        probs = dirichlet_draws(key, 1.0 + null_counts(data, terms), data.n_actions, int(num_draws))
    ll = null_episode_log_likelihood(probs, terms, data.n_episodes)
    episode_ll = xr.DataArray(
        ll[None], dims=("chain", "draw", "episode"), coords={"episode": np.arange(data.n_episodes)}
    )
    return NullFit(kind, data, terms["profiles"], probs, episode_ll)
