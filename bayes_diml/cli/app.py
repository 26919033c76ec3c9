"""Command line: ``bayes-diml simulate | fit | summary | payoffs | counterfactual | demo``.

A thin layer over the Python API: every command parses its flags, calls the package
(:func:`bayes_diml.environments.make`, :func:`bayes_diml.fit`, :class:`bayes_diml.Posterior`)
and prints the result with rich. Bad input (missing or unreadable files, wrong suffixes,
bad values, a mechanism that does not fit the data) ends in a one-line error and a non-zero
exit code, never a traceback. Warnings of the package (confounding, convergence) are
printed to stderr so that they stay visible and never mix with machine-readable output.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bayes_diml import environments, mechanisms
from bayes_diml.compilation_cache import cache_from_environment
from bayes_diml.data import Trajectories, load_trajectories
from bayes_diml.inference import METHODS, FitError, Posterior, fit, load
from bayes_diml.learners import FAMILIES, LogitQ, parameter_names, temperature_name
from bayes_diml.learners import learner_family as learner_family_cls
from bayes_diml.memory import MemoryLimitError
from bayes_diml.models import INFER, INFER_HIERARCHICAL, INFER_PER_AGENT, REPORT_TABLE_LIMIT, Priors

__all__ = ["main"]

#: Names of ``fit --mechanism``; all but tabular and neural need equal K_i.
MECHANISM_NAMES = ("tabular", "neural", "congestion", "public-goods", "symmetric", "bandit")
_TRAJECTORY_SUFFIXES = (".npz", ".csv", ".parquet", ".pq")
_FIT_SUFFIXES = (".nc", ".zarr")
_STATISTICS = ("action_frequencies", "mean_payoff", "welfare")
#: Largest number of payoff entries (prod K_i x n) a tabular mechanism may have on the command line.
_TABULAR_LIMIT = 1_000_000
_STAT_COLUMNS = ("mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "contraction")
_SHORT_LABELS = {
    "prior only (opponent profile never observed)": "prior only",
    "identified (beta x payoff)": "identified",
    "confounded with payoff scale": "confounded",
}


# --------------------------------------------------------------------------- helpers
def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = f"missing entry {exc.args[0]!r}"
    return text or type(exc).__name__


def _user_errors(fn: Callable) -> Callable:
    """Turn the package's input errors into a one-line click error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except ImportError as exc:  # e.g. zarr not installed for a .zarr fit
            raise click.ClickException(f"a required package is missing: {_one_line(exc)}") from None
        except (ValueError, TypeError, KeyError, OSError, FitError) as exc:  # DataError is a ValueError
            raise click.ClickException(_one_line(exc)) from None
        except MemoryLimitError as exc:  # the memory guard, raised before allocating
            raise click.ClickException(_one_line(exc)) from None

    return wrapper


