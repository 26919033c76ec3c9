"""Inference: MAP, SVI, NUTS, Laplace (installed as ``bayes_diml.inference``)."""
