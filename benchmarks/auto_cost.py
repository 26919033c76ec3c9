"""Cost of ``fit(..., learner="auto", method="nuts")`` with its defaults (stacked, bagged).

Usage (from the repository root)::

    python benchmarks/auto_cost.py            # 2 x 3 game, 60 episodes x 40 steps of LogitQ data

Runs the call twice in one process, on two data sets of the same shapes (data keys 0 and 1):
the first compiles every program (one per family and sampler setting; the bags reuse their
family's), the next reuses them all, as every data set of a study after the first does. Prints
one row per stage (each family's ordinary fit, each bagged family, the whole call) for both calls
and writes ``benchmarks/results/auto_cost.json``. Times are wall seconds on the machine it runs on.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import jax

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import ConvergenceWarning, ParetoKWarning

OUT = Path(__file__).parent / "results" / "auto_cost.json"


def _call(mech, params, key: int) -> tuple[list[dict], Any, list]:
    """One default auto call on LogitQ data simulated with ``key``: rows per stage, the fit, warnings."""
    data = bd.simulate(mech, params, bd.LogitQ(0.3, 3.0, 0.05), 60, 40, key)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("always", ParetoKWarning)
        st = bd.fit(data, mech, "auto", method="nuts", seed=key, progress=False)
    total = time.perf_counter() - t0
    rows = [{"stage": f"fit {n}", "seconds": float(p.info["seconds"])} for n, p in st.posteriors.items()]
    rows += [
        {"stage": f"bagged {n} ({p.info['n_bags']} bags)", "seconds": float(p.info["seconds"])}
        for n, p in st.bagged.items()
    ]
    rows.append({"stage": "whole call (incl. nulls, LOO, stacking)", "seconds": total})
    return rows, st, list(caught)


def main() -> None:
    mech = mechanisms.Tabular((2, 3))
    params = {"table": jax.random.normal(jax.random.key(1), (2, 3, 2))}
    calls = {}
    for name, key in (("first", 0), ("next", 1)):
        rows, st, caught = _call(mech, params, key)
        print(f"-- {name} call (data key {key})")
        for r in rows:
            print(f"{r['stage']:<45} {r['seconds']:8.1f} s")
        print(st.report(0.9))
        calls[name] = {
            "data_key": key,
            "rows": rows,
            "verdict": st.verdict,
            "weights": st.weights,
            "bagged": st.info["bagged"],
            "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught}),
        }
    OUT.write_text(
        json.dumps(
            {
                "command": "python benchmarks/auto_cost.py",
                "data": "2 x 3 Tabular, N(0, 1) payoffs, LogitQ(0.3, 3, 0.05), 60 episodes x 40 steps",
                "cpu_count": os.cpu_count(),
                "calls": calls,
            },
            indent=1,
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
