"""``python -m bayes_diml``: the command line (see :mod:`bayes_diml.cli`)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="bayes-diml")
