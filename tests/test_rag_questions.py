"""Notebook 4.4's question set stays tied to the text of chapters 1-3.

Each question comes with a phrase copied from the one chunk of chapters 1-3 that
answers it. An edit of those chapters can break that link; this fast test says which
phrase broke, long before the notebook itself runs."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import llmbook
import nbformat
import pytest
from conftest import ROOT

NOTEBOOK = ROOT / "chapters" / "04_applications" / "04_retrieval.ipynb"


def _cell_defining(nb, marker: str) -> str:
    cells = [c.source for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"expected one code cell of {NOTEBOOK.name} with {marker!r}"
    return cells[0]


@pytest.fixture(scope="module")
def notebook_namespace() -> dict:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace = {"json": json, "re": re, "subprocess": subprocess, "sys": sys,
                 "Path": Path, "llmbook": llmbook}
    definitions = _cell_defining(nb, "def book_chunks(")
    exec(definitions[:definitions.index("all_chunks = ")], namespace)
    questions = _cell_defining(nb, "QUESTIONS = [")
    exec(questions[:questions.index("holders =")], namespace)
    return namespace


def test_every_answer_phrase_is_in_exactly_one_chunk(notebook_namespace):
    chunks = notebook_namespace["book_chunks"](ROOT)
    broken = {key: sum(key in c["text"] for c in chunks)
              for _, key in notebook_namespace["QUESTIONS"]}
    broken = {key: n for key, n in broken.items() if n != 1}
    assert not broken, ("answer phrases of notebook 4.4 found in 0 or several chunks of "
                        f"chapters 1-3 (phrase: count): {broken}; copy a new phrase from "
                        "the chunk that answers each question")


def test_questions_are_distinct(notebook_namespace):
    questions = [q for q, _ in notebook_namespace["QUESTIONS"]]
    assert len(questions) >= 50 and len(set(questions)) == len(questions)
