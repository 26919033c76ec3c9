"""E7 diff_mse relative to the truth's own scale: why a seed loses to a single published run.

Usage (from the repository root)::

    python benchmarks/e7_relative_error.py [--csv docs/results/results.csv] [--seeds 0 1 2]

Every E7 seed draws a new random true mechanism, and diff_mse is in that truth's payoff units.
For each setting and seed this prints the diff_mse of the all-zero mechanism on the test split
(the truth's mean squared centred payoff difference: the scale of the target) and, for every E7
row of the CSV, ``diff_mse / zero_mse`` (the share of the target's variance left unexplained).
A seed whose truth has larger payoff differences has a larger diff_mse at the same relative
error. Writes ``benchmarks/results/e7_relative_error.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp

from bayes_diml import environments, metrics
from bayes_diml.studies import experiments as X

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent / "docs" / "results" / "results.csv"
DEFAULT_OUT = HERE / "results" / "e7_relative_error.json"


def zero_mse(setting: str, seed: int) -> float:
    """diff_mse of the all-zero mechanism against E7's truth of ``setting`` (``"300x40"``), ``seed``."""
    n, k = (int(v) for v in setting.split("x"))
    env = environments.make("e7", seed, n=n, K=k)
    zero = jax.tree.map(jnp.zeros_like, env.params)
    return float(metrics.diff_mse(env.mechanism, env.params, env.mechanism, zero, env.test))


def main(argv: list[str] | None = None) -> None:
    """Print the table and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    df = X.load_results(args.csv)
    df = df[(df.experiment == "e7") & df.seed.isin(args.seeds)]
    published = {s: v[0] for (e, s, m), v in X.PUBLISHED.items() if e == "e7" and m == "diml"}
    rows = []
    print(f"{'setting':<8} {'seed':>4} {'zero_mse':>10}  relative error (diff_mse / zero_mse) per method")
    for setting in sorted(df.setting.unique(), key=lambda s: int(s.split("x")[0])):
        for seed in args.seeds:
            here = df[(df.setting == setting) & (df.seed == seed)]
            if here.empty:
                continue
            scale = zero_mse(setting, seed)
            diff = dict(zip(here.method, map(float, here.diff_mse), strict=True))
            rel = {m: v / scale for m, v in diff.items()}
            row = {
                "setting": setting,
                "seed": seed,
                "zero_mse": scale,
                "published_diml": published.get(setting),
            }
            rows.append(row | {"diff_mse": diff, "relative": rel})
            text = ", ".join(f"{m} {v:.2%}" for m, v in sorted(rel.items()))
            print(f"{setting:<8} {seed:>4} {scale:>10.3e}  {text}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"benchmark": "E7 diff_mse / zero-mechanism diff_mse", "rows": rows}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
