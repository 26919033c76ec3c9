"""The installed distribution: one version, the typing marker, declared dependencies and extras.

- ``bayes_diml.__version__`` is the installed metadata's version (pyproject's ``version``).
- ``py.typed`` ships inside the installed package.
- Every third-party module the package's source imports is declared (a required dependency or an
  extra), and ``constraints/lower-bounds.txt`` pins exactly the declared lower bounds.
- Without the optional packages (BlackJAX, pyarrow, zarr, Dask), ``import bayes_diml`` and every
  one of its modules still import; using the feature raises ``MissingExtraError`` (an
  ``ImportError``) naming the extra to install.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata, resources
from pathlib import Path

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement
from packaging.version import Version

import bayes_diml as bd
from bayes_diml import mechanisms
from bayes_diml.cli import main
from bayes_diml.inference import NUTSConfig, blackjax_nuts
from bayes_diml.optional import MissingExtraError, require

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: source folder -> the package it is installed as ([tool.setuptools.package-dir])
PACKAGE_OF = {"bayes_diml": "bayes_diml", "models": "bayes_diml.models", "inference": "bayes_diml.inference"}
#: the optional packages and the extra that installs each
OPTIONAL = {"blackjax": "blackjax", "pyarrow": "parquet", "zarr": "zarr", "dask": "sweep"}


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = PYPROJECT["project"]
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


def _lower_bound(req: Requirement) -> Version:
    (bound,) = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return bound


# ---------------------------------------------------------------------------- version
def test_version_is_the_installed_metadata_version():
    assert bd.__version__ == metadata.version("bayes-diml")
    assert Version(bd.__version__) == Version(PYPROJECT["project"]["version"])


def test_version_without_installed_metadata_is_a_clear_placeholder():
    assert bd._installed_version("bayes-diml") == bd.__version__
    assert bd._installed_version("no-such-distribution-bayes-diml") == "0+unknown"
    assert Version("0+unknown") < Version("0.0.1")  # orders below every release


def test_version_is_written_once_in_the_source():
    """No module repeats the version string (it comes from the metadata)."""
    version = PYPROJECT["project"]["version"]
    for folder in PACKAGE_OF:
        for path in (REPO / folder).rglob("*.py"):
            assert f'"{version}"' not in path.read_text(), path


# ---------------------------------------------------------------------------- py.typed
def test_py_typed_is_in_the_installed_package():
    marker = resources.files("bayes_diml") / "py.typed"
    assert marker.is_file()


def test_py_typed_is_in_the_distribution_files():
    """A regular (wheel) install lists the marker in its RECORD; an editable one maps the source."""
    direct_url = metadata.distribution("bayes-diml").read_text("direct_url.json")
    if direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"):
        pytest.skip("editable install: the wheel's files are checked by the non-editable install of .ci/run")
    files = {str(f) for f in metadata.files("bayes-diml") or ()}
    assert "bayes_diml/py.typed" in files
    assert "bayes_diml/models/__init__.py" in files and "bayes_diml/inference/__init__.py" in files


# ---------------------------------------------------------------------------- license, citation
def test_metadata_declares_the_mit_license_file_and_the_project_urls():
    meta = metadata.metadata("bayes-diml")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in meta.get_all("License-File")
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 The bayes-diml developers\n")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert urls["Repository"] == PYPROJECT["project"]["urls"]["Repository"]


def test_citation_names_the_same_repository_and_license_and_cites_the_paper():
    citation = (REPO / "CITATION.cff").read_text()
    fields = dict(re.findall(r'^([a-z-]+): "?([^"\n]*)"?$', citation, flags=re.MULTILINE))
    assert fields["repository-code"] == PYPROJECT["project"]["urls"]["Repository"]
    assert fields["license"] == PYPROJECT["project"]["license"]
    assert "version" not in fields  # the version is written once, in pyproject.toml
    assert 'doi: "10.48550/arXiv.2601.17678"' in citation


# ---------------------------------------------------------------------------- declared dependencies
def _imported_top_level_modules() -> set[str]:
    names = set()
    for folder in PACKAGE_OF:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.partition(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names.add(node.module.partition(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "bayes_diml"}


def _declared() -> dict[str, str]:
    """Normalised distribution name -> where it is declared (``required`` or the extra)."""
    out = {}
    for extra in [None, *PYPROJECT["project"]["optional-dependencies"]]:
        for req in _requirements(extra):
            out.setdefault(re.sub(r"[-_.]+", "-", req.name).lower(), extra or "required")
    return out


def test_every_imported_third_party_package_is_declared():
    imported = _imported_top_level_modules()
    assert {"jax", "numpyro", "arviz", "scipy", "xarray", "arviz_stats"} <= imported  # the scan works
    declared = _declared()
    missing = sorted(m for m in imported if m.replace("_", "-") not in declared)
    assert missing == [], f"imported but not declared in pyproject.toml: {missing}"


def test_optional_packages_are_extras_not_requirements():
    declared = _declared()
    for module, extra in OPTIONAL.items():
        assert declared[module] == extra, (module, declared[module])
    test_extra = {r.name: r.extras for r in _requirements("test")}
    assert {"blackjax", "parquet", "zarr"} <= test_extra["bayes-diml"]  # the tests cover the extras


def test_linters_are_dev_tools_not_test_dependencies():
    test = {r.name for r in _requirements("test")}
    dev = {r.name for r in _requirements("dev")}
    assert {"ruff", "import-linter"} <= dev
    assert not {"ruff", "import-linter"} & test


def test_lower_bound_constraints_pin_every_declared_bound():
    pins = {}
    for line in (REPO / "constraints" / "lower-bounds.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec:
            name, _, version = spec.partition("==")
            pins[name] = Version(version)
    bounds = {}
    for extra in [None, *PYPROJECT["project"]["optional-dependencies"]]:
        for req in _requirements(extra):
            if req.name != "bayes-diml":
                bounds[req.name] = _lower_bound(req)
    assert pins == bounds


# ---------------------------------------------------------------------------- missing extras
def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "blackjax", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=re.escape('pip install "bayes-diml[blackjax]"')) as info:
        require("blackjax", "blackjax", "Sampling with BlackJAX")
    assert isinstance(info.value, ImportError) and info.value.name == "blackjax"
    assert str(info.value).startswith("Sampling with BlackJAX needs the optional package blackjax")
    assert require("json", "none", "-") is json  # installed: the module itself


def test_blackjax_backend_without_blackjax_names_the_extra(monkeypatch):
    mech = mechanisms.Tabular((2, 2))
    truth = {"table": jax.random.normal(jax.random.key(0), (2, 2, 2))}
    data = bd.simulate(mech, truth, bd.LogitQ(0.3, 2.0, 0.05), 2, 5, 0)
    monkeypatch.setitem(sys.modules, "blackjax", None)
    message = re.escape('pip install "bayes-diml[blackjax]"')
    with pytest.raises(MissingExtraError, match=message):
        blackjax_nuts.run_blackjax_nuts(None, None, None, None)
    with pytest.raises(ImportError, match=message):
        bd.fit(data, mech, bd.LogitQ(0.3, 2.0, 0.05), method="nuts", backend="blackjax", seed=0,
               num_warmup=0, num_samples=2, num_chains=1, progress=False)  # fmt: skip
    # named when the settings are made, before any fit work (the MAP start would come first)
    with pytest.raises(MissingExtraError, match=message):
        NUTSConfig(backend="blackjax")
    assert NUTSConfig().backend == "numpyro"  # the default backend does not need the extra


def test_parquet_without_pyarrow_names_the_extra(monkeypatch, tmp_path):
    data = bd.Trajectories(np.zeros((1, 3, 2), dtype=int), (2, 2))
    written = data.save(tmp_path / "ok.parquet")  # pyarrow present
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    message = re.escape('pip install "bayes-diml[parquet]"')
    with pytest.raises(MissingExtraError, match=message):
        data.save(tmp_path / "new.parquet")
    assert not (tmp_path / "new.parquet").exists()
    with pytest.raises(MissingExtraError, match=message):
        bd.load_trajectories(written)
    data.save(tmp_path / "still.csv")  # the other formats do not need it
    # the command line turns it into a one-line error
    out = tmp_path / "cli.parquet"
    result = CliRunner().invoke(
        main, ["simulate", "--env", "e2", "--episodes", "2", "--steps", "3", "--out", str(out)]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert 'pip install "bayes-diml[parquet]"' in " ".join(result.output.split())


def _module_names() -> list[str]:
    names = []
    for folder, package in PACKAGE_OF.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1:] != ["__main__"]:
                names.append(".".join([package, *parts]))
    return names


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_the_package_imports_without_the_optional_packages(tmp_path):
    """A fresh interpreter in which the optional packages cannot be imported imports every module."""
    names = _module_names()
    assert len(names) > 40 and "bayes_diml.inference.blackjax_nuts" in names
    code = (
        "import importlib, sys, warnings\n"
        f"for name in {sorted(OPTIONAL)!r}: sys.modules[name] = None\n"
        "warnings.simplefilter('ignore', DeprecationWarning)  # the old module aliases warn\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print('imported', len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported")
