"""Write the example notebooks: ``01_quickstart`` ... ``05_ab_test``.

Run from anywhere: ``python notebooks/make_notebooks.py`` writes them without outputs;
``python notebooks/make_notebooks.py --execute`` (the committed copies) also runs each one top to
bottom with its small settings (``BAYES_DIML_NOTEBOOK_SMALL=1``, as ``tests/test_notebooks.py``
does) and keeps the outputs, so that they render where people browse the repository. Image
outputs above ``MAX_IMAGE_BYTES`` are dropped and absolute paths of the machine are replaced.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
#: Largest base64 image output kept in an executed notebook (a larger one is dropped).
MAX_IMAGE_BYTES = 400_000

SMALL_CELL = """\
import os

# The one switch: small data and short chains (CI runs every notebook this way, in seconds).
# Leave it off for real results: BAYES_DIML_NOTEBOOK_SMALL=1 is only a smoke test.
SMALL = os.environ.get("BAYES_DIML_NOTEBOOK_SMALL", "0") == "1"
"""

QUICKSTART = [
    (
        "md",
        """\
# Quickstart: recover the payoffs of a game from the actions of learning agents

Two agents play a 3 x 3 game again and again. They do not know the payoffs in advance; each
keeps a score `Q_i(k)` per action, updates it with the payoff the action *would* have earned
against what the other player just did (`Q_i <- (1 - alpha) Q_i + alpha u_i(., a_-i)`), and
chooses with a logit rule (`(1 - eps) softmax(beta Q_i) + eps / K`). We observe only the
actions and infer the payoff table `u` (the hidden "mechanism") with its uncertainty.

This notebook:
1. simulates the agents,
2. fits the payoffs by NUTS (learner parameters known),
3. reads credible intervals on **payoff differences** and checks them against the truth,
4. checks the sampler with ArviZ,
5. asks a counterfactual question with the posterior predictive.""",
    ),
    ("code", SMALL_CELL),
    (
        "code",
        """\
import warnings

import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms, metrics
from bayes_diml.inference import MAPConfig
from bayes_diml.models import Priors

N_EPISODES, T = (6, 12) if SMALL else (40, 40)
NUTS = (
    dict(num_warmup=30, num_samples=30, num_chains=2, max_tree_depth=4)
    if SMALL
    else dict(num_warmup=500, num_samples=1000, num_chains=2)
)
NUTS["chain_method"] = "sequential"
INIT_MAP = MAPConfig(num_steps=100 if SMALL else 2000, num_restarts=1)""",
    ),
    (
        "md",
        """\
## 1. Simulate

A random payoff table (`Tabular.init`), two agents with alpha = 0.3, beta = 2, eps = 0.05.
`data.actions` is `int[episodes, steps, agents]`.""",
    ),
    (
        "code",
        """\
mech = mechanisms.Tabular((3, 3))
truth = mech.init(jax.random.key(0))
learner = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
data = bd.simulate(mech, truth, learner, n_episodes=N_EPISODES, T=T, key=1)
data""",
    ),
    (
        "md",
        """\
## 2. Fit by NUTS

The learner is fixed to its true values, so beta fixes the units of the payoffs (see notebook 02
for what happens when beta is unknown). The prior on each payoff cell is N(0, 1). NUTS starts
every chain at a dispersed point (a prior draw) by default; here `init="map"` starts them at a
MAP fit whose settings `init_map` controls, which lets the small settings warm up quickly.""",
    ),
    (
        "code",
        """\
post = bd.fit(
    data, mech, learner=learner, method="nuts", seed=0,
    priors=Priors(mechanism_scale=1.0), init="map", init_map=INIT_MAP, progress=False,
    log_likelihood=False, **NUTS,
)
post""",
    ),
    (
        "md",
        """\
## 3. Intervals on payoff differences

Only payoff **differences** between an agent's own actions are identified: adding any amount
`c_i(a_-i)` to all of agent i's payoffs against a given opponent action changes no choice
probability. So everything is reported as *centred payoffs*
`u_i(a) - mean_k u_i(k, a_-i)`. Cells whose opponent action never occurred are informed by the
prior only; `summary` labels them.""",
    ),
    (
        "code",
        """\
