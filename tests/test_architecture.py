"""The package's layout rules that import-linter does not check (see docs/architecture.md).

import-linter (``bash .ci/lint-imports``, run by ``.ci/run``) checks the floors, cycles and
private *modules*; these tests read the source with ``ast`` for the rest: no module imports
another package's underscore *names*, library code never silences warnings wholesale, and no
source module grows past the size of one idea.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: source folder -> the package it is installed as ([tool.setuptools.package-dir])
FOLDERS = {"bayes_diml": "bayes_diml", "models": "bayes_diml.models", "inference": "bayes_diml.inference"}
#: modules allowed past MAX_LINES, with the one idea that needs the length
LONG_MODULES: dict[str, str] = {}
MAX_LINES = 600
#: underscore names that are public API (NamedTuple's methods)
PUBLIC_UNDERSCORE = {"_replace", "_fields", "_asdict", "_make", "_field_defaults"}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _package(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = _package(module, path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE


def _private_name_imports(module: str, path: Path) -> list[str]:
    """``from X import _name`` (or ``X._name`` on an imported module) with X outside this package."""
    tree = ast.parse(path.read_text())
    own = _package(module, path)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, path)
            if not target.startswith("bayes_diml"):
                continue
            target_pkg = _package(target, MODULES[target]) if target in MODULES else target
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in MODULES:  # a submodule, not a name
                    aliases[alias.asname or alias.name] = full
                    continue
                if _is_private(alias.name) and target_pkg != own:
                    found.append(f"line {node.lineno}: from {target} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bayes_diml") and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
        ):
            target = aliases[node.value.id]
            if _package(target, MODULES[target]) != own:
                found.append(f"line {node.lineno}: {target}.{node.attr}")
    return found


def test_module_table_covers_the_package():
    assert {"bayes_diml", "bayes_diml.models", "bayes_diml.inference", "bayes_diml.cli"} <= set(MODULES)
    assert len(MODULES) > 40


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_packages_private_names(module):
    assert _private_name_imports(module, MODULES[module]) == []


def test_the_private_name_check_finds_a_violation(tmp_path):
    """Negative control: the scan flags a cross-package private import and an attribute."""
    path = tmp_path / "probe.py"
    path.write_text(
        "from bayes_diml.models.logit_q import _secret\n"
        "from bayes_diml.mechanisms import base as b\n"
        "x = b._hidden\n"
        "from bayes_diml.models.logit_q import public_name\n"
    )
    found = _private_name_imports("bayes_diml.inference.probe", path)
    assert len(found) == 2, found
    assert "_secret" in found[0] and "_hidden" in found[1]
    # the same imports from inside the package itself are allowed
    assert _private_name_imports("bayes_diml.models.probe", path)[:1] == found[1:]


def _silences_all_warnings(path: Path) -> list[int]:
    """Lines calling ``warnings.simplefilter("ignore")`` (every category, every message)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "simplefilter"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "ignore"
            and len(node.args) < 2
            and not any(k.arg == "category" for k in node.keywords)
        ):
            out.append(node.lineno)
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_library_code_filters_warnings_by_category_and_message(module):
    assert _silences_all_warnings(MODULES[module]) == []


def test_the_warning_check_finds_a_blanket_filter(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(
        "import warnings\nwith warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n"
        "warnings.simplefilter('ignore', category=DeprecationWarning)\n"
    )
    assert _silences_all_warnings(path) == [3]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_hold_one_idea(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES or module in LONG_MODULES, (
        f"{module} has {lines} lines (> {MAX_LINES}): split it, or name the one idea that needs the "
        "length in LONG_MODULES"
    )


def test_every_package_folder_is_listed_for_the_wheel():
    """[tool.setuptools] packages is an explicit list: a package left out would be missing from the wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert packages <= listed, sorted(packages - listed)
