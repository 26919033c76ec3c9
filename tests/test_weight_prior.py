"""``Priors.weight_scaling``: network weight priors that follow each layer's fan-in."""

from __future__ import annotations

import math

import numpy as np
import numpyro.distributions as dist
import pytest
from jax.scipy.stats import norm
from numpyro.handlers import seed, trace

from bayes_diml.mechanisms import NeuralJoint, SymmetricCount, Tabular
from bayes_diml.models import Priors, mechanism_sites, sample_mechanism

SCALE = 0.8


def _normal(d):
    """The Normal inside a site's Independent(Expanded(Normal))."""
    while not isinstance(d, dist.Normal):
        d = d.base_dist
    return d


def _site_sds(mechanism, priors):
    """The sd of every mechanism site of the model (from the traced Normal priors)."""
    tr = trace(seed(lambda: sample_mechanism(mechanism, priors), 0)).get_trace()
    sds = {k: np.unique(np.asarray(_normal(tr[k]["fn"]).scale)) for k in mechanism_sites(mechanism)}
    assert all(len(v) == 1 for v in sds.values())  # one sd per site
    return {k: float(v[0]) for k, v in sds.items()}


@pytest.mark.parametrize("mech", [SymmetricCount(5, 3, width=16), NeuralJoint((2, 3), width=8)])
def test_fan_in_divides_each_weight_matrix_by_the_root_of_its_inputs(mech):
    shapes = mechanism_sites(mech)
    fan = _site_sds(mech, Priors(mechanism_scale=SCALE, weight_scaling="fan_in"))
    const = _site_sds(mech, Priors(mechanism_scale=SCALE))
    for name, shape in shapes.items():
        want = SCALE / math.sqrt(shape[0]) if name.endswith(".w") else SCALE
        assert math.isclose(fan[name], want, rel_tol=1e-6), (name, fan[name], want)
        assert math.isclose(const[name], SCALE, rel_tol=1e-6)
    # negative control: the two rules differ on every weight matrix wider than one input
    assert all(fan[k] < const[k] for k, s in shapes.items() if k.endswith(".w") and s[0] > 1)


def test_fan_in_log_prior_is_the_sum_of_the_layers_normals():
    mech = SymmetricCount(4, 2, width=8, depth=1)
    priors = Priors(mechanism_scale=SCALE, weight_scaling="fan_in")
    tr = trace(seed(lambda: sample_mechanism(mech, priors), 1)).get_trace()
    got = sum(float(tr[k]["fn"].log_prob(tr[k]["value"])) for k in mechanism_sites(mech))
    want = 0.0
    for name, shape in mechanism_sites(mech).items():
        sd = SCALE / math.sqrt(shape[0]) if name.endswith(".w") else SCALE
        want += float(norm.logpdf(np.asarray(tr[name]["value"]), 0.0, sd).sum())
    assert math.isclose(got, want, rel_tol=1e-5)


@pytest.mark.parametrize("mech", [SymmetricCount(5, 3, width=16), NeuralJoint((2, 3), width=8)])
def test_fan_in_bias_scales_each_layers_bias_by_its_weights_fan_in(mech):
    shapes = mechanism_sites(mech)
    both = _site_sds(mech, Priors(mechanism_scale=SCALE, weight_scaling="fan_in_bias"))
    weights = _site_sds(mech, Priors(mechanism_scale=SCALE, weight_scaling="fan_in"))
    biases = [k for k in shapes if k.endswith(".b")]
    assert biases  # the networks have biased layers
    for name in shapes:
        if name.endswith(".b"):
            fan_in = shapes[name[:-2] + ".w"][0]
            assert math.isclose(both[name], SCALE / math.sqrt(fan_in), rel_tol=1e-6), name
            assert math.isclose(weights[name], SCALE, rel_tol=1e-6)  # "fan_in" keeps biases at scale
        else:  # weight matrices as under "fan_in"; embeddings keep the scale
            assert math.isclose(both[name], weights[name], rel_tol=1e-6), name
    assert all(both[k] < weights[k] for k in biases)  # negative control: the rules differ on biases


def test_fan_in_bias_leaves_tables_alone():
    mech = Tabular((2, 3))
    assert _site_sds(mech, Priors(weight_scaling="fan_in_bias")) == _site_sds(mech, Priors())


def test_fan_in_leaves_tables_alone():
    mech = Tabular((2, 3))
    assert _site_sds(mech, Priors(weight_scaling="fan_in")) == _site_sds(mech, Priors())


def test_bad_weight_scaling_names_the_choices():
    with pytest.raises(ValueError, match="weight_scaling must be one of 'constant', 'fan_in', 'fan_in_bias'"):
        Priors(weight_scaling="he")
    assert Priors.from_dict(Priors(weight_scaling="fan_in").to_dict()).weight_scaling == "fan_in"
    old = Priors().to_dict()
    del old["weight_scaling"]  # a fit saved before the option: constant
    assert Priors.from_dict(old).weight_scaling == "constant"
