"""Flags and arguments several commands share: file suffixes, ``--prob``, the learner flags.

:func:`build_learner` and :func:`flag_errors` turn the flags into the library's objects
(:mod:`bayes_diml.registry`) and its :class:`~bayes_diml.registry.ParameterError` into a click
error against the flag at fault.

The conventions every command follows live here too: ``--json`` (:data:`json_option`),
``--strict`` (:data:`strict_option`), ``--quiet`` and ``--debug`` (:func:`add_global_flags`,
accepted on the group and on every command), and old flag spellings kept as hidden aliases
that print a one-line deprecation notice (:func:`deprecated_alias`, :class:`AliasedChoice`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from bayes_diml.cli.console import DEBUG, QUIET
from bayes_diml.inference import Posterior, StackedPosterior, load, load_stacked
from bayes_diml.inference.stacked import is_stacked
from bayes_diml.learners import FAMILIES, learner_family, parameter_names
from bayes_diml.registry import ParameterError, make_learner

__all__ = [
    "deprecation_notice",
    "DeprecatedAlias",
    "deprecated_alias",
    "AliasedChoice",
    "json_option",
    "strict_option",
    "add_global_flags",
    "TRAJECTORY_SUFFIXES",
    "FIT_SUFFIXES",
    "FIXED_BY_DEFAULT",
    "prob_option",
    "bias_option",
    "learner_options",
    "load_fit",
    "check_out",
    "flag_errors",
    "build_learner",
]

TRAJECTORY_SUFFIXES = (".npz", ".csv", ".parquet", ".pq")
FIT_SUFFIXES = (".nc", ".zarr")
#: Parameters ``fit`` keeps at the family's default unless given (weakly identified).
FIXED_BY_DEFAULT = ("n0", "prior_weight")


def deprecation_notice(old: str, new: str) -> None:
    """Print one line to stderr: the spelling ``old`` is deprecated, use ``new``."""
    click.echo(
        f"Deprecated: {old} is now {new}; the old spelling will be removed in a later release.", err=True
    )


class DeprecatedAlias(click.Option):
    """A hidden old spelling of a flag: its value goes to the flag ``target``, with a notice.

    Use through :func:`deprecated_alias`. The alias has its own destination (so that click
    can tell which spelling was typed) and exposes no value of its own; when it is given on
    the command line it prints :func:`deprecation_notice` and fills ``target``'s parameter,
    which then keeps that value over its default. Giving both spellings is a usage error.
    """

    def __init__(self, param_decls: list[str], *, target: str, replaced_by: str, **attrs: Any) -> None:
        super().__init__(param_decls, hidden=True, expose_value=False, **attrs)
        self.target = target
        self.replaced_by = replaced_by

    def handle_parse_result(self, ctx: click.Context, opts: Mapping[str, Any], args: list[str]) -> Any:
        """Process the value as usual; if typed, warn and move it to the target flag."""
        value, args = super().handle_parse_result(ctx, opts, args)
        if ctx.get_parameter_source(self.name) is ParameterSource.COMMANDLINE:
            old = self.opts[0]
            if self.target in opts or ctx.get_parameter_source(self.target) is ParameterSource.COMMANDLINE:
                raise click.UsageError(
                    f"{old} is the old spelling of {self.replaced_by}; give only {self.replaced_by}."
                )
            deprecation_notice(old, self.replaced_by)
            ctx.params[self.target] = value
            ctx.set_parameter_source(self.target, ParameterSource.COMMANDLINE)
        return value, args


def deprecated_alias(old: str, new: str, target: str, **attrs: Any) -> Callable:
    """Return a decorator adding ``old`` as a hidden, deprecated spelling of the flag ``new``.

    Parameters
    ----------
    old, new : the flags, e.g. ``"--warmup"`` and ``"--num-warmup"``.
    target : the parameter name of ``new`` (e.g. ``"num_warmup"``).
    **attrs : passed to :class:`click.Option` (give the same ``type`` as ``new``).
    """
    name = "deprecated_" + old.lstrip("-").replace("-", "_").lower()
    return click.option(old, name, cls=DeprecatedAlias, target=target, replaced_by=new, **attrs)


class AliasedChoice(click.Choice):
    """A case-insensitive choice whose old values still work, with a deprecation notice.

    ``aliases`` maps an old value to the value the command receives; ``spellings`` (optional)
    maps an old value to what the notice recommends instead (default ``FLAG NEW``). Only the
    current choices are shown in --help.
    """

    def __init__(
        self,
        choices: list[str] | tuple[str, ...],
        aliases: Mapping[str, str],
        spellings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(list(choices), case_sensitive=False)
        self.aliases = {k.lower(): v for k, v in aliases.items()}
        self.spellings = dict(spellings or {})

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the value; an old value is replaced by its new one after a notice."""
        if isinstance(value, str) and value.lower() in self.aliases:
            flag = param.opts[0] if param is not None and param.opts else "the value"
            new = self.aliases[value.lower()]
            deprecation_notice(f"{flag} {value}", self.spellings.get(value.lower(), f"{flag} {new}"))
            return new
        return super().convert(value, param, ctx)


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as one JSON document on stdout (numbers as numbers, NaN as null) and "
    "nothing else; notes, warnings and progress go to stderr.",
)

strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Exit with code 3 when the fit finishes with divergences or R-hat / ESS problems (a "
    "ConvergenceWarning); the fit is still saved.",
)


