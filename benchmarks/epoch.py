"""Benchmark: seconds per epoch-equivalent of the paper's experiments, against the reference script.

An epoch-equivalent is one value + gradient of the exact log-likelihood over the training
episodes (80% of the data: 48 x 60 steps for E1 and E2; E7 uses the reference's episodes x
steps for each setting) with respect to the DIML network's parameters (``NeuralJoint`` for
E1 and E2, ``SymmetricCount`` for E7), the learner known. The reference's published seconds
per epoch (its PyTorch script, truncated windows, no GPU): 0.42 (E1), 0.57 (E2), 0.18 (E7
40 x 10) to 0.81 (E7 300 x 40). Ours: median of repeated jitted calls; compile time apart.

E7's count network takes a faster path where a unit's sign is fixed over the call's count
vectors (``SymmetricCount.count_grid``), so its cost depends on the weights: besides the random
init, E7 rows are also timed at the fitted weights of seed 0's ``diml`` and ``diml_constant`` rows
when ``--params-dir`` (default ``docs/results/results_params``) holds them.

Usage: ``python benchmarks/epoch.py [--e7 40x10 300x40] [--out benchmarks/results/epoch.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import jax

import bayes_diml as bd
from bayes_diml import environments
from bayes_diml.mechanisms import NeuralJoint, SymmetricCount

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from likelihood import compile_and_time, environment, load_average  # noqa: E402
from rescore_cfkl import saved_params  # noqa: E402

from bayes_diml.studies import experiments as X  # noqa: E402

DEFAULT_OUT = HERE / "results" / "epoch.json"
DEFAULT_PARAMS = HERE.parent / "docs" / "results" / "results_params"
#: The E7 rows whose fitted weights are timed too (seed 0).
FITTED_METHODS = ("diml", "diml_constant")
#: The reference's seconds per epoch (An & Du (2026), arXiv:2601.17678, the authors' script; the
#: table of docs/paper-reference.md, which tests/test_paper_reference.py compares with this).
PUBLISHED = {"e1": 0.42, "e2": 0.57, "e7 40x10": 0.18, "e7 300x40": 0.81}


def epoch_time(env, repeats: int, params=None) -> dict:
    """Compile and median steady-state seconds of one value+grad over ``env.train``.

    At ``params`` (default: the family's random init, key 7).
    """
    family = (
        SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
        if env.name == "e7"
        else NeuralJoint(env.data.n_actions)
    )
    params = family.init(jax.random.key(7)) if params is None else params
    train = bd.Trajectories(env.train.actions, env.train.n_actions)

    def loss(p):
        return -bd.log_likelihood(family, p, env.learner, train)

    compile_s, times = compile_and_time(loss, params, repeats)
    return {"compile_s": compile_s, "epoch_s": statistics.median(times), "times_s": times}


def fitted_times(env, setting: str, params_dir: Path, repeats: int) -> dict:
    """Median seconds of one value+grad at each saved fitted E7 row of seed 0 (method -> seconds)."""
    out = {}
    family = SymmetricCount(env.mechanism.n_agents, env.mechanism.n_choices)
    for method in FITTED_METHODS:
        path = params_dir / f"e7_{setting}_{method}_seed0.npz"
        if path.exists():
            params = saved_params(family, X.load_params(path))
            out[method] = epoch_time(env, repeats, params)["epoch_s"]
    return out


def main(argv=None) -> None:
    """Run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--e7", nargs="*", default=["40x10", "300x40"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--params-dir", type=Path, default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    cases = [("e1", environments.make("e1", 0)), ("e2", environments.make("e2", 0))]
    for s in args.e7:
        n, k = (int(v) for v in s.split("x"))
        cases.append((f"e7 {s}", environments.make("e7", 0, n=n, K=k)))
    rows = []
    print(
        f"{'experiment':<11} {'train M x T':>12} {'compile s':>9} {'ours s/epoch':>12} "
        f"{'reference':>9} {'speed-up':>8}"
    )
    for name, env in cases:
        load = load_average()
        r = epoch_time(env, args.repeats)
        if env.name == "e7":
            r["epoch_s_fitted"] = fitted_times(env, name.split()[1], args.params_dir, args.repeats)
        ref = PUBLISHED.get(name)
        row = {
            "experiment": name,
            "train_episodes": env.train.n_episodes,
            "steps": env.train.n_steps,
            "n_agents": env.train.n_agents,
            "load_average": load,
            **r,
            "reference_s": ref,
            "speedup": None if ref is None else ref / r["epoch_s"],
        }
        rows.append(row)
        speed = "-" if ref is None else f"{ref / r['epoch_s']:.1f}x"
        print(
            f"{name:<11} {env.train.n_episodes:>5} x {env.train.n_steps:<4} {r['compile_s']:>9.2f} "
            f"{r['epoch_s']:>12.4f} {ref if ref is not None else '-':>9} {speed:>8}",
            flush=True,
        )
        for method, seconds in r.get("epoch_s_fitted", {}).items():
            print(f"{'':<11} {'at ' + method + ' fit':>22} {seconds:>12.4f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "seconds per epoch-equivalent (value+grad over the training episodes)"}
    out.update(published=PUBLISHED, environment=environment(), results=rows)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
