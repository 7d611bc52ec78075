"""A damaged data cache is named clearly and repaired by fetch: truncated payloads,
same-size corruption, broken markers, and markers written before sizes were kept."""
from __future__ import annotations

import hashlib
import json

import pytest
from llmbook import data
from llmbook.data import core
from llmbook.data.fetching import MARKER, Source

PAYLOAD = json.dumps({"Emma": "It was a truth " * 50}).encode()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path / "cache"))
    calls: list = []

    def build(src, work, out):
        calls.append(1)
        (out / "book.json").write_bytes(PAYLOAD)

    src = Source("fakebook", "a fake source for tests", "CC0", "npm", "fakebook", "1.0", build,
                 payload_sha256={"book.json": hashlib.sha256(PAYLOAD).hexdigest()})
    monkeypatch.setitem(data.SOURCES, "fakebook", src)
    return src, calls


def test_a_truncated_payload_is_fetched_again(fake):
    _, calls = fake
    path = data.fetch("fakebook") / "book.json"
    path.write_bytes(PAYLOAD[: len(PAYLOAD) // 2])           # an interrupted copy
    assert not data.is_cached(data.get_source("fakebook"))
    assert core.read_json("fakebook", "book.json") == json.loads(PAYLOAD)
    assert len(calls) == 2


def test_same_size_damage_is_a_clear_error_and_fetch_repairs_it(fake):
    _, calls = fake
    path = data.fetch("fakebook") / "book.json"
    path.write_bytes(b"{" + b"x" * (len(PAYLOAD) - 1))
    with pytest.raises(core.CorruptCacheError) as info:
        core.read_json("fakebook", "book.json")
    msg = str(info.value)
    assert "book.json" in msg and "'fakebook'" in msg and "not valid JSON" in msg
    assert "checksum mismatch" in msg and "fetch" in msg
    assert core.read_json("fakebook", "book.json") == json.loads(PAYLOAD)   # repaired
    assert len(calls) == 2


def test_a_broken_marker_means_not_cached(fake):
    _, calls = fake
    d = data.fetch("fakebook")
    (d / MARKER).write_text('{"name": "fakeb')
    data.fetch("fakebook")
    assert len(calls) == 2 and json.loads((d / MARKER).read_text())["sizes"]


def test_an_old_marker_without_sizes_is_verified_once_and_upgraded(fake):
    src, calls = fake
    d = data.fetch("fakebook")
    marker = json.loads((d / MARKER).read_text())
    del marker["sizes"]
    (d / MARKER).write_text(json.dumps(marker))
    assert data.is_cached(src) and len(calls) == 1
    assert json.loads((d / MARKER).read_text())["sizes"] == {"book.json": len(PAYLOAD)}
    (d / MARKER).write_text(json.dumps(marker))               # sizes gone again
    (d / "book.json").write_bytes(b"x" * len(PAYLOAD))       # old marker, damaged file
    assert not data.is_cached(src)
    data.fetch("fakebook")
    assert len(calls) == 2 and (d / "book.json").read_bytes() == PAYLOAD