post.summary(prob=0.9)[["mean", "sd", "lower", "upper", "label"]].head(9)""",
    ),
    (
        "code",
        """\
table = post.payoff_table(prob=0.9)            # mean / lower / upper / support: float[3, 3, 2]
true_diff = np.asarray(metrics.payoff_differences(mech, truth))
covered = (table["lower"] <= true_diff) & (true_diff <= table["upper"])
sup = table["support"]
print(f"90% intervals cover the true centred payoff in {covered[sup].sum()} of {sup.sum()} supported cells")

fig, ax = plt.subplots(figsize=(4.5, 4.5))
x, m = true_diff[sup], table["mean"][sup]
ax.errorbar(x, m, yerr=[m - table["lower"][sup], table["upper"][sup] - m], fmt="o", ms=3)
lim = [min(x.min(), table["lower"][sup].min()), max(x.max(), table["upper"][sup].max())]
ax.plot(lim, lim, "k--", lw=1)
ax.set_xlabel("true centred payoff")
ax.set_ylabel("posterior mean, 90% interval")
plt.show()""",
    ),
    (
        "md",
        """\
## 4. Diagnostics with ArviZ

`post.idata` is an ArviZ `DataTree`. R-hat near 1 and a bulk ESS in the hundreds are what to
look for (the small settings give neither: they only check that the code runs).""",
    ),
    (
        "code",
        """\
print(post.info["divergences"], "divergent transitions")
az.summary(post.idata, var_names=["centred_payoffs"], ci_prob=0.9).head(6)""",
    ),
    (
        "code",
        """\
az.plot_trace_dist(post.idata, var_names=["centred_payoffs"], coords={"action_0": 0, "action_1": 0})
plt.show()""",
    ),
    (
        "md",
        """\
## 5. A posterior-predictive counterfactual

What would play look like if the agents were more decisive (beta x 1.4)? For each posterior draw
we simulate new episodes under the changed learner and compute the action frequencies; the
spread over draws is the uncertainty of the prediction. The same question asked of the true game
shows whether the prediction is right.""",
    ),
    (
        "code",
        """\
n_sim = 20 if SMALL else 200
draws = 20 if SMALL else 200
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pred = post.counterfactual(
        learner=lambda l: l.scaled(beta=1.4), statistic="action_frequencies", n_episodes=n_sim, n_draws=draws
    )                                              # float[draws, agents, actions]
true_run = bd.simulate(mech, truth, learner.scaled(beta=1.4), n_episodes=400, T=T, key=7)
true_freq = np.stack([np.bincount(true_run.actions[..., i].ravel(), minlength=3) for i in range(2)])
true_freq = true_freq / true_freq.sum(1, keepdims=True)
lo, hi = np.quantile(pred, [0.05, 0.95], axis=0)
for i in range(2):
    for k in range(3):
        print(f"agent {i} action {k}: predicted {pred[:, i, k].mean():.3f} [{lo[i, k]:.3f}, {hi[i, k]:.3f}]"
              f"  truth {true_freq[i, k]:.3f}")""",
    ),
]

UNKNOWN_TEMPERATURE = [
    (
        "md",
        """\
# Unknown temperature: the beta x payoff-scale confound, and how observed payoffs resolve it

The logit rule chooses with `softmax(beta Q)`, and `Q` is an average of payoffs. Doubling every
payoff and halving beta gives exactly the same choice probabilities. So from actions alone:

- **identified**: `beta x (payoff differences)`, the "scaled payoffs";
- **confounded**: beta and the payoff scale separately; their posterior runs along a ridge
  `beta x scale = constant`, and where on the ridge it sits is set by the **prior**.

Observing (noisy) payoffs of the played cells pins down the scale, and with it beta.""",
    ),
    ("code", SMALL_CELL),
    (
        "code",
        """\
import warnings

import jax
import matplotlib.pyplot as plt
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms, metrics
from bayes_diml.inference import ConfoundingWarning, MAPConfig
from bayes_diml.models import Priors

