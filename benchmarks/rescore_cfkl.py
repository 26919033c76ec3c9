"""Recompute ``cfkl_params`` of saved E7 rows with the current settings (hashed count-vector buckets).

Usage (from the repository root)::

    python benchmarks/rescore_cfkl.py --out docs/results/results.csv

For every E7 row of the CSV, rebuilds the fitted ``SymmetricCount`` params from
``<stem>_params/*.npz`` and the true mechanism from ``environments.make``, recomputes
``cfkl_params`` with ``Settings().cfkl_buckets`` buckets and rewrites that column (other columns
unchanged). Prints old and new values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp

from bayes_diml import metrics
from bayes_diml.mechanisms import SymmetricCount, flatten_params
from bayes_diml.studies import experiments as X


def saved_params(mechanism, arrays: dict):
    """The params pytree of ``mechanism`` filled from a saved ``params.<path>`` dict."""
    template = mechanism.init(jax.random.key(0))
    _, treedef = jax.tree_util.tree_flatten(template)
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(arrays[f"params.{n}"]) for n in flatten_params(template)]
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/results/results.csv")
    args = p.parse_args(argv)
    out = Path(args.out)
    settings = X.Settings()
    df = X.load_results(out)
    for idx, row in df[df["experiment"] == "e7"].iterrows():
        if row["method"] not in ("diml", "diml_wrong", "diml_mle", "svi"):
            continue
        env = X.make_environment("e7", str(row["setting"]), int(row["seed"]), settings)
        n, k = env.mechanism.n_agents, env.mechanism.n_choices
        mech = SymmetricCount(n, k)
        path = X.params_path(out, (row["experiment"], str(row["setting"]), row["method"], int(row["seed"])))
        params = saved_params(mech, X.load_params(path))
        new = metrics.cfkl_params(
            env.mechanism,
            env.params,
            mech,
            params,
            env.learner,
            n_episodes=settings.cfkl_episodes,
            T=min(settings.cfkl_T, env.data.n_steps),
            seed=settings.metric_seed,
            n_actions=env.data.n_actions,
            buckets=settings.cfkl_buckets,
        )
        print(
            f"e7 {row['setting']} {row['method']} seed {row['seed']}: "
            f"cfkl {row['cfkl_params']:.4f} -> {new:.4f}"
        )
        df.loc[idx, "cfkl_params"] = new
    df.to_csv(out, index=False)


if __name__ == "__main__":
    main()
