"""Checks on an executed notebook's outputs: what a reader of the book must never see.

- a stream output that repeats the end of the stream output just before it (seen when a
  kernel's output channel misbehaves: the last line of a cell printed twice);
- progress-bar debris: tqdm bars as text (carriage returns, ``42%|███`` or ``it/s]``),
  "Loading weights" bars from transformers, or progress-bar widgets;
- a glued value shown again as the cell's result: a cell whose last line is a bare
  ``glue("name", value)`` displays ``value``'s repr under the code (glue returns its value),
  a stray ``'cpu'`` or ``10`` on the page; assign it (``_ = glue(...)``).

``problems(nb)`` returns one line per finding (empty: clean). ``tools/execute_book.py``
re-executes a notebook that has any, and ``tests/test_executed.py`` fails on them.

``failed_solutions(nb)`` names every visible check cell whose output does not say
"✓ Exercise …: correct": in the book, each exercise's solution must pass its own check.

Usage: python tools/executed_checks.py NOTEBOOK_OR_FOLDER ...   (exit 1 on a finding)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from llmbook.book import GLUE_PREFIX  # the mime prefix of a glue output
from llmbook.grade import CHECK_RE  # the grader's pattern for a check("id", ...) call

BAR_RE = re.compile(r"\d+%\|[^|\n]*\||\b\d+(\.\d+)?\s?(it|s)/(s|it)\]|Loading weights|"
                    r"Loading checkpoint shards|Fetching \d+ files")
PROGRESS_MODELS = ("FloatProgressModel", "IntProgressModel")


def duplicated_streams(cell) -> list[str]:
    """Stream outputs whose whole text repeats the end of the previous output's text."""
    found = []
    outputs = cell.get("outputs", [])
    for before, after in zip(outputs, outputs[1:]):
        if before.get("output_type") != "stream" or after.get("output_type") != "stream":
            continue
        if before.get("name") != after.get("name"):
            continue
        text = after.get("text", "")
        if text.strip() and before.get("text", "").endswith(text):
            found.append(text.strip().splitlines()[-1][:80])
    return found


def progress_debris(cell) -> list[str]:
    """Progress bars left in a cell's outputs (as text or as a bar widget's view)."""
    found = []
    for out in cell.get("outputs", []):
        texts = [out.get("text", "")] if out.get("output_type") == "stream" else []
        texts += [v for k, v in out.get("data", {}).items()
                  if k.startswith("text/") and isinstance(v, str)]
        for text in texts:
            body = text.replace("\r\n", "\n")
            if "\r" in body:
                found.append("carriage return (a redrawn progress bar)")
            match = BAR_RE.search(body)
            if match:
                found.append(f"progress bar {match.group(0)!r}")
    return found


def glue_echoes(cell) -> list[str]:
    """Execute results that repeat the value of a glue output of the same cell."""
    key = GLUE_PREFIX + "text/plain"
    glued = {out.get("data", {}).get(key) for out in cell.get("outputs", [])
             if out.get("output_type") == "display_data"} - {None}
    return [out["data"]["text/plain"][:80] for out in cell.get("outputs", [])
            if out.get("output_type") == "execute_result"
            and out.get("data", {}).get("text/plain") in glued]


def widget_debris(nb) -> list[str]:
    state = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return sorted({m.get("model_name") for m in state.values()
                   if m.get("model_name") in PROGRESS_MODELS})


def failed_solutions(nb) -> list[str]:
    """Visible cells calling ``check("id", ...)`` whose output lacks "✓ Exercise id: correct"."""
    found = []
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "code" or "remove-cell" in tags:
            continue
        text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                       if o.get("output_type") == "stream")
        for exercise_id in dict.fromkeys(m["id"] for m in CHECK_RE.finditer(cell.source)):
            if f"✓ Exercise {exercise_id}: correct" not in text:
                last = text.strip().splitlines()[-1][:120] if text.strip() else "no output"
                found.append(f"cell {i}: the solution of exercise {exercise_id} does not "
                             f"pass its check ({last})")
    return found


def problems(nb) -> list[str]:
    """Every finding in notebook ``nb``, one line each, naming the cell."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        found += [f"cell {i}: line printed twice: {t!r}" for t in duplicated_streams(cell)]
        found += [f"cell {i}: {t}" for t in progress_debris(cell)]
        found += [f"cell {i}: glued value shown again as the cell's result: {t} "
                  "(assign the glue call: _ = glue(...))" for t in glue_echoes(cell)]
    found += [f"a progress-bar widget ({m}) in the saved widget state"
              for m in widget_debris(nb)]
    return found


def main(argv: list[str]) -> int:
    paths = [p for arg in argv for p in
             (sorted(Path(arg).rglob("*.ipynb")) if Path(arg).is_dir() else [Path(arg)])]
    bad = 0
    for path in paths:
        for line in problems(nbformat.read(path, as_version=4)):
            print(f"{path}: {line}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
