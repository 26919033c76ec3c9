"""Which prior sd does ``diml_val`` choose on the validation split, and what would the test split say?

Usage (from the repository root, after ``paper.py --methods diml_val diml``)::

    python benchmarks/prior_scale.py --out docs/results/results.csv

Reads the saved ``diml_val`` fits (``<stem>_params/*_diml_val_seed*.npz``: the chosen sd and the
held-out log-likelihood per scored action of every candidate, ``info.val_ll_<label>``) and the
CSV's ``diml`` / ``diml_val`` rows; prints one line per (experiment, seed) and writes
``benchmarks/results/prior_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from bayes_diml.studies import experiments as X


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/results/results.csv")
    p.add_argument("--json", default="benchmarks/results/prior_scale.json")
    args = p.parse_args(argv)
    out = Path(args.out)
    df = X.load_results(out)
    rows = []
    for path in sorted((out.parent / f"{out.stem}_params").glob("*_diml_val_seed*.npz")):
        experiment, setting, seed = re.fullmatch(r"(\w+?)_(\w+?)_diml_val_seed(\d+)", path.stem).groups()
        saved = X.load_params(path)
        prefix = "info.val_ll_"
        scores = {k[len(prefix) :]: float(v) for k, v in saved.items() if k.startswith(prefix)}
        chosen = float(saved["info.prior_scale"])

        def metric(method: str, column: str, experiment=experiment, seed=seed) -> float:
            hit = df[(df.experiment == experiment) & (df.method == method) & (df.seed == int(seed))]
            return float(hit[column].iloc[0]) if len(hit) else math.nan

        rows.append(
            {
                "experiment": experiment,
                "setting": setting,
                "seed": int(seed),
                "chosen_prior_sd": "flat" if np.isinf(chosen) else chosen,
                "val_ll_per_action": scores,
                "diff_mse_diml_val": metric("diml_val", "diff_mse"),
                "diff_mse_diml_0.3": metric("diml", "diff_mse"),
                "cfkl_diml_val": metric("diml_val", "cfkl_params"),
                "cfkl_diml_0.3": metric("diml", "cfkl_params"),
            }
        )
    labels = sorted({k for r in rows for k in r["val_ll_per_action"]}, key=lambda s: (s != "flat", s))
    head = ["experiment", "seed", "chosen", *[f"val_ll[{k}]" for k in labels], "diff_mse val / 0.3"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [f"{r['val_ll_per_action'].get(k, math.nan):.4f}" for k in labels]
        ratio = f"{r['diff_mse_diml_val']:.3g} / {r['diff_mse_diml_0.3']:.3g}"
        print(f"| {r['experiment']} | {r['seed']} | {r['chosen_prior_sd']} | {' | '.join(cells)} | {ratio} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"csv": str(out), "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
