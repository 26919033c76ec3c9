"""What defines one SBC study: methods, simulators, the learner spec and the study's identity."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from bayes_diml.learners import BanditQ, Hedge, LogitQ

__all__ = ["LEVELS", "METHODS", "SIMULATORS", "make_learner"]

#: Central interval probabilities whose coverage is recorded.
LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Fitting methods: NUTS, SVI with a mean-field (AutoNormal) or low-rank guide, Laplace.
METHODS = ("nuts", "svi", "svi_lowrank", "laplace")
#: Data-generating learners: the fitted model itself, or a misspecified one.
SIMULATORS = ("logit_q", "bandit_q", "hedge")
_INFER = "infer"


def make_learner(simulator: str, alpha: Any, beta: Any, eps: Any) -> Any:
    """Make the data-generating learner for a prior draw ``(alpha, beta, eps)``.

    ``logit_q``: the fitted model; ``bandit_q``: :class:`bayes_diml.learners.BanditQ` (only
    the played action's score learns) with the same numbers; ``hedge``:
    :class:`bayes_diml.learners.Hedge` with ``eta = alpha * beta`` (its first steps then match
    logit-Q's, whose scores are ``~ alpha * sum u``) and the same ``eps``.
    """
    if simulator == "logit_q":
        return LogitQ(alpha, beta, eps)
    if simulator == "bandit_q":
        return BanditQ(alpha, beta, eps)
    if simulator == "hedge":
        return Hedge(eta=alpha * beta, eps=eps)
    raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}; got {simulator!r}.")


def _learner_spec(learner_priors: Any) -> dict[str, Any]:
    """``{"alpha": "infer" | float, "beta": ..., "eps": ...}`` from None, a LogitQ or a dict."""
    if learner_priors is None:
        return {n: _INFER for n in ("alpha", "beta", "eps")}
    if isinstance(learner_priors, LogitQ):
        learner_priors = {n: getattr(learner_priors, n) for n in ("alpha", "beta", "eps")}
    if not isinstance(learner_priors, dict):
        raise TypeError(
            f"learner_priors must be None, a LogitQ or a dict; got {type(learner_priors).__name__}."
        )
    unknown = set(learner_priors) - {"alpha", "beta", "eps"}
    if unknown:
        raise ValueError(f"learner_priors: unknown field(s) {sorted(unknown)}; use alpha, beta, eps.")
    out = {}
    for n in ("alpha", "beta", "eps"):
        v = learner_priors.get(n, _INFER)
        if isinstance(v, str):
            if v != _INFER:
                raise ValueError(f"learner_priors[{n!r}] = {v!r}: use 'infer' or a number.")
            out[n] = v
        else:
            out[n] = float(v)
    LogitQ(*(0.5 if isinstance(out[n], str) else out[n] for n in ("alpha", "beta", "eps"))).check(1)
    return out


@dataclass(frozen=True)
class _Setup:
    """Everything that defines one SBC study (JSON-able; equal setups share partial results)."""

    n_actions: tuple[int, ...]
    M: int
    T: int
    method: str
    learner: dict
    priors: dict
    observe_payoffs: bool
    simulator: str
    options: dict
    n_ranks: int
    seed: int
    n_datasets: int
    mechanism: str = "tabular"

    def key(self) -> str:
        """Identity of the study for resuming: everything but the number of data sets."""
        d = dataclasses.asdict(self)
        d.pop("n_datasets")
        return json.dumps(d, sort_keys=True)


_DEFAULT_OPTIONS = {
    "nuts": {"num_warmup": 300, "num_samples": 300, "num_chains": 2},
    "svi": {"num_steps": 2000, "num_draws": 1000},
    "svi_lowrank": {"num_steps": 2000, "num_draws": 1000},
    "laplace": {"num_draws": 1000},
}
