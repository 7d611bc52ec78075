"""Checks on the built HTML book, read from $LLMBOOK_HTML_DIR (`make test` builds it at ci
scale into _ci/_build/html and sets the variable). Unset: these tests are skipped."""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import ROOT, toc_files

CDN_HOSTS = ("jsdelivr", "unpkg", "cdnjs", "googleapis", "gstatic", "mathjax.org",
             "cloudflare", "bootstrapcdn", "code.jquery.com", "polyfill.io", "fontawesome.com")
CDN_RE = re.compile(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//[^\"']*(?:%s)" %
                    "|".join(re.escape(h) for h in CDN_HOSTS), re.I)
CDN_ANYWHERE_RE = re.compile(r"(?:https?:)?//[\w.-]*(?:%s)" % "|".join(re.escape(h) for h in CDN_HOSTS), re.I)
SCRIPT_SRC_RE = re.compile(r"<script[^>]*\bsrc=\"([^\"]+)\"")
# myst-nb renders an error output as <div class="output traceback highlight-ipythontb">;
# docutils shows a broken directive or role as a "system-message" box.
ERROR_MARKERS = ("Traceback (most recent call last)", 'class="output traceback',
                 "highlight-ipythontb", 'class="system-message"')


@pytest.fixture(scope="session")
def site() -> Path:
    value = os.environ.get("LLMBOOK_HTML_DIR")
    if not value:
        pytest.skip("LLMBOOK_HTML_DIR is not set: build the book (make test does) to check it")
    path = Path(value)
    if not (path / "index.html").is_file():
        pytest.fail(f"LLMBOOK_HTML_DIR={value} has no built book (no index.html)")
    return path


@pytest.fixture(scope="session")
def toc(site) -> list[str]:
    """The toc entries of the book that was built (``<book>/_build/html``), else this repo's."""
    built_from = site.resolve().parent.parent / "_toc.yml"
    return toc_files(yaml.safe_load(built_from.read_text()) if built_from.is_file() else None)


@pytest.fixture(scope="session")
def pages(site) -> dict[str, str]:
    """Every book page (theme assets and the offline folder excluded): path -> HTML."""
    skip = ("_static", "_offline", "_sources", "_images")
    return {str(p.relative_to(site)): p.read_text(encoding="utf-8")
            for p in sorted(site.rglob("*.html")) if p.relative_to(site).parts[0] not in skip}


def notebook_pages(site, toc) -> list[str]:
    """toc entries that were notebooks (their source is shipped as _sources/X.ipynb)."""
    return [f for f in toc if (site / "_sources" / f"{f}.ipynb").exists()]


