"""The suite's scores of one fit: diff_mse, cfkl_params and, for Bayesian rows, interval coverage."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_diml import metrics
from bayes_diml.environments import Environment
from bayes_diml.studies.experiments.fitting import MethodFit
from bayes_diml.studies.experiments.settings import Settings

__all__ = ["coverage_contexts", "interval_coverage", "suite_diff_mse", "evaluate"]


def coverage_contexts(data, n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Test contexts as diff_mse draws them: joint int[S, n] with a_i uniform, agent int[S]."""
    rng = np.random.default_rng(seed)
    mm, tt = np.nonzero(data.scored_mask)
    pick = rng.integers(0, mm.size, n_samples)
    agent = rng.integers(0, data.n_agents, n_samples)
    k = np.asarray(data.n_actions)[agent]
    joint = np.array(data.actions[mm[pick], tt[pick]], dtype=np.int32)
    joint[np.arange(n_samples), agent] = (rng.random(n_samples) * k).astype(np.int32)
    return joint, agent


def interval_coverage(
    env: Environment, fit: MethodFit, n_samples: int, n_draws: int, prob: float = 0.9, seed: int = 0
) -> float:
    """Share of sampled test payoff differences whose central ``prob`` interval holds the truth.

    Payoff differences are the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)`` (gauge-free) of
    agent i at ``n_samples`` test contexts (:func:`coverage_contexts`).
    """
    if fit.draws is None:
        raise ValueError("this method has no posterior draws; interval coverage needs a Bayesian row.")
    joint, agent = coverage_contexts(env.test, n_samples, seed)
    draws = np.asarray(fit.draws(joint, n_draws, agent=agent))  # [D, S]: agent i's only (E7: 40+ agents)
    truth = np.asarray(metrics.agent_payoff_differences(env.mechanism, env.params, joint, agent))
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return float(np.mean((truth >= lo) & (truth <= hi)))


def suite_diff_mse(env: Environment, mechanism: Any, params: Any, settings: Settings) -> float:
    """``metrics.diff_mse`` of a fitted ``mechanism``/``params`` against ``env``'s truth on its test split.

    ``Settings.diff_samples`` contexts drawn with ``Settings.metric_seed``: the suite's diff_mse.
    """
    return metrics.diff_mse(
        env.mechanism,
        env.params,
        mechanism,
        params,
        env.test,
        n_samples=settings.diff_samples,
        seed=settings.metric_seed,
    )


def evaluate(env: Environment, fit: MethodFit, settings: Settings) -> dict[str, float]:
    """diff_mse (test split), cfkl_params (final-evaluation settings) and, for Bayesian fits, coverage."""
    T = min(int(settings.cfkl_T), int(env.data.n_steps))
    out = {
        "diff_mse": suite_diff_mse(env, fit.mechanism, fit.params, settings),
        "cfkl_params": metrics.cfkl_params(
            env.mechanism,
            env.params,
            fit.mechanism,
            fit.params,
            env.learner,
            n_episodes=settings.cfkl_episodes,
            T=T,
            seed=settings.metric_seed,
            n_actions=env.data.n_actions,
            buckets=settings.cfkl_buckets if env.name == "e7" else None,
        ),
        "interval_coverage_90": np.nan,
    }
    if fit.draws is not None:
        out["interval_coverage_90"] = interval_coverage(
            env, fit, settings.coverage_samples, settings.coverage_draws, seed=settings.metric_seed
        )
    return out
