"""The bagged posterior (BayesBag): posteriors of bootstrap data sets, pooled.

BayesBag (Bühlmann 2014; Huggins and Miller 2023, "Reproducible model selection using bagged
posteriors", Bayesian Analysis 18(1)) resamples whole episodes with replacement into ``B``
bootstrap data sets of ``size`` episodes each (default the data's own ``M``, the paper's
recommendation), fits the ordinary posterior to each and pools the draws, equally many per
bag. When the model is right the bagged posterior is about as wide as the ordinary one
(somewhat wider: with ``size = M`` its variance is about twice the posterior's in regular
models); when it is wrong (agents that do not learn by the fitted rule) its spread also
carries the sampling variability of the data, which the ordinary posterior understates.

The bags are fitted one after another (each through the ordinary fit: every mechanism,
learner family and method with draws works), or as Dask tasks on a ``client`` or a local
cluster of ``workers`` processes. The pooled :class:`~bayes_diml.inference.Posterior` holds
the bags' chains one after another along ``chain`` (``info["chains_per_bag"]`` each), so that
everything reading a posterior works on it; its R-hat and ESS are computed within bags
(:mod:`bayes_diml.inference.bag_diagnostics`). LOO, LFO and ``compare`` refuse it: the pooled
draws are not a posterior of the data, so importance-sampling them is meaningless.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import jax
import numpy as np

from bayes_diml.data import Trajectories
from bayes_diml.mechanisms import GroupedTabular

from .bag_diagnostics import BAGGING
from .errors import ConfoundingWarning, FitError
from .idata import build_idata
from .identification import support_mask_if_small
from .pipeline import run_fit
from .posterior import Posterior
from .spec import ModelSpec

__all__ = ["ROBUST", "BAG_DEFAULTS", "bootstrap_indices", "stratified_indices", "resample", "fit_bagged"]

#: Values of ``fit(..., robust=...)``.
ROBUST = (BAGGING,)
#: Methods a bag can be fitted with (those that give draws).
BAG_METHODS = ("laplace", "svi", "nuts")
#: Per-bag settings used unless given (as keywords; a ``config`` object is used as it is):
#: lighter than an ordinary fit's, since the pooled posterior has ``B`` times the draws.
BAG_DEFAULTS = {
    "nuts": {"num_warmup": 300, "num_samples": 250, "num_chains": 2},
    "laplace": {"num_draws": 250},
    "svi": {"num_draws": 250},
}
_CONFOUNDED = r".* and the payoff scale are confounded"


def bootstrap_indices(key: jax.Array, n_episodes: int, n_bags: int, size: int | None = None) -> np.ndarray:
    """Draw episode indices with replacement: int[n_bags, size], each row sorted.

    ``size`` defaults to ``n_episodes`` (bootstrap data sets as large as the data).
    """
    size = n_episodes if size is None else int(size)
    idx = jax.random.randint(key, (int(n_bags), size), 0, int(n_episodes))
    return np.sort(np.asarray(idx, dtype=np.int64), axis=1)


def stratified_indices(key: jax.Array, group_index: np.ndarray, n_bags: int) -> np.ndarray:
    """Draw episode indices with replacement within each group: int[n_bags, M], each row sorted.

    ``group_index: int[M]`` (``Trajectories.group_index``). Every bag holds as many episodes of
    each group as the data (so every group is in every bag, and every bag has the data's shapes).
    """
    group_index = np.asarray(group_index)
    rows = []
    for g, k in enumerate(jax.random.split(key, int(group_index.max()) + 1)):
        members = np.flatnonzero(group_index == g)
        pick = jax.random.randint(k, (int(n_bags), members.size), 0, members.size)
        rows.append(members[np.asarray(pick)])
    return np.sort(np.concatenate(rows, axis=1).astype(np.int64), axis=1)


def resample(data: Trajectories, indices: np.ndarray) -> Trajectories:
    """Return the bootstrap data set of whole episodes ``indices: int[size]`` (repeats allowed)."""
    return data.subset(np.asarray(indices, dtype=np.int64))


def _check(
    robust: str,
    method: str,
    n_bags: int | None,
    bag_size: int | None,
    indices: Any,
    data: Any,
    unsupported: dict,
) -> None:
    if robust not in ROBUST:
        raise ValueError(f"unknown robust={robust!r}; choose one of {ROBUST} (or None).")
    if method not in BAG_METHODS:
        raise ValueError(
            f"robust='bagging' pools posterior draws of bootstrap data sets; method={method!r} gives "
            f"none. Use method='nuts' (or {', '.join(m for m in BAG_METHODS if m != 'nuts')})."
        )
    if indices is None:
        if n_bags is not None and (not isinstance(n_bags, int | np.integer) or n_bags < 1):
            raise ValueError(f"n_bags must be an int >= 1; got {n_bags!r}.")
        if bag_size is not None and (not isinstance(bag_size, int | np.integer) or bag_size < 1):
            raise ValueError(f"bag_size must be an int >= 1 (episodes per bag); got {bag_size!r}.")
    if not isinstance(data, Trajectories):
        raise TypeError(f"data must be Trajectories; got {type(data).__name__}.")
    given = [k for k, v in unsupported.items() if v]
    if given:
        raise ValueError(f"{', '.join(given)} cannot be combined with robust='bagging'.")


def _bag_options(method: str, options: dict[str, Any], config: Any) -> dict[str, Any]:
    if config is not None:
        return dict(options)
    return {**BAG_DEFAULTS[method], **options}


def _fit_bag(task: tuple) -> dict[str, Any]:
    """Fit one bag: ``(data, mechanism, learner, method, seed, keywords, label)`` -> draws, stats, info.

    A bag whose fit fails raises the fit's error with ``label`` ("bag b of B") in front.
    """
    data, mechanism, learner, method, seed, kwargs, label = task
    with warnings.catch_warnings():  # warned once for the pooled fit
        warnings.filterwarnings("ignore", message=_CONFOUNDED, category=ConfoundingWarning)
        try:
            res = run_fit(
                data, mechanism, learner, method, seed, log_likelihood=False, progress=False, **kwargs
            )
        except FitError as exc:
            raise FitError(f"bootstrap {label} (fit seed {seed}): {exc}") from exc
    stats = res.idata["sample_stats"] if "sample_stats" in res.idata.children else None
    return {
        "posterior": {k: np.asarray(v.values) for k, v in res.idata["posterior"].data_vars.items()},
        "sample_stats": {}
        if stats is None
        else {k: np.asarray(v.values) for k, v in stats.data_vars.items()},
        "info": res.info,
    }


def _run_tasks(tasks: list, client: Any, workers: int, progress: bool) -> list[dict]:
    """Run :func:`_fit_bag` on every task: on a Dask client or local cluster, else serially."""
    own = None
    if client is None and workers > 1:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            warnings.warn(
                "Dask is not installed (pip install bayes-diml[sweep]); fitting the bags serially.",
                stacklevel=4,
            )
        else:
            own = client = Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True))
    try:
        if client is not None:
            return client.gather(client.map(_fit_bag, tasks, pure=False))
        from tqdm.auto import tqdm

        return [_fit_bag(t) for t in tqdm(tasks, desc="bags", unit="fit", disable=not progress)]
    finally:
        if own is not None:
            own.close()


def _pool(results: list[dict]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Bags' draws [C, S, ...] -> pooled [B * C, S, ...] (bag-major) and the chains per bag."""
    shapes = {tuple(next(iter(r["posterior"].values())).shape[:2]) for r in results}
    if len(shapes) != 1:
        raise RuntimeError(f"the bags gave draws of different shapes {sorted(shapes)}; cannot pool them.")
    per_bag = shapes.pop()[0]
    posterior = {k: np.concatenate([r["posterior"][k] for r in results]) for k in results[0]["posterior"]}
    stats = {
        k: np.concatenate([r["sample_stats"][k] for r in results])
        for k in results[0]["sample_stats"]
        if all(k in r["sample_stats"] for r in results)
    }
    return posterior, stats, per_bag


def _pooled_info(results: list[dict], indices: np.ndarray, seeds: list[int], per_bag: int, **extra) -> dict:
    infos = [r["info"] for r in results]
    info: dict[str, Any] = {
        "robust": BAGGING,
        "n_bags": len(results),
        "bag_size": int(indices.shape[1]),
        "bag_indices": indices,
        "bag_fit_seeds": seeds,
        "chains_per_bag": per_bag,
        "bag_seconds": [float(i.get("seconds", np.nan)) for i in infos],
        **extra,
    }
    if "divergences" in infos[0]:
        info["bag_divergences"] = [int(i.get("divergences", 0)) for i in infos]
        info["divergences"] = int(sum(info["bag_divergences"]))
    for key in ("dense_mass", "nuts_backend", "confounded"):
        if key in infos[0]:
            info[key] = infos[0][key]
    return info


def fit_bagged(
    data: Trajectories,
    mechanism: Any,
    learner: Any = None,
    method: str = "nuts",
    seed: int = 0,
    *,
    robust: str = BAGGING,
    n_bags: int | None = None,
    bag_seed: int | None = None,
    bag_size: int | None = None,
    indices: np.ndarray | None = None,
    workers: int = 1,
    client: Any = None,
    priors: Any = None,
    progress: bool = True,
    shard_episodes: bool = False,
    init_map: Any = None,
    config: Any = None,
    checkpoint: Any = None,
    checkpoint_every: int | None = None,
    prior_predictive: int = 0,
    posterior_predictive: bool = False,
    log_likelihood: bool = True,
    **options: Any,
) -> Posterior:
    """Fit the bagged posterior (BayesBag) and return it as one pooled ``Posterior``.

    Parameters
    ----------
    data, mechanism, learner, method, seed, priors, shard_episodes, init_map, config, **options
        As for :func:`bayes_diml.inference.fit`; ``method`` is ``"nuts"``, ``"laplace"`` or
        ``"svi"``. Bag ``b`` is fitted with seed ``seed + b``. Per-bag defaults
        (``inference.bagging.BAG_DEFAULTS``, unless given): NUTS 300 warm-up and 250 draws per
        chain (2 chains), Laplace and SVI 250 draws.
    robust : str
        ``"bagging"``.
    n_bags : int, optional
        Bootstrap data sets ``B`` (default 20).
    bag_seed : int, optional
        Seed of the resampling (default ``seed``); ``info["bag_indices"]`` holds the result.
    bag_size : int, optional
        Episodes per bootstrap data set (default the data's ``M``).
    indices : int[B, size], optional
        The bootstrap data sets as episode indices, instead of drawing them.
    workers : int
        Fit the bags on a local Dask cluster of this many processes (needs ``dask[distributed]``).
    client : dask.distributed.Client, optional
        Fit the bags as tasks on this client. Its workers must run one task at a time
        (``threads_per_worker=1``): NumPyro's effect handlers are global to a process, so two
        fits in threads of one process corrupt each other.
    checkpoint, checkpoint_every, prior_predictive, posterior_predictive
        Not available with bagging (``ValueError`` when given).
    log_likelihood : bool
        Ignored: a bagged posterior stores no pointwise log-likelihood (LOO is not meaningful).

    Returns
    -------
    Posterior
        Draws ``chain x draw`` with ``B x chains_per_bag`` chains, bag-major. ``info``:
        ``robust="bagging"``, ``n_bags``, ``bag_size``, ``bag_seed``, ``bag_indices``
        int[B, size], ``bag_fit_seeds``, ``chains_per_bag``, ``bag_seconds``, ``seconds`` (the
        whole run) and, for NUTS, ``bag_divergences`` and ``divergences`` (their sum).
    """
    unsupported = {
        "checkpoint": checkpoint is not None or checkpoint_every is not None,
        "prior_predictive": bool(prior_predictive),
        "posterior_predictive": bool(posterior_predictive),
    }
    _check(robust, method, n_bags, bag_size, indices, data, unsupported)
    if not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}.")
    bag_seed = int(seed) if bag_seed is None else int(bag_seed)
    grouped = isinstance(mechanism, GroupedTabular)
    if indices is None and grouped:  # every group in every bag, with its own number of episodes
        if bag_size is not None:
            raise ValueError("bag_size cannot be set for a grouped fit: each bag keeps every group's size.")
        indices = stratified_indices(jax.random.key(bag_seed), data.group_index, n_bags or 20)
    elif indices is None:
        indices = bootstrap_indices(jax.random.key(bag_seed), data.n_episodes, n_bags or 20, bag_size)
    else:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 2 or indices.shape[0] < 1 or indices.shape[1] < 1:
            raise ValueError(f"indices must be int[B, size] with B, size >= 1; got shape {indices.shape}.")
        bag_seed = None
    spec = ModelSpec.build(data, mechanism, learner, priors)  # checks the arguments once, up front
    kwargs = {"priors": priors, "shard_episodes": shard_episodes, "init_map": init_map, "config": config}
    kwargs.update(_bag_options(method, options, config))
    seeds = [int(seed) + b for b in range(len(indices))]
    tasks = [
        (resample(data, idx), mechanism, learner, method, s, kwargs, f"bag {b + 1} of {len(indices)}")
        for b, (idx, s) in enumerate(zip(indices, seeds, strict=True))
    ]
    t0 = time.perf_counter()
    results = _run_tasks(tasks, client, int(workers), progress)
    posterior, stats, per_bag = _pool(results)
    info = _pooled_info(results, indices, seeds, per_bag, bag_seed=bag_seed, seconds=time.perf_counter() - t0)
    idata = build_idata(
        spec,
        posterior,
        stats,
        log_likelihood=False,
        support=support_mask_if_small(data),
    )
    post = Posterior(idata, spec, method, info)
    if post.confounded:
        warnings.warn(
            "the temperature and the payoff scale are confounded in every bag: only their product "
            "('scaled_payoffs') is identified; fix the temperature or observe payoffs.",
            ConfoundingWarning,
            stacklevel=3,
        )
    return post
