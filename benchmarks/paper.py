"""Run the DIML paper suite (E1, E2, E3, E7) and write the results table and figure.

Usage (from the repository root)::

    python benchmarks/paper.py --experiments e2 e3 --seeds 0 1 2 \
        --methods diml diml_wrong tabular_mle struct_mle equilibrium joint_bc \
        --out docs/results/results.csv

Rows already in the CSV are skipped. ``--summary-only`` rewrites the table and the figure.
``--workers N`` fits the rows as Dask tasks on N local processes, ``--scheduler ADDRESS`` on a
running Dask cluster (both need ``pip install "bayes-diml[sweep]"``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bayes_diml.studies import experiments as X


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", nargs="+", default=["e1", "e2", "e3", "e7:40x10"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(X.DEFAULT_METHODS))
    p.add_argument("--out", default="docs/results/results.csv")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--summary-only", action="store_true")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="Dask: local worker processes.")
    where.add_argument("--scheduler", default=None, help="Dask: address of a running scheduler.")
    args = p.parse_args(argv)
    out = Path(args.out)
    if not args.summary_only:
        client = None
        if args.scheduler is not None:
            from dask.distributed import Client

            client = Client(args.scheduler)
        try:
            X.run_paper(
                args.experiments,
                args.seeds,
                args.methods,
                out,
                quick=args.quick,
                workers=args.workers,
                client=client,
            )
        finally:
            if client is not None:
                client.close()
    df = X.load_results(out)
    print(X.format_table(X.summarize(df)))
    X.plot_figure1(df, out.with_name("figure1.png"))


if __name__ == "__main__":
    main()
