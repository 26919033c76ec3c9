"""Misspecification study: data from many learning rules, fitted as a user would.

Each data set comes from a *generating learner* that the fit may or may not contain: every
learner family of the package (parameters drawn from :data:`PARAMETER_RANGES`), and three rules
written here as plain loops, the way other people's learning code is written:

- ``"egreedy"``: Q-learning with bandit feedback (only the played action's value moves, towards
  the payoff it got) and epsilon-greedy play;
- ``"imitation"``: proportional imitation on a ring (Schlag 1998): each agent looks at a
  neighbour and copies its last action with probability proportional to how much more the
  neighbour earned, with a small trembling probability;
- ``"blind"``: a payoff-blind control, one fixed mixed strategy per agent.

The mechanism is a table of N(0, 1) payoffs (2 x 3 game; a 2 x 2 x 2 game for imitation, which
needs agents with the same actions). Each data set is fitted by ``fit(..., learner="auto",
method="nuts")`` with its defaults (the bagged, stacked posterior) and, beside it, by the plain
logit-Q fit (alpha and eps inferred, temperature fixed at 1). Per supported pair of own actions
the study records whether the 90% interval calls the pair sure (excludes 0), whether a sure
call has the true sign, and, where the generating rule has a temperature, whether the interval
covers the true difference in the fit's units (temperature x payoff).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConvergenceWarning, ParetoKWarning
from bayes_diml.inference.pairs import payoff_pairs_frame
from bayes_diml.learners import FAMILIES, learner_family, parameter_names, temperature_name

__all__ = [
    "PARAMETER_RANGES",
    "EXTERNAL",
    "GENERATORS",
    "FITS",
    "Dataset",
    "make_dataset",
    "egreedy_actions",
    "imitation_actions",
    "blind_actions",
    "true_pairs",
    "score_pairs",
    "run_study",
    "summarise",
]

#: Uniform ranges the package families' parameters are drawn from.
PARAMETER_RANGES = {
    "alpha": (0.1, 0.5),
    "beta": (1.0, 4.0),
    "eta": (0.1, 0.5),
    "lam": (1.0, 4.0),
    "eps": (0.02, 0.1),
    "prior_weight": (0.5, 3.0),
    "phi": (0.5, 1.0),
    "delta": (0.0, 1.0),
    "rho": (0.0, 1.0),
    "n0": (0.5, 3.0),
    "h": (0.05, 0.5),
}
#: Generating rules written here (no temperature: their payoff units are not defined).
EXTERNAL = ("egreedy", "imitation", "blind")
#: Every generating learner of the study.
GENERATORS = (*FAMILIES, *EXTERNAL)
#: The fits compared: learner="auto" with its defaults, and plain logit-Q with the temperature at 1.
FITS = ("auto", "logitq")
GAME = (2, 3)
IMITATION_GAME = (2, 2, 2)


class Dataset(NamedTuple):
    """One simulated data set: ``data`` and the true centred payoffs in the fit's units.

    ``truth``: float[K_1, ..., K_n, n] centred payoffs times the generator's temperature (the
    unit a fit with temperature 1 reports), or the plain centred payoffs when the rule has no
    temperature (``scaled`` False: only signs are comparable).
    """

    generator: str
    seed: int
    data: bd.Trajectories
    truth: np.ndarray
    scaled: bool
    learner: dict[str, float]


def _table(key: jax.Array, game: tuple[int, ...]) -> np.ndarray:
    return np.asarray(jax.random.normal(key, (*game, len(game))), dtype=np.float64)


def _centred(table: np.ndarray) -> np.ndarray:
    out = np.empty_like(table)
    for i in range(table.shape[-1]):
        out[..., i] = table[..., i] - table[..., i].mean(axis=i, keepdims=True)
    return out


def _payoff(table: np.ndarray, joint: np.ndarray) -> np.ndarray:
    return table[tuple(joint)]


def egreedy_actions(
    table: np.ndarray, n_episodes: int, T: int, rng: np.random.Generator, alpha: float, eps: float
) -> np.ndarray:
    """Q-learning with bandit feedback and epsilon-greedy play: int[M, T, n] (literal loop)."""
    n = table.shape[-1]
    game = table.shape[:-1]
    out = np.zeros((n_episodes, T, n), dtype=np.int32)
    for m in range(n_episodes):
        q = [np.zeros(k) for k in game]
        for t in range(T):
            joint = np.array(
                [
                    rng.integers(k) if rng.random() < eps else rng.choice(np.flatnonzero(q[i] == q[i].max()))
                    for i, k in enumerate(game)
                ]
            )
            out[m, t] = joint
            u = _payoff(table, joint)
            for i in range(n):
                q[i][joint[i]] += alpha * (u[i] - q[i][joint[i]])
    return out


def imitation_actions(
    table: np.ndarray, n_episodes: int, T: int, rng: np.random.Generator, scale: float, eps: float
) -> np.ndarray:
    """Proportional imitation on a ring of agents with the same actions: int[M, T, n] (literal loop).

    Each step every agent i looks at a random neighbour j (i - 1 or i + 1 mod n); if j earned
    more last step, i switches to j's action with probability ``min(1, scale * (u_j - u_i))``;
    with probability ``eps`` it plays a uniform action instead.
    """
    n = table.shape[-1]
    k = table.shape[0]
    out = np.zeros((n_episodes, T, n), dtype=np.int32)
    for m in range(n_episodes):
        joint = rng.integers(k, size=n)
        for t in range(T):
            out[m, t] = joint
            u = _payoff(table, joint)
            nxt = joint.copy()
            for i in range(n):
                j = (i + rng.choice([-1, 1])) % n
                if u[j] > u[i] and rng.random() < min(1.0, scale * (u[j] - u[i])):
                    nxt[i] = joint[j]
                if rng.random() < eps:
                    nxt[i] = rng.integers(k)
            joint = nxt
    return out


def blind_actions(game: tuple[int, ...], n_episodes: int, T: int, rng: np.random.Generator) -> np.ndarray:
    """Draw payoff-blind play: each agent keeps one mixed strategy (a Dirichlet(1) draw): int[M, T, n]."""
    cols = [rng.choice(k, size=(n_episodes, T), p=rng.dirichlet(np.ones(k))) for k in game]
    return np.stack(cols, axis=-1).astype(np.int32)


def _family_learner(family: str, rng: np.random.Generator) -> tuple[Any, dict[str, float]]:
    cls = learner_family(family)
    values = {name: float(rng.uniform(*PARAMETER_RANGES[name])) for name in parameter_names(cls)}
    return cls(**values), values


def make_dataset(generator: str, seed: int, n_episodes: int = 30, T: int = 30) -> Dataset:
    """Simulate one data set of ``generator`` (one of :data:`GENERATORS`) with this seed."""
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}; choose from {', '.join(GENERATORS)}.")
    rng = np.random.default_rng([seed, GENERATORS.index(generator)])
    game = IMITATION_GAME if generator == "imitation" else GAME
    table = _table(jax.random.key(int(rng.integers(2**31))), game)
    if generator in FAMILIES:
        learner, values = _family_learner(generator, rng)
        mech = mechanisms.Tabular(game)
        data = bd.simulate(mech, {"table": table}, learner, n_episodes, T, int(rng.integers(2**31)))
        temperature = values[temperature_name(learner_family(generator))]
        return Dataset(generator, seed, data, temperature * _centred(table), True, values)
    if generator == "egreedy":
        values = {"alpha": float(rng.uniform(0.1, 0.5)), "eps": float(rng.uniform(0.05, 0.2))}
        actions = egreedy_actions(table, n_episodes, T, rng, **values)
    elif generator == "imitation":
        values = {"scale": float(rng.uniform(0.3, 1.0)), "eps": float(rng.uniform(0.02, 0.1))}
        actions = imitation_actions(table, n_episodes, T, rng, **values)
    else:
        values = {}
        actions = blind_actions(game, n_episodes, T, rng)
    return Dataset(generator, seed, bd.Trajectories(actions, game), _centred(table), False, values)


def true_pairs(truth: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Return the true u_i(a, a_-i) - u_i(b, a_-i) of every row of a pairs frame, in its row order."""
    return payoff_pairs_frame(truth[None], support, prob=0.5)["mean"].to_numpy()


