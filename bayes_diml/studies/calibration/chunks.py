"""Running the chunks of a study: on a Dask client or local cluster when there is one, else serially."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm


def _run_chunks(task: Callable, chunks: list, client: Any, workers: int, progress: bool, on_done: Callable):
    """Run ``task(chunk)`` for every chunk: on a Dask client / local cluster, else serially."""
    bar = None
    if progress:
        bar = tqdm(total=sum(len(c) for c in chunks), desc="SBC data sets", unit="fit")
    try:
        own = None
        if client is None and workers > 1:
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                warnings.warn(
                    "Dask is not installed (pip install bayes-diml[sweep]); running serially.", stacklevel=3
                )
            else:
                own = Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True))
                client = own
        if client is not None:
            from dask.distributed import as_completed

            futures = [client.submit(task, c, pure=False) for c in chunks]
            for fut in as_completed(futures):
                rec = fut.result()
                on_done(rec)
                if bar:
                    bar.update(len(rec["idx"]))
            if own is not None:
                own.close()
        else:
            for c in chunks:
                rec = task(c)
                on_done(rec)
                if bar:
                    bar.update(len(rec["idx"]))
    finally:
        if bar:
            bar.close()
