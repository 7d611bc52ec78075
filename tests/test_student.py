"""tools/make_student.py: student notebooks keep the checks and lose the solutions."""
from __future__ import annotations

import contextlib
import io
import re

import nbformat
import pytest
from conftest import ROOT, chapter_notebooks, load_tool

from llmbook.exercises import exercise, expect

student = load_tool("make_student")
v4 = nbformat.v4

SOLVED_FUNCTION = '''def double(x: int) -> int:
    """Exercise 0.1.1: return twice x."""
    # BEGIN SOLUTION
    # Hint: one multiplication is enough.
    secret_result = x * 2
    return secret_result
    # END SOLUTION'''
SOLVED_TOP_LEVEL = '''# BEGIN SOLUTION
words = ["secret", "answer"]
n_words = len(words)
# END SOLUTION
print("counted")'''


@exercise("0.1.1")
def _check_double(double):
    expect(double(4) == 8, "double(4) should be 8")


@exercise("0.1.2")
def _check_count(n_words):
    expect(n_words == 2, "there are two words")


def tagged(source: str, *tags: str):
    cell = v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def synthetic_notebook():
    cells = [
        v4.new_code_cell("import llmbook"),
        v4.new_markdown_cell("Exercise 0.1.1 — write `double`."),
        tagged(SOLVED_FUNCTION, "solution", "hide-input"),
        v4.new_code_cell('llmbook.exercises.check("0.1.1", double)\nprint("twice 5 is", double(5))'),
        tagged("assert double(21) == 42", "remove-cell"),
        tagged('assert not llmbook.exercises.check("0.1.1", lambda x: x)', "remove-cell"),
        tagged(SOLVED_TOP_LEVEL, "solution", "hide-input"),
        v4.new_code_cell('llmbook.exercises.check("0.1.2", n_words)'),
        tagged("assert 1 + 1 == 2", "remove-cell"),
    ]
    cells[0].outputs = [v4.new_output("stream", text="old output")]
    cells[0].execution_count = 3
    return v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def sources(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


def test_solutions_are_replaced_by_stubs():
    nb = student.student_notebook(synthetic_notebook())
    text = sources(nb)
    assert "SOLUTION" not in text and "secret" not in text
    assert "# Hint: one multiplication is enough." in text
    assert "raise NotImplementedError('Exercise 0.1.1: not attempted yet." in text
    assert "n_words = TODO" in text and "words = TODO" in text
    assert 'print("counted")' in text, "code outside the markers is kept"
    for cell in nb.cells:
        assert "solution" not in cell.metadata.get("tags", [])
        assert "hide-input" not in cell.metadata.get("tags", [])


def test_hidden_asserts_on_solutions_are_dropped_others_kept():
    text = sources(student.student_notebook(synthetic_notebook()))
    assert "double(21)" not in text
    assert "lambda x: x)" not in text, "hidden tests of the check itself are dropped"
    assert "assert 1 + 1 == 2" in text


def test_check_cell_keeps_only_what_runs_without_the_solution():
    nb = student.student_notebook(synthetic_notebook())
    check_cell = next(c for c in nb.cells if 'check("0.1.1"' in c.source)
    assert check_cell.source == 'llmbook.exercises.check("0.1.1", double)'


def test_check_cell_keeps_an_if_check_block_and_the_semicolon():
    source = ('if check("0.1.1", double):\n    print(double(5))\n'
              'print("after", double(1))\ncheck("0.1.1", double);')
    kept = student.keep_checks(source, {"double"})
    assert kept == 'if check("0.1.1", double):\n    print(double(5))\ncheck("0.1.1", double);'


def test_outputs_are_stripped_and_notebook_is_valid():
    nb = student.student_notebook(synthetic_notebook())
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None
               for c in nb.cells if c.cell_type == "code")


def test_source_notebook_is_not_modified():
    nb = synthetic_notebook()
    student.student_notebook(nb)
    assert "secret_result" in sources(nb)


def run_cells(nb) -> str:
    """Execute the code cells in one namespace, as a kernel would; return what they print."""
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, "<cell>", "exec"), namespace)
    return out.getvalue()


def test_checks_on_stubs_report_not_attempted_yet():
    printed = run_cells(student.student_notebook(synthetic_notebook()))
    assert printed.count("not attempted yet") == 2, printed
    assert "✓" not in printed and "✗" not in printed


def test_checks_on_the_source_pass():
    printed = run_cells(synthetic_notebook())
    assert printed.count("correct.") == 2, printed


@pytest.mark.parametrize("source, problem", [
    ("# BEGIN SOLUTION\nx = 1", "without END"),
    ("x = 1\n# END SOLUTION", "without BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "nested"),
])
def test_broken_markers_are_reported(source, problem):
    with pytest.raises(student.StudentError, match=problem):
        student.strip_solutions(source, "0.1.9")


def test_solution_without_a_check_cell_is_reported():
    nb = v4.new_notebook(cells=[tagged("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "solution")])
    with pytest.raises(student.StudentError, match="no check"):
        student.student_notebook(nb)


def test_cli_mirrors_a_folder(tmp_path):
    src = tmp_path / "src" / "01_x"
    src.mkdir(parents=True)
    nbformat.write(synthetic_notebook(), src / "01_demo.ipynb")
    assert student.main([str(tmp_path / "src"), str(tmp_path / "out")]) == 0
    written = nbformat.read(tmp_path / "out" / "01_x" / "01_demo.ipynb", as_version=4)
    assert "secret" not in sources(written)


NOTEBOOKS = chapter_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_real_notebooks_lose_every_solution(path):
    original = nbformat.read(path, as_version=4)
    nb = student.student_notebook(original)
    nbformat.validate(nb)
    text = sources(nb)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    blocks = re.findall(r"# BEGIN SOLUTION\n(.*?)\n[ \t]*# END SOLUTION", sources(original), re.S)
    elsewhere = "\n".join(c.source for c in original.cells
                          if "solution" not in c.get("metadata", {}).get("tags", []))
    for block in blocks:
        body = "\n".join(line for line in block.splitlines()
                         if line.strip() and not student.HINT_RE.match(line))
        # the prose may show the same code before the exercise; only that may remain
        assert text.count(body) == elsewhere.count(body), f"solution text survived:\n{body}"
    stubs = [c for c in nb.cells if "TODO" in c.source or "NotImplementedError" in c.source]
    assert len(stubs) >= len([c for c in original.cells
                              if "solution" in c.get("metadata", {}).get("tags", [])])
