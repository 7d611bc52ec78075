"""The benchmarks page: a recorded result file, and (with $LLMBOOK_HTML_DIR set) a built
page whose tables show exactly what that file holds."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "book" / "_ext"))
from llmbook_bench import render

RESULT = ROOT / "book" / "benchmarks" / "cpu.json"
BATCHED = ROOT / "book" / "benchmarks" / "cpu-batched.json"


@pytest.fixture(scope="module")
def result() -> dict:
    return json.loads(RESULT.read_text(encoding="utf-8"))


def test_recorded_result_says_when_and_where(result):
    for key in ("date", "machine", "device", "torch", "transformers", "threads", "repeats"):
        assert key in result, f"{RESULT.name} lacks {key!r}"
    assert {"cpu", "cores", "os"} <= set(result["machine"])
    assert result["train"] and result["generate"]
    assert not result.get("quick"), "the recorded result must not be a --quick smoke run"
    impls = {r["impl"] for r in result["train"]}
    assert any("llmbook" in i for i in impls) and any("HF" in i or "hf" in i for i in impls)


def test_recorded_batched_result_covers_every_batch_size():
    batched = json.loads(BATCHED.read_text(encoding="utf-8"))
    assert not batched.get("quick"), "the recorded result must not be a --quick smoke run"
    assert batched["model"] == "SmolLM2-135M-Instruct"
    rows = batched["batched"]
    sizes = sorted({r["batch_size"] for r in rows})
    assert sizes == [1, 2, 4, 8, 16, 32]
    for B in sizes:
        impls = {r["impl"] for r in rows if r["batch_size"] == B}
        assert impls == {"llmbook generate", "HF generate"}, (B, impls)


def _body_cells(result: dict, name: str = "benchmarks/cpu.json") -> list[str]:
    """The body cells of every table the page renders from ``result``, in order."""
    from docutils import nodes

    return [e.astext().strip() for n in render(result, name)
            for body in n.findall(nodes.tbody) for e in body.findall(nodes.entry)]


def test_page_shows_exactly_what_the_file_holds(result):
    site = os.environ.get("LLMBOOK_HTML_DIR")
    if not site:
        pytest.skip("LLMBOOK_HTML_DIR is not set: build the book (make test does) to check it")
    bs4 = pytest.importorskip("bs4")
    page = bs4.BeautifulSoup((Path(site) / "book" / "benchmarks.html").read_text("utf-8"),
                             "html.parser")
    shown = [td.get_text(" ", strip=True) for td in page.select("table.bench-table tbody td")]
    assert shown, "the benchmarks page has no tables"
    batched = json.loads(BATCHED.read_text(encoding="utf-8"))
    assert shown == _body_cells(result) + _body_cells(batched, "benchmarks/cpu-batched.json")
