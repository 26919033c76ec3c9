"""The ``bayes-diml`` group: global options, and every command added from its own module.

A thin layer over the Python API: every command parses its flags, calls the package
(:func:`bayes_diml.environments.make`, :func:`bayes_diml.fit`, :class:`bayes_diml.Posterior`)
and prints the result with rich (:mod:`bayes_diml.cli.console`).
"""

from __future__ import annotations

import click

from bayes_diml.cli.bandit import bandit_command
from bayes_diml.cli.compare import compare_command, ppc_command
from bayes_diml.cli.console import EXIT_CODES
from bayes_diml.cli.counterfactual import counterfactual
from bayes_diml.cli.demo import demo
from bayes_diml.cli.design import design_command
from bayes_diml.cli.fit import fit_command
from bayes_diml.cli.options import add_global_flags
from bayes_diml.cli.paper import paper
from bayes_diml.cli.payoffs import payoffs
from bayes_diml.cli.plot import plot_command
from bayes_diml.cli.report import identify, summary
from bayes_diml.cli.sbc import sbc_command
from bayes_diml.cli.simulate import simulate
from bayes_diml.compilation_cache import cache_from_environment

__all__ = ["main"]

_EPILOG = (
    "Conventions: --json prints one JSON document on stdout (notes and warnings go to stderr); "
    "--quiet and --debug go before or after the command name; fit --strict turns convergence "
    "problems into exit code 3; old flag spellings still work for now and print a deprecation notice.\n\n"
    "\b\nExit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES)
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=_EPILOG
)
@click.version_option(package_name="bayes-diml", prog_name="bayes-diml")
@click.option(
    "--compilation-cache/--no-compilation-cache",
    default=True,
    show_default=True,
    help="Keep compiled programs on disk (~/.cache/bayes-diml/jax, or the directory in "
    "$BAYES_DIML_COMPILATION_CACHE; 'off' there turns it off) so that later runs of the same "
    "model skip XLA's compilation.",
)
def main(compilation_cache: bool) -> None:
    """Bayesian inverse mechanism learning from the action trajectories of learning agents.

    \b
    Typical session:
      bayes-diml simulate --env e2 --seed 0 --out data.npz
      bayes-diml fit data.npz --mechanism congestion --method nuts --beta 3 --out fit.nc
      bayes-diml summary fit.nc
      bayes-diml payoffs fit.nc --out payoffs.npz
      bayes-diml plot fit.nc --kind trace --out trace.png
      bayes-diml counterfactual fit.nc --beta-scale 1.4
      bayes-diml design fit.nc --edit toll --on-action 2 --grid 0:1:21 --out design.csv
      bayes-diml demo
    """  # noqa: D301 (click's \b, a backspace, keeps the session's line breaks)
    cache_from_environment(compilation_cache)


add_global_flags(main)


for _command in (
    simulate,
    fit_command,
    summary,
    payoffs,
    counterfactual,
    design_command,
    paper,
    identify,
    plot_command,
    compare_command,
    ppc_command,
    bandit_command,
    demo,
    sbc_command,
):
    main.add_command(add_global_flags(_command))
