"""NumPyro models (installed as ``bayes_diml.models``)."""

from .logit_q import (
    INFER,
    INFER_PER_AGENT,
    LEARNER_FIELDS,
    REPORT_TABLE_LIMIT,
    Priors,
    deterministic_site_names,
    free_from_table,
    has_fixed_units,
    inferred_learner_fields,
    is_confounded,
    learner_from_sites,
    logit_q_model,
    mechanism_sites,
    params_from_sites,
    resolve_learner,
    sum_to_zero_basis,
)

__all__ = [
    "INFER",
    "INFER_PER_AGENT",
    "LEARNER_FIELDS",
    "REPORT_TABLE_LIMIT",
    "Priors",
    "logit_q_model",
    "sum_to_zero_basis",
    "free_from_table",
    "mechanism_sites",
    "params_from_sites",
    "resolve_learner",
    "learner_from_sites",
    "inferred_learner_fields",
    "is_confounded",
    "has_fixed_units",
    "deterministic_site_names",
]
