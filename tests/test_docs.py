"""The API reference of the documentation site (``docs/api.rst``) covers the public API.

The site itself is built by ``.ci/run`` (``sphinx-build -W``); these tests only read
``docs/api.rst``, so that a name added to a package's ``__all__`` cannot silently miss the
reference, and a name removed from the package cannot linger in it.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
#: the packages whose ``__all__`` the reference documents
PACKAGES = [
    "bayes_diml",
    "bayes_diml.mechanisms",
    "bayes_diml.learners",
    "bayes_diml.models",
    "bayes_diml.inference",
    "bayes_diml.environments",
    "bayes_diml.edits",
    "bayes_diml.metrics",
]


def parse_api(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the ``(module, name)`` of every autosummary entry and the automodule targets."""
    entries, automodules = [], []
    module, in_autosummary = None, False
    for line in text.splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module, in_autosummary = m.group(1), False
        elif m := re.match(r"\.\. automodule:: (\S+)", line):
            automodules.append(m.group(1))
            in_autosummary = False
        elif line.startswith(".. autosummary::"):
            if module is None:
                raise ValueError("an autosummary block before any currentmodule directive")
            in_autosummary = True
        elif in_autosummary and line.startswith("   "):
            item = line.strip()
            if item and not item.startswith(":"):
                entries.append((module, item))
        elif in_autosummary and line.strip():
            in_autosummary = False
    return entries, automodules


ENTRIES, AUTOMODULES = parse_api(API.read_text(encoding="utf-8"))


def test_parser_reads_entries_and_stops_at_the_block_end():
    text = (
        ".. currentmodule:: a\n\n.. autosummary::\n   :toctree: generated/\n\n   f\n   G\n\n"
        "Text\n   indented prose\n.. currentmodule:: b\n.. automodule:: b\n   :no-members:\n"
    )
    assert parse_api(text) == ([("a", "f"), ("a", "G")], ["b"])


@pytest.mark.parametrize("module, name", ENTRIES, ids=[f"{m}.{n}" for m, n in ENTRIES])
def test_every_listed_name_exists_and_is_public(module, name):
    mod = importlib.import_module(module)
    assert hasattr(mod, name), f"docs/api.rst lists {module}.{name}, which does not exist"
    assert name in mod.__all__, f"docs/api.rst lists {module}.{name}, which is not in {module}.__all__"


def test_no_name_is_listed_twice():
    seen = [f"{m}.{n}" for m, n in ENTRIES]
    assert sorted(seen) == sorted(set(seen)), "a name is listed twice in docs/api.rst"


@pytest.mark.parametrize("package", PACKAGES)
def test_reference_covers_the_public_api(package):
    """Every name of ``__all__`` is listed: under this package, or (a class or function re-exported
    by another package) as the same object elsewhere. Constants are compared by name only: equal
    small ints or strings may be the same object."""
    mod = importlib.import_module(package)
    documented = {id(v) for m, n in ENTRIES if callable(v := getattr(importlib.import_module(m), n, None))}
    missing = []
    for name in mod.__all__:
        value = getattr(mod, name)
        if isinstance(value, types.ModuleType):
            if value.__name__ not in AUTOMODULES:
                missing.append(f"{name} (module {value.__name__} has no section)")
        elif name == "__version__":
            continue  # a string, shown in the site's title
        elif (package, name) not in ENTRIES and not (callable(value) and id(value) in documented):
            missing.append(name)
    assert not missing, f"docs/api.rst does not list {package}: {missing}"


def test_every_package_has_a_section():
    assert set(PACKAGES) - {"bayes_diml"} <= set(AUTOMODULES)
    assert {m for m, _ in ENTRIES} == set(PACKAGES)
