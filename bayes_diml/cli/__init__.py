"""Command line ``bayes-diml``: a thin layer over the Python API (the application floor).

Each command group lives in its own module; :func:`main` is the ``click`` group that the
``bayes-diml`` script and ``python -m bayes_diml`` run.
"""

from bayes_diml.cli.app import main

__all__ = ["main"]
