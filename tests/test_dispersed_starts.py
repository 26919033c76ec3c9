"""NUTS chains start at dispersed points (``NUTSConfig(init="dispersed")``, the default)."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from arviz_stats import rhat
from numpyro.infer.util import potential_energy

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import MAPConfig, NUTSConfig, numpyro_nuts, samplers, starts
from bayes_diml.inference.spec import ModelSpec
from bayes_diml.models import Priors

LEARNER = bd.LogitQ("infer", 2.0, "infer")


@pytest.fixture(scope="module")
def game():
    mech = mechanisms.Tabular((2, 3))
    truth = {"table": jax.random.normal(jax.random.key(3), (2, 3, 2))}
    return mech, bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 6, 10, 11)


def _model_starts(game, key, num_chains):
    mech, data = game
    model = ModelSpec.build(data, mech, LEARNER, Priors()).model()
    potential = jax.jit(functools.partial(potential_energy, model, (), {}))
    return starts.dispersed_starts(potential, starts.prior_draw_fn(model), key, num_chains)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_dispersed_starts_are_distinct_finite_and_reproducible(game):
    first, found = _model_starts(game, jax.random.key(5), 4)
    assert found.tolist() == [True] * 4
    assert set(first.z) == {"u0_free", "u1_free", "alpha", "eps"}  # the latent sites, unconstrained
    assert np.all(np.isfinite(np.asarray(first.potential_energy)))
    for name, v in first.z.items():
        v = np.asarray(v).reshape(4, -1)
        assert np.all(np.isfinite(v)), name
        assert len({tuple(row) for row in v.tolist()}) == 4, f"{name}: chains share a start"
    for g in jax.tree.leaves(first.z_grad):
        assert np.all(np.isfinite(np.asarray(g)))
    # one more call on the model shows both (each call compiles its own program, ~4 s here): the
    # same key gives the same starts again, and chain c's start depends on (key, c) only, not on
    # the number of chains
    more, _ = _model_starts(game, jax.random.key(5), 5)
    for name in first.z:
        np.testing.assert_array_equal(np.asarray(more.z[name])[:4], np.asarray(first.z[name]))
    # another key, other starts: how dispersed_starts derives the chains' keys, whatever the model
    # (each site's draw following its chain's key is shown above: the chains' starts differ)
    potential = jax.jit(lambda z: 0.5 * jnp.sum(z["x"] ** 2))
    draw = lambda k: {"x": jax.random.normal(k, (3,))}  # noqa: E731
    toy, _ = starts.dispersed_starts(potential, draw, jax.random.key(5), 4)
    other, _ = starts.dispersed_starts(potential, draw, jax.random.key(6), 4)
    assert not np.allclose(np.asarray(other.z["x"]), np.asarray(toy.z["x"]))


def test_a_non_finite_draw_is_replaced_by_the_chains_next_draw():
    # finite only for x > 0: about half of the standard-normal draws fail
    potential = jax.jit(lambda z: jnp.where(z["x"] > 0, 0.5 * z["x"] ** 2, jnp.nan))
    draw = lambda k: {"x": jax.random.normal(k)}  # noqa: E731
    chosen, found = starts.dispersed_starts(potential, draw, jax.random.key(0), 8)
    assert found.all()
    x = np.asarray(chosen.z["x"])
    assert np.all(x > 0) and len(set(x.tolist())) == 8
    first_tries = np.asarray(
        jax.vmap(lambda c: draw(jax.random.fold_in(jax.random.fold_in(jax.random.key(0), c), 0))["x"])(
            jnp.arange(8)
        )
    )
    assert (first_tries <= 0).any()  # some chains did need a second draw
    never, found = starts.dispersed_starts(lambda z: jnp.nan * z["x"], draw, jax.random.key(0), 3, tries=2)
    assert not found.any()
    with pytest.raises(ValueError, match="num_chains >= 1"):
        starts.dispersed_starts(potential, draw, jax.random.key(0), 0)


def _bimodal_potential(z):
    """Two modes at x = -3 and x = +3 (sd 0.3 each; ~50 nats of barrier between them)."""
    x = z["x"]
    return -jax.nn.logsumexp(jnp.stack([-0.5 * ((x - 3.0) / 0.3) ** 2, -0.5 * ((x + 3.0) / 0.3) ** 2]))


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_r_hat_flags_a_second_mode_from_dispersed_starts_but_not_from_the_map():
    """The point of dispersed starts: chains from the MAP all stay in its mode and agree (R-hat ~ 1,
    the second mode hidden); chains from their own prior draws settle in both modes (R-hat >> 1.1)."""
    config = NUTSConfig(num_warmup=200, num_samples=200, num_chains=4)
    potential = jax.jit(_bimodal_potential)
    prior = lambda k: {"x": 3.0 * jax.random.normal(k)}  # noqa: E731
    dispersed, found = starts.dispersed_starts(potential, prior, jax.random.key(1), 4)
    x0 = np.asarray(dispersed.z["x"])
    assert found.all() and (x0 > 0).any() and (x0 < 0).any()  # this key puts chains on both sides
    at_map = {"x": jnp.full(4, 3.0)}  # the mode an optimiser finds from x > 0
    r_hat = {}
    for name, z in (("dispersed", dispersed.z), ("map", at_map)):
        finite, draws, stats = numpyro_nuts.run_numpyro_nuts(
            potential, z, jax.random.key(2), config, progress=False
        )
        assert finite is True and stats["diverging"].sum() == 0
        r_hat[name] = float(rhat(np.asarray(draws["x"]), chain_axis=0, draw_axis=1))
        if name == "map":
            assert np.all(np.asarray(draws["x"]) > 0)  # never left the MAP's mode
    assert r_hat["map"] < 1.02, r_hat
    assert r_hat["dispersed"] > 1.1, r_hat


class _Stop(Exception):
    """Ends a fit once its NUTS starts are made (nothing is compiled for the sampler)."""


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # short runs
def test_fit_starts_chains_dispersed_by_default_and_at_the_map_on_request(game, monkeypatch):
    mech, data = game
    opts = {"num_warmup": 20, "num_samples": 10, "num_chains": 2, "method": "nuts", "progress": False}
    # every fit's starts, as run_nuts makes them: (config.init, info so far, z [C, ...])
    made = []
    real_starts = samplers._nuts_starts

    def record_starts(*args):
        out = real_starts(*args)
        config, info = args[4], args[7]
        made.append((config.init, dict(info), {k: np.asarray(v) for k, v in out.z.items()}))
        if config.init == "map":
            raise _Stop
        return out

    monkeypatch.setattr(samplers, "_nuts_starts", record_starts)
    post = bd.fit(data, mech, LEARNER, seed=3, **opts)
    assert post.info["init"] == "dispersed" and post.info["init_fallback_chains"] == []
    assert "map_log_joint" not in post.info  # no MAP fit was needed
    dispersed_z = made[-1][2]

    # init="map": every chain at the MAP. Stopped once the starts are made (a fit's ``info["init"]``
    # and the MAP's log joint reaching ``info`` are shown by the real fits here)
    with pytest.raises(_Stop):
        bd.fit(data, mech, LEARNER, seed=3, init="map", **opts)
    init, info, map_z = made[-1]
    assert init == "map" and "map_log_joint" in info and "init_fallback_chains" not in info
    for name, v in map_z.items():
        np.testing.assert_array_equal(v[0], v[1])
        assert not np.allclose(v, dispersed_z[name])

    # a chain whose draws are all non-finite starts at the MAP
    seen = []

    def record(potential, draw, key, num_chains, **kw):
        out, found = starts.dispersed_starts(potential, draw, key, num_chains, **kw)
        seen.append(found)
        return out, np.array([True, False])

    monkeypatch.setattr(samplers, "dispersed_starts", record)
    fallback = bd.fit(data, mech, LEARNER, seed=3, **opts)
    assert len(seen) == 1 and seen[0].all()  # (the real draws were all finite)
    assert fallback.info["init_fallback_chains"] == [1] and "map_log_joint" in fallback.info
    assert fallback.info["init"] == "dispersed"
    np.testing.assert_array_equal(  # chain 0 kept its dispersed start: the same chain as before
        fallback.idata["posterior"]["alpha"][0], post.idata["posterior"]["alpha"][0]
    )
    # ... as the starts show: chain 0 at post's chain 0, chain 1 at the MAP of init="map"
    for name, v in made[-1][2].items():
        np.testing.assert_array_equal(v[0], dispersed_z[name][0])
        np.testing.assert_array_equal(v[1], map_z[name][1])


def test_init_options_are_checked():
    assert NUTSConfig().init == "dispersed"
    with pytest.raises(ValueError, match="'dispersed', 'map', 'prior'"):
        NUTSConfig(init="median")
    NUTSConfig(backend="blackjax", init="dispersed")  # BlackJAX takes dispersed starts too
    with pytest.raises(ValueError, match="starts at dispersed points or the MAP"):
        NUTSConfig(backend="blackjax", init="prior")
    mech = mechanisms.Tabular((2, 2))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), bd.LogitQ(0.3, 2.0, 0.05), 2, 4, 0)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="dispersed points by default"):
        warnings.simplefilter("ignore")
        bd.fit(data, mech, LEARNER, method="nuts", init_map=MAPConfig(num_steps=5))


@pytest.mark.slow  # fast-suite budget: the slow run in CI checks it
@pytest.mark.filterwarnings("ignore::bayes_diml.inference.ConvergenceWarning")  # short runs
def test_a_checkpointed_fit_starts_dispersed_and_resumes(game, tmp_path):
    """The checkpoint path (``MCMC.warmup`` / ``MCMC.run`` in chunks) takes the dispersed starts."""
    mech, data = game
    opts = {"num_warmup": 20, "num_samples": 10, "num_chains": 2, "method": "nuts", "progress": False}
    first = bd.fit(data, mech, LEARNER, seed=4, checkpoint=tmp_path / "ck", checkpoint_every=5, **opts)
    assert first.info["init"] == "dispersed" and "map_log_joint" not in first.info
    resumed = bd.fit(data, mech, LEARNER, seed=4, checkpoint=tmp_path / "ck", checkpoint_every=5, **opts)
    np.testing.assert_array_equal(first.idata["posterior"]["alpha"], resumed.idata["posterior"]["alpha"])
    assert not np.allclose(first.idata["posterior"]["alpha"][0], first.idata["posterior"]["alpha"][1])
