"""Posterior approximations: NUTS, SVI (NumPyro autoguides) and Laplace.

NUTS chains start at dispersed points (one prior draw each) or at the MAP; SVI and Laplace
start at the MAP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import optax
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO, init_to_median, init_to_value
from numpyro.infer.autoguide import (
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)
from numpyro.infer.util import ParamInfo, constrain_fn
from numpyro.optim import optax_to_numpyro

from .blackjax_nuts import _import_blackjax
from .checkpoint import Checkpoint, init_failure, run_nuts_chunks, run_svi_chunks
from .errors import FitError
from .idata import deterministic_sites, group_by_chain
from .laplace import laplace_draws
from .map import MAPConfig, fit_map_spec
from .nonfinite import check_nuts_draws, raise_nonfinite
from .programs import Potential, as_program_argument, constrain_draws, potential_value_and_grad
from .spec import ModelSpec
from .starts import INITS, broadcast_start, chain_starts, dispersed_starts, for_mcmc, prior_draw_fn

__all__ = [
    "NUTSConfig",
    "SVIConfig",
    "LaplaceConfig",
    "DENSE_MASS_MAX_DIM",
    "unconstrained_dimension",
    "run_nuts",
    "run_svi",
    "run_laplace",
]


@dataclass(frozen=True)
class NUTSConfig:
    """Settings of the No-U-Turn sampler.

    ``chain_method``: ``"sequential"``, ``"vectorized"`` or ``"parallel"`` (one device per
    chain). ``init``: ``"dispersed"`` (the default: each chain starts at its own draw from the
    prior, in unconstrained space, so that R-hat can see chains that disagree, e.g. in two
    modes; a chain without a finite draw in ``bayes_diml.inference.starts.DISPERSED_TRIES``
    tries starts at the MAP; see ``inference/starts.py``), ``"map"`` (every chain at the MAP)
    or ``"prior"`` (NumPyro's ``init_to_median`` model initialisation).
    ``backend``: ``"numpyro"`` (default) or ``"blackjax"``: the same NUTS with Stan's window
    adaptation on the same potential, warm-up and sampling compiled (in parallel) before the
    first draw, so that ``info["compile_seconds"]`` is known; it needs ``init="dispersed"`` or
    ``"map"``, a sequential or vectorised chain method and no checkpoint. With ``"numpyro"``,
    sequential chains from dispersed starts or the MAP without a checkpoint run NumPyro's
    kernel as one compiled program per chain (``inference/numpyro_nuts.py``; the chains of
    ``MCMC.run``, without its per-draw Python loop). See ``docs/performance.md``.
    ``dense_mass``: ``True`` (adapt a dense mass matrix), ``False`` (diagonal) or ``"auto"``
    (default): dense when the unconstrained parameter vector has at most
    :data:`DENSE_MASS_MAX_DIM` entries and at most ``num_warmup / 10`` (Stan's last adaptation
    window, ~0.4 of the warm-up, then holds >= 4 draws per dimension for the covariance).
    The posteriors of learning models are strongly correlated (the learning rate and
    exploration against the payoff scale); on the 3 x 4 table game a dense mass matrix cuts
    the leapfrog steps per draw from ~34 to ~7 and raises the bulk ESS 2-4 fold
    (``benchmarks/nuts.py``). The choice made is in ``info["dense_mass"]``.

    Defaults: 4 chains x (500 warm-up + 1000 draws), as Stan's 4 chains. With 2 x (500 + 500)
    a third of small fits (2 x 3 game, 20 x 30, data drawn from the prior) failed the
    package's own check (R-hat > 1.01 on some identified quantity: split R-hat's noise at
    ~250 draws per half-chain); see "Default NUTS settings" in ``docs/reliability.md`` and
    ``benchmarks/nuts_defaults.py``.
    """

    num_warmup: int = 500
    num_samples: int = 1000
    num_chains: int = 4
    chain_method: str = "sequential"
    dense_mass: bool | str = "auto"
    target_accept: float = 0.85
    max_tree_depth: int = 10
    init: str = "dispersed"
    backend: str = "numpyro"

    def __post_init__(self) -> None:
        if self.backend not in ("numpyro", "blackjax"):
            raise ValueError(f"NUTSConfig.backend must be 'numpyro' or 'blackjax'; got {self.backend!r}.")
        if self.backend == "blackjax":  # a missing extra is named before any work (the MAP start)
            _import_blackjax()
        if self.backend == "blackjax" and (self.init == "prior" or self.chain_method == "parallel"):
            raise ValueError(
                "NUTSConfig(backend='blackjax') starts at dispersed points or the MAP (init='dispersed' "
                f"or 'map') and runs chains 'sequential' or 'vectorized'; got init={self.init!r}, "
                f"chain_method={self.chain_method!r}."
            )
        if self.chain_method not in ("sequential", "vectorized", "parallel"):
            raise ValueError(
                f"chain_method must be sequential, vectorized or parallel; got {self.chain_method!r}."
            )
        if self.init not in INITS:
            raise ValueError(
                f"NUTSConfig.init must be one of {', '.join(map(repr, INITS))}; got {self.init!r}."
            )
        if not (isinstance(self.dense_mass, bool) or self.dense_mass == "auto"):
            raise ValueError(f"NUTSConfig.dense_mass must be True, False or 'auto'; got {self.dense_mass!r}.")
        for name in ("num_warmup", "num_samples", "num_chains", "max_tree_depth"):
            if int(getattr(self, name)) < (0 if name == "num_warmup" else 1):
                raise ValueError(f"NUTSConfig.{name} must be positive; got {getattr(self, name)}.")
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept must lie in (0, 1); got {self.target_accept}.")


@dataclass(frozen=True)
class SVIConfig:
    """Settings of stochastic variational inference.

    ``guide``: ``"normal"`` (AutoNormal, mean field), ``"lowrank"``
    (AutoLowRankMultivariateNormal with ``rank``) or ``"mvn"`` (full covariance).
    ``batch_size``: episodes per ELBO evaluation (minibatches drawn without replacement
    by ``numpyro.plate`` subsampling, log-likelihood scaled by ``M / batch_size``); ``None``
    uses every episode. The MAP start (``init="map"``) still uses every episode.
    """

    guide: str = "normal"
    rank: int | None = None
    num_steps: int = 3000
    learning_rate: float = 0.01
    num_particles: int = 1
    num_draws: int = 1000
    init: str = "map"
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.guide not in ("normal", "lowrank", "mvn"):
            raise ValueError(f"SVIConfig.guide must be 'normal', 'lowrank' or 'mvn'; got {self.guide!r}.")
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ValueError(f"SVIConfig.batch_size must be a positive int or None; got {self.batch_size!r}.")
        if self.init not in ("map", "prior"):
            raise ValueError(f"SVIConfig.init must be 'map' or 'prior'; got {self.init!r}.")


@dataclass(frozen=True)
class LaplaceConfig:
    """Laplace approximation at the mode of the unconstrained posterior (small models only)."""

    num_draws: int = 1000
    refine_steps: int = 300
    learning_rate: float = 0.003
    max_params: int = 3000


#: ``NUTSConfig(dense_mass="auto")`` adapts a dense mass matrix up to this many unconstrained
#: parameters: its cost per leapfrog step (a d x d product) stays far below the likelihood's,
#: and Stan's last adaptation window (200 draws of the default 500) still estimates a d x d
#: covariance. Larger models (neural mechanisms) get a diagonal one.
DENSE_MASS_MAX_DIM = 64
#: ... and when the warm-up has at least this many draws per unconstrained parameter.
DENSE_MASS_WARMUP_PER_DIM = 10


def unconstrained_dimension(model) -> int:
    """Count the unconstrained real parameters of a NumPyro model (traced abstractly, nothing run)."""

    def unconstrained(key):
        tr = handlers.trace(handlers.seed(model, key)).get_trace()
        return [
            biject_to(site["fn"].support).inv(site["value"])
            for site in tr.values()
            if site["type"] == "sample" and not site["is_observed"]
        ]

    return sum(math.prod(x.shape) for x in jax.eval_shape(unconstrained, jax.random.key(0)))


def _resolve_dense_mass(config: NUTSConfig, model) -> NUTSConfig:
    """``config`` with ``dense_mass="auto"`` decided (True or False) for ``model``."""
    if config.dense_mass != "auto":
        return config
    limit = min(DENSE_MASS_MAX_DIM, config.num_warmup // DENSE_MASS_WARMUP_PER_DIM)
    return dataclasses.replace(config, dense_mass=unconstrained_dimension(model) <= limit)


#: The MAP that starts NUTS unless ``fit`` is given a ``map_config``: one restart, stopped at
#: a relative change of 1e-4 per 100 steps (~0.1 nat on a log joint of ~1000). A start within
#: a nat of the mode serves NUTS as well as the mode (its typical set lies ~d/2 nats below);
#: on the 3 x 4 benchmark game (20 x 40) it takes 300 Adam steps instead of 1,600 (log joint
#: 0.27 nats below the converged one), on 60 x 100 1,200 instead of 2,200.
NUTS_START_MAP = MAPConfig(num_restarts=1, tol=1e-4)


#: NumPyro's NUTS with sequential chains from the MAP (no checkpoint) runs each chain as one
#: compiled program (``numpyro_nuts.run_numpyro_nuts``); False takes ``MCMC.run`` as before
#: (the same chains up to rounding; tests compare the two).
_COMPILED_CHAINS = True

#: The MAP that starts SVI and Laplace unless ``fit`` is given a ``map_config``.
START_MAP = MAPConfig(num_restarts=1)


def _map_init(spec: ModelSpec, key, progress: bool, map_config: MAPConfig | None, default=START_MAP):
    """Return the MAP start: ``map_config`` (from ``fit(init_map=...)``) if given, else ``default``."""
    return fit_map_spec(spec, key, map_config or default, progress=progress)


@contextlib.contextmanager
def _discard_progress_output(active: bool):
    """Send what NumPyro's progress bar writes to stderr nowhere; warnings are re-issued after.

    Why: with ``progress_bar=False`` NumPyro 0.22's ``fori_collect`` builds a new jit wrapper on
    every call, so each sequential chain, each ``MCMC.run`` and each checkpoint chunk compiles
    the whole sampling loop again (pyro-ppl/numpyro#2171, fixed after 0.22). Its progress-bar
    path jits one iteration once per kernel and reuses it; we take that path and drop its output.
    """
    if not active:
        yield
        return
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.redirect_stderr(io.StringIO()):
                yield
    finally:
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _nuts_options(config: NUTSConfig) -> dict[str, Any]:
    return {
        "dense_mass": config.dense_mass,
        "target_accept_prob": config.target_accept,
        "max_tree_depth": config.max_tree_depth,
    }


def _nuts_starts(
    spec: ModelSpec,
    model,
    potential,
    key: jax.Array,
    config: NUTSConfig,
    progress: bool,
    map_config: MAPConfig | None,
    info: dict[str, Any],
) -> ParamInfo:
    """Return every chain's start in unconstrained space: leaves [C, ...] (``inference/starts.py``).

    ``init="dispersed"``: one prior draw per chain (the MAP for a chain without a finite draw);
    ``init="map"``: the MAP for every chain. Energy and gradient are filled in where known
    (dispersed starts, or a MAP start for ``MCMC.run``, which then skips its eager evaluation);
    a start where either is not finite is diagnosed here. The compiled chains and BlackJAX
    evaluate them in their compiled initialisation instead; there the MAP's finite objective
    vouches for the start, and a gradient that is not finite shows as a non-finite start
    (``run_numpyro_nuts``) or as non-finite or all-divergent draws (``check_nuts_draws``).
    """
    C = int(config.num_chains)
    k_draw = jax.random.fold_in(key, 1)  # the MAP takes ``key`` itself, as before dispersed starts
    t0 = time.perf_counter()
    starts, fallback = None, np.ones(C, dtype=bool)
    if config.init == "dispersed":
        starts, found = dispersed_starts(potential, prior_draw_fn(model), k_draw, C)
        fallback = ~found
        info["init_fallback_chains"] = np.flatnonzero(fallback).tolist()
    if fallback.any():
        t_map = time.perf_counter()
        m = _map_init(spec, key, progress, map_config, NUTS_START_MAP)
        info["map_seconds"] = time.perf_counter() - t_map
        info["map_log_joint"] = m.log_joint
        z0 = m.unconstrained
        need_energy = starts is not None or not (
            config.backend == "blackjax" or _compiled_chains(config, None)
        )
        if need_energy:
            energy, grad = potential_value_and_grad(potential, z0)
            finite = np.isfinite(float(energy)) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
            where = "at the initial point (the MAP)"
            if not finite:
                raise_nonfinite(spec, "NUTS", where, m.values)
            start = ParamInfo(z0, energy, grad)
        else:
            if not all(np.all(np.isfinite(v)) for v in jax.tree.leaves(z0)):
                raise_nonfinite(spec, "NUTS", "at the initial point (the MAP)", m.values)
            start = ParamInfo(z0, None, None)
        starts = broadcast_start(start, C) if starts is None else chain_starts(starts, start, fallback)
    info["init_seconds"] = time.perf_counter() - t0
    return starts


def _compiled_chains(config: NUTSConfig, checkpoint: Checkpoint | None) -> bool:
    """Whether NUTS runs as compiled programs per chain (``numpyro_nuts``) rather than ``MCMC.run``."""
    return (
        _COMPILED_CHAINS
        and config.backend == "numpyro"
        and config.init in ("map", "dispersed")
        and config.chain_method == "sequential"
        and checkpoint is None
    )


def _start_values(model, starts: ParamInfo, chain: int) -> dict[str, Any]:
    """Return the constrained latent values at chain ``chain``'s start (for a diagnosis)."""
    z = jax.tree.map(lambda x: x[chain], starts.z)
    return {k: np.asarray(v) for k, v in constrain_fn(model, (), {}, z).items()}


def run_nuts(
    spec: ModelSpec,
    key: jax.Array,
    config: NUTSConfig,
    *,
    progress: bool = True,
    map_config: MAPConfig | None = None,
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Sample with NUTS; returns posterior [C, S, ...], sample_stats and timing info.

    With ``checkpoint``, warm-up and then chunks of draws are saved and a saved run resumes.
    """
    if config.backend == "blackjax" and checkpoint is not None:
        raise ValueError("checkpointing is available with NUTSConfig(backend='numpyro') only.")
    k_map, k_run = jax.random.split(key)
    info: dict[str, Any] = {"nuts_backend": config.backend}
    model = spec.model()
    config = _resolve_dense_mass(config, model)
    info["dense_mass"] = config.dense_mass
    start = postprocess = None
    compiled_chains = _compiled_chains(config, checkpoint)
    if config.init in ("map", "dispersed"):
        # Started at the MAP or at prior draws, NUTS runs on a jitted potential function of the
        # unconstrained values: NumPyro's model initialisation (the model and its gradient
        # evaluated eagerly, op by op: ~10 s of one-off compilations for a small game) is not
        # needed. jitted: the warm-up, the sampler and the start share one trace of the model
        potential = Potential(model)  # a pytree: its programs are shared by fits of equal shapes
        postprocess = functools.partial(constrain_draws, model)
        if not (checkpoint is not None and checkpoint.has_state):
            start = _nuts_starts(spec, model, potential, k_map, config, progress, map_config, info)
        # BlackJAX builds its own kernel from the same potential
        kernel = (
            NUTS(potential_fn=potential, **_nuts_options(config)) if config.backend == "numpyro" else None
        )
    else:
        kernel = NUTS(model, init_strategy=init_to_median(num_samples=15), **_nuts_options(config))
    info["init"] = config.init

    # Sequential chains from the MAP run as compiled programs (numpyro_nuts); otherwise
    # sequential chains always take NumPyro's progress-bar path (compiled once, see
    # _discard_progress_output); its output is dropped unless a bar was asked for and NumPyro
    # shows one (it hides bars when CI or PYTEST_XDIST_WORKER is set).
    bar_path = config.chain_method == "sequential" and config.backend == "numpyro" and not compiled_chains
    quiet_bar = bar_path and not MCMC(kernel, num_warmup=1, num_samples=1, progress_bar=progress).progress_bar

    def make_mcmc(num_samples: int) -> MCMC:
        mcmc = MCMC(
            kernel,
            num_warmup=config.num_warmup,
            num_samples=num_samples,
            num_chains=config.num_chains,
            chain_method=config.chain_method,
            progress_bar=progress,
        )
        if bar_path:
            mcmc.progress_bar = True  # read by MCMC.run (NumPyro 0.22); not a constructor option
        return mcmc

    fields = ("diverging", "num_steps", "accept_prob", "energy", "potential_energy")
    t0 = time.perf_counter()
    with _discard_progress_output(quiet_bar), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There are not enough devices")
        if config.backend == "blackjax":
            from .blackjax_nuts import run_blackjax_nuts  # looked up per call (tests replace it)

            z, extra, info["compile_seconds"] = run_blackjax_nuts(
                potential, start.z, k_run, config, progress=progress
            )
            posterior = {k: np.asarray(v) for k, v in postprocess(z).items()}
            check_nuts_draws(spec, posterior, extra)
        elif compiled_chains:
            from .numpyro_nuts import run_numpyro_nuts

            finite, z, extra = run_numpyro_nuts(potential, start.z, k_run, config, progress=progress)
            if finite is not True:  # the first chain whose start is not finite
                where = f"at the initial point of chain {finite} ({config.init} start)"
                raise_nonfinite(spec, "NUTS", where, _start_values(model, start, finite))
            posterior = {k: np.asarray(v) for k, v in postprocess(z).items()}
            check_nuts_draws(spec, posterior, extra)
        elif checkpoint is not None:
            posterior, extra = run_nuts_chunks(
                spec, make_mcmc, k_run, config.num_samples, fields, checkpoint, info,
                init_params=None if start is None else for_mcmc(start, config.num_chains),
                postprocess=postprocess,
            )  # fmt: skip
            info = {**checkpoint.info, **info}
        else:
            mcmc = make_mcmc(config.num_samples)
            try:
                init = None if start is None else for_mcmc(start, config.num_chains)
                mcmc.run(k_run, init_params=init, extra_fields=fields)
            except (RuntimeError, ValueError) as exc:
                init_failure(spec, "NUTS", k_run, exc)
            posterior = mcmc.get_samples(group_by_chain=True)
            if postprocess is not None:
                posterior = postprocess(posterior)
            posterior = {k: np.asarray(v) for k, v in posterior.items()}
            extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
            check_nuts_draws(spec, posterior, extra)
    info["sampling_seconds"] = time.perf_counter() - t0
    stats = {
        "diverging": np.asarray(extra["diverging"]),
        "n_steps": np.asarray(extra["num_steps"]),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "energy": np.asarray(extra["energy"]),
        "lp": -np.asarray(extra["potential_energy"]),
    }
    info["divergences"] = int(stats["diverging"].sum())
    info["mean_leapfrog_steps"] = float(stats["n_steps"].mean())
    return {"posterior": posterior, "sample_stats": stats, "info": info}


def _guide(spec: ModelSpec, config: SVIConfig, init_values: dict | None):
    model = spec.model()
    init_loc = init_to_value(values=init_values) if init_values else init_to_median(num_samples=15)
    if config.guide == "normal":
        return AutoNormal(model, init_loc_fn=init_loc, init_scale=0.05)
    if config.guide == "lowrank":
        return AutoLowRankMultivariateNormal(model, init_loc_fn=init_loc, rank=config.rank, init_scale=0.05)
    return AutoMultivariateNormal(model, init_loc_fn=init_loc, init_scale=0.05)


def _finish_draws(spec: ModelSpec, latent: dict[str, Any]) -> dict[str, np.ndarray]:
    latent = {k: np.asarray(v) for k, v in latent.items() if k in spec.latent_names}
    for name, v in latent.items():
        if not np.all(np.isfinite(v)):
            raise FitError(f"posterior draws of '{name}' are not finite; the approximation failed.")
    det = deterministic_sites(spec, latent)
    return group_by_chain({**latent, **det}, 1)


def run_svi(
    spec: ModelSpec,
    key: jax.Array,
    config: SVIConfig,
    *,
    progress: bool = True,
    map_config: MAPConfig | None = None,
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Fit an autoguide by SVI (Optax Adam) and draw from it (in saved chunks with ``checkpoint``)."""
    k_map, k_svi, k_draw = jax.random.split(key, 3)
    info: dict[str, Any] = {"guide": config.guide}
    init_values = None
    if config.init == "map" and not (checkpoint is not None and checkpoint.has_state):
        m = _map_init(spec, k_map, progress, map_config)
        init_values = m.values
        info["map_log_joint"] = m.log_joint
    guide = _guide(spec, config, init_values)
    model = spec.model()
    if config.batch_size is not None:
        model = functools.partial(model, batch_size=config.batch_size)
    svi = SVI(
        model,
        guide,
        optax_to_numpyro(optax.adam(config.learning_rate)),
        Trace_ELBO(num_particles=config.num_particles),
    )
    t0 = time.perf_counter()
    params, losses = run_svi_chunks(
        spec, svi, guide, k_svi, config.num_steps, checkpoint, progress=progress, info=dict(info)
    )
    if checkpoint is not None:
        info = {**checkpoint.info, **info}
    info["svi_seconds"] = time.perf_counter() - t0
    info["final_elbo_loss"] = float(losses[-min(100, len(losses)) :].mean())
    latent = guide.sample_posterior(k_draw, params, sample_shape=(config.num_draws,))
    stride = max(1, len(losses) // 500)
    info["elbo_loss_trace"] = losses[::stride].tolist()
    return {"posterior": _finish_draws(spec, latent), "sample_stats": {}, "info": info}


def run_laplace(
    spec: ModelSpec,
    key: jax.Array,
    config: LaplaceConfig,
    *,
    progress: bool = True,
    map_config: MAPConfig | None = None,
) -> dict[str, Any]:
    """Gaussian approximation at the unconstrained mode (as NumPyro's AutoLaplaceApproximation).

    The MAP, then ``config.refine_steps`` Adam steps on the potential (which adds the transforms'
    log-Jacobian), the inverse Hessian there and ``config.num_draws`` draws (``laplace.py``). A
    singular or indefinite Hessian is refused (NumPyro would return draws all equal to the mode).
    """
    from bayes_diml.mechanisms import param_count

    n_params = sum(int(np.prod(s)) for s in _site_shapes(spec).values())
    if n_params > config.max_params:
        raise FitError(
            f"Laplace needs a dense {n_params} x {n_params} Hessian; that is more than max_params = "
            f"{config.max_params}. Use method='svi' or 'nuts', or raise max_params."
        )
    del param_count
    k_map, _, k_draw = jax.random.split(key, 3)  # the middle key was SVI's (no randomness)
    m = _map_init(spec, k_map, progress, map_config)
    # refinement, Hessian and draws: one program, shared by fits of equal shapes (laplace.py)
    model = as_program_argument(spec.model())
    latent, singular = laplace_draws(
        model, m.unconstrained, k_draw, max(int(config.refine_steps), 1), float(config.learning_rate),
        int(config.num_draws),
    )  # fmt: skip
    bad = [k for k, v in latent.items() if not np.all(np.isfinite(np.asarray(v)))]
    if bool(singular) or bad:
        raise FitError(
            "the Laplace covariance is singular or indefinite (the Hessian at the mode cannot be "
            "inverted): the posterior has flat directions at the mode. Use a gauge-fixed mechanism, "
            "proper priors, or method='nuts'."
        )
    info = {"map_log_joint": m.log_joint, "n_params": n_params}
    return {"posterior": _finish_draws(spec, latent), "sample_stats": {}, "info": info}


def _site_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    from bayes_diml.models import BIAS, BIAS_FREE, bias_free_shape, inferred_learner_fields, mechanism_sites

    shapes = dict(mechanism_sites(spec.mechanism))
    for name in inferred_learner_fields(spec.learner):
        v = getattr(spec.learner, name)
        if name == BIAS:
            shapes[BIAS_FREE] = bias_free_shape(spec.data.n_actions)
        elif v == "infer":
            shapes[name] = ()
        elif v == "infer_per_agent":
            shapes[name] = (spec.data.n_agents,)
    if spec.data.has_payoffs:
        shapes["payoff_noise"] = ()
    return shapes
