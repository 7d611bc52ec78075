"""Copy the book's sources into a scratch folder where the tests execute the notebooks once.

`make test` runs ``pytest --nbmake --overwrite`` on this copy (each notebook is executed,
tested, and saved with its outputs and widget state), then builds the HTML from the copy
with execution switched off, so the notebooks are executed once for both the notebook
tests and the built-HTML tests. The working tree's notebooks are never touched.

Usage: python tools/prepare_ci_book.py DEST [OFFLINE_ASSETS]
       (defaults: _ci and _build/offline)
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("_config.yml", "_toc.yml", "_static", "book", "chapters")
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "_build")


def prepare(dest: Path, offline: Path) -> None:
    """Fresh copy of :data:`SOURCES` in ``dest``, its ``_config.yml`` set to not execute."""
    if dest.resolve() == ROOT:
        raise SystemExit("refusing to prepare the CI copy over the repository itself")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORE)
        else:
            shutil.copy2(src, dest / name)
    config_path = dest / "_config.yml"
    config = yaml.safe_load(config_path.read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["config"]["html_extra_path"] = [str(offline.resolve())]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    n = len(list((dest / "chapters").rglob("*.ipynb")))
    print(f"Copy of the book to execute in {dest} ({n} notebooks; execution off in its "
          "_config.yml)")


if __name__ == "__main__":
    args = sys.argv[1:]
    prepare(Path(args[0] if args else "_ci"), Path(args[1] if len(args) > 1 else "_build/offline"))
