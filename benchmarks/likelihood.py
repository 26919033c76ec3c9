"""Benchmark: the exact likelihood (value + gradient, jitted) against the literal loop of eq. (5).

Games (M = 8 episodes of T = 200 steps, simulated with the DIML learner alpha = 0.25,
beta = 3, eps = 0.06):

- ``E2``: congestion, 4 agents x 5 routes (``Congestion(4, 5)``, the reference's truth);
- ``tabular-3x4``: a free payoff table, 2 agents with 3 and 4 actions (``Tabular((3, 4))``).

For ``bayes_diml.log_likelihood`` we time ``jax.jit(jax.value_and_grad(...))`` with respect to
the mechanism params and the learner (alpha, beta, eps): the compile time (trace, plan,
lowering and XLA compile, once) separately from the steady-state time (median of repeats).
The literal loop (``tests/reference.py``: one Python iteration per episode, step, agent and own
action, float64 NumPy, payoffs read from a precomputed float64 table) has no gradient: only its
value is timed. float64 runs inside ``jax.enable_x64(True)``.

Usage: ``python benchmarks/likelihood.py [--out benchmarks/results/likelihood.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms as mm
from bayes_diml.mechanisms.base import joint_profiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import reference_log_likelihood, table_payoff_fn  # noqa: E402

LEARNER = {"alpha": 0.25, "beta": 3.0, "eps": 0.06}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "likelihood.json"


def _games() -> dict[str, tuple[object, dict]]:
    """Game name -> (mechanism, float32 params)."""
    e2 = mm.Congestion(4, 5)
    tab = mm.Tabular((3, 4))
    return {
        "E2 congestion 4x5": (e2, e2.init(jax.random.key(0))),
        "tabular 2 agents (3, 4)": (tab, tab.init(jax.random.key(1))),
    }


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench_fast(mech, params, actions, n_actions, dtype, repeats: int) -> dict:
    """Compile and steady-state times of the jitted value and gradient, and the value."""
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=dtype), params)
    learner = bd.LogitQ(*(jnp.asarray(LEARNER[k], dtype=dtype) for k in ("alpha", "beta", "eps")))
    data = bd.Trajectories(actions, n_actions)  # fresh: the plan is built during tracing

    def loss(p, lrn):
        return bd.log_likelihood(mech, p, lrn, data)

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    start = time.perf_counter()
    compiled = value_and_grad.lower(params, learner).compile()
    compile_s = time.perf_counter() - start
    value, _ = jax.block_until_ready(compiled(params, learner))  # warm-up run
    steady_s = _median_time(lambda: jax.block_until_ready(compiled(params, learner)), repeats)
    return {"compile_s": compile_s, "steady_s": steady_s, "value": float(value)}


def _bench_loop(mech, params, actions, n_actions, repeats: int) -> dict:
    """Value-only time of the literal float64 loop (payoffs from a precomputed table)."""
    with jax.enable_x64(True):
        params64 = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x, np.float64)), params)
        profiles = jnp.asarray(joint_profiles(n_actions))
        table = np.asarray(mech.payoffs(params64, profiles), dtype=np.float64).reshape(
            *n_actions, len(n_actions)
        )
    payoff = table_payoff_fn(table)
    args = (payoff, actions, n_actions, LEARNER["alpha"], LEARNER["beta"], LEARNER["eps"])
    value = reference_log_likelihood(*args)
    return {"steady_s": _median_time(lambda: reference_log_likelihood(*args), repeats), "value": value}


def run(n_episodes: int, n_steps: int, repeats: int, loop_repeats: int) -> dict:
    """Run every game in float32 and float64; returns the JSON-ready results."""
    rows = []
    learner = bd.LogitQ(**LEARNER)
    for game, (mech, params) in _games().items():
        data = bd.simulate(mech, params, learner, n_episodes, n_steps, jax.random.key(2))
        actions, n_actions = data.actions, data.n_actions
        loop = _bench_loop(mech, params, actions, n_actions, loop_repeats)
        for dtype_name in ("float32", "float64"):
            if dtype_name == "float64":
                with jax.enable_x64(True):
                    fast = _bench_fast(mech, params, actions, n_actions, jnp.float64, repeats)
            else:
                fast = _bench_fast(mech, params, actions, n_actions, jnp.float32, repeats)
            rows.append(
                {
                    "game": game,
                    "dtype": dtype_name,
                    "compile_s": fast["compile_s"],
                    "value_and_grad_ms": 1e3 * fast["steady_s"],
                    "literal_loop_value_only_ms": 1e3 * loop["steady_s"],
                    "speedup": loop["steady_s"] / fast["steady_s"],
                    "log_likelihood": fast["value"],
                    "literal_loop_log_likelihood": loop["value"],
                    "relative_difference": abs(fast["value"] - loop["value"]) / abs(loop["value"]),
                }
            )
    return {
        "benchmark": "log_likelihood value+grad (jit) vs literal loop (value only)",
        "settings": {
            "n_episodes": n_episodes,
            "n_steps": n_steps,
            "learner": LEARNER,
            "repeats": repeats,
            "loop_repeats": loop_repeats,
            "gradient_wrt": "mechanism params and learner (alpha, beta, eps)",
            "literal_loop": (
                "tests/reference.py, float64 NumPy, payoffs from a precomputed table, no gradient"
            ),
        },
        "environment": {
            "jax": jax.__version__,
            "numpy": np.__version__,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": rows,
    }


def format_table(results: dict) -> str:
    """A plain-text table of the results."""
    head = (
        f"{'game':<25} {'dtype':<8} {'compile s':>9} {'value+grad ms':>14} "
        f"{'loop (value only) ms':>21} {'speedup':>8} {'rel. diff':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in results["results"]:
        lines.append(
            f"{r['game']:<25} {r['dtype']:<8} {r['compile_s']:>9.2f} {r['value_and_grad_ms']:>14.3f} "
            f"{r['literal_loop_value_only_ms']:>21.1f} {r['speedup']:>7.0f}x {r['relative_difference']:>9.1e}"
        )
    s = results["settings"]
    lines.append(
        f"M = {s['n_episodes']} episodes, T = {s['n_steps']} steps; median of {s['repeats']} (jit) / "
        f"{s['loop_repeats']} (loop) runs. The literal loop has no gradient: its time is the value only."
    )
    return "\n".join(lines)


def main(argv=None) -> None:
    """Parse arguments, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--n-episodes", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20, help="steady-state repeats of the jitted call")
    parser.add_argument("--loop-repeats", type=int, default=3, help="repeats of the literal loop")
    args = parser.parse_args(argv)
    results = run(args.n_episodes, args.n_steps, args.repeats, args.loop_repeats)
    print(format_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
