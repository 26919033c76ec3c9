"""Scale benchmarks: many agents (E7), long horizons, many episodes.

Each measurement runs in its own subprocess, so that its peak resident memory
(``resource.getrusage(...).ru_maxrss``) belongs to it alone; each row also records the device
(platform, kind, JAX version), on a GPU its peak memory (``gpu_peak_mib``), and the
subprocess's wall time. Results are printed as a table and merged into
``benchmarks/results/scale.json`` (``--out``; one key per section; the GPU figures of
docs/gpu.md are in ``scale_gpu.json``).

Usage::

    python benchmarks/scale.py agents   [--sizes 300,1000,3000] [--K 50] [--M 4] [--T 20] [--steps 200]
    python benchmarks/scale.py horizon  [--T 10000] [--M 2] [--segment 0] [--repeats 0]
    python benchmarks/scale.py episodes [--M 10000] [--batch 100] [--steps 500]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "scale.json"


def _peak_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _device_info() -> dict:
    """The device measured on; its peak memory where JAX reports one (GPUs; None on the CPU)."""
    import jax

    d = jax.devices()[0]
    info = {"platform": d.platform, "device_kind": d.device_kind, "jax_version": jax.__version__}
    stats = d.memory_stats()
    if stats:
        info["gpu_peak_mib"] = stats.get("peak_bytes_in_use", 0) / 2**20
    return info


# ------------------------------------------------------------------ one measurement
def one_agents(n: int, K: int, M: int, T: int, steps: int, seed: int) -> dict:
    """Simulate E7 with n agents and K actions, plan it and fit the network by MAP (Adam)."""
    import numpy as np

    import bayes_diml as bd
    from bayes_diml.counterfactual import plan_for

    t0 = time.perf_counter()
    env = bd.environments.make("e7", seed, n=n, K=K, n_episodes=M, T=T)
    t_sim = time.perf_counter() - t0
    data = env.data
    t0 = time.perf_counter()
    plan = plan_for(env.mechanism, data)
    t_plan = time.perf_counter() - t0
    counts = np.stack([np.bincount(row, minlength=K) for row in data.actions[:, :-1].reshape(-1, n)])
    n_count_vectors = len(np.unique(counts, axis=0))
    t0 = time.perf_counter()
    post = bd.fit(
        data,
        env.mechanism,
        learner=env.learner,
        method="map",
        seed=seed,
        progress=False,
        log_likelihood=False,
        num_steps=steps,
        num_restarts=1,
        chunk=min(50, steps),
        learning_rate=0.003,
    )
    t_fit = time.perf_counter() - t0
    trace = post.info.get("restart_log_joints", [float("nan")])
    return {
        "n": n,
        "K": K,
        "M": M,
        "T": T,
        "adam_steps": steps,
        "simulate_seconds": t_sim,
        "plan_seconds": t_plan,
        "fit_seconds": t_fit,
        "seconds_per_adam_step": t_fit / steps,
        "distinct_count_vectors": int(n_count_vectors),
        "distinct_pairs": int(plan.points.shape[0]),
        "mechanism_evaluations": plan.n_evaluations,
        "naive_evaluations": int(M * (T - 1) * n * K),
        "map_log_joint": float(trace[0]),
        "peak_rss_mib": _peak_mib(),
    }


def one_horizon(T: int, M: int, segment: int | None, seed: int, repeats: int = 0) -> dict:
    """Value and gradient of the E2 log-likelihood over T steps, with or without segments;
    ``repeats`` further timed calls add their times and median."""
    import jax

    import bayes_diml as bd
    from bayes_diml.learners import LogitQ

    env = bd.environments.make("e2", seed, n_episodes=M, T=T)
    data, mech = env.data, env.mechanism

    def loss(params, beta):
        lq = LogitQ(0.25, beta, 0.06)
        return bd.log_likelihood(mech, params, lq, data, segment_length=segment)

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    t0 = time.perf_counter()
    v, _ = jax.block_until_ready(f(env.params, 3.0))
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(f(env.params, 3.0))
    t_run = time.perf_counter() - t0
    out = {
        "T": T,
        "M": M,
        "segment_length": segment,
        "value": float(v),
        "first_call_seconds": t_first,
        "value_and_grad_seconds": t_run,
        "peak_rss_mib": _peak_mib(),
    }
    if repeats:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(f(env.params, 3.0))
            times.append(time.perf_counter() - t0)
        out["value_and_grad_repeat_seconds"] = times
        out[f"value_and_grad_median{repeats}_seconds"] = float(statistics.median(times))
    return out


def one_episodes(M: int, T: int, batch: int | None, steps: int, seed: int) -> dict:
    """SVI on a 3 x 3 tabular game with M episodes, full batch or minibatches of episodes."""
    import jax
    import numpy as np

    import bayes_diml as bd
    from bayes_diml import mechanisms

    mech = mechanisms.Tabular((3, 3))
    truth = mech.init(jax.random.key(seed))
    learner = bd.LogitQ(0.3, 2.0, 0.05)
    data = bd.simulate(mech, truth, learner, n_episodes=M, T=T, key=seed + 1)
    t0 = time.perf_counter()
    post = bd.fit(
        data,
        mech,
        learner=learner,
        method="svi",
        seed=seed,
        progress=False,
        log_likelihood=False,
        init="prior",
        num_steps=steps,
        num_draws=200,
        learning_rate=0.02,
        batch_size=batch,
    )
    t_fit = time.perf_counter() - t0
    est = np.asarray(post.idata["posterior"]["centred_payoffs"]).mean(axis=(0, 1))
    true = np.asarray(bd.metrics.payoff_differences(mech, truth, n_actions=mech.n_actions))
    return {
        "M": M,
        "T": T,
        "batch_size": batch,
        "svi_steps": steps,
        "fit_seconds": t_fit,
        "svi_seconds": float(post.info["svi_seconds"]),
        "payoff_rmse": float(np.sqrt(np.mean((est - true) ** 2))),
        "peak_rss_mib": _peak_mib(),
    }


# ------------------------------------------------------------------ driver
def _run_child(kind: str, kwargs: dict) -> dict:
    cmd = [sys.executable, __file__, "_child", kind, json.dumps(kwargs)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        err = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
        return {**kwargs, "error": err, "subprocess_seconds": wall}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "subprocess_seconds": wall}


def _save(path: Path, section: str, rows: list[dict], settings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old[section] = {"settings": settings, "rows": rows, "cpu_count": os.cpu_count()}
    path.write_text(json.dumps(old, indent=2) + "\n")


def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = [" | ".join(cols)]
    lines += [" | ".join(fmt(r.get(c, "")) for c in cols) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        kind, kwargs = argv[1], json.loads(argv[2])
        fn = {"agents": one_agents, "horizon": one_horizon, "episodes": one_episodes}[kind]
        print(json.dumps({**fn(**kwargs), **_device_info()}))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=["agents", "horizon", "episodes"])
    p.add_argument("--sizes", default="300,1000,3000")
    p.add_argument("--K", type=int, default=50)
    p.add_argument("--M", type=int, default=None)
    p.add_argument("--T", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--segment", type=int, default=0, help="horizon: segment length (0 = automatic)")
    p.add_argument("--repeats", type=int, default=0, help="horizon: further timed calls (their median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON (merged by section)")
    a = p.parse_args(argv)
    if a.section == "agents":
        M, T, steps = a.M or 4, a.T or 20, a.steps or 200
        settings = {"K": a.K, "M": M, "T": T, "adam_steps": steps}
        rows = []
        for n in a.sizes.split(","):  # saved after each size: the largest may take long
            kw = {"n": int(n), "K": a.K, "M": M, "T": T, "steps": steps, "seed": a.seed}
            rows.append(_run_child("agents", kw))
            _save(a.out, a.section, rows, settings)
        cols = ["n", "K", "distinct_count_vectors", "distinct_pairs", "mechanism_evaluations"]
        cols += ["naive_evaluations", "simulate_seconds", "plan_seconds", "fit_seconds", "peak_rss_mib"]
    elif a.section == "horizon":
        T, M = a.T or 10_000, a.M or 2
        rows = [
            _run_child("horizon", {"T": T, "M": M, "segment": seg, "seed": a.seed, "repeats": a.repeats})
            for seg in (0, a.segment or None)
        ]
        cols = ["T", "M", "segment_length", "value", "first_call_seconds", "value_and_grad_seconds"]
        cols += [f"value_and_grad_median{a.repeats}_seconds"] if a.repeats else []
        cols += ["peak_rss_mib"]
        note = "segment_length 0 = one plain scan; None = automatic (ceil sqrt(T-1))"
        settings = {"T": T, "M": M, "note": note}
    else:
        M, T, steps = a.M or 10_000, a.T or 20, a.steps or 500
        rows = [
            _run_child("episodes", {"M": M, "T": T, "batch": b, "steps": steps, "seed": a.seed})
            for b in (a.batch, None)
        ]
        cols = ["M", "T", "batch_size", "svi_steps", "svi_seconds", "fit_seconds", "payoff_rmse"]
        cols += ["peak_rss_mib"]
        settings = {"M": M, "T": T, "svi_steps": steps}
    print(_table(rows, cols))
    _save(a.out, f"horizon_M{settings['M']}" if a.section == "horizon" else a.section, rows, settings)


if __name__ == "__main__":
    main()
