"""Simulation-based calibration (SBC) of the Bayesian fits, and misspecification studies.

:func:`sbc` draws ``n_datasets`` parameter sets from the prior of the NumPyro model
(:func:`bayes_diml.models.logit_q_model`'s prior predictive), simulates one data set per
draw (:func:`bayes_diml.simulation.simulate_arrays`), fits each with ``method`` and records,
for every scalar quantity, the rank of the true value among ``n_ranks`` thinned posterior
draws and whether the central 50/80/90/95% intervals (equal-tailed quantiles of all draws,
as :meth:`Posterior.credible_interval` reports them) contain it. If the posterior
approximation is exact, ranks are uniform on ``0..n_ranks`` and coverages are nominal.

Quantities (all gauge-free):

- ``alpha``, ``eps`` and ``beta`` when inferred; ``beta`` is flagged *not identified* when it
  is confounded with the payoff scale (inferred, no observed payoffs): its calibration then
  only reflects the prior and it is left out of the headline checks;
- ``payoff_noise`` when payoffs are observed;
- payoff differences: the centred payoffs ``u_i(a) - mean_k u_i(k, a_-i)``, one per agent,
  opponent profile and own action ``k < K_i - 1`` (the last is minus the sum of the others),
  named ``centred_payoffs[a_1,...,a_n,i]``; when beta is confounded the identified product
  ``scaled_payoffs = beta x centred payoffs`` instead.

``learner_priors`` says which learner parameters are inferred: a :class:`LogitQ` (or dict)
whose fields are ``"infer"`` (drawn from ``priors`` and inferred) or a number (held fixed at
that value in simulation and fit); ``None`` infers alpha, beta and eps. The prior
hyper-parameters of inferred fields are those of ``priors`` (:class:`Priors`).

Sweeps run in chunks of data sets. Each chunk is one task: with the ``vmap`` engine (tabular
games, NUTS / SVI) a chunk is a single compiled, vectorised fit; with the ``fit`` engine
(any mechanism, any method) it loops over :func:`bayes_diml.fit`. Chunks are distributed
with Dask when it is installed (``pip install bayes-diml[sweep]``; pass ``client=`` a
``dask.distributed.Client`` or ``workers=`` > 1), else run serially in this process. Every
finished chunk is appended to ``<out>.partial.jsonl``; a rerun with the same settings skips
the chunks already there, so an interrupted study loses at most the running chunks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from bayes_diml import learners as _learners
from bayes_diml.data import Trajectories
from bayes_diml.learners import LogitQ
from bayes_diml.mechanisms import Tabular
from bayes_diml.simulation import simulate_arrays

__all__ = [
    "LEVELS",
    "METHODS",
    "SIMULATORS",
    "SBCResult",
    "sbc",
    "prior_datasets",
    "ranks_from_draws",
    "coverage_from_draws",
    "coverage_band",
    "rank_uniformity",
    "load_sbc",
    "plot_sbc",
    "make_learner",
]

#: Central interval probabilities whose coverage is recorded.
LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Fitting methods: NUTS, SVI with a mean-field (AutoNormal) or low-rank guide, Laplace.
METHODS = ("nuts", "svi", "svi_lowrank", "laplace")
#: Data-generating learners: the fitted model itself, or a misspecified one.
SIMULATORS = ("logit_q", "bandit_q", "hedge")
_INFER = "infer"


# --------------------------------------------------------------------------- settings
def make_learner(simulator: str, alpha: Any, beta: Any, eps: Any) -> Any:
    """The data-generating learner for a prior draw ``(alpha, beta, eps)``.

    ``logit_q``: the fitted model; ``bandit_q``: :class:`bayes_diml.learners.BanditQ` (only
    the played action's score learns) with the same numbers; ``hedge``:
    :class:`bayes_diml.learners.Hedge` with ``eta = alpha * beta`` (its first steps then match
    logit-Q's, whose scores are ``~ alpha * sum u``) and the same ``eps``.
    """
    if simulator == "logit_q":
        return LogitQ(alpha, beta, eps)
    if simulator == "bandit_q":
        return _learners.BanditQ(alpha, beta, eps)
    if simulator == "hedge":
        return _learners.Hedge(eta=alpha * beta, eps=eps)
    raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}; got {simulator!r}.")


def _learner_spec(learner_priors: Any) -> dict[str, Any]:
    """``{"alpha": "infer" | float, "beta": ..., "eps": ...}`` from None, a LogitQ or a dict."""
    if learner_priors is None:
        return {n: _INFER for n in ("alpha", "beta", "eps")}
    if isinstance(learner_priors, LogitQ):
        learner_priors = {n: getattr(learner_priors, n) for n in ("alpha", "beta", "eps")}
    if not isinstance(learner_priors, dict):
        raise TypeError(
            f"learner_priors must be None, a LogitQ or a dict; got {type(learner_priors).__name__}."
        )
    unknown = set(learner_priors) - {"alpha", "beta", "eps"}
    if unknown:
        raise ValueError(f"learner_priors: unknown field(s) {sorted(unknown)}; use alpha, beta, eps.")
    out = {}
    for n in ("alpha", "beta", "eps"):
        v = learner_priors.get(n, _INFER)
        if isinstance(v, str):
            if v != _INFER:
                raise ValueError(f"learner_priors[{n!r}] = {v!r}: use 'infer' or a number.")
            out[n] = v
        else:
            out[n] = float(v)
    LogitQ(*(0.5 if isinstance(out[n], str) else out[n] for n in ("alpha", "beta", "eps"))).check(1)
    return out


@dataclass(frozen=True)
class _Setup:
    """Everything that defines one SBC study (JSON-able; equal setups share partial results)."""

    n_actions: tuple[int, ...]
    M: int
    T: int
    method: str
    learner: dict
    priors: dict
    observe_payoffs: bool
    simulator: str
    options: dict
    n_ranks: int
    seed: int
    n_datasets: int
    mechanism: str = "tabular"

    def key(self) -> str:
        """Identity of the study for resuming: everything but the number of data sets."""
        d = dataclasses.asdict(self)
        d.pop("n_datasets")
        return json.dumps(d, sort_keys=True)


# --------------------------------------------------------------------------- simulation
def prior_datasets(
    mechanism: Any,
    priors: Any,
    learner_priors: Any,
    n_datasets: int,
    M: int,
    T: int,
    seed: int,
    *,
    observe_payoffs: bool = False,
    simulator: str = "logit_q",
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """Prior draws and data sets simulated from them.

    The parameters are drawn by running the model's prior (``logit_q_model`` with
    ``observe=False``, seeded per data set), so they follow exactly the prior the fit uses;
    data set ``i`` depends only on ``(seed, i)``. Returns ``(truth, actions, payoffs)``:
    truth site -> float[N, ...] (latent sites, ``centred_payoffs`` float[N, K_1..K_n, n]);
    ``actions: int[N, M, T, n]``; ``payoffs: float[N, M, T, n]`` (realised plus
    Normal(0, payoff_noise) noise) or None.
    """
    from bayes_diml.models import logit_q_model, mechanism_sites, params_from_sites

    spec = _learner_spec(learner_priors)
    n_actions = tuple(mechanism.n_actions)
    n = len(n_actions)
    dummy = Trajectories(
        np.zeros((1, 2, n), int), n_actions, payoffs=np.zeros((1, 2, n)) if observe_payoffs else None
    )
    import numpyro

    key = jax.random.key(int(seed))
    k_prior, k_sim, k_noise = jax.random.split(key, 3)
    N = int(n_datasets)
    # data set i depends on (seed, i) only, not on N: a larger study extends a smaller one
    per = jax.vmap(jax.random.fold_in, in_axes=(None, 0))
    ids = jnp.arange(N)
    model = functools.partial(logit_q_model, dummy, mechanism, LogitQ(**spec), priors, observe=False)

    def draw(k):
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, k)).get_trace()
        return {
            name: site["value"]
            for name, site in tr.items()
            if site["type"] in ("sample", "deterministic")
            and name not in ("actions", "payoffs", "scaled_payoffs")
        }

    truth = {k: np.asarray(v) for k, v in jax.vmap(draw)(per(k_prior, ids)).items()}
    lq = {
        n_: truth[n_] if isinstance(spec[n_], str) else np.full(N, spec[n_])
        for n_ in ("alpha", "beta", "eps")
    }
    sites = {k: jnp.asarray(truth[k]) for k in mechanism_sites(mechanism)}

    def one(site, a, b, e, k):
        learner = make_learner(simulator, a, b, e)
        return simulate_arrays(mechanism, params_from_sites(mechanism, site), learner, int(M), int(T), k)

    actions, realised = jax.jit(jax.vmap(one))(
        sites, jnp.asarray(lq["alpha"]), jnp.asarray(lq["beta"]), jnp.asarray(lq["eps"]), per(k_sim, ids)
    )
    actions = np.asarray(actions)  # [N, M, T, n]
    payoffs = None
    if observe_payoffs:
        sigma = truth["payoff_noise"].reshape(N, 1, 1, 1)
        noise = np.asarray(jax.vmap(lambda k: jax.random.normal(k, actions.shape[1:]))(per(k_noise, ids)))
        payoffs = np.asarray(realised, dtype=float) + sigma * noise
    for n_ in ("alpha", "beta", "eps"):
        truth[n_] = np.asarray(lq[n_], dtype=float)
    return truth, actions, payoffs


def _cells(n_actions: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Non-redundant centred-payoff cells ``(a_1, ..., a_n, i)`` with ``a_i < K_i - 1``."""
    out = []
    for idx in np.ndindex(*n_actions, len(n_actions)):
        i = idx[-1]
        if idx[i] < n_actions[i] - 1:
            out.append(tuple(int(v) for v in idx))
    return out


def _quantities(
    values: dict[str, np.ndarray], spec: dict, n_actions: tuple[int, ...], payoffs: bool, lead: int
) -> dict[str, np.ndarray]:
    """Scalar quantities from site values with ``lead`` leading batch dims: name -> float[*lead]."""
    confounded = isinstance(spec["beta"], str) and not payoffs
    out = {}
    for n_ in ("alpha", "beta", "eps"):
        if isinstance(spec[n_], str):
            out[n_] = np.asarray(values[n_], dtype=float)
    if payoffs:
        out["payoff_noise"] = np.asarray(values["payoff_noise"], dtype=float)
    table = np.asarray(values["centred_payoffs"], dtype=float)
    if confounded:
        beta = np.asarray(values["beta"], dtype=float).reshape(
            table.shape[:lead] + (1,) * (table.ndim - lead)
        )
        table, name = table * beta, "scaled_payoffs"
    else:
        name = "centred_payoffs"
    for c in _cells(n_actions):
        out[f"{name}[{','.join(map(str, c))}]"] = table[(Ellipsis, *c)] if lead else table[c]
    return out


def _identified(name: str, spec: dict, payoffs: bool) -> bool:
    return not (name == "beta" and not payoffs)


# --------------------------------------------------------------------------- statistics
def ranks_from_draws(truth: np.ndarray, draws: np.ndarray, n_ranks: int | None = None) -> np.ndarray:
    """Rank of each truth among (thinned) draws: int[N] in ``0..L``.

    truth: float[N]; draws: float[N, D] (one row per data set, chains stacked). Draws are
    thinned to ``n_ranks`` evenly spaced ones (all if None) so that they are close to
    independent; the rank is the number of thinned draws below the truth.
    """
    truth = np.asarray(truth, dtype=float)
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or truth.shape != draws.shape[:1]:
        raise ValueError(f"need truth float[N] and draws float[N, D]; got {truth.shape} and {draws.shape}.")
    D = draws.shape[1]
    L = D if n_ranks is None else int(n_ranks)
    if not 1 <= L <= D:
        raise ValueError(f"n_ranks must lie in 1..{D} (number of draws); got {n_ranks}.")
    keep = np.linspace(0, D - 1, L).round().astype(int)
    return (draws[:, keep] < truth[:, None]).sum(axis=1).astype(int)


def coverage_from_draws(truth: np.ndarray, draws: np.ndarray, levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Whether each central (equal-tailed) interval contains the truth: bool[N, len(levels)]."""
    truth = np.asarray(truth, dtype=float)[:, None]
    draws = np.asarray(draws, dtype=float)
    out = []
    for p in levels:
        lo, hi = np.quantile(draws, [(1 - p) / 2, (1 + p) / 2], axis=1)
        out.append((lo[:, None] <= truth) & (truth <= hi[:, None]))
    return np.concatenate(out, axis=1)


def coverage_band(level: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Central ``1 - alpha`` binomial acceptance band of the empirical coverage at nominal ``level``.

    If intervals are calibrated, the number of the ``n`` data sets whose interval contains
    the truth is Binomial(n, level); this returns the band ``[lo, hi] / n`` that holds it
    with probability at least ``1 - alpha``.
    """
    lo = stats.binom.ppf(alpha / 2, n, level)
    hi = stats.binom.isf(alpha / 2, n, level)
    return float(lo / n), float(hi / n)


def _clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=1 - alpha, method="exact")
    return float(ci.low), float(ci.high)


def rank_uniformity(ranks: np.ndarray, n_ranks: int, bins: int | None = None) -> dict[str, float]:
    """Uniformity tests of SBC ranks in ``0..n_ranks``.

    ``chi2``: Pearson chi-square on ``bins`` equal groups of ranks (default: about N / 5
    groups, at most 20, that divide ``n_ranks + 1`` evenly or nearly so); ``pot_c``: the
    ArviZ PIT-ECDF test (``uniformity_test(method="pot_c")``) of the randomised PIT
    ``(rank + U) / (n_ranks + 1)`` with a fixed seed. Small p-values flag miscalibration.
    """
    ranks = np.asarray(ranks, dtype=int)
    N = ranks.size
    B = bins or int(max(2, min(20, N // 5, n_ranks + 1)))
    groups = np.minimum((ranks * B) // (n_ranks + 1), B - 1)
    counts = np.bincount(groups, minlength=B)
    edges = np.arange(B + 1) * (n_ranks + 1) / B
    expected = N * np.diff(np.ceil(edges)) / (n_ranks + 1)
    chi2 = float(stats.chisquare(counts, expected * N / expected.sum()).pvalue)
    out = {"chi2": chi2, "pot_c": _pot_c(pit_from_ranks(ranks, n_ranks))}
    return out


def pit_from_ranks(ranks: np.ndarray, n_ranks: int, seed: int = 0) -> np.ndarray:
    """Randomised PIT ``(rank + U) / (n_ranks + 1)``: exactly Uniform(0, 1) under calibration."""
    u = np.random.default_rng(seed).uniform(size=np.shape(ranks))
    return (np.asarray(ranks, dtype=float) + u) / (n_ranks + 1)


def _pot_c(pit: np.ndarray) -> float:
    """ArviZ's pointwise-order-test (``pot_c``) p-value of uniformity for PIT values float[N]."""
    from arviz_stats.base import array_stats

    return float(np.asarray(array_stats.uniformity_test(np.asarray(pit, float), axis=-1, method="pot_c")[0]))


# --------------------------------------------------------------------------- result
@dataclass
class SBCResult:
    """Ranks and interval coverage of an SBC study.

    Attributes
    ----------
    setup : dict
        Game, sizes, method, learner spec, priors, simulator and method options.
    ranks : dict name -> int[N]
        Rank of the truth among ``n_ranks`` thinned posterior draws, per quantity.
    inside : dict name -> bool[N, len(levels)]
        Whether the central interval of each level contained the truth.
    truth : dict name -> float[N]
    identified : dict name -> bool
        False for beta when it is confounded with the payoff scale.
    n_ranks : int
    levels : tuple of float
    diagnostics : dict name -> float[N]
        Per data set: NUTS ``diverging`` / ``mean_steps``, SVI ``final_loss``; ``seconds`` per chunk.
    """

    setup: dict
    ranks: dict[str, np.ndarray]
    inside: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    identified: dict[str, bool]
    n_ranks: int
    levels: tuple[float, ...] = LEVELS
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_datasets(self) -> int:
        """Number of data sets with results."""
        return int(len(next(iter(self.ranks.values())))) if self.ranks else 0

    @property
    def quantities(self) -> list[str]:
        """Names of the recorded quantities."""
        return list(self.ranks)

    def coverage(self, alpha: float = 0.05) -> dict[str, dict[str, dict[str, float]]]:
        """Per quantity and level: ``rate``, Clopper-Pearson ``ci_low/ci_high`` (1 - alpha) and
        the binomial acceptance ``band_low/band_high`` around the nominal level.
        """
        out = {}
        N = self.n_datasets
        for q, ins in self.inside.items():
            row = {}
            for j, p in enumerate(self.levels):
                k = int(ins[:, j].sum())
                lo, hi = _clopper_pearson(k, N, alpha)
                blo, bhi = coverage_band(p, N, alpha)
                row[f"{p:g}"] = {
                    "rate": k / N,
                    "ci_low": lo,
                    "ci_high": hi,
                    "band_low": blo,
                    "band_high": bhi,
                    "ok": bool(blo <= k / N <= bhi),
                }
            out[q] = row
        return out

    def pooled_coverage(self, prefix: str) -> dict[str, float]:
        """Mean coverage over every quantity whose name starts with ``prefix`` (e.g. payoff cells)."""
        rows = [v for k, v in self.inside.items() if k.startswith(prefix)]
        if not rows:
            return {}
        stacked = np.stack(rows)  # [Q, N, L]
        return {f"{p:g}": float(stacked[:, :, j].mean()) for j, p in enumerate(self.levels)}

    def uniformity(self) -> dict[str, dict[str, float]]:
        """Rank-uniformity p-values per quantity (:func:`rank_uniformity`)."""
        return {q: rank_uniformity(r, self.n_ranks) for q, r in self.ranks.items()}

    def flagged(self, alpha: float = 0.05) -> list[str]:
        """Identified quantities whose coverage leaves its band at some level or whose ranks fail
        a uniformity test, both at level ``alpha`` split (Bonferroni) over the quantities, levels
        and tests checked.
        """
        names = [q for q in self.quantities if self.identified.get(q, True)]
        m = max(1, len(names) * (len(self.levels) + 2))
        cov = self.coverage(alpha=alpha / m)
        uni = self.uniformity()
        return [
            q for q in names if not all(c["ok"] for c in cov[q].values()) or min(uni[q].values()) < alpha / m
        ]

    def to_json(self) -> dict:
        """JSON-able dict (ranks, coverage flags, truths, summaries)."""
        return {
            "setup": self.setup,
            "n_ranks": self.n_ranks,
            "levels": list(self.levels),
            "n_datasets": self.n_datasets,
            "identified": self.identified,
            "ranks": {k: np.asarray(v).tolist() for k, v in self.ranks.items()},
            "inside": {k: np.asarray(v).astype(int).tolist() for k, v in self.inside.items()},
            "truth": {k: np.asarray(v, float).tolist() for k, v in self.truth.items()},
            "diagnostics": {k: np.asarray(v, float).tolist() for k, v in self.diagnostics.items()},
            "coverage": self.coverage() if self.n_datasets else {},
            "uniformity": self.uniformity() if self.n_datasets >= 2 else {},
        }

    @classmethod
    def from_json(cls, d: dict) -> SBCResult:
        """Inverse of :meth:`to_json`."""
        return cls(
            setup=d["setup"],
            ranks={k: np.asarray(v, dtype=int) for k, v in d["ranks"].items()},
            inside={
                k: np.asarray(v, dtype=bool).reshape(-1, len(d["levels"])) for k, v in d["inside"].items()
            },
            truth={k: np.asarray(v, dtype=float) for k, v in d["truth"].items()},
            identified={k: bool(v) for k, v in d["identified"].items()},
            n_ranks=int(d["n_ranks"]),
            levels=tuple(float(p) for p in d["levels"]),
            diagnostics={k: np.asarray(v, dtype=float) for k, v in d.get("diagnostics", {}).items()},
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    def plot(self, path: str | Path | None = None, quantities: Sequence[str] | None = None):
        """ECDF-difference panels with simultaneous bands and a coverage panel; see :func:`plot_sbc`."""
        return plot_sbc(self, path, quantities=quantities)


def load_sbc(path: str | Path) -> SBCResult:
    """Read an SBC result written by :meth:`SBCResult.save` (or ``bayes-diml sbc --out``).

    A ``<out>.partial.jsonl`` file (the chunks finished so far) is read too.
    """
    path = Path(path)
    if path.name.endswith(".partial.jsonl"):
        return _load_partial(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read SBC result {path}: {exc}") from None
    for key in ("setup", "ranks", "inside", "truth", "identified", "n_ranks", "levels"):
        if key not in d:
            raise ValueError(f"{path} is not an SBC result: missing {key!r}.")
    return SBCResult.from_json(d)


def _load_partial(path: Path) -> SBCResult:
    try:
        lines = path.read_text().splitlines()
        setup = json.loads(json.loads(lines[0])["setup"])
    except (OSError, IndexError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read partial SBC results {path}: {exc}") from None
    records = []
    for line in lines[1:]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
    if not records:
        raise ValueError(f"{path} holds no finished chunk yet.")
    n = sum(len(r["idx"]) for r in records)
    setup = _Setup(**{**setup, "n_actions": tuple(setup["n_actions"]), "n_datasets": n})
    return _assemble(setup, records, setup.observe_payoffs)


# --------------------------------------------------------------------------- fitting
def _chunk_records(
    setup: _Setup, mechanism: Any, priors: Any, truth: dict, actions: np.ndarray, payoffs, idx: np.ndarray
) -> dict:
    """Fit data sets ``idx`` and return ranks / inside flags / diagnostics for them (JSON-able)."""
    t0 = time.perf_counter()
    spec = setup.learner
    learner = LogitQ(**spec)
    n_actions = setup.n_actions
    opts = dict(setup.options)
    seeds = np.asarray([setup.seed * 1_000_003 + 7919 * (int(i) + 1) for i in idx])
    pay = None if payoffs is None else payoffs[idx]
    engine = opts.pop("engine", "vmap")
    if engine == "vmap":
        from bayes_diml.models import params_from_sites
        from bayes_diml.studies.sbc_batched import nuts_batch, svi_batch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if setup.method == "nuts":
                draws, diag = nuts_batch(
                    mechanism, learner, priors, n_actions, actions[idx], pay, seeds, **opts
                )
            else:
                guide = "lowrank" if setup.method == "svi_lowrank" else "normal"
                draws, diag = svi_batch(
                    mechanism, learner, priors, n_actions, actions[idx], pay, seeds, guide=guide, **opts
                )
        flat = {k: v.reshape(v.shape[0], v.shape[1] * v.shape[2], *v.shape[3:]) for k, v in draws.items()}
        table = params_from_sites(mechanism, {k: v for k, v in flat.items() if k.startswith("u")})["table"]
        flat["centred_payoffs"] = np.asarray(table)
    else:
        flat, diag = _fit_loop(setup, mechanism, priors, actions[idx], pay, seeds, opts)
    q_draws = _quantities(flat, spec, n_actions, payoffs is not None, lead=2)
    q_truth = _quantities({k: v[idx] for k, v in truth.items()}, spec, n_actions, payoffs is not None, lead=1)
    rec = {"idx": [int(i) for i in idx], "ranks": {}, "inside": {}, "truth": {}}
    for q, d in q_draws.items():
        rec["ranks"][q] = ranks_from_draws(q_truth[q], d, setup.n_ranks).tolist()
        rec["inside"][q] = coverage_from_draws(q_truth[q], d).astype(int).tolist()
        rec["truth"][q] = np.asarray(q_truth[q], float).tolist()
    rec["diagnostics"] = {k: np.asarray(v, float).tolist() for k, v in diag.items()}
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _fit_loop(setup, mechanism, priors, actions, payoffs, seeds, opts) -> tuple[dict, dict]:
    """The ``fit`` engine: one :func:`bayes_diml.fit` per data set."""
    from bayes_diml.inference import fit

    method = {"svi_lowrank": "svi"}.get(setup.method, setup.method)
    if setup.method == "svi_lowrank":
        opts = {**opts, "guide": "lowrank"}
    learner = LogitQ(**setup.learner)
    out: dict[str, list] = {}
    diag: dict[str, list] = {"seconds_fit": []}
    for b in range(actions.shape[0]):
        data = Trajectories(actions[b], setup.n_actions, payoffs=None if payoffs is None else payoffs[b])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = fit(
                data,
                mechanism,
                learner,
                method,
                int(seeds[b]),
                priors=priors,
                progress=False,
                log_likelihood=False,
                **opts,
            )
        names = [
            n for n in ("alpha", "beta", "eps", "payoff_noise") if n in post.idata["posterior"].data_vars
        ]
        for n_ in names + ["centred_payoffs"]:
            out.setdefault(n_, []).append(post.draws(n_))
        diag["seconds_fit"].append(post.info.get("seconds", float("nan")))
        if "divergences" in post.info:
            diag.setdefault("diverging", []).append(post.info["divergences"])
    return {k: np.stack(v) for k, v in out.items()}, {k: np.asarray(v) for k, v in diag.items()}


_DEFAULT_OPTIONS = {
    "nuts": {"num_warmup": 300, "num_samples": 300, "num_chains": 2},
    "svi": {"num_steps": 2000, "num_draws": 1000},
    "svi_lowrank": {"num_steps": 2000, "num_draws": 1000},
    "laplace": {"num_draws": 1000},
}


def _run_chunks(task: Callable, chunks: list, client: Any, workers: int, progress: bool, on_done: Callable):
    """Run ``task(chunk)`` for every chunk: on a Dask client / local cluster, else serially."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(c) for c in chunks), desc="SBC data sets", unit="fit")
    try:
        own = None
        if client is None and workers > 1:
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                warnings.warn(
                    "Dask is not installed (pip install bayes-diml[sweep]); running serially.", stacklevel=3
                )
            else:
                own = Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True))
                client = own
        if client is not None:
            from dask.distributed import as_completed

            futures = [client.submit(task, c, pure=False) for c in chunks]
            for fut in as_completed(futures):
                rec = fut.result()
                on_done(rec)
                if bar:
                    bar.update(len(rec["idx"]))
            if own is not None:
                own.close()
        else:
            for c in chunks:
                rec = task(c)
                on_done(rec)
                if bar:
                    bar.update(len(rec["idx"]))
    finally:
        if bar:
            bar.close()


def sbc(
    mechanism: Any,
    priors: Any = None,
    learner_priors: Any = None,
    n_datasets: int = 100,
    M: int = 10,
    T: int = 20,
    method: str = "nuts",
    seed: int = 0,
    *,
    observe_payoffs: bool = False,
    simulator: str = "logit_q",
    n_ranks: int = 99,
    chunk_size: int = 25,
    engine: str = "auto",
    progress: bool = True,
    out: str | Path | None = None,
    client: Any = None,
    workers: int = 1,
    **options: Any,
) -> SBCResult:
    """Simulation-based calibration of ``method`` on ``mechanism`` under ``priors``.

    Parameters
    ----------
    mechanism : Mechanism
        e.g. ``mechanisms.Tabular((2, 2))``; the ``vmap`` engine needs a ``Tabular`` one.
    priors : Priors, optional
        Prior of mechanism and learner (default ``Priors()``); must be proper.
    learner_priors : LogitQ, dict or None
        Which learner fields are inferred (``"infer"``, drawn from ``priors``) and which are
        fixed (a number, used in simulation and fit). None: alpha, beta, eps inferred.
    n_datasets, M, T : int
        Number of prior draws / data sets, and each data set's episodes x steps.
    method : str
        ``"nuts"``, ``"svi"`` (AutoNormal), ``"svi_lowrank"`` (AutoLowRankMultivariateNormal)
        or ``"laplace"`` (``fit`` engine only).
    seed : int
        Seed of the prior draws, simulations and fits (results do not depend on chunking).
    observe_payoffs : bool
        Give the fit the realised payoffs plus Normal(0, payoff_noise) noise (identifies beta).
    simulator : str
        Data-generating learner: ``"logit_q"`` (calibration) or a misspecified ``"bandit_q"`` /
        ``"hedge"`` (:func:`make_learner`); the fit is always logit-Q.
    n_ranks : int
        Number of thinned draws the rank is taken among (ranks in ``0..n_ranks``).
    chunk_size : int
        Data sets per task (one compiled vectorised fit for the ``vmap`` engine).
    engine : str
        ``"vmap"`` (vectorised NumPyro NUTS / SVI, tabular only), ``"fit"`` (one
        :func:`bayes_diml.fit` per data set) or ``"auto"``.
    progress : bool
        tqdm progress bar over data sets.
    out : path, optional
        Write the result as JSON here, and partial results to ``<out>.partial.jsonl`` as
        chunks finish (a rerun with equal settings resumes from them).
    client : dask.distributed.Client, optional
        Run chunks on this Dask client; else ``workers`` > 1 starts a local cluster
        (needs ``bayes-diml[sweep]``); else serial.
    **options
        Method settings: NUTS ``num_warmup, num_samples, num_chains, target_accept,
        max_tree_depth``; SVI ``num_steps, learning_rate, num_draws`` (+ ``rank``).

    Returns
    -------
    SBCResult
    """
    from bayes_diml.models import Priors

    priors = Priors() if priors is None else priors
    if priors.mechanism_scale is None:
        raise ValueError("SBC needs a proper prior: Priors(mechanism_scale=...) must be a number.")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}; got {simulator!r}.")
    for name, v, lo in (
        ("n_datasets", n_datasets, 1),
        ("M", M, 1),
        ("T", T, 2),
        ("chunk_size", chunk_size, 1),
    ):
        if not isinstance(v, int | np.integer) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}.")
    if engine == "auto":
        engine = "vmap" if isinstance(mechanism, Tabular) and method != "laplace" else "fit"
    if engine == "vmap" and (not isinstance(mechanism, Tabular) or method == "laplace"):
        raise ValueError("engine='vmap' needs a Tabular mechanism and method nuts, svi or svi_lowrank.")
    if engine not in ("vmap", "fit"):
        raise ValueError(f"engine must be 'auto', 'vmap' or 'fit'; got {engine!r}.")
    spec = _learner_spec(learner_priors)
    opts = {**_DEFAULT_OPTIONS[method], **options}
    if engine == "fit" and method == "nuts":
        opts.setdefault("num_chains", 2)
    draws_per_fit = opts.get("num_samples", 0) * opts.get("num_chains", 1) or opts.get("num_draws", 1000)
    if n_ranks > draws_per_fit:
        raise ValueError(f"n_ranks = {n_ranks} exceeds the {draws_per_fit} posterior draws per fit.")
    setup = _Setup(
        n_actions=tuple(int(k) for k in mechanism.n_actions),
        M=int(M),
        T=int(T),
        method=method,
        learner=spec,
        priors=priors.to_dict(),
        observe_payoffs=bool(observe_payoffs),
        simulator=simulator,
        options={**opts, "engine": engine},
        n_ranks=int(n_ranks),
        seed=int(seed),
        n_datasets=int(n_datasets),
        mechanism=type(mechanism).__name__,
    )
    truth, actions, payoffs = prior_datasets(
        mechanism, priors, spec, n_datasets, M, T, seed, observe_payoffs=observe_payoffs, simulator=simulator
    )
    records: list[dict] = []
    partial = None if out is None else Path(str(out) + ".partial.jsonl")
    done: set[int] = set()
    if partial is not None and partial.exists():
        lines = partial.read_text().splitlines()
        if lines and json.loads(lines[0]).get("setup") == setup.key():
            for line in lines[1:]:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
                if max(rec["idx"]) < n_datasets:  # a smaller rerun ignores chunks beyond it
                    records.append(rec)
                    done.update(rec["idx"])
        else:
            partial.unlink()
    if partial is not None and not partial.exists():
        partial.write_text(json.dumps({"setup": setup.key()}) + "\n")
    todo = [i for i in range(n_datasets) if i not in done]
    chunks = [np.asarray(todo[i : i + chunk_size]) for i in range(0, len(todo), chunk_size)]

    def task(idx):
        return _chunk_records(setup, mechanism, priors, truth, actions, payoffs, idx)

    def on_done(rec):
        records.append(rec)
        if partial is not None:
            with partial.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")

    _run_chunks(task, chunks, client, int(workers), progress, on_done)
    result = _assemble(setup, records, payoffs is not None)
    if out is not None:
        result.save(out)
    return result


def _assemble(setup: _Setup, records: list[dict], payoffs: bool) -> SBCResult:
    records = sorted(records, key=lambda r: r["idx"][0])
    idx = np.concatenate([r["idx"] for r in records]) if records else np.zeros(0, int)
    order = np.argsort(idx)
    cat = {}
    for part in ("ranks", "inside", "truth", "diagnostics"):
        names = records[0][part] if records else {}
        cat[part] = {q: np.concatenate([np.asarray(r[part][q]) for r in records])[order] for q in names}
    seconds = float(sum(r["seconds"] for r in records))
    setup_d = {**dataclasses.asdict(setup), "seconds": seconds}
    return SBCResult(
        setup=setup_d,
        ranks={q: v.astype(int) for q, v in cat["ranks"].items()},
        inside={q: v.astype(bool) for q, v in cat["inside"].items()},
        truth=cat["truth"],
        identified={q: _identified(q, setup.learner, payoffs) for q in cat["ranks"]},
        n_ranks=setup.n_ranks,
        diagnostics=cat["diagnostics"],
    )


# --------------------------------------------------------------------------- plot
def plot_sbc(result: SBCResult, path: str | Path | None = None, quantities: Sequence[str] | None = None):
    """ECDF-difference plots of the rank PITs with simultaneous 95% bands, and a coverage panel.

    The ECDF panels are ArviZ's :func:`arviz_plots.plot_ecdf_pit` (Delta-ECDF of the
    randomised PIT, method ``"envelope"``: simultaneous bands of Säilynoja et al.); the
    last panel shows empirical against nominal coverage of the central intervals with
    the binomial 95% acceptance band. Returns the matplotlib figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(quantities or result.quantities)
    n_panels = len(names) + 1
    ncols = min(4, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    flat_axes = axes.reshape(-1)
    N = result.n_datasets
    _, _, lo, hi, x = _ecdf_band(N)
    for ax, q in zip(flat_axes, names, strict=False):
        pit = np.sort(pit_from_ranks(result.ranks[q], result.n_ranks))
        ecdf = np.searchsorted(pit, x, side="right") / N
        ax.fill_between(x, lo - x, hi - x, color="C0", alpha=0.2, lw=0)
        ax.plot(x, ecdf - x, color="C0" if result.identified.get(q, True) else "0.5")
        ax.axhline(0, color="k", lw=0.5)
        title = q if result.identified.get(q, True) else f"{q} (not identified)"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
    ax = flat_axes[len(names)]
    levels = np.asarray(result.levels)
    band = np.asarray([coverage_band(p, N) for p in levels])
    ax.fill_between(levels, band[:, 0], band[:, 1], color="0.8", step=None)
    ax.plot(levels, levels, "k--", lw=0.7)
    for q in names:
        if result.identified.get(q, True):
            ax.plot(levels, result.inside[q].mean(0), ".-", lw=0.6, ms=3, label=q)
    if len(names) <= 16:
        ax.legend(fontsize=5, loc="lower right", frameon=False)
    ax.set_xlabel("nominal", fontsize=8)
    ax.set_ylabel("empirical coverage", fontsize=8)
    ax.set_title("coverage (band: binomial 95%)", fontsize=8)
    ax.tick_params(labelsize=7)
    for ax in flat_axes[n_panels:]:
        ax.set_visible(False)
    s = result.setup
    fig.suptitle(
        f"SBC {s.get('method')} on {'x'.join(map(str, s.get('n_actions', ())))}, N = {N}, "
        f"simulator {s.get('simulator')}{', payoffs observed' if s.get('observe_payoffs') else ''}",
        fontsize=9,
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def _ecdf_band(n: int, prob: float = 0.95):
    """ArviZ's simultaneous ECDF band for n uniform PITs: (eval, ecdf, lower, upper, x)."""
    from arviz_stats.ecdf_utils import ecdf_pit

    x, ecdf, lo, hi = ecdf_pit(np.linspace(0.5 / n, 1 - 0.5 / n, n), prob, 1000, rng=np.random.default_rng(0))
    return x, ecdf, lo, hi, x
