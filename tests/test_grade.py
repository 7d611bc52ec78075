"""python -m llmbook.grade on five small submissions: solved, unsolved, broken, looping
forever and exhausting memory; and the classification rules on their own."""
from __future__ import annotations

import csv

import nbformat
import pytest
from llmbook import grade

v4 = nbformat.v4
SETUP = '''from llmbook.exercises import TODO, check, exercise, expect

@exercise("0.9.1")
def _(square):
    expect(square(3) == 9, "square(3) should be 9")

@exercise("0.9.2")
def _(total):
    expect(total == 10, "1 + 2 + 3 + 4 is 10")'''
ANSWERS = {
    "solved": ("def square(x):\n    return x * x", "total = sum(range(5))"),
    "unsolved": ("def square(x):\n    raise NotImplementedError('not attempted yet')",
                 "total = TODO"),
    "broken": ("def square(x):\n    return x + x", "total = 1 / 0"),
    "looping": ("def square(x):\n    while True:\n        pass", "total = sum(range(5))"),
    "greedy": ("def square(x):\n    return x ** 2",
               "blocks = []\nwhile True:\n    blocks.append(bytearray(2**26))"),
}


def submission(answer_1: str, answer_2: str):
    nb = v4.new_notebook(cells=[
        v4.new_code_cell(SETUP),
        v4.new_markdown_cell("Exercise 0.9.1 — write `square`."),
        v4.new_code_cell(answer_1),
        v4.new_code_cell('check("0.9.1", square)'),
        v4.new_markdown_cell("Exercise 0.9.2 — add up 0..4."),
        v4.new_code_cell(answer_2),
        v4.new_code_cell('check("0.9.2", total)'),
        v4.new_code_cell('print("the end")'),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for name, answers in ANSWERS.items():
        nbformat.write(submission(*answers), folder / f"{name}.ipynb")
    columns, rows = grade.grade(folder, cell_timeout=20, memory_gb=3, notebook_timeout=300)
    markdown = grade.write_tables(columns, rows, folder)
    return folder, columns, {r["student"]: r for r in rows}, markdown


def test_every_submission_gets_its_results(graded):
    _, columns, rows, _ = graded
    assert columns == ["student", "notebook", "0.9.1", "0.9.2", "notes"]
    got = {name: (row["0.9.1"], row["0.9.2"]) for name, row in rows.items()}
    assert got == {"solved": ("correct", "correct"),
                   "unsolved": ("not attempted", "not attempted"),
                   "broken": ("not yet", "crashed"),
                   "looping": ("timed out", "correct"),   # interrupted, then went on
                   "greedy": ("correct", "crashed")}


def test_loops_and_memory_exhaustion_are_stopped_and_reported(graded):
    _, _, rows, _ = graded
    assert "cell 3 stopped after 20 s" in rows["looping"]["notes"]
    assert "time limit" not in rows["looping"]["notes"]
    assert "out of memory" in rows["greedy"]["notes"]
    assert "cell 5 raised ZeroDivisionError" in rows["broken"]["notes"]
    assert rows["solved"]["notes"] == "" and rows["unsolved"]["notes"] == ""


def test_tables_are_written_as_csv_and_markdown(graded):
    folder, columns, rows, markdown = graded
    with open(folder / "grades.csv", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["student"] for r in written] == sorted(ANSWERS)
    assert (folder / "grades.md").read_text(encoding="utf-8") == markdown
    assert markdown.splitlines()[0] == "| " + " | ".join(columns) + " |"
    assert "| looping | looping.ipynb | timed out | correct |" in markdown


def test_exercise_cells_are_found_in_order():
    nb = submission(*ANSWERS["solved"])
    assert grade.exercises(nb) == [("0.9.1", 2, 3), ("0.9.2", 5, 6)]


R = grade.CellRun


@pytest.mark.parametrize("answer, check, stopped, expected", [
    (R("ok"), R("ok", "✓ Exercise 1.2.3: correct.\n"), "", "correct"),
    (R("ok"), R("ok", "✗ Exercise 1.2.3: not yet. hint"), "", "not yet"),
    (R("ok"), R("ok", "✗ Exercise 1.2.3: your code raised KeyError"), "", "crashed"),
    (R("ok"), R("ok", "Exercise 1.2.3: not attempted yet — replace"), "", "not attempted"),
    (R("error", error="ZeroDivisionError: division by zero"), R("error"), "", "crashed"),
    (R("error", error="NotImplementedError: todo"), R("error"), "", "not attempted"),
    (R("timeout"), R("ok", "✓ Exercise 1.2.3: correct."), "", "timed out"),
    (R("ok"), R("not run"), "timeout", "timed out"),
    (R("ok"), R("not run"), "died", "crashed"),
    (None, None, "died", "crashed"),
])
def test_results_follow_from_the_cells(answer, check, stopped, expected):
    assert grade.result_of("1.2.3", answer, check, stopped) == expected


def test_bad_arguments_are_named(tmp_path, capsys):
    with pytest.raises(NotADirectoryError, match="SUBMISSIONS_DIR"):
        grade.grade(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no .ipynb"):
        grade.grade(tmp_path)
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--cell-timeout", "0"])
    assert "--cell-timeout must be positive" in capsys.readouterr().err


def test_the_instructors_page_shows_a_table_in_the_graders_format():
    from conftest import ROOT

    page = (ROOT / "book" / "for_instructors.md").read_text(encoding="utf-8")
    assert "| student | notebook | 2.1.1 | 2.1.2 | 2.1.3 | notes |" in page
    for name in ("ada_solved", "ben_unsolved", "cai_broken", "dan_looping"):
        assert f"| {name} | {name}.ipynb |" in page
    assert "GRADER_OUTPUT" not in page
