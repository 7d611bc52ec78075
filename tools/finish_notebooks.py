"""Prepare executed notebooks for the HTML build (run on the executed copies, never on
the sources):

- a stamp under the title: scale, device, torch version and how long the notebook took
  to execute, read from the notebook's own outputs (the banner that ``llmbook.start()``
  prints in the setup cell) and from the execution times nbclient records per cell;
- the setup cell's code folded (tag ``hide-input``): it matters on Colab, not to a reader;
- alt text for every figure: the titles the cell gives its plots (``title=``,
  ``set_title``, ``suptitle``), else a sentence naming the figure's section.

Usage: python tools/finish_notebooks.py FOLDER_OR_NOTEBOOK ...
"""
from __future__ import annotations

import ast
import os
import re
import sys
from datetime import datetime
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "code"))
from llmbook.setup import parse_banner

STAMP_CLASS = "llmbook-stamp"
TITLE_CALL_RE = re.compile(r"(?:\btitle\s*=|set_title\(|suptitle\(|plt\.title\()\s*"
                           r"(?P<lit>f?\"[^\"\n]*\"|f?'[^'\n]*')")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")


def execution_seconds(nb) -> float | None:
    """Seconds from the first cell's start to the last cell's reply (nbclient's timings)."""
    starts, ends = [], []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start = timing.get("iopub.execute_input") or timing.get("iopub.status.busy")
        end = timing.get("shell.execute_reply") or timing.get("iopub.status.idle")
        if start and end:
            starts.append(_time(start))
            ends.append(_time(end))
    if not starts:
        return None
    return (max(ends) - min(starts)).total_seconds()


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def environment(nb) -> dict[str, str] | None:
    """The fields of the banner printed by the first code cell (``llmbook.start()``)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                       if o.get("output_type") == "stream")
        return parse_banner(text)
    return None


def stamp_text(env: dict[str, str], seconds: float) -> str:
    """The stamp's Markdown: a container of class :data:`STAMP_CLASS`."""
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    return (f":::{{container}} {STAMP_CLASS}\n"
            f"Built at scale **{env['scale']}** on **{env['device']}** ({env['precision']}), "
            f"torch {env['torch']}; executing this notebook took **{took}**.\n:::")


def add_stamp(nb) -> bool:
    """Insert (or refresh) the stamp after the notebook's first Markdown cell."""
    env, seconds = environment(nb), execution_seconds(nb)
    if env is None or seconds is None:
        return False
    nb.cells = [c for c in nb.cells
                if c.get("metadata", {}).get("llmbook", {}).get("role") != STAMP_CLASS]
    cell = nbformat.v4.new_markdown_cell(stamp_text(env, seconds))
    cell.metadata["llmbook"] = {"role": STAMP_CLASS}
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first_md + 1, cell)
    return True


def fold_setup_cell(nb) -> None:
    """Tag the first code cell ``hide-input``: its code folded, its banner shown."""
    cell = next((c for c in nb.cells if c.cell_type == "code"), None)
    if cell is not None:
        tags = cell.metadata.setdefault("tags", [])
        if "hide-input" not in tags and "remove-input" not in tags:
            tags.append("hide-input")


def figure_titles(source: str) -> list[str]:
    """Titles given to plots in ``source``; f-string fields become "…"."""
    titles = []
    for match in TITLE_CALL_RE.finditer(source):
        literal = match.group("lit")
        if literal.startswith("f"):
            text = re.sub(r"\{[^{}]*\}", "…", literal[2:-1])
        else:
            try:
                text = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                continue
        if text.strip():
            titles.append(text.strip())
    return titles


def section_of(nb, index: int) -> str:
    """The last heading above cell ``index`` (for a figure without a title)."""
    for cell in reversed(nb.cells[:index]):
        if cell.cell_type == "markdown":
            for line in reversed(cell.source.splitlines()):
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "this notebook"


def add_alt_text(nb) -> int:
    """Give each code cell that shows an image an alt text; returns how many it set."""
    n = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not any(
                m in o.get("data", {}) for o in cell.get("outputs", []) for m in IMAGE_MIMES):
            continue
        options = cell.metadata.setdefault("mystnb", {}).setdefault("image", {})
        if options.get("alt"):
            continue
        titles = figure_titles(cell.source)
        options["alt"] = ("Figure: " + "; ".join(dict.fromkeys(titles)) if titles
                          else f"Figure of the section “{section_of(nb, i)}”")
        n += 1
    return n


def finish(path: Path) -> bool:
    """Stamp, fold and give alt text to one executed notebook; False if not executed."""
    nb = nbformat.read(path, as_version=4)
    if not add_stamp(nb):
        print(f"{path}: no llmbook banner or no execution times: not executed?",
              file=sys.stderr)
        return False
    fold_setup_cell(nb)
    add_alt_text(nb)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return True


def finish_folder(folder: Path) -> int:
    """:func:`finish` every notebook under ``folder``; SystemExit if one was not executed."""
    paths = sorted(p for p in Path(folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    done = sum(finish(path) for path in paths)
    print(f"finished {done} of {len(paths)} executed notebooks in {folder} "
          "(stamp, setup cell, alt text)")
    if done < len(paths):
        raise SystemExit(1)
    return done


if __name__ == "__main__":
    ok = True
    for arg in sys.argv[1:]:
        if Path(arg).is_dir():
            finish_folder(Path(arg))
        else:
            ok &= finish(Path(arg))
    sys.exit(0 if ok else 1)
