"""Decision study of ``Posterior.design``: regret of the chosen edit and calibration of prob_improvement.

Usage (from the repository root)::

    python benchmarks/design.py --worlds 50 --game both      # the full study
    python benchmarks/design.py --quick                       # 3 worlds per game (smoke test)

Each simulated world ``w`` (seed ``w``) draws a true game, simulates training data with a known
learner, fits the posterior by Laplace (beta fixed at its true value, so payoffs are in real
units; alpha and eps inferred) and runs ``post.design`` over a signed toll on one action
(``theta < 0`` is a subsidy, ``theta = 0`` the status quo) with the objective ``"welfare"``
(mean total unedited payoff per step) and the criterion ``"mean"`` (the other two criteria
are applied to the same draws with ``bayes_diml.inference.design.decide``). The truth is the
same design run on a point-mass posterior at the true mechanism and learner with many more
episodes.

Games:

- ``table``: a 2 x 3 ``Tabular(levels=True)`` game whose payoff table (levels included) has
  i.i.d. N(0, 1) entries and whose learner has alpha ~ Beta(2, 4), eps ~ Beta(1, 15): the
  fit's own prior (beta fixed at 2); 20 episodes x 30 steps; toll on action 0.
- ``e2``: the paper's congestion game (``environments.make("e2", w)``: 4 agents x 5 routes,
  the reference's random truth, LogitQ(0.25, 3, 0.06)) with 30 episodes x 40 steps, fitted
  with its structured family (``env.family``); toll on the route most used in the data.

Per world: ``regret = true(best candidate) - true(chosen)`` (>= 0), for each criterion and for
doing nothing (the status quo). Calibration pools (world, candidate) pairs with ``theta != 0``
and compares the posterior probability of improvement with whether the candidate truly beats
the status quo. Results go to ``--out`` after every world (a rerun with the same settings
skips the worlds already there); the reliability plot to ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from tqdm import tqdm

import bayes_diml as bd
from bayes_diml.compilation_cache import enable_compilation_cache
from bayes_diml.inference import ConfoundingWarning, Posterior
from bayes_diml.inference.design import CRITERIA, Design, decide
from bayes_diml.inference.idata import build_idata, deterministic_sites
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors, sites_from_params

ROOT = Path(__file__).resolve().parent.parent
GAMES = ("table", "e2")
#: Settings shared by every world; a resumed run must use the same ones.
SETTINGS: dict[str, Any] = {
    "thetas": [round(float(t), 6) for t in np.linspace(-1.0, 1.0, 11)],
    "objective": "welfare",
    "n_draws": 60,
    "n_episodes": 40,
    "truth_episodes": 400,
    "quantile": 0.1,
    "bins": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    "table": {"n_actions": [2, 3], "beta": 2.0, "episodes": 20, "steps": 30, "edit": "toll(0)"},
    "e2": {"episodes": 30, "steps": 40, "edit": "toll(most used route)"},
}


# ------------------------------------------------------------------ one world
def point_mass_posterior(mechanism: Any, params: Any, data: bd.Trajectories, learner: bd.LogitQ) -> Posterior:
    """Return a one-draw ``Posterior`` at ``params`` with a fixed ``learner`` (the truth)."""
    spec = ModelSpec.build(data, mechanism, learner, Priors())
    sites = {k: np.asarray(v)[None] for k, v in sites_from_params(mechanism, params).items()}
    det = deterministic_sites(spec, sites)
    tree = build_idata(spec, {k: v[None] for k, v in {**sites, **det}.items()}, log_likelihood=False)
    return Posterior(tree, spec, "map")


def table_world(w: int) -> tuple[Any, Any, bd.LogitQ, bd.Trajectories, Any]:
    """Return ``(mechanism, params, learner, data, edit)`` of table world ``w`` (from the fit's prior)."""
    s = SETTINGS["table"]
    mech = bd.mechanisms.Tabular(tuple(s["n_actions"]), levels=True)
    k_mech, k_alpha, k_eps, k_data = jax.random.split(jax.random.key(w), 4)
    params = mech.init(k_mech)  # i.i.d. N(0, 1) entries: the prior of Tabular(levels=True)
    prior = Priors()
    alpha = float(jax.random.beta(k_alpha, *prior.alpha))
    eps = float(jax.random.beta(k_eps, *prior.eps))
    learner = bd.LogitQ(alpha, s["beta"], eps)
    data = bd.simulate(mech, params, learner, s["episodes"], s["steps"], k_data)
    return mech, params, learner, data, bd.edits.toll(0)


def e2_world(w: int) -> tuple[Any, Any, bd.LogitQ, bd.Trajectories, Any]:
    """Return ``(family, params, learner, data, edit)`` of E2 world ``w`` (toll on the most used route)."""
    s = SETTINGS["e2"]
    env = bd.environments.make("e2", w, n_episodes=s["episodes"], T=s["steps"])
    counts = np.bincount(np.asarray(env.data.actions).ravel(), minlength=env.family.n_choices)
    return env.family, env.family_params, env.learner, env.data, bd.edits.toll(int(np.argmax(counts)))


WORLDS = {"table": table_world, "e2": e2_world}


def run_design(post: Posterior, edit: Any, n_episodes: int, n_draws: int | None, seed: int) -> Design:
    """``post.design`` with the study's settings.

    The welfare objective's ConfoundingWarning (levels not identified by actions) is expected
    here: the table game's levels are drawn from the prior the fit keeps for them, and the E2
    family's only gauge (a common shift of ``b``) moves every candidate's welfare alike.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConfoundingWarning)
        return post.design(
            edit,
            np.asarray(SETTINGS["thetas"]),
            objective=SETTINGS["objective"],
            n_episodes=n_episodes,
            n_draws=n_draws,
            quantile=SETTINGS["quantile"],
            seed=seed,
        )


def run_world(game: str, w: int) -> dict[str, Any]:
    """Fit, design and score world ``w`` of ``game``; return a JSON-ready record."""
    t0 = time.perf_counter()
    mech, params, learner, data, edit = WORLDS[game](w)
    fit_learner = bd.LogitQ("infer", learner.beta, "infer")
    post = bd.fit(
        data,
        mech,
        fit_learner,
        method="laplace",
        seed=w,
        progress=False,
        log_likelihood=False,
        num_draws=SETTINGS["n_draws"],
    )
    d = run_design(post, edit, SETTINGS["n_episodes"], SETTINGS["n_draws"], seed=w)
    point_mass = point_mass_posterior(mech, params, data, learner)
    truth = run_design(point_mass, edit, SETTINGS["truth_episodes"], 1, 10_000 + w)
    true_mean = truth.draws[0]
    true_sq = float(truth.status_quo[0])
    best = int(np.argmax(true_mean))
    chosen = {
        c: decide(d.draws, d.status_quo, c, True, SETTINGS["quantile"])[0] if c != "mean" else d.chosen
        for c in CRITERIA
    }
    return {
        "game": game,
        "world": w,
        "edit": getattr(edit, "__name__", "edit"),
        "alpha": float(learner.alpha),
        "eps": float(learner.eps),
        "beta": float(learner.beta),
        "post_mean": d.draws.mean(0).tolist(),
        "post_sq_mean": float(d.status_quo.mean()),
        "prob_improvement": d.prob_improvement.tolist(),
        "mcse_improvement": d.mcse_improvement.tolist(),
        "evpi": float(d.evpi),
        "evpi_mcse": float(d.evpi_mcse),
        "chosen": chosen,
        "true_mean": true_mean.tolist(),
        "true_sq": true_sq,
        "true_improvement": (true_mean - true_sq).tolist(),
        "true_mcse_improvement": truth.mcse_improvement.tolist(),
        "best": best,
        "regret": {c: float(true_mean[best] - true_mean[i]) for c, i in chosen.items()},
        "regret_mcse": {c: truth.mcse_difference(best, i) if i != best else 0.0 for c, i in chosen.items()},
        "regret_status_quo": float(true_mean[best] - true_sq),
        "true_range": float(true_mean.max() - true_mean.min()),
        "seconds": time.perf_counter() - t0,
    }


# ------------------------------------------------------------------ summaries
def regret_table(records: list[dict]) -> pd.DataFrame:
    """One row per decision rule: mean / median / max regret, relative to the range, share optimal."""
    rows = []
    rules = [*(f"criterion={c}" for c in CRITERIA), "status quo"]
    for rule in rules:
        if rule == "status quo":
            reg = np.array([r["regret_status_quo"] for r in records])
        else:
            reg = np.array([r["regret"][rule.split("=")[1]] for r in records])
        rel = reg / np.array([max(r["true_range"], 1e-12) for r in records])
        rows.append(
            {
                "rule": rule,
                "worlds": len(reg),
                "mean": reg.mean(),
                "se": reg.std(ddof=1) / np.sqrt(len(reg)) if len(reg) > 1 else np.nan,
                "median": np.median(reg),
                "max": reg.max(),
                "mean_rel_range": rel.mean(),
                "share_optimal": float(np.mean(reg <= 0)),
            }
        )
    return pd.DataFrame(rows)


def evpi_row(records: list[dict]) -> dict[str, float]:
    """Mean EVPI (the posterior's expected regret of the mean criterion) against the realised regret."""
    evpi = np.array([r["evpi"] for r in records])
    reg = np.array([r["regret"]["mean"] for r in records])
    n = len(records)
    return {
        "worlds": n,
        "evpi_mean": float(evpi.mean()),
        "evpi_se": float(evpi.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        "regret_mean": float(reg.mean()),
        "regret_se": float(reg.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        "true_range_mean": float(np.mean([r["true_range"] for r in records])),
        "truth_regret_mcse_max": float(max(max(r["regret_mcse"].values()) for r in records)),
    }


def calibration_pairs(records: list[dict]) -> pd.DataFrame:
    """One row per (world, candidate) with ``theta != 0``: predicted p, truly improves, |truth| in SEs."""
    thetas = np.asarray(SETTINGS["thetas"])
    rows = []
    for r in records:
        for c in np.flatnonzero(thetas != 0):
            imp, se = r["true_improvement"][c], r["true_mcse_improvement"][c]
            rows.append(
                {
                    "game": r["game"],
                    "world": r["world"],
                    "theta": thetas[c],
                    "p": r["prob_improvement"][c],
                    "improves": imp > 0,
                    "z": abs(imp) / se if se > 0 else np.inf,
                }
            )
    return pd.DataFrame(rows)


def reliability_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Bin the predicted probabilities; per bin: count, mean p, observed share and its Wilson 95% interval."""
    edges = np.asarray(SETTINGS["bins"])
    idx = np.clip(np.digitize(pairs["p"], edges[1:-1], right=False), 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        sel = pairs[idx == b]
        n = len(sel)
        k = int(sel["improves"].sum())
        lo, hi = wilson(k, n)
        rows.append(
            {
                "bin": f"[{edges[b]:.1f}, {edges[b + 1]:.1f}{']' if b == len(edges) - 2 else ')'}",
                "pairs": n,
                "mean_p": float(sel["p"].mean()) if n else np.nan,
                "observed": k / n if n else np.nan,
                "lower": lo,
                "upper": hi,
            }
        )
    return pd.DataFrame(rows)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``k / n`` (NaN when ``n == 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(centre - half), float(centre + half)


def summarise(results: dict[str, list[dict]]) -> dict[str, Any]:
    """Regret, EVPI and calibration summaries per game and pooled (JSON-ready)."""
    out: dict[str, Any] = {}
    all_pairs = []
    for game, records in results.items():
        if not records:
            continue
        pairs = calibration_pairs(records)
        all_pairs.append(pairs)
        out[game] = {
            "regret": regret_table(records).to_dict(orient="records"),
            "evpi": evpi_row(records),
            "reliability": reliability_table(pairs).to_dict(orient="records"),
            "brier": float(np.mean((pairs["p"] - pairs["improves"]) ** 2)),
            "pairs_truth_within_2se": int((pairs["z"] < 2).sum()),
            "seconds_per_world": float(np.mean([r["seconds"] for r in records])),
        }
    if len(all_pairs) > 1:
        pooled = pd.concat(all_pairs)
        out["pooled"] = {
            "reliability": reliability_table(pooled).to_dict(orient="records"),
            "brier": float(np.mean((pooled["p"] - pooled["improves"]) ** 2)),
        }
    return out


def plot_reliability(summary: dict[str, Any], path: Path) -> None:
    """Save the reliability plot: observed share of true improvements against the predicted probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="perfect calibration")
    for j, game in enumerate(g for g in GAMES if g in summary):
        t = pd.DataFrame(summary[game]["reliability"]).dropna(subset=["mean_p"])
        off = (j - 0.5) * 0.012
        ax.errorbar(
            t["mean_p"] + off,
            t["observed"],
            yerr=np.clip([t["observed"] - t["lower"], t["upper"] - t["observed"]], 0, None),
            marker="o",
            capsize=3,
            label=f"{game} ({int(t['pairs'].sum())} pairs)",
        )
        for _, row in t.iterrows():
            ax.annotate(
                str(int(row["pairs"])), (row["mean_p"] + off, row["observed"]), fontsize=7,
                xytext=(4, -10 if j else 4), textcoords="offset points", color=f"C{j}",
            )  # fmt: skip
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("posterior probability of improvement (bin mean)")
    ax.set_ylabel("share that truly improve (95% Wilson)")
    ax.set_title("Posterior.design: calibration of prob_improvement")
    ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------ driver
def load(path: Path, command: str) -> dict[str, Any]:
    """Return the saved results (``{"worlds": {game: [records]}}``) or an empty set; refuse other settings."""
    if not path.exists():
        return {"command": command, "settings": SETTINGS, "worlds": {g: [] for g in GAMES}}
    saved = json.loads(path.read_text())
    if saved.get("settings") != json.loads(json.dumps(SETTINGS)):
        raise SystemExit(f"{path} holds results of other settings; pass another --out or delete it.")
    saved["worlds"] = {g: saved["worlds"].get(g, []) for g in GAMES}
    return saved


def save(path: Path, state: dict[str, Any]) -> None:
    """Write the results atomically (a crash mid-write keeps the previous file)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(path)


def show(summary: dict[str, Any]) -> None:
    """Print the regret, EVPI and calibration tables."""
    fmt = {"float_format": lambda v: f"{v:.4f}", "index": False}
    for game in (*GAMES, "pooled"):
        if game not in summary:
            continue
        s = summary[game]
        print(f"\n== {game}")
        if "regret" in s:
            print(pd.DataFrame(s["regret"]).to_string(**fmt))
            print("EVPI vs realised regret (criterion=mean):", {k: round(v, 4) for k, v in s["evpi"].items()})
        print(f"reliability of prob_improvement (Brier {s['brier']:.4f}):")
        print(pd.DataFrame(s["reliability"]).to_string(**fmt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=50, help="simulated worlds per game (seeds 0..N-1)")
    parser.add_argument("--game", choices=[*GAMES, "both"], default="both")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "design.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "design_reliability.png")
    parser.add_argument("--quick", action="store_true", help="3 worlds per game (smoke test)")
    args = parser.parse_args()
    if args.worlds < 1:
        parser.error(f"--worlds must be >= 1; got {args.worlds}.")
    n = 3 if args.quick else args.worlds
    games = GAMES if args.game == "both" else (args.game,)
    enable_compilation_cache()  # each world's fit has the same shapes: compile once, load after

    command = f"python benchmarks/design.py --worlds {n} --game {args.game}"
    state = load(args.out, command)
    state["command"] = command
    done = {g: {r["world"] for r in state["worlds"][g]} for g in GAMES}
    todo = [(w, g) for w in range(n) for g in games if w not in done[g]]  # games interleaved
    for w, g in tqdm(todo, desc="worlds", unit="world"):
        state["worlds"][g].append(run_world(g, w))
        state["summary"] = summarise({k: v for k, v in state["worlds"].items() if v})
        save(args.out, state)
    results = {
        g: sorted((r for r in state["worlds"][g] if r["world"] < n), key=lambda r: r["world"]) for g in games
    }
    summary = summarise(results)
    state["summary"] = summary
    state["worlds_in_summary"] = {g: len(v) for g, v in results.items()}
    save(args.out, state)
    show(summary)
    plot_reliability(summary, args.plot)
    print(f"\nwrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
