"""A habit under all-equal payoffs: are the payoff intervals honest with and without the action bias?

Usage (from the repository root)::

    python benchmarks/bias_habit.py 0 10

Repeats ``tests/test_bias.py::test_habit_with_equal_payoffs_stays_honest`` over simulation seeds
[first, last): a 2 x 2 game with a zero payoff table, LogitQ(0.3, 2, 0.05) agents with a habit
``b_i = (+1, -1)``, 20 episodes x 20 steps; NUTS 2 x 300 (300 warm-up) with alpha, beta and eps
inferred, once with ``bias="infer"`` and once without. One line per seed: for each fit, seconds,
identified payoff cells (of 8) whose 90% interval covers 0, cells excluding 0 against the
habit's sign, max R-hat; for the bias fit, entries of the true bias inside their 90% interval
(of 4), the posterior means of each agent's bias for action 0 and how many exclude 0.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms as mm

TRUE_BIAS = np.array([[1.0, -1.0], [1.0, -1.0]])


def one_seed(seed: int) -> list:
    """Fit one simulated data set with and without the bias; return the printed row."""
    truth = bd.LogitQ(0.3, 2.0, 0.05, bias=TRUE_BIAS)
    data = bd.simulate(mm.Tabular((2, 2)), {"table": np.zeros((2, 2, 2))}, truth, 20, 20, seed)
    a0, a1 = np.meshgrid(np.arange(2), np.arange(2), indexing="ij")
    own0 = np.stack([a0 == 0, a1 == 0], axis=-1)  # cell [a_0, a_1, i]: agent i plays action 0
    row: list = [seed]
    for bias in ("infer", 0.0):
        start = time.time()
        post = bd.fit(
            data,
            mm.Tabular((2, 2)),
            bd.LogitQ("infer", "infer", "infer", bias=bias),
            method="nuts",
            num_chains=2,
            num_warmup=300,
            num_samples=300,
            progress=False,
            seed=0,
        )
        draws, _ = post.identified_payoff_draws()
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        cover = int(((lo < 0) & (hi > 0)).sum())
        wrong = int(((lo > 0) & ~own0).sum() + ((hi < 0) & own0).sum())
        r_hat = round(post.info.get("max_r_hat", np.nan), 3)
        row += [bias, round(time.time() - start, 1), cover, wrong, r_hat]
        if bias == "infer":
            b = post.draws("bias")
            blo, bhi = np.quantile(b, [0.05, 0.95], axis=0)
            row += [
                int(((blo <= TRUE_BIAS) & (TRUE_BIAS <= bhi)).sum()),
                b.mean(0)[:, 0].round(2).tolist(),
                int((blo[:, 0] > 0).sum()),
            ]
    return row


if __name__ == "__main__":
    warnings.simplefilter("default")
    first, last = (int(v) for v in sys.argv[1:3])
    for seed in range(first, last):
        print(*one_seed(seed), flush=True)