def local_target(site: Path, page: str, url: str) -> Path | None:
    """The file a relative ``url`` on ``page`` points to, or None if it is not relative."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    return ((site / page).parent / parts.path).resolve()


def test_every_toc_entry_has_a_page(site, toc):
    missing = [f for f in toc if not (site / f"{f}.html").is_file()]
    assert not missing, f"pages missing from the built book: {missing}"


def test_no_page_loads_from_a_cdn(pages):
    offenders = {page: sorted(set(m.group(0) for m in CDN_ANYWHERE_RE.finditer(html)))
                 for page, html in pages.items() if CDN_ANYWHERE_RE.search(html)}
    assert not offenders, f"pages referencing a CDN (they break offline): {offenders}"


def test_stylesheets_load_nothing_from_a_cdn(site):
    offenders = [str(p.relative_to(site)) for p in (site / "_static").rglob("*.css")
                 if CDN_RE.search(p.read_text(errors="ignore"))
                 or re.search(r"url\(\s*[\"']?(?:https?:)?//", p.read_text(errors="ignore"))]
    assert not offenders, f"stylesheets with remote url(...): {offenders}"


def test_no_page_shows_an_error(pages):
    bad = {page: [m for m in ERROR_MARKERS if m in html] for page, html in pages.items()}
    bad = {page: markers for page, markers in bad.items() if markers}
    assert not bad, f"pages showing errors or tracebacks: {bad}"


def test_every_local_script_exists(site, pages):
    missing = set()
    for page, html in pages.items():
        for src in SCRIPT_SRC_RE.findall(html):
            target = local_target(site, page, src)
            if target is not None and not target.is_file():
                missing.add(f"{page}: {src}")
    assert not missing, f"scripts that are not in the built site: {sorted(missing)}"


def test_mathjax_is_served_locally(site, pages):
    with_math = [p for p, html in pages.items() if 'class="math' in html]
    assert with_math, "no page has math: the notation page at least should"
    for page in with_math:
        sources = [s for s in SCRIPT_SRC_RE.findall(pages[page]) if "mathjax" in s.lower()]
        assert sources, f"{page} has math but loads no MathJax"
        for src in sources:
            target = local_target(site, page, src)
            assert target is not None and target.is_file(), f"{page}: MathJax from {src}"
    fonts = site / "_offline" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert any(fonts.glob("*.woff")), f"MathJax fonts missing in {fonts}"


def test_widget_pages_load_the_widget_manager_locally(site, pages):
    for page, html in pages.items():
        if "application/vnd.jupyter.widget-state+json" not in html:
            continue
        sources = SCRIPT_SRC_RE.findall(html)
        for name in ("require", "embed-amd"):
            found = [s for s in sources if name in s]
            assert found, f"{page} has widget state but no {name}.js"
            assert all(local_target(site, page, s) for s in found), f"{page}: {found}"


def test_notebook_pages_have_colab_and_download_links(site, toc):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    repo = urlsplit(config["url"]).path.strip("/")
    for f in notebook_pages(site, toc):
        html = (site / f"{f}.html").read_text(encoding="utf-8")
        colab = f"https://colab.research.google.com/github/{repo}/blob/{config['branch']}/{f}.ipynb"
        assert colab in html, f"{f}: no Colab launch link {colab}"
        assert f"_sources/{f}.ipynb" in html, f"{f}: no .ipynb download link"


def test_notebook_pages_show_outputs(site, toc):
    empty = [f for f in notebook_pages(site, toc)
             if "cell_output" not in (site / f"{f}.html").read_text(encoding="utf-8")]
    assert not empty, f"notebook pages without any output (not executed?): {empty}"


def test_glue_is_rendered(site, pages):
    raw = {p: re.findall(r"\{glue[:\w]*\}`[^`]+`", html) for p, html in pages.items()}
    raw = {p: found for p, found in raw.items() if found}
    assert not raw, f"glue roles left unrendered: {raw}"


def test_notebook_pages_that_plot_show_figures(site, toc):
    """A notebook that draws with matplotlib must show its figures (no Agg backend leak)."""
    blank = []
    for f in notebook_pages(site, toc):
        source = (site / "_sources" / f"{f}.ipynb").read_text(encoding="utf-8")
        if "plt." not in source and "matplotlib" not in source:
            continue
        html = (site / f"{f}.html").read_text(encoding="utf-8")
        images = re.findall(r"<img[^>]*src=\"([^\"]*_images/[^\"]+)\"", html)
        if not images or not all(local_target(site, f"{f}.html", s).is_file() for s in images):
            blank.append(f)
    assert not blank, f"notebook pages that plot but show no figure: {blank}"


def test_notebook_pages_carry_the_build_stamp(site, toc):
    missing = []
    for f in notebook_pages(site, toc):
        html = (site / f"{f}.html").read_text(encoding="utf-8")
        stamp = re.search(r'class="[^"]*llmbook-stamp[^"]*"[^>]*>(.*?)</div>', html, re.S)
        if not stamp or not all(w in stamp.group(1) for w in ("scale", "torch", "took")):
            missing.append(f)
    assert not missing, f"notebook pages without the build stamp: {missing}"


def test_setup_cell_is_folded(site, toc):
    unfolded = []
    for f in notebook_pages(site, toc):
        html = (site / f"{f}.html").read_text(encoding="utf-8")
        first = re.search(r'<div class="cell( [^"]*)?"', html)
        if not first or "tag_hide-input" not in (first.group(1) or ""):
            unfolded.append(f)
    assert not unfolded, f"notebook pages whose setup cell is not folded: {unfolded}"


IMG_RE = re.compile(r"<img\b[^>]*>")


def test_every_image_has_alt_text_or_a_caption(pages):
    bad = {}
    for page, html in pages.items():
        captioned = {m.start() for fig in re.finditer(r"<figure\b.*?</figure>", html, re.S)
                     if "<figcaption" in fig.group(0)
                     for m in IMG_RE.finditer(html, fig.start(), fig.end())}
        for m in IMG_RE.finditer(html):
            alt = re.search(r'\balt="([^"]*)"', m.group(0))
            text = alt.group(1).strip() if alt else ""
            if m.start() not in captioned and (not text or re.search(r"\.(png|jpe?g|svg)$", text)):
                bad.setdefault(page, []).append(m.group(0)[:120])
    assert not bad, f"images without alt text or caption: {bad}"
