"""The result of an SBC study: ranks and coverage per quantity, JSON round trip and plots."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayes_diml.studies.calibration.checks import (
    _clopper_pearson,
    coverage_band,
    pit_from_ranks,
    rank_uniformity,
)
from bayes_diml.studies.calibration.prior import _identified
from bayes_diml.studies.calibration.spec import LEVELS, _Setup

__all__ = ["SBCResult", "load_sbc", "plot_sbc"]


@dataclass
class SBCResult:
    """Ranks and interval coverage of an SBC study.

    Attributes
    ----------
    setup : dict
        Game, sizes, method, learner spec, priors, simulator and method options.
    ranks : dict name -> int[N]
        Rank of the truth among ``n_ranks`` thinned posterior draws, per quantity.
    inside : dict name -> bool[N, len(levels)]
        Whether the central interval of each level contained the truth.
    truth : dict name -> float[N]
    identified : dict name -> bool
        False for beta when it is confounded with the payoff scale.
    n_ranks : int
    levels : tuple of float
    diagnostics : dict name -> float[N]
        Per data set: NUTS ``diverging`` / ``mean_steps``, SVI ``final_loss``; ``seconds`` per chunk.
    """

    setup: dict
    ranks: dict[str, np.ndarray]
    inside: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    identified: dict[str, bool]
    n_ranks: int
    levels: tuple[float, ...] = LEVELS
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_datasets(self) -> int:
        """Number of data sets with results."""
        return int(len(next(iter(self.ranks.values())))) if self.ranks else 0

    @property
    def quantities(self) -> list[str]:
        """Names of the recorded quantities."""
        return list(self.ranks)

    def coverage(self, alpha: float = 0.05) -> dict[str, dict[str, dict[str, float]]]:
        """Summarise the interval coverage per quantity and level.

        Each entry holds the ``rate``, its Clopper-Pearson ``ci_low/ci_high`` (1 - alpha), the
        binomial acceptance ``band_low/band_high`` around the nominal level and ``ok`` (rate in band).
        """
        out = {}
        N = self.n_datasets
        for q, ins in self.inside.items():
            row = {}
            for j, p in enumerate(self.levels):
                k = int(ins[:, j].sum())
                lo, hi = _clopper_pearson(k, N, alpha)
                blo, bhi = coverage_band(p, N, alpha)
                row[f"{p:g}"] = {
                    "rate": k / N,
                    "ci_low": lo,
                    "ci_high": hi,
                    "band_low": blo,
                    "band_high": bhi,
                    "ok": bool(blo <= k / N <= bhi),
                }
            out[q] = row
        return out

    def pooled_coverage(self, prefix: str) -> dict[str, float]:
        """Mean coverage over every quantity whose name starts with ``prefix`` (e.g. payoff cells)."""
        rows = [v for k, v in self.inside.items() if k.startswith(prefix)]
        if not rows:
            return {}
        stacked = np.stack(rows)  # [Q, N, L]
        return {f"{p:g}": float(stacked[:, :, j].mean()) for j, p in enumerate(self.levels)}

    def uniformity(self) -> dict[str, dict[str, float]]:
        """Rank-uniformity p-values per quantity (:func:`rank_uniformity`)."""
        return {q: rank_uniformity(r, self.n_ranks) for q, r in self.ranks.items()}

    def flagged(self, alpha: float = 0.05) -> list[str]:
        """List the identified quantities that fail a calibration check.

        A quantity fails when its coverage leaves its band at some level or its ranks fail a
        uniformity test, both at level ``alpha`` split (Bonferroni) over the quantities, levels
        and tests checked.
        """
        names = [q for q in self.quantities if self.identified.get(q, True)]
        m = max(1, len(names) * (len(self.levels) + 2))
        cov = self.coverage(alpha=alpha / m)
        uni = self.uniformity()
        return [
            q for q in names if not all(c["ok"] for c in cov[q].values()) or min(uni[q].values()) < alpha / m
        ]

    def to_json(self) -> dict:
        """JSON-able dict (ranks, coverage flags, truths, summaries)."""
        return {
            "setup": self.setup,
            "n_ranks": self.n_ranks,
            "levels": list(self.levels),
            "n_datasets": self.n_datasets,
            "identified": self.identified,
            "ranks": {k: np.asarray(v).tolist() for k, v in self.ranks.items()},
            "inside": {k: np.asarray(v).astype(int).tolist() for k, v in self.inside.items()},
            "truth": {k: np.asarray(v, float).tolist() for k, v in self.truth.items()},
            "diagnostics": {k: np.asarray(v, float).tolist() for k, v in self.diagnostics.items()},
            "coverage": self.coverage() if self.n_datasets else {},
            "uniformity": self.uniformity() if self.n_datasets >= 2 else {},
        }

    @classmethod
    def from_json(cls, d: dict) -> SBCResult:
        """Inverse of :meth:`to_json`."""
        return cls(
            setup=d["setup"],
            ranks={k: np.asarray(v, dtype=int) for k, v in d["ranks"].items()},
            inside={
                k: np.asarray(v, dtype=bool).reshape(-1, len(d["levels"])) for k, v in d["inside"].items()
            },
            truth={k: np.asarray(v, dtype=float) for k, v in d["truth"].items()},
            identified={k: bool(v) for k, v in d["identified"].items()},
            n_ranks=int(d["n_ranks"]),
            levels=tuple(float(p) for p in d["levels"]),
            diagnostics={k: np.asarray(v, dtype=float) for k, v in d.get("diagnostics", {}).items()},
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    def plot(self, path: str | Path | None = None, quantities: Sequence[str] | None = None):
        """Delta-ECDF panels of the rank PITs (arviz-plots) and a coverage panel; see :func:`plot_sbc`."""
        return plot_sbc(self, path, quantities=quantities)


def load_sbc(path: str | Path) -> SBCResult:
    """Read an SBC result written by :meth:`SBCResult.save` (or ``bayes-diml sbc --out``).

    A ``<out>.partial.jsonl`` file (the chunks finished so far) is read too.
    """
    path = Path(path)
    if path.name.endswith(".partial.jsonl"):
        return _load_partial(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read SBC result {path}: {exc}") from None
    for key in ("setup", "ranks", "inside", "truth", "identified", "n_ranks", "levels"):
        if key not in d:
            raise ValueError(f"{path} is not an SBC result: missing {key!r}.")
    return SBCResult.from_json(d)


def _load_partial(path: Path) -> SBCResult:
    try:
        lines = path.read_text().splitlines()
        setup = json.loads(json.loads(lines[0])["setup"])
    except (OSError, IndexError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read partial SBC results {path}: {exc}") from None
    records = []
    for line in lines[1:]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
    if not records:
        raise ValueError(f"{path} holds no finished chunk yet.")
    n = sum(len(r["idx"]) for r in records)
    setup = _Setup(**{**setup, "n_actions": tuple(setup["n_actions"]), "n_datasets": n})
    return _assemble(setup, records, setup.observe_payoffs)


def _assemble(setup: _Setup, records: list[dict], payoffs: bool) -> SBCResult:
    records = sorted(records, key=lambda r: r["idx"][0])
    idx = np.concatenate([r["idx"] for r in records]) if records else np.zeros(0, int)
    order = np.argsort(idx)
    cat = {}
    for part in ("ranks", "inside", "truth", "diagnostics"):
        names = records[0][part] if records else {}
        cat[part] = {q: np.concatenate([np.asarray(r[part][q]) for r in records])[order] for q in names}
    seconds = float(sum(r["seconds"] for r in records))
    setup_d = {**dataclasses.asdict(setup), "seconds": seconds}
    return SBCResult(
        setup=setup_d,
        ranks={q: v.astype(int) for q, v in cat["ranks"].items()},
        inside={q: v.astype(bool) for q, v in cat["inside"].items()},
        truth=cat["truth"],
        identified={q: _identified(q, setup.learner, payoffs) for q in cat["ranks"]},
        n_ranks=setup.n_ranks,
        diagnostics=cat["diagnostics"],
    )


def plot_sbc(result: SBCResult, path: str | Path | None = None, quantities: Sequence[str] | None = None):
    """Delta-ECDF plots of the rank PITs with ArviZ's uniformity test, and a coverage panel.

    The ECDF panels are arviz-plots' :func:`arviz_plots.plot_ecdf_pit` of the randomised PIT
    ``(rank + U) / (n_ranks + 1)`` (method ``"pot_c"``, the pointwise order test
    :func:`~bayes_diml.studies.calibration.checks.rank_uniformity` reports: the points that
    depart most from uniformity are marked and the panel shows the test's p-value); a
    quantity the data cannot identify says so in its title. The last panel shows empirical
    against nominal coverage of the central intervals with the binomial 95% acceptance band.
    Returns the matplotlib figure (written to ``path`` and closed when a path is given).
    """
    import arviz_plots as azp
    import matplotlib.pyplot as plt
    import xarray as xr

    names = list(quantities or result.quantities)
    titles = [q if result.identified.get(q, True) else f"{q} (not identified)" for q in names]
    N = result.n_datasets
    # one variable over a "quantity" dim (arviz-plots 1.3 sets the y limits of several variables
    # wrongly); the last panel holds evenly spaced placeholders, cleared for the coverage plot
    pit = np.stack(
        [pit_from_ranks(result.ranks[q], result.n_ranks) for q in names] + [(np.arange(N) + 0.5) / N]
    )
    coverage_panel = "interval coverage"
    ncols = min(4, len(names) + 1)
    nrows = math.ceil((len(names) + 1) / ncols)
    ds = xr.Dataset(
        {"rank PIT": (("quantity", "sbc_dataset"), pit)}, coords={"quantity": [*titles, coverage_panel]}
    )
    pc = azp.plot_ecdf_pit(
        xr.DataTree.from_dict({"prior_sbc": ds}),
        sample_dims=["sbc_dataset"],
        backend="matplotlib",
        cols=["quantity"],
        col_wrap=ncols,
        figure_kwargs={"figsize": (3.2 * ncols, 2.6 * nrows)},
    )
    fig = pc.viz["figure"].item()
    placeholder = pc.get_target("rank PIT", {"quantity": coverage_panel})
    ax = fig.add_subplot(placeholder.get_subplotspec())  # its own y axis, not the ECDFs' shared one
    placeholder.remove()
    levels = np.asarray(result.levels)
    band = np.asarray([coverage_band(p, N) for p in levels])
    ax.fill_between(levels, band[:, 0], band[:, 1], color="0.8", step=None)
    ax.plot(levels, levels, "k--", lw=0.7)
    for q in names:
        if result.identified.get(q, True):
            ax.plot(levels, result.inside[q].mean(0), ".-", lw=0.6, ms=3, label=q)
    if len(names) <= 16:
        ax.legend(fontsize=5, loc="lower right", frameon=False)
    ax.set_xlabel("nominal", fontsize=8)
    ax.set_ylabel("empirical coverage", fontsize=8)
    ax.set_title("coverage (band: binomial 95%)", fontsize=8)
    ax.tick_params(labelsize=7)
    s = result.setup
    fig.suptitle(
        f"SBC {s.get('method')} on {'x'.join(map(str, s.get('n_actions', ())))}, N = {N}, "
        f"simulator {s.get('simulator')}{', payoffs observed' if s.get('observe_payoffs') else ''}",
        fontsize=9,
    )
    fig.set_layout_engine("constrained")
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
