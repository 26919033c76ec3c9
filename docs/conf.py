"""Sphinx configuration of the bayes-diml documentation site.

Build (from the repository root; README, "Documentation")::

    pip install ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

The pages are the Markdown files of ``docs/`` (myst-parser), the example notebooks of
``notebooks/`` (myst-nb, executed at build time with their small settings,
``BAYES_DIML_NOTEBOOK_SMALL=1``; set it to ``0`` before building for the full-size runs) and an
API reference generated from the docstrings (autosummary + numpydoc). Nitpicky mode is on, so with
``-W`` a cross-reference that does not resolve fails the build.
"""

from __future__ import annotations

import filecmp
import importlib
import json
import os
import re
import shutil
import types
from pathlib import Path

import bayes_diml

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent

# ----------------------------------------------------------------------------- project
project = "bayes-diml"
author = "bayes-diml contributors"
copyright = "bayes-diml contributors"
release = bayes_diml.__version__
version = release

# ----------------------------------------------------------------------------- extensions
extensions = [
    "myst_nb",  # Markdown pages (myst-parser) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_copybutton",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# ----------------------------------------------------------------------------- notebooks
# The notebooks live in notebooks/ (written by notebooks/make_notebooks.py); Sphinx reads pages
# only below docs/, so each build copies them to docs/examples/ (git-ignored). When
# BAYES_DIML_NOTEBOOK_OUT names a folder holding executed copies of the same notebooks (the test
# run writes them there: tests/test_notebooks.py; .ci/run builds the docs right after it), a
# copy whose cells match the source's is used as it is instead of executing the notebook again.
EXAMPLES = DOCS / "examples"
EXECUTED = os.environ.get("BAYES_DIML_NOTEBOOK_OUT")


def _cells(path: Path) -> list[tuple[str, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def _executed(notebook: Path) -> Path | None:
    """Return the executed copy of ``notebook`` in ``EXECUTED`` if it holds the same cells."""
    if not EXECUTED:
        return None
    copy = Path(EXECUTED) / notebook.name
    if not copy.is_file() or _cells(copy) != _cells(notebook):
        return None
    return copy


nb_execution_excludepatterns: list[str] = []
for _notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
    _source = _executed(_notebook)
    if _source is None:
        _source = _notebook
    else:
        nb_execution_excludepatterns.append(f"examples/{_notebook.name}")
    _page = EXAMPLES / _notebook.name
    if not _page.exists() or not filecmp.cmp(_source, _page, shallow=False):
        shutil.copyfile(_source, _page)  # only when changed: Sphinx re-reads only changed pages

# Small settings unless the caller chose: the kernels inherit this process's environment. Figures
# go into the outputs as PNGs (the inline backend; a non-interactive one such as Agg shows none).
os.environ.setdefault("BAYES_DIML_NOTEBOOK_SMALL", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

# Every notebook that Sphinx (re)reads is executed, without jupyter-cache (an incremental build
# re-reads only the notebooks that changed), except the executed copies taken above. A failing
# cell fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 300 if os.environ["BAYES_DIML_NOTEBOOK_SMALL"] == "1" else -1  # s per cell; -1: none
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# ----------------------------------------------------------------------------- Markdown
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links resolve to heading slugs
# Heading levels that skip one (H2 to H4) are a style matter, not a broken page.
suppress_warnings = ["myst.header"]

# ----------------------------------------------------------------------------- API reference
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc docstrings carry the types (with shapes)
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_xref_param_type = False
# Strictness: docutils' errors in a docstring (bad RST, a section numpydoc cannot parse) are
# warnings, and -W makes them fail the build. numpydoc's own style validation stays off: ruff's
# pydocstyle rules (numpy convention, `ruff check`) already require and shape the docstrings, and
# the site documents the shapes in prose types (`float[M, T, n]`) that it would flag.
numpydoc_validation_checks: set[str] = set()
# Every cross-reference must resolve (sphinx-build -n): with -W a broken one fails the build.
nitpicky = True
# Third-party targets that cannot resolve because the project has no intersphinx inventory
# configured here (the site builds offline); keep this list to such targets only.
nitpick_ignore = [
    ("py:class", "numpyro.distributions.distribution.Distribution"),  # base of models.LearnerPolicy
    ("py:class", "jax.Array"),  # in the value of the type alias bayes_diml.edits.Edit
    ("py:class", "collections.abc.Callable"),  # likewise
]

# ----------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"bayes-diml {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []


# ----------------------------------------------------------------------------- links
# Pages may link to files of the repository outside docs/ (`[text](../benchmarks/...)`). Sphinx
# offers an existing file as a download; the README becomes a link to the getting started page;
# any other such link (a folder, a Markdown file or notebook, a file that is gone) is shown as its
# text and the repository path in a code span instead of failing the build.
_OUTSIDE_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\((\.\./[^)\s]+)\)")


def _outside_link(match: re.Match, page_dir: Path) -> str:
    text, target = match.groups()
    path = (page_dir / target.split("#")[0]).resolve()
    if path == REPO / "README.md":
        return f"[{text}]({os.path.relpath(DOCS / 'getting_started.md', page_dir)})"
    if DOCS in path.parents or (path.is_file() and path.suffix not in (".md", ".ipynb")):
        return match.group(0)
    shown = path.relative_to(REPO).as_posix() if REPO in path.parents else target
    return f"{text} (`{shown}`)"


def _outside_links(app, docname: str, source: list[str]) -> None:
    """Rewrite a Markdown page's links that leave docs/ (see above)."""
    path = Path(app.env.doc2path(docname))
    if path.suffix == ".md":
        source[0] = _OUTSIDE_LINK.sub(lambda m: _outside_link(m, path.parent), source[0])


def _readme_links(app, relative_path, parent_docname, content) -> None:
    """Point the README's link to the notebooks folder at the examples page."""
    if Path(relative_path).name == "README.md":
        content[0] = re.sub(r"\]\(notebooks/?\)", "](docs/examples/index.md)", content[0])


def _public_bases(app, name, obj, options, bases) -> None:
    """Show a base class that the reference does not document as text, not as a broken link.

    A base defined in bayes_diml is documented when a package above its module exports it
    (``__all__``); an internal mixin (``mechanisms.base.GaugeFreeLeaves``, a private ``_Name``)
    is named in a code span instead.
    """
    for i, base in enumerate(bases):
        module = getattr(base, "__module__", "") or ""
        if not isinstance(base, type) or not module.startswith("bayes_diml"):
            continue
        parts = module.split(".")
        packages = (importlib.import_module(".".join(parts[:k])) for k in range(len(parts), 0, -1))
        if not any(
            base.__name__ in getattr(p, "__all__", ()) and getattr(p, base.__name__, None) is base
            for p in packages
            if hasattr(p, "__path__")
        ):
            bases[i] = f"``{module}.{base.__qualname__}``"


def _skip_tuple_fields(app, what, name, obj, skip, options):
    """Leave out NamedTuple fields ("Alias for field number 0"): the Attributes section has them."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


# ----------------------------------------------------------------------------- references
# Docstrings refer to objects by the module that defines them
# (:func:`bayes_diml.learners.policy.add_bias`) or by a bare name (:func:`temperature_name`); the
# reference documents each object under its public path (bayes_diml.learners.add_bias). A
# reference that Sphinx cannot resolve is sent to the public entry of the same object, or to the
# one documented name that ends with it.
def _import(path: str):
    """Return the object at a dotted path (attributes before submodules), or None."""
    parts = path.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return None
    for i, attr in enumerate(parts[1:], start=2):
        if hasattr(obj, attr):
            obj = getattr(obj, attr)
            continue
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            return None
    return obj


_PUBLIC: dict[int, tuple[dict[int, str], list[str]]] = {}


def _public_names(env) -> tuple[dict[int, str], list[str]]:
    """Documented objects by ``id`` and all documented names (once per build)."""
    if id(env) in _PUBLIC:
        return _PUBLIC[id(env)]
    names = sorted(env.get_domain("py").objects, key=lambda n: (n.count("."), n))  # public first
    by_id = {}
    for name in names:
        obj = _import(name)
        if callable(obj) or isinstance(obj, types.ModuleType):
            by_id.setdefault(id(obj), name)
    _PUBLIC[id(env)] = by_id, names
    return by_id, names


def _public_reference(app, env, node, contnode):
    """Resolve a Python reference to the public entry of the same object (see above)."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    by_id, names = _public_names(env)
    obj = _import(target)
    name = by_id.get(id(obj)) if callable(obj) or isinstance(obj, types.ModuleType) else None
    if name is None:
        ending = [n for n in names if n.endswith("." + target)]  # shortest first
        name = ending[0] if len({id(_import(n)) for n in ending}) == 1 else None
    if name is None:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, "obj", name, node, contnode)


def setup(app) -> None:
    """Connect the hooks of this configuration."""
    app.connect("include-read", _readme_links)
    app.connect("source-read", _outside_links)
    app.connect("missing-reference", _public_reference)
    app.connect("autodoc-skip-member", _skip_tuple_fields)
    app.connect("autodoc-process-bases", _public_bases)
