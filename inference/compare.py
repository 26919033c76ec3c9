"""Model comparison: PSIS-LOO by episode and PSIS leave-future-out (LFO) over steps.

The fit stores the per-step log-likelihood ``log_likelihood/actions`` (episode x step x
agent, and ``payoffs`` when observed). Steps within an episode are *not* exchangeable: the
learner state carries the whole history. Two questions, two estimators:

- :func:`loo` / ``ic="loo"``: the unit left out is a whole **episode** (its per-step terms
  summed over steps and agents). It estimates how well a model predicts *a new episode*
  (new session, new subject) and is the default.
- :func:`lfo` / ``ic="lfo"``: the unit is a **step** (summed over episodes and agents); the
  model is conditioned on steps ``< s`` of every episode and scored on step ``s``
  (one-step-ahead), with PSIS between exact refits (Bürkner, Gabry & Vehtari 2020, through
  ``arviz.lfo_cv``). It estimates how well a model predicts *the future of the episodes
  already seen*; use it when there are few episodes or when that is the question.

See ``docs/model_comparison.md``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import xarray as xr

from bayes_diml.data import Trajectories

from .bag_diagnostics import chains_per_bag
from .errors import ConfoundingWarning
from .idata import pointwise_log_likelihood
from .pipeline import run_fit
from .quiet import CHAINS_LONGER_THAN_DRAWS, COMPARE_WARNINGS, LFO_MANY_REFITS, PARETO_SHAPE, silenced

__all__ = ["ParetoKWarning", "episode_log_likelihood", "step_log_likelihood", "loo", "lfo", "compare"]

IC = ("loo", "lfo")


class ParetoKWarning(UserWarning):
    """Some Pareto k diagnostics exceed the threshold: the PSIS estimate is unreliable there."""


def _check_draws(post: Any, what: str) -> None:
    if chains_per_bag(post.info) is not None:
        raise ValueError(
            f"{what} is not meaningful for a bagged posterior (robust='bagging'): its draws pool "
            "posteriors of bootstrap data sets, not the posterior of the data. Compare ordinary fits "
            "(robust=None) and use bagging for the intervals."
        )
    if "log_likelihood" not in post.idata.children:
        raise ValueError(
            f"{what} needs the pointwise log-likelihood; fit with log_likelihood=True (the default)."
        )
    if post.n_draws < 20:
        raise ValueError(
            f"{what} needs posterior draws; this fit has {post.n_draws} (method={post.method!r}). "
            "Fit with method='laplace', 'svi' or 'nuts'."
        )


def _summed(post: Any, keep: str) -> xr.DataArray:
    """Total log-likelihood per draw, kept along ``keep`` ('episode' or 'step')."""
    ll = post.idata["log_likelihood"]
    acts = ll["actions"]
    out = acts.sum([d for d in acts.dims if d not in ("chain", "draw", keep)])
    if "payoffs" in ll.data_vars:
        pay = ll["payoffs"]
        if keep == "episode":
            out = out + pay.sum(["time", "agent"])
        else:  # payoff at time s + 1 joins the prediction of step s; time 0 is always trained on
            extra = pay.isel(time=slice(1, None)).sum(["episode", "agent"]).values
            out = out + xr.DataArray(extra, dims=("chain", "draw", "step"), coords={"step": out["step"]})
    return out.astype(np.float64)


def episode_log_likelihood(post: Any) -> xr.DataArray:
    """Log-likelihood of each whole episode per draw: ``float[chain, draw, episode]``."""
    return _summed(post, "episode")


def step_log_likelihood(post: Any) -> xr.DataArray:
    """Log-likelihood of each step (all episodes and agents) per draw: ``float[chain, draw, step]``.

    Step ``s`` scores the actions at time ``s + 1`` (and payoffs observed at time ``s + 1``).
    """
    return _summed(post, "step")


def _tree(post: Any, name: str, ll: xr.DataArray):
    import arviz as az

    posterior = post.idata["posterior"].to_dataset()
    return az.from_dict(
        {
            "posterior": {k: posterior[k].values for k in post.spec.latent_names if k in posterior},
            "log_likelihood": {name: ll.values},
        },
        dims={name: [ll.dims[-1]]},
    )


def _warn_pareto(res: Any, label: str, unit: str) -> None:
    k = getattr(res, "pareto_k", None)
    if k is None:
        return
    k = np.asarray(k).reshape(-1)
    good = float(getattr(res, "good_k", None) or 0.7)
    bad = np.flatnonzero(np.isfinite(k) & (k > good))
    if bad.size:
        warnings.warn(
            f"{label}: Pareto k > {good:.2f} for {bad.size} of {k.size} {unit}(s) "
            f"(first: {bad[:5].tolist()}, "
            f"max k = {np.nanmax(k):.2f}); the PSIS estimate is unreliable there. Use more episodes, "
            "ic='lfo' with exact refits, or K-fold CV.",
            ParetoKWarning,
            stacklevel=3,
        )


def loo(post: Any, *, label: str = "model") -> Any:
    """PSIS-LOO with whole episodes left out (``arviz.loo`` on the summed episode log-likelihood).

    Parameters
    ----------
    post : Posterior
        A fit with draws (Laplace, SVI or NUTS) and the ``log_likelihood`` group.
    label : str
        Name used in warnings.

    Returns
    -------
    arviz ELPDData (``elpd``, ``se``, ``p``, pointwise ``elpd_i`` and ``pareto_k`` over
    ``episode``). Warns :class:`ParetoKWarning` when some k exceed the threshold.
    """
    import arviz as az

    _check_draws(post, "LOO")
    if post.data.n_episodes < 2:
        raise ValueError("LOO by episode needs at least 2 episodes; use lfo() for one long episode.")
    tree = _tree(post, "episode_ll", episode_log_likelihood(post))
    with silenced(PARETO_SHAPE):  # _warn_pareto names the episodes
        res = az.loo(tree, var_name="episode_ll", pointwise=True)
    _warn_pareto(res, label, "episode")
    return res


def _truncate(data: Trajectories, n_time: int) -> Trajectories:
    """Return the first ``n_time`` time points of every episode (ragged lengths clipped).

    Subjects and agent / action labels are kept.
    """
    pay = None if data.payoffs is None else data.payoffs[:, :n_time]
    return dataclasses.replace(
        data, actions=data.actions[:, :n_time], lengths=np.minimum(data.lengths, n_time), payoffs=pay
    )


def _flat_draws(v: np.ndarray, n: int) -> np.ndarray:
    """float[C, S, ...] -> float[C * S, ...]."""
    return np.asarray(v).reshape(n, *v.shape[2:])


def _lfo_wrapper(post: Any, seed: int, method: str, options: dict[str, Any]):
    import arviz as az

    spec = post.spec

    class _Wrapper(az.SamplingWrapper):
        def sel_observations(self, idx):
            cutoff = int(np.min(idx))  # train on steps < cutoff, i.e. time points 0..cutoff
            return _truncate(spec.data, cutoff + 1), cutoff

        def sample(self, modified_observed_data):
            with warnings.catch_warnings():
                # the original fit warned already
                warnings.filterwarnings(
                    "ignore", message=".*payoff scale are confounded", category=ConfoundingWarning
                )
                return run_fit(
                    modified_observed_data,
                    spec.mechanism,
                    spec.learner,
                    method=method,
                    seed=seed,
                    priors=spec.priors,
                    progress=False,
                    **options,
                )

        def get_inference_data(self, fitted):
            self._last = fitted
            return fitted.idata

        def log_likelihood__i(self, excluded_obs, idata__i):
            posterior = self._last.idata["posterior"]
            C, S = posterior.sizes["chain"], posterior.sizes["draw"]
            flat = {k: _flat_draws(posterior[k].values, C * S) for k in spec.latent_names}
            ll = pointwise_log_likelihood(spec, flat)
            per_step = ll["actions"].sum(axis=(1, 3))  # [D, T-1]
            if "payoffs" in ll:
                per_step = per_step + ll["payoffs"][:, :, 1:].sum(axis=(1, 3))
            per_step = per_step[:, int(excluded_obs) :].astype(np.float64)
            steps = np.arange(int(excluded_obs), spec.data.n_steps - 1)
            return xr.DataArray(
                per_step.reshape(C, -1, per_step.shape[-1]),
                dims=("chain", "draw", "step"),
                coords={"step": steps},
            )

    return _Wrapper(None)


def lfo(
    post: Any,
    *,
    min_steps: int | None = None,
    k_threshold: float = 0.7,
    exact: bool = False,
    seed: int = 0,
    label: str = "model",
    refit_method: str | None = None,
    **refit_options: Any,
) -> Any:
    """PSIS leave-future-out CV of one-step-ahead predictions (``arviz.lfo_cv``).

    Step ``s`` (actions at time ``s + 1`` of every episode) is predicted from a posterior
    conditioned on steps ``< s``. That posterior is the fit on the truncated data at the last
    refit, carried forward by Pareto-smoothed importance weights; when their Pareto k
    exceeds ``k_threshold`` the model is refitted exactly at that step (Bürkner, Gabry and
    Vehtari 2020).

    Parameters
    ----------
    post : Posterior
        A fit with draws (Laplace, SVI or NUTS).
    min_steps : int, optional
        Scored steps in the first training set (default: a quarter of the ``T - 1`` steps,
        at least 2).
    k_threshold : float
        Refit when Pareto k exceeds it.
    exact : bool
        Refit at every step (slow; the reference).
    seed : int
        Seed of the refits.
    refit_method : str, optional
        ``fit`` method of the refits (default: the original fit's).
    **refit_options
        Passed to ``fit`` for the refits (e.g. ``num_draws=400`` for Laplace).

    Returns
    -------
    arviz ELPDDataLFO with pointwise ``elpd_i`` over ``step`` and ``refits``.
    """
    import arviz as az

    _check_draws(post, "LFO")
    n_scored = post.data.n_steps - 1
    if n_scored < 3:
        raise ValueError(f"LFO needs at least 3 scored steps per episode; the data have T - 1 = {n_scored}.")
    if min_steps is None:
        min_steps = max(2, n_scored // 4)
    if not 1 <= int(min_steps) < n_scored:
        raise ValueError(f"min_steps must lie in 1..{n_scored - 1} (T - 1 = {n_scored}); got {min_steps}.")
    tree = _tree(post, "step_ll", step_log_likelihood(post))
    wrapper = _lfo_wrapper(post, seed, refit_method or post.method, dict(refit_options))
    with silenced(PARETO_SHAPE, LFO_MANY_REFITS, CHAINS_LONGER_THAN_DRAWS):
        res = az.lfo_cv(
            tree,
            wrapper,
            min_observations=int(min_steps),
            forecast_horizon=1,
            time_dim="step",
            pointwise=True,
            var_name="step_ll",
            method="exact" if exact else "approx",
            k_threshold=float(k_threshold),
        )
    return res


def compare(
    posteriors: dict[str, Any],
    *,
    ic: str = "loo",
    weighting: str = "stacking",
    **lfo_options: Any,
):
    """Rank fits by expected log predictive density (``arviz.compare``).

    Parameters
    ----------
    posteriors : dict name -> Posterior
        Fits of the same data (same episodes, steps and agents).
    ic : ``"loo"`` (episodes left out, default) or ``"lfo"`` (one-step-ahead, leave future out).
    weighting : ``method`` of ``arviz.compare`` (``"stacking"``, ``"BB-pseudo-BMA"``, ``"pseudo-BMA"``).
    **lfo_options : passed to :func:`lfo` (``min_steps``, ``k_threshold``, ``exact``,
        ``refit_method`` and refit options).

    Returns
    -------
    pandas.DataFrame
        Indexed by name, best first: ``rank, elpd, p, elpd_diff, weight, se, dse, warning`` and
        ``max_pareto_k`` (NaN where not applicable). A ``ParetoKWarning`` is issued per fit with
        unreliable PSIS estimates.
    """
    import arviz as az

    if ic not in IC:
        raise ValueError(f"ic must be one of {IC}; got {ic!r}.")
    if not isinstance(posteriors, dict) or len(posteriors) < 2:
        raise ValueError("compare needs a dict of at least two fits {name: Posterior}.")
    shapes = {name: p.data.actions.shape for name, p in posteriors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(
            f"the fits are of different data (actions shapes {shapes}); compare fits of one data set."
        )
    first = next(iter(posteriors.values())).data.actions
    for name, p in posteriors.items():
        if not np.array_equal(p.data.actions, first):
            raise ValueError(f"fit {name!r} was made on different actions than the others.")
    if ic == "loo":
        elpds = {name: loo(p, label=name) for name, p in posteriors.items()}
    else:
        elpds = {name: lfo(p, label=name, **dict(lfo_options)) for name, p in posteriors.items()}
    with silenced(*COMPARE_WARNINGS):
        table = az.compare(elpds, method=weighting, round_to="none")
    table = table.copy()
    table["max_pareto_k"] = [
        float(np.nanmax(np.asarray(elpds[n].pareto_k)))
        if getattr(elpds[n], "pareto_k", None) is not None
        and np.isfinite(np.asarray(elpds[n].pareto_k)).any()
        else float("nan")
        for n in table.index
    ]
    if ic == "lfo":
        table["n_refits"] = [int(getattr(elpds[n], "n_refits", 0)) for n in table.index]
    table.attrs["ic"] = ic
    return table
