"""Benchmark: the likelihood's Q recursion run sequentially or as a parallel prefix, side by side.

For each game, M, T and precision: value + gradient of ``bayes_diml.log_likelihood`` with
``recurrence="sequential"`` (one ``lax.scan`` step per time step) and ``"associative"``
(``lax.associative_scan``, ``O(log T)`` steps), and the hand-specialised version
(``benchmarks/handwritten.py``, the faster of its variants), timed in interleaved rounds
(``likelihood.interleaved_medians``). ``"auto"`` picks sequential on the CPU and associative
elsewhere; this script shows why on the machine it runs on (docs/gpu.md: an H100 and 2 CPU cores).

Usage: ``python benchmarks/recurrence.py [--episodes 8 60] [--steps 60 200] [--games E2 tab E7]
[--out benchmarks/results/recurrence.json]``. The committed results: ``recurrence.json`` (2 CPU
cores) and ``recurrence_gpu.json`` (an H100, written with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

import bayes_diml as bd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import likelihood as lik  # noqa: E402

DEFAULT_OUT = HERE / "results" / "recurrence.json"
METHODS = ("sequential", "associative")


def _ours(game: dict, data: bd.Trajectories, dtype, method: str):
    """Compiled value + gradient of our likelihood with one recurrence: (call, compile s, value)."""
    mech = game["mech"]
    params = lik._cast(game["params"], dtype)
    lrn = bd.LogitQ(*(jnp.asarray(game["learner"][k], dtype=dtype) for k in ("alpha", "beta", "eps")))
    fresh = bd.Trajectories(data.actions, data.n_actions)

    def loss(p, learner):
        return bd.log_likelihood(mech, p, learner, fresh, recurrence=method)

    return lik._compile(jax.value_and_grad(loss, argnums=(0, 1)), params, lrn)


def run_case(name: str, game: dict, M: int, T: int, rounds: int) -> list[dict]:
    data = bd.simulate(game["mech"], game["params"], bd.LogitQ(**game["learner"]), M, T, jax.random.key(2))
    rows = []
    for dtype_name, dtype in (("float32", jnp.float32), ("float64", jnp.float64)):
        with jax.enable_x64(dtype_name == "float64"):
            ours = {m: _ours(game, data, dtype, m) for m in METHODS}
            hand = lik._hand(game, data, dtype)
            fns = {**{m: v[0] for m, v in ours.items()}, **{f"hand {k}": v[0] for k, v in hand.items()}}
            med = lik.interleaved_medians(fns, rounds)
        best = min((k for k in fns if k.startswith("hand")), key=med.get)
        row = {"game": name, "M": M, "T": T, "dtype": dtype_name, "hand_ms": 1e3 * med[best]}
        for m in METHODS:
            row.update({
                f"{m}_ms": 1e3 * med[m],
                f"{m}_over_hand": med[m] / med[best],
                f"{m}_compile_s": ours[m][1],
                f"{m}_log_likelihood": ours[m][2],
            })  # fmt: skip
        row["associative_over_sequential"] = med["associative"] / med["sequential"]
        rows.append(row)
        print(
            f"{name:20s} {M:4d} {T:5d} {dtype_name:8s} seq {row['sequential_ms']:8.3f} ms  assoc "
            f"{row['associative_ms']:8.3f} ms  hand {row['hand_ms']:8.3f} ms  seq/hand "
            f"{row['sequential_over_hand']:5.2f}  assoc/hand {row['associative_over_hand']:5.2f}  "
            f"compile {row['sequential_compile_s']:.1f}/{row['associative_compile_s']:.1f} s",
            flush=True,
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--episodes", type=int, nargs="+", default=[8, 60])
    parser.add_argument("--steps", type=int, nargs="+", default=[60, 200])
    parser.add_argument("--games", nargs="+", default=None, help="subset of game names (prefix match)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    games = lik._games()
    if args.games:
        games = {k: v for k, v in games.items() if any(k.startswith(p) for p in args.games)}
    rows = []
    for name, game in games.items():
        for M in args.episodes:
            if M > game.get("max_episodes", M):
                continue
            for T in args.steps:
                rows.extend(run_case(name, game, M, T, args.rounds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": lik.environment(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