N_EPISODES, T = (6, 12) if SMALL else (40, 40)
NUTS = (
    dict(num_warmup=30, num_samples=30, num_chains=1, max_tree_depth=4)
    if SMALL
    else dict(num_warmup=500, num_samples=1000, num_chains=2, chain_method="sequential")
)
INIT_MAP = MAPConfig(num_steps=100 if SMALL else 2000, num_restarts=1)""",
    ),
    (
        "md",
        """\
## Data: the same game, once with actions only, once with payoffs observed

`simulate(..., record_payoffs=True)` stores each agent's realised payoff in
`Trajectories.payoffs` (NaN where unobserved); the model then adds a Normal observation of it
with an inferred noise scale (the model's `payoffs` site).""",
    ),
    (
        "code",
        """\
mech = mechanisms.Tabular((3, 3))
truth = mech.init(jax.random.key(0))
true_learner = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
with_payoffs = bd.simulate(mech, truth, true_learner, n_episodes=N_EPISODES, T=T, key=1, record_payoffs=True)
actions_only = bd.Trajectories(with_payoffs.actions, with_payoffs.n_actions)
print(actions_only.has_payoffs, with_payoffs.has_payoffs)

true_diff = np.asarray(metrics.payoff_differences(mech, truth))
true_scale = float(np.linalg.norm(true_diff))   # payoff scale: norm of the centred payoffs""",
    ),
    (
        "md",
        """\
## Fit beta jointly (alpha and eps fixed)

`LogitQ(alpha, "infer", eps)` infers beta (prior LogNormal(1, 1)). Without payoffs `fit` warns
that beta and the payoff scale are confounded.""",
    ),
    (
        "code",
        """\
learner = bd.LogitQ(alpha=0.3, beta="infer", eps=0.05)
fits = {}
for name, data in [("actions only", actions_only), ("payoffs observed", with_payoffs)]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits[name] = bd.fit(
            data, mech, learner, "nuts", 0, priors=Priors(mechanism_scale=1.0),
            init="map", init_map=INIT_MAP, progress=False, log_likelihood=False, **NUTS,
        )
    confound = [str(w.message)[:90] for w in caught if issubclass(w.category, ConfoundingWarning)]
    note = confound[0] + "..." if confound else None
    print(f"{name}: confounded = {fits[name].confounded}; warning: {note}")""",
    ),
    (
        "md",
        """\
## The confound as a pair plot

Each point is a posterior draw: beta against the payoff scale (norm of the centred payoffs).
With actions only the draws lie along the curve `beta x scale = true beta x true scale` (dashed):
the data fix the product, not the factors. With observed payoffs they gather at the truth (star).""",
    ),
    (
        "code",
        """\
fig, ax = plt.subplots(figsize=(5.5, 4.5))
for (name, post), colour in zip(fits.items(), ["tab:orange", "tab:blue"]):
    beta = post.draws("beta").reshape(-1)
    scale = np.linalg.norm(post.draws("centred_payoffs").reshape(len(beta), -1), axis=1)
    ax.scatter(scale, beta, s=8, alpha=0.5, color=colour, label=name)
s = np.linspace(0.3 * true_scale, 3 * true_scale, 200)
ax.plot(s, 2.0 * true_scale / s, "k--", lw=1, label="beta x scale = truth")
ax.plot(true_scale, 2.0, "k*", ms=14, label="truth")
ax.set_xlabel("payoff scale  ||centred payoffs||")
ax.set_ylabel("beta")
ax.set_xscale("log")
ax.set_yscale("log")
ax.legend()
plt.show()""",
    ),
    (
        "code",
        """\
for name, post in fits.items():
    beta = post.draws("beta").reshape(-1)
    scale = np.linalg.norm(post.draws("centred_payoffs").reshape(len(beta), -1), axis=1)
    lo, hi = np.quantile(beta, [0.05, 0.95])
    prod = beta * scale
    print(f"{name:17s} beta {beta.mean():.2f} [90%: {lo:.2f}, {hi:.2f}] (truth 2.00);  "
          f"beta x scale {prod.mean():.2f} +- {prod.std():.2f} (truth {2.0 * true_scale:.2f})")""",
    ),
    (
        "md",
        """\
## What to take away

- Without payoffs, the product `beta x payoff differences` is what the data determine; the
  summary reports it as `scaled_payoffs` and labels beta and the payoffs "confounded with
  payoff scale". Beta's interval there is mostly the prior's.
- Payoffs observed for the played cells fix the scale and make beta identified. Cells whose
  opponent action was never played stay prior-driven either way (`Posterior.support`).
- Alternatives to observing payoffs: fix beta from outside knowledge, or use a mechanism whose
  payoffs have known units (money, travel time).""",
    ),
    (
        "code",
        """\
fits["actions only"].summary(prob=0.9)[["mean", "lower", "upper", "label"]].tail(4)""",
    ),
]

