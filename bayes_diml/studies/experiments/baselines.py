"""The non-Bayesian baselines of the suite: behaviour cloning and an equilibrium-only inverse."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bayes_diml.environments import Environment
from bayes_diml.mechanisms import Tabular
from bayes_diml.studies.experiments.fitting import MethodFit
from bayes_diml.studies.experiments.settings import Settings

__all__ = ["fit_joint_bc", "fit_equilibrium"]


def _transitions(env: Environment) -> tuple[np.ndarray, np.ndarray]:
    """Scored transitions of the training data: previous joint int[N, n], next joint int[N, n]."""
    data = env.train
    mask = data.scored_mask  # bool[M, T-1]: step t has a scored successor
    prev = data.actions[:, :-1][mask]
    nxt = data.actions[:, 1:][mask]
    return np.asarray(prev, dtype=np.int64), np.asarray(nxt, dtype=np.int64)


def fit_joint_bc(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Behaviour cloning of the joint policy: p(a_i(t+1) | a_-i(t)) from pooled training play.

    Per agent, a softmax over a table indexed by the opponents' previous actions, fitted in closed
    form (the MLE of a categorical table is its smoothed counts, pseudo-count ``bc_pseudocount``).
    Its payoff estimate for the metrics is ``u^_i(a, a_-i) = log p(a_i(t+1) = a | a_-i(t) = a_-i)``:
    a ``Tabular`` table, so diff_mse compares log-probability differences with payoff differences
    (DIML's scale, beta = 3, is not applied) and cfkl simulates learners on these "payoffs".
    """
    del seed
    k = tuple(env.data.n_actions)
    prev, nxt = _transitions(env)
    table = np.zeros((*k, len(k)))
    for i in range(len(k)):
        counts = np.zeros(k)
        idx = prev.copy()
        idx[:, i] = nxt[:, i]
        np.add.at(counts, tuple(idx.T), 1.0)
        counts += settings.bc_pseudocount
        table[..., i] = np.log(counts / counts.sum(axis=i, keepdims=True))
    mech = Tabular(k)
    return MethodFit(mech, mech.params_from_table(jnp.asarray(table, dtype=jnp.float32)), info={})


def fit_equilibrium(env: Environment, settings: Settings, seed: int) -> MethodFit:
    """Equilibrium-only inverse: a static logit response to pooled play, ignoring learning.

    Maximises ``sum_{t, i} log softmax(beta * EU_i)[a_i(t+1)]`` over a ``Tabular`` mechanism, with
    ``EU_i(k) = sum_{a_-i} w_i(a_-i) u_i(k, a_-i)``, ``w_i`` the pooled empirical frequencies of the
    opponents' profiles and beta the true learner's. The objective only sees ``EU_i``; its
    maximiser is the smoothed log frequency ``v_i(k) = log f_i(k) / beta`` (pseudo-count
    ``eq_pseudocount``), and among the tables reaching it we take the minimum-norm one,
    ``u_i(k, a_-i) = v_i(k) w_i(a_-i) / ||w_i||^2`` (what gradient descent from a zero table
    converges to), in closed form.
    """
    del seed
    k = tuple(env.data.n_actions)
    prev, nxt = _transitions(env)
    beta = float(np.mean(np.asarray(env.learner.beta)))
    table = np.zeros((*k, len(k)))
    for i in range(len(k)):
        freq = np.bincount(nxt[:, i], minlength=k[i]) + settings.eq_pseudocount
        v = np.log(freq / freq.sum()) / beta
        v -= v.mean()
        w = np.zeros(k)
        idx = prev.copy()
        idx[:, i] = 0
        np.add.at(w, tuple(idx.T), 1.0)
        w = w.sum(axis=i, keepdims=True) / prev.shape[0]  # opponents' profile frequencies
        shape = [1] * len(k)
        shape[i] = k[i]
        table[..., i] = v.reshape(shape) * w / np.sum(w**2)
    mech = Tabular(k)
    return MethodFit(mech, mech.params_from_table(jnp.asarray(table, dtype=jnp.float32)), info={})