@contextlib.contextmanager
def _visible_warnings(console: Console) -> Iterator[None]:
    """Collect warnings raised inside and print the user-facing ones (UserWarning) to ``console``.

    Deprecation and numeric RuntimeWarnings of the libraries are dropped: they are not about
    the user's fit. Identical messages are printed once.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                if not issubclass(w.category, UserWarning):
                    continue
                text = " ".join(str(w.message).split())
                if text in seen:
                    continue
                seen.add(text)
                console.print(
                    f"[bold yellow]Warning ({w.category.__name__}):[/] {escape(text)}", soft_wrap=True
                )


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def _fmt_values(x: Any) -> str:
    """A scalar as :func:`_fmt`, per-agent values as ``[a, b, ...]``."""
    arr = np.asarray(x, dtype=float)
    return _fmt(arr) if arr.ndim == 0 else "[" + ", ".join(_fmt(v) for v in arr) + "]"


def _fmt_stat(column: str, x: Any) -> str:
    if not _finite(x):
        return "-"
    if column == "r_hat":
        return f"{float(x):.3f}"
    if column == "ess_bulk":
        return f"{float(x):.0f}"
    return _fmt(x, 3)


def _percent(prob: float) -> str:
    return f"{100 * prob:g}%"


def _load_fit(path: Path) -> Posterior:
    """``bayes_diml.load`` with the suffix checked first."""
    if path.suffix not in _FIT_SUFFIXES:  # Posterior.save/load read the suffix case-sensitively
        raise click.BadParameter(
            f"{path} does not look like a fit: expected a .nc or .zarr file written by `bayes-diml fit`.",
            param_hint="FIT",
        )
    return load(path)


def _check_out(path: Path, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """Validate an output path before any work is done (fits: exact suffix, as ``Posterior.save``)."""
    suffix = path.suffix if suffixes == _FIT_SUFFIXES else path.suffix.lower()
    if suffix not in suffixes:
        raise click.BadParameter(
            f"{path}: unknown suffix {path.suffix!r}; use one of {', '.join(suffixes)}.", param_hint=option
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"{path}: the folder {parent} does not exist.", param_hint=option)
    return path


def _parse_learner_value(value: str, name: str) -> Any:
    """'infer', 'infer_per_agent', 'infer_hierarchical', a number, or numbers (one per agent)."""
    v = value.strip().lower().replace("-", "_")
    if v in (INFER, INFER_PER_AGENT, INFER_HIERARCHICAL):
        return v
    try:
        numbers = [float(p) for p in value.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"expected a number, comma-separated numbers (one per agent), {INFER!r}, "
            f"{INFER_PER_AGENT!r} or {INFER_HIERARCHICAL!r}; got {value!r}.",
            param_hint=f"--{name}",
        ) from None
    return numbers[0] if len(numbers) == 1 else np.asarray(numbers)


#: Parameters ``fit`` keeps at the family's default unless given (weakly identified).
_FIXED_BY_DEFAULT = ("n0", "prior_weight")
#: Data-generating values of ``simulate --learner-family`` (logitq: the environment's own).
_SIMULATION_DEFAULTS = {
    "bandit": {"alpha": 0.25, "beta": 3.0, "eps": 0.06},
    "hedge": {"eta": 0.3, "eps": 0.06},
    "fp": {"beta": 3.0, "eps": 0.06, "prior_weight": 1.0},
    "ewa": {"phi": 0.9, "delta": 0.5, "rho": 0.9, "lam": 3.0, "eps": 0.06, "n0": 1.0},
}


def _learner_options(help_text: str, fit: bool = False) -> Callable:
    """The --learner-family flag and one flag per learner parameter (other than alpha, beta, eps)."""
    extra = {
        "eta": "Hedge's learning rate",
        "lam": "EWA's inverse temperature",
        "phi": "EWA's attraction decay",
        "delta": "EWA's weight of forgone payoffs",
        "rho": "EWA's experience decay",
        "n0": "EWA's initial experience N(0)",
        "prior_weight": "fictitious play's weight of the initial value",
    }

    def wrap(f: Callable) -> Callable:
        for name in reversed(list(extra)):
            default = ""
            if fit:
                default = " (default: 1, fixed)" if name in _FIXED_BY_DEFAULT else " (default: infer)"
            f = click.option(
                "--" + name.replace("_", "-"), name, default=None, help=f"{extra[name]}: {help_text}{default}"
            )(f)
        return click.option(
            "--learner-family",
            type=click.Choice(list(FAMILIES), case_sensitive=False),
            default="logitq",
            show_default=True,
            help="Learner family: logitq (LogitQ), bandit (BanditQ: own payoff only), hedge "
            "(exponential weights), fp (smoothed fictitious play), ewa (experience-weighted attraction). "
            "See docs/learners.md.",
        )(f)

    return wrap


def _build_learner(
    family: str, given: dict[str, str | None], base: dict[str, Any], numbers_only: bool
) -> Any:
    """A learner of ``family`` from the CLI flags ``given`` over the values ``base``.

    A flag of a parameter the family does not have is a usage error.
    """
    cls = learner_family_cls(family)
    names = parameter_names(cls)
    bad = [n for n, v in given.items() if v is not None and n not in names]
    if bad:
        flags = ", ".join("--" + n.replace("_", "-") for n in bad)
        raise click.UsageError(
            f"{flags} {'does' if len(bad) == 1 else 'do'} not apply to --learner-family {family} "
            f"(its parameters: {', '.join(names)})."
        )
    values = dict(base)
    for name in names:
        if given.get(name) is None:
            continue
        v = _parse_learner_value(given[name], name.replace("_", "-"))
        if numbers_only and isinstance(v, str):
            raise click.BadParameter(
                "simulation needs numbers, not 'infer'.", param_hint="--" + name.replace("_", "-")
            )
        values[name] = v
    return cls(**values)


def _parse_n_actions(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        ks = tuple(int(p) for p in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers K_1,K_2,... (one per agent); got {value!r}.",
            param_hint="--n-actions",
        ) from None
    return ks


def _build_mechanism(name: str, data: Trajectories) -> Any:
    k = tuple(data.n_actions)
    if name == "bandit":  # one agent, one payoff per arm, level included (docs/bandit.md)
        if len(k) != 1:
            raise click.BadParameter(
                f"'bandit' is for single-agent data; these data have {len(k)} agents.",
                param_hint="--mechanism",
            )
        from bayes_diml.bandit import bandit_mechanism

        return bandit_mechanism(k[0])
    if name == "tabular":
        cells = math.prod(k) * len(k)
        if cells > _TABULAR_LIMIT:
            raise click.BadParameter(
                f"a tabular mechanism of this game has prod K_i x n = {cells:,} payoff entries "
                f"(n_actions = {_short_k(k)}), more than {_TABULAR_LIMIT:,}; use 'neural', "
                "'symmetric' or a structured family.",
                param_hint="--mechanism",
            )
        return mechanisms.Tabular(k)
    if name == "neural":
        return mechanisms.NeuralJoint(k)
    if len(set(k)) != 1:
        raise click.BadParameter(
            f"{name!r} needs every agent to have the same number of actions; the data have "
            f"n_actions = {k}. Use 'tabular' or 'neural'.",
            param_hint="--mechanism",
        )
    n, K = len(k), k[0]
    cls = {
        "congestion": mechanisms.StructuredCongestion,
        "public-goods": mechanisms.StructuredPublicGoods,
        "symmetric": mechanisms.SymmetricCount,
    }[name]
    return cls(n, K)


def _game_text(k: tuple[int, ...]) -> str:
    k = tuple(k)
    if len(set(k)) == 1:
        return f"{len(k)} agents x {k[0]} actions"
    return f"{len(k)} agents with {k} actions"


def _short_k(k: tuple[int, ...]) -> str:
    return f"({k[0]},) * {len(k)}" if len(k) > 4 and len(set(k)) == 1 else str(tuple(k))


def _learner_text(learner: LogitQ) -> str:
    prefix = "" if isinstance(learner, LogitQ) else f"{type(learner).__name__}: "
    parts = []
    for name in parameter_names(learner):
        v = getattr(learner, name)
        if isinstance(v, str):
            parts.append(f"{name} {v.replace('_', ' ')}")
        else:
            arr = np.asarray(v, dtype=float)
            val = _fmt(arr) if arr.ndim == 0 else "[" + ", ".join(_fmt(x) for x in arr) + "]"
            parts.append(f"{name} = {val} (fixed)")
    return prefix + ", ".join(parts)


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _stats_table(
    rows: dict[str, dict[str, Any]],
    title: str | None,
    *,
    cells: bool = False,
    label: bool = False,
) -> Table:
    """A rich table of ``{name: {mean, sd, lower, upper, r_hat, ess_bulk[, label]}}``.

    Columns without any finite value (sd, intervals and diagnostics of a MAP fit) are left out.
    ``cells``: names are ``var[a_1, ..., a_n, i]`` and are shown as profile and agent columns.
    """
    columns = [c for c in _STAT_COLUMNS if any(_finite(r.get(c)) for r in rows.values())]
    table = Table(title=title, title_justify="left")
    if cells:
        table.add_column("profile a", no_wrap=True)
        table.add_column("agent", justify="right")
    else:
        table.add_column("parameter", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    if label:
        table.add_column("label")
    for name, row in rows.items():
        if cells:
            idx = name[name.index("[") + 1 : -1].split(", ")
            first = ["(" + ",".join(idx[:-1]) + ")", idx[-1]]
        else:
            first = [name]
        values = [_fmt_stat(c, row.get(c)) for c in columns]
        text = str(row.get("label", ""))
        labels = [escape(_SHORT_LABELS.get(text, text))] if label else []
        table.add_row(*(escape(f) for f in first), *values, *labels)
    return table


def _frame_rows(frame: Any) -> dict[str, dict[str, Any]]:
    return {str(name): dict(row) for name, row in frame.iterrows()}


def _diagnostics_line(post: Posterior) -> str | None:
    info = post.info
    if post.method == "nuts":
        parts = [f"divergences {int(info.get('divergences', 0))}"]
        if "max_r_hat" in info:
            parts.append(f"max R-hat {_fmt(info['max_r_hat'])}")
        if "min_ess_bulk" in info:
            parts.append(f"min bulk ESS {_fmt(info['min_ess_bulk'], 3)}")
        return "NUTS diagnostics (identified quantities): " + ", ".join(parts)
    if post.method == "map" and "converged" in info:
        lj = info.get("restart_log_joints") or []
        spread = f", restarts' log joints {', '.join(_fmt(v, 6) for v in lj)}" if len(lj) > 1 else ""
        return f"MAP: converged {'yes' if info['converged'] else 'NO'}{spread}"
    return None


def _post_header(post: Posterior) -> str:
    draws = f"{post.n_draws} draw{'s' if post.n_draws != 1 else ''}"
    return (
        f"{type(post.mechanism).__name__} fitted by {post.method.upper()} to {post.data!r} ({draws}); "
        f"learner: {_learner_text(post.learner)}."
    )


def _table_recorded(post: Posterior) -> bool:
    return "centred_payoffs" in post.idata["posterior"].data_vars


_prob_option = click.option(
    "--prob",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.9,
    show_default=True,
    help="Probability of the equal-tailed credible intervals.",
)


# --------------------------------------------------------------------------- group
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
      bayes-diml counterfactual fit.nc --beta-scale 1.4
      bayes-diml demo
    """
    cache_from_environment(compilation_cache)


