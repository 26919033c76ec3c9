"""How E7's cfkl_params depends on the histogram bins: exact count vectors vs hashed buckets.

Usage (from the repository root; needs the saved E7 (40, 10) fit of that seed and method)::

    python benchmarks/e7_cfkl_bins.py --seed 0 [--method diml]

Simulates 300 episodes x 30 steps under the shifted learner (alpha x 0.6, beta x 1.4, eps x 1.5)
for the true mechanism (two keys), the saved fit of ``--method`` (the same key as the truth, as
``cfkl_params`` does, and another key), an all-zero mechanism and uniformly random play, and
prints KL(true || other) for exact count-vector bins and 64, 256, 1024, 4096 hashed buckets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from rescore_cfkl import saved_params

from bayes_diml import environments, metrics
from bayes_diml.mechanisms import SymmetricCount
from bayes_diml.simulation import simulate_arrays
from bayes_diml.studies import experiments as X


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/results/results.csv")
    p.add_argument("--method", default="diml", help="whose saved fit (a row of --out)")
    args = p.parse_args(argv)
    n, K = 40, 10
    env = environments.make("e7", args.seed, n=n, K=K)
    T = min(50, env.data.n_steps)
    mech = SymmetricCount(n, K)
    path = X.params_path(Path(args.out), ("e7", "40x10", args.method, args.seed))
    fit = saved_params(mech, X.load_params(path))
    zero = jax.tree_util.tree_map(jnp.zeros_like, fit)
    shifted = env.learner.scaled(alpha=0.6, beta=1.4, eps=1.5, eps_cap=0.5)
    k = env.data.n_actions

    def sim(m, prm, key):
        return np.asarray(simulate_arrays(m, prm, shifted, 300, T, jax.random.key(key), k)[0])

    a_true = sim(env.mechanism, env.params, 0)
    others = {
        "true, other key": sim(env.mechanism, env.params, 1),
        f"{args.method} fit, same key": sim(mech, fit, 0),
        f"{args.method} fit, other key": sim(mech, fit, 1),
        "zero mechanism": sim(mech, zero, 0),
        "uniform random play": np.asarray(jax.random.randint(jax.random.key(2), a_true.shape, 0, K)),
    }
    print(f"seed {args.seed}: {a_true.shape[0] * T} simulated steps per histogram")
    for buckets in (None, 64, 256, 1024, 4096):
        h_true = metrics.joint_action_histogram(a_true, k, buckets=buckets)
        kls = {
            name: metrics.kl_divergence(h_true, metrics.joint_action_histogram(a, k, buckets=buckets))
            for name, a in others.items()
        }
        label = "exact" if buckets is None else f"{buckets} buckets"
        print(
            f"{label:13s} ({len(h_true)} bins used): " + ", ".join(f"{n_}: {v:.4f}" for n_, v in kls.items())
        )


if __name__ == "__main__":
    main()
