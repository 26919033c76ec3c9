"""``bayes-diml fit``: fit a mechanism (and the learner) to trajectories and save the posterior."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from bayes_diml.cli.console import (
    diagnostics_line,
    emit_json,
    frame_rows,
    note,
    post_header,
    quiet,
    stats_table,
    stderr,
    stdout,
    strict_check,
    table_recorded,
    user_errors,
    visible_warnings,
    warning_records,
)
from bayes_diml.cli.fit_inputs import (
    check_grouped,
    group_subjects,
    parse_covariate_names,
    read_data,
)
from bayes_diml.cli.options import (
    FIT_SUFFIXES,
    FIXED_BY_DEFAULT,
    bias_option,
    build_learner,
    check_out,
    flag_errors,
    json_option,
    learner_options,
    strict_option,
)
from bayes_diml.inference import METHODS, StackedPosterior, fit
from bayes_diml.inference.auto import AUTO, auto_learner, context_candidates
from bayes_diml.learners import FAMILIES, family_name, parameter_names, temperature_name
from bayes_diml.learners import learner_family as learner_family_cls
from bayes_diml.mechanisms import CovariateTabular, GroupedTabular
from bayes_diml.mechanisms.grouped import GROUP_SCALE_DISTS
from bayes_diml.models import INFER, Priors
from bayes_diml.registry import MECHANISM_NAMES, make_mechanism

__all__ = ["fit_command"]

#: CLI option -> {method: config field}; an option given for another method is an error.
_METHOD_OPTIONS = {
    "num_warmup": {"nuts": "num_warmup"},
    "num_samples": {"nuts": "num_samples", "svi": "num_draws", "laplace": "num_draws"},
    "num_chains": {"nuts": "num_chains"},
    "chain_method": {"nuts": "chain_method"},
    "dense_mass": {"nuts": "dense_mass"},
    "backend": {"nuts": "backend"},
    "init": {"nuts": "init"},
    "num_steps": {"map": "num_steps", "svi": "num_steps"},
    "patience": {"map": "patience"},
    "polish_steps": {"map": "polish_steps"},
    "learning_rate": {"map": "learning_rate", "svi": "learning_rate", "laplace": "learning_rate"},
    "guide": {"svi": "guide"},
    "batch_size": {"svi": "batch_size"},
}


#: ``post.info`` entries ``fit --json`` reports as diagnostics.
_DIAGNOSTICS = (
    "divergences",
    "max_r_hat",
    "min_ess_bulk",
    "converged",
    "map_log_joint",
    "map_steps",
    "map_polish_steps",
    "validation_per_action",
    "final_elbo_loss",
)


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


@click.command("fit")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mechanism",
    "mechanism_name",
    type=click.Choice(MECHANISM_NAMES, case_sensitive=False),  # covariate among them (COVARIATE)
    default="tabular",
    show_default=True,
    help="Mechanism family: tabular (any game), neural (NeuralJoint), congestion "
    "(StructuredCongestion), public-goods (StructuredPublicGoods), symmetric (SymmetricCount), "
    "covariate (CovariateTabular: a table whose cells move linearly with --covariates).",
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
@learner_options("number(s), 'infer' or 'infer_per_agent'", fit=True)
@bias_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the fit: .nc (netCDF) or .zarr.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fit.")
@click.option(
    "--prior-scale",
    default=None,
    help="Scale of the Normal prior on the mechanism weights, or 'flat' (MAP only: the MLE); default 1 "
    "(--learner-family auto: e = 2.72, the default scale of temperature x payoff).",
)
@click.option(
    "--candidates",
    default=None,
    metavar="FAMILY,...",
    help="--learner-family auto: the families to compare (default all; with --group-by or --mechanism "
    "covariate, those that see payoff differences only); the nulls are always added.",
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
@click.option(
    "--init",
    type=click.Choice(["dispersed", "map", "prior"]),
    default=None,
    help="NUTS chains' starts: dispersed (default: one prior draw per chain, so R-hat can flag a second "
    "mode), map (every chain at the MAP) or prior (NumPyro's init_to_median).",
)
@click.option("--num-steps", type=click.IntRange(min=1), default=None, help="MAP/SVI optimiser steps.")
@click.option(
    "--learning-rate", type=click.FloatRange(min=0.0, min_open=True), default=None, help="MAP/SVI/Laplace."
)
@click.option(
    "--validation",
    "validation_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="MAP: held-out episodes (a file like DATA, not in it) for early stopping: the fit keeps the "
    "point with the best held-out log-likelihood (docs/fitting.md).",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=None,
    help="MAP with --validation: chunks of 100 steps without a better held-out log-likelihood before "
    "stopping (default 5).",
)
@click.option(
    "--polish-steps",
    type=click.IntRange(min=1),
    default=None,
    help="MAP: after the Adam steps, at most this many L-BFGS steps from Adam's optimum until the "
    "convergence test passes (wide networks; not with --validation).",
)
@click.option("--guide", type=click.Choice(["normal", "lowrank", "mvn"]), default=None, help="SVI guide.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="SVI: episodes per step (minibatches; default all). See docs/scale.md.",
)
@click.option(
    "--group-by",
    default=None,
    metavar="COLUMN",
    help="Fit one payoff table per group of episodes (shared table + shrunk deviation; "
    "GroupedTabular): COLUMN of a CSV/Parquet file holds the group label, constant within each "
    "episode (an .npz: 'group', the groups it stores). Needs --mechanism tabular and --method nuts "
    "(a contrast needs the between-group scale's uncertainty); --learner-family auto compares the families "
    "that see payoff differences only. Then `bayes-diml payoffs FIT --group G` or `--contrast A:B`.",
)
@click.option(
    "--group-scale-dist",
    type=click.Choice(GROUP_SCALE_DISTS),
    default=None,
    help="With --group-by: the prior of the between-group scale (default lognormal). lognormal keeps "
    "arms apart by about --group-scale-prior unless the data say otherwise (contrasts of equal arms "
    "cover 0 at about their level); half_normal lets equal arms pool completely (conservative "
    "contrasts). docs/groups.md.",
)
@click.option(
    "--group-scale-prior",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --group-by: the between-group scale's prior median (lognormal) or scale (half_normal); "
    "default 1.0, the default sd of the shared table.",
)
@click.option(
    "--covariates",
    "covariates_text",
    default=None,
    metavar="C1,C2,...",
    help="With --mechanism covariate: the numeric episode-level columns of a CSV/Parquet file "
    "(constant within each episode; an .npz: covariates it stores) that move each payoff cell "
    "linearly (CovariateTabular). Then `bayes-diml payoffs FIT --covariate-effects --out F.csv`.",
)
@click.option(
    "--learner-by-group",
    is_flag=True,
    help="With --group-by: learner parameters set to infer_subject (e.g. --alpha infer_subject) take "
    "one value per group, drawn from a population over the groups (each group one subject).",
)
@click.option("--shard-episodes", is_flag=True, help="Split episodes over all JAX devices (docs/scale.md).")
@click.option(
    "--n-actions", default=None, metavar="K1,K2,...", help="Action counts (CSV data; hBayesDM data: K arms)."
)
@click.option(
    "--format",
    "data_format",
    type=click.Choice(["auto", "trajectories", "hbayesdm"]),
    default="auto",
    show_default=True,
    help="DATA's format; auto: hbayesdm for .txt/.tsv (tab-separated subjID, choice 1..K, outcome; "
    "docs/bandit.md), else trajectories (.npz, .csv, .parquet).",
)
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
@click.option(
    "--robust",
    type=click.Choice(["bagging", "none"]),
    default=None,
    help="bagging: the bagged posterior (BayesBag; whole episodes resampled, one fit per bag, draws pooled), "
    "whose intervals stay honest when the agents do not learn by the fitted rule (docs/calibration.md); "
    "none: the ordinary posterior. Default: bagging with --learner-family auto (10 bags per family with at "
    "least 5%% of the stacked draws), none otherwise.",
)
@click.option(
    "--bags",
    type=click.IntRange(min=1),
    default=None,
    help="Bagging: bootstrap data sets (default 20; 10 with --learner-family auto).",
)
@click.option(
    "--bag-seed", type=int, default=None, help="--robust bagging: seed of the resampling (default --seed)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="--robust bagging: fit the bags on a local Dask cluster of this many processes.",
)
@json_option
@strict_option
@user_errors
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
    h: str | None,
    bias: str,
    out: Path,
    seed: int,
    prior_scale: str | None,
    candidates: str | None,
    n_actions: str | None,
    data_format: str,
    no_progress: bool,
    checkpoint: Path | None,
    checkpoint_every: int | None,
    shard_episodes: bool,
    group_by: str | None,
    group_scale_dist: str | None,
    group_scale_prior: float | None,
    covariates_text: str | None,
    learner_by_group: bool,
    robust: str | None,
    bags: int | None,
    bag_seed: int | None,
    workers: int,
    validation_path: Path | None,
    as_json: bool,
    strict: bool,
    **method_flags: Any,
) -> None:
    """Fit a mechanism (and the learner) to the trajectories in DATA (.npz, .csv, .parquet; hBayesDM .txt).

    Learner parameters are inferred unless fixed: e.g. --beta 3 fixes beta (beta and the payoff
    scale are confounded when beta is inferred and no payoffs are observed). With --json, stdout
    holds one JSON object: out, mechanism, method, learner, n_draws, seconds, parameters (as
    `summary --json`), diagnostics and warnings (a stacked fit: out, verdict, message, candidates).
    """
    out = check_out(out, FIT_SUFFIXES)
    if out.suffix == ".zarr":
        if importlib.util.find_spec("zarr") is None:
            raise click.BadParameter(
                "writing .zarr needs the zarr package (pip install 'bayes-diml[zarr]'); use .nc.",
                param_hint="--out",
            )
    family = learner_family.lower()
    if candidates is not None and family != AUTO:
        raise click.UsageError("--candidates applies to --learner-family auto.")
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
        h=h,
    )
    if family == AUTO:
        bad = [n for n, v in given.items() if v is not None]
        if bad:
            raise click.UsageError(
                f"--{bad[0].replace('_', '-')} does not apply to --learner-family auto: every family's "
                "temperature is fixed at 1 and its other parameters are inferred."
            )
        learner: Any = AUTO
        names = None if candidates is None else [c.strip() for c in candidates.split(",") if c.strip()]
    else:
        base = {n: INFER for n in parameter_names(learner_family_cls(family)) if n not in FIXED_BY_DEFAULT}
        learner = build_learner(family, given, base, numbers_only=False)
        if (bias or "none").lower() == INFER:
            learner = learner._replace(bias=INFER)
    if prior_scale is None:
        priors = None if family == AUTO else Priors()
    elif prior_scale.strip().lower() == "flat":
        priors = Priors(mechanism_scale=None)
    else:
        try:
            priors = Priors(mechanism_scale=float(prior_scale))
        except ValueError:
            raise click.BadParameter(
                f"expected a positive number or 'flat'; got {prior_scale!r}.", param_hint="--prior-scale"
            ) from None
    check_grouped(group_by, mechanism_name, method)
    if group_by is None and (group_scale_dist is not None or group_scale_prior is not None):
        raise click.UsageError("--group-scale-dist and --group-scale-prior need --group-by COLUMN.")
    covariates = parse_covariate_names(covariates_text, mechanism_name, group_by)
    options = _method_options(method, method_flags)
    if validation_path is not None and method != "map":
        raise click.UsageError(f"--validation (early stopping) applies to --method map, not {method}.")
    if "patience" in options and validation_path is None:
        raise click.UsageError("--patience needs --validation FILE (the held-out episodes it stops on).")
    if "polish_steps" in options and validation_path is not None:
        raise click.UsageError(
            "--polish-steps runs the MAP to its optimum and --validation stops before it; give one."
        )
    with flag_errors():
        data = read_data(data_path, data_format, n_actions, group_by, covariates)
        if validation_path is not None:
            options["validation"] = read_data(validation_path, data_format, n_actions, group_by, covariates)
        name = "tabular" if covariates is not None else mechanism_name.lower()
        mechanism = make_mechanism(name, data)  # a covariate table: checked as a tabular one
    if covariates is not None:
        mechanism = CovariateTabular(data.n_actions, covariates)
    if group_by is not None:
        if data.groups is None:  # not reached for CSV/Parquet/npz (the loader raises); a safeguard
            raise click.BadParameter(f"{data_path} has no groups.", param_hint="--group-by")
        mechanism = GroupedTabular(
            data.n_actions,
            data.group_names,
            group_scale_prior=1.0 if group_scale_prior is None else group_scale_prior,
            group_scale_dist=group_scale_dist or "lognormal",
        )
    if learner_by_group:
        data = group_subjects(data, group_by, learner)

    err = stderr()
    if family == AUTO:
        if names is None and isinstance(mechanism, GroupedTabular | CovariateTabular):
            names = context_candidates(data, mechanism)
            left_out = ", ".join(f for f in FAMILIES if f not in names)
            note(
                err,
                f"--learner-family auto with {'groups' if group_by else 'covariates'} compares the families "
                f"that see payoff differences only: {', '.join(names)} (left out: {left_out}).",
            )
        auto_specs: Any = names
        if (bias or INFER).lower() != INFER:  # auto infers every candidate's action bias unless told
            auto_specs = [auto_learner(name, bias=0.0) for name in (names or list(FAMILIES))]
    with visible_warnings(err) as shown:
        if checkpoint is not None or checkpoint_every is not None:
            options.update(checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        if shard_episodes:
            options["shard_episodes"] = True
        if family == AUTO:
            options["candidates"] = auto_specs
        bagged = robust == "bagging" or (robust is None and family == AUTO)
        if not bagged and (bags is not None or bag_seed is not None or workers != 1):
            raise click.UsageError("--bags, --bag-seed and --workers apply to --robust bagging.")
        if robust is not None:
            options["robust"] = None if robust == "none" else robust
        if bagged:
            options.update(n_bags=bags, bag_seed=bag_seed, workers=workers)
        progress = not (no_progress or quiet())
        post = fit(data, mechanism, learner, method, seed, priors=priors, progress=progress, **options)
        post.save(out)
        if not as_json:
            _print_fit(post, out)
    if as_json:
        emit_json({**_fit_document(post, out), "warnings": warning_records(shown)})
    strict_check(shown, strict)


def _fit_document(post: Any, out: Path) -> dict[str, Any]:
    """Return what ``fit --json`` prints (before the warnings)."""
    if isinstance(post, StackedPosterior):
        table = post.summary(0.9)
        return {
            "out": out,
            "verdict": post.verdict,
            "message": post.message,
            "robust": post.info.get("robust"),
            "bagged": post.info.get("bagged", []),
            "candidates": frame_rows(table.astype(object)),
        }
    diagnostics = {k: post.info[k] for k in _DIAGNOSTICS if k in post.info}
    return {
        "out": out,
        "mechanism": type(post.mechanism).__name__,
        "method": post.method,
        "learner": family_name(post.learner),
        "confounded": bool(post.confounded),
        "n_draws": post.n_draws,
        "seconds": post.info.get("seconds"),
        "parameters": post.scalar_summary(0.9),
        "diagnostics": diagnostics,
    }


def _print_fit(post: Any, out: Path) -> None:
    """Print a fit's header, parameter table, payoff-table note and diagnostics to stdout."""
    console = stdout()
    if isinstance(post, StackedPosterior):
        console.print(escape(post.report(0.9)), soft_wrap=True)
        if post.context == "grouped":
            groups = post.best.mechanism.groups
            console.print(
                f"Ask one group: `bayes-diml payoffs {out} --group {groups[0]} --pairs --out pairs.csv`; "
                f"two: `bayes-diml payoffs {out} --contrast {groups[-1]}:{groups[0]} --out contrast.csv`.",
                soft_wrap=True,
            )
        elif post.context == "covariate":
            example = ",".join(f"{c}=0" for c in post.best.mechanism.covariate_names)
            console.print(
                f"Ask at a value: `bayes-diml payoffs {out} --at {example} --pairs --out pairs.csv`.",
                soft_wrap=True,
            )
        console.print(f"Saved the stacked fit to {out}.")
        return
    console.print(escape(post_header(post)), soft_wrap=True)
    console.print(f"Fitted in {post.info.get('seconds', float('nan')):.1f} s.")
    stats = post.scalar_summary(0.9)
    if stats:
        console.print(stats_table(stats, "Learner parameters (90% intervals)"))
    if table_recorded(post):
        sup = post.support
        what = (
            f"{temperature_name(post.learner)} x centred payoffs ('scaled_payoffs')"
            if post.confounded
            else "centred payoffs"
        )
        if getattr(post, "grouped", False):
            groups = post.mechanism.groups
            console.print(
                f"Payoff tables: one per group ({', '.join(groups)}), {sup.size:,} (group, profile, agent) "
                f"cells, {int(sup.sum()):,} with an observed opponent profile; identified: {what}. See "
                f"`bayes-diml summary {out}`, `bayes-diml payoffs {out} --group {groups[0]} --out "
                f"payoffs.npz` and `bayes-diml payoffs {out} --contrast {groups[-1]}:{groups[0]} --out "
                "contrast.csv`.",
                soft_wrap=True,
            )
        elif isinstance(post.mechanism, CovariateTabular):
            console.print(
                f"Payoff table: {sup.size:,} (profile, agent) cells, moving linearly with the covariates "
                f"{', '.join(post.mechanism.covariate_names)}; identified: {what} and their slopes. See "
                f"`bayes-diml payoffs {out} --covariate-effects --out effects.csv`.",
                soft_wrap=True,
            )
        else:
            console.print(
                f"Payoff table: {sup.size:,} (profile, agent) cells, {int(sup.sum()):,} with an observed "
                f"opponent profile; identified: {what}. See `bayes-diml summary {out}` and "
                f"`bayes-diml payoffs {out} --out payoffs.npz`.",
                soft_wrap=True,
            )
    line = diagnostics_line(post)
    if line:
        console.print(line)
    console.print(f"Saved the fit to {out}.")
