"""``bayes-diml design``: choose a mechanism edit under posterior uncertainty (``Posterior.design``).

A thin layer: the flags name an edit (a built-in of :mod:`bayes_diml.edits` on the actions
given by ``--on-action``, or a Python function ``module:function``), a grid of its parameter
(``--grid LOW:HIGH:NUM``, several for a product grid) and an objective; the command calls
``Posterior.design`` and writes ``Design.table()`` (``--out``, CSV), ``Design.plot()``
(``--plot``) or ``Design.summary()`` with the rows (``--json``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from bayes_diml.cli.console import (
    emit_json,
    fmt,
    note,
    percent,
    stderr,
    stdout,
    user_errors,
    visible_warnings,
    warning_records,
)
from bayes_diml.cli.context import context_options, select_context
from bayes_diml.cli.options import check_out, json_option, load_fit, prob_option
from bayes_diml.edits import EDITS, Edit, make_edit
from bayes_diml.inference import Design, StackedPosterior, design_grid

__all__ = ["design_command", "GridAxis", "ObjectiveName", "CONTRACT_COLUMNS", "FIGURE_SUFFIXES"]

#: The first columns of ``--out``, in order (``theta`` is ``theta_0, theta_1, ...`` for several dimensions).
CONTRACT_COLUMNS = ("theta", "mean", "lower", "upper", "prob_improvement", "mcse", "chosen")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
#: Objectives besides ``share:K`` (``agent-welfare`` is accepted for ``agent_welfare``).
_OBJECTIVES = ("welfare", "agent_welfare", "revenue")
#: Candidates printed in full; larger grids print the best ones (``--out`` has them all).
_MAX_ROWS = 40


class GridAxis(click.ParamType):
    """``LOW:HIGH:NUM``: ``NUM`` evenly spaced values from ``LOW`` to ``HIGH`` (both included)."""

    name = "LOW:HIGH:NUM"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return ``(low, high, num)``: two finite floats and an int >= 1."""
        if isinstance(value, tuple):
            return value
        parts = str(value).split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            low, high, num = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            self.fail(f"{value!r} is not LOW:HIGH:NUM (e.g. 0:1:21: 21 values from 0 to 1).", param, ctx)
        if not (np.isfinite(low) and np.isfinite(high)):
            self.fail(f"{value!r}: LOW and HIGH must be finite numbers.", param, ctx)
        if num < 1:
            self.fail(f"{value!r}: NUM must be at least 1.", param, ctx)
        return low, high, num


class ObjectiveName(click.ParamType):
    """``welfare``, ``agent_welfare``, ``revenue`` or ``share:K`` (the share of agent-steps on action K)."""

    name = "welfare|agent_welfare|revenue|share:K"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the objective's name as ``Posterior.design`` spells it."""
        text = str(value).strip().lower()
        if text.startswith("share:"):
            k = text.split(":", 1)[1]
            if not k.isdigit():
                self.fail(f"{value!r}: write share:K with an action K >= 0 (e.g. share:2).", param, ctx)
            return f"share:{int(k)}"
        name = text.replace("-", "_")
        if name not in _OBJECTIVES:
            self.fail(f"{value!r} is not one of {', '.join(_OBJECTIVES)} or share:K.", param, ctx)
        return name


