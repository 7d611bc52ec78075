"""The errata appendix: its data (book/errata.yml) and, with $LLMBOOK_HTML_DIR set, the
built page, whose every link must land on a cell that carries the erratum's id."""
from __future__ import annotations

import functools
import os
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "book" / "_ext"))
from llmbook_errata import ERRATUM_ID, load_errata

DATA = ROOT / "book" / "errata.yml"


@pytest.fixture(scope="module")
def errata() -> dict:
    return load_errata(DATA)


def test_every_erratum_once_with_its_severity(errata):
    ids = [e["id"] for e in errata["errata"]]
    assert len(ids) == len(set(ids)) == 114
    assert Counter(e["severity"] for e in errata["errata"]) == {"H": 43, "M": 32, "L": 39}
    assert {e["article"] for e in errata["errata"]} == set(errata["articles"])
    assert all(e["id"][1:4] == e["article"] for e in errata["errata"])


def test_prose_entries_name_a_page_that_mentions_them(errata):
    for e in errata["errata"]:
        if "prose" in e:
            page = ROOT / (e["prose"]["page"] + ".md")
            assert page.is_file(), f"{e['id']}: prose page {page} does not exist"
            assert e["id"] in page.read_text(encoding="utf-8"), (
                f"{e['id']} says it is discussed in {page.name}, which never names it")


def test_load_rejects_bad_data(tmp_path):
    bad = tmp_path / "errata.yml"
    bad.write_text("errata:\n- {id: E000-01, article: '000', severity: X, claim: a, correction: b}\n")
    with pytest.raises(ValueError, match="severity 'X'"):
        load_errata(bad)
    bad.write_text("errata:\n- {id: E000-01, article: '000', severity: H, claim: a}\n")
    with pytest.raises(ValueError, match="lacks"):
        load_errata(bad)


# ------------------------------------------------------------------ the built page
@pytest.fixture(scope="module")
def site() -> Path:
    value = os.environ.get("LLMBOOK_HTML_DIR")
    if not value:
        pytest.skip("LLMBOOK_HTML_DIR is not set: build the book (make test does) to check it")
    return Path(value)


@functools.cache
def _soup(path: Path):
    bs4 = pytest.importorskip("bs4")
    return bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _cell_text(page, anchor: str) -> str:
    """Text of the cell an anchor names (an extra id is an empty span inside it)."""
    el = page.find(id=anchor)
    if el is None:
        return ""
    if el.name == "span" and not el.get_text(strip=True):
        el = el.find_parent("div", class_="admonition") or el.find_next_sibling()
    return el.get_text(" ", strip=True) if el is not None else ""


def test_every_row_is_demonstrated_or_says_why(site, errata):
    page = _soup(site / "book" / "errata.html")
    status = Counter()
    for e in errata["errata"]:
        cell = page.find(id=f"errata-row-{e['id'].lower()}")
        assert cell is not None, f"{e['id']} is missing from the appendix"
        where = cell.find_parent("tr").find_all("td")[-1]
        links = [a["href"] for a in where.find_all("a")]
        text = where.get_text(" ", strip=True)
        if text.startswith("discussed in prose"):
            status["prose"] += 1
            target = (site / "book" / links[0]).resolve()
            assert e["id"] in target.read_text(encoding="utf-8")
        elif text.startswith("not yet demonstrated"):
            status["open"] += 1
        else:
            status["demonstrated"] += 1
            assert links, f"{e['id']}: demonstrated but no link"
            for href in links:
                file, _, anchor = href.partition("#")
                target = _soup((site / "book" / file).resolve())
                assert e["id"] in _cell_text(target, anchor), (
                    f"{e['id']}: {href} does not land on a cell that names it")
    summary = page.find("table").get_text(" ", strip=True)
    totals = re.search(r"all (\d+) (\d+) (\d+) 114", summary)
    assert totals, summary
    assert tuple(int(x) for x in totals.groups()) == (
        status["demonstrated"], status["prose"], status["open"])


def test_every_labelled_cell_is_in_the_appendix(site, errata):
    known = {e["id"] for e in errata["errata"]}
    for html in (site / "chapters").rglob("*.html"):
        for adm in _soup(html).select("div.admonition > p.admonition-title"):
            title = adm.get_text(" ", strip=True)
            if title.startswith("Erratum"):
                ids = ERRATUM_ID.findall(title)
                assert ids and set(ids) <= known, f"{html.name}: {title!r} names an unknown id"
