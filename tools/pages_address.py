"""Where the book is published: ``html.baseurl`` in _config.yml, the one place to change it.

Usage: python tools/pages_address.py             prints the address
       python tools/pages_address.py --cname DIR writes DIR/CNAME for a custom domain
                                                 (nothing for a *.github.io address)
"""
from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent


def address(config: Path = ROOT / "_config.yml") -> str:
    """The published address; a clear error if _config.yml has none or a bad one."""
    url = (yaml.safe_load(config.read_text()).get("html") or {}).get("baseurl", "")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise SystemExit(f"html.baseurl in {config} must be an https:// address, got {url!r}")
    return url


def cname(url: str) -> str | None:
    """The custom domain GitHub Pages needs in a CNAME file (None for *.github.io)."""
    host = urlsplit(url).netloc
    return None if host.endswith(".github.io") else host


if __name__ == "__main__":
    url = address()
    if sys.argv[1:2] == ["--cname"]:
        domain = cname(url)
        if domain:
            (Path(sys.argv[2]) / "CNAME").write_text(domain + "\n")
            print(f"CNAME: {domain}")
        else:
            print(f"{url} is a github.io address: no CNAME needed")
    else:
        print(url)
