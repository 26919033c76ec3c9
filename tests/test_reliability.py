"""Reliability of fits: non-finite log densities stop with a diagnosis, checkpoint and resume,
same seed same result, and the memory guard.

Nothing here is statistical: every check is an exact equality or an exception, with fixed seeds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.inference import checkpoint as checkpoint_module
from bayes_diml.inference.checkpoint import CheckpointError
from bayes_diml.inference.nonfinite import NonFiniteError, check_nuts_draws
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.memory import (
    ENV_VAR,
    MemoryLimitError,
    estimate_plan_memory,
    memory_limit,
    parse_bytes,
)

LEARNER = bd.LogitQ(0.3, 2.0, 0.05)
QUIET = {"progress": False, "log_likelihood": False}


@pytest.fixture(scope="module")
def small():
    mech = mechanisms.Tabular((2, 2))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), LEARNER, 8, 10, 1)
    return mech, data


def _function(fn, init_value: float = 0.0) -> mechanisms.Function:
    """A 2 x 2 user mechanism with a weight table ``w: float[2, 2, 2]``."""

    def init(key):
        return {"w": jnp.zeros((2, 2, 2)).at[1, 1, 0].set(init_value)}

    return mechanisms.Function(fn, init, n_actions=(2, 2))


def _nan_beyond(distance: float, centre: float = 0.0):
    """Payoffs w[a]; NaN at the joint action (1, 1) once |w[1, 1, 0] - centre| > distance."""

    def fn(p, joint):
        bad = (joint[0] == 1) & (joint[1] == 1) & (jnp.abs(p["w"][1, 1, 0] - centre) > distance)
        return jnp.where(bad, jnp.nan, p["w"][joint[0], joint[1]])

    return fn


class Stop(Exception):
    """Simulated interruption."""


@pytest.fixture
def interrupt_after(monkeypatch):
    """``interrupt_after(k)``: raise Stop right after chunk k is saved."""

    def arm(k: int | None):
        def hook(method, chunk):
            if k is not None and chunk == k:
                raise Stop(f"{method} chunk {chunk}")

        monkeypatch.setattr(checkpoint_module, "_after_chunk", hook)

    return arm


def _posterior(post) -> dict[str, np.ndarray]:
    return {k: v.values for k, v in post.idata["posterior"].data_vars.items()}


def _assert_identical(a, b) -> None:
    pa, pb = _posterior(a), _posterior(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def _differs(a, b) -> bool:
    pa, pb = _posterior(a), _posterior(b)
    return any(not np.array_equal(pa[k], pb[k]) for k in pa)


# ------------------------------------------------------------------- non-finite log density
@pytest.fixture(scope="module")
def nan_map(small):
    """A MAP (default restarts) that walks into a NaN region: its mechanism and the error.

    Restarts run one after another and restart 0 starts at the mechanism's init whatever
    ``num_restarts`` is, so this error is also the one a ``num_restarts=1`` run raises."""
    _, data = small
    mech = _function(_nan_beyond(0.05, centre=0.4), init_value=0.4)
    with pytest.raises(NonFiniteError) as info:
        bd.fit(data, mech, LEARNER, method="map", priors=bd.Priors(mechanism_scale=None), progress=False)
    return mech, info.value


def test_map_names_the_mechanism_output_and_step_that_became_nan(nan_map):
    err = nan_map[1]
    assert err.method == "MAP" and "mechanism" in err.sites and "mech.w" in err.sites
    msg = str(err)
    step = int(__import__("re").search(r"at step (\d+) of restart 0", msg).group(1))
    assert step > 0  # finite at the start: it is the optimiser that walked into the NaN region
    assert "Function.payoffs gives agent 0 the payoff nan for action 1 at joint action (1, 1)" in msg
    assert "mech.w = " in msg


def test_map_checks_the_objective_after_its_last_step(small, nan_map):
    """The chunk program records the objective before each step; the one after the last step
    of the last chunk (the returned optimum) is checked too, not returned as a NaN log joint."""
    _, data = small
    mech, err = nan_map
    run = {"method": "map", "priors": bd.Priors(mechanism_scale=None), "num_restarts": 1, "progress": False}
    step = int(__import__("re").search(r"at step (\d+) of restart 0", str(err)).group(1))
    # the same optimisation stopped right at that step: every recorded loss is finite
    last = rf"at step {step} of restart 0 \(objective nan; its last step\)"
    with pytest.raises(NonFiniteError, match=last):
        bd.fit(data, mech, LEARNER, num_steps=step, chunk=step, **run)
    assert "mech.w" in err.sites


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_infinite_payoffs_stop_at_the_starting_point(small):
    _, data = small
    mech = _function(lambda p, j: jnp.where(j[0] == 1, jnp.inf, p["w"][j[0], j[1]]))
    with pytest.raises(NonFiniteError, match=r"MAP: .* at the starting point of restart 0\. .*payoff inf"):
        bd.fit(data, mech, LEARNER, method="map", progress=False)


@pytest.mark.slow
def test_nan_gradient_with_finite_value_is_diagnosed(small):
    _, data = small
    # sqrt(w^2) is |w|: finite at w = 0, but its gradient there is NaN
    mech = _function(lambda p, j: jnp.sqrt(p["w"][j[0], j[1]] ** 2))
    with pytest.raises(
        NonFiniteError, match=r"at step 1 of restart 0.*gradient in 'mech\.w'\[0, 0, 0\] is nan"
    ):
        bd.fit(data, mech, LEARNER, method="map", progress=False)


@pytest.mark.slow
def test_svi_stops_at_the_step_whose_loss_is_nan(small):
    _, data = small
    mech = _function(_nan_beyond(0.03))  # the prior median is within 0.01 of 0, guide draws are not
    with pytest.raises(
        NonFiniteError, match=r"SVI: .* at step \d+ \(ELBO loss nan\).*joint action \(1, 1\)"
    ) as info:
        bd.fit(
            data,
            mech,
            LEARNER,
            method="svi",
            priors=bd.Priors(mechanism_scale=0.01),
            init="prior",
            num_steps=400,
            num_draws=10,
            **QUIET,
        )
    assert "mechanism" in info.value.sites


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_nuts_refuses_a_start_where_the_log_density_is_nan(small):
    _, data = small
    mech = _function(lambda p, j: p["w"][j[0], j[1]] * jnp.nan)
    with pytest.raises(NonFiniteError, match=r"NUTS: .*initial point.*mechanism output is non-finite"):
        bd.fit(
            data,
            mech,
            LEARNER,
            method="nuts",
            init="prior",
            num_warmup=5,
            num_samples=5,
            num_chains=1,
            **QUIET,
        )


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_nuts_draw_checks(small):
    mech, data = small
    spec = ModelSpec.build(data, mech, LEARNER, None)
    samples = {"u0_free": np.zeros((2, 25, 1, 2)), "u1_free": np.zeros((2, 25, 2, 1))}
    stats = {"potential_energy": np.ones((2, 25)), "diverging": np.zeros((2, 25), bool)}
    check_nuts_draws(spec, samples, stats)  # all fine
    stats["diverging"][1] = True
    with pytest.raises(NonFiniteError, match=r"in chain 1: all 25 transitions of draws 100\.\.124 diverged"):
        check_nuts_draws(spec, samples, stats, offset=100)
    stats["diverging"][1, 0] = False  # one accepted move: not stuck (divergences are warned about)
    check_nuts_draws(spec, samples, stats)
    stats["potential_energy"][0, 3] = np.nan
    with pytest.raises(NonFiniteError, match=r"at draw 3 of chain 0 \(potential energy nan\)"):
        check_nuts_draws(spec, samples, stats)


# ------------------------------------------------------------------------ checkpoint / resume
SVI_RUN = {"method": "svi", "seed": 5, "init": "prior", "num_steps": 60, "num_draws": 20, **QUIET}


@pytest.fixture(scope="module")
def svi_reference(small, tmp_path_factory):
    """An uninterrupted checkpointed SVI run (3 chunks of 20 steps) and its directory."""
    mech, data = small
    path = tmp_path_factory.mktemp("svi") / "ckpt"
    return bd.fit(data, mech, LEARNER, checkpoint=path, checkpoint_every=20, **SVI_RUN), path


@pytest.mark.slow
def test_svi_resumes_after_an_interruption_with_identical_results(
    small, svi_reference, tmp_path, interrupt_after
):
    mech, data = small
    reference, _ = svi_reference
    path = tmp_path / "ckpt"
    interrupt_after(1)
    with pytest.raises(Stop):
        bd.fit(data, mech, LEARNER, checkpoint=path, checkpoint_every=20, **SVI_RUN)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["chunks"] == ["chunk_00000.npz", "chunk_00001.npz"]  # lost nothing that was finished
    (path / "chunk_00002.npz.tmp").write_bytes(b"half-written")  # a write cut short is ignored
    interrupt_after(None)
    resumed = bd.fit(data, mech, LEARNER, checkpoint=path, checkpoint_every=20, **SVI_RUN)
    _assert_identical(resumed, reference)
    assert resumed.info["elbo_loss_trace"] == reference.info["elbo_loss_trace"]
    # same seed without checkpoint (one 60-step chunk): the same result; another seed: another
    _assert_identical(bd.fit(data, mech, LEARNER, **SVI_RUN), reference)
    assert _differs(bd.fit(data, mech, LEARNER, **{**SVI_RUN, "seed": 6}), reference)


def _fake_checkpoint(path: Path, data, mech, learner=LEARNER, run=SVI_RUN, every: int = 20) -> Path:
    """A checkpoint directory as ``fit(..., checkpoint=path)`` would leave it after two chunks."""
    from bayes_diml.inference.checkpoint import Checkpoint, fingerprint
    from bayes_diml.inference.pipeline import make_config

    options = {k: v for k, v in run.items() if k not in ("method", "seed", "progress", "log_likelihood")}
    spec = ModelSpec.build(data, mech, learner, None)
    ck = Checkpoint(
        path, every, fingerprint(spec, run["method"], make_config(run["method"], options), run["seed"], every)
    )
    state = {"key": jax.random.key(0), "x": jnp.arange(3.0)}
    ck.save(state, None)
    for _ in range(2):
        ck.save(state, {"losses": np.zeros(every)})
    return path


def test_checkpoint_state_round_trips_exactly(small, tmp_path):
    from bayes_diml.inference.checkpoint import Checkpoint

    mech, data = small
    path = _fake_checkpoint(tmp_path / "ck", data, mech)
    ck = Checkpoint(path, 20, json.loads((path / "manifest.json").read_text())["fingerprint"])
    assert ck.n_chunks == 2 and ck.has_state
    state = ck.load_state()
    np.testing.assert_array_equal(jax.random.key_data(state["key"]), jax.random.key_data(jax.random.key(0)))
    np.testing.assert_array_equal(state["x"], [0.0, 1.0, 2.0])
    assert sorted(p.name for p in path.iterdir()) == [
        "chunk_00000.npz",
        "chunk_00001.npz",
        "manifest.json",
        "state_00002.npz",
    ]  # older states are removed once the manifest points past them; no temporary files remain


def test_mismatched_checkpoint_is_refused(small, tmp_path):
    mech, data = small
    path = _fake_checkpoint(tmp_path / "ck", data, mech)
    other = bd.simulate(mech, mech.init(jax.random.key(9)), LEARNER, 8, 10, 2)
    cases = [
        ({"data": other}, r"different fit \(data differ"),
        ({"run": {**SVI_RUN, "num_steps": 80}}, r"\(config differ: config: checkpoint"),
        ({"run": {**SVI_RUN, "seed": 6}}, r"\(seed differ: seed: checkpoint 5 vs now 6\)"),
        ({"run": {"method": "nuts", "seed": 5, "init": "prior", **QUIET}}, r"\(config, method differ"),
        ({"learner": bd.LogitQ(0.3, 2.5, 0.05)}, r"\(learner differ"),
        ({"mech": mechanisms.Tabular((2, 2), init_scale=2.0)}, r"\(mechanism differ"),
        ({"every": 30}, r"\(checkpoint_every differ"),
    ]
    for change, pattern in cases:
        with pytest.raises(CheckpointError, match=pattern):
            bd.fit(
                change.get("data", data),
                change.get("mech", mech),
                change.get("learner", LEARNER),
                checkpoint=path,
                checkpoint_every=change.get("every", 20),
                **change.get("run", SVI_RUN),
            )


def test_damaged_checkpoint_is_refused(small, tmp_path):
    mech, data = small
    path = _fake_checkpoint(tmp_path / "ck", data, mech)
    (path / "chunk_00001.npz").unlink()
    with pytest.raises(CheckpointError, match=r"is damaged: chunk_00001\.npz is missing"):
        bd.fit(data, mech, LEARNER, checkpoint=path, checkpoint_every=20, **SVI_RUN)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"unreadable checkpoint manifest"):
        bd.fit(data, mech, LEARNER, checkpoint=path, checkpoint_every=20, **SVI_RUN)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match=r"exists and is not a directory"):
        bd.fit(data, mech, LEARNER, checkpoint=tmp_path / "file", **SVI_RUN)


def test_checkpoint_options_are_checked(small, tmp_path):
    mech, data = small
    with pytest.raises(ValueError, match=r"checkpoint applies to method='nuts' or 'svi', not 'map'"):
        bd.fit(data, mech, LEARNER, method="map", checkpoint=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"checkpoint_every must be >= 1"):
        bd.fit(data, mech, LEARNER, checkpoint=tmp_path / "c", checkpoint_every=0, **SVI_RUN)
    with pytest.raises(ValueError, match=r"checkpoint_every needs checkpoint=DIR"):
        bd.fit(data, mech, LEARNER, checkpoint_every=10, **SVI_RUN)


def test_cli_fit_checkpoint_options(small, tmp_path):
    mech, data = small
    data.save(tmp_path / "d.npz")
    args = ["fit", str(tmp_path / "d.npz"), "--beta", "2", "--no-progress", "--out", str(tmp_path / "f.nc")]
    ck = ["--checkpoint", str(tmp_path / "ck"), "--checkpoint-every", "20"]
    res = CliRunner().invoke(main, [*args, "--method", "map", *ck])
    assert res.exit_code == 1 and "checkpoint applies to method='nuts' or 'svi', not 'map'" in res.output
    _fake_checkpoint(tmp_path / "ck", data, mech)
    res = CliRunner().invoke(main, [*args, "--method", "svi", *ck])
    assert res.exit_code == 1 and "was written for a different fit" in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "f.nc").exists()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # 30 draws on purpose
def test_nuts_resumes_after_an_interruption_with_identical_results(small, tmp_path, interrupt_after):
    """Warm-up, then 3 chunks of 10 draws x 2 chains; interrupted after chunk 0 and resumed."""
    mech, data = small
    run = {"method": "nuts", "seed": 2, "init": "prior", "num_warmup": 40, "num_samples": 30, "num_chains": 2}
    run |= QUIET
    reference = bd.fit(data, mech, LEARNER, checkpoint=tmp_path / "a", checkpoint_every=10, **run)
    interrupt_after(0)
    with pytest.raises(Stop):
        bd.fit(data, mech, LEARNER, checkpoint=tmp_path / "b", checkpoint_every=10, **run)
    interrupt_after(None)
    resumed = bd.fit(data, mech, LEARNER, checkpoint=tmp_path / "b", checkpoint_every=10, **run)
    _assert_identical(resumed, reference)
    for k in ("diverging", "lp", "n_steps"):
        np.testing.assert_array_equal(
            resumed.idata["sample_stats"][k].values, reference.idata["sample_stats"][k].values
        )
    # another seed: another chain (a run without checkpoint equals the checkpointed one too,
    # checked by hand: 2 chains x 60 draws, bit-identical; see docs/reliability.md)
    assert _differs(bd.fit(data, mech, LEARNER, **{**run, "seed": 3}), reference)


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.slow
@pytest.mark.parametrize(
    "method, options",
    # MAP: one chunk of 100 steps, so the restarts are still on their way (the jittered start
    # is what the seed changes; 200 steps take both seeds' second restart to the same optimum,
    # equal to the last float32 bit: -65.30016)
    [("map", {"num_restarts": 2, "num_steps": 100}), ("laplace", {"num_draws": 20, "refine_steps": 20})],
)
def test_same_seed_same_result_and_seeds_differ(small, method, options):
    """SVI and NUTS: see the resume tests (a run without checkpoint equals a checkpointed one)."""
    mech, data = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAP convergence warnings of the short runs
        a = bd.fit(data, mech, LEARNER, method=method, seed=0, **options, **QUIET)
        b = bd.fit(data, mech, LEARNER, method=method, seed=0, **options, **QUIET)
        c = bd.fit(data, mech, LEARNER, method=method, seed=1, **options, **QUIET)
    _assert_identical(a, b)
    if method == "map":  # the restarts start elsewhere: their final log joints differ
        assert a.info["restart_log_joints"] == b.info["restart_log_joints"]
        assert a.info["restart_log_joints"] != c.info["restart_log_joints"]
    else:
        assert _differs(a, c)


# ------------------------------------------------------------------------------ memory guard
def test_memory_estimate_from_shapes():
    est = estimate_plan_memory("table", (10, 21, 3), (4, 4, 5))
    assert est.cf_shape == (10, 20, 3, 5)
    assert est.cf_bytes == 4 * 10 * 20 * 3 * 5  # float32 unless x64
    assert est.device_bytes == 5 * est.cf_bytes
    joint = estimate_plan_memory("joint", (10, 21, 3), (4, 4, 5))
    assert joint.host_bytes > est.host_bytes  # the joint plan builds int64[..., n, K, n]
    assert [parse_bytes(v) for v in ("512", "2KB", "1.5 MiB", 3e3)] == [512, 2000, 1572864, 3000]
    for bad in ("lots", "-1GB", "0", "1 parsec"):
        with pytest.raises(ValueError, match="memory limit"):
            parse_bytes(bad)


def test_memory_guard_refuses_before_allocating(small):
    mech, data = small
    with memory_limit("10KB"), pytest.raises(MemoryLimitError) as info:
        bd.log_likelihood(mech, mech.init(jax.random.key(0)), LEARNER, data)
    msg = str(info.value)
    assert (
        "float[M, T-1, n, K] = [8, 9, 2, 2]" in msg and "more than the" in msg and "set_memory_limit" in msg
    )
    assert "Nothing was allocated" in msg and "'count' plan" in msg and "batch_size=B" in msg
    with memory_limit("10KB"), pytest.raises(MemoryLimitError):
        bd.fit(data, mech, LEARNER, method="map", progress=False)
    bd.log_likelihood(mech, mech.init(jax.random.key(0)), LEARNER, data)  # the default limit: fine


def test_memory_guard_from_the_environment_and_cli(small, tmp_path, monkeypatch):
    mech, data = small
    data.save(tmp_path / "d.npz")
    monkeypatch.setenv(ENV_VAR, "2KB")
    res = CliRunner().invoke(
        main, ["fit", str(tmp_path / "d.npz"), "--out", str(tmp_path / "f.nc"), "--no-progress"]
    )
    assert res.exit_code == 1
    assert "Error:" in res.output and f"of ${ENV_VAR}" in res.output and "Traceback" not in res.output
    assert not Path(tmp_path / "f.nc").exists()


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # 30 + 20 draws: compiles only
def test_sequential_chains_without_progress_compile_the_sampler_once(small, capfd, caplog):
    """NumPyro 0.22 recompiles its whole sampling loop for every chain (and every checkpoint
    chunk) when its progress bar is off (pyro-ppl/numpyro#2171). ``fit(progress=False)`` avoids
    that: the sampler is compiled once for three sequential chains, and nothing is printed.
    (From the MAP, each chain is one compiled program, ``jit(_whole_chain)``:
    ``inference/numpyro_nuts.py``.)"""
    mech, data = small
    jax.clear_caches()  # the chain program is shared by fits of equal shapes: count this fit's
    with caplog.at_level("WARNING", logger="jax"), jax.log_compiles(True):
        post = bd.fit(data, mech, LEARNER, method="nuts", seed=0, progress=False, log_likelihood=False,
                      num_warmup=30, num_samples=20, num_chains=3)  # fmt: skip
    sampler_compiles = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("Finished XLA compilation")
        and any(name in r.getMessage() for name in ("_fori_collect_loop", "_body_fn", "jit(_whole_chain)"))
    ]
    assert len(sampler_compiles) == 1, sampler_compiles
    assert post.idata["posterior"].sizes["chain"] == 3
    out, err = capfd.readouterr()
    assert out == "" and err == ""
