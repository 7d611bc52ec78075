"""Fetch the JavaScript the HTML book needs, so that it works with no network at all.

MathJax (typesetting), require.js and the ipywidgets HTML manager (saved widget state)
would otherwise load from a CDN. This script fetches them from the npm registry with
``npm pack`` (no dependencies, no install scripts) and unpacks the parts the pages load
into ``DEST/_offline/``. ``_config.yml`` lists ``DEST`` under ``html_extra_path``, so
Sphinx copies ``_offline/`` to the root of the built site. They stay out of ``_static/``
on purpose: Jupyter Book injects every ``.js`` found there into every page.

Usage: python tools/offline_assets.py [DEST]      (default: _build/offline)
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# npm package spec -> (folder inside the package to keep, folder name under _offline/)
PACKAGES: dict[str, tuple[str, str]] = {
    "mathjax@3.2.2": ("es5", "mathjax"),
    "requirejs@2.3.7": ("require.js", "requirejs/require.js"),
    "@jupyter-widgets/html-manager@1.0.6": ("dist", "html-manager"),
}
SKIP_SUFFIXES = (".map", ".d.ts")
STAMP = "installed.json"


def npm_pack(spec: str, workdir: Path) -> Path:
    """Download the tarball of one npm package into ``workdir``; return its path."""
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to fetch the book's offline JavaScript: "
                         "apt-get install npm (or install Node.js), then run again.")
    out = subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)],
                         capture_output=True, text=True, cwd=workdir, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed:\n{out.stderr.strip()}")
    return workdir / out.stdout.strip().splitlines()[-1]


def unpack(tarball: Path, inner: str, target: Path) -> int:
    """Extract ``package/<inner>`` (a file or a folder) of ``tarball`` to ``target``."""
    prefix = f"package/{inner}"
    count = 0
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name
            if not member.isfile() or name.endswith(SKIP_SUFFIXES):
                continue
            if name == prefix:
                dest = target
            elif name.startswith(prefix + "/"):
                dest = target / name[len(prefix) + 1:]
            else:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(dest, "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst)
            count += 1
    if count == 0:
        raise SystemExit(f"{tarball.name} has no {inner!r}: has the package layout changed?")
    return count


def install(dest: Path) -> None:
    """Make ``dest/_offline`` hold every asset of :data:`PACKAGES` (skipped if up to date)."""
    root = dest / "_offline"
    stamp = root / STAMP
    if stamp.exists() and json.loads(stamp.read_text()) == PACKAGES:
        write_widget_paths(root)
        print(f"offline assets up to date in {root}")
        return
    if root.exists():
        shutil.rmtree(root)
    with tempfile.TemporaryDirectory() as tmp:
        for spec, (inner, name) in PACKAGES.items():
            n = unpack(npm_pack(spec, Path(tmp)), inner, root / name)
            print(f"offline assets: {spec} -> {root / name} ({n} files)")
    write_widget_paths(root)
    stamp.write_text(json.dumps(PACKAGES, indent=1))


# Loaded between require.js and embed-amd.js (see _config.yml), this script
# - maps the module "@jupyter-widgets/html-manager/dist/libembed-amd" to the site's own
#   copy, wherever the page is, and the names of its manager, base and controls modules to the same
#   folder: the widget manager finds its fonts next to those modules, which require.js
#   would otherwise look for relative to the page;
# - gives MathJax 3 the one MathJax 2 call the widgets make to typeset their labels
#   (MathJax.Hub.Queue), which would otherwise throw on every page with a widget;
# - gives the figures that saved widgets draw an alt text.
WIDGET_PATHS_JS = """// Written by tools/offline_assets.py: the widget manager, offline and with MathJax 3.
(function () {
  var here = new URL(".", document.currentScript.src).href;
  // The widget manager's webpack bundles read this global first when they resolve the
  // address of their fonts; without it they derive it from a module address.
  window.__jupyter_widgets_assets_path__ = here + "../html-manager/";
  // The html-manager, base and controls modules are defined inside embed-amd.js; each
  // finds its fonts next to the address require.js gives its name, so every one of those
  // names must map into the copy's folder (an unmapped one resolves next to the page).
  require.config({paths: {"@jupyter-widgets/html-manager/dist": here + "../html-manager",
                          "@jupyter-widgets/html-manager": here + "../html-manager/manager",
                          "@jupyter-widgets/base": here + "../html-manager/base",
                          "@jupyter-widgets/controls": here + "../html-manager/controls"}});
  var hub = {Queue: function (job) {
    var el = job && job[2];
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.typesetPromise(el ? [el] : undefined).catch(function () {});
    }
  }};
  function patch() {
    if (!window.MathJax) { window.MathJax = {}; }
    if (!window.MathJax.Hub) { window.MathJax.Hub = hub; }
  }
  patch();
  // A figure that a saved widget shows (an interact plot) gets an alt text, as the
  // book's other figures do.
  new MutationObserver(function () {
    document.querySelectorAll(".jupyter-widgets img:not([alt]), .widget-output img:not([alt])")
      .forEach(function (img) {
        img.alt = "Figure drawn by the interactive widget (its saved state; run the " +
                  "notebook to change it)";
      });
  }).observe(document.documentElement, {childList: true, subtree: true});
  var tries = 0, timer = setInterval(function () {   // MathJax 3 replaces the object
    patch();
    if ((window.MathJax && MathJax.typesetPromise) || ++tries > 200) { clearInterval(timer); }
  }, 50);
})();
"""


def write_widget_paths(root: Path) -> None:
    target = root / "requirejs" / "widget-paths.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(WIDGET_PATHS_JS)


if __name__ == "__main__":
    install(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/offline"))
