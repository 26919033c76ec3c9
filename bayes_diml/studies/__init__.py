"""Studies on top of the inference floor: the DIML paper's experiments, simulation-based
calibration and the end-to-end demo (the application floor)."""

from bayes_diml.studies import calibration, demo, experiments

__all__ = ["calibration", "demo", "experiments"]