@contextlib.contextmanager
def _working_directory_importable() -> Iterator[None]:
    """Let ``import`` find modules in the working directory (as ``python -m`` does) while inside."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            sys.path.remove(cwd)


def import_hook(spec: str) -> Edit:
    """Return the function named by ``module:function`` (imported; the working directory is searched)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"{spec!r}: write a Python edit as module:function.", param_hint="--edit")
    try:
        with _working_directory_importable():
            obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: report why it did not import
        raise click.BadParameter(
            f"cannot import module {module_name!r} ({type(exc).__name__}: {exc}).", param_hint="--edit"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise click.BadParameter(f"module {module_name!r} has no {attr!r}.", param_hint="--edit")
        obj = getattr(obj, part)
    if not callable(obj):
        raise click.BadParameter(
            f"{spec} is a {type(obj).__name__}, not a function edit(u, joint, theta).", param_hint="--edit"
        )
    return obj


def build_edit(name: str, actions: tuple[int, ...], n_grids: int) -> tuple[Edit, str]:
    """Return the edit of ``--edit`` / ``--on-action`` and its display name; check the grid count.

    A built-in needs at least one action and 1 grid (one theta shared by the actions) or one
    grid per action; a ``module:function`` takes no actions and any number of grids.
    """
    if ":" in name:
        if actions:
            raise click.UsageError(
                f"--on-action applies to the built-in edits ({', '.join(EDITS)}), not to the "
                f"Python edit {name}; it chooses the actions itself."
            )
        return import_hook(name), name
    if name not in EDITS:
        raise click.BadParameter(
            f"unknown edit {name!r}; choose one of {', '.join(EDITS)} or give a Python function as "
            "module:function.",
            param_hint="--edit",
        )
    if not actions:
        raise click.UsageError(f"--edit {name} needs at least one --on-action K (the action it acts on).")
    if n_grids not in (1, len(actions)):
        raise click.UsageError(
            f"{n_grids} --grid flags for {len(actions)} --on-action flags: give one --grid (one theta "
            "shared by the actions) or one per action, in the same order."
        )
    try:
        edit = make_edit(name, actions)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--on-action") from None
    on = ", ".join(str(a) for a in actions)
    return edit, f"{name} on action{'s' if len(actions) > 1 else ''} {on}"


def _check_actions(actions: tuple[int, ...], objective: str, n_actions: tuple[int, ...]) -> None:
    """Actions named by --on-action and share:K must exist in the game (0 .. max K_i - 1)."""
    top = max(n_actions)
    bad = [a for a in actions if a >= top]
    if bad:
        raise click.BadParameter(
            f"action {bad[0]} is not in the game: its actions are 0..{top - 1}.", param_hint="--on-action"
        )
    if objective.startswith("share:") and int(objective.split(":")[1]) >= top:
        raise click.BadParameter(
            f"{objective}: action {objective.split(':')[1]} is not in the game; its actions are "
            f"0..{top - 1}.",
            param_hint="--objective",
        )


def contract_table(design: Design) -> pd.DataFrame:
    """Return ``Design.table()`` for ``--out``: ``chosen`` as ``true``/``false``."""
    table = design.table()
    table["chosen"] = np.where(table["chosen"].to_numpy(), "true", "false")
    return table


def _theta_text(theta: np.ndarray) -> str:
    return fmt(theta[0]) if len(theta) == 1 else "(" + ", ".join(fmt(t) for t in theta) + ")"


def _rows_shown(design: Design) -> np.ndarray:
    """Return the candidates printed: all, or the best ``_MAX_ROWS`` by the mean and the chosen one."""
    n = len(design.thetas)
    if n <= _MAX_ROWS:
        return np.arange(n)
    best = np.argsort(-design.sign * design.draws.mean(0), kind="stable")[:_MAX_ROWS]
    return np.sort(np.union1d(best, [design.chosen]))


def candidates_table(design: Design) -> Table:
    """Return a rich table of the candidates (the chosen one marked)."""
    t = design.table()
    thetas = [c for c in t.columns if c.startswith("theta")]
    goal = "maximise" if design.maximize else "minimise"
    table = Table(
        title=f"{design.objective} ({goal}): posterior mean and {percent(design.prob)} interval",
        title_justify="left",
        caption="*: the chosen candidate; P(better): posterior probability of improving on the status "
        "quo; mcse: Monte Carlo standard error of the mean.",
    )
    # short headers and 3 significant digits: a 2-dimensional grid fits 80 columns
    for col in (*thetas, "mean", "lower", "upper", "P(better)", "mcse", ""):
        table.add_column(col, justify="right", no_wrap=True)
    for c in _rows_shown(design):
        row = t.iloc[c]
        cells = [fmt(row[x], 6) for x in thetas]
        cells += [fmt(row[x], 3) for x in ("mean", "lower", "upper", "prob_improvement")]
        cells.append(fmt(row["mcse"], 2))
        table.add_row(*cells, "*" if c == design.chosen else "", style="bold" if c == design.chosen else None)
    return table


def decision_line(design: Design) -> str:
    """Return one line: the chosen theta, its mean +- MCSE, its probability of improvement, the EVPI."""
    s = design.summary()
    return (
        f"Chosen theta = {_theta_text(design.chosen_theta)} (criterion {design.criterion}): "
        f"{design.objective} {fmt(s['chosen_mean'])} +- {fmt(s['chosen_mcse'], 2)} (posterior mean +- MCSE; "
        f"status quo {fmt(s['status_quo_mean'])}), P(improvement) {fmt(s['chosen_prob_improvement'], 3)}; "
        f"EVPI {fmt(s['evpi'])} +- {fmt(s['evpi_mcse'], 2)}."
    )


def save_plot(design: Design, path: Path) -> None:
    """Write ``Design.plot()``'s figure to ``path`` and free it."""
    import matplotlib.pyplot as plt

    ax = design.plot()
    try:
        ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(ax.figure)


@click.command("design")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@context_options
@click.option(
    "--edit",
    "edit_name",
    required=True,
    metavar="NAME|MODULE:FUNCTION",
    help=f"The edit: a built-in ({', '.join(EDITS)}) acting on the --on-action actions, or a Python "
    "function edit(u, joint, theta) -> payoffs as module:function (imported; the working "
    "directory is searched).",
)
@click.option(
    "--on-action",
    "actions",
    type=click.IntRange(min=0),
    multiple=True,
    metavar="K",
    help="An action the built-in edit acts on (repeat for several; theta_j goes with the j-th).",
)
@click.option(
    "--grid",
    "grids",
    type=GridAxis(),
    multiple=True,
    required=True,
    help="Candidate values of theta: NUM values from LOW to HIGH. Repeat for a product grid, one "
    "--grid per --on-action; one --grid with several actions shares theta.",
)
@click.option(
    "--objective",
    type=ObjectiveName(),
    metavar="welfare|agent_welfare|revenue|share:K",
    default="welfare",
    show_default=True,
    help="welfare (total payoff per step under the unedited mechanism: tolls cancel), agent_welfare "
    "(edited payoffs), revenue (what the edit takes from the agents), share:K (share of "
    "agent-steps on action K).",
)
@click.option("--minimize", is_flag=True, help="Minimise the objective (default: maximise).")
@click.option(
    "--criterion",
    type=click.Choice(["mean", "quantile", "prob_improvement", "prob-improvement"], case_sensitive=False),
    default="mean",
    show_default=True,
    help="Choose the best posterior mean, the best --quantile (risk averse) or the highest "
    "probability of improving on the status quo.",
)
@click.option(
    "--quantile",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="The quantile of --criterion quantile.",
)
@prob_option
@click.option(
    "--episodes", type=click.IntRange(min=1), default=100, show_default=True, help="Episodes per draw."
)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Steps T (default: the data's).")
@click.option("--draws", type=click.IntRange(min=1), default=200, show_default=True, help="Posterior draws.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one CSV row per candidate: theta (theta_0, theta_1, ...), mean, lower, upper, "
    "prob_improvement, mcse, chosen (true/false), mean_improvement, mcse_improvement.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the figure of the candidates (.png, .pdf or .svg).",
)
@json_option
@user_errors
def design_command(
    fit_path: Path,
    group: str | None,
    at: dict[str, float],
    edit_name: str,
    actions: tuple[int, ...],
    grids: tuple[tuple[float, float, int], ...],
    objective: str,
    minimize: bool,
    criterion: str,
    quantile: float,
    prob: float,
    episodes: int,
    steps: int | None,
    draws: int,
    seed: int,
    out: Path | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """Choose a mechanism edit under posterior uncertainty (Posterior.design).

    For each of DRAWS posterior draws and each candidate theta of the grid, simulates EPISODES
    episodes under the edited mechanism, beside the status quo with the same random numbers,
    and evaluates the objective; prints each candidate's posterior mean, interval, probability
    of improving on the status quo and Monte Carlo standard error, the chosen theta and the
    expected value of perfect information (EVPI). With --json, stdout holds one JSON object:
    Design.summary() (objective, criterion, chosen, chosen_theta, chosen_mean, chosen_mcse,
    chosen_prob_improvement, status_quo_mean, evpi, evpi_mcse, n_draws, prob), the edit, episodes,
    steps, columns and rows (one object per candidate, as --out), out, plot and warnings.

    A grouped fit needs --group G, a covariate fit --at NAME=VALUE: the design answers for that
    group's table or the table at that covariate value.
    """
    if out is not None:
        check_out(out, (".csv",))
    if plot is not None:
        check_out(plot, FIGURE_SUFFIXES, option="--plot")
    edit, edit_text = build_edit(edit_name, actions, len(grids))
    criterion = criterion.lower().replace("-", "_")
    err = stderr()
    with visible_warnings(err) as shown:
        post = select_context(load_fit(fit_path), group, at)
        if isinstance(post, StackedPosterior):
            note(err, "[bold yellow]Note:[/] a stacked fit: the learner families are mixed by their weights.")
        _check_actions(actions, objective, tuple(post.data.n_actions))
        result = post.design(
            edit,
            design_grid(*grids),
            objective,
            n_episodes=episodes,
            T=steps,
            criterion=criterion,
            maximize=not minimize,
            prob=prob,
            quantile=quantile,
            n_draws=draws,
            seed=seed,
        )
        if plot is not None:
            save_plot(result, plot)
    table = contract_table(result)
    if out is not None:
        table.to_csv(out, index=False)
    T = steps or post.data.n_steps
    if result.draws.shape[0] == 1:
        note(
            err, "[bold yellow]Note:[/] the fit has one draw: intervals and MCSE hold simulation noise only."
        )
    if as_json:
        emit_json(
            {
                **result.summary(),
                "edit": edit_name,
                "actions": list(actions),
                "episodes": episodes,
                "steps": T,
                "columns": list(table.columns),
                "rows": result.table().to_dict("records"),
                "out": out,
                "plot": plot,
                "warnings": warning_records(shown),
            }
        )
        return
    console = stdout()
    console.print(
        f"Design: {escape(edit_text)}; {len(result.thetas)} candidates, {result.draws.shape[0]} posterior "
        f"draws x {episodes} episodes x {T} steps (the status quo with the same random numbers).",
        soft_wrap=True,
    )
    console.print(candidates_table(result))
    if len(result.thetas) > _MAX_ROWS:
        console.print(
            f"({len(_rows_shown(result))} of {len(result.thetas)} candidates shown: the best posterior "
            "means and the chosen one; --out writes them all.)",
            soft_wrap=True,
        )
    console.print(decision_line(result), soft_wrap=True)
    for path, what in ((out, "the candidates"), (plot, "the figure")):
        if path is not None:
            console.print(f"Wrote {what} to {escape(str(path))}.", soft_wrap=True)