# --------------------------------------------------------------------------- simulate
@main.command()
@click.option(
    "--env",
    "env_name",
    type=click.Choice(environments.NAMES, case_sensitive=False),
    required=True,
    help="Experiment of the DIML paper: e1 neural 3x6, e2 congestion 4x5, e3 public goods 3x7, "
    "e7 symmetric n x K.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mechanism and data.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file: .npz, .csv or .parquet.",
)
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="Episodes M (default 60).")
@click.option("--steps", type=click.IntRange(min=2), default=None, help="Steps T per episode (default 60).")
@click.option("--n", "n_agents", type=click.IntRange(min=2), default=None, help="Agents (e7 only).")
@click.option("--K", "n_choices", type=click.IntRange(min=1), default=None, help="Actions (e7 only).")
@click.option("--record-payoffs", is_flag=True, help="Store each agent's realised payoff at each step.")
@click.option(
    "--payoff-noise",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="SD",
    help="Add N(0, SD^2) noise to the recorded payoffs (implies --record-payoffs).",
)
@click.option("--alpha", default=None, help="Learning rate (logitq, bandit): number(s).")
@click.option("--beta", default=None, help="Inverse temperature (logitq, bandit, fp): number(s).")
@click.option("--eps", default=None, help="Exploration rate: number(s).")
@_learner_options("number, or comma-separated numbers (one per agent)")
@_user_errors
def simulate(
    env_name: str,
    seed: int,
    out: Path,
    episodes: int | None,
    steps: int | None,
    n_agents: int | None,
    n_choices: int | None,
    record_payoffs: bool,
    payoff_noise: float | None,
    learner_family: str,
    **learner_flags: str | None,
) -> None:
    """Simulate learners in one of the paper's environments and write the trajectories.

    The learner is the paper's logit-Q learner (alpha 0.25, beta 3, eps 0.06) unless
    --learner-family or parameter flags change it (other families' defaults: docs/learners.md).
    """
    _check_out(out, _TRAJECTORY_SUFFIXES)
    record = record_payoffs or payoff_noise is not None
    family = learner_family.lower()
    learner = None
    if family != "logitq" or any(v is not None for v in learner_flags.values()):
        if family == "logitq":
            default = environments.default_learner(env_name)
            base = {n: getattr(default, n) for n in ("alpha", "beta", "eps")}
        else:
            base = _SIMULATION_DEFAULTS[family]
        learner = _build_learner(family, learner_flags, base, numbers_only=True)
    env = environments.make(
        env_name,
        seed,
        n=n_agents,
        K=n_choices,
        n_episodes=episodes,
        T=steps,
        record_payoffs=record,
        learner=learner,
    )
    data = env.data
    if payoff_noise:
        rng = np.random.default_rng(seed)
        noisy = data.payoffs + payoff_noise * rng.standard_normal(data.payoffs.shape)
        data = Trajectories(data.actions, data.n_actions, lengths=data.lengths, payoffs=noisy)
    data.save(out)
    lq = env.learner
    pay = ""
    if record:
        pay = f", payoffs recorded{f' with noise sd {payoff_noise:g}' if payoff_noise else ''}"
    name = "" if isinstance(lq, LogitQ) else f" {type(lq).__name__}"
    values = " ".join(f"{n}={_fmt_values(getattr(lq, n))}" for n in parameter_names(lq))
    click.echo(
        f"Wrote {out}: {env.name} ({type(env.mechanism).__name__}, {_game_text(data.n_actions)}), "
        f"{data.n_episodes} episodes x {data.n_steps} steps, "
        f"learner{name} {values}{pay}, seed {seed}."
    )