PAPER = [
    (
        "md",
        """\
# The DIML paper's experiments: our numbers next to the published ones

`bayes_diml.studies.experiments` reruns the paper's experiments E1 (random two-layer-net game),
E2 (tolled congestion game), E3 (public goods with a subsidy) and E7 (many-agent anonymous game)
with every baseline. The full runs take hours on a CPU; their results are in
`docs/results/results.csv` (one row per experiment, method and seed) and described in
`docs/results.md`. This notebook reads that file, builds the table and the Figure-1-like plot,
and shows how a run is made (a tiny one when `SMALL`).

- `diff_mse`: error of payoff differences on test contexts (lower is better);
- `cfkl_params`: KL between simulated play under the true and the fitted mechanism with a shifted
  learner (lower is better; its noise floor matters, see `docs/results.md`).""",
    ),
    ("code", SMALL_CELL),
    (
        "code",
        """\
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, Markdown, display

from bayes_diml.studies import experiments as X

# docs/results/results.csv of the repository this notebook sits in
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "docs" / "results" / "results.csv").exists())
results = X.load_results(ROOT / "docs" / "results" / "results.csv")
seeds = results.groupby("experiment")["seed"].nunique().to_dict()
print(len(results), "rows; seeds per experiment:", seeds)""",
    ),
    (
        "md",
        """\
## The results table

Mean +- sd over seeds (each seed: a new true mechanism, new data, new split), next to the
reference's single published run.""",
    ),
    (
        "code",
        """\
summary = X.summarize(results)
display(Markdown(X.format_table(summary)))""",
    ),
    (
        "md",
        """\
## Our DIML against the published DIML

Ratio below 1: ours is better. The E7 cfkl is not comparable (see `docs/results.md`: with 40
agents the histogram bins are hashed count vectors, and the metric sits at its noise floor).""",
    ),
    (
        "code",
        """\
diml = summary[summary["method"] == "diml"][
    ["experiment", "setting", "diff_mse_mean", "published_diff_mse",
     "cfkl_params_mean", "published_cfkl_params"]
].copy()
diml["diff_mse ratio"] = diml["diff_mse_mean"] / diml["published_diff_mse"]
diml["cfkl ratio"] = diml["cfkl_params_mean"] / diml["published_cfkl_params"]
with pd.option_context("display.float_format", "{:.3g}".format):
    display(diml)""",
    ),
    (
        "md",
        """\
## Figure 1: metrics per method""",
    ),
    (
        "code",
        """\
tmp = Path(tempfile.mkdtemp())
png = X.plot_figure1(results, tmp / "figure1.png")
display(Image(filename=str(png), width=800))""",
    ),
    (
        "code",
        """\
fig, ax = plt.subplots(figsize=(6, 3.5))
for method, g in results[results["experiment"] == "e2"].groupby("method"):
    ax.scatter(g["diff_mse"], g["cfkl_params"], label=method, s=18)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("diff_mse (E2, one point per seed)")
ax.set_ylabel("cfkl_params")
ax.legend(fontsize=7, ncol=2)
plt.show()""",
    ),
    (
        "md",
        """\
## Making a run

`run_paper` appends one CSV row per (experiment, setting, method, seed) and keeps the fitted
parameters in `<csv stem>_params/`. With `SMALL` this runs the quick settings (tiny data, a few
optimiser steps: the numbers are meaningless); otherwise one real row (E2, StructMLE, seed 0).""",
    ),
    (
        "code",
        """\
live = X.run_paper(
    ["e2"], seeds=[0], methods=["struct_mle"], out_csv=tmp / "live.csv", quick=SMALL, progress=False
)
live""",
    ),
]


