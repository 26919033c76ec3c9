"""Maximum a posteriori estimation with Optax (with flat priors and a fixed learner: DIML's MLE)."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer.util import compute_log_probs, constrain_fn, log_density, unconstrain_fn
from tqdm.auto import tqdm

from .errors import ConvergenceWarning
from .nonfinite import raise_nonfinite
from .programs import as_program_argument
from .spec import ModelSpec, initial_values

__all__ = ["MAPConfig", "MAPResult", "fit_map_spec"]


@dataclass(frozen=True)
class MAPConfig:
    """Settings of the MAP optimiser.

    Attributes
    ----------
    num_steps : int
        Maximum optimiser steps per restart.
    learning_rate : float
        Adam step size (ignored by L-BFGS, which line-searches).
    num_restarts : int
        Independent starts (the first from the mechanism's own init / a zero table).
    optimizer : str
        ``"adam"`` or ``"lbfgs"``.
    tol : float
        Converged when the change of the objective over one chunk (the mean of each chunk's
        last ``chunk // 5`` steps, which averages out the optimiser's jitter) is below
        ``max(tol, 16 * machine epsilon)`` of the objective's dtype times its magnitude: a
        float32 sum of thousands of terms cannot resolve relative changes near 1e-7. The
        magnitude is the sum of every site's absolute log density (each prior site's and the
        likelihood's), not the absolute log joint: a prior's normalising constants are
        positive where its scales are small, and can cancel the likelihood's negative nats
        to a log joint near 0, which would ask for a change below float32's resolution.
    chunk : int
        Steps per jitted chunk (progress and convergence are checked between chunks).
    init_jitter : float
        Scale of the random perturbation of restarts after the first.
    patience : int
        Early stopping (only with held-out data, ``fit(..., validation=...)``): stop a restart
        after ``patience`` chunks without a better held-out log-likelihood, and return the
        iterate with the best one. Without held-out data it is not used.
    polish_steps : int
        L-BFGS steps after Adam (0, the default: none). The best restart's endpoint is polished
        by L-BFGS (a fresh state, the same ``chunk`` and ``tol``) until the convergence test
        fires or ``polish_steps`` run out, and ``converged`` is then L-BFGS's test. Adam reaches
        the basin of a wide network quickly but crawls along it; L-BFGS, started there, runs
        the MAP to a point the test certifies. Only with ``optimizer="adam"`` and without early
        stopping (which stops before the optimum by design).
    """

    num_steps: int = 3000
    learning_rate: float = 0.03
    num_restarts: int = 3
    optimizer: str = "adam"
    tol: float = 1e-7
    chunk: int = 100
    init_jitter: float = 0.3
    patience: int = 5
    polish_steps: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"MAPConfig.optimizer must be 'adam' or 'lbfgs'; got {self.optimizer!r}.")
        for name in ("num_steps", "num_restarts", "chunk", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"MAPConfig.{name} must be >= 1; got {getattr(self, name)}.")
        if int(self.polish_steps) < 0:
            raise ValueError(f"MAPConfig.polish_steps must be >= 0; got {self.polish_steps}.")
        if self.polish_steps and self.optimizer != "adam":
            raise ValueError(
                "MAPConfig.polish_steps polishes an Adam fit with L-BFGS; with optimizer='lbfgs' "
                "raise num_steps instead."
            )


class MAPResult(NamedTuple):
    """Result of :func:`fit_map_spec`.

    Attributes
    ----------
    values : dict of arrays
        Constrained latent site values at the best optimum.
    log_joint : float
        Log joint density (log prior + log likelihood, no Jacobian) at ``values``.
    converged : bool
        Whether the best restart met the tolerance within ``num_steps``.
    losses : float[steps]
        Objective trace of the best restart (negative log joint per chunk end).
    restart_log_joints : float[num_restarts]
        Final log joint of every restart (their spread tells whether optima agree); with
        ``polish_steps``, before the best one is polished.
    unconstrained : dict of arrays
        The optimum in the unconstrained space it was found in (NumPyro's transforms of the
        latent sites): where NUTS starts without converting ``values`` back.
    step : int
        Optimiser steps of the returned iterate (early stopping: the chunk end with the best
        held-out score; otherwise where the best restart stopped), polishing steps included.
    validation_trace : float[chunks] or None
        Early stopping: the held-out log-likelihood at every chunk end of the best restart.
    polished_steps : int
        L-BFGS steps of the polish (``MAPConfig.polish_steps``; 0 without), included in ``step``.
    """

    values: dict
    log_joint: float
    converged: bool
    losses: np.ndarray
    restart_log_joints: np.ndarray
    unconstrained: dict | None = None
    step: int = 0
    validation_trace: np.ndarray | None = None
    polished_steps: int = 0


def _optimizer(config: MAPConfig) -> optax.GradientTransformation:
    if config.optimizer == "lbfgs":
        return optax.lbfgs()
    return optax.adam(config.learning_rate)


def fit_map_spec(
    spec: ModelSpec,
    key: jax.Array,
    config: MAPConfig = MAPConfig(),
    *,
    progress: bool = True,
    init: dict[str, Any] | None = None,
    validation: Callable[[dict], float] | None = None,
) -> MAPResult:
    """Maximise the log joint density (no Jacobian term) over the latent sites.

    Optimises in the unconstrained space of each site (NumPyro's transforms), so learner
    parameters stay in range; the objective is the constrained log joint, so with flat
    priors and a fixed learner the optimum is the maximum-likelihood estimate.

    ``validation`` (early stopping): a held-out score of the constrained values, higher is
    better, evaluated at every chunk end. Each restart returns its chunk end with the best
    score and stops after ``config.patience`` chunks without a better one; the restart with
    the best score wins. ``converged`` still reports the training objective's test.

    ``config.polish_steps``: the best restart's endpoint is then polished by L-BFGS (see
    :class:`MAPConfig`); ``losses`` runs on through the polish.
    """
    if config.polish_steps and validation is not None:
        raise ValueError(
            "MAPConfig.polish_steps cannot be combined with early stopping (validation=...): "
            "polishing runs the training objective to its optimum, early stopping stops before it."
        )
    result = _descend(spec, key, config, progress=progress, init=init, validation=validation)
    if config.polish_steps:
        result = _polish(spec, key, config, result, progress)
    if not result.converged and validation is None:
        polish = f" Adam and {config.polish_steps} L-BFGS" if config.polish_steps else ""
        remedy = "polish_steps" if config.polish_steps else "num_steps or learning_rate"
        warnings.warn(
            f"MAP did not converge within {config.num_steps}{polish} steps "
            f"(relative change > {config.tol}); raise {remedy}.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return result


def _polish(spec: ModelSpec, key: jax.Array, config: MAPConfig, adam: MAPResult, progress: bool) -> MAPResult:
    """Polish ``adam``'s optimum with L-BFGS from its unconstrained point (a fresh optimiser state)."""
    lbfgs = dataclasses.replace(
        config, optimizer="lbfgs", num_steps=config.polish_steps, num_restarts=1, polish_steps=0
    )
    out = _descend(spec, key, lbfgs, progress=progress, init=None, validation=None, start=adam.unconstrained)
    return out._replace(
        losses=np.concatenate([adam.losses, out.losses]),
        restart_log_joints=adam.restart_log_joints,
        step=adam.step + out.step,
        polished_steps=out.step,
    )


def _descend(
    spec: ModelSpec,
    key: jax.Array,
    config: MAPConfig,
    *,
    progress: bool,
    init: dict[str, Any] | None,
    validation: Callable[[dict], float] | None,
    start: dict[str, Any] | None = None,
) -> MAPResult:
    """:func:`fit_map_spec` with ``config.optimizer`` alone: restarts, chunks, the test; no warning.

    ``start``: the first restart's unconstrained point (a polish starts where Adam stopped).
    """
    # The programs take the model as an argument (its data are leaves, ``programs.py``): fits of
    # equal structure and shapes share them. ``step`` is this fit's step, for ``_replay`` only.
    model = as_program_argument(spec.model())
    opt = _optimizer(config)
    step = _step_fn(model, config)

    def run_chunk(z, state):
        return _run_chunk(model, z, state, config)

    def unconstrain(v):
        return _unconstrain(model, v)

    def constrain(z):
        return _constrain(model, z)

    best: tuple[float, float, Any, bool, np.ndarray, int, np.ndarray | None] | None = None
    finals = []
    bar = tqdm(total=config.num_restarts * config.num_steps, desc="MAP", disable=not progress, leave=False)
    for r in range(config.num_restarts):
        key, k_init = jax.random.split(key)
        if start is not None and r == 0:  # a polish: Adam's point as it was found, no round trip
            z0 = start
            values = constrain(z0)
        else:
            values = initial_values(spec, k_init, jitter=0.0 if r == 0 else config.init_jitter)
            if init is not None and r == 0:
                values = {**values, **{k: jnp.asarray(v) for k, v in init.items()}}
            z0 = unconstrain(values)
        # Strongly typed from the start: weakly typed scalars (from Python floats) would make
        # the first chunks' outputs differ in type from their inputs, and each new type
        # signature traces and compiles the chunk program again (three times instead of once).
        z, state = jax.tree.map(_strongly_typed, (z0, opt.init(z0)))
        trace, converged, prev, end = [], False, None, None
        scores, kept = [], None  # early stopping: held-out scores, (score, z, end, steps) of the best
        for _ in range(max(1, config.num_steps // config.chunk)):
            z_new, state_new, losses, end_new, magnitude = run_chunk(z, state)
            losses = np.asarray(losses)
            if prev is None:  # the first chunk: losses[0] is the objective at the start
                prev = float(losses[0])
                if not np.isfinite(prev):
                    raise_nonfinite(spec, "MAP", f"at the starting point of restart {r}", values)
                tol = max(config.tol, 16 * float(np.finfo(losses.dtype).eps))
            if not np.all(np.isfinite(losses)):
                j = int(np.argmax(~np.isfinite(losses)))  # losses[j] is the objective at z_j
                zs = _replay(step, z, state, j)
                at = zs[-1] if _finite(zs[-1]) else zs[-2]
                raise_nonfinite(
                    spec,
                    "MAP",
                    f"at step {len(trace) * config.chunk + j} of restart {r} (objective {losses[j]})",
                    constrain(at),
                    hint=" Lower learning_rate or use optimizer='lbfgs' if the model is fine there.",
                )
            z_prev, state_prev = z, state
            z, state, end = z_new, state_new, end_new
            trace.append(losses)
            bar.update(config.chunk)
            cur = float(np.mean(losses[-max(1, config.chunk // 5) :]))
            converged = abs(prev - cur) <= tol * (float(magnitude) + 1.0)
            if validation is not None:
                score = float(validation(constrain(z)))
                scores.append(score if np.isfinite(score) else -np.inf)
                if kept is None or scores[-1] > kept[0]:
                    kept = (scores[-1], z, end, len(trace) * config.chunk)
                if len(trace) * config.chunk - kept[3] >= config.patience * config.chunk:
                    break
            if converged:
                break
            prev = cur
        bar.update(config.num_steps - len(trace) * config.chunk)
        steps = len(trace) * config.chunk
        final = float(end)
        if not np.isfinite(final):  # the chunk's last step (whose objective no loss records)
            raise_nonfinite(
                spec,
                "MAP",
                f"at step {steps} of restart {r} (objective {final}; its last step)",
                constrain(z if _finite(z) else _replay(step, z_prev, state_prev, config.chunk - 1)[-1]),
                hint=" Lower learning_rate or use optimizer='lbfgs' if the model is fine there.",
            )
        if kept is not None:  # early stopping: the chunk end with the best held-out score
            _, z, end, steps = kept
            final = float(end)
        finals.append(-final)
        # the restart with the best held-out score (early stopping), else the best objective
        rank = -kept[0] if kept is not None else final
        if best is None or rank < best[0]:
            val_trace = np.asarray(scores) if validation is not None else None
            best = (rank, final, z, converged, np.concatenate(trace), steps, val_trace)
    bar.close()
    _, final, z, converged, losses, steps, val_trace = best
    values = {k: np.asarray(v) for k, v in constrain(z).items() if k in spec.latent_names}
    return MAPResult(values, -final, converged, losses, np.asarray(finals), z, steps, val_trace)


def _objective(model: Any) -> Any:
    """``z -> -log joint`` (no Jacobian) of ``model`` at unconstrained values."""
    return lambda z: -log_density(model, (), {}, constrain_fn(model, (), {}, z))[0]


def _step_fn(model: Any, config: MAPConfig) -> Any:
    """One optimiser step ``((z, state), _) -> ((z, state), loss)`` (a ``lax.scan`` body).

    The objective is jitted once (one trace of the model), reused by L-BFGS's line search.
    """
    opt = _optimizer(config)
    objective = jax.jit(_objective(model))
    value_and_grad = optax.value_and_grad_from_state(objective) if config.optimizer == "lbfgs" else None

    def step(carry, _):
        z, state = carry
        if value_and_grad is not None:
            loss, grad = value_and_grad(z, state=state)
            updates, state = opt.update(grad, state, z, value=loss, grad=grad, value_fn=objective)
        else:
            loss, grad = jax.value_and_grad(objective)(z)
            updates, state = opt.update(grad, state, z)
        return (optax.apply_updates(z, updates), state), loss

    return step


@functools.partial(jax.jit, static_argnames=("config",))
def _run_chunk(model: Any, z: Any, state: Any, config: MAPConfig) -> tuple:
    """Run ``config.chunk`` steps; return ``(z, state, losses, end, magnitude)``.

    ``losses[j]`` is the objective at the j-th iterate (``losses[0]``: at ``z``), ``end`` the
    objective at the returned ``z`` and ``magnitude`` the scale of the convergence test there
    (:func:`_end_point`; one program: no separate objective jit).
    """
    step = _step_fn(model, config)
    (z, state), losses = jax.lax.scan(step, (z, state), None, length=config.chunk)
    return z, state, losses, *_end_point(model, z)


def _end_point(model: Any, z: dict) -> tuple[jax.Array, jax.Array]:
    """Return ``(-log joint, magnitude)`` at ``z`` from one evaluation of the sites' log densities.

    ``-log joint`` is :func:`_objective` (the same sum as ``log_density``). ``magnitude`` is the
    sum over sample sites of ``|sum of the site's log density|``: at least ``|log joint|``, and
    equal to it when all sites' log densities share a sign; the float32 resolution of the log
    joint is proportional to it, not to ``|log joint|``.
    """
    site_log_probs, _ = compute_log_probs(model, (), {}, constrain_fn(model, (), {}, z))
    log_joint = sum(site_log_probs.values(), start=0.0)
    return -log_joint, sum((jnp.abs(v) for v in site_log_probs.values()), start=jnp.zeros(()))


@jax.jit
def _unconstrain(model: Any, values: dict) -> dict:
    return unconstrain_fn(model, (), {}, values)


@jax.jit
def _constrain(model: Any, z: dict) -> dict:
    return constrain_fn(model, (), {}, z)


def _finite(z: dict) -> bool:
    """Whether every value of a parameter dict is finite."""
    return all(np.all(np.isfinite(np.asarray(v))) for v in z.values())


def _strongly_typed(x: Any) -> Any:
    """``x`` with the same dtype but not weakly typed (JAX's type of Python scalars)."""
    return jax.lax.convert_element_type(x, jnp.result_type(x))


def _replay(step, z, state, n: int) -> list:
    """Parameters before and after each of ``n`` optimiser steps from ``(z, state)``: n + 1 dicts.

    Used to find the exact step where the objective became non-finite (the chunk runs in one
    ``lax.scan``); the single steps are jitted separately, so the values may differ from the
    chunk's in the last bits, never in where the objective is non-finite at a sharp boundary.
    """
    one = jax.jit(lambda z, state: step((z, state), None)[0])
    out = [z]
    for _ in range(n):
        z, state = one(z, state)
        out.append(z)
    return out if n else [z, z]
