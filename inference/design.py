"""Choose a mechanism change under posterior uncertainty: ``Posterior.design``.

For every posterior draw (mechanism and learner together) and every candidate ``theta`` of a
parametrised edit (:mod:`bayes_diml.edits`), simulate play under the edited mechanism and
compute an objective; the status quo (the unedited mechanism) is simulated beside them.
Candidates and the status quo share random numbers (the same keys for every theta), so their
differences carry little Monte Carlo noise, and all of them run as one compiled, vectorised
program per draw. :func:`design` is the body of ``Posterior.design`` (which documents it).

Notation: ``obj[d, c]`` the objective of candidate ``c`` under posterior draw ``d`` (a mean
over ``n_episodes`` simulated episodes), ``s = +1`` to maximise and ``-1`` to minimise.

- ``prob_improvement[c] = mean_d 1{s (obj[d, c] - obj_status_quo[d]) > 0}``;
- criterion ``"mean"`` picks ``argmax_c mean_d s obj[d, c]``; ``"quantile"`` (risk averse)
  ``argmax_c`` of the ``quantile`` of ``s obj[., c]``; ``"prob_improvement"`` the most
  probable improvement (ties broken by the mean);
- ``evpi = mean_d max_c s obj[d, c] - max_c mean_d s obj[d, c] >= 0``: the expected gain of
  the decision if the mechanism (and learners) were known, in objective units.

Monte Carlo standard errors treat the ``n_draws`` draws used as independent (they are evenly
spaced over the chains; check the fit's ESS).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayes_diml.edits import Edit
from bayes_diml.learners import LogitQ
from bayes_diml.models import params_from_sites
from bayes_diml.simulation import simulate_arrays

from .errors import ConfoundingWarning
from .interventions import EditedMechanism, draw_arrays

__all__ = ["Design", "design", "grid", "box", "OBJECTIVES", "CRITERIA"]

#: Built-in objectives (besides ``"share:K"`` and a callable); see :func:`objective_function`.
OBJECTIVES = ("welfare", "agent_welfare", "revenue")
#: Decision criteria of :func:`design`.
CRITERIA = ("mean", "quantile", "prob_improvement")

#: ``f(actions int[T, n], payoffs float[T, n], base_payoffs float[T, n]) -> float[]``: one episode's value.
Objective = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def grid(*axes: tuple[float, float, int] | Sequence[float]) -> np.ndarray:
    """Return float[C, d]: the product of ``d`` axes, each ``(low, high, num)`` or a list of values.

    ``grid((0, 1, 21))`` is 21 tolls from 0 to 1; ``grid((0, 1, 5), [0, 0.5])`` 10 pairs.
    """
    if not axes:
        raise ValueError("grid needs at least one axis.")
    values = []
    for ax in axes:
        if isinstance(ax, tuple) and len(ax) == 3 and isinstance(ax[2], int | np.integer):
            low, high, num = ax
            if int(num) < 1:
                raise ValueError(f"a grid axis needs num >= 1; got {ax}.")
            values.append(np.linspace(float(low), float(high), int(num)))
        else:
            values.append(np.asarray(ax, dtype=np.float64).reshape(-1))
    mesh = np.meshgrid(*values, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1)


def box(low: Sequence[float], high: Sequence[float], num: int, seed: int = 0) -> np.ndarray:
    """Return float[num, d]: a scrambled Sobol sequence filling the box ``low <= theta <= high``.

    For 2-3 dimensions, where a grid of the same size leaves large gaps; ``num`` a power of 2
    keeps the sequence balanced. ``box([0, 0], [1, 2], 16)``: 16 (toll, subsidy) pairs.
    """
    from scipy.stats import qmc

    lo, hi = np.atleast_1d(np.asarray(low, np.float64)), np.atleast_1d(np.asarray(high, np.float64))
    if lo.shape != hi.shape or lo.ndim != 1 or not np.all(lo <= hi):
        raise ValueError(f"box needs low <= high, of the same length; got low={low}, high={high}.")
    if int(num) < 1:
        raise ValueError(f"box needs num >= 1; got {num}.")
    points = qmc.Sobol(len(lo), scramble=True, seed=int(seed)).random(int(num))
    return qmc.scale(points, lo, hi) if np.all(lo < hi) else lo + points * (hi - lo)


def _candidates(space: Any) -> np.ndarray:
    """Return float[C, d] from a grid (float[C] or float[C, d])."""
    thetas = np.asarray(space, dtype=np.float64)
    if thetas.ndim == 1:
        thetas = thetas[:, None]
    if thetas.ndim != 2 or thetas.shape[0] == 0 or thetas.shape[1] == 0:
        raise ValueError(
            "space must be float[C] or float[C, d] with C >= 1 candidates (see "
            f"bayes_diml.inference.design_grid); got shape {np.shape(space)}."
        )
    if thetas.shape[1] > 3:
        raise ValueError(f"space has {thetas.shape[1]} dimensions; design searches 1-3.")
    if not np.all(np.isfinite(thetas)):
        raise ValueError("space holds non-finite values.")
    return thetas


def objective_function(objective: str | Objective) -> tuple[str, Objective]:
    """Return ``(name, f)`` for an objective name or callable.

    ``"welfare"``: mean total payoff per step under the *unedited* mechanism (tolls and rebates
    are transfers, which cancel); ``"agent_welfare"``: the same with the edited payoffs (what
    the agents keep); ``"revenue"``: mean per step of what the edit takes from the agents,
    ``sum_i (u_i - u_i')`` (negative for subsidies); ``"share:K"``: the share of agent-steps on
    action ``K``; a callable ``f(actions int[T, n], payoffs float[T, n], base_payoffs float[T, n])
    -> float[]``. Each is one episode's value; a simulation's objective is their mean over the
    episodes (so its simulation error is known).
    """
    if callable(objective):
        return getattr(objective, "__name__", "objective"), objective
    if not isinstance(objective, str):
        raise TypeError(f"objective must be a name or a callable; got {type(objective).__name__}.")
    if objective == "welfare":
        return objective, lambda a, u, base: base.sum(-1).mean()
    if objective == "agent_welfare":
        return objective, lambda a, u, base: u.sum(-1).mean()
    if objective == "revenue":
        return objective, lambda a, u, base: (base - u).sum(-1).mean()
    if objective.startswith("share:"):
        try:
            k = int(objective.split(":", 1)[1])
        except ValueError:
            k = -1
        if k < 0:
            raise ValueError(f"objective {objective!r}: write share:K with an action K >= 0.")
        return objective, lambda a, u, base: (a == k).mean()
    raise ValueError(
        f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}, 'share:K' or a callable."
    )


@dataclasses.dataclass(frozen=True)
class Design:
    """The posterior of an objective for each candidate edit, and the decision.

    Attributes
    ----------
    thetas : float[C, d]
        The candidates.
    episodes : float[D, C, E]
        The objective per posterior draw, candidate and simulated episode.
    status_quo_episodes : float[D, E]
        The same under the unedited mechanism, with the same random numbers.
    objective, criterion : str
        What was optimised and how the candidate was chosen.
    maximize : bool
        Whether larger objective values are better.
    prob : float
        Mass of the equal-tailed intervals.
    quantile : float
        The quantile of the ``"quantile"`` criterion.
    chosen : int
        Index of the chosen candidate.
    evpi, evpi_mcse : float
        Expected value of perfect information and its Monte Carlo standard error.
    """

    thetas: np.ndarray
    episodes: np.ndarray
    status_quo_episodes: np.ndarray
    objective: str
    criterion: str
    maximize: bool
    prob: float
    quantile: float
    chosen: int
    evpi: float
    evpi_mcse: float

    @property
    def draws(self) -> np.ndarray:
        """float[D, C]: the objective per posterior draw and candidate (mean over episodes)."""
        return self.episodes.mean(-1)

    @property
    def status_quo(self) -> np.ndarray:
        """float[D]: the status quo's objective per posterior draw."""
        return self.status_quo_episodes.mean(-1)

    @property
    def sign(self) -> float:
        """+1 when maximising, -1 when minimising."""
        return 1.0 if self.maximize else -1.0

    @property
    def chosen_theta(self) -> np.ndarray:
        """float[d]: the chosen candidate."""
        return self.thetas[self.chosen]

    @property
    def improvement(self) -> np.ndarray:
        """float[D, C]: ``sign * (objective - status quo)`` per draw (> 0 is better)."""
        return self.sign * (self.draws - self.status_quo[:, None])

    @property
    def prob_improvement(self) -> np.ndarray:
        """float[C]: posterior probability that a candidate beats the status quo."""
        return (self.improvement > 0).mean(0)

    @property
    def mcse(self) -> np.ndarray:
        """float[C]: Monte Carlo standard error of each candidate's posterior mean."""
        return _mcse(self.episodes)

    @property
    def mcse_improvement(self) -> np.ndarray:
        """float[C]: Monte Carlo standard error of each candidate's mean improvement.

        Paired with the status quo (the same random numbers), so much smaller than ``mcse``.
        """
        return _mcse(self.episodes - self.status_quo_episodes[:, None, :])

    def mcse_difference(self, a: int, b: int) -> float:
        """Monte Carlo standard error of the difference of candidates ``a`` and ``b``'s means."""
        return float(_mcse(self.episodes[:, [a]] - self.episodes[:, [b]])[0])

    def table(self) -> pd.DataFrame:
        """Return one row per candidate.

        Columns: ``theta`` (or ``theta_0, theta_1, ...``), ``mean``, ``lower``, ``upper``,
        ``prob_improvement``, ``mcse``, ``chosen``, then ``mean_improvement`` and
        ``mcse_improvement``.
        """
        lo, hi = (1 - self.prob) / 2, 1 - (1 - self.prob) / 2
        d = self.thetas.shape[1]
        cols: dict[str, Any] = (
            {"theta": self.thetas[:, 0]} if d == 1 else {f"theta_{j}": self.thetas[:, j] for j in range(d)}
        )
        cols.update(
            mean=self.draws.mean(0),
            lower=np.quantile(self.draws, lo, axis=0),
            upper=np.quantile(self.draws, hi, axis=0),
            prob_improvement=self.prob_improvement,
            mcse=self.mcse,
            chosen=np.arange(len(self.thetas)) == self.chosen,
            mean_improvement=self.improvement.mean(0),
            mcse_improvement=self.mcse_improvement,
        )
        return pd.DataFrame(cols)

    def summary(self) -> dict[str, Any]:
        """Return the decision in plain numbers (JSON-ready)."""
        row = self.table().iloc[self.chosen]
        sq = self.status_quo
        return {
            "objective": self.objective,
            "maximize": self.maximize,
            "criterion": self.criterion,
            "chosen": int(self.chosen),
            "chosen_theta": [float(t) for t in self.chosen_theta],
            "chosen_mean": float(row["mean"]),
            "chosen_mcse": float(row["mcse"]),
            "chosen_prob_improvement": float(row["prob_improvement"]),
            "status_quo_mean": float(sq.mean()),
            "evpi": float(self.evpi),
            "evpi_mcse": float(self.evpi_mcse),
            "n_draws": int(self.draws.shape[0]),
            "prob": float(self.prob),
        }

    def plot(self, ax: Any = None) -> Any:
        """Plot each candidate's posterior mean and interval; return the axes.

        Against theta (the candidate index for several dimensions), with the status quo as a
        band and the chosen candidate marked.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        t = self.table()
        x = self.thetas[:, 0] if self.thetas.shape[1] == 1 else np.arange(len(self.thetas))
        ax.fill_between(x, t["lower"], t["upper"], alpha=0.25, label=f"{self.prob:.0%} interval")
        ax.plot(x, t["mean"], marker="o", ms=3, label="posterior mean")
        lo, hi = (1 - self.prob) / 2, 1 - (1 - self.prob) / 2
        ax.axhspan(*np.quantile(self.status_quo, [lo, hi]), color="0.5", alpha=0.15, label="status quo")
        ax.axhline(self.status_quo.mean(), color="0.4", lw=1)
        ax.axvline(x[self.chosen], color="C3", ls="--", lw=1, label=f"chosen ({self.criterion})")
        ax.set_xlabel("theta" if self.thetas.shape[1] == 1 else "candidate")
        ax.set_ylabel(self.objective)
        ax.legend(fontsize="small")
        return ax


def _mcse(values: np.ndarray) -> np.ndarray:
    """float[C] from float[D, C, E]: the standard error of the mean over draws and episodes.

    With several draws, the spread of the draws' means (it holds the posterior spread and the
    simulation noise, the draws taken as independent); with one draw (a point-mass posterior),
    the spread of its episodes.
    """
    D, _, E = values.shape
    if D > 1:
        return values.mean(-1).std(0, ddof=1) / np.sqrt(D)
    return values[0].std(-1, ddof=1) / np.sqrt(E) if E > 1 else np.full(values.shape[1], np.nan)


def decide(
    draws: np.ndarray, status_quo: np.ndarray, criterion: str, maximize: bool, quantile: float
) -> tuple[int, float, float]:
    """Return ``(chosen, evpi, evpi_mcse)`` from ``draws`` float[D, C] and ``status_quo`` float[D]."""
    s = 1.0 if maximize else -1.0
    signed = s * np.asarray(draws, dtype=np.float64)
    # column means computed as 1-D means, like the per-draw maxima below: equal columns give an
    # EVPI of exactly 0
    means = np.array([np.mean(np.ascontiguousarray(signed[:, c])) for c in range(signed.shape[1])])
    if criterion == "mean":
        chosen = int(np.argmax(means))
    elif criterion == "quantile":
        chosen = int(np.argmax(np.quantile(signed, quantile, axis=0)))
    else:
        p = (signed - s * np.asarray(status_quo)[:, None] > 0).mean(0)
        best = np.flatnonzero(p == p.max())
        chosen = int(best[np.argmax(means[best])])
    best_c = int(np.argmax(means))
    per_draw_best = signed.max(1)
    evpi = max(float(np.mean(per_draw_best) - means[best_c]), 0.0)
    gap = per_draw_best - signed[:, best_c]
    evpi_mcse = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else float("nan")
    return chosen, evpi, evpi_mcse


def design(
    post: Any,
    edit: Edit,
    space: Any,
    objective: str | Objective = "welfare",
    n_episodes: int = 100,
    T: int | None = None,
    *,
    criterion: str = "mean",
    maximize: bool = True,
    prob: float = 0.9,
    quantile: float = 0.1,
    learner: LogitQ | Callable[[LogitQ], LogitQ] | None = None,
    n_draws: int | None = 200,
    seed: int = 0,
    independent_keys: bool = False,
) -> Design:
    """Return a :class:`Design`; see ``Posterior.design`` for the arguments."""
    if not callable(edit):
        raise TypeError(f"edit must be a function edit(u, joint, theta); got {type(edit).__name__}.")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}.")
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1); got {prob}.")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1); got {quantile}.")
    if int(n_episodes) < 1:
        raise ValueError(f"n_episodes must be >= 1; got {n_episodes}.")
    thetas = _candidates(space)
    name, f = objective_function(objective)
    T = int(T or post.data.n_steps)
    if T < 1:
        raise ValueError(f"T must be >= 1; got {T}.")
    if post.confounded:
        warnings.warn(
            "payoff levels are confounded with beta in this fit (no observed payoffs, beta inferred): "
            "payoff-unit edits (tolls, subsidies) and payoff objectives are in the prior's units, not "
            "identified. Fix beta or observe payoffs to design in real units.",
            ConfoundingWarning,
            stacklevel=3,
        )
    if _depends_on_levels(name, edit) and not post.data.has_payoffs:
        warnings.warn(
            f"objective {name!r} depends on payoff levels, and actions identify payoffs only up to adding "
            "to each agent's payoff a function of the other agents' actions (the gauge): without observed "
            "payoffs its values, and its differences between candidates, follow the fit's convention "
            "(centred payoffs for a table, the prior for a family's constant terms). Objectives of play "
            "(share:K) and a toll's or subsidy's revenue are identified.",
            ConfoundingWarning,
            stacklevel=3,
        )
    k = tuple(int(x) for x in post.data.n_actions)
    n = len(k)
    if name.startswith("share:") and int(name.split(":")[1]) >= max(k):
        raise ValueError(f"objective {name!r}: the game's actions are 0..{max(k) - 1}.")
    _check_objective(f, T, n)
    base = post.mechanism
    _check_edit(edit, base, k, thetas[0])
    if learner is not None and not callable(learner) and callable(getattr(learner, "check", None)):
        learner.check(n)

    sites, fields, lds, keys = draw_arrays(post, n_draws, seed)
    dtype = jnp.result_type(float)
    # the status quo is one more lane of the same vectorised program, flagged: theta is unused there
    theta_lanes = jnp.asarray(np.concatenate([thetas, thetas[:1]]), dtype=dtype)
    is_status_quo = jnp.arange(len(thetas) + 1) == len(thetas)

    def one(args):
        s, l_fields, key = args
        l_draw = post.learner._replace(**dict(zip(fields, l_fields, strict=True)))
        params = params_from_sites(base, s)
        lq = l_draw if learner is None else (learner(l_draw) if callable(learner) else learner)

        def lane(theta, keep, lane_key):
            edited = EditedMechanism(base, lambda u, joint: jnp.where(keep, u, edit(u, joint, theta)))
            actions, payoffs = simulate_arrays(edited, params, lq, int(n_episodes), T, lane_key, k)
            return jax.vmap(f)(actions, payoffs, base.payoffs(params, actions))  # [E]

        lane_keys = (
            jax.random.split(key, len(thetas) + 1)
            if independent_keys
            else jnp.broadcast_to(key, (len(thetas) + 1,))
        )
        return jax.vmap(lane)(theta_lanes, is_status_quo, lane_keys)

    out = np.asarray(jax.lax.map(one, (sites, lds, keys)), dtype=np.float64)  # [D, C + 1, E]
    if not np.all(np.isfinite(out)):
        raise ValueError(
            "the objective is not finite for some draws and candidates; check the edit and theta."
        )
    chosen, evpi, evpi_mcse = decide(out[:, :-1].mean(-1), out[:, -1].mean(-1), criterion, maximize, quantile)
    return Design(
        thetas=thetas,
        episodes=out[:, :-1],
        status_quo_episodes=out[:, -1],
        objective=name,
        criterion=criterion,
        maximize=bool(maximize),
        prob=float(prob),
        quantile=float(quantile),
        chosen=chosen,
        evpi=evpi,
        evpi_mcse=evpi_mcse,
    )


def _check_edit(edit: Edit, mechanism: Any, n_actions: tuple[int, ...], theta: np.ndarray) -> None:
    """Evaluate the edit once on one joint action; name the problem if it fails or changes the shape."""
    need = getattr(edit, "theta_size", None)
    if need is not None and theta.shape[0] not in (1, need):
        raise ValueError(
            f"the edit {getattr(edit, '__name__', 'edit')} takes {need} parameter(s) (or 1 shared); "
            f"the space has {theta.shape[0]} dimension(s)."
        )
    joint = jnp.zeros((len(n_actions),), jnp.int32)
    params = mechanism.init(jax.random.key(0))
    u = mechanism.payoffs(params, joint)
    try:
        v = jax.eval_shape(lambda: edit(u, joint, jnp.asarray(theta)))
    except Exception as exc:  # the user's function: report it in our words
        raise ValueError(f"the edit failed on payoffs float[n], joint int[n], theta float[d]: {exc}") from exc
    if tuple(v.shape) != tuple(u.shape):
        raise ValueError(
            f"the edit must return payoffs of the same shape {tuple(u.shape)}; got {tuple(v.shape)}."
        )


def _depends_on_levels(objective: str, edit: Edit) -> bool:
    """Tell whether a built-in objective's value depends on payoff levels (not only on play)."""
    if objective in ("welfare", "agent_welfare"):
        return True
    additive = getattr(edit, "__name__", "").startswith(("toll", "subsidy"))
    return objective == "revenue" and not additive


def _check_objective(f: Objective, T: int, n: int) -> None:
    """Evaluate the objective's shape on one episode; it must be a scalar."""
    a, u = jnp.zeros((T, n), jnp.int32), jnp.zeros((T, n), jnp.result_type(float))
    try:
        out = jax.eval_shape(f, a, u, u)
    except Exception as exc:  # the user's function: report it in our words
        raise ValueError(
            f"the objective failed on one episode (actions int[T, n], payoffs float[T, n], base_payoffs "
            f"float[T, n]): {exc}"
        ) from exc
    if tuple(getattr(out, "shape", ())) != ():
        raise ValueError(f"the objective must return a scalar per episode; got shape {tuple(out.shape)}.")