DESIGN = [
    (
        "md",
        """\
# Choosing a congestion toll under posterior uncertainty

Four drivers choose among five routes (the DIML paper's E2 congestion game); they learn by
logit-Q, and we observe only their route choices. The city may put a toll on the most congested
route. Which toll should it set, how sure is it that the toll helps, and would more data first be
worth it?

This notebook:
1. fits the congestion mechanism (route costs) to the drivers' choices,
2. asks `Posterior.design` for the posterior of welfare under each toll (mechanism and learner
   draws together, the same random numbers for every toll),
3. chooses a toll, with its probability of improving on no toll and the EVPI,
4. compares it with the toll that is best under the true mechanism (known here: simulated data).""",
    ),
    ("code", SMALL_CELL),
    (
        "code",
        """\
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import bayes_diml as bd
from bayes_diml.inference import EditedMechanism, NUTSConfig

env = bd.environments.make("e2", seed=0, n_episodes=8 if SMALL else 40, T=15 if SMALL else 40)
data = env.data
share = np.bincount(data.actions.reshape(-1), minlength=5) / data.actions.size
route = int(np.argmax(share))
print(data)
print("route shares:", np.round(share, 3), "-> toll on route", route)""",
    ),
    (
        "md",
        """\
## Fit

The structured congestion family (a cost per route and per number of drivers on it) with the
temperature fixed at the drivers' value, which fixes the payoff units: a toll is then in the
units of the route costs. The learning rate and exploration are inferred.""",
    ),
    (
        "code",
        """\
learner = bd.LogitQ(alpha="infer", beta=float(env.learner.beta), eps="infer")
config = NUTSConfig(num_warmup=50, num_samples=50, num_chains=1) if SMALL else None
post = bd.fit(data, env.family, learner, method="nuts", config=config, progress=False)
post""",
    ),
    (
        "md",
        """\
## Design

Welfare is the drivers' mean total payoff per step with the toll counted as a transfer (what
they pay comes back to the city), so a toll helps only by moving traffic. `criterion="mean"`
chooses the best posterior mean; `"quantile"` would choose the best 10% quantile (risk averse),
`"prob_improvement"` the toll most probably better than none.

The package warns that welfare depends on payoff *levels*: actions identify each driver's
payoffs only up to adding a function of the other drivers' routes. Inside the congestion
family that freedom is one constant shared by every route, which cancels when two tolls are
compared: the differences between tolls (`mean_improvement`) are identified, the welfare level
itself is set by the prior. With a payoff table instead of a family, even the differences would
follow the table's centring convention; the share of a route (`"share:K"`) or a toll's revenue
never depend on levels.""",
    ),
    (
        "code",
        """\
tolls = np.linspace(0.0, 1.5, 4 if SMALL else 16)
design = post.design(
    bd.edits.toll(route), tolls, objective="welfare",
    n_episodes=10 if SMALL else 100, n_draws=10 if SMALL else 200, seed=1,
)
print(design.summary())
design.plot()
plt.show()
design.table().round(4)""",
    ),
    (
        "md",
        """\
## Against the truth

The same objective under the true mechanism and learner, simulated with many episodes.""",
    ),
    (
        "code",
        """\
def true_welfare(toll, n_episodes, seed=123):
    edited = EditedMechanism(env.mechanism, lambda u, a: bd.edits.toll(route)(u, a, jnp.array([toll])))
    sim = bd.simulate(edited, env.params, env.learner, n_episodes, data.n_steps, seed)
    base = np.asarray(env.mechanism.payoffs(env.params, jnp.asarray(sim.actions)))
    return base.sum(-1).mean()

truth = np.array([true_welfare(t, 20 if SMALL else 1000) for t in tolls])
best = int(np.argmax(truth))
print(f"chosen toll {tolls[design.chosen]:.2f}: true welfare {truth[design.chosen]:.4f}")
print(f"best toll   {tolls[best]:.2f}: true welfare {truth[best]:.4f}")
print(f"no toll           true welfare {truth[0]:.4f}")
print(f"regret {truth[best] - truth[design.chosen]:.4f}; EVPI (from the posterior) {design.evpi:.4f}")
print("true gain of each toll over none:", np.round(truth - truth[0], 4))
print("posterior mean gain:             ", np.round(design.table()["mean_improvement"].to_numpy(), 4))

fig, ax = plt.subplots(figsize=(6, 3.5))
gain = design.improvement  # [draws, tolls]
ax.fill_between(tolls, *np.quantile(gain, [0.05, 0.95], axis=0), alpha=0.25, label="90% interval")
ax.plot(tolls, gain.mean(0), marker="o", ms=3, label="posterior mean gain")
ax.plot(tolls, truth - truth[0], "k.-", label="true gain")
ax.axhline(0, color="0.5", lw=1)
ax.set_xlabel("toll")
ax.set_ylabel("welfare gain over no toll")
ax.legend(fontsize="small")
plt.show()""",
    ),
    (
        "md",
        """\
With the small settings (8 episodes x 15 steps, one chain of 50 draws) the posterior is wide and
the decision may be wrong: then the EVPI is of the size of the gains it weighs, the posterior's
own way of saying "collect more data first". With the full settings (40 x 40, run this notebook
with `BAYES_DIML_NOTEBOOK_SMALL=0`; 340 s on 2 cores) the chosen toll is 0, the true best: every
toll lowers welfare (true gains 0, -0.025, -0.063, ... -0.547 over the 16 tolls; posterior mean
gains 0, -0.025, -0.060, ... -0.601), every probability of improvement is 0 and the EVPI is
0.0001.""",
    ),
    (
        "md",
        """\
The EVPI says how much welfare a perfectly informed city would gain over this decision on
average; when it is small against the differences between tolls, more data would not change the
choice. `bayes-diml design FIT --edit toll --on-action ROUTE --grid 0:1.5:16 --objective welfare
--out design.csv --plot design.png` does the same from the command line.""",
    ),
]


