"""Benchmark: NUTS effective samples per second, ours (NumPyro and BlackJAX NUTS) against PyMC, same model.

The model is the gauge-free tabular model (``bayes_diml.models.logit_q_model`` with a
``Tabular`` mechanism; in PyMC: ``benchmarks/pymc_model.tabular_model``): centred payoffs with
an isotropic N(0, 1) prior in the sum-to-zero subspace, alpha ~ Beta(2, 4), eps ~ Beta(1, 15),
beta fixed at its true value (so that every reported quantity is identified). Data: a 3 x 4
two-player game (``Tabular((3, 4)).init(key(1))``), learner alpha = 0.25, beta = 3,
eps = 0.06, simulated episodes.

For each sampler: wall time of the whole call (compilation, ours' MAP start, warm-up and
sampling), the bulk ESS of every identified quantity (the 12 x 2 centred payoffs, alpha,
eps), ESS/s of the slowest one, and the agreement of the two posteriors: for each quantity
``z = (mean_ours - mean_pymc) / sqrt(mcse_ours^2 + mcse_pymc^2)`` with ``mcse = sd / sqrt(ess)``.

Usage: ``python benchmarks/nuts.py [--episodes 20 --steps 40 --warmup 500 --draws 500]``. The JSON at
``--out`` (default ``benchmarks/results/nuts.json``) collects runs by name: ``{"benchmark": ...,
"runs": {name: result}}``; a run replaces the entry of its ``--run`` name (default ``seed<S>``) and
keeps the others, so a cold run and several warm seeds of one configuration share one file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms as mm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pymc_model  # noqa: E402
from likelihood import environment, load_average  # noqa: E402

DEFAULT_OUT = HERE / "results" / "nuts.json"
TRUE_LEARNER = {"alpha": 0.25, "beta": 3.0, "eps": 0.06}
QUANTITIES = ("centred_payoffs", "alpha", "eps")


def _draws(posterior) -> dict[str, np.ndarray]:
    """{name: float[chain, draw, -1]} of the identified quantities."""
    out = {}
    for name in QUANTITIES:
        x = np.asarray(posterior[name], dtype=float)
        out[name] = x.reshape(x.shape[0], x.shape[1], -1)
    return out


def _ess_mean_sd(draws: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    import arviz as az
    import xarray as xr

    out = {}
    for name, x in draws.items():
        da = xr.DataArray(x, dims=("chain", "draw", "cell"))
        out[name] = {
            "ess": np.asarray(az.ess(da, method="bulk")),
            "mean": x.mean(axis=(0, 1)),
            "sd": x.std(axis=(0, 1)),
        }
    return out


def run_ours(
    data,
    mech,
    warmup: int,
    draws: int,
    chains: int,
    seed: int,
    chain_method: str = "sequential",
    backend: str = "numpyro",
    target_accept: float = 0.8,
    dense_mass: bool | str = "auto",
) -> dict:
    """Our NUTS through ``bd.fit`` (``backend``: NumPyro's or BlackJAX's NUTS); timings and draws."""
    learner = bd.LogitQ("infer", TRUE_LEARNER["beta"], "infer")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bd.fit(
            data,
            mech,
            learner=learner,
            method="nuts",
            seed=seed,
            progress=False,
            log_likelihood=False,
            num_warmup=warmup,
            num_samples=draws,
            num_chains=chains,
            chain_method=chain_method,
            backend=backend,
            target_accept=target_accept,
            dense_mass=dense_mass,
        )
    wall = time.perf_counter() - start
    compile_s = float(post.info.get("compile_seconds", 0.0))  # BlackJAX: compiled before sampling
    return {
        "wall_s": wall,
        # like PyMC's sampling_time, without compilation where it is separate (BlackJAX)
        "sampling_s": float(post.info.get("sampling_seconds", float("nan"))) - compile_s,
        "compile_s": compile_s if "compile_seconds" in post.info else None,
        "map_s": float(post.info.get("map_seconds", 0.0)),
        "divergences": int(post.info.get("divergences", 0)),
        "mean_leapfrog_steps": float(post.info.get("mean_leapfrog_steps", float("nan"))),
        "dense_mass": bool(post.info["dense_mass"]),
        "mean_acceptance": float(np.asarray(post.idata["sample_stats"]["acceptance_rate"]).mean()),
        "draws": _draws(post.idata["posterior"]),
    }


def run_pymc(
    data,
    mech,
    warmup: int,
    draws: int,
    chains: int,
    seed: int,
    cores: int = 1,
    target_accept: float = 0.8,
    init: str = "jitter+adapt_diag",
) -> dict:
    """PyMC's NUTS on the same model (``cores=1``: chains one after another on one core).

    ``init``: PyMC's initialisation and mass-matrix adaptation (``"jitter+adapt_diag"``, its
    default, or ``"jitter+adapt_full"``: a dense mass matrix).
    """
    import pymc as pm

    start = time.perf_counter()
    model = pymc_model.tabular_model(mech, data, beta=TRUE_LEARNER["beta"])
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = pm.sample(
            init=init,
            target_accept=target_accept,
            draws=draws,
            tune=warmup,
            chains=chains,
            cores=cores,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
    wall = time.perf_counter() - start
    stats = idata["sample_stats"]
    return {
        "wall_s": wall,
        "sampling_s": float(idata["posterior"].attrs.get("sampling_time", float("nan"))),
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "mean_leapfrog_steps": float(np.asarray(stats["n_steps"]).mean()),
        "mean_acceptance": float(np.asarray(stats["acceptance_rate"]).mean()),
        "step_size": np.asarray(stats["step_size"]).mean(axis=1).tolist(),
        "draws": _draws(idata["posterior"]),
    }


def summarise(name: str, res: dict) -> dict:
    """ESS of every quantity, the slowest, and ESS per second."""
    stats = _ess_mean_sd(res["draws"])
    slowest = min((float(s["ess"].min()), q) for q, s in stats.items())
    return {
        "sampler": name,
        "wall_s": res["wall_s"],
        "sampling_s": res["sampling_s"],
        "compile_s": res.get("compile_s"),
        "divergences": res["divergences"],
        "mean_leapfrog_steps": res["mean_leapfrog_steps"],
        "dense_mass": res.get("dense_mass"),
        "mean_acceptance": res.get("mean_acceptance"),
        "step_size": res.get("step_size"),
        "min_bulk_ess": slowest[0],
        "slowest_quantity": slowest[1],
        "ess_per_s_wall": slowest[0] / res["wall_s"],
        "ess_per_s_sampling": slowest[0] / res["sampling_s"],
        "stats": {q: {k: v.tolist() for k, v in s.items()} for q, s in stats.items()},
    }


def agreement(a: dict, b: dict) -> dict:
    """Largest |z| of the difference of posterior means, in units of its Monte Carlo error."""
    zs = {}
    for q in QUANTITIES:
        sa, sb = a["stats"][q], b["stats"][q]
        mcse = np.sqrt(
            (np.asarray(sa["sd"]) ** 2 / np.asarray(sa["ess"]))
            + (np.asarray(sb["sd"]) ** 2 / np.asarray(sb["ess"]))
        )
        zs[q] = float(np.max(np.abs(np.asarray(sa["mean"]) - np.asarray(sb["mean"])) / mcse))
    return {"max_abs_z": zs, "n_compared": int(sum(np.size(a["stats"][q]["mean"]) for q in QUANTITIES))}


def main(argv=None) -> None:
    """Run both samplers, print the comparison and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", default=None, help="this run's name in the --out file (default: seed<S>)")
    parser.add_argument(
        "--chain-method",
        default="sequential",
        choices=["sequential", "vectorized"],
        help="ours: chains one after another, or vectorised in lockstep in one call",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["numpyro", "blackjax"],
        choices=["numpyro", "blackjax"],
        help="our NUTS implementations to run (NUTSConfig.backend)",
    )
    parser.add_argument("--pymc-chains", type=int, default=None, help="PyMC's chains (default: --chains)")
    parser.add_argument("--pymc-cores", type=int, default=1, help="PyMC's worker processes")
    parser.add_argument(
        "--target-accept", type=float, default=0.8, help="target acceptance of both samplers (PyMC's default)"
    )
    parser.add_argument(
        "--compilation-cache",
        type=Path,
        default=None,
        help="JAX persistent compilation cache directory (PyMC always reuses its compiled C "
        "code); run twice with the same directory to measure a warm cache",
    )
    parser.add_argument(
        "--mass",
        choices=["auto", "dense", "diag"],
        default="auto",
        help="our mass matrix: NUTSConfig.dense_mass 'auto' (the package default: dense for "
        "this game's 19 parameters when warm-up >= 190), True or False; PyMC adapts the same "
        "kind (jitter+adapt_full or jitter+adapt_diag) unless --pymc-init",
    )
    parser.add_argument("--dense-mass", action="store_true", help="same as --mass dense")
    parser.add_argument(
        "--pymc-init",
        default=None,
        help="PyMC's init (default: the kind of mass matrix ours used, see --mass)",
    )
    args = parser.parse_args(argv)
    if args.dense_mass:
        args.mass = "dense"
    dense_mass = {"auto": "auto", "dense": True, "diag": False}[args.mass]
    if args.compilation_cache is not None:
        bd.enable_compilation_cache(args.compilation_cache)  # every program, however small
    if not pymc_model.available():
        print(f"PyMC not available ({pymc_model.import_error()}); install the bench extra. Skipping.")
        return
    mech = mm.Tabular((3, 4))
    truth = mech.init(jax.random.key(1))
    data = bd.simulate(mech, truth, bd.LogitQ(**TRUE_LEARNER), args.episodes, args.steps, jax.random.key(2))
    loads = [load_average()]
    ours_all = {}
    for backend in args.backends:
        jax.clear_caches()  # no backend reuses programs (the MAP's) that another compiled in this process
        ours_all[backend] = summarise(
            f"ours ({'NumPyro' if backend == 'numpyro' else 'BlackJAX'} NUTS)",
            run_ours(
                data,
                mech,
                args.warmup,
                args.draws,
                args.chains,
                args.seed,
                args.chain_method,
                backend,
                args.target_accept,
                dense_mass,
            ),
        )
        loads.append(load_average())
    if args.pymc_init is None:  # the kind of mass matrix ours resolved to
        dense = any(r["dense_mass"] for r in ours_all.values())
        args.pymc_init = "jitter+adapt_full" if dense else "jitter+adapt_diag"
    pymc = summarise(
        "PyMC NUTS",
        run_pymc(
            data,
            mech,
            args.warmup,
            args.draws,
            args.pymc_chains or args.chains,
            args.seed,
            args.pymc_cores,
            args.target_accept,
            args.pymc_init,
        ),
    )
    loads.append(load_average())
    head = (
        f"{'sampler':<22} {'wall s':>8} {'sampl. s':>8} {'min ESS':>8} {'slowest':>16} "
        f"{'ESS/s':>8} {'ESS/s smp':>9} {'leapfrog':>8} {'div':>4}"
    )
    print(head)
    for r in (*ours_all.values(), pymc):
        print(
            f"{r['sampler']:<22} {r['wall_s']:>8.1f} {r['sampling_s']:>8.1f} {r['min_bulk_ess']:>8.0f} "
            f"{r['slowest_quantity']:>16} {r['ess_per_s_wall']:>8.1f} {r['ess_per_s_sampling']:>9.1f} "
            f"{r['mean_leapfrog_steps']:>8.1f} {r['divergences']:>4}"
        )
    ratios = {}
    for backend, ours in ours_all.items():
        ratio = ours["ess_per_s_wall"] / pymc["ess_per_s_wall"]
        ratio_s = ours["ess_per_s_sampling"] / pymc["ess_per_s_sampling"]
        agree = agreement(ours, pymc)
        ratios[backend] = {"wall": ratio, "sampling": ratio_s, "agreement": agree}
        print(f"{backend}: ours / PyMC ESS/s {ratio:.2f} (whole call), {ratio_s:.2f} (sampling only)")
        print(f"  posterior agreement, max |z| of mean differences per quantity: {agree['max_abs_z']}")
    first = next(iter(ours_all))
    print(
        "mean acceptance: "
        + ", ".join(f"{r['sampler']} {r['mean_acceptance']:.3f}" for r in (*ours_all.values(), pymc))
    )
    print(
        f"mass matrix: ours dense={[r['dense_mass'] for r in ours_all.values()]}, PyMC init={args.pymc_init}"
    )
    ours, ratio, ratio_s, agree = (
        ours_all[first],
        ratios[first]["wall"],
        ratios[first]["sampling"],
        ratios[first]["agreement"],
    )
    results = {
        "settings": {
            **vars(args),
            "out": args.out.name,
            # whether JAX's persistent cache was on (its directory is machine-specific)
            "compilation_cache": args.compilation_cache is not None,
            "game": "Tabular((3, 4))",
            "learner": TRUE_LEARNER,
        },
        "load_average": loads,
        "environment": environment(),
        "ours": ours,
        "pymc": pymc,
        "ours_over_pymc_ess_per_s": ratio,
        "ours_over_pymc_ess_per_s_sampling": ratio_s,
        "agreement": agree,
        "by_backend": {b: {"ours": ours_all[b], **ratios[b]} for b in ours_all},
    }
    _save_run(args.out, args.run or f"seed{args.seed}", results)
    print(f"wrote run {args.run or f'seed{args.seed}'!r} to {args.out}")


def _save_run(path: Path, name: str, result: dict) -> None:
    """Write ``result`` as run ``name`` of the collection at ``path``, keeping its other runs."""
    runs = {}
    if path.exists():
        old = json.loads(path.read_text())
        if "runs" not in old:
            raise ValueError(f"{path} holds no 'runs' collection; pass another --out")
        runs = old["runs"]
    runs[name] = result
    out = {"benchmark": "NUTS bulk ESS/s of the slowest identified quantity, ours vs PyMC", "runs": runs}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
