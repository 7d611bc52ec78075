"""Looking sources up by name and fetching them: the functions the loaders call."""
from __future__ import annotations

import time
from pathlib import Path

from .fetching import Source, build_source, is_cached, verify
from .sources import SOURCES


class UnknownSourceError(KeyError):
    """A source name that is not in :data:`SOURCES`."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


def get_source(name: str) -> Source:
    """The registry entry for ``name``; :class:`UnknownSourceError` lists the known ones."""
    if name not in SOURCES:
        raise UnknownSourceError(
            f"unknown data source {name!r}; known sources: {', '.join(SOURCES)}")
    return SOURCES[name]


def fetch(name: str) -> Path:
    """Make source ``name`` present in the cache and return its directory.

    Idempotent: when the cache is complete nothing touches the network. A fresh fetch
    builds in a temporary directory, verifies the SHA-256 sums (raising
    :class:`ChecksumError` naming the file and both hashes) and renames the directory
    into place; a file lock makes concurrent fetches of the same source safe. For
    sources already on disk (``python_stdlib``, ``ui_translations``) returns their path.
    """
    source = get_source(name)
    if source.method == "local":
        assert source.locate is not None
        return source.locate()
    return build_source(source)


def fetch_all(names: list[str] | None = None, verbose: bool = False) -> dict[str, Path]:
    """Fetch every source (or ``names``) in registry order; returns name -> directory."""
    out = {}
    for name in names or list(SOURCES):
        source = get_source(name)
        was_cached = is_cached(source)
        start = time.time()
        out[name] = fetch(name)
        if verbose:
            size = _du(out[name]) if source.method != "local" else 0
            state = "cached" if was_cached else f"fetched in {time.time() - start:.1f} s"
            print(f"{name:16s} {size / 1e6:8.1f} MB  {state}  {out[name]}")
    return out


def verify_source(name: str) -> None:
    """Re-hash the cached payload of ``name`` (raises :class:`ChecksumError`)."""
    verify(get_source(name))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