AB_TEST = [
    (
        "md",
        """\
# An A/B test of a rebate rule: which payoffs did the treatment change?

A marketplace runs an experiment. In both arms a seller and a buyer meet again and again; the
seller chooses `discount` or `list` price, the buyer `buy` or `wait`. Neither knows the payoffs
in advance: each learns from experience (logit-Q). In arm **B** the platform adds a rebate rule:
it pays the seller a rebate of 1 whenever the seller discounts. Arm **A** is the control. We see
only the actions, not the payoffs, and ask which payoffs the rule changed, for whom, and how sure
we are.

This notebook:
1. simulates the two arms and writes them as one long CSV (`episode, t, agent, action, arm`),
2. reads it with `bd.load_trajectories(path, group_by="arm")`,
3. fits one payoff table per arm (`GroupedTabular`, NUTS): a shared table plus a deviation per
   arm, shrunk by a learned between-arm scale,
4. reads the contrast B - A cell by cell (`post.contrast`) and plots it
   (`post.plot("contrast")`),
5. says in plain words what changed and what the data cannot tell.""",
    ),
    ("code", SMALL_CELL),
    (
        "code",
        """\
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayes_diml as bd
from bayes_diml import mechanisms, metrics

EPISODES, T = (20, 20) if SMALL else (60, 30)  # per arm
NUTS = (
    dict(num_warmup=200, num_samples=200, num_chains=2)
    if SMALL
    else dict(num_warmup=500, num_samples=1000, num_chains=2)
)
NUTS |= dict(chain_method="sequential", target_accept=0.9)""",
    ),
    (
        "md",
        """\
## 1. Two arms, one CSV

The payoff table is `table[seller action, buyer action, agent]`; action 0 is `discount` (seller)
and `buy` (buyer). The rebate adds 1 to the seller's payoff of `discount` against either buyer
action. Real data would arrive as such a file; the arm is one more column.""",
    ),
    (
        "code",
        """\
AGENTS = ["seller", "buyer"]
ACTIONS = [["discount", "list"], ["buy", "wait"]]
tab = mechanisms.Tabular((2, 2))
table_a = np.array([[[0.5, 0.2], [-0.3, 0.6]], [[-0.1, -0.4], [0.4, 0.1]]])
table_b = table_a.copy()
table_b[0, :, 0] += 1.0  # the rebate: seller's discount pays 1 more in arm B
learner = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)

frames = []
for key, (arm, table) in enumerate([("A", table_a), ("B", table_b)]):
    sim = bd.simulate(tab, {"table": table}, learner, n_episodes=EPISODES, T=T, key=key)
    labelled = bd.Trajectories(sim.actions, (2, 2), agent_labels=AGENTS, action_labels=ACTIONS)
    frame = labelled.to_frame()  # long format: episode, t, agent, action
    frame["episode"] = [f"{arm}{m:03d}" for m in frame["episode"]]
    frame["arm"] = arm
    frames.append(frame)
path = Path(tempfile.mkdtemp()) / "rebate_ab.csv"
pd.concat(frames, ignore_index=True).to_csv(path, index=False)
pd.read_csv(path).head()""",
    ),
    (
        "md",
        """\
## 2. Read it, grouped by arm

`group_by="arm"` names the column holding each episode's group (it must be constant within an
episode). Text labels of actions are coded in sorted order, which here is the order above.""",
    ),
    (
        "code",
        """\
data = bd.load_trajectories(path, group_by="arm")
assert data.action_labels == (("discount", "list"), ("buy", "wait"))
print(data)
print("episodes per group:", pd.Series(data.groups).value_counts().to_dict())""",
    ),
    (
        "md",
        """\
## 3. Fit one table per arm

The learner's temperature is known here (beta = 2), which fixes the payoff units; with beta
inferred the contrasts would be in beta x payoff units (the plot and the table say so). NUTS is
required: at the mode of a hierarchical model the between-arm scale collapses to 0.""",
    ),
    (
        "code",
        """\
post = bd.fit(
    data, mechanisms.GroupedTabular((2, 2), data.group_names), learner,
    method="nuts", seed=0, progress=False, **NUTS,
)
summary = post.summary()
cells = summary[summary.index.str.startswith("group[")]
print(f"arm tables: max R-hat {cells['r_hat'].max():.3f}, min bulk ESS {cells['ess_bulk'].min():.0f}")
summary.loc[["group_scale"], ["mean", "lower", "upper", "r_hat", "ess_bulk"]]""",
    ),
    (
        "md",
        """\
The between-arm scale `group_scale` is the hardest quantity to sample (two arms say little
about a spread between arms, and it shapes the geometry of the deviations): with the small
settings NUTS may warn about its effective sample size. The arm tables, which the contrasts are
made of, are printed above; for real results use the full settings (or more draws) until the
warning is gone.""",
    ),
    (
        "md",
        """\
## 4. The contrast B - A

One row per agent and joint action (`joint` is `seller action-buyer action` in codes):
the centred payoff `u_i(a) - mean_k u_i(k, a_-i)` in B minus in A, with its 90% interval and
the posterior probability that it is positive, all from the same joint draws. We add the true
difference (known here because the data are simulated).""",
    ),
    (
        "code",
        """\
contrast = post.contrast("B", "A", prob=0.9)
true = np.asarray(metrics.payoff_differences(tab, {"table": table_b})) - np.asarray(
    metrics.payoff_differences(tab, {"table": table_a})
)  # float[2, 2, 2]: centred B - A
contrast["truth"] = [true[..., i].reshape(-1)[p] for i in range(2) for p in range(4)]
contrast.round(3)""",
    ),
    (
        "code",
        """\
pc = post.plot("contrast", groups=("B", "A"), prob=0.9)
plt.show()""",
    ),
    (
        "code",
        """\
def cell(row):
    a = [ACTIONS[j][int(c)] for j, c in enumerate(row.joint.split("-"))]
    return f"{AGENTS[row.agent]:6s} at ({a[0]}, {a[1]})"

for row in contrast.itertuples():
    verdict = "changed" if row.lower > 0 or row.upper < 0 else "no clear change"
    print(
        f"{cell(row)}: B - A = {row.mean:+.2f} [{row.lower:+.2f}, {row.upper:+.2f}], "
        f"P(B > A) = {row.prob_positive:.2f}  -> {verdict}"
    )""",
    ),
    (
        "md",
        """\
## 5. Reading it

- **What changed.** The seller's rows: `discount` became more attractive relative to `list` in
  arm B, against either buyer action (`prob_positive` near 1 for the `discount` cells, near 0 for
  the `list` cells). The rebate of 1 appears as +0.5 on `discount` and -0.5 on `list`: centred
  payoffs split a change between the agent's own actions, so the two cells of one buyer action
  are each other's negative in a 2 x 2 game, one finding, not two.
- **What did not.** The buyer's cells: their intervals cover 0 and `prob_positive` stays away
  from 0 and 1. Shrinkage (the shared table and the between-arm scale) pulls unchanged cells
  towards no difference, so null contrasts are, if anything, conservative
  (`docs/groups.md` has a calibration study).
- **What is identified.** Actions reveal only *differences* between an agent's own actions
  against each opponent action. Whether the rebate made the seller richer overall (a payoff
  level), or any transfer that adds the same amount to all of an agent's actions (a lump sum),
  leaves no trace in behaviour and is not estimated. A cell whose opponent action was never
  observed in an arm is prior only (`support_a`, `support_b` say so). The units are payoffs
  because beta was fixed; with beta inferred, only beta x payoff is identified.
- **How sure.** With the small settings (20 episodes per arm, 2 chains of 200 draws) the numbers
  are a smoke test; run with `BAYES_DIML_NOTEBOOK_SMALL=0` for 60 episodes of 30 steps per arm
  and longer chains.

From the command line the same analysis is

```
bayes-diml fit rebate_ab.csv --mechanism tabular --group-by arm --method nuts --out ab.nc
bayes-diml payoffs ab.nc --contrast B:A --out contrast.csv
bayes-diml plot ab.nc --kind contrast --contrast B:A --out contrast.png
```""",
    ),
]


