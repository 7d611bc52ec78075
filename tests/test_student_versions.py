"""The student versions of every notebook, executed by `make test` through the grader
(python -m llmbook.grade), whose table is read from $LLMBOOK_STUDENT_GRADES. Unset: these
tests are skipped. Every check must say "not attempted yet" and every notebook must run
to its end: no cell raised, none timed out."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import nbformat
import pytest
from conftest import chapter_notebooks
from llmbook import grade

GRADES = os.environ.get("LLMBOOK_STUDENT_GRADES")
pytestmark = pytest.mark.skipif(not GRADES, reason="LLMBOOK_STUDENT_GRADES is not set: "
                                "make test grades the student versions and sets it")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    with open(Path(GRADES), encoding="utf-8") as f:
        return {r["notebook"]: r for r in csv.DictReader(f)}


# Student versions that do not yet run to their end: an exercise's stub is used by a
# later cell (3.4, 3.9), a check crashes on the stub (3.5), or the grader's table misses
# an exercise id (4.2, 4.3). Strict: a notebook that starts passing must leave this list.
NOT_YET = {
    "04_pretraining.ipynb": "cell after exercise 3.4.2 uses the unsolved stub",
    "05_scaling.ipynb": "check 3.5.3 crashes on the unsolved stub",
    "09_training_faster.ipynb": "cell after exercise 3.9.1 uses the unsolved stub",
    "02_classification.ipynb": "exercise 4.2.2 is missing from the grader's table",
    "03_named_entities.ipynb": "exercise 4.3.2 is missing from the grader's table",
}


def _params():
    return [pytest.param(p, marks=pytest.mark.xfail(reason=NOT_YET[p.name], strict=True))
            if p.name in NOT_YET else p for p in chapter_notebooks()]


def test_every_notebook_was_graded(rows):
    assert sorted(rows) == sorted(p.name for p in chapter_notebooks())


@pytest.mark.parametrize("path", _params(), ids=lambda p: p.name)
def test_every_check_says_not_attempted_and_the_notebook_ran_to_its_end(rows, path):
    row = rows[path.name]
    ids = [ex_id for ex_id, _, _ in grade.exercises(nbformat.read(path, as_version=4))]
    assert ids, f"{path.name} has no exercise"
    results = {ex_id: row[ex_id] for ex_id in ids}
    assert set(results.values()) == {"not attempted"}, results
    assert row["notes"] == "", row["notes"]
