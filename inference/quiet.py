"""The third-party warnings the inference floor silences, each by category and message.

Library code never silences warnings wholesale: the fit's own warnings
(``ConvergenceWarning``, ``ConfoundingWarning``, ``ParetoKWarning``, ...) must reach the user.
Each filter below names one ArviZ warning that the caller already handles or reports better.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import NamedTuple

__all__ = [
    "WarningFilter",
    "silenced",
    "CHAINS_LONGER_THAN_DRAWS",
    "PARETO_SHAPE",
    "DEGENERATE_DRAWS",
    "LFO_MANY_REFITS",
    "SUMMARY_WARNINGS",
    "COMPARE_WARNINGS",
]


class WarningFilter(NamedTuple):
    """One warning: its category, the start of its message and the module that issues it."""

    category: type[Warning]
    message: str
    module: str = ""


#: ``arviz.from_dict`` on few draws per chain (MAP: 1 x 1 is fine, but e.g. 4 chains x 2 draws).
CHAINS_LONGER_THAN_DRAWS = WarningFilter(
    UserWarning, "Found chain dimension to be longer than draw dimension", r"arviz_base"
)
#: ``arviz.loo`` on large Pareto k: ``compare.loo`` warns ``ParetoKWarning`` with the episodes.
PARETO_SHAPE = WarningFilter(
    UserWarning, "Estimated shape parameter of Pareto distribution is greater than", r"arviz_stats"
)
#: R-hat / ESS of constant draws or of too few chains: the summary shows NaN there.
DEGENERATE_DRAWS = WarningFilter(RuntimeWarning, "invalid value encountered in scalar divide", r"arviz_stats")
#: ``arviz.lfo_cv`` with refits at more than half the steps: the result's ``n_refits`` says so.
LFO_MANY_REFITS = WarningFilter(UserWarning, "LFO-CV triggered", r"arviz_stats")
#: What ``arviz.summary`` and ``arviz.psense_summary`` warn on short or constant draws.
SUMMARY_WARNINGS = (DEGENERATE_DRAWS,)
#: What ``arviz.compare`` warns when the fits predict alike: the table's elpd_diff shows it.
COMPARE_WARNINGS = (
    WarningFilter(UserWarning, "All models have nearly identical performance", r"arviz_stats"),
)


@contextlib.contextmanager
def silenced(*filters: WarningFilter) -> Iterator[None]:
    """Ignore exactly the given warnings inside the block (``warnings.catch_warnings``)."""
    with warnings.catch_warnings():
        for f in filters:
            warnings.filterwarnings(
                "ignore", message=re.escape(f.message), category=f.category, module=f.module
            )
        yield
