"""The persistent compilation cache: what the command line turns on, and where."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import bayes_diml as bd
from bayes_diml import compilation_cache as cc


@pytest.fixture
def jax_settings(monkeypatch):
    """Record JAX config updates instead of applying them (the settings are process-wide)."""
    updates: dict[str, object] = {}
    monkeypatch.setattr(cc.jax.config, "update", lambda name, value: updates.__setitem__(name, value))
    monkeypatch.setattr(cc, "_configured_dir", lambda: None)
    monkeypatch.delenv(cc.ENV_VAR, raising=False)
    return updates


def test_enable_sets_jax_cache_settings(jax_settings, tmp_path):
    where = bd.enable_compilation_cache(tmp_path / "a" / "b")
    assert where == tmp_path / "a" / "b" and where.is_dir()
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    assert jax_settings == {
        "jax_compilation_cache_dir": str(where),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_compilation_cache_max_size": cc.DEFAULT_MAX_SIZE_BYTES,
    }


def test_default_directory_follows_xdg(jax_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cc.cache_from_environment() == tmp_path / "bayes-diml" / "jax"
    assert jax_settings["jax_compilation_cache_dir"] == str(tmp_path / "bayes-diml" / "jax")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cc.default_cache_dir() == tmp_path / "home" / ".cache" / "bayes-diml" / "jax"


@pytest.mark.parametrize("value", ["off", "0", "False", "no"])
def test_environment_turns_it_off(jax_settings, monkeypatch, value):
    monkeypatch.setenv(cc.ENV_VAR, value)
    assert cc.cache_from_environment() is None
    assert jax_settings == {}


def test_flag_off_and_environment_directory(jax_settings, monkeypatch, tmp_path):
    monkeypatch.setenv(cc.ENV_VAR, str(tmp_path / "mine"))
    assert cc.cache_from_environment(enabled=False) is None
    assert jax_settings == {}
    assert cc.cache_from_environment() == tmp_path / "mine"
    assert jax_settings["jax_compilation_cache_dir"] == str(tmp_path / "mine")


def test_a_directory_jax_already_has_is_kept(jax_settings, monkeypatch, tmp_path):
    monkeypatch.setattr(cc, "_configured_dir", lambda: str(tmp_path / "users"))
    assert cc.cache_from_environment() == tmp_path / "users"
    assert jax_settings == {}


def test_unusable_directory_warns_and_stays_off(jax_settings, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(cc.ENV_VAR, str(blocker))
    with pytest.warns(RuntimeWarning, match="compilation cache off: .*not a directory"):
        assert cc.cache_from_environment() is None
    assert jax_settings == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_compile_time_s": -1.0}, "min_compile_time_s"), ({"max_size_bytes": 0}, "max_size_bytes")],
)
def test_bad_settings_raise(jax_settings, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bd.enable_compilation_cache(tmp_path, **kwargs)
    assert jax_settings == {}


def _simulate(tmp_path: Path, *options: str) -> Path:
    """Run ``bayes-diml [options] simulate`` in a fresh process with XDG_CACHE_HOME in tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in (cc.ENV_VAR, "JAX_COMPILATION_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    cmd = [sys.executable, "-c", "from bayes_diml.cli import main; main()", *options]
    cmd += ["simulate", "--env", "e2", "--episodes", "2", "--steps", "4", "--out", "d.npz"]
    # run outside the repository: `python -c` puts the working directory first on sys.path,
    # where the source folder would shadow the installed package
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # e.g. "Error reading persistent compilation cache entry ... install the `filelock` package"
    assert "compilation cache" not in result.stderr, result.stderr
    return tmp_path / "xdg" / "bayes-diml" / "jax"


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_command_line_stores_compiled_programs(tmp_path):
    cache = _simulate(tmp_path)
    assert cache.is_dir() and any(cache.iterdir()), "no compiled program was stored"


@pytest.mark.slow
def test_command_line_without_cache_stores_nothing(tmp_path):
    cache = _simulate(tmp_path, "--no-compilation-cache")
    assert not cache.exists()
