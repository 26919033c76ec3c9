"""Errors and warnings of the fits: what a user catches or filters by category."""

__all__ = ["ConvergenceWarning", "ConfoundingWarning", "SpecificationWarning", "FitError", "CheckpointError"]


class ConvergenceWarning(UserWarning):
    """Sampler or optimiser diagnostics suggest the result is unreliable."""


class ConfoundingWarning(UserWarning):
    """A reported quantity is not identified by the data (e.g. beta vs payoff scale)."""


class SpecificationWarning(UserWarning):
    """The model restricts something the data could inform (e.g. centred payoffs for BanditQ / EWA)."""


class FitError(RuntimeError):
    """A fit could not proceed (non-finite log density, too large for the method, ...)."""


class CheckpointError(FitError):
    """A checkpoint directory cannot be used: written for another fit, damaged, altered or foreign.

    Raised before anything in the directory is used; the message names the file and what differs.
    """
