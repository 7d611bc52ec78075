"""BPE at scale: long runs without whitespace, a bounded cache, streaming encoding that
equals encoding the joined text, and training from an iterable of texts or files."""
from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.tokenizers import ENDOFTEXT, BPETokenizer, _merge

SAMPLE = ("It's a truth universally acknowledged, that a single man in possession of a good "
          "fortune, must be in want of a wife.\n\n\nHowever little known   the feelings "
          f"{ENDOFTEXT}or views of such a man may be... 他们说'll 123 4567 \t\r\n  ok")


@pytest.fixture(scope="module")
def gpt2() -> BPETokenizer:
    from llmbook import data

    return BPETokenizer.from_gpt2(*data.gpt2_bpe_files())


@pytest.fixture(scope="module")
def small() -> BPETokenizer:
    rng = random.Random(0)
    words = ["the", "then", "there", "aaaa", "ab", "abab", "ing", "'s", "\n\n", "  "]
    return BPETokenizer.train(" ".join(rng.choice(words) for _ in range(3000)), 320)


def reference_bpe(tok: BPETokenizer, word: bytes) -> list[bytes]:
    """The definition: rescan all pairs, merge every occurrence of the best-ranked one."""
    parts = [bytes([b]) for b in word]
    while len(parts) > 1:
        ranked = [(tok._ranks.get(p, len(tok._ranks)), i)
                  for i, p in enumerate(itertools.pairwise(parts))]
        rank, _ = min(ranked)
        if rank == len(tok._ranks):
            break
        best = tok.merges[rank]
        parts = _merge(parts, best, best[0] + best[1])
    return parts


WORDS = st.text(alphabet=st.sampled_from("ab theingrs'\n😀中"), min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(word=WORDS)
def test_fast_bpe_equals_the_definition(small, gpt2, word):
    raw = word.encode("utf-8")
    for tok in (small, gpt2):
        assert tok.bpe(raw) == reference_bpe(tok, raw)


class CountingRanks(dict):
    calls = 0

    def get(self, key, default=None):
        CountingRanks.calls += 1
        return super().get(key, default)


def test_bpe_work_grows_like_n_log_n_not_n_squared(gpt2):
    """Counted rank look-ups (not time) for runs of 2,000 and 16,000 letters."""
    tok = BPETokenizer(gpt2.vocab, gpt2.merges, gpt2.special_tokens)
    tok._ranks = CountingRanks(tok._ranks)
    rng = random.Random(0)
    counts = []
    for n in (2000, 16000):
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
        CountingRanks.calls = 0
        assert tok.decode(tok.encode(word)) == word
        counts.append(CountingRanks.calls)
    assert counts[1] / counts[0] < 8 * 1.5        # n log n: ~9; n^2 would be 64


def test_word_cache_is_bounded(small):
    tok = BPETokenizer(small.vocab, small.merges, small.special_tokens)
    tok.cache_size = 50
    rng = random.Random(1)
    for _ in range(400):
        tok.encode(" " + "".join(rng.choice("abcdefgh") for _ in range(8)))
        assert len(tok._cache) <= 50
    tok.encode("x" * 1000)                         # a very long pre-token is not kept
    assert "x" * 1000 not in tok._cache
    assert tok.encode(" the then") == small.encode(" the then")


# ------------------------------------------------------------------- streaming
PIECES = st.lists(st.sampled_from(["\n", "\n\n", " ", "  ", "a", "bc", "'", "s", "ll",
                                   "<|end", "oftext|>", ENDOFTEXT, "<", "|", "1", "23",
                                   "中文", "😀", "\t", "x y", "."]), max_size=30)


@settings(max_examples=150, deadline=None)
@given(pieces=PIECES)
def test_encode_iterable_equals_encode_of_the_joined_text(gpt2, small, pieces):
    for tok in (gpt2, small):
        assert list(tok.encode_iterable(pieces)) == tok.encode("".join(pieces))


def test_encode_iterable_over_lines_with_repeated_blank_lines(gpt2, tmp_path):
    text = "one\n\n\n\ntwo  \n \n\nthree'\ns" + ENDOFTEXT + "\n\n" + SAMPLE * 3
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    with open(path, encoding="utf-8", newline="") as f:
        assert list(gpt2.encode_iterable(f)) == gpt2.encode(text)
    naive = [i for line in text.splitlines(keepends=True) for i in gpt2.encode(line)]
    assert naive != gpt2.encode(text)            # why a streaming encoder needs care
    with pytest.raises(TypeError, match="iterable of str pieces"):
        list(gpt2.encode_iterable("a whole string"))
    with pytest.raises(TypeError, match="expected text as str"):
        list(gpt2.encode_iterable(["ok", b"bytes"]))


# -------------------------------------------------------------------- training
def test_train_from_an_iterable_of_texts_and_files(tmp_path):
    docs = [f"doc {i}: " + " ".join(["the", "then", "there"] * (i + 1)) for i in range(20)]
    paths = []
    for i, d in enumerate(docs):
        paths.append(tmp_path / f"{i}.txt")
        paths[-1].write_text(d, encoding="utf-8")
    from_list = BPETokenizer.train(docs, 300)
    from_gen = BPETokenizer.train((d for d in docs), 300)
    from_files = BPETokenizer.train(paths, 300)
    assert from_list.merges == from_gen.merges == from_files.merges
    # Documents are pre-tokenized separately; with a separator that is a pre-token
    # boundary anyway (a newline before a letter) the joined string learns the same.
    joined = BPETokenizer.train("\n".join(docs), 300)
    newline_free = BPETokenizer.train([d + "\n" for d in docs], 300)
    assert joined.merges[:10] == newline_free.merges[:10]
    assert BPETokenizer.train(docs[0], 300).merges == BPETokenizer.train([docs[0]], 300).merges
    with pytest.raises(TypeError, match=r"text\[1\] must be a str or a path"):
        BPETokenizer.train(["ok", 3], 300)
    with pytest.raises(ValueError, match="was empty"):
        BPETokenizer.train([], 300)
    with pytest.raises(TypeError, match="must be a str or an iterable"):
        BPETokenizer.train(b"bytes", 300)
