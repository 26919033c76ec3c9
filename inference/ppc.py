"""Posterior-predictive checks in behaviour space: action frequencies over time and switching rates.

For each of ``n_draws`` posterior draws, as many episodes as the data hold are simulated
(same length T; the data's ragged lengths are applied as a mask) with the fitted learner and
mechanism; two statistics are computed on the simulated and on the observed actions:

- ``frequencies`` float[T, n, K]: share of (valid) episodes in which agent i plays k at step t;
- ``switching`` float[n]: share of an agent's valid transitions t -> t + 1 where its action
  changes.

The check reports central ``prob`` bands of the simulated statistics, the observed values,
two-sided posterior-predictive p-values of the switching rates and the share of (t, k)
cells whose observed frequency lies inside its band.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .covariates import require_data_likelihood

__all__ = ["BehaviourCheck", "behaviour_statistics", "ppc_behaviour"]


def behaviour_statistics(
    actions: np.ndarray, lengths: np.ndarray, n_actions: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return action frequencies ``float[T, n, K]`` and switching rates ``float[n]``.

    Of ``actions: int[M, T, n]``; steps ``t >= lengths[m]`` of episode m are ignored; a step
    no episode reaches gets NaN.
    """
    actions = jnp.asarray(actions)
    freq, switch = _statistics(actions, jnp.asarray(lengths), max(n_actions))
    return np.asarray(freq), np.asarray(switch)


def _statistics(actions: jax.Array, lengths: jax.Array, K: int) -> tuple[jax.Array, jax.Array]:
    M, T, n = actions.shape
    valid = (jnp.arange(T)[None, :] < lengths[:, None]).astype(jnp.float32)  # [M, T]
    onehot = jax.nn.one_hot(actions, K, dtype=jnp.float32) * valid[:, :, None, None]
    count = valid.sum(0)[:, None, None]
    freq = jnp.where(count > 0, onehot.sum(0) / jnp.maximum(count, 1.0), jnp.nan)  # [T, n, K]
    pair = valid[:, 1:] * valid[:, :-1]  # [M, T-1]
    changed = (actions[:, 1:] != actions[:, :-1]).astype(jnp.float32) * pair[:, :, None]
    switch = changed.sum((0, 1)) / jnp.maximum(pair.sum(), 1.0)  # [n]
    return freq, switch


