"""``fit(..., learner="auto")``: every learner family and two payoff-blind nulls, weighted by stacking.

How it works (``docs/model_comparison.md``, "Learner uncertainty in one call"):

1. Each candidate learner family is fitted with its temperature fixed at 1 (that sets the
   payoff scale, which is not otherwise identified) and every other parameter inferred
   (:func:`auto_learner`); its payoff draws are then in one unit, temperature x payoff.
2. The two payoff-blind nulls of :mod:`.nulls` are drawn exactly.
3. Each candidate's leave-one-episode-out elpd (PSIS-LOO) enters
   ``arviz.compare(method="stacking")``, which gives the stacking weights.
4. Verdict: the best learning family (by elpd) against the best null, with arviz's ``dse``
   of that difference (``compare(..., reference=best null)``): ``"informative"`` when the
   learner is better by more than 2 dse, ``"misspecified"`` when the null is, else
   ``"no_signal"``.
5. The stacked payoff draws resample each family's draws in proportion to its weight; the
   nulls' share is filled with prior draws of the payoffs (antithetic). When the verdict is
   not informative, the prior's share is raised to at least :data:`ABSTAIN_PRIOR_WEIGHT`, so
   that no pair of actions is called sure.
6. Robust intervals (the default, ``robust="bagging"``): every family with at least
   :data:`BAG_MIN_WEIGHT` of the draws is refitted as a bagged posterior (BayesBag,
   :data:`AUTO_BAGS` bootstrap data sets of whole episodes, the same ones for every family) and
   contributes bagged draws instead of its ordinary ones. The weights and the verdict come from
   the ordinary fits: LOO needs a posterior of the data, which a bagged one is not.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from bayes_diml.learners import FAMILIES, family_name, learner_family, parameter_names, temperature_name
from bayes_diml.models import INFER, Priors, resolve_learner

from .bag_diagnostics import BAGGING
from .compare import ParetoKWarning, loo
from .nulls import NULL_KINDS, NullFit, fit_null
from .posterior import Posterior
from .quiet import COMPARE_WARNINGS, silenced
from .spec import check_context_fit
from .stacked import (
    NO_INFORMATION,
    StackedPosterior,
    context_kind,
    mix_stacked_draws,
    null_key,
    prior_payoff_draws,
)

__all__ = [
    "AUTO",
    "AUTO_METHODS",
    "AUTO_PRIORS",
    "NULL_NAMES",
    "ABSTAIN_PRIOR_WEIGHT",
    "check_auto_method",
    "auto_learner",
    "auto_candidates",
    "context_candidates",
    "scaled_payoff_draws",
    "prior_payoff_draws",
    "nesting_notes",
    "decide",
    "mixture_weights",
    "BAG_MIN_WEIGHT",
    "AUTO_BAGS",
    "Comparison",
    "compare_candidates",
    "bag_targets",
    "stack_draws",
    "stack_fits",
]

#: The ``learner`` value of ``fit`` that compares and stacks learner families.
AUTO = "auto"
#: Methods that give the posterior draws stacking needs.
AUTO_METHODS = ("laplace", "svi", "nuts")
#: The nulls' names in the table, and their kinds.
NULL_NAMES = {f"null_{kind}": kind for kind in NULL_KINDS}
#: Least share of prior draws in the stacked payoffs when the verdict is not informative.
ABSTAIN_PRIOR_WEIGHT = 0.5
#: Families exactly nested in EWA (docs/learners.md, "Nestings").
NESTED_IN_EWA = ("logitq", "hedge", "fp")
#: Default priors of ``learner="auto"``: with the temperature fixed at 1 the table holds
#: temperature x payoff, so its prior sd is e, the median of the default temperature prior
#: (LogNormal(1, 1)) times the default payoff prior sd (1).
AUTO_PRIORS = Priors(mechanism_scale=float(np.e))
#: Least share of the stacked draws for which ``learner="auto"`` bags a family (robust="bagging").
BAG_MIN_WEIGHT = 0.05
#: Bootstrap data sets per bagged family in ``learner="auto"`` unless ``n_bags`` is given.
AUTO_BAGS = 10
#: Pareto k above which an episode's PSIS estimate is unreliable.
HIGH_K = 0.7


def check_auto_method(method: str, data: Any = None) -> None:
    """Raise ``ValueError`` unless ``method`` gives posterior draws (stacking needs them) and ``data`` suit.

    Observed payoffs are not supported yet: they identify the temperature (so fixing it at 1
    would be a restriction) and the nulls predict actions only.
    """
    if data is not None and getattr(data, "has_payoffs", False):
        raise ValueError(
            "learner='auto' compares predictions of actions and fixes each family's temperature at 1; "
            "with observed payoffs the temperature is identified and the payoff-blind nulls cannot score "
            "the payoffs. Fit the families one by one and use bayes_diml.inference.compare instead."
        )
    if method not in AUTO_METHODS:
        raise ValueError(
            f"learner='auto' needs posterior draws (leave-one-episode-out elpd and stacking weights are "
            f"computed from them); method={method!r} gives none. Use method='nuts' (or 'laplace', 'svi')."
        )


def auto_learner(family: str | type, bias: Any = INFER) -> Any:
    """Return a family's learner spec with its temperature fixed at 1 and every other parameter inferred.

    ``bias``: the action bias (habit) term, inferred by default, so that a constant preference for
    an action is not read as an incentive where the learning dynamics cannot tell the two apart;
    ``0.0`` leaves it out.
    """
    cls = learner_family(family) if isinstance(family, str) else family
    t = temperature_name(cls)
    return cls(**{n: (1.0 if n == t else INFER) for n in parameter_names(cls)}, bias=bias)


def auto_candidates(candidates: Any = None) -> dict[str, Any]:
    """Return the learner specs to compare, by name.

    ``candidates``: ``None`` (every family of ``bayes_diml.learners.FAMILIES``) or a sequence
    of family names (``"logitq"``, ``"hedge"``, ..., class names work too) and learner specs
    (used as given). A second spec of one family gets a suffix (``ewa_2``). The nulls are
    always added; naming them here changes nothing.
    """
    items = list(FAMILIES) if candidates is None else list(candidates)
    if isinstance(candidates, str):
        items = [candidates]
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, str):
            if item.strip().lower() in (*NULL_NAMES, *NULL_KINDS):
                continue
            try:
                spec = auto_learner(item)
            except ValueError:
                raise ValueError(
                    f"unknown candidate {item!r}: give learner families ({', '.join(FAMILIES)}) or learner "
                    "specs; the payoff-blind nulls (stationary, markov) are always included."
                ) from None
        else:
            spec = resolve_learner(item)
        name = base = family_name(spec)
        j = 2
        while name in out:
            name, j = f"{base}_{j}", j + 1
        out[name] = spec
    if not out:
        raise ValueError(
            f"learner='auto' needs at least one learner family; choose from {', '.join(FAMILIES)}."
        )
    return out


def context_candidates(data: Any, mechanism: Any) -> list[str]:
    """Return the families ``learner="auto"`` compares by default: those the mechanism can fit.

    Every family of ``bayes_diml.learners.FAMILIES``, except that a grouped or covariate mechanism
    (payoff differences only) leaves out the families that see payoff levels (BanditQ, EWA,
    Aspiration): the rule of ``check_context_fit``. The data are checked first (a ``DataError``
    names what is wrong with their groups or covariates).
    """
    check_context_fit(data, mechanism)
    out = []
    for name in FAMILIES:
        try:
            check_context_fit(data, mechanism, auto_learner(name))
        except ValueError:
            continue
        out.append(name)
    return out


def scaled_payoff_draws(post: Posterior) -> np.ndarray:
    """Return draws ``float[D, K_1, ..., K_n, n]`` of temperature x centred payoffs of a fit.

    With the temperature fixed at 1 (:func:`auto_learner`) these are the centred payoffs; see
    :meth:`Posterior.scaled_payoff_draws`.
    """
    return post.scaled_payoff_draws()


def nesting_notes(families: dict[str, str]) -> dict[str, str]:
    """Return a note per candidate name on what nests it (``{name: family}`` in, ``{name: note}`` out)."""
    present = set(families.values())
    notes = {}
    for name, fam in families.items():
        if fam in NESTED_IN_EWA and "ewa" in present:
            notes[name] = "nested in EWA: weight is not evidence against it"
        elif fam == "stationary" and "markov" in present:
            notes[name] = "nested in the Markov null: weight is not evidence against it"
        else:
            notes[name] = ""
    return notes


def decide(gap: float, dse: float) -> str:
    """Return the verdict from the elpd of the best learner minus the best null and its dse."""
    if gap > 2.0 * dse and gap > 0:
        return "informative"
    if -gap > 2.0 * dse and gap < 0:
        return "misspecified"
    return "no_signal"


def mixture_weights(weights: dict[str, float], nulls: list[str], verdict: str) -> dict[str, float]:
    """Return each candidate's share of the stacked draws.

    The stacking weights when the verdict is informative; otherwise the nulls' (prior draws')
    total share is raised to at least :data:`ABSTAIN_PRIOR_WEIGHT` (split among the nulls in
    proportion to their weights, equally if those are all 0) and the learners' shares scaled down.
    """
    w = {k: max(float(v), 0.0) for k, v in weights.items()}
    total = sum(w.values())
    w = {k: v / total for k, v in w.items()}
    if verdict == "informative":
        return w
    null_mass = sum(w[k] for k in nulls)
    target = max(null_mass, ABSTAIN_PRIOR_WEIGHT)
    out = {}
    for k, v in w.items():
        if k in nulls:
            out[k] = target * (v / null_mass if null_mass > 0 else 1.0 / len(nulls))
        else:
            learners = 1.0 - null_mass
            out[k] = (1.0 - target) * (v / learners if learners > 0 else 0.0)
    return out


def _message(verdict: str, best_l: str, best_n: str, gap: float, dse: float) -> str:
    diff = f"elpd {best_l} - {best_n} = {gap:+.1f} (dse {dse:.1f})"
    if verdict == "informative":
        return (
            f"the actions carry information about incentives: the learning family {best_l!r} predicts "
            f"held-out episodes better than the best payoff-blind null ({diff}, > 2 dse)."
        )
    widen = (
        f" The stacked payoff intervals hold at least {ABSTAIN_PRIOR_WEIGHT:.0%} prior draws, so no pair "
        "of actions is called sure."
    )
    if verdict == "misspecified":
        return (
            f"{NO_INFORMATION}: the learning models are misspecified; the payoff-blind null {best_n!r} "
            f"predicts held-out episodes better than every learning family ({diff}, > 2 dse).{widen}"
        )
    return (
        f"{NO_INFORMATION}: no learning family predicts held-out episodes clearly better than the "
        f"payoff-blind null {best_n!r} ({diff}, within 2 dse): the data cannot tell incentives from "
        f"habit.{widen}"
    )


def _check_same_data(fits: dict[str, Posterior]) -> None:
    first = next(iter(fits.values())).data
    for name, p in fits.items():
        same = p.data.actions.shape == first.actions.shape and np.array_equal(p.data.actions, first.actions)
        if not same or not np.array_equal(p.data.lengths, first.lengths):
            raise ValueError(f"fit {name!r} was made on different data than the others.")


def _elpd_table(elpds: dict[str, Any], families: dict[str, str]) -> pd.DataFrame:
    import arviz as az

    with silenced(*COMPARE_WARNINGS):
        cmp = az.compare(elpds, method="stacking", round_to="none")
    table = pd.DataFrame(index=cmp.index)
    table["family"] = [families[n] for n in cmp.index]
    table["kind"] = ["null" if n in NULL_NAMES else "learner" for n in cmp.index]
    for col in ("weight", "elpd", "se", "elpd_diff", "dse"):
        table[col] = cmp[col].to_numpy(dtype=float)
    ks = {n: np.asarray(getattr(elpds[n], "pareto_k", np.array([np.nan])), dtype=float) for n in cmp.index}
    table["max_pareto_k"] = [
        float(np.nanmax(ks[n])) if np.isfinite(ks[n]).any() else np.nan for n in cmp.index
    ]
    table["n_high_k"] = [int(np.sum(ks[n] > HIGH_K)) for n in cmp.index]
    return table


class Comparison(NamedTuple):
    """What comparing the candidates found (:func:`compare_candidates`).

    ``table``: one row per candidate as in :attr:`StackedPosterior.table` (with
    ``mixture_weight`` and ``note``); ``nulls``: the payoff-blind nulls' exact fits; ``info``:
    ``verdict``, ``message``, ``best_learner``, ``best_null``, ``elpd_gap``, ``gap_dse``,
    ``seed``, ``null_draws``.
    """

    table: pd.DataFrame
    nulls: dict[str, NullFit]
    info: dict[str, Any]


def _warn_high_k(table: pd.DataFrame, n_episodes: int) -> None:
    """Warn once, naming every candidate with episodes whose PSIS estimate is unreliable."""
    high = table[table["n_high_k"] > 0]
    if len(high):
        which = ", ".join(
            f"{n} ({int(r.n_high_k)} of {n_episodes}, max k {r.max_pareto_k:.2f})" for n, r in high.iterrows()
        )
        warnings.warn(
            f"Pareto k > {HIGH_K} for held-out episodes of {which}: their elpd, the stacking weights and "
            "the verdict rest on unreliable PSIS estimates there (table columns n_high_k, max_pareto_k). "
            "More episodes help; use method='nuts' rather than Laplace or SVI for a verdict you report.",
            ParetoKWarning,
            stacklevel=3,
        )


def compare_candidates(fits: dict[str, Posterior], seed: int = 0, *, null_draws: int = 4000) -> Comparison:
    """Compare learner-family fits of one data set with the payoff-blind nulls.

    Each candidate's leave-one-episode-out elpd (PSIS-LOO) enters
    ``arviz.compare(method="stacking")``; the verdict weighs the best learner against the best
    null; the mixture weights follow from both (:func:`mixture_weights`).

    Parameters
    ----------
    fits : dict name -> Posterior
        Learner-family fits with draws (Laplace, SVI or NUTS) and pointwise log-likelihoods of
        the same trajectories.
    seed : int
        Seed of the nulls' draws.
    null_draws : int
        Exact posterior draws of each null.

    Returns
    -------
    Comparison
    """
    import arviz as az

    if not fits:
        raise ValueError("stacking needs at least one learner-family fit.")
    _check_same_data(fits)
    first = next(iter(fits.values()))
    nkey = null_key(int(seed))
    nulls = {
        name: fit_null(first.data, kind, jax.random.fold_in(nkey, j), int(null_draws))
        for j, (name, kind) in enumerate(NULL_NAMES.items())
    }
    with warnings.catch_warnings():  # one warning for all candidates, below
        warnings.filterwarnings("ignore", category=ParetoKWarning)
        elpds = {name: loo(p, label=name) for name, p in fits.items()}
        elpds.update({name: n.loo() for name, n in nulls.items()})
    families = {**{k: family_name(p.learner) for k, p in fits.items()}, **NULL_NAMES}
    table = _elpd_table(elpds, families)
    _warn_high_k(table, first.data.n_episodes)

    learners = [n for n in table.index if n not in NULL_NAMES]
    best_l = max(learners, key=lambda n: table.loc[n, "elpd"])
    best_n = max(NULL_NAMES, key=lambda n: table.loc[n, "elpd"])
    with silenced(*COMPARE_WARNINGS):
        pair = az.compare({best_l: elpds[best_l], best_n: elpds[best_n]}, reference=best_n, round_to="none")
    gap, dse = float(pair.loc[best_l, "elpd_diff"]), float(pair.loc[best_l, "dse"])
    verdict = decide(gap, dse)

    shares = mixture_weights(table["weight"].to_dict(), list(NULL_NAMES), verdict)
    table["mixture_weight"] = [shares[n] for n in table.index]
    notes = nesting_notes(families)
    table["note"] = [notes[n] for n in table.index]
    info = {
        "verdict": verdict,
        "message": _message(verdict, best_l, best_n, gap, dse),
        "best_learner": best_l,
        "best_null": best_n,
        "elpd_gap": gap,
        "gap_dse": dse,
        "seed": int(seed),
        "null_draws": int(null_draws),
    }
    return Comparison(table, nulls, info)


def bag_targets(table: pd.DataFrame, min_weight: float = BAG_MIN_WEIGHT) -> list[str]:
    """Return the learner families whose share of the stacked draws is at least ``min_weight``.

    These are the families whose draws ``learner="auto"`` replaces by bagged ones (the others
    contribute less than ``min_weight`` of the draws and keep their ordinary posterior's).
    """
    rows = table[(table["kind"] == "learner") & (table["mixture_weight"] >= float(min_weight))]
    return [str(n) for n in rows.index]


def stack_draws(
    comparison: Comparison,
    fits: dict[str, Posterior],
    *,
    bagged: dict[str, Posterior] | None = None,
    num_draws: int = 4000,
) -> StackedPosterior:
    """Draw the stacked payoffs of a comparison and return the :class:`StackedPosterior`.

    Each learner family contributes ``mixture_weight x num_draws`` draws (resampled with
    replacement) of its temperature x centred payoffs, taken from ``bagged[name]`` (a bagged
    posterior of that family, ``fit(..., robust="bagging")``) where given and from its
    ordinary fit otherwise; the nulls' share is filled with antithetic prior draws.

    Parameters
    ----------
    comparison : Comparison
        From :func:`compare_candidates` on ``fits``.
    fits : dict name -> Posterior
        The ordinary fits that were compared.
    bagged : dict name -> Posterior, optional
        Bagged posteriors of some of the families (same learner spec and data).
    num_draws : int
        Stacked payoff draws (one more when needed to keep the prior draws antithetic).

    Returns
    -------
    StackedPosterior
    """
    bagged = dict(bagged or {})
    table = comparison.table
    unknown = [n for n in bagged if n not in fits]
    if unknown:
        raise ValueError(f"bagged fits {unknown} are not among the compared families {list(fits)}.")
    for name, post in bagged.items():
        if post.info.get("robust") != BAGGING or family_name(post.learner) != family_name(fits[name].learner):
            raise ValueError(f"bagged[{name!r}] must be a bagged fit (robust='bagging') of the same family.")
    first = next(iter(fits.values()))
    context = context_kind(first.mechanism)
    if context is None:
        draws, sources, prior_weight = mix_stacked_draws(
            table, int(comparison.info["seed"]), fits, bagged, num_draws=num_draws
        )
    else:  # the payoffs depend on the group / covariates: no pooled draws (see StackedPosterior.for_group)
        draws, sources, prior_weight = np.zeros((0,)), np.zeros((0,), dtype=str), float("nan")
    fitted = [*fits.values(), *bagged.values()]
    info = {
        **comparison.info,
        "prior_weight": prior_weight,
        "context": context,
        "num_draws": int(num_draws),
        "method": first.method,
        "seconds": float(sum(float(p.info.get("seconds", 0.0)) for p in fitted)),
        "robust": BAGGING if bagged else None,
        "bagged": list(bagged),
        "n_bags": int(next(iter(bagged.values())).info["n_bags"]) if bagged else 0,
    }
    candidates: dict[str, Posterior | NullFit] = {**fits, **comparison.nulls}
    return StackedPosterior(candidates, table, draws, sources, info, bagged=bagged)


def stack_fits(
    fits: dict[str, Posterior], seed: int = 0, *, num_draws: int = 4000, null_draws: int = 4000
) -> StackedPosterior:
    """Compare fits of one data set with the payoff-blind nulls and stack their payoff draws.

    ``compare_candidates`` then ``stack_draws`` of ``bayes_diml.inference.auto`` (no bagged fits).

    Parameters
    ----------
    fits : dict name -> Posterior
        Learner-family fits with draws (Laplace, SVI or NUTS) of the same trajectories, whose
        temperature x payoff units agree (``bayes_diml.inference.auto.auto_learner``).
    seed : int
        Seed of the nulls' draws, the prior draws and the resampling.
    num_draws : int
        Stacked payoff draws (one more when needed to keep the prior draws antithetic).
    null_draws : int
        Exact posterior draws of each null.

    Returns
    -------
    StackedPosterior
    """
    return stack_draws(compare_candidates(fits, seed, null_draws=null_draws), fits, num_draws=num_draws)
