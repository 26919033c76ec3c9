"""NumPyro models (installed as ``bayes_diml.models``)."""

from .bias import (
    BIAS,
    BIAS_FREE,
    bias_basis,
    bias_free_shape,
    bias_from_free,
    free_from_bias,
    infers_bias,
    sample_bias,
)
from .hierarchical import hierarchical_initial_values, hierarchical_site_names, population_summary
from .learner_spec import (
    check_fixed_learner,
    hierarchical_learner_fields,
    inferred_learner_fields,
    learner_fields,
    learner_from_sites,
    learner_latent_sites,
    resolve_learner,
    sample_learner,
)
from .logit_q import (
    REPORT_TABLE_LIMIT,
    deterministic_site_names,
    has_fixed_units,
    is_confounded,
    logit_q_model,
)
from .observation import episode_plate, observe_trajectories
from .policy import LearnerPolicy
from .priors import INFER, INFER_HIERARCHICAL, INFER_PER_AGENT, LEARNER_FIELDS, LEARNER_PRIOR_KINDS, Priors
from .sites import (
    PARAM_RECORD_LIMIT,
    free_from_table,
    mechanism_sites,
    param_site_names,
    params_from_sites,
    sample_mechanism,
    sites_from_params,
    sum_to_zero_basis,
)

__all__ = [
    "BIAS",
    "BIAS_FREE",
    "bias_basis",
    "bias_free_shape",
    "bias_from_free",
    "free_from_bias",
    "infers_bias",
    "sample_bias",
    "LearnerPolicy",
    "check_fixed_learner",
    "hierarchical_initial_values",
    "INFER",
    "INFER_PER_AGENT",
    "INFER_HIERARCHICAL",
    "hierarchical_learner_fields",
    "hierarchical_site_names",
    "learner_latent_sites",
    "population_summary",
    "LEARNER_FIELDS",
    "LEARNER_PRIOR_KINDS",
    "learner_fields",
    "REPORT_TABLE_LIMIT",
    "PARAM_RECORD_LIMIT",
    "Priors",
    "logit_q_model",
    "observe_trajectories",
    "episode_plate",
    "sample_learner",
    "sample_mechanism",
    "sum_to_zero_basis",
    "free_from_table",
    "mechanism_sites",
    "param_site_names",
    "params_from_sites",
    "sites_from_params",
    "resolve_learner",
    "learner_from_sites",
    "inferred_learner_fields",
    "is_confounded",
    "has_fixed_units",
    "deterministic_site_names",
]