# --------------------------------------------------------------------------- fit
#: CLI option -> {method: config field}; an option given for another method is an error.
_METHOD_OPTIONS = {
    "num_warmup": {"nuts": "num_warmup"},
    "num_samples": {"nuts": "num_samples", "svi": "num_draws", "laplace": "num_draws"},
    "num_chains": {"nuts": "num_chains"},
    "chain_method": {"nuts": "chain_method"},
    "dense_mass": {"nuts": "dense_mass"},
    "backend": {"nuts": "backend"},
    "num_steps": {"map": "num_steps", "svi": "num_steps"},
    "learning_rate": {"map": "learning_rate", "svi": "learning_rate", "laplace": "learning_rate"},
    "guide": {"svi": "guide"},
    "batch_size": {"svi": "batch_size"},
}


def _method_options(method: str, given: dict[str, Any]) -> dict[str, Any]:
    options = {}
    for name, value in given.items():
        if value is None:  # not given (every option here defaults to None; --diag-mass is False)
            continue
        field = _METHOD_OPTIONS[name].get(method)
        if field is None:
            flag = "--dense-mass/--diag-mass" if name == "dense_mass" else "--" + name.replace("_", "-")
            allowed = ", ".join(sorted(_METHOD_OPTIONS[name]))
            raise click.UsageError(f"{flag} applies to --method {allowed}, not {method}.")
        options[field] = value
    return options