@dataclass(frozen=True)
class BehaviourCheck:
    """Result of :func:`ppc_behaviour`.

    Attributes
    ----------
    observed_frequencies : float[T, n, K]
    simulated_frequencies : float[D, T, n, K]
        One row per posterior draw (``D = n_draws``), each from as many episodes as the data.
    observed_switching : float[n]
    simulated_switching : float[D, n]
    n_actions : tuple of int
    prob : float
        Mass of the central bands.
    """

    observed_frequencies: np.ndarray
    simulated_frequencies: np.ndarray
    observed_switching: np.ndarray
    simulated_switching: np.ndarray
    n_actions: tuple[int, ...]
    prob: float

    def _q(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = (1 - self.prob) / 2, 1 - (1 - self.prob) / 2
        return np.nanquantile(x, lo, axis=0), np.nanquantile(x, hi, axis=0)

    @property
    def frequency_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper band of the action frequencies: float[T, n, K] each."""
        return self._q(self.simulated_frequencies)

    @property
    def switching_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper band of the switching rates: float[n] each."""
        return self._q(self.simulated_switching)

    @property
    def switching_p_values(self) -> np.ndarray:
        """Two-sided posterior-predictive p-values of the switching rates: float[n]."""
        sim, obs = self.simulated_switching, self.observed_switching[None]
        upper = ((sim >= obs).sum(0) + 1) / (sim.shape[0] + 1)
        lower = ((sim <= obs).sum(0) + 1) / (sim.shape[0] + 1)
        return np.minimum(1.0, 2 * np.minimum(upper, lower))

    @property
    def switching_outside(self) -> np.ndarray:
        """bool[n]: the observed switching rate lies outside its band."""
        lo, hi = self.switching_bands
        return (self.observed_switching < lo) | (self.observed_switching > hi)

    @property
    def frequency_coverage(self) -> np.ndarray:
        """float[n]: share of an agent's (step, action) cells whose observed frequency is inside its band."""
        lo, hi = self.frequency_bands
        obs = self.observed_frequencies
        real = np.isfinite(obs) & (
            np.arange(obs.shape[-1])[None, None, :] < np.asarray(self.n_actions)[:, None]
        )
        inside = (obs >= lo - 1e-9) & (obs <= hi + 1e-9) & real
        return inside.sum((0, 2)) / np.maximum(real.sum((0, 2)), 1)

    @property
    def misfit(self) -> bool:
        """Whether some agent looks unlike the data (a rough flag; read the plot).

        True when some agent's switching rate is outside its band or fewer than ``prob - 0.1``
        of its frequency cells are inside theirs.
        """
        return bool(self.switching_outside.any() or (self.frequency_coverage < self.prob - 0.1).any())

    def summary(self):
        """Return a ``pandas.DataFrame`` with one row per agent.

        Columns: observed and simulated switching (mean, band), p-value, frequency coverage.
        """
        import pandas as pd

        lo, hi = self.switching_bands
        return pd.DataFrame(
            {
                "switching_observed": self.observed_switching,
                "switching_mean": self.simulated_switching.mean(0),
                "switching_lower": lo,
                "switching_upper": hi,
                "switching_p_value": self.switching_p_values,
                "frequency_coverage": self.frequency_coverage,
            },
            index=pd.Index(range(len(self.n_actions)), name="agent"),
        )

    def plot(self, agents: list[int] | None = None, pooled: bool | None = None):
        """Figure: action frequencies over time with bands, and switching rates against the data.

        ``pooled`` (default: when there are more than 4 agents with equal K) averages the
        frequencies over agents; otherwise one row per agent in ``agents`` (default the
        first 4).
        """
        import matplotlib.pyplot as plt

        n = len(self.n_actions)
        equal_k = len(set(self.n_actions)) == 1
        if pooled is None:
            pooled = n > 4 and equal_k
        if pooled and not equal_k:
            raise ValueError("pooled frequencies need the same number of actions for every agent.")
        if pooled:
            rows = [("all agents", slice(None))]
        else:
            agents = list(range(min(n, 4))) if agents is None else list(agents)
            bad = [a for a in agents if not 0 <= a < n]
            if bad:
                raise ValueError(f"agents {bad} out of range 0..{n - 1}.")
            rows = [(f"agent {a}", a) for a in agents]
        fig, axes = plt.subplots(
            len(rows), 2, figsize=(10, 2.6 * len(rows)), squeeze=False, gridspec_kw={"width_ratios": [3, 1]}
        )
        T = self.observed_frequencies.shape[0]
        t = np.arange(T)
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for r, (label, sel) in enumerate(rows):
            ax = axes[r, 0]
            sim = self.simulated_frequencies[:, :, sel]
            obs = self.observed_frequencies[:, sel]
            if pooled:
                sim, obs = np.nanmean(sim, axis=2), np.nanmean(obs, axis=1)
            lo, hi = self._q(sim)
            K = self.n_actions[0] if pooled else self.n_actions[sel]
            for k in range(K):
                c = colours[k % len(colours)]
                ax.fill_between(t, lo[:, k], hi[:, k], color=c, alpha=0.25, lw=0)
                ax.plot(t, obs[:, k], color=c, lw=1.2, label=f"action {k}")
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"{label}\nfrequency")
            if r == 0:
                ax.set_title(f"action frequencies: data (lines), posterior predictive {self.prob:.0%} bands")
                ax.legend(fontsize="small", ncol=min(K, 5), loc="upper right")
            ax2 = axes[r, 1]
            s_sim = self.simulated_switching[:, sel]
            s_obs = self.observed_switching[sel]
            if pooled:
                s_sim, s_obs = s_sim.mean(1), s_obs.mean()
            ax2.hist(s_sim, bins=20, color="0.6")
            ax2.axvline(float(s_obs), color="C3", lw=2, label="data")
            if r == 0:
                ax2.set_title("switching rate")
                ax2.legend(fontsize="small")
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        return fig

    def save(self, path: str | Path, **plot_options: Any) -> Path:
        """Write :meth:`plot` to ``path`` (format from the suffix, e.g. ``.png``, ``.pdf``)."""
        import matplotlib.pyplot as plt

        path = Path(path)
        fig = self.plot(**plot_options)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def ppc_behaviour(
    post: Any,
    *,
    n_draws: int = 200,
    prob: float = 0.9,
    seed: int = 0,
    data: Any = None,
) -> BehaviourCheck:
    """Simulate from posterior draws and compare behaviour statistics with the data.

    Parameters
    ----------
    post : Posterior
    n_draws : int
        Posterior draws used (evenly spaced); each simulates ``M`` episodes of ``T`` steps.
        With a MAP fit the single draw is reused, so the bands show simulation noise only.
    prob : float
        Mass of the central bands.
    seed : int
    data : Trajectories, optional
        Data to check against (default: the fitted data); must have the fitted shape.

    Returns
    -------
    BehaviourCheck
    """
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must lie in (0, 1); got {prob}.")
    if int(n_draws) < 10:
        raise ValueError(f"n_draws must be >= 10 for bands; got {n_draws}.")
    if data is None:  # a covariate fit's table at one value did not generate every episode
        require_data_likelihood(post, "ppc_behaviour")
    data = post.data if data is None else data
    if data.actions.shape != post.data.actions.shape or tuple(data.n_actions) != tuple(post.data.n_actions):
        raise ValueError(
            f"data must have the fitted shape (M, T, n) = {post.data.actions.shape} and n_actions = "
            f"{post.data.n_actions}; got {data.actions.shape} and {data.n_actions}."
        )
    M, T, n = data.actions.shape
    K = max(data.n_actions)
    lengths = jnp.asarray(data.lengths)

    draws = int(n_draws)
    reps = int(np.ceil(draws / post.n_draws))  # MAP / few draws: several data sets per draw

    def stat(actions, payoffs):
        groups = actions.reshape(reps, M, T, n)

        def one(a):
            freq, switch = _statistics(a, lengths, K)
            return jnp.concatenate([freq.reshape(-1), switch])

        return jax.vmap(one)(groups)

    out = post.counterfactual(
        n_episodes=M * reps, T=T, statistic=stat, n_draws=min(draws, post.n_draws), seed=seed
    )
    out = out.reshape(-1, out.shape[-1])[:draws]
    sim_freq = out[:, : T * n * K].reshape(-1, T, n, K)
    sim_switch = out[:, T * n * K :]
    obs_freq, obs_switch = behaviour_statistics(data.actions, data.lengths, data.n_actions)
    return BehaviourCheck(obs_freq, sim_freq, obs_switch, sim_switch, tuple(data.n_actions), float(prob))
