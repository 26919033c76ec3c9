"""Mechanisms and learners by name (bayes_diml.registry): good cases and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_diml import mechanisms, models
from bayes_diml.bandit import bandit_mechanism
from bayes_diml.data import Trajectories
from bayes_diml.learners import EWA, Hedge, LogitQ
from bayes_diml.registry import (
    INFER_VALUES,
    MECHANISM_NAMES,
    ParameterError,
    make_learner,
    make_mechanism,
    parse_learner_value,
    parse_n_actions,
    short_n_actions,
)


def test_infer_values_are_the_models_constants():
    m = models
    assert INFER_VALUES == (m.INFER, m.INFER_PER_AGENT, m.INFER_HIERARCHICAL, m.INFER_SUBJECT)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("tabular", mechanisms.Tabular),
        ("neural", mechanisms.NeuralJoint),
        ("congestion", mechanisms.StructuredCongestion),
        ("public-goods", mechanisms.StructuredPublicGoods),
        ("symmetric", mechanisms.SymmetricCount),
    ],
)
def test_make_mechanism_builds_each_family(name, cls):
    mech = make_mechanism(name, (3, 3, 3))
    assert isinstance(mech, cls)
    assert name in MECHANISM_NAMES


def test_make_mechanism_reads_the_data_and_builds_the_bandit():
    data = Trajectories(np.zeros((2, 5, 1), dtype=int), (4,))
    assert make_mechanism("tabular", data).n_actions == (4,)
    assert type(make_mechanism("bandit", data)) is type(bandit_mechanism(4))


def test_make_mechanism_errors_name_the_problem():
    with pytest.raises(ParameterError, match="single-agent data; these data have 2 agents") as info:
        make_mechanism("bandit", (3, 3))
    assert info.value.parameter == "mechanism"
    with pytest.raises(ParameterError, match="same number of actions"):
        make_mechanism("congestion", (3, 4))
    with pytest.raises(ParameterError, match=r"unknown mechanism 'nope'"):
        make_mechanism("nope", (3, 3))
    with pytest.raises(ParameterError, match=r"prod K_i x n = 18 payoff entries .* more than 10"):
        make_mechanism("tabular", (3, 3), tabular_limit=10)


def test_parse_n_actions():
    assert parse_n_actions("3,4") == (3, 4)
    assert parse_n_actions(None) is None
    with pytest.raises(ParameterError, match="comma-separated integers") as info:
        parse_n_actions("3,x")
    assert info.value.parameter == "n_actions"
    assert str(info.value).startswith("n_actions: ")


def test_short_n_actions():
    assert short_n_actions((5,) * 6) == "(5,) * 6"
    assert short_n_actions((2, 3)) == "(2, 3)"


def test_parse_learner_value():
    assert parse_learner_value("Infer-Per-Agent", "beta") == "infer_per_agent"
    assert parse_learner_value("0.5", "beta") == 0.5
    np.testing.assert_array_equal(parse_learner_value("0.1,0.2", "alpha"), [0.1, 0.2])
    assert parse_learner_value(3.0, "beta") == 3.0
    with pytest.raises(ParameterError, match=r"expected a number.*got 'fast'") as info:
        parse_learner_value("fast", "beta")
    assert info.value.parameter == "beta"


def test_make_learner_builds_each_family():
    lq = make_learner("logitq", alpha="0.2", beta="infer", eps=0.05)
    assert isinstance(lq, LogitQ) and lq.alpha == 0.2 and lq.beta == "infer" and lq.eps == 0.05
    hedge = make_learner("hedge", eta="0.3,0.4", eps=None)
    assert isinstance(hedge, Hedge)
    np.testing.assert_array_equal(hedge.eta, [0.3, 0.4])
    ewa = make_learner("ewa", phi="0.9", delta="0.5", rho="0.9", lam="infer_hierarchical")
    assert isinstance(ewa, EWA) and ewa.lam == "infer_hierarchical" and ewa.n0 == 1.0


def test_make_learner_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown learner family 'nope'"):
        make_learner("nope")
    with pytest.raises(ParameterError, match="does not apply to learner family hedge") as info:
        make_learner("hedge", alpha="0.2")
    assert info.value.parameter == "alpha"
    with pytest.raises(ParameterError, match="expected a number") as info:
        make_learner("logitq", beta="hot")
    assert info.value.parameter == "beta"
    with pytest.raises(ParameterError, match="simulation needs numbers") as info:
        make_learner("logitq", alpha=0.2, beta=3.0, eps="infer", numbers_only=True)
    assert info.value.parameter == "eps"
    with pytest.raises(ParameterError, match="needs a value of delta, rho") as info:
        make_learner("ewa", phi=0.9, lam=3.0)
    assert info.value.parameter == "delta"
