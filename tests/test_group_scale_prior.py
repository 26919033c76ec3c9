"""The prior of a grouped fit's between-group scale: lognormal (default) or half-normal."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.handlers import seed, trace

from bayes_diml import mechanisms
from bayes_diml.inference.groups import group_table_priors
from bayes_diml.inference.persistence import mechanism_from_spec, mechanism_to_spec
from bayes_diml.models import GROUP_SCALE, Priors, group_scale_distribution, sample_mechanism

K = (2, 2)


def _mech(**kw):
    return mechanisms.GroupedTabular(K, ("A", "B"), **kw)


def _prior_draws(mech, n=200_000):
    return np.asarray(group_scale_distribution(mech).sample(jax.random.key(0), (n,)))


@pytest.mark.parametrize(
    ("kw", "kind"),
    [({}, dist.LogNormal), ({"group_scale_dist": "half_normal"}, dist.HalfNormal)],
)
def test_the_model_samples_group_scale_from_the_chosen_prior(kw, kind):
    tr = trace(seed(lambda: sample_mechanism(_mech(**kw), Priors()), 0)).get_trace()
    assert isinstance(tr[GROUP_SCALE]["fn"], kind)


@pytest.mark.parametrize("kw", [{}, {"group_scale_dist": "half_normal"}, {"group_scale_prior": 0.4}])
def test_median_and_rms_match_the_prior_draws(kw):
    """``group_scale_median`` (the start) and ``group_scale_rms`` (identification's prior sd)."""
    mech = _mech(**kw)
    x = _prior_draws(mech)
    # 200k draws: the sample median and rms are within ~0.5% of the truth (5 standard errors)
    assert math.isclose(np.median(x), mech.group_scale_median, rel_tol=0.01)
    assert math.isclose(np.sqrt(np.mean(x**2)), mech.group_scale_rms, rel_tol=0.01)


def test_the_two_priors_differ_where_it_matters():
    """Negative control: the half-normal puts mass near 0, the lognormal almost none."""
    dists = ("lognormal", "half_normal")
    near_zero = {d: np.mean(_prior_draws(_mech(group_scale_dist=d)) < 0.1) for d in dists}
    assert near_zero["half_normal"] > 0.07  # P(|N(0,1)| < 0.1) = 0.080
    assert near_zero["lognormal"] < 1e-4  # P(N(0, 0.5) < log 0.1) = 2e-6


def test_identification_prior_of_a_group_uses_the_rms():
    for d, rms in (("lognormal", math.exp(0.25)), ("half_normal", 1.0)):
        mech = _mech(group_scale_dist=d)
        assert math.isclose(mech.group_scale_rms, rms)
        got = group_table_priors(Priors(mechanism_scale=1.0), mech).mechanism_scale
        assert math.isclose(got, math.sqrt(1.0 + rms**2))


def test_bad_prior_settings_name_the_problem():
    with pytest.raises(ValueError, match="group_scale_dist must be one of 'lognormal', 'half_normal'"):
        _mech(group_scale_dist="cauchy")
    with pytest.raises(ValueError, match="group_scale_log_sd must be > 0"):
        _mech(group_scale_log_sd=0.0)


def test_saved_mechanisms_keep_their_prior():
    for d in ("lognormal", "half_normal"):
        mech = _mech(group_scale_dist=d, group_scale_log_sd=0.7)
        assert mechanism_from_spec(json.loads(json.dumps(mechanism_to_spec(mech)))) == mech
    # a fit saved before the option existed had the half-normal prior
    old = mechanism_to_spec(_mech())
    del old["fields"]["group_scale_dist"], old["fields"]["group_scale_log_sd"]
    assert mechanism_from_spec(old).group_scale_dist == "half_normal"
