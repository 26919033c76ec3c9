"""``--group G`` and ``--at NAME=VALUE``: the payoff table a command answers for.

A grouped fit (``fit --group-by``) has one table per group, a covariate fit (``fit --mechanism
covariate``) a table that moves with its covariates. :func:`context_options` adds both flags to
a command; :func:`select_context` turns a loaded fit into the ordinary tabular posterior of one
group (``Posterior.for_group``) or of the table at one covariate value
(``Posterior.at_covariates``), with a usage error that names what is missing or wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from bayes_diml.mechanisms import CovariateTabular, GroupedTabular

__all__ = ["context_options", "parse_at", "select_context"]


def parse_at(values: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Parse ``--at`` values (``NAME=VALUE``, repeatable, or ``a=1,b=2``) into ``{name: value}``.

    Raises click.BadParameter for a part without ``=``, an empty name, a value that is not a
    number, or a name given twice.
    """
    out: dict[str, float] = {}
    for text in values:
        for part in str(text).split(","):
            name, sep, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name or not value:
                raise click.BadParameter(
                    f"expected NAME=VALUE (e.g. price=1.5, or price=1.5,week=2); got {part!r}.",
                    param_hint="--at",
                )
            try:
                number = float(value)
            except ValueError:
                raise click.BadParameter(
                    f"the value of {name!r} must be a number; got {value!r}.", param_hint="--at"
                ) from None
            if name in out:
                raise click.BadParameter(f"covariate {name!r} is given twice.", param_hint="--at")
            out[name] = number
    return out


def _at_callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, float]:
    return parse_at(value)


def context_options(f: Callable) -> Callable:
    """Add ``--group G`` and ``--at NAME=VALUE`` (parameters ``group``, ``at``) to a command."""
    f = click.option(
        "--at",
        "at",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_at_callback,
        help="A covariate fit (fit --mechanism covariate): answer for the payoff table at this covariate "
        "value; repeat it or write price=1,week=2 (every covariate of the fit).",
    )(f)
    return click.option(
        "--group",
        default=None,
        metavar="G",
        help="A grouped fit (fit --group-by): answer for group G's payoff table.",
    )(f)


def select_context(
    post: Any,
    group: str | None,
    at: Mapping[str, float] | None,
    *,
    group_hint: str = "",
    covariate_hint: str = "",
) -> Any:
    """Return ``post.for_group(group)``, ``post.at_covariates(at)`` or ``post`` itself.

    click.UsageError for --at on a fit without covariates, --group on an ungrouped fit, both
    given, a covariate fit without --at (naming its covariates) or a grouped fit without
    --group (naming its groups; ``group_hint`` / ``covariate_hint`` are appended to those two
    messages); click.BadParameter for an unknown group or unknown, missing or non-finite
    covariates.
    """
    at = dict(at or {})
    mech = getattr(post, "mechanism", None)
    if mech is None and getattr(post, "context", None) is not None:  # a stacked fit (learner="auto")
        mech = post.best.mechanism
    groups = tuple(mech.groups) if isinstance(mech, GroupedTabular) else ()
    names = tuple(mech.covariate_names) if isinstance(mech, CovariateTabular) else ()
    if group is not None and at:
        raise click.UsageError("give --group or --at, not both: a fit has groups or covariates.")
    if at:
        if not names:
            raise click.UsageError(
                "--at applies to a covariate fit (fit --mechanism covariate --covariates NAMES); "
                "this fit has no covariates."
            )
        try:
            return post.at_covariates(at)
        except ValueError as exc:  # unknown, missing or non-finite covariates, named
            raise click.BadParameter(str(exc), param_hint="--at") from None
    if group is not None:
        if not groups:
            raise click.UsageError(
                "--group applies to a grouped fit (fit --group-by COLUMN); this fit is not grouped."
            )
        if group not in groups:
            raise click.BadParameter(
                f"unknown group {group!r}; the groups are {', '.join(groups)}.", param_hint="--group"
            )
        return post.for_group(group)
    if groups:
        raise click.UsageError(
            f"this fit has one payoff table per group ({', '.join(groups)}): pass --group G{group_hint}."
        )
    if names:
        example = ",".join(f"{c}=0" for c in names)
        raise click.UsageError(
            f"this fit's payoff table moves with the covariates {', '.join(names)}: pass --at "
            f"NAME=VALUE for each (e.g. --at {example}){covariate_hint}."
        )
    return post
