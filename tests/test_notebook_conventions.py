"""The conventions of CONTRIBUTING.md that every chapter notebook must follow."""
from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT, chapter_notebooks, load_tool, toc_files

from llmbook import exercises

sync = load_tool("sync_notebooks")
NOTEBOOKS = chapter_notebooks()
IDS = [str(p.relative_to(ROOT / "chapters")) for p in NOTEBOOKS]
CHECK_RE = re.compile(r"""check\(\s*["'](?P<id>[^"']+)["']""")
GLUE_ROLE_RE = re.compile(r"\{glue(?::\w+)?\}`(?P<name>[A-Za-z_]\w*)")
# glue("name", ...) or glue(f"name_{x}", ...): an f-string's fields match any word characters
GLUE_CALL_RE = re.compile(r"""glue\(\s*f?["'](?P<name>[A-Za-z_][\w{}.]*)["']""")


def read(path):
    return nbformat.read(path, as_version=4)


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_every_toc_entry_has_a_source_file():
    missing = [f for f in toc_files()
               if not (ROOT / f"{f}.md").exists() and not (ROOT / f"{f}.ipynb").exists()]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files())
    orphans = [str(p.relative_to(ROOT)) for p in NOTEBOOKS
               if str(p.relative_to(ROOT).with_suffix("")) not in listed]
    assert not orphans, f"notebooks missing from _toc.yml (the build skips them): {orphans}"


def test_setup_cell_points_at_the_configured_repository():
    url, branch = sync.repository()
    text = sync.SETUP_CELL.read_text()
    assert text.rstrip("\n") == sync.expected_setup_cell(text, url, branch), (
        "tools/setup_cell.py does not install from the repository/branch in _config.yml; "
        "run python tools/sync_notebooks.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_the_setup_cell(path):
    url, branch = sync.repository()
    expected = sync.expected_setup_cell(sync.SETUP_CELL.read_text(), url, branch)
    cell = sync.first_code_cell(read(path))
    assert cell is not None, "notebook has no code cell"
    assert cell.source == expected, (
        "the first code cell differs from tools/setup_cell.py; run python tools/sync_notebooks.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stripped(path):
    nb = read(path)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"cells {dirty} have outputs; run python tools/strip_outputs.py {path}"
    assert "widgets" not in nb.metadata, (
        f"saved widget state in the metadata; run python tools/strip_outputs.py {path}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_kernel_is_python3(path):
    spec = read(path).metadata.get("kernelspec", {})
    assert spec.get("name") == "python3", f"kernelspec is {spec!r}; use the python3 kernel"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_has_hidden_asserts(path):
    hidden = [c for c in code_cells(read(path)) if "remove-cell" in tags(c)]
    assert any(re.search(r"^\s*assert\b", c.source, re.M) for c in hidden), (
        "no hidden check: add a code cell tagged remove-cell with asserts that hold at "
        "every scale (it is what pytest --nbmake really tests)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_are_well_formed(path):
    cells = code_cells(read(path))
    known = set(exercises.known())
    for i, cell in enumerate(cells):
        has_marker = "# BEGIN SOLUTION" in cell.source
        if "solution" not in tags(cell):
            assert not has_marker, f"code cell {i} has # BEGIN SOLUTION but no 'solution' tag"
            continue
        where = f"solution cell {i}"
        assert "hide-input" in tags(cell), f"{where} must also be tagged hide-input"
        begins = len(re.findall(r"^\s*# BEGIN SOLUTION\s*$", cell.source, re.M))
        ends = len(re.findall(r"^\s*# END SOLUTION\s*$", cell.source, re.M))
        assert begins >= 1 and begins == ends, f"{where}: unbalanced BEGIN/END SOLUTION"
        following = cells[i + 1] if i + 1 < len(cells) else None
        match = CHECK_RE.search(following.source) if following is not None else None
        assert match, f"{where} must be followed by a cell calling check(\"<id>\", ...)"
        assert match["id"] in known, (
            f"exercise {match['id']!r} has no check registered in llmbook.checks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_glued_name_is_computed(path):
    nb = read(path)
    used = {m["name"] for c in nb.cells if c.cell_type == "markdown"
            for m in GLUE_ROLE_RE.finditer(c.source)}
    patterns = [re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(m["name"]))
                for c in code_cells(nb) for m in GLUE_CALL_RE.finditer(c.source)]
    missing = [n for n in used if not any(re.fullmatch(p, n) for p in patterns)]
    assert not missing, f"prose uses glue names no code cell glues: {sorted(missing)}"


def test_sync_check_reports_nothing_to_do(capsys):
    assert sync.sync(check=True) == 0, capsys.readouterr().out


CITE_RE = re.compile(r"\{cite(?::\w+)?\}`(?P<keys>[^`]+)`")


def cited_keys() -> dict[str, set[str]]:
    """{file: cited keys} over the book's Markdown pages and notebooks' Markdown cells."""
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "book").glob("*.md")) + sorted(ROOT.glob("chapters/*/*.md"))}
    for path in NOTEBOOKS:
        texts[str(path.relative_to(ROOT))] = "\n".join(
            c.source for c in read(path).cells if c.cell_type == "markdown")
    return {name: {k.strip() for m in CITE_RE.finditer(text) for k in m["keys"].split(",")}
            for name, text in texts.items()}


def test_references_parse_and_every_citation_exists():
    from pybtex.database import parse_file

    entries = parse_file(str(ROOT / "book" / "references.bib")).entries  # fails on a duplicate key
    missing = {name: sorted(keys - set(entries)) for name, keys in cited_keys().items()
               if keys - set(entries)}
    assert not missing, f"citations of keys not in book/references.bib: {missing}"


MATH_RE = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_glue_is_not_inside_math(path):
    """A {glue} role inside $...$ is not rendered: it shows up as raw text in the page."""
    bad = [m.group(0) for c in read(path).cells if c.cell_type == "markdown"
           for m in MATH_RE.finditer(c.source) if "{glue" in m.group(0)]
    assert not bad, f"glue roles inside maths (glue a formatted string instead): {bad}"


# What fits a code cell of the HTML at 1280 px without scrolling sideways (_static/
# llmbook.css sets the column and the code size; tests/test_browser.py measures it).
MAX_SHOWN_CODE_LINE = 122


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_shown_code_lines_fit_the_page(path):
    too_long = [f"cell {i}: {len(line)} characters: {line[:60]}…"
                for i, cell in enumerate(read(path).cells) if cell.cell_type == "code"
                and not tags(cell) & {"remove-cell", "remove-input"}
                for line in cell.source.splitlines() if len(line) > MAX_SHOWN_CODE_LINE]
    assert not too_long, (f"code lines wider than the page ({MAX_SHOWN_CODE_LINE} "
                          "characters; aim for 88):\n" + "\n".join(too_long))
