"""Grade submitted notebooks: ``python -m llmbook.grade SUBMISSIONS_DIR``.

Each notebook under ``SUBMISSIONS_DIR`` (``alice.ipynb``, or ``alice/hw1.ipynb``) is
executed from top to bottom in a fresh kernel, in a process of its own with a memory
limit and a time limit per cell. Each exercise's check cell (``check("2.1.1", ...)``)
and the answer cell just above it give one of five results:

===============  ==========================================================
correct          the check printed ``✓ Exercise ...: correct.``
not yet          the check ran and printed a hint (``✗ ... not yet.``)
crashed          the answer or the check raised (or the kernel died: out of memory?)
not attempted    the answer is still the student version's placeholder
timed out        a cell ran past the time limit (an infinite loop?) and was stopped
===============  ==========================================================

A cell past its limit is interrupted and the notebook goes on; a kernel that ignores the
interrupt, or dies (a student's code that exhausts the memory limit), stops that
notebook, and its remaining exercises get the same result. The table (student ×
exercise, with a notes column saying what was stopped and why) is written as
``grades.csv`` and ``grades.md`` into ``--out`` (default: the submissions folder) and
printed. Needs ``nbclient`` and ``ipykernel`` (``pip install nbclient ipykernel``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHECK_RE = re.compile(r"""check\(\s*["'](?P<id>\d+(?:\.\d+)+)["']""")
RESULTS = ("correct", "not yet", "crashed", "not attempted", "timed out")
MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "out of memory", "std::bad_alloc")


@dataclass
class CellRun:
    """What happened to one code cell: ``status`` is ok, error, timeout or not run."""

    status: str
    text: str = ""
    error: str = ""


@dataclass
class NotebookRun:
    """The run of one submission: its cells by index, and why it stopped early, if it did."""

    cells: dict[int, CellRun] = field(default_factory=dict)
    stopped: str = ""          # "", "timeout" (kernel did not recover) or "died"
    seconds: float = 0.0


# --------------------------------------------------------------------------- exercises
def exercises(nb) -> list[tuple[str, int | None, int]]:
    """``(exercise id, answer cell index or None, check cell index)`` in notebook order.

    The answer cell is the code cell just above the check cell.
    """
    found, last_code = [], None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        match = CHECK_RE.search(cell.source)
        if match and match.group("id") not in {f[0] for f in found}:
            found.append((match.group("id"), last_code, i))
        last_code = i
    return found


def result_of(exercise_id: str, answer: CellRun | None, check: CellRun | None,
              stopped: str) -> str:
    """One of :data:`RESULTS` for an exercise, from its answer and check cells' runs."""
    cells = [c for c in (answer, check) if c is not None]
    if any(c.status == "timeout" for c in cells):
        return "timed out"
    if check is None or check.status == "not run":
        return "timed out" if stopped == "timeout" else "crashed"
    if answer is not None and answer.status == "error":
        return "not attempted" if answer.error.startswith("NotImplementedError") else "crashed"
    text = check.text
    if f"✓ Exercise {exercise_id}: correct" in text:
        return "correct"
    if f"Exercise {exercise_id}: not attempted yet" in text:
        return "not attempted"
    if f"✗ Exercise {exercise_id}: your code raised" in text or check.status == "error":
        return "crashed"
    if f"✗ Exercise {exercise_id}: not yet" in text:
        return "not yet"
    return "crashed"


def notes(run: NotebookRun, cell_timeout: float, memory_gb: float) -> str:
    """A short account of what was stopped in ``run`` and why."""
    said = []
    for i, cell in sorted(run.cells.items()):
        if i < 0:                      # the whole notebook's run, not one cell
            continue
        if cell.status == "timeout":
            said.append(f"cell {i} stopped after {cell_timeout:g} s (an infinite loop?)")
        elif cell.status == "error" and any(m in cell.error for m in MEMORY_ERRORS):
            said.append(f"cell {i} ran out of memory (limit {memory_gb:g} GiB)")
        elif cell.status == "error" and run.stopped != "died":
            said.append(f"cell {i} raised {cell.error.splitlines()[0][:80]}")
    if run.stopped == "died":
        said.append(f"the kernel died (out of memory? limit {memory_gb:g} GiB); "
                    "later cells not run")
    elif run.stopped == "timeout":
        said.append("the notebook ran past its time limit (the kernel ignored the "
                    "interrupt) and was stopped")
    return "; ".join(dict.fromkeys(said))


# --------------------------------------------------------------------------- execution
def run_notebook(path: Path, cell_timeout: float) -> NotebookRun:
    """Execute ``path`` cell by cell in a fresh kernel (run this in its own process)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(path, as_version=4)
    run = NotebookRun()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmbook-grade-") as work:
        from jupyter_client.manager import AsyncKernelManager

        # IPC sockets (files, by absolute path) rather than TCP: no port race
        km = AsyncKernelManager(kernel_name="python3", transport="ipc",
                           ip=str(Path(work) / "kernel"))
        # past the time limit nbclient interrupts the cell (KeyboardInterrupt) and goes on
        client = NotebookClient(nb, km=km, timeout=cell_timeout, kernel_name="python3",
                                allow_errors=True, iopub_timeout=60, interrupt_on_timeout=True,
                                resources={"metadata": {"path": work}})
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if run.stopped:
                    run.cells[i] = CellRun("not run")
                    continue
                began = time.perf_counter()
                try:
                    client.execute_cell(cell, i)
                except DeadKernelError:
                    run.cells[i] = CellRun("error", error="the kernel died")
                    run.stopped = "died"
                    continue
                run.cells[i] = _cell_run(cell)
                if time.perf_counter() - began >= cell_timeout:   # interrupted by nbclient
                    run.cells[i].status = "timeout"
    run.seconds = time.perf_counter() - start
    return run


def _cell_run(cell) -> CellRun:
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    errors = [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]
    return CellRun("error" if errors else "ok", text, errors[0] if errors else "")


def _limit_memory(memory_gb: float) -> None:
    """Address-space limit for this process and the kernel it starts (inherited)."""
    import resource

    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def grade_one(path: Path, cell_timeout: float, memory_gb: float,
              notebook_timeout: float) -> NotebookRun:
    """Run :func:`run_notebook` in a child process under the limits; never hangs."""
    cmd = [sys.executable, "-m", "llmbook.grade", "--one", str(path),
           "--cell-timeout", str(cell_timeout), "--memory-gb", str(memory_gb)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=notebook_timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()                      # the child shuts its kernel down
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return NotebookRun(cells={-1: CellRun("timeout")}, stopped="timeout",
                           seconds=notebook_timeout)
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        tail = "\n".join(err.strip().splitlines()[-5:])
        return NotebookRun(stopped="died", cells={-1: CellRun("error", error=tail)})
    return NotebookRun(cells={int(k): CellRun(**v) for k, v in data["cells"].items()},
                       stopped=data["stopped"], seconds=data["seconds"])


# --------------------------------------------------------------------------- the table
def student_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


def grade(root: Path, cell_timeout: float = 120, memory_gb: float = 4,
          notebook_timeout: float = 1800) -> tuple[list[str], list[dict[str, str]]]:
    """Grade every notebook under ``root``; return the table's columns and rows."""
    import nbformat

    if not root.is_dir():
        raise NotADirectoryError(f"SUBMISSIONS_DIR must be a folder of notebooks, got {root}")
    paths = sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise FileNotFoundError(f"no .ipynb files in {root}")
    ids: list[str] = []
    rows = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        found = exercises(nb)
        run = grade_one(path, cell_timeout, memory_gb, notebook_timeout)
        if run.stopped == "timeout" or any(c.status == "timeout" for c in run.cells.values()):
            # Rarely a kernel loses a reply and sits idle until the cell limit: run the
            # notebook once more in a fresh process. A real endless loop times out again.
            run = grade_one(path, cell_timeout, memory_gb, notebook_timeout)
        row = {"student": student_of(path, root), "notebook": path.name}
        for ex_id, answer, check in found:
            if ex_id not in ids:
                ids.append(ex_id)
            row[ex_id] = result_of(ex_id, run.cells.get(answer) if answer is not None
                                   else None, run.cells.get(check), run.stopped)
        row["notes"] = notes(run, cell_timeout, memory_gb)
        rows.append(row)
        print(f"graded {path.relative_to(root)} in {run.seconds:.0f} s", file=sys.stderr)
    ids.sort(key=lambda s: tuple(int(x) for x in s.split(".")))
    return ["student", "notebook", *ids, "notes"], rows


def write_tables(columns: list[str], rows: list[dict[str, str]], out: Path) -> str:
    """Write ``grades.csv`` and ``grades.md`` into ``out``; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv.tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(out / "grades.csv.tmp", out / "grades.csv")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row.get(c, "") or "" for c in columns) + " |" for row in rows]
    markdown = "\n".join(lines) + "\n"
    (out / "grades.md.tmp").write_text(markdown, encoding="utf-8")
    os.replace(out / "grades.md.tmp", out / "grades.md")
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmbook.grade",
                                     description="Grade submitted notebooks.")
    parser.add_argument("submissions", nargs="?", type=Path, help="folder of notebooks")
    parser.add_argument("--out", type=Path, help="where to write grades.csv and grades.md")
    parser.add_argument("--cell-timeout", type=float, default=120,
                        help="seconds a cell may run (default 120)")
    parser.add_argument("--memory-gb", type=float, default=4,
                        help="memory limit of each notebook's kernel, GiB (default 4)")
    parser.add_argument("--notebook-timeout", type=float, default=1800,
                        help="seconds a whole notebook may run (default 1800)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("cell_timeout", "memory_gb", "notebook_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    os.environ.setdefault("LLMBOOK_SCALE", "ci")
    if args.one:
        _limit_memory(args.memory_gb)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))   # shut the kernel down
        run = run_notebook(args.one, args.cell_timeout)
        print(json.dumps({"cells": {i: vars(c) for i, c in run.cells.items()},
                          "stopped": run.stopped, "seconds": run.seconds}))
        return 0
    if args.submissions is None:
        parser.error("SUBMISSIONS_DIR is required")
    columns, rows = grade(args.submissions, args.cell_timeout, args.memory_gb,
                          args.notebook_timeout)
    print(write_tables(columns, rows, args.out or args.submissions), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
