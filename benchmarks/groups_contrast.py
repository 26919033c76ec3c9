"""Calibration of group contrasts (``Posterior.contrast``) on two arms of a 2 x 2 game.

Each data set draws a shared payoff table from the fit's prior (entries ``N(0, 1)``,
``Priors().mechanism_scale == 1``), a LogitQ learner (``alpha ~ U(0.2, 0.5)``,
``eps ~ U(0.02, 0.10)``, ``beta = 2`` fixed and known to the fit), and simulates arm A on
that table and arm B on the same table with agent 0's payoff of action 1 raised by ``delta``
against every opponent action (condition ``changed``: ``delta = 1``; ``null``: ``delta = 0``).
Both conditions of one data-set index share the table, learner and simulation keys. A
``GroupedTabular`` fit (NUTS) gives ``contrast("B", "A", prob=0.9)``, compared with the true
difference of the centred payoffs: agent 0's cells change by ``+-delta / 2``, agent 1's by 0.

A shrinkage demo fits one data set whose arm B has 2 episodes (20 in A) both grouped and as a
separate ``Tabular`` fit of B alone.

Usage::

    python benchmarks/groups_contrast.py --datasets 100 --condition both \
        --out benchmarks/results/groups_contrast.json

Results are written after every data set; a rerun skips data sets already in the file (the
configuration must match).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.mechanisms.grouped import GROUP_SCALE_DISTS
from bayes_diml.metrics import payoff_differences

GAME = (2, 2)
BETA = 2.0
DELTA = {"changed": 1.0, "null": 0.0}
CONFIG_KEYS = ("episodes", "steps", "warmup", "samples", "chains", "seed", "prob", "group_scale_dist")


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n`` (95% by default)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z**2 / n
    mid = (p + z**2 / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return (mid - half, mid + half)


def draw_world(seed: int, index: int) -> tuple[np.ndarray, float, float, int, int]:
    """Shared table float[2, 2, 2], alpha, eps and the two arms' simulation keys."""
    rng = np.random.default_rng([seed, index])
    table = rng.normal(0.0, 1.0, size=(*GAME, len(GAME)))
    alpha = float(rng.uniform(0.2, 0.5))
    eps = float(rng.uniform(0.02, 0.10))
    key_a, key_b = (int(k) for k in rng.integers(0, 2**31 - 1, size=2))
    return table, alpha, eps, key_a, key_b


def arm_b(table: np.ndarray, delta: float) -> np.ndarray:
    """Arm B's table: agent 0's payoff of action 1 raised by ``delta`` (every opponent action)."""
    out = table.copy()
    out[1, :, 0] += delta
    return out


def centred(table: np.ndarray) -> np.ndarray:
    """True centred payoffs float[K_1, K_2, n] of a table."""
    return np.asarray(payoff_differences(mechanisms.Tabular(GAME), {"table": table}))


def simulate_arms(table_a, table_b, alpha, eps, key_a, key_b, episodes_a, episodes_b, steps):
    """Grouped Trajectories of arms A and B (groups ``A``, ``B``) and the two arms separately."""
    learner = bd.LogitQ(alpha=alpha, beta=BETA, eps=eps)
    tab = mechanisms.Tabular(GAME)
    da = bd.simulate(tab, {"table": table_a}, learner, n_episodes=episodes_a, T=steps, key=key_a)
    db = bd.simulate(tab, {"table": table_b}, learner, n_episodes=episodes_b, T=steps, key=key_b)
    return bd.Trajectories.concat([da, db], groups=["A", "B"]), da, db


def fit_grouped(data, args):
    """NUTS fit of GroupedTabular with beta fixed at the truth."""
    mech = mechanisms.GroupedTabular(GAME, data.group_names, group_scale_dist=args.group_scale_dist)
    return fit_nuts(data, mech, args)


def fit_nuts(data, mech, args):
    """NUTS fit of ``mech`` (alpha, eps inferred; beta fixed at the truth) with the study's settings."""
    return bd.fit(
        data,
        mech,
        bd.LogitQ("infer", BETA, "infer"),
        method="nuts",
        num_warmup=args.warmup,
        num_samples=args.samples,
        num_chains=args.chains,
        seed=0,
        progress=False,
    )