@main.command("fit")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mechanism",
    "mechanism_name",
    type=click.Choice(MECHANISM_NAMES, case_sensitive=False),
    default="tabular",
    show_default=True,
    help="Mechanism family: tabular (any game), neural (NeuralJoint), congestion "
    "(StructuredCongestion), public-goods (StructuredPublicGoods), symmetric (SymmetricCount).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="map",
    show_default=True,
    help="map (point estimate; with --prior-scale flat and a fixed learner: the MLE), laplace, svi or nuts.",
)
@click.option("--alpha", default=None, help="Number(s), 'infer' or 'infer_per_agent' (default: infer).")
@click.option("--beta", default=None, help="Number(s), 'infer' or 'infer_per_agent' (default: infer).")
@click.option("--eps", default=None, help="Number(s), 'infer' or 'infer_per_agent' (default: infer).")
@_learner_options("number(s), 'infer' or 'infer_per_agent'", fit=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the fit: .nc (netCDF) or .zarr.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fit.")
@click.option(
    "--prior-scale",
    default="1.0",
    show_default=True,
    help="Scale of the Normal prior on the mechanism weights, or 'flat' (MAP only: the MLE).",
)
@click.option("--num-warmup", type=click.IntRange(min=0), default=None, help="NUTS warm-up steps.")
@click.option(
    "--num-samples", type=click.IntRange(min=1), default=None, help="NUTS draws per chain; SVI/Laplace draws."
)
@click.option("--num-chains", type=click.IntRange(min=1), default=None, help="NUTS chains.")
@click.option(
    "--chain-method", type=click.Choice(["sequential", "vectorized", "parallel"]), default=None, help="NUTS."
)
@click.option(
    "--dense-mass/--diag-mass",
    default=None,
    help="NUTS: adapt a dense or a diagonal mass matrix (default: dense up to 64 unconstrained parameters "
    "and num_warmup / 10).",
)
@click.option(
    "--backend",
    type=click.Choice(["numpyro", "blackjax"]),
    default=None,
    help="NUTS implementation: numpyro (default) or blackjax (the same sampler, compiled up front).",
)
@click.option("--num-steps", type=click.IntRange(min=1), default=None, help="MAP/SVI optimiser steps.")
@click.option(
    "--learning-rate", type=click.FloatRange(min=0.0, min_open=True), default=None, help="MAP/SVI/Laplace."
)
@click.option("--guide", type=click.Choice(["normal", "lowrank", "mvn"]), default=None, help="SVI guide.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="SVI: episodes per step (minibatches; default all). See docs/scale.md.",
)
@click.option("--shard-episodes", is_flag=True, help="Split episodes over all JAX devices (docs/scale.md).")
@click.option("--n-actions", default=None, metavar="K1,K2,...", help="Action counts (CSV data).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option(
    "--checkpoint",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="NUTS/SVI: save the run to this directory after every chunk; rerun to resume.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=None,
    help="Draws per chain (NUTS, default 100) or steps (SVI, default 500) per checkpoint chunk.",
)
@_user_errors
def fit_command(
    data_path: Path,
    mechanism_name: str,
    method: str,
    alpha: str | None,
    beta: str | None,
    eps: str | None,
    learner_family: str,
    eta: str | None,
    lam: str | None,
    phi: str | None,
    delta: str | None,
    rho: str | None,
    n0: str | None,
    prior_weight: str | None,
    out: Path,
    seed: int,
    prior_scale: str,
    n_actions: str | None,
    no_progress: bool,
    checkpoint: Path | None,
    checkpoint_every: int | None,
    shard_episodes: bool,
    **method_flags: Any,
) -> None:
    """Fit a mechanism (and the learner) to the trajectories in DATA (.npz, .csv or .parquet).

    Learner parameters are inferred unless fixed: e.g. --beta 3 fixes beta (beta and the payoff
    scale are confounded when beta is inferred and no payoffs are observed).
    """
    out = _check_out(out, _FIT_SUFFIXES)
    if out.suffix == ".zarr":
        import importlib.util

        if importlib.util.find_spec("zarr") is None:
            raise click.BadParameter(
                "writing .zarr needs the zarr package (pip install 'bayes-diml[zarr]'); use .nc.",
                param_hint="--out",
            )
    family = learner_family.lower()
    given = dict(
        alpha=alpha,
        beta=beta,
        eps=eps,
        eta=eta,
        lam=lam,
        phi=phi,
        delta=delta,
        rho=rho,
        n0=n0,
        prior_weight=prior_weight,
    )
    base = {n: INFER for n in parameter_names(learner_family_cls(family)) if n not in _FIXED_BY_DEFAULT}
    learner = _build_learner(family, given, base, numbers_only=False)
    if prior_scale.strip().lower() == "flat":
        priors = Priors(mechanism_scale=None)
    else:
        try:
            priors = Priors(mechanism_scale=float(prior_scale))
        except ValueError:
            raise click.BadParameter(
                f"expected a positive number or 'flat'; got {prior_scale!r}.", param_hint="--prior-scale"
            ) from None
    options = _method_options(method, method_flags)
    if data_path.suffix.lower() not in _TRAJECTORY_SUFFIXES:
        raise click.BadParameter(
            f"{data_path}: unknown suffix {data_path.suffix!r}; use .npz, .csv or .parquet.",
            param_hint="DATA",
        )
    data = load_trajectories(data_path, n_actions=_parse_n_actions(n_actions))
    mechanism = _build_mechanism(mechanism_name.lower(), data)

    err = _stderr()
    with _visible_warnings(err):
        if checkpoint is not None or checkpoint_every is not None:
            options.update(checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        if shard_episodes:
            options["shard_episodes"] = True
        post = fit(data, mechanism, learner, method, seed, priors=priors, progress=not no_progress, **options)
        post.save(out)
        console = _stdout()
        console.print(escape(_post_header(post)), soft_wrap=True)
        console.print(f"Fitted in {post.info.get('seconds', float('nan')):.1f} s.")
        stats = post.scalar_summary(0.9)
        if stats:
            console.print(_stats_table(stats, "Learner parameters (90% intervals)"))
        if _table_recorded(post):
            sup = post.support
            what = (
                f"{temperature_name(post.learner)} x centred payoffs ('scaled_payoffs')"
                if post.confounded
                else "centred payoffs"
            )
            console.print(
                f"Payoff table: {sup.size:,} (profile, agent) cells, {int(sup.sum()):,} with an observed "
                f"opponent profile; identified: {what}. See `bayes-diml summary {out}` and "
                f"`bayes-diml payoffs {out} --out payoffs.npz`.",
                soft_wrap=True,
            )
        line = _diagnostics_line(post)
        if line:
            console.print(line)
        console.print(f"Saved the fit to {out}.")


# --------------------------------------------------------------------------- summary
def _cell_rows(frame: Any) -> np.ndarray:
    idx = [str(i) for i in frame.index]
    return np.array([i.startswith(("centred_payoffs[", "scaled_payoffs[")) for i in idx], dtype=bool)


@main.command()
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@_prob_option
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON object of the scalar parameters.")
@click.option("--all", "show_all", is_flag=True, help="Show every payoff cell.")
@click.option(
    "--max-cells", type=click.IntRange(min=0), default=20, show_default=True, help="Payoff cells shown."
)
@_user_errors
def summary(fit_path: Path, prob: float, as_json: bool, show_all: bool, max_cells: int) -> None:
    """Summarise a fit: learner parameters and gauge-free payoffs with credible intervals.

    With --json, stdout holds exactly one JSON object mapping each scalar parameter (alpha, beta,
    eps, or alpha[0], alpha[1], ... per agent; payoff_noise if payoffs were observed) to its mean,
    sd, lower, upper, r_hat and ess_bulk (null where undefined).
    """
    err = _stderr()
    with _visible_warnings(err):
        post = _load_fit(fit_path)
        if as_json:
            stats = post.scalar_summary(prob)
            click.echo(json.dumps(stats, indent=2, allow_nan=False))
            return
        frame = post.summary(prob)
    console = _stdout()
    console.print(escape(_post_header(post)), soft_wrap=True)
    if post.confounded:
        t = temperature_name(post.learner)
        console.print(
            f"[yellow]{t} and the payoff scale are confounded in this fit:[/] only {t} x payoff "
            "differences ('scaled_payoffs') is identified.",
            soft_wrap=True,
        )
    line = _diagnostics_line(post)
    if line:
        console.print(line)
    if frame.empty:
        console.print("No inferred scalar parameters and no recorded payoff table.")
        return
    cells = _cell_rows(frame)
    scalars = frame[~cells]
    if len(scalars):
        console.print(
            _stats_table(_frame_rows(scalars), f"Parameters ({_percent(prob)} intervals)", label=True)
        )
    if np.isfinite(frame["contraction"].to_numpy(dtype=float)).any():
        console.print(
            "contraction = 1 - posterior variance / prior variance; labels: well identified (>= 0.5), "
            "weakly identified, prior-driven (< 0.1): the prior, not the data, sets a prior-driven "
            "quantity. `bayes-diml identify FIT` lists flat directions and prior sensitivity.",
            soft_wrap=True,
        )
    if not cells.any():
        if not _table_recorded(post):
            console.print(
                f"The payoff table of this game ({_game_text(post.data.n_actions)}) is too large to record "
                f"(more than {REPORT_TABLE_LIMIT:,} cells); use the Python API "
                "Posterior.payoff_differences(joint=...) for chosen profiles.",
                soft_wrap=True,
            )
        return
    pay = frame[cells]
    var = np.array([str(i).split("[", 1)[0] for i in pay.index])
    counts = Table(title="Payoff cells by label", title_justify="left")
    for col, just in (("variable", "left"), ("label", "left"), ("cells", "right")):
        counts.add_column(col, justify=just)
    for (v, label), n in pay.groupby([var, pay["label"].to_numpy()]).size().items():
        counts.add_row(v, str(label), f"{n:,}")
    console.print(counts)
    main_var = "scaled_payoffs" if (post.confounded and "scaled_payoffs" in set(var)) else "centred_payoffs"
    for v in sorted(set(var)) if show_all else [main_var]:
        sel = pay[var == v]
        if show_all:
            shown, note = sel, f"all {len(sel):,} cells"
        else:
            supported = sel[sel["support"].to_numpy(dtype=bool)]
            shown = supported.iloc[:max_cells]
            note = (
                f"first {len(shown):,} of {len(supported):,} cells with an observed opponent profile "
                f"(--all shows all {len(pay):,} payoff rows)"
            )
        rows = _frame_rows(shown)
        what = (
            f"{temperature_name(post.learner)} x (u_i(a) - mean_k u_i(k, a_-i))"
            if v == "scaled_payoffs"
            else "u_i(a) - mean_k u_i(k, a_-i)"
        )
        console.print(f"[bold]{v}[/] = {what} ({_percent(prob)} intervals): {note}", soft_wrap=True)
        console.print(_stats_table(rows, None, cells=True, label=True))


# --------------------------------------------------------------------------- payoffs
@main.command()
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@_prob_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .npz file."
)
@_user_errors
def payoffs(fit_path: Path, prob: float, out: Path) -> None:
    """Write the centred payoff table of a fit: mean, lower, upper, support of shape (K_1, ..., K_n, n).

    Cell [a_1, ..., a_n, i] holds u_i(a) - mean_k u_i(k, a_-i) (posterior mean and equal-tailed
    interval); support says whether the opponent profile a_-i was observed.
    """
    _check_out(out, (".npz",))
    err = _stderr()
    with _visible_warnings(err):
        post = _load_fit(fit_path)
        k = tuple(post.data.n_actions)
        cells = math.prod(k) * len(k)
        if not _table_recorded(post):
            raise click.ClickException(
                f"the game is too large for a payoff table: n_actions = {_short_k(k)} gives "
                f"prod K_i x n = {cells:,} cells (limit {REPORT_TABLE_LIMIT:,}). Use the Python API "
                "Posterior.payoff_differences(joint=...) for chosen joint actions."
            )
        table = post.payoff_table(prob)
    arrays = {
        "mean": np.asarray(table["mean"], dtype=np.float64),
        "lower": np.asarray(table["lower"], dtype=np.float64),
        "upper": np.asarray(table["upper"], dtype=np.float64),
        "support": np.asarray(table["support"], dtype=bool),
    }
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    sup = arrays["support"]
    click.echo(
        f"Wrote {out}: mean, lower, upper ({_percent(prob)}) and support of shape {sup.shape}; "
        f"{int(sup.sum()):,} of {sup.size:,} cells have an observed opponent profile."
    )
    if post.confounded:
        t = temperature_name(post.learner)
        err.print(
            f"[bold yellow]Note:[/] {t} and the payoff scale are confounded in this fit: the table is in "
            f"the prior's units; only {t} x payoffs is identified.",
            soft_wrap=True,
        )


# --------------------------------------------------------------------------- counterfactual
@main.command()
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--alpha-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiply the learning rate (capped at 1).",
)
@click.option(
    "--beta-scale",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="Multiply beta (the temperature: Hedge's eta, EWA's lam).",
)
@click.option(
    "--eps-scale", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Multiply eps."
)
@click.option(
    "--eps-cap",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Cap of the scaled eps.",
)
@click.option(
    "--episodes", type=click.IntRange(min=1), default=100, show_default=True, help="Episodes per draw."
)
@click.option("--steps", type=click.IntRange(min=2), default=None, help="Steps T (default: the data's).")
@click.option("--draws", type=click.IntRange(min=1), default=200, show_default=True, help="Posterior draws.")
@click.option("--statistic", type=click.Choice(_STATISTICS), default="action_frequencies", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_prob_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Save draws to .npz."
)
@_user_errors
def counterfactual(
    fit_path: Path,
    alpha_scale: float,
    beta_scale: float,
    eps_scale: float,
    eps_cap: float,
    episodes: int,
    steps: int | None,
    draws: int,
    statistic: str,
    seed: int,
    prob: float,
    out: Path | None,
) -> None:
    """Posterior-predictive simulation with the learner's alpha, beta, eps scaled (alpha capped at 1).

    For each posterior draw, simulates EPISODES episodes under the fitted mechanism and the
    scaled learner and computes the statistic; prints its mean and equal-tailed interval.
    """
    if out is not None:
        _check_out(out, (".npz",))
    err = _stderr()
    with _visible_warnings(err):
        post = _load_fit(fit_path)

        def shift(learner: LogitQ) -> LogitQ:
            return learner.scaled(alpha=alpha_scale, beta=beta_scale, eps=eps_scale, eps_cap=eps_cap)

        values = post.counterfactual(
            shift, n_episodes=episodes, T=steps, statistic=statistic, n_draws=draws, seed=seed
        )
    values = np.asarray(values, dtype=np.float64)
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    mean, lower, upper = values.mean(0), np.quantile(values, lo, axis=0), np.quantile(values, hi, axis=0)
    console = _stdout()
    T = steps or post.data.n_steps
    console.print(
        f"Counterfactual {statistic}: alpha x {alpha_scale:g}, beta x {beta_scale:g}, eps x {eps_scale:g} "
        f"(eps capped at {eps_cap:g}); {values.shape[0]} posterior draws x {episodes} episodes x {T} steps.",
        soft_wrap=True,
    )
    table = Table(title=f"{statistic}: posterior mean and {_percent(prob)} interval", title_justify="left")
    k = tuple(post.data.n_actions)
    if statistic == "action_frequencies":
        for col in ("agent", "action", "mean", "lower", "upper"):
            table.add_column(col, justify="right")
        for i, K in enumerate(k):
            for a in range(K):
                table.add_row(str(i), str(a), _fmt(mean[i, a]), _fmt(lower[i, a]), _fmt(upper[i, a]))
            if i < len(k) - 1:
                table.add_section()
    elif statistic == "mean_payoff":
        for col in ("agent", "mean", "lower", "upper"):
            table.add_column(col, justify="right")
        for i in range(len(k)):
            table.add_row(str(i), _fmt(mean[i]), _fmt(lower[i]), _fmt(upper[i]))
    else:
        for col in ("statistic", "mean", "lower", "upper"):
            table.add_column(col, justify="right")
        table.add_row("welfare", _fmt(mean), _fmt(lower), _fmt(upper))
    console.print(table)
    if out is not None:
        with open(out, "wb") as f:
            np.savez(f, draws=values, mean=mean, lower=lower, upper=upper)
        console.print(f"Saved draws {values.shape} and mean/lower/upper to {out}.")


