"""Open the built book in headless Chromium, page by page, and report what a reader would
see go wrong. Chromium is driven over its DevTools protocol through a pipe (no port, no
extra package); the network is cut (every host resolves to nothing, a dead proxy), and
every request that is not for a file of the site is recorded.

On every page: no request leaves the site, no console error or uncaught exception, no
raw TeX left (MathJax rendered every formula), every image loaded with alt text or a
caption, saved widget states rendered, no code cell that needs horizontal scrolling in a
1280-px-wide window; notebook pages carry the build stamp. The search page must find
results offline. Screenshots of a few pages are saved.

Usage: python tools/browser_check.py HTML_DIR [--shots DIR] [--json REPORT]
Prints one line per problem and exits 1 if there is any.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH, HEIGHT = 1280, 900
SHOT_PAGES = ("book/intro", "chapters/02_attention/01_scaled_dot_product",
              "chapters/03_training/05_scaling")
SKIP_DIRS = ("_static", "_offline", "_sources", "_images", "_sphinx_design_static")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Headless Chromium with ``--remote-debugging-pipe``: NUL-separated JSON messages,
    commands on the child's fd 3, replies and events on its fd 4."""

    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="llmbook-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds():                    # in the child, before exec: fds 3 and 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--remote-debugging-pipe", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
                "--allow-file-access-from-files", f"--user-data-dir={self.profile}",
                f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=wire_fds, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def _send(self, message: dict) -> None:
        os.write(self._to_child, json.dumps(message).encode() + b"\0")

    def _receive(self, timeout: float) -> dict | None:
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_child], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe (it crashed?)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise TimeoutError(f"no reply to {method} in {timeout} s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            event = self._receive(max(0.0, deadline - time.monotonic()))
            if event is None:
                return
            if "method" in event:
                self.events.append(event)

    def evaluate(self, expression: str, timeout: float = 30):
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_child)
        os.close(self._from_child)
        shutil.rmtree(self.profile, ignore_errors=True)


# What each page is asked, in the page itself, once it has loaded.
PAGE_PROBE = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const hasWidgets = !!document.querySelector(
      'script[type="application/vnd.jupyter.widget-state+json"]');
  if (hasWidgets) {
    for (let i = 0; i < 100 && !document.querySelector('.widget-slider, .jupyter-widgets');
         i++) { await sleep(100); }
  }
  const math = [...document.querySelectorAll('.math')];
  const rawTex = math.filter(e => !e.querySelector('mjx-container'))
                     .map(e => e.textContent.trim().slice(0, 60));
  const imgs = [...document.querySelectorAll('article img, .bd-article img')];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                     .map(i => i.getAttribute('src'));
  const noAlt = imgs.filter(i => {
      const alt = (i.getAttribute('alt') || '').trim();
      const caption = i.closest('figure') && i.closest('figure').querySelector('figcaption');
      return !caption && (!alt || /\.(png|jpe?g|svg|gif)$/i.test(alt));
  }).map(i => i.getAttribute('src'));
  const codes = [...document.querySelectorAll('div.highlight pre')]
      .filter(p => !p.closest('.cell_output'));
  const wide = codes.filter(p => p.scrollWidth > p.clientWidth + 1)
      .map(p => (p.textContent.split('\n').reduce((a, b) => a.length >= b.length ? a : b, ''))
                 .slice(0, 100));
  const widgetViews = document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length;
  const renderedWidgets = document.querySelectorAll('.jupyter-widgets, .widget-slider').length;
  return {rawTex, broken, noAlt, wide, codeBlocks: codes.length, images: imgs.length,
          math: math.length, hasWidgets, widgetViews, renderedWidgets,
          stamp: !!document.querySelector('.llmbook-stamp'),
          notebook: !!document.querySelector('div.cell'),
          title: document.title};
})()
"""

SEARCH_PROBE = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 150; i++) {
    const n = document.querySelectorAll('#search-results li, ul.search li').length;
    if (n) { return n; }
    await sleep(100);
  }
  return 0;
})()
"""


def pages_of(site: Path) -> list[str]:
    return [str(p.relative_to(site).with_suffix("")) for p in sorted(site.rglob("*.html"))
            if p.relative_to(site).parts[0] not in SKIP_DIRS
            and p.name not in ("search.html", "genindex.html")]


def describe_exception(details: dict) -> str:
    """An uncaught exception or rejected promise, with what was thrown and where."""
    thrown = details.get("exception", {})
    what = thrown.get("description") or json.dumps(thrown.get("value", ""))[:200]
    frames = details.get("stackTrace", {}).get("callFrames", [])
    where = f" at {frames[0]['url']}:{frames[0]['lineNumber']}" if frames else ""
    return f"{details.get('text', 'exception')} {what}{where}".strip()


