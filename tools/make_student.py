"""Write student versions of the notebooks: solutions removed, checks kept.

In a cell tagged ``solution`` every block between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` is replaced by a stub:

- inside a function (an indented block): ``raise NotImplementedError("Exercise 1.1.2: ...")``;
- at the top level of the cell: ``name = TODO`` for each name the solution defines
  (``TODO`` from :mod:`llmbook.exercises` raises ``NotImplementedError`` when used), so
  the notebook still runs from top to bottom and the check says "not attempted yet".

Lines of the block that start with ``# Hint:`` are kept. Hidden cells (tagged
``remove-cell``) that use a name a solution cell defines, or that call ``check`` (tests
of the checks themselves), are dropped: the student's check cell does that job. In the
check cell after a solution, statements other than the ``check(...)`` call that use the
solution's names are dropped too, so that the cell reports "not attempted yet" instead
of failing. Outputs are stripped.

Usage: python tools/make_student.py SRC DST    (SRC, DST: notebooks or folders)
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION\s*$")
END_RE = re.compile(r"^[ \t]*# END SOLUTION\s*$")
HINT_RE = re.compile(r"^[ \t]*# Hint:", re.IGNORECASE)
CHECK_RE = re.compile(r"""check\(\s*["'](?P<id>[0-9][0-9.]*[0-9])["']""")
HIDDEN_TAG = "remove-cell"


class StudentError(ValueError):
    """A notebook's exercise markup cannot be turned into a student version."""


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def defined_names(source: str) -> set[str]:
    """Names bound at the top level of ``source`` (assignments, defs, classes, imports)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
            for target in filter(None, targets):
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def used_names(source: str) -> set[str]:
    """Every name that ``source`` reads (IPython magics are ignored)."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def is_check_call(node: ast.stmt) -> bool:
    """True for a statement ``check(...)`` or ``....check(...)`` (possibly assigned), and
    for ``if check(...):``, whose body runs only once the answer is correct."""
    call = node.test if isinstance(node, ast.If) else getattr(node, "value", None)
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "check"


def keep_checks(source: str, solution_names: set[str]) -> str:
    """The check cell without statements (other than checks) that use solution names."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    kept = [node for node in tree.body
            if is_check_call(node) or not used_names(ast.unparse(node)) & solution_names]
    text = "\n".join(ast.get_source_segment(source, node) or "" for node in kept)
    if kept and isinstance(kept[-1], ast.Expr) and source.rstrip().endswith(";"):
        text += ";"  # the display of the last value stays suppressed
    return text


def stub(block: list[str], indent: str, exercise_id: str) -> list[str]:
    """The student's replacement for one solution block (lines without newlines)."""
    hints = [line for line in block if HINT_RE.match(line)]
    message = (f"Exercise {exercise_id}: not attempted yet. Replace this line with your "
               f"code (see the task above), then run the check below.")
    if indent:
        return hints + [f"{indent}raise NotImplementedError({message!r})"]
    names = sorted(defined_names("\n".join(block)))
    if not names:
        return hints + [f"raise NotImplementedError({message!r})"]
    lines = [f"# Exercise {exercise_id}: your code here; replace each TODO."]
    lines += hints + ["from llmbook.exercises import TODO"]
    return lines + [f"{name} = TODO" for name in names]


def strip_solutions(source: str, exercise_id: str) -> str:
    """``source`` with every BEGIN/END SOLUTION block replaced by :func:`stub`."""
    out: list[str] = []
    block: list[str] | None = None
    indent = ""
    for line in source.splitlines():
        begin = BEGIN_RE.match(line)
        if begin:
            if block is not None:
                raise StudentError(f"exercise {exercise_id}: nested # BEGIN SOLUTION")
            block, indent = [], begin["indent"]
        elif END_RE.match(line):
            if block is None:
                raise StudentError(f"exercise {exercise_id}: # END SOLUTION without BEGIN")
            out += stub(block, indent, exercise_id)
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    if block is not None:
        raise StudentError(f"exercise {exercise_id}: # BEGIN SOLUTION without END")
    return "\n".join(out)


def exercise_id_after(cells: list[nbformat.NotebookNode], index: int) -> str:
    """The id in the first ``check("...")`` call after cell ``index``."""
    for cell in cells[index + 1:]:
        if cell.cell_type == "code" and (m := CHECK_RE.search(cell.source)):
            return m["id"]
    raise StudentError(f"solution cell {index} has no check(\"<id>\", ...) cell after it")


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions stubbed, dependent hidden cells dropped, no outputs."""
    nb = nbformat.from_dict(nb)
    solution_names: set[str] = set()
    cells = []
    after_solution = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and after_solution and CHECK_RE.search(cell.source):
            cell.source = keep_checks(cell.source, solution_names)
            after_solution = False
        if cell.cell_type == "code" and "solution" in tags(cell):
            after_solution = True
            if not any(BEGIN_RE.match(line) for line in cell.source.splitlines()):
                raise StudentError(f"cell {i} is tagged solution but has no # BEGIN SOLUTION")
            solution_names |= defined_names(cell.source)
            cell.source = strip_solutions(cell.source, exercise_id_after(nb.cells, i))
            cell.metadata["tags"] = [t for t in tags(cell) if t not in ("solution", "hide-input")]
        elif cell.cell_type == "code" and HIDDEN_TAG in tags(cell) and (
                used_names(cell.source) & (solution_names | {"check"})
                or CHECK_RE.search(cell.source)):
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            for key in ("execution", "collapsed", "scrolled"):
                cell.metadata.pop(key, None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    return nb


def convert(src: Path, dst: Path) -> list[Path]:
    """Write the student version of notebook ``src`` (or of every notebook under it)."""
    pairs = [(src, dst)] if src.is_file() else [
        (p, dst / p.relative_to(src)) for p in sorted(src.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in p.parts]
    for source, target in pairs:
        nb = student_notebook(nbformat.read(source, as_version=4))
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    return [t for _, t in pairs]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    written = convert(Path(argv[0]), Path(argv[1]))
    print(f"{len(written)} student notebooks written to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
