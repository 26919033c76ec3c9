"""Execute the example notebooks in ``notebooks/`` top to bottom with their small settings.

Each notebook reads one switch, ``BAYES_DIML_NOTEBOOK_SMALL`` (set to ``1`` here), that shrinks
data and chains so the five run in about two minutes. They are marked slow (the fast suite's
budget); ``.ci/run`` runs them right after the fast tests, and the documentation build uses their
executed copies. The kernel is the ``python3`` kernel of the
interpreter running pytest, so it imports the installed ``bayes_diml`` (the kernel's working
directory is ``notebooks/``, which holds no package source). ``pytest --nbmake notebooks/``
runs them too (with the environment variable set for small settings).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the ``test`` extra installs both; without it the notebooks are skipped, like the other extras' tests
nbformat = pytest.importorskip("nbformat")
NotebookClient = pytest.importorskip("nbclient").NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_unknown_temperature.ipynb",
    "03_paper_experiments.ipynb",
    "04_design.ipynb",
    "05_ab_test.ipynb",
]


@pytest.mark.slow  # fast-suite budget; .ci/run runs them before the docs build
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, monkeypatch):
    path = NOTEBOOK_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing (regenerate with python notebooks/make_notebooks.py)")
    monkeypatch.setenv("BAYES_DIML_NOTEBOOK_SMALL", "1")
    # headless, and the figures are kept as PNG outputs (docs/conf.py shows executed copies)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    if os.environ.get("BAYES_DIML_NOTEBOOK_OUT"):  # keep the executed copy for inspection
        nbformat.write(nb, Path(os.environ["BAYES_DIML_NOTEBOOK_OUT"]) / name)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors
