"""``fit(..., init_map=MAPConfig(...))``: the MAP settings that start Laplace, SVI and NUTS."""

from __future__ import annotations

import importlib
import warnings

import jax
import pytest

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.inference import MAPConfig
from bayes_diml.models import Priors

LEARNER = bd.LogitQ(alpha=0.3, beta=2.0, eps=0.05)
PRIORS = Priors(mechanism_scale=1.0)


@pytest.fixture(scope="module")
def game():
    mech = mechanisms.Tabular((2, 3))
    data = bd.simulate(mech, mech.init(jax.random.key(0)), LEARNER, n_episodes=4, T=8, key=1)
    return mech, data


def _fit(game, method, **kw):
    mech, data = game
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit(
            data, mech, LEARNER, method, 0, priors=PRIORS, progress=False, log_likelihood=False, **kw
        )


class _Stop(Exception):
    pass


@pytest.mark.parametrize("method", ["laplace", "svi", "nuts"])
def test_init_map_reaches_the_runner(game, method, monkeypatch):
    """fit hands init_map to the method's runner as its map_config (no sampling: the runner is stubbed)."""
    pipeline_module = importlib.import_module("bayes_diml.inference.pipeline")

    seen = {}

    def stub(spec, key, config, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(pipeline_module, f"run_{method}", stub)
    cfg = MAPConfig(num_steps=7, num_restarts=1)
    init = {"init": "map"} if method == "nuts" else {}  # NUTS starts at dispersed points by default
    with pytest.raises(_Stop):
        _fit(game, method, init_map=cfg, **init)
    assert seen["map_config"] is cfg
    seen.clear()
    with pytest.raises(_Stop):
        _fit(game, method, **init)
    assert "map_config" not in seen


@pytest.mark.slow
def test_init_map_is_the_start_of_svi(game):
    """The SVI start is the MAP with the given settings: same log joint as fit(method='map', same settings).

    A Tabular table's single MAP start is the zero table, so the MAP does not depend on the key.
    """
    cfg = MAPConfig(num_steps=5, chunk=5, num_restarts=1, learning_rate=0.05)
    short = _fit(game, "svi", init_map=cfg, num_steps=2, num_draws=4)
    direct = _fit(game, "map", num_steps=5, chunk=5, num_restarts=1, learning_rate=0.05)
    assert short.info["map_log_joint"] == pytest.approx(direct.info["map_log_joint"], rel=1e-6)
    # 5 steps are far from converged (the default start, MAPConfig(num_restarts=1), runs up to 3,000
    # steps and gets a higher log joint), so the equality above fails if init_map is ignored
    assert not direct.info["converged"]


def test_init_map_errors(game):
    with pytest.raises(TypeError, match="init_map must be a MAPConfig"):
        _fit(game, "svi", init_map={"num_steps": 5})
    with pytest.raises(ValueError, match="init_map sets the start"):
        _fit(game, "map", init_map=MAPConfig(num_steps=5))
    with pytest.raises(ValueError, match="init_map needs init='map'"):
        _fit(game, "nuts", init_map=MAPConfig(num_steps=5), init="prior")


def test_experiments_start_bayesian_rows_at_the_diml_map():
    """The paper suite's SVI / NUTS rows start at a MAP with the diml settings (E7: its own step count)."""
    from types import SimpleNamespace

    from bayes_diml.studies import experiments as X

    s = X.Settings()
    cfg = X._init_map(SimpleNamespace(name="e2"), s)
    assert isinstance(cfg, MAPConfig)
    assert (cfg.num_steps, cfg.learning_rate, cfg.num_restarts) == (s.map_steps, s.map_learning_rate, 1)
    assert X._init_map(SimpleNamespace(name="e7"), s).num_steps == s.map_steps_e7
    assert X._init_map(SimpleNamespace(name="e2"), s.replace(bayes_init="prior")) is None
