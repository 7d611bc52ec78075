"""The built site opened in headless Chromium (tools/browser_check.py), read from
$LLMBOOK_HTML_DIR like tests/test_book.py. Skipped when the variable is unset, or when
Chromium is missing on a machine where it cannot be installed (not root, or no apt);
where it could have been (root with apt: CI), a missing Chromium fails."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, load_tool

browser = load_tool("browser_check")
SHOTS = ROOT / "_build" / "browser"


def chromium_or_skip() -> str:
    exe = browser.find_chromium()
    if exe:
        return exe
    installable = os.geteuid() == 0 and shutil.which("apt-get")
    if installable:
        pytest.fail("chromium is missing although apt-get runs as root here: "
                    "tools/system-deps.sh should have installed it")
    pytest.skip("chromium is not installed and cannot be installed here (needs root and "
                "apt-get): install Debian's chromium package to run the browser checks")


@pytest.fixture(scope="module")
def report():
    site = os.environ.get("LLMBOOK_HTML_DIR")
    if not site:
        pytest.skip("LLMBOOK_HTML_DIR is not set: build the book (make test does) to check it")
    result = browser.check_site(Path(site), SHOTS, chromium_or_skip())
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "report.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


CHECKS = {
    "outside": "requests leaving the site", "errors": "console errors",
    "rawTex": "raw TeX left by MathJax", "broken": "images that did not load",
    "noAlt": "images without alt text or caption",
    "wide": "code cells scrolling sideways at 1280 px",
}


@pytest.mark.parametrize("key", CHECKS)
def test_every_page(report, key):
    bad = {page: p[key] for page, p in report["pages"].items() if p[key]}
    assert not bad, f"{CHECKS[key]}: {json.dumps(bad, ensure_ascii=False, indent=1)}"


def test_maths_figures_and_code_are_there_to_check(report):
    pages = report["pages"].values()
    assert sum(p["math"] for p in pages) > 50, "MathJax found almost no formulas"
    assert sum(p["images"] for p in pages) > 20, "almost no figures on the pages"
    assert sum(p["codeBlocks"] for p in pages) > 100, "almost no code cells measured"


def test_saved_widget_states_render(report):
    with_widgets = {page: p for page, p in report["pages"].items() if p["widgetViews"]}
    assert with_widgets, "no page has a saved widget"
    dead = [page for page, p in with_widgets.items() if not p["renderedWidgets"]]
    assert not dead, f"saved widget states that did not render: {dead}"


def test_notebook_pages_carry_the_build_stamp(report):
    missing = [page for page, p in report["pages"].items()
               if page.startswith("chapters/") and p["notebook"] and not p["stamp"]]
    assert not missing, f"notebook pages without the build stamp: {missing}"


def test_search_works_offline(report):
    assert report["search_results"] > 0, "search.html?q=attention found nothing"
    assert not report["search_outside"] and not report["search_errors"]


def test_screenshots_are_saved(report):
    assert len(report["screenshots"]) == len(browser.SHOT_PAGES)
    assert all(Path(s).stat().st_size > 10_000 for s in report["screenshots"])