def score_pairs(pairs: pd.DataFrame, truth: np.ndarray, support: np.ndarray, scaled: bool) -> dict[str, Any]:
    """Score a fit's pairs frame (``payoff_pairs(0.9)``) against the truth (observed profiles only).

    Returns counts: ``pairs`` (supported rows with a nonzero true difference), ``sure`` (the
    interval excludes 0), ``sure_right`` (of those, the true sign), ``covered`` (the interval
    holds the true difference; only when ``scaled``, else None).
    """
    true = true_pairs(truth, support)
    rows = pairs["support"].to_numpy(dtype=bool) & (np.abs(true) > 1e-12)
    lo, hi = pairs["lower"].to_numpy()[rows], pairs["upper"].to_numpy()[rows]
    t = true[rows]
    sure = (lo > 0) | (hi < 0)
    right = sure & (np.where(lo > 0, 1.0, -1.0) == np.sign(t))
    return {
        "pairs": int(rows.sum()),
        "sure": int(sure.sum()),
        "sure_right": int(right.sum()),
        "covered": int(((lo <= t) & (t <= hi)).sum()) if scaled else None,
    }


def _fit_one(ds: Dataset, fit_name: str, nuts: dict[str, Any]) -> dict[str, Any]:
    mech = mechanisms.Tabular(ds.data.n_actions)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # recorded, not raised: the study counts what users would see
        warnings.simplefilter("ignore", ParetoKWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        if fit_name == "auto":
            post = bd.fit(ds.data, mech, "auto", method="nuts", seed=ds.seed, progress=False, **nuts)
            extra = {"verdict": post.verdict, "weights": post.weights, "bagged": post.info.get("bagged", [])}
        else:
            learner = bd.LogitQ("infer", 1.0, "infer")
            post = bd.fit(ds.data, mech, learner, method="nuts", seed=ds.seed, progress=False, **nuts)
            extra = {"verdict": None}
    pairs = post.payoff_pairs(0.9)
    support = np.asarray(post.support)
    return {
        "generator": ds.generator,
        "seed": ds.seed,
        "fit": fit_name,
        "seconds": time.perf_counter() - t0,
        "learner": ds.learner,
        **score_pairs(pairs, ds.truth, support, ds.scaled),
        **extra,
    }


def _tasks(generators: Sequence[str], seeds: Sequence[int], fits: Sequence[str]) -> Iterator[tuple]:
    for seed in seeds:
        for gen in generators:
            for fit_name in fits:
                yield gen, int(seed), fit_name


def run_study(
    path: str | Path,
    generators: Sequence[str] = GENERATORS,
    seeds: Sequence[int] = range(100),
    fits: Sequence[str] = FITS,
    *,
    n_episodes: int = 30,
    T: int = 30,
    nuts: dict[str, Any] | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run the study, appending one JSON record per (generator, seed, fit) to ``path`` (JSON lines).

    Records already in ``path`` are kept and not rerun (resume). ``nuts``: NUTS settings of
    both fits (default: ``fit``'s own). Returns every record.
    """
    path = Path(path)
    done: list[dict] = []
    if path.exists():
        done = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seen = {(r["generator"], r["seed"], r["fit"]) for r in done}
    for gen, seed, fit_name in _tasks(generators, seeds, fits):
        if (gen, seed, fit_name) in seen:
            continue
        ds = make_dataset(gen, seed, n_episodes, T)
        rec = _fit_one(ds, fit_name, dict(nuts or {}))
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        done.append(rec)
        if on_record is not None:
            on_record(rec)
    return done


def summarise(records: Sequence[dict]) -> pd.DataFrame:
    """Per generator and fit: data sets, pairs, share sure (power), sign accuracy of sure pairs, coverage."""
    frame = pd.DataFrame(list(records))
    rows = []
    for (gen, fit_name), g in frame.groupby(["generator", "fit"], sort=False):
        pairs, sure, right = g["pairs"].sum(), g["sure"].sum(), g["sure_right"].sum()
        cov = g["covered"].dropna()
        rows.append(
            {
                "generator": gen,
                "fit": fit_name,
                "datasets": len(g),
                "pairs": int(pairs),
                "sure_share": sure / pairs if pairs else np.nan,
                "sure_right": right / sure if sure else np.nan,
                "wrong_sure": int(sure - right),
                "coverage": cov.sum() / pairs if len(cov) and pairs else np.nan,
                "seconds": float(g["seconds"].mean()),
            }
        )
    return pd.DataFrame(rows)