def one_dataset(index: int, condition: str, args) -> dict:
    """Simulate, fit and score one data set of one condition."""
    table, alpha, eps, key_a, key_b = draw_world(args.seed, index)
    table_b = arm_b(table, DELTA[condition])
    data, _, _ = simulate_arms(
        table, table_b, alpha, eps, key_a, key_b, args.episodes, args.episodes, args.steps
    )
    t0 = time.time()
    post = fit_grouped(data, args)
    seconds = time.time() - t0
    frame = post.contrast("B", "A", prob=args.prob)
    truth = centred(table_b) - centred(table)  # [a0, a1, agent]
    rows = []
    for _, row in frame.iterrows():
        a0, a1 = (int(x) for x in str(row["joint"]).split("-"))
        agent = list(frame["agent"].unique()).index(row["agent"])
        true = float(truth[a0, a1, agent])
        lower, upper = float(row["lower"]), float(row["upper"])
        rows.append(
            {
                "agent": agent,
                "joint": f"{a0}-{a1}",
                "truth": true,
                "mean": float(row["mean"]),
                "lower": lower,
                "upper": upper,
                "covered": bool(lower <= true <= upper),
                "excludes_zero": bool(lower > 0 or upper < 0),
                "sign_error": bool((lower > 0 and true < 0) or (upper < 0 and true > 0)),
                "right_sign": bool((lower > 0 and true > 0) or (upper < 0 and true < 0)),
            }
        )
    if len(rows) != 8:
        raise RuntimeError(f"expected 8 contrast rows, got {len(rows)}")
    units = str(frame["units"].iloc[0])
    return {
        "index": index,
        "alpha": alpha,
        "eps": eps,
        "seconds": seconds,
        "units": units,
        "rows": rows,
    }


def summarise(records: list[dict]) -> dict:
    """Coverage, sign errors, false positives and power, with Wilson 95% intervals.

    ``cells``: every cell counted (4 per agent per data set; not independent, since in a 2 x 2
    game the two centred cells of an opponent profile are each other's negative). ``one_cell``:
    cell ``1-0`` of each agent only, one independent Bernoulli per data set.
    """
    out: dict = {"n_datasets": len(records)}
    for agent in (0, 1):
        cells = [r for rec in records for r in rec["rows"] if r["agent"] == agent]
        one = [r for rec in records for r in rec["rows"] if r["agent"] == agent and r["joint"] == "1-0"]
        stats = {}
        for name, sel in (("cells", cells), ("one_cell", one)):
            n = len(sel)
            cov = sum(r["covered"] for r in sel)
            stats[name] = {
                "n": n,
                "coverage": cov / n if n else float("nan"),
                "coverage_wilson95": wilson(cov, n),
                "excludes_zero": sum(r["excludes_zero"] for r in sel) / n if n else float("nan"),
                "sign_errors": sum(r["sign_error"] for r in sel),
                "power": (sum(r["right_sign"] for r in sel) / n if n else float("nan"))
                if any(r["truth"] != 0 for r in sel)
                else None,
            }
        out[f"agent{agent}"] = stats
    out["seconds_per_fit"] = float(np.mean([rec["seconds"] for rec in records])) if records else None
    return out


def shrinkage_demo(args) -> dict:
    """One data set (condition ``changed``) with 2 episodes in B and ``episodes`` in A."""
    table, alpha, eps, key_a, key_b = draw_world(args.seed, 10_000)
    table_b = arm_b(table, DELTA["changed"])
    data, _, db = simulate_arms(table, table_b, alpha, eps, key_a, key_b, args.episodes, 2, args.steps)
    post = fit_grouped(data, args)
    sep = fit_nuts(db, mechanisms.Tabular(GAME), args)
    grouped_b = np.asarray(post.payoff_table(group="B")["mean"])
    grouped_a = np.asarray(post.payoff_table(group="A")["mean"])
    separate_b = np.asarray(sep.payoff_table()["mean"])
    return {
        "episodes_a": args.episodes,
        "episodes_b": 2,
        "true_a": centred(table).tolist(),
        "true_b": centred(table_b).tolist(),
        "grouped_a_mean": grouped_a.tolist(),
        "grouped_b_mean": grouped_b.tolist(),
        "separate_b_mean": separate_b.tolist(),
        "distance_to_grouped_a": {
            "grouped_b": float(np.linalg.norm(grouped_b - grouped_a)),
            "separate_b": float(np.linalg.norm(separate_b - grouped_a)),
        },
        "error_vs_true_b": {
            "grouped_b": float(np.linalg.norm(grouped_b - centred(table_b))),
            "separate_b": float(np.linalg.norm(separate_b - centred(table_b))),
        },
    }


