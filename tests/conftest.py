"""Shared helpers of the test suite: where the book is and what its table of contents says."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

# Each test starts from the same seeded state and the smallest scale.
os.environ.setdefault("LLMBOOK_SCALE", "ci")


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def toc_files(toc: dict | None = None) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (root first), without suffix, in book order."""
    toc = toc if toc is not None else yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [f.removesuffix(".ipynb").removesuffix(".md") for f in found]


def chapter_notebooks() -> list[Path]:
    """Every notebook under chapters/ (checkpoints excluded), sorted."""
    return sorted(p for p in CHAPTERS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.fixture
def seeded():
    """Seed Python, NumPy and torch before a test that draws random numbers."""
    from llmbook import seed_everything

    seed_everything(0)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models and tensors: one torch thread avoids oversubscribing a shared CPU.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