def visit(browser: Browser, url: str, site: Path) -> tuple[list[str], list[str]]:
    """Load ``url``; return (requests that left the site, console errors)."""
    browser.events.clear()
    browser.call("Page.navigate", url=url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(e["method"] == "Page.loadEventFired" for e in browser.events):
            break
        browser.pump(0.2)
    browser.pump(0.5)
    outside, errors = [], []
    root = site.resolve().as_uri()
    for event in browser.events:
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            req = params["request"]["url"]
            if not req.startswith(LOCAL_SCHEMES) or (req.startswith("file:")
                                                     and not req.startswith(root)):
                outside.append(req)
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                   for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            errors.append(describe_exception(params.get("exceptionDetails", {})))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
    return outside, errors


def check_site(site: Path, shots: Path | None = None, executable: str | None = None) -> dict:
    """Visit every page of ``site``; return ``{"pages": {page: findings}, "search": n}``."""
    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install chromium)")
    browser = Browser(executable)
    report: dict = {"pages": {}, "search_results": 0, "screenshots": []}
    try:
        for domain in ("Page", "Runtime", "Network", "Log"):
            browser.call(f"{domain}.enable")
        browser.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                     deviceScaleFactor=1, mobile=False)
        for page in pages_of(site):
            url = (site / f"{page}.html").resolve().as_uri()
            outside, errors = visit(browser, url, site)
            probe = browser.evaluate(PAGE_PROBE, timeout=60)
            outside2, errors2 = visit_tail(browser, site)
            probe.update(outside=outside + outside2, errors=errors + errors2)
            report["pages"][page] = probe
            if shots is not None and page in SHOT_PAGES:
                shots.mkdir(parents=True, exist_ok=True)
                shot = browser.call("Page.captureScreenshot", format="png")["data"]
                target = shots / f"{page.replace('/', '_')}.png"
                target.write_bytes(base64.b64decode(shot))
                report["screenshots"].append(str(target))
        search = (site / "search.html").resolve().as_uri() + "?q=attention"
        outside, errors = visit(browser, search, site)
        report["search_results"] = browser.evaluate(SEARCH_PROBE, timeout=60)
        report["search_outside"], report["search_errors"] = outside, errors
    finally:
        browser.close()
    return report


def visit_tail(browser: Browser, site: Path) -> tuple[list[str], list[str]]:
    """Requests and errors that came after the probe (late scripts, widgets)."""
    browser.events.clear()
    browser.pump(0.3)
    outside, errors = [], []
    root = site.resolve().as_uri()
    for event in browser.events:
        params = event.get("params", {})
        if event["method"] == "Network.requestWillBeSent":
            req = params["request"]["url"]
            if not req.startswith(LOCAL_SCHEMES) or (req.startswith("file:")
                                                     and not req.startswith(root)):
                outside.append(req)
        elif event["method"] == "Runtime.exceptionThrown":
            errors.append(describe_exception(params.get("exceptionDetails", {})))
    return outside, errors


def problems(report: dict) -> list[str]:
    """One line per problem found in a :func:`check_site` report."""
    found = []
    for page, p in report["pages"].items():
        for key, what in (("outside", "request leaving the site"), ("errors", "console error"),
                          ("rawTex", "raw TeX (MathJax did not render it)"),
                          ("broken", "image that did not load"),
                          ("noAlt", "image without alt text or caption"),
                          ("wide", "code cell that scrolls sideways at 1280 px")):
            found += [f"{page}: {what}: {item}" for item in p[key]]
        if p["hasWidgets"] and p["widgetViews"] and not p["renderedWidgets"]:
            found.append(f"{page}: saved widget state not rendered")
        if p["notebook"] and page.startswith("chapters/") and not p["stamp"]:
            found.append(f"{page}: no build stamp")
    if not report["search_results"]:
        found.append("search.html?q=attention: no results offline")
    found += [f"search: request leaving the site: {u}" for u in report.get("search_outside", [])]
    found += [f"search: console error: {e}" for e in report.get("search_errors", [])]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--shots", type=Path, help="folder for the screenshots")
    parser.add_argument("--json", type=Path, help="write the whole report here")
    args = parser.parse_args(argv)
    report = check_site(args.site, args.shots)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    found = problems(report)
    print("\n".join(found) if found else
          f"{len(report['pages'])} pages checked in Chromium: no problems; "
          f"search found {report['search_results']} results offline")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