def load(path: Path, config: dict) -> dict:
    """The saved results, or a fresh record; refuses a file of another configuration."""
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["config"] != config:
            raise SystemExit(f"{path} holds another configuration: {saved['config']} != {config}")
        return saved
    return {"config": config, "datasets": {"changed": [], "null": []}, "shrinkage": None}


def save(path: Path, results: dict) -> None:
    """Write atomically, with fresh summaries."""
    results["summary"] = {c: summarise(v) for c, v in results["datasets"].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)


def print_summary(results: dict) -> None:
    """The summary table (coverage of the 90% intervals with Wilson 95% intervals)."""
    print("\ncondition agent  cells  n   coverage  wilson95        excl0  sign_err  power")
    for cond, s in results["summary"].items():
        for agent in (0, 1):
            for kind in ("cells", "one_cell"):
                st = s[f"agent{agent}"][kind]
                if not st["n"]:
                    continue
                lo, hi = st["coverage_wilson95"]
                power = "-" if st["power"] is None else f"{st['power']:.2f}"
                print(
                    f"{cond:9s} {agent:5d}  {kind:8s} {st['n']:4d} {st['coverage']:.3f}   "
                    f"[{lo:.3f}, {hi:.3f}]  {st['excludes_zero']:.2f}   {st['sign_errors']:4d}    {power}"
                )
    shr = results.get("shrinkage")
    if shr:
        np.set_printoptions(precision=2, suppress=True)
        print(f"\nshrinkage demo (A: {shr['episodes_a']} episodes, B: {shr['episodes_b']}):")
        for name in ("true_a", "true_b", "grouped_a_mean", "grouped_b_mean", "separate_b_mean"):
            print(
                f"  {name:16s} agent0 {np.array(shr[name])[..., 0].ravel()}  "
                f"agent1 {np.array(shr[name])[..., 1].ravel()}"
            )
        print("  distance to grouped A mean:", shr["distance_to_grouped_a"])
        print("  error vs true B:", shr["error_vs_true_b"])


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", type=int, default=100)
    p.add_argument("--condition", choices=("changed", "null", "both"), default="both")
    p.add_argument("--episodes", type=int, default=20, help="episodes per arm")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prob", type=float, default=0.9)
    p.add_argument(
        "--group-scale-dist",
        choices=GROUP_SCALE_DISTS,
        default="lognormal",
        help="GroupedTabular's prior on the between-group scale",
    )
    p.add_argument("--no-shrinkage", action="store_true", help="skip the shrinkage demo")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/groups_contrast.json"))
    args = p.parse_args(argv)
    config = {k: getattr(args, k) for k in CONFIG_KEYS}
    results = load(args.out, config)
    conditions = ("changed", "null") if args.condition == "both" else (args.condition,)
    if not args.no_shrinkage and not results.get("shrinkage"):
        t0 = time.time()
        results["shrinkage"] = shrinkage_demo(args)
        save(args.out, results)
        print(f"shrinkage demo done in {time.time() - t0:.0f} s", flush=True)
    for index in range(args.datasets):
        for cond in conditions:
            done = {rec["index"] for rec in results["datasets"][cond]}
            if index in done:
                continue
            rec = one_dataset(index, cond, args)
            results["datasets"][cond].append(rec)
            save(args.out, results)
            cov = [np.mean([r["covered"] for r in rec["rows"] if r["agent"] == a]) for a in (0, 1)]
            print(
                f"[{cond} {index + 1}/{args.datasets}] fit {rec['seconds']:.1f} s, "
                f"covered agent0 {cov[0]:.2f} agent1 {cov[1]:.2f}",
                flush=True,
            )
    save(args.out, results)
    print_summary(results)


if __name__ == "__main__":
    main()
