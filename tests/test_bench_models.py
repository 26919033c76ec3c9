"""The benchmark baselines compute the same likelihood as the package (fast; PyMC part optional).

Exact float64 agreement (rtol 1e-10): the implementations differ only in summation order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms as mm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import handwritten  # noqa: E402
import pymc_model  # noqa: E402

LEARNER = (0.25, 3.0, 0.06)


def _cases():
    tab = mm.Tabular((3, 4))
    e2 = mm.Congestion(4, 5)
    e7 = mm.SymmetricCount(7, 4, width=8)  # 4**7 > 4096 profiles: the count plan
    return [
        (tab, tab.init(jax.random.key(1)), handwritten.tabular_2p, ()),
        (e2, e2.init(jax.random.key(0)), handwritten.congestion, (5,)),
        (e7, e7.init(jax.random.key(0)), handwritten.symmetric_count, (7, 4)),
    ]


def _data(mech, params):
    return bd.simulate(mech, params, bd.LogitQ(*LEARNER), 3, 12, jax.random.key(2))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.parametrize("case", range(3))
def test_handwritten_equals_log_likelihood(x64, case):
    mech, params, build, extra = _cases()[case]
    data = _data(mech, params)
    p64 = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x, np.float64)), params)
    lv = [jnp.asarray(v, jnp.float64) for v in LEARNER]
    ours = float(bd.log_likelihood(mech, p64, bd.LogitQ(*lv), data))
    for variant, fn in build(np.asarray(data.actions), *extra).items():
        np.testing.assert_allclose(float(fn(p64, *lv)), ours, rtol=1e-10, err_msg=variant)


@pytest.mark.skipif(not pymc_model.available(), reason="PyMC (the bench extra) is not installed")
@pytest.mark.parametrize("case", [0, 2])
def test_pymc_likelihood_equals_log_likelihood(x64, case):
    mech, params, _, _ = _cases()[case]
    data = _data(mech, params)
    p64 = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x, np.float64)), params)
    ours = float(bd.log_likelihood(mech, p64, bd.LogitQ(*(jnp.asarray(v) for v in LEARNER)), data))
    model = pymc_model.flat_loglik_model(mech, params, data)
    values = {f"mech.{k}": np.asarray(v, float) for k, v in mm.flatten_params(params).items()}
    values.update(zip(("alpha", "beta", "eps"), map(np.asarray, LEARNER), strict=True))
    logp = model.compile_logp()({v.name: values[v.name] for v in model.value_vars})
    np.testing.assert_allclose(float(logp), ours, rtol=1e-10)
