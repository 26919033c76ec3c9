"""The published DIML numbers in the code equal the ones in ``docs/paper-reference.md``.

``docs/paper-reference.md`` is the repository's one record of the reference's settings and
published numbers (An & Du (2026), arXiv:2601.17678, and the authors' script). The code keeps
copies where it needs them: ``bayes_diml.studies.experiments.PUBLISHED`` (diff_mse, cfkl_params)
and ``PUBLISHED`` in ``benchmarks/epoch.py`` (seconds per epoch). These tests read the document's
table and fail when a copy differs from it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bayes_diml.studies.experiments import PUBLISHED

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "paper-reference.md"
METHODS = {"DIML": "diml", "DIML-Wrong": "diml_wrong", "TabularMLE": "tabular_mle", "StructMLE": "struct_mle"}


def published_table(text: str) -> list[dict[str, str]]:
    """Rows of the "Published numbers" table of ``text`` as dicts keyed by the header's columns."""
    section = text.split("## Published numbers", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def as_published(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], tuple[float, float]]:
    """The table's rows in the shape of ``experiments.PUBLISHED``."""
    return {
        (r["experiment"].lower(), r["setting"], METHODS[r["method"]]): (
            float(r["diff_mse"]),
            float(r["cfkl_params"]),
        )
        for r in rows
    }


def epoch_key(row: dict[str, str]) -> str:
    """``benchmarks/epoch.py``'s name of a row: ``e1``, ``e2``, ``e7 40x10``."""
    return f"e7 {row['setting']}" if row["experiment"] == "E7" else row["experiment"].lower()


def epoch_published() -> dict[str, float]:
    """The literal ``PUBLISHED = {...}`` of ``benchmarks/epoch.py``, read without importing it."""
    tree = ast.parse((ROOT / "benchmarks" / "epoch.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PUBLISHED" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("benchmarks/epoch.py defines no PUBLISHED literal")


def test_table_parser_reads_a_known_row():
    rows = published_table(DOC.read_text())
    e2_struct = [r for r in rows if r["experiment"] == "E2" and r["method"] == "StructMLE"]
    assert e2_struct == [
        {
            "experiment": "E2",
            "setting": "4x5",
            "method": "StructMLE",
            "diff_mse": "3.35e-3",
            "cfkl_params": "0.137",
            "s / epoch": "1.25",
        }
    ]


def test_experiments_published_equals_the_document():
    assert as_published(published_table(DOC.read_text())) == PUBLISHED


def test_epoch_seconds_equal_the_document():
    rows = published_table(DOC.read_text())
    doc = {epoch_key(r): float(r["s / epoch"]) for r in rows if r["method"] == "DIML" and r["s / epoch"]}
    assert epoch_published() == doc


def test_a_changed_number_is_caught():
    """The comparison is not vacuous: one digit changed in the document breaks the equality."""
    text = DOC.read_text().replace("| 9.07e-2 |", "| 9.08e-2 |", 1)
    assert text != DOC.read_text()
    assert as_published(published_table(text)) != PUBLISHED


def test_no_committed_text_points_outside_the_repository():
    """Docs, tests and code cite ``docs/paper-reference.md``, not a file outside the repository."""
    # an absolute path of a machine, or the reference notes kept outside the repository
    pattern = re.compile(r"(?<![\w.~])/(work|tmp|root|home)/|diml[-]reference")
    offenders = []
    for folder in ("bayes_diml", "models", "inference", "tests", "benchmarks", "docs", "notebooks"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".md", ".toml", ".cfg", ".ipynb", ".json", ".csv"} and path.is_file():
                if pattern.search(path.read_text(errors="replace")):
                    offenders.append(str(path.relative_to(ROOT)))
    for name in ("README.md", "pyproject.toml"):
        if pattern.search((ROOT / name).read_text()):
            offenders.append(name)
    assert offenders == [], f"files naming paths outside the repository: {offenders}"


@pytest.mark.parametrize("name", ["results.md", "performance.md", "identification.md"])
def test_pages_that_use_the_reference_link_to_it(name):
    assert "paper-reference.md" in (ROOT / "docs" / name).read_text()
