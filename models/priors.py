"""Prior hyper-parameters of the model and the learner-field spec values.

A learner field is a number (fixed), :data:`INFER` (one shared value), :data:`INFER_PER_AGENT`,
:data:`INFER_HIERARCHICAL` (per agent, from a population) or :data:`INFER_SUBJECT` (per
subject, i.e. per episode, from a population); :class:`Priors` holds the hyper-parameters of every prior.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpyro.distributions as dist

from bayes_diml.learners import FAMILIES, learner_parameters

__all__ = [
    "INFER",
    "INFER_PER_AGENT",
    "INFER_HIERARCHICAL",
    "INFER_SUBJECT",
    "LEARNER_FIELDS",
    "LEARNER_PRIOR_KINDS",
    "Priors",
]

INFER = "infer"
INFER_PER_AGENT = "infer_per_agent"
#: One value per agent from a population prior, non-centred (see ``models/hierarchical.py``).
INFER_HIERARCHICAL = "infer_hierarchical"
#: One value per subject (an episode: an hBayesDM ``subjID``) from a population prior, non-centred.
INFER_SUBJECT = "infer_subject"
#: How the prior sd of a network's weight matrices follows its shape (``Priors.weight_scaling``).
WEIGHT_SCALINGS = ("constant", "fan_in", "fan_in_bias")
LEARNER_FIELDS = ("alpha", "beta", "eps")  # LogitQ's; other families: learner_fields(learner)
#: Prior kind of every learner parameter of every family: Beta on the unit interval, else LogNormal.
LEARNER_PRIOR_KINDS = {
    p.name: ("beta" if p.unit else "lognormal") for cls in FAMILIES.values() for p in learner_parameters(cls)
}


def _positive_scale(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise naming ``Priors.<name>``."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = float("nan")
    if isinstance(value, str) or not (np.isfinite(x) and x > 0):
        raise ValueError(
            f"Priors.{name} (a prior's standard deviation) must be > 0 and finite; got {value!r}."
        )
    return x


@dataclass(frozen=True)
class Priors:
    """Prior hyper-parameters (plain numbers, so fits can be saved and rebuilt).

    Parameters in the unit interval have Beta(a, b) priors, the others LogNormal(loc, scale)
    (see ``bayes_diml.learners.Parameter``).

    Attributes
    ----------
    mechanism_scale : float or None
        Normal(0, scale) on every mechanism weight (for a ``Tabular`` mechanism, on the
        gauge-free coordinates: the centred payoffs get an isotropic N(0, scale^2) prior
        inside the sum-to-zero subspace). ``None`` means flat (improper): MAP with flat
        priors and a fixed learner is DIML's maximum-likelihood estimate.
    weight_scaling : str
        ``"constant"`` (default): every mechanism weight has sd ``mechanism_scale``.
        ``"fan_in"``: a network's weight matrices (sites ``*.w``, ``float[fan_in, fan_out]``)
        have sd ``mechanism_scale / sqrt(fan_in)`` (biases and embeddings keep
        ``mechanism_scale``), so every layer's pre-activations have prior sd of order
        ``mechanism_scale`` whatever the width: the prior regularises wide networks as much as
        narrow ones. ``"fan_in_bias"``: the same, and each layer's bias (site ``*.b`` beside
        its ``*.w``) also has sd ``mechanism_scale / sqrt(fan_in)``: the scale family of
        PyTorch's ``nn.Linear`` init (embeddings keep ``mechanism_scale``).
    alpha : (a, b)
        Beta(a, b) prior on the learning rate.
    beta : (loc, scale)
        LogNormal(loc, scale) prior on the inverse temperature.
    eps : (a, b)
        Beta(a, b) prior on the exploration rate.
    payoff_noise : float
        HalfNormal(scale) prior on the noise of observed payoffs.
    eta : (loc, scale)
        LogNormal prior on Hedge's learning rate (it multiplies cumulative payoffs, so it is
        smaller than beta: median e^-1.5 = 0.22).
    lam : (loc, scale)
        LogNormal prior on EWA's inverse temperature.
    phi, delta, rho : (a, b)
        Beta priors on EWA's attraction decay, forgone-payoff weight and experience decay.
    n0 : (loc, scale)
        LogNormal prior on EWA's initial experience weight N(0).
    prior_weight : (loc, scale)
        LogNormal prior on fictitious play's weight of the initial value.
    population : (mu_scale, sigma_scale)
        Hierarchical (``"infer_hierarchical"``, ``"infer_subject"``) parameters:
        ``link(theta_i) = mu + sigma z_i`` with
        ``mu ~ Normal(link(centre of the parameter's prior above), mu_scale)`` and
        ``sigma ~ HalfNormal(sigma_scale)`` (``models/hierarchical.py``).
    h : (a, b)
        Beta prior on the aspiration learner's aspiration adaptation rate (mean 0.25).
    bias : float
        Normal(0, bias) prior on the gauge-free coordinates of each agent's action bias (a
        learner with ``bias="infer"``, see ``models/bias.py``): isotropic inside the sum-to-zero
        subspace, so a difference ``b_i[k] - b_i[j]`` has sd ``sqrt(2) * bias`` logits (1.4 by
        default: a habit can shift the odds between two actions by about e^1.4 = 4 a priori).
    """

    mechanism_scale: float | None = 1.0
    alpha: tuple[float, float] = (2.0, 4.0)
    beta: tuple[float, float] = (1.0, 1.0)
    eps: tuple[float, float] = (1.0, 15.0)
    payoff_noise: float = 1.0
    eta: tuple[float, float] = (-1.5, 1.0)
    lam: tuple[float, float] = (1.0, 1.0)
    phi: tuple[float, float] = (4.0, 2.0)
    delta: tuple[float, float] = (1.0, 1.0)
    rho: tuple[float, float] = (2.0, 2.0)
    n0: tuple[float, float] = (0.0, 1.0)
    prior_weight: tuple[float, float] = (0.0, 1.0)
    population: tuple[float, float] = (1.0, 0.5)
    h: tuple[float, float] = (2.0, 6.0)
    bias: float = 1.0
    weight_scaling: str = "constant"

    def __post_init__(self) -> None:
        if self.weight_scaling not in WEIGHT_SCALINGS:
            raise ValueError(
                f"Priors.weight_scaling must be one of {', '.join(map(repr, WEIGHT_SCALINGS))}; "
                f"got {self.weight_scaling!r}."
            )
        pop = tuple(float(v) for v in self.population)
        if len(pop) != 2 or not all(np.isfinite(v) and v > 0 for v in pop):
            raise ValueError(
                f"Priors.population must be (mu_scale, sigma_scale), both > 0; got {self.population!r}."
            )
        object.__setattr__(self, "population", pop)
        if self.mechanism_scale is not None and not float(self.mechanism_scale) > 0:
            raise ValueError(f"Priors.mechanism_scale must be > 0 or None; got {self.mechanism_scale}.")
        for name in LEARNER_PRIOR_KINDS:
            pair = getattr(self, name)
            if isinstance(pair, str) or len(tuple(pair)) != 2:
                raise ValueError(f"Priors.{name} must be a pair of numbers; got {pair!r}.")
            object.__setattr__(self, name, tuple(float(v) for v in pair))
        if not (self.alpha[0] > 0 and self.alpha[1] > 0 and self.eps[0] > 0 and self.eps[1] > 0):
            raise ValueError("Beta prior parameters of alpha and eps must be > 0.")
        object.__setattr__(self, "bias", _positive_scale("bias", self.bias))
        if not self.beta[1] > 0 or not float(self.payoff_noise) > 0:
            raise ValueError("Priors.beta scale and Priors.payoff_noise must be > 0.")
        for name, kind in LEARNER_PRIOR_KINDS.items():
            a, b = getattr(self, name)
            if not (np.isfinite(a) and np.isfinite(b)) or not b > 0 or (kind == "beta" and not a > 0):
                what = "Beta(a, b) parameters" if kind == "beta" else "LogNormal(loc, scale) scale"
                raise ValueError(f"Priors.{name}: the {what} must be > 0 and finite; got {(a, b)!r}.")

    def learner_distribution(self, name: str) -> dist.Distribution:
        """Return the prior of a learner parameter (``alpha``, ``beta``, ``eps``, ``eta``, ...)."""
        kind = LEARNER_PRIOR_KINDS.get(name)
        if kind is None:
            raise KeyError(name)
        return dist.Beta(*getattr(self, name)) if kind == "beta" else dist.LogNormal(*getattr(self, name))

    def learner_centre(self, name: str) -> float:
        """Return a central value of a learner parameter's prior (Beta mean, LogNormal median)."""
        a, b = getattr(self, name)
        return a / (a + b) if LEARNER_PRIOR_KINDS[name] == "beta" else float(np.exp(a))

    def to_dict(self) -> dict:
        """Return a JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Priors:
        """Rebuild from :meth:`to_dict`'s form."""
        return cls(**d)
