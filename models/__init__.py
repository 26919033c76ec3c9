"""NumPyro models (installed as ``bayes_diml.models``)."""
