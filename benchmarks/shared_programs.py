"""Fits of equal shapes share their compiled programs: the first fit against the next ones.

Usage (from the repository root)::

    python benchmarks/shared_programs.py              # 2 x 3 game, 20 episodes x 30 steps
    python benchmarks/shared_programs.py --fits 5

For each method (MAP, Laplace, NUTS with 2 x (200 + 200)) fits ``--fits`` data sets of the same
shapes (LogitQ data, seeds 0..) in one process and prints the wall seconds of each fit and the
seconds JAX spent compiling during it (``jax.monitoring``). The first fit compiles the model's
programs; the next ones reuse them (``ModelSpec.model()`` is a pytree whose leaves are the data:
``inference/programs.py``). Writes ``benchmarks/results/shared_programs.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
import warnings
from pathlib import Path

import jax
import jax.monitoring
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms

OUT = Path(__file__).parent / "results" / "shared_programs.json"
_COMPILE_EVENTS = (
    "/jax/core/compile/backend_compile_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=4, help="data sets per method")
    args = parser.parse_args()
    seconds: collections.Counter = collections.Counter()

    def listen(name: str, secs: float, **_: object) -> None:
        if name in _COMPILE_EVENTS:
            seconds["compile"] += secs

    jax.monitoring.register_event_duration_secs_listener(listen)
    mech = mechanisms.Tabular((2, 3))
    table = np.asarray(mech.init(jax.random.key(1))["table"])
    truth, learner = bd.LogitQ(0.3, 2.0, 0.05), bd.LogitQ("infer", 1.0, "infer")
    methods = {"map": {}, "laplace": {}, "nuts": {"num_warmup": 200, "num_samples": 200, "num_chains": 2}}
    rows = []
    print(f"{'method':8} {'fit':>3} {'seconds':>8} {'compile s':>9}")
    for method, options in methods.items():
        for seed in range(args.fits):
            data = bd.simulate(mech, {"table": table}, truth, n_episodes=20, T=30, key=seed)
            seconds.clear()
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short NUTS runs may warn on R-hat
                bd.fit(data, mech, learner, method=method, seed=seed, progress=False, **options)
            row = {"method": method, "fit": seed, "seconds": time.perf_counter() - t0}
            row["compile_seconds"] = seconds["compile"]
            rows.append(row)
            print(f"{method:8} {seed:>3} {row['seconds']:>8.2f} {row['compile_seconds']:>9.2f}")
    out = {
        "setting": "2 x 3 game, LogitQ(0.3, 2, 0.05) data, 20 episodes x 30 steps; fit alpha, eps (beta 1)",
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "rows": rows,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
