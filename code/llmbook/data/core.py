"""Looking sources up by name and fetching them: the functions the loaders call."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .fetching import ChecksumError, FetchError, Source, build_source, invalidate, is_cached, verify
from .sources import SOURCES


class CorruptCacheError(FetchError):
    """A cached file cannot be read (truncated or damaged); the message says how to repair."""


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


def read_json(name: str, filename: str):
    """Parse ``filename`` of source ``name`` (fetched first if needed).

    A damaged cached file (a truncated download, a full disk) raises
    :class:`CorruptCacheError` naming the file and the source, and marks the source
    incomplete, so ``fetch(name)`` (or ``python -m llmbook.data fetch NAME``) rebuilds it.
    """
    path = fetch(name) / filename
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        source = get_source(name)
        detail = f"it is not valid JSON ({err})"
        try:
            verify(source)
        except ChecksumError as mismatch:
            detail = f"{detail}; {mismatch}"
        invalidate(source)
        raise CorruptCacheError(
            f"the cached file {path} of data source {name!r} is damaged: {detail}. It is "
            f"marked incomplete: run llmbook.data.fetch({name!r}) (or `python -m "
            f"llmbook.data fetch {name}`) to fetch it again.") from None


def verify_source(name: str) -> None:
    """Re-hash the cached payload of ``name`` (raises :class:`ChecksumError`)."""
    verify(get_source(name))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
