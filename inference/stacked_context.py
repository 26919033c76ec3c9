"""Contrasts of a stacked fit with context: two groups, or two covariate values, over learner families.

``StackedPosterior.contrast(a, b)`` and ``StackedPosterior.contrast_covariates(a, b)`` mix
contrast draws by the stack's mixture weights and seed (``stacked.mix_stacked_draws``, as
``for_group`` / ``at_covariates`` do). Every draw is A minus B *of the same draw*:

- a learner family's posterior draw gives both tables (its ``for_group`` / ``at_covariates``
  posteriors keep the draw order), in temperature x payoff units;
- a payoff-blind null's share is filled with joint prior draws of the whole context model
  (:func:`prior_contrast_draws`): a grouped model's shared table, ``group_scale`` and every
  group's deviation in one draw, a covariate model's table and slopes in one draw, then A minus
  B of that draw. The shared part cancels, as in a fitted contrast; what is left is the prior
  spread of a difference between contexts (wide, never 0), drawn antithetically.

A :class:`ContextContrast` holds what one contrast needs: the two contexts, checked against
the fit, and how to draw and tabulate them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import pandas as pd
from numpyro.infer import Predictive

from bayes_diml.mechanisms import CovariateTabular, GroupedTabular
from bayes_diml.models import mechanism_sites, params_from_sites, sample_mechanism

from .covariates import require_covariate
from .groups import contrast_groups, require_grouped
from .labelled import contrast_table

__all__ = ["ContextContrast", "group_contrast", "covariate_contrast", "prior_contrast_draws"]


@dataclasses.dataclass(frozen=True)
class ContextContrast:
    """Two contexts of a grouped or covariate fit, to contrast draw by draw (A minus B).

    Attributes
    ----------
    mechanism : GroupedTabular or CovariateTabular
        The fit's context mechanism.
    priors : Priors
        The fit's priors (those of the nulls' prior draws).
    a, b : str or dict
        Two group labels, or two covariate values ``{name: value}`` (every covariate of the fit).
    support : tuple of two bool arrays, or None
        Grouped fits: each group's ``bool[K_1, ..., K_n, n]`` (observed opponent profiles).
    """

    mechanism: Any
    priors: Any
    a: Any
    b: Any
    support: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def grouped(self) -> bool:
        """Whether the contexts are groups (else covariate values)."""
        return isinstance(self.mechanism, GroupedTabular)

    def family_draws(self, post: Any) -> np.ndarray:
        """Return a family's draws ``float[D, K_1, ..., K_n, n]`` of temperature x centred payoff A - B."""
        pick = post.for_group if self.grouped else post.at_covariates
        return pick(self.a).scaled_payoff_draws() - pick(self.b).scaled_payoff_draws()

    def prior_draws(self, key: jax.Array, num: int) -> np.ndarray:
        """``num`` (even) antithetic joint prior draws of A minus B: :func:`prior_contrast_draws`."""
        return prior_contrast_draws(self.mechanism, self.priors, self.a, self.b, key, num)

    def frame(self, draws: np.ndarray, prob: float, units: str) -> pd.DataFrame:
        """Tabulate contrast draws ``float[D, K_1, ..., K_n, n]``: one row per agent and joint action.

        Columns as ``Posterior.contrast`` (grouped: ``CONTRAST_COLUMNS``, ``support_a``,
        ``support_b``, ``units``) or ``Posterior.contrast_covariates``
        (``COVARIATE_CONTRAST_COLUMNS``); ``attrs`` hold the two contexts, ``prob`` and ``units``.
        """
        frame = contrast_table(draws, self.mechanism.n_actions, prob, units, self.support)
        names = {"group_a": self.a, "group_b": self.b} if self.grouped else {"a": self.a, "b": self.b}
        frame.attrs.update(names, prob=float(prob), units=units)
        return frame


def group_contrast(post: Any, group_a: str, group_b: str) -> ContextContrast:
    """Return the contrast of two groups of a grouped fit ``post`` (ValueError: unknown or equal groups)."""
    mech = require_grouped(post, "contrast")
    a, b = contrast_groups(mech, group_a, group_b)
    support = post.support  # bool[G, K_1..K_n, n]
    pair = (support[mech.group_code(a)], support[mech.group_code(b)])
    return ContextContrast(mech, post.priors, a, b, pair)


def covariate_contrast(post: Any, a: Mapping[str, float], b: Mapping[str, float]) -> ContextContrast:
    """Return the contrast of two covariate values of a ``CovariateTabular`` fit ``post``.

    Each value must name every covariate of the fit (ValueError naming unknown, missing or
    non-finite ones).
    """
    mech = require_covariate(post, "contrast_covariates")
    xa, xb = mech.covariate_vector(a), mech.covariate_vector(b)
    a, b = ({c: float(v) for c, v in zip(mech.covariate_names, x, strict=True)} for x in (xa, xb))
    return ContextContrast(mech, post.priors, a, b)


def prior_contrast_draws(mechanism: Any, priors: Any, a: Any, b: Any, key: jax.Array, num: int) -> np.ndarray:
    """Draw the prior of a context model jointly and return ``num`` (even) draws of A minus B.

    Each prior draw samples every site of ``mechanism`` at once (``GroupedTabular``: the shared
    table, ``group_scale`` and every group's deviation; ``CovariateTabular``: the table and the
    slopes); the contrast is the centred table of context ``a`` minus that of ``b`` in the
    same draw, ``float[num, K_1, ..., K_n, n]``. Half the draws are the negatives of the
    other half (antithetic: the prior is symmetric). Under the grouped prior a centred cell's
    contrast is ``group_scale * N(0, 2 (K_i - 1) / K_i)``, a scale mixture with sd
    ``group_scale_rms * sqrt(2 (K_i - 1) / K_i)`` (``GroupedTabular.group_scale_rms``).
    """
    params = _prior_params(key, mechanism, priors, (int(num) + 1) // 2)
    if isinstance(mechanism, GroupedTabular):
        tables = np.asarray(params["table"], dtype=np.float64)  # float[half, G, K_1..K_n, n]
        diff = tables[:, mechanism.group_code(a)] - tables[:, mechanism.group_code(b)]
    elif isinstance(mechanism, CovariateTabular):
        table = np.asarray(params["table"], dtype=np.float64)  # float[half, K_1..K_n, n]
        slopes = np.asarray(params["slopes"], dtype=np.float64)  # float[half, C, K_1..K_n, n]
        at = [table + np.einsum("dc...,c->d...", slopes, mechanism.covariate_vector(x)) for x in (a, b)]
        diff = at[0] - at[1]
    else:
        raise ValueError(
            f"a prior contrast needs a GroupedTabular or CovariateTabular; got {type(mechanism).__name__}."
        )
    return np.concatenate([diff, -diff])


# compiled once per mechanism, priors and number of draws (both are hashable frozen values)
@functools.partial(jax.jit, static_argnames=("mechanism", "priors", "num"))
def _prior_params(key: jax.Array, mechanism: Any, priors: Any, num: int) -> dict:
    def prior() -> None:
        sample_mechanism(mechanism, priors)

    sites = Predictive(prior, num_samples=num)(key)
    return params_from_sites(mechanism, {k: sites[k] for k in mechanism_sites(mechanism)})
