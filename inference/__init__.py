"""Inference: MAP, Laplace, SVI and NUTS behind one ``fit`` (installed as ``bayes_diml.inference``)."""

from .auto import stack_fits
from .bagging import ROBUST, bootstrap_indices, fit_bagged
from .compare import ParetoKWarning, compare
from .design import Design
from .design import box as design_box
from .design import grid as design_grid
from .errors import CheckpointError, ConfoundingWarning, ConvergenceWarning, FitError, SpecificationWarning
from .fit import METHODS, fit
from .identification import identification_table, support_categories, support_mask
from .interventions import EditedMechanism
from .map import MAPConfig, MAPResult, fit_map_spec
from .nonfinite import NonFiniteError, diagnose_nonfinite
from .posterior import Posterior, load
from .ppc import BehaviourCheck, ppc_behaviour
from .samplers import DENSE_MASS_MAX_DIM, LaplaceConfig, NUTSConfig, SVIConfig, unconstrained_dimension
from .spec import ModelSpec
from .stacked import StackedPosterior, load_stacked

__all__ = [
    "DENSE_MASS_MAX_DIM",
    "unconstrained_dimension",
    "fit",
    "fit_bagged",
    "bootstrap_indices",
    "ROBUST",
    "NonFiniteError",
    "CheckpointError",
    "diagnose_nonfinite",
    "compare",
    "ParetoKWarning",
    "ppc_behaviour",
    "BehaviourCheck",
    "load",
    "METHODS",
    "Posterior",
    "StackedPosterior",
    "load_stacked",
    "stack_fits",
    "EditedMechanism",
    "Design",
    "design_grid",
    "design_box",
    "support_mask",
    "ModelSpec",
    "MAPConfig",
    "MAPResult",
    "fit_map_spec",
    "NUTSConfig",
    "SVIConfig",
    "LaplaceConfig",
    "ConvergenceWarning",
    "ConfoundingWarning",
    "SpecificationWarning",
    "FitError",
    "identification_table",
    "support_categories",
]
