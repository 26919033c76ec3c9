"""A check shared by the tests of mechanisms of covariates: contexts are data, not static.

Two data sets of equal shapes whose covariates differ must give models of one pytree structure
and share one compiled log density, each with its own contexts (``ModelData.plan_contexts``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
from numpyro.infer.util import log_density

from bayes_diml.inference import ModelSpec
from bayes_diml.models import Priors, sites_from_params


def assert_contexts_share_one_program(
    mech: Any, data: Any, other: Any, learner: Any, moved: Callable[[np.ndarray], np.ndarray]
) -> None:
    """``other`` is ``data`` with covariates ``moved(x)``: one program, their own contexts, each exact."""
    a = ModelSpec.build(data, mech, learner, Priors()).model()
    b = ModelSpec.build(other, mech, learner, Priors()).model()
    assert jax.tree.structure(a) == jax.tree.structure(b)
    np.testing.assert_array_equal(moved(np.asarray(a.data.plan_contexts)), b.data.plan_contexts)  # a leaf
    traces = []

    @jax.jit
    def logp(model, values):
        traces.append(1)
        return log_density(model, (), {}, values)[0]

    values = sites_from_params(mech, mech.init(jax.random.key(1)))
    la, lb = float(logp(a, values)), float(logp(b, values))
    assert len(traces) == 1  # one program for both data sets
    assert la != pytest.approx(lb)  # each with its own contexts
    unjitted = ModelSpec.build(other, mech, learner, Priors()).model()
    values = {k: np.asarray(v) for k, v in values.items()}
    assert lb == pytest.approx(float(log_density(unjitted, (), {}, values)[0]), rel=1e-5)
