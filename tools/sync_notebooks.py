"""Keep the first code cell of every notebook equal to tools/setup_cell.py.

The setup cell installs the package on Colab from the repository named in _config.yml
(``repository.url`` and ``repository.branch``, the one place they are written). This
script first writes that URL and branch into tools/setup_cell.py, then makes the first
code cell of every notebook under chapters/ equal to it.

Usage: python tools/sync_notebooks.py          rewrite what differs
       python tools/sync_notebooks.py --check  only report; exit 1 if anything differs
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
SETUP_CELL = ROOT / "tools" / "setup_cell.py"
INSTALL_RE = re.compile(r'"llmbook @ git\+(?P<url>[^@"]+)@(?P<branch>[^"]+)"')


def repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(url, branch) of the book's repository, from ``_config.yml``."""
    repo = yaml.safe_load(config_path.read_text())["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def expected_setup_cell(template: str, url: str, branch: str) -> str:
    """The setup cell's text with the install line pointing at ``url``@``branch``."""
    if len(INSTALL_RE.findall(template)) != 1:
        raise ValueError(f"{SETUP_CELL} must contain exactly one "
                         '"llmbook @ git+URL@BRANCH" install line')
    return INSTALL_RE.sub(f'"llmbook @ git+{url}@{branch}"', template).rstrip("\n")


def first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The first code cell of ``nb``, or None if it has none."""
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def notebooks(root: Path = ROOT / "chapters") -> list[Path]:
    """Every notebook under ``root`` (checkpoints excluded), sorted."""
    return sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def sync(check: bool) -> int:
    url, branch = repository()
    template = SETUP_CELL.read_text()
    cell_text = expected_setup_cell(template, url, branch)
    stale = []
    if template.rstrip("\n") != cell_text:
        stale.append(SETUP_CELL)
        if not check:
            SETUP_CELL.write_text(cell_text + "\n")
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        cell = first_code_cell(nb)
        if cell is not None and cell.source == cell_text:
            continue
        stale.append(path)
        if check:
            continue
        if cell is None:
            nb.cells.insert(0, nbformat.v4.new_code_cell(cell_text))
        else:
            cell.source = cell_text
        nbformat.write(nb, path)
    verb = "differs" if check else "updated"
    for path in stale:
        print(f"{verb}: {path.relative_to(ROOT)}")
    if check and stale:
        print("run `python tools/sync_notebooks.py` to fix")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(sync(check="--check" in sys.argv[1:]))
