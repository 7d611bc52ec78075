"""Checks on the executed notebooks the HTML is built from, read from
$LLMBOOK_EXECUTED_DIR (`make test` sets it to its executed copy of chapters/). Unset:
these tests are skipped. What they check is in tools/executed_checks.py."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from conftest import load_tool

checks = load_tool("executed_checks")
finish = load_tool("finish_notebooks")

FOLDER = os.environ.get("LLMBOOK_EXECUTED_DIR")
NOTEBOOKS = sorted(Path(FOLDER).rglob("*.ipynb")) if FOLDER else []
pytestmark = pytest.mark.skipif(not FOLDER, reason="LLMBOOK_EXECUTED_DIR is not set: "
                                "execute the notebooks (make test does) to check them")


def ids(paths):
    return [f"{p.parent.name}/{p.name}" for p in paths]


def test_there_are_executed_notebooks():
    assert NOTEBOOKS, f"no notebooks in LLMBOOK_EXECUTED_DIR={FOLDER}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_duplicated_output_and_no_progress_bars(path):
    found = checks.problems(nbformat.read(path, as_version=4))
    assert not found, f"{path.name}: " + "; ".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_executed_to_the_end_with_a_stamp(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code if c.source.strip()), "a cell did not run"
    stamps = [c for c in nb.cells if finish.STAMP_CLASS in c.source]
    assert len(stamps) == 1, f"{path.name}: expected one build stamp, found {len(stamps)}"
    env = finish.environment(nb)
    assert env and env["scale"] == os.environ.get("LLMBOOK_SCALE", env["scale"])
    assert f"torch {env['torch']}" in stamps[0].source
    assert "hide-input" in code[0].metadata.get("tags", []), "setup cell not folded"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_every_solution_passes_its_check(path):
    failed = checks.failed_solutions(nbformat.read(path, as_version=4))
    assert not failed, f"{path.name}: " + "; ".join(failed)