def _set_meta(key: str) -> Callable:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta[key] = True

    return callback


def _global_flags() -> list[click.Option]:
    return [
        click.Option(
            ["--quiet", "-q"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_meta(QUIET),
            help="No progress bars and no notes (results, warnings and errors are still shown).",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_meta(DEBUG),
            help="Show the full traceback of an error instead of the one-line message.",
        ),
    ]


def add_global_flags(command: click.Command) -> click.Command:
    """Add --quiet/-q and --debug to ``command`` (the group or a command); both may go in either place."""
    command.params.extend(_global_flags())
    return command


prob_option = click.option(
    "--prob",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.9,
    show_default=True,
    help="Probability of the equal-tailed credible intervals.",
)

bias_option = click.option(
    "--bias",
    type=click.Choice(["none", "infer"], case_sensitive=False),
    default=None,
    help="Action bias (habit) per agent and action, added to the learner's logits: none, or infer "
    "(default: infer with --learner-family auto, none otherwise) "
    "(sum-to-zero per agent, Normal prior of sd Priors.bias = 1). Use it when agents may prefer "
    "an action out of habit: the payoff differences then widen where the data cannot tell habit "
    "from incentives. See docs/learners.md.",
)

_LEARNER_FLAGS = {
    "eta": "Hedge's learning rate",
    "lam": "EWA's inverse temperature",
    "phi": "EWA's attraction decay",
    "delta": "EWA's weight of forgone payoffs",
    "rho": "EWA's experience decay",
    "n0": "EWA's initial experience N(0)",
    "prior_weight": "fictitious play's weight of the initial value",
    "h": "the aspiration learner's aspiration adaptation rate",
}
#: Flags whose spelling is not the parameter's name (``-h`` is --help).
_FLAG_SPELLINGS = {"h": "--aspiration-rate"}


def _flag(name: str) -> str:
    return _FLAG_SPELLINGS.get(name, "--" + name.replace("_", "-"))


def learner_options(help_text: str, fit: bool = False) -> Callable:
    """Add the --learner-family flag and one flag per learner parameter (other than alpha, beta, eps)."""

    def wrap(f: Callable) -> Callable:
        for name in reversed(list(_LEARNER_FLAGS)):
            default = ""
            if fit:
                default = " (default: 1, fixed)" if name in FIXED_BY_DEFAULT else " (default: infer)"
            f = click.option(
                _flag(name), name, default=None, help=f"{_LEARNER_FLAGS[name]}: {help_text}{default}"
            )(f)
        auto = (
            " auto: every family (temperature fixed at 1) and two payoff-blind nulls, stacked by "
            "leave-one-episode-out elpd (docs/model_comparison.md)."
            if fit
            else ""
        )
        return click.option(
            "--learner-family",
            type=click.Choice([*FAMILIES, "auto"] if fit else list(FAMILIES), case_sensitive=False),
            default="logitq",
            show_default=True,
            help="Learner family: logitq (LogitQ), bandit (BanditQ: own payoff only), hedge "
            "(exponential weights), fp (smoothed fictitious play), ewa (experience-weighted attraction), "
            "aspiration (Bush-Mosteller with an adaptive aspiration), regret (smoothed regret matching), "
            "markovq (Q conditioned on the opponents' last profile). See docs/learners.md." + auto,
        )(f)

    return wrap


def load_fit(path: Path) -> Posterior | StackedPosterior:
    """Load a fit (stacked: ``load_stacked``, else ``bayes_diml.load``), the suffix checked first."""
    if path.suffix not in FIT_SUFFIXES:  # Posterior.save/load read the suffix case-sensitively
        raise click.BadParameter(
            f"{path} does not look like a fit: expected a .nc or .zarr file written by `bayes-diml fit`.",
            param_hint="FIT",
        )
    return load_stacked(path) if is_stacked(path) else load(path)


def check_out(path: Path, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """Validate an output path before any work is done (fits: exact suffix, as ``Posterior.save``)."""
    suffix = path.suffix if suffixes == FIT_SUFFIXES else path.suffix.lower()
    if suffix not in suffixes:
        raise click.BadParameter(
            f"{path}: unknown suffix {path.suffix!r}; use one of {', '.join(suffixes)}.", param_hint=option
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"{path}: the folder {parent} does not exist.", param_hint=option)
    return path


@contextlib.contextmanager
def flag_errors() -> Iterator[None]:
    """Turn a :class:`~bayes_diml.registry.ParameterError` raised inside into a bad value of its flag."""
    try:
        yield
    except ParameterError as exc:
        raise click.BadParameter(exc.message, param_hint=_flag(exc.parameter)) from None


def build_learner(family: str, given: dict[str, str | None], base: dict[str, Any], numbers_only: bool) -> Any:
    """Build a learner of ``family`` from the CLI flags ``given`` over the values ``base``.

    A flag of a parameter the family does not have is a usage error.
    """
    names = parameter_names(learner_family(family))
    bad = [n for n, v in given.items() if v is not None and n not in names]
    if bad:
        flags = ", ".join(_flag(n) for n in bad)
        raise click.UsageError(
            f"{flags} {'does' if len(bad) == 1 else 'do'} not apply to --learner-family {family} "
            f"(its parameters: {', '.join(names)})."
        )
    values = {**base, **{n: v for n, v in given.items() if v is not None}}
    with flag_errors():
        return make_learner(family, numbers_only=numbers_only, **values)