def _notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _execute(nb: nbformat.NotebookNode, timeout: int) -> nbformat.NotebookNode:
    """Run ``nb`` in a ``python3`` kernel in this folder with the small settings; keep its outputs."""
    from nbclient import NotebookClient  # the ``test`` extra

    os.environ["BAYES_DIML_NOTEBOOK_SMALL"] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures kept as PNG outputs
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute()
    return _clean_outputs(nb)


def _clean_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop large images and tqdm's widget notice; replace this machine's paths in the outputs."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and "TqdmWarning: IProgress not found" in out.text:
                continue  # the kernel has no ipywidgets; the notebook does not use tqdm's widget
            data = out.get("data", {})
            for mime in [m for m in data if m.startswith("image/")]:
                if len(data[mime]) > MAX_IMAGE_BYTES:
                    del data[mime]
                    data.setdefault("text/plain", "[image dropped: larger than MAX_IMAGE_BYTES]")
            if "text" in out:
                out["text"] = _local_paths(out["text"])
            for mime, value in data.items():
                if isinstance(value, str) and not mime.startswith("image/"):
                    data[mime] = _local_paths(value)
            outputs.append(out)
        cell["outputs"] = outputs
    return nb


def _local_paths(text: str) -> str:
    """``text`` without this machine's absolute paths (site-packages, repository, kernel cells)."""
    tmp = re.escape(tempfile.gettempdir())
    text = re.sub(r"\S*/site-packages/", "site-packages/", text)
    text = re.sub(tmp + r"/ipykernel_\d+/\d+\.py:(\d+):", r"<cell>:\1:", text)
    text = text.replace(str(HERE.parent), "<repo>").replace(str(Path.home()), "~")
    return re.sub(tmp + r"[^\s'\"]*", "<tmp>", text)


def main(argv: list[str] | None = None) -> None:
    """Write the notebooks next to this script (executed with ``--execute``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--execute", action="store_true", help="run each notebook (small settings), keep outputs"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell when executing")
    parser.add_argument("--only", nargs="*", default=None, help="write only these notebooks (file names)")
    args = parser.parse_args(argv)
    for name, cells in [
        ("01_quickstart.ipynb", QUICKSTART),
        ("02_unknown_temperature.ipynb", UNKNOWN_TEMPERATURE),
        ("03_paper_experiments.ipynb", PAPER),
        ("04_design.ipynb", DESIGN),
        ("05_ab_test.ipynb", AB_TEST),
    ]:
        if args.only is not None and name not in args.only:
            continue
        nb = _notebook(cells)
        nbformat.validate(nb)
        if args.execute:
            nb = _execute(nb, args.timeout)
            nbformat.validate(nb)
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    main()