# --------------------------------------------------------------------------- paper
@main.command()
@click.argument("experiments", nargs=-1, required=True)
@click.option("--seeds", default="0,1,2,3,4", show_default=True, help="Comma-separated seeds.")
@click.option("--methods", default=None, help="Comma-separated methods (default: the standard set).")
@click.option(
    "--out",
    "out_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results.csv"),
    show_default=True,
    help="Results CSV (rows appended; a rerun skips finished rows).",
)
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Figure-1-like PNG."
)
@click.option("--quick", is_flag=True, help="Tiny settings (for a smoke run).")
@click.option("--no-progress", is_flag=True, help="Hide progress.")
@_user_errors
def paper(
    experiments: tuple[str, ...],
    seeds: str,
    methods: str | None,
    out_csv: Path,
    plot: Path | None,
    quick: bool,
    no_progress: bool,
) -> None:
    """Reproduce the paper's experiments.

    EXPERIMENTS: e1, e2, e3, e7 (all five reference settings), e7:40x10 (one setting), or all.
    """
    from bayes_diml.studies import experiments as ex

    names = ["e1", "e2", "e3", "e7"] if list(experiments) == ["all"] else list(experiments)
    try:
        seed_list = [int(v) for v in seeds.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--seeds must be comma-separated integers; got {seeds!r}.") from None
    method_list = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
    _check_out(out_csv, (".csv",))
    results = ex.run_paper(names, seed_list, method_list, out_csv, quick=quick, progress=not no_progress)
    console = _stdout()
    console.print(ex.format_table(ex.summarize(results)), soft_wrap=True)
    if plot is not None:
        ex.plot_figure1(results, plot)
        console.print(f"Wrote {plot}.")


# --------------------------------------------------------------------------- demo
@main.command()
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the identification table as JSON.")
@click.option(
    "--prior-draws",
    type=click.IntRange(min=100),
    default=4000,
    show_default=True,
    help="Prior draws for the contraction estimate.",
)
@click.option(
    "--max-cells",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Payoff cells listed (the counts by support and label cover all).",
)
@_user_errors
def identify(fit_path: Path, as_json: bool, prior_draws: int, max_cells: int) -> None:
    """What the data determine: support, prior-posterior contraction and labels, flat directions.

    Payoff cells are 'played', 'counterfactual only' or 'not observed'; every quantity gets a
    contraction 1 - posterior var / prior var and a label (well identified / weakly identified /
    prior-driven). The least-determined likelihood directions (Hessian eigenvectors) are named by
    parameter with what would identify them.
    """
    err = _stderr()
    with _visible_warnings(err):
        post = _load_fit(fit_path)
        if post.n_draws < 4:
            raise click.ClickException(
                "identification needs posterior draws; refit with --method nuts, svi or laplace."
            )
        table = post.identification(num_prior_draws=prior_draws)
        try:
            flat = post.flat_directions(k=3)
        except ValueError:
            flat = []
    if as_json:
        click.echo(
            json.dumps(
                {
                    "quantities": {
                        str(k): {
                            c: (None if isinstance(v, float) and not np.isfinite(v) else v)
                            for c, v in row.items()
                        }
                        for k, row in table.iterrows()
                    },
                    "flat_directions": flat,
                },
                indent=2,
            )
        )
        return
    console = _stdout()
    console.print(escape(_post_header(post)), soft_wrap=True)
    cells = np.array([str(i).startswith("centred_payoffs[") for i in table.index])
    out = Table(title="Identification", title_justify="left")
    for col in ("quantity", "support", "prior sd", "posterior sd", "contraction", "label"):
        out.add_column(col, justify="left" if col in ("quantity", "support", "label") else "right")
    import pandas as pd

    shown = pd.concat([table[~cells], table[cells].iloc[:max_cells]])
    for name, row in shown.iterrows():
        out.add_row(
            str(name),
            row["support"],
            _fmt(row["prior_sd"]),
            _fmt(row["posterior_sd"]),
            _fmt(row["contraction"]),
            row["label"],
        )
    console.print(out)
    if cells.any():
        counts = Table(title="Payoff cells by support and label", title_justify="left")
        for col in ("support", "label", "cells"):
            counts.add_column(col, justify="right" if col == "cells" else "left")
        for (sup, lab), n in table[cells].groupby(["support", "label"]).size().items():
            counts.add_row(sup, lab, f"{n:,}")
        console.print(counts)
    notes = sorted({n for n in table["note"] if n})
    for note in notes:
        console.print(f"[yellow]Note:[/] {escape(note)}", soft_wrap=True)
    for j, d in enumerate(flat):
        comps = ", ".join(f"{name} {w:+.2f}" for name, w in d["components"])
        console.print(
            f"Flat direction {j + 1}: curvature {d['eigenvalue']:.3g} ({d['relative']:.2e} of the largest): "
            f"{escape(comps)}; {escape(d['hint'])}",
            soft_wrap=True,
        )


# --------------------------------------------------------------------------- compare / ppc
@main.command("compare")
@click.argument("fit_paths", metavar="FIT1 FIT2 ...", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--ic",
    type=click.Choice(["loo", "lfo"]),
    default="loo",
    show_default=True,
    help="loo: PSIS-LOO with whole episodes left out (a new episode); lfo: PSIS leave-future-out "
    "of one-step-ahead predictions (the future of these episodes; refits the model).",
)
@click.option(
    "--min-steps", type=click.IntRange(min=1), default=None, help="LFO: steps in the first training set."
)
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON list of rows, best first.")
@_user_errors
def compare_command(fit_paths: tuple[Path, ...], ic: str, min_steps: int | None, as_json: bool) -> None:
    """Compare fits of the same data by expected log predictive density (ArviZ compare).

    Each FIT is named by its file stem. Columns: rank, elpd, elpd_diff (to the best) with its
    standard error dse, weight (stacking), p (effective parameters), max Pareto k.
    """
    from bayes_diml.inference import compare

    if len(fit_paths) < 2:
        raise click.UsageError("compare needs at least two fits: bayes-diml compare FIT1 FIT2 ...")
    names = [p.stem for p in fit_paths]
    if len(set(names)) != len(names):
        names = [str(p) for p in fit_paths]
    err = _stderr()
    with _visible_warnings(err):
        posts = {name: _load_fit(p) for name, p in zip(names, fit_paths, strict=True)}
        options = {} if min_steps is None else {"min_steps": min_steps}
        table = compare(posts, ic=ic, **options)
    wanted = ("rank", "elpd", "se", "elpd_diff", "dse", "weight", "p", "max_pareto_k")
    cols = [c for c in wanted if c in table]
    if as_json:
        rows = [
            {"model": str(name), **{c: (float(row[c]) if _finite(row[c]) else None) for c in cols}}
            for name, row in table.iterrows()
        ]
        click.echo(json.dumps(rows, indent=2, allow_nan=False))
        return
    what = "PSIS-LOO, episodes left out" if ic == "loo" else "PSIS-LFO, one step ahead"
    out = Table(title=f"Model comparison ({what}; best first)", title_justify="left")
    out.add_column("model", justify="left")
    for c in cols:
        out.add_column(c, justify="right")
    for name, row in table.iterrows():
        out.add_row(escape(str(name)), *(_fmt(row[c], 4) for c in cols))
    console = _stdout()
    console.print(out)
    console.print(
        "elpd_diff < 0 by several dse: the model predicts clearly worse than the best. "
        "Pareto k > 0.7: the estimate for that fit is unreliable.",
        soft_wrap=True,
    )


@main.command("ppc")
@click.argument("fit_path", metavar="FIT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("ppc.png"),
    show_default=True,
    help="Figure file (.png, .pdf or .svg).",
)
@click.option("--draws", type=click.IntRange(min=10), default=200, show_default=True, help="Posterior draws.")
@_prob_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON list of per-agent rows.")
@_user_errors
def ppc_command(fit_path: Path, out: Path, draws: int, prob: float, seed: int, as_json: bool) -> None:
    """Posterior-predictive check in behaviour space: action frequencies over time and switching rates.

    Simulates as many episodes as the data per posterior draw and writes a figure of the data
    against the simulated bands; prints per agent the switching rates and p-values.
    """
    out = _check_out(out, (".png", ".pdf", ".svg"))
    err = _stderr()
    with _visible_warnings(err):
        post = _load_fit(fit_path)
        check = post.ppc_behaviour(n_draws=draws, prob=prob, seed=seed)
        check.save(out)
    frame = check.summary()
    if as_json:
        rows = [{"agent": int(a), **{c: float(v) for c, v in row.items()}} for a, row in frame.iterrows()]
        click.echo(json.dumps(rows, indent=2, allow_nan=False))
        return
    table = Table(title=f"Behaviour check ({_percent(prob)} bands, {draws} draws)", title_justify="left")
    for c in ("agent", *frame.columns):
        table.add_column(c, justify="right")
    for a, row in frame.iterrows():
        table.add_row(str(a), *(_fmt(v, 3) for v in row))
    console = _stdout()
    console.print(table)
    verdict = "[yellow]misfit flagged[/]" if check.misfit else "no misfit flagged"
    console.print(f"{verdict}; figure written to {out}.", soft_wrap=True)


@main.command("bandit")
@click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Trajectories (.npz, .csv)."
)
@click.option("--subject", default="subject", show_default=True, help="Column of subject / session labels.")
@click.option("--trial", default="trial", show_default=True, help="Column of trial numbers.")
@click.option("--choice", default="choice", show_default=True, help="Column of chosen arms.")
@click.option("--reward", default="reward", show_default=True, help="Column of rewards ('' for none).")
@click.option("--one-based", is_flag=True, help="Arms are numbered 1..K (hBayesDM).")
@click.option("--arms", "n_arms", type=click.IntRange(min=2), default=None, help="K (default: highest arm).")
@_user_errors
def bandit_command(
    csv_path: Path,
    out: Path,
    subject: str,
    trial: str,
    choice: str,
    reward: str,
    one_based: bool,
    n_arms: int | None,
) -> None:
    """Convert single-agent bandit data (long CSV: subject, trial, choice, reward) to trajectories.

    Each subject becomes an episode of one agent; rewards become its observed payoffs. Fit
    the result with `bayes-diml fit OUT --mechanism tabular` (see docs/bandit.md).
    """
    from bayes_diml.bandit import load_bandit_csv

    out = _check_out(out, _TRAJECTORY_SUFFIXES)
    data = load_bandit_csv(
        csv_path,
        subject=subject,
        trial=trial,
        choice=choice,
        reward=reward or None,
        one_based=one_based,
        n_arms=n_arms,
    )
    data.save(out)
    counts = np.bincount(data.actions[:, :, 0][data.step_mask], minlength=data.n_actions[0])
    _stdout().print(
        f"{data.n_episodes} subjects, {int(data.lengths.sum())} trials (up to {data.n_steps} each), "
        f"{data.n_actions[0]} arms chosen {counts.tolist()} times"
        + (", rewards observed" if data.has_payoffs else "")
        + f"; saved to {out}.",
        soft_wrap=True,
    )


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bayes-diml-demo"),
    show_default=True,
    help="Folder for the plot, the fit and the data.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Tiny data and sampler settings (a smoke test, not a result).")
@click.option("--no-progress", is_flag=True, help="Hide the NUTS progress bar.")
@_user_errors
def demo(out_dir: Path, seed: int, quick: bool, no_progress: bool) -> None:
    """Simulate E2 (4 agents x 5 routes), fit the congestion family by NUTS, check it against the truth."""
    from bayes_diml.studies.demo import run_demo

    console = _stdout()
    run_demo(
        out_dir,
        seed=seed,
        quick=quick,
        progress=not no_progress,
        console=console,
        fit_warnings=_visible_warnings,
    )


from bayes_diml.cli.sbc import sbc_command  # noqa: E402  (simulation-based calibration, bayes_diml.calibration)

main.add_command(sbc_command)


if __name__ == "__main__":  # pragma: no cover
    main()
