"""The SBC and misspecification study of docs/calibration.md.

Usage: ``python benchmarks/calibration.py QUEUE [N_MAX]`` with QUEUE ``nuts``, ``nuts3x3``,
``svi`` or ``misspec`` (N_MAX caps the data sets per run; a later, larger run resumes), or
``report`` (markdown tables of every run found). Every run writes ``docs/calibration/<name>.json``
(+ ``.partial.jsonl`` while running) and ``<name>.png``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bayes_diml import mechanisms
from bayes_diml.models import Priors
from bayes_diml.studies import calibration

OUT = Path(__file__).resolve().parent.parent / "docs" / "calibration"
NUTS = {"num_warmup": 200, "num_samples": 300, "num_chains": 1, "max_tree_depth": 7}
NUTS_LIGHT = {"num_warmup": 150, "num_samples": 200, "num_chains": 1, "max_tree_depth": 6}
SVI = {"num_steps": 2000, "num_draws": 1000}

RUNS = {
    "nuts": [
        ("nuts_2x2_inferred", (2, 2), "nuts", None, False, "logit_q", 100, NUTS),
        ("nuts_2x2_payoffs", (2, 2), "nuts", None, True, "logit_q", 100, NUTS),
    ],
    "nuts3x3": [
        ("nuts_3x3_inferred", (3, 3), "nuts", None, False, "logit_q", 100, NUTS),
        ("nuts_3x3_payoffs", (3, 3), "nuts", None, True, "logit_q", 100, NUTS),
    ],
    "svi": [
        ("svi_2x2_inferred", (2, 2), "svi", None, False, "logit_q", 100, SVI),
        ("svi_lowrank_2x2_inferred", (2, 2), "svi_lowrank", None, False, "logit_q", 100, {**SVI, "rank": 2}),
    ],
    "misspec": [
        ("misspec_banditq_2x2_beta3", (2, 2), "nuts", {"beta": 3.0}, False, "bandit_q", 50, NUTS_LIGHT),
        ("misspec_hedge_2x2_beta3", (2, 2), "nuts", {"beta": 3.0}, False, "hedge", 50, NUTS_LIGHT),
        ("misspec_logitq_2x2_beta3", (2, 2), "nuts", {"beta": 3.0}, False, "logit_q", 50, NUTS_LIGHT),
    ],
}


def main(queue: str, n_max: int | None = None) -> None:
    """Run a queue; ``n_max`` caps every run's number of data sets (a later larger run resumes)."""
    OUT.mkdir(parents=True, exist_ok=True)
    for name, game, method, learner, payoffs, simulator, n, opts in RUNS[queue]:
        n = min(n, n_max or n)
        t0 = time.time()
        res = calibration.sbc(
            mechanisms.Tabular(game),
            Priors(),
            learner,
            n_datasets=n,
            M=10,
            T=20,
            method=method,
            seed=0,
            observe_payoffs=payoffs,
            simulator=simulator,
            n_ranks=99,
            chunk_size=25,
            progress=False,
            out=OUT / f"{name}.json",
            **opts,
        )
        res.plot(OUT / f"{name}.png")
        print(
            f"{name}: {res.n_datasets} data sets in {time.time() - t0:.0f} s; flagged {res.flagged()}",
            flush=True,
        )


def _cell(c: dict) -> str:
    mark = "" if c["band_low"] <= c["rate"] <= c["band_high"] else " **!**"
    return f"{c['rate']:.2f} [{c['band_low']:.2f}, {c['band_high']:.2f}]{mark}"


def report() -> None:
    """Markdown tables (coverage with binomial 95% bands, uniformity p-values) of every run found.

    Redraws each run's figure from its stored ranks.
    """
    names = [r[0] for q in RUNS.values() for r in q]
    for name in names:
        final, partial = OUT / f"{name}.json", OUT / f"{name}.json.partial.jsonl"
        if partial.exists():  # holds every finished chunk, also of a run still going
            try:
                res = calibration.load_sbc(partial)
            except ValueError:
                continue
            res.plot(OUT / f"{name}.png")
            res.save(final)
        elif final.exists():
            res = calibration.load_sbc(final)
            res.plot(OUT / f"{name}.png")  # the figure in the current style, from the stored ranks
        else:
            continue
        s = res.setup
        cov, uni = res.coverage(), res.uniformity()
        diag = {k: float(np.mean(v)) for k, v in res.diagnostics.items()}
        print(
            f"\n### {name}: N = {res.n_datasets} data sets, {s['method']}, {s['simulator']}, "
            f"{'payoffs observed' if s['observe_payoffs'] else 'actions only'}, learner {s['learner']}, "
            f"{s['seconds']:.0f} s wall in fits (shared machine); mean diagnostics {diag}\n"
        )
        print("| quantity | 50% | 80% | 90% | 95% | p chi2 | p PIT-ECDF |")
        print("|---|---|---|---|---|---|---|")
        for q in res.quantities:
            label = q if res.identified[q] else f"{q} (not identified)"
            cells = " | ".join(_cell(cov[q][f"{p:g}"]) for p in res.levels)
            print(f"| {label} | {cells} | {uni[q]['chi2']:.3f} | {uni[q]['pot_c']:.3f} |")
        pooled = {p: v for p, v in res.pooled_coverage(res.quantities[-1].split("[")[0]).items()}
        print(f"\npooled payoff cells: {pooled}; flagged (1% budget): {res.flagged(alpha=0.01)}")


if __name__ == "__main__":
    if sys.argv[1] == "report":
        report()
        sys.exit()
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
