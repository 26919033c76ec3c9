"""``"infer_subject"`` for every learner family, not only logit-Q.

Each family's learning-rate-like parameter is drawn per subject from a population; the model's
per-episode log-likelihood must equal the core likelihood of that episode under its subject's
value (the literal check of tests/test_subject_hierarchy.py, there for logit-Q).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_likelihood as numpyro_log_likelihood

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference.spec import ModelSpec, initial_values
from bayes_diml.models import INFER_SUBJECT, Priors, params_from_sites

#: family -> (learner with one field per subject, that field): the other fields fixed.
PER_SUBJECT = {
    "bandit": (bd.BanditQ(INFER_SUBJECT, 2.0, 0.05), "alpha"),
    "hedge": (bd.Hedge(2.0, INFER_SUBJECT), "eps"),  # eta is the temperature: refused per subject
    "fp": (bd.FictitiousPlay(2.0, 0.05, INFER_SUBJECT), "prior_weight"),
    "ewa": (bd.EWA(INFER_SUBJECT, 0.5, 0.9, 2.0, 0.05), "phi"),
    "aspiration": (bd.Aspiration(INFER_SUBJECT, 2.0, 0.05, 0.2), "alpha"),
    "regret": (bd.RegretMatching(INFER_SUBJECT, 2.0, 0.05), "alpha"),
    "markovq": (bd.MarkovQ(INFER_SUBJECT, 2.0, 0.05), "alpha"),
}


#: Checked in the fast run: a level learner, a belief learner and a state-conditioned one; the rest
#: are slow (each family costs ~9 s, mostly compiling the model and the core likelihood).
FAST = ("bandit", "fp", "markovq")


@pytest.mark.parametrize(
    "family", [f if f in FAST else pytest.param(f, marks=pytest.mark.slow) for f in PER_SUBJECT]
)
@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_each_episode_is_scored_with_its_subjects_value(family):
    learner, field = PER_SUBJECT[family]
    rng = np.random.default_rng(1)
    # episodes 0 and 2 are one subject, 1 and 3 another; ragged lengths
    data = bd.Trajectories(
        rng.integers(0, 2, size=(4, 7, 2)), (2, 2), lengths=[7, 5, 7, 3], subjects=[5, 2, 5, 2]
    )
    mech = mechanisms.Tabular((2, 2))
    spec = ModelSpec.build(data, mech, learner, Priors())
    assert {f"{field}_mu", f"{field}_sigma", f"{field}_z"} <= set(spec.latent_names)
    sites = dict(initial_values(spec, jax.random.key(2), jitter=0.5))
    sites[f"{field}_z"] = jnp.array([-1.5, 1.5])  # two clearly different subjects
    sites[f"{field}_sigma"] = jnp.asarray(1.0)
    trace = numpyro.handlers.trace(
        numpyro.handlers.substitute(numpyro.handlers.seed(spec.model(), 0), data=sites)
    ).get_trace()
    values = np.asarray(trace[field]["value"])
    assert values.shape == (2,) and abs(values[0] - values[1]) > 1e-3
    # the table with its levels (the spec's mechanism has them for learners that learn from payoff
    # levels: BanditQ, EWA, Aspiration), not the centred table
    mech = spec.mechanism
    params = params_from_sites(mech, {k: v for k, v in sites.items() if k.startswith("u")})
    per_episode = numpyro_log_likelihood(spec.model(), {k: v[None] for k, v in sites.items()}, batch_ndims=1)
    got = (np.asarray(per_episode["actions"])[0] * data.scored_mask[:, :, None]).sum(axis=(1, 2))
    of = data.subject_index
    for m in (0, 1, 3):  # both subjects, a full and a ragged episode
        own = learner._replace(**{field: float(values[of[m]])})
        want = bd.log_likelihood(mech, params, own, data.subset([m]))
        # float32 model vs float32 core, summed over <= 14 terms in different orders: rtol 1e-4
        np.testing.assert_allclose(got[m], float(want), rtol=1e-4, err_msg=f"{family} episode {m}")
    # negative control: the other subject's value scores an episode differently
    other = learner._replace(**{field: float(values[1 - of[0]])})
    assert abs(float(bd.log_likelihood(mech, params, other, data.subset([0]))) - got[0]) > 1e-4
