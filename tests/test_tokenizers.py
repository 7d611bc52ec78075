"""Tokenizers: GPT-2 id parity, trained BPE vs Hugging Face, round trips, errors."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.tokenizers import ENDOFTEXT, BPETokenizer, CharTokenizer

SAMPLES = [
    "Hello world, the quick brown fox.",
    "def square(x: int) -> int:\n    return x ** 2  # 平方\n\n\tprint('done')\r\n",
    "今天天气很好，我们去公园散步吧。《红楼梦》第一回",
    "emoji 🎉🚀 family 👩‍👩‍👧 flags 🇫🇷  trailing   ",
    "I'm sure they'll say it's 3.14159 — DON'T panic!",
    f"one{ENDOFTEXT}two {ENDOFTEXT} three",
]

def _corpus(n_words: int = 6000, seed: int = 0) -> str:
    """A seeded mix of English-like words, Chinese characters, emoji and code."""
    rng = random.Random(seed)
    syllables = ["th", "e", "an", "in", "re", "on", "er", "st", "ou", "al", "ing", "tion"]
    hanzi, emoji = "今天气很好我们去公园散步吧的是了不在人有", "🎉🚀😀👍"
    words = []
    for _ in range(n_words):
        kind = rng.random()
        if kind < 0.8:
            words.append("".join(rng.choices(syllables, k=rng.randint(1, 4))))
        elif kind < 0.93:
            words.append("".join(rng.choices(hanzi, k=rng.randint(1, 3))))
        elif kind < 0.97:
            words.append(rng.choice(emoji))
        else:
            words.append(rng.choice(["def f(x):\n    return x", "x = [1, 2, 3]", "\n\n"]))
    return " ".join(words)


CORPUS = _corpus()


@pytest.fixture(scope="module")
def gpt2() -> BPETokenizer:
    from llmbook import data

    encoder_json, vocab_bpe = data.gpt2_bpe_files()
    return BPETokenizer.from_gpt2(encoder_json, vocab_bpe)


@pytest.fixture(scope="module")
def gpt2_reference():
    from llmbook import data
    from tokenizers import ByteLevelBPETokenizer

    encoder_json, vocab_bpe = data.gpt2_bpe_files()
    ref = ByteLevelBPETokenizer(str(encoder_json), str(vocab_bpe))
    ref.add_special_tokens([ENDOFTEXT])
    return ref


@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    return BPETokenizer.train(CORPUS, vocab_size=400)


# ------------------------------------------------------------------------- GPT-2
def test_gpt2_known_ids(gpt2):
    assert gpt2.encode("Hello world, the quick brown fox.") == [
        15496, 995, 11, 262, 2068, 7586, 21831, 13]
    assert gpt2.vocab_size == 50257
    assert len(gpt2.merges) == 50000
    assert gpt2.encode(ENDOFTEXT) == [50256]


@pytest.mark.parametrize("text", SAMPLES)
def test_gpt2_matches_reference(gpt2, gpt2_reference, text):
    assert gpt2.encode(text) == gpt2_reference.encode(text).ids
    assert gpt2.decode(gpt2.encode(text)) == text


def test_gpt2_matches_reference_on_source_code(gpt2, gpt2_reference):
    import inspect

    import llmbook.tokenizers as module

    text = inspect.getsource(module)
    assert gpt2.encode(text) == gpt2_reference.encode(text).ids


# --------------------------------------------------------------------- training
def test_trained_vocab_layout(trained):
    assert trained.vocab_size == 400
    assert trained.special_tokens == {ENDOFTEXT: 399}
    assert len(trained.merges) == 400 - 256 - 1
    for i in range(256):
        assert trained.vocab[i] == bytes([i])
    for k, (a, b) in enumerate(trained.merges):  # each merge makes the next id
        assert trained.vocab[256 + k] == a + b


def test_first_merge_is_most_frequent_pair():
    # pre-tokens "abab", " ab": pairs ab x3, ba x1, " a" x1
    tok = BPETokenizer.train("abab ab", vocab_size=257, special_tokens=())
    assert tok.merges == [(b"a", b"b")]


def test_ties_follow_printable_alphabet():
    # pre-tokens "ab", " ba": ab, " b", ba each once. In raw bytes " " (32) sorts first,
    # but in GPT-2's printable alphabet a space is "Ġ" (U+0120), after the letters.
    tok = BPETokenizer.train("ab ba", vocab_size=257, special_tokens=())
    assert tok.merges == [(b"a", b"b")]


def test_training_compresses(trained):
    text = CORPUS[:2000]
    assert len(trained.encode(text)) < 0.5 * len(text.encode("utf-8"))


def test_trained_matches_huggingface_trainer():
    """Same text, same vocab size: Hugging Face's BPE trainer learns the same merges."""
    from tokenizers import ByteLevelBPETokenizer

    vocab_size = 420
    mine = BPETokenizer.train(CORPUS, vocab_size=vocab_size)
    hf = ByteLevelBPETokenizer(add_prefix_space=False)
    hf.train_from_iterator([CORPUS], vocab_size=vocab_size, min_frequency=0,
                           special_tokens=[ENDOFTEXT], show_progress=False)
    hf_merges = json.loads(hf._tokenizer.to_str())["model"]["merges"]
    hf_merges = [m.split(" ") if isinstance(m, str) else m for m in hf_merges]
    assert [(_printable(a), _printable(b)) for a, b in mine.merges] == [tuple(m) for m in hf_merges]
    assert hf.get_vocab_size() == mine.vocab_size
    probe = "A single man, 今天 🎉 return f(x)"
    assert len(mine.encode(probe)) == len(hf.encode(probe).ids)


def _printable(token: bytes) -> str:
    from llmbook.tokenizers import bytes_to_unicode

    return "".join(bytes_to_unicode()[b] for b in token)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_trained_round_trips_any_text(trained, text):
    assert trained.decode(trained.encode(text)) == text


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("今天气很好我们 🎉🚀👩‍ab\n")))
def test_trained_round_trips_chinese_and_emoji(trained, text):
    assert trained.decode(trained.encode(text)) == text


def test_save_load_round_trip(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    again = BPETokenizer.load(path)
    assert again.merges == trained.merges
    assert again.vocab == trained.vocab
    assert again.special_tokens == trained.special_tokens
    for text in SAMPLES:
        assert again.encode(text) == trained.encode(text)


def test_special_token_is_one_id(trained):
    ids = trained.encode(f"a{ENDOFTEXT}b")
    assert ids.count(trained.special_tokens[ENDOFTEXT]) == 1
    assert trained.decode(ids) == f"a{ENDOFTEXT}b"


def test_training_ignores_specials_inside_text():
    text = f"hello{ENDOFTEXT}world" * 50
    tok = BPETokenizer.train(text, vocab_size=300)
    merged = {a + b for a, b in tok.merges}
    assert not any(b"|>" in m or b"<|" in m for m in merged)


# ------------------------------------------------------------------------- chars
def test_char_tokenizer_round_trip():
    tok = CharTokenizer("hello 世界")
    assert tok.vocab_size == 7
    assert tok.decode(tok.encode("hello 世界")) == "hello 世界"
    assert tok.encode("eh") == [tok.stoi["e"], tok.stoi["h"]]


# -------------------------------------------------------------------- bad input
def test_char_unknown_character_is_named():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("abz")


def test_char_id_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        CharTokenizer("abc").decode([0, 3])


def test_char_needs_text():
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")


def test_bpe_rejects_non_text(trained):
    with pytest.raises(TypeError, match="str"):
        trained.encode(b"bytes")  # type: ignore[arg-type]


def test_bpe_decode_rejects_bad_ids(trained):
    with pytest.raises(ValueError, match="out of range"):
        trained.decode([1, trained.vocab_size])
    with pytest.raises(ValueError, match="out of range"):
        trained.decode([-1])
    with pytest.raises(TypeError, match="ints"):
        trained.decode([1.5])  # type: ignore[list-item]


def test_bpe_train_rejects_tiny_vocab():
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("abc", vocab_size=100)


def test_load_rejects_foreign_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a saved"):
        BPETokenizer.load(path)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_gpt2_matches_reference_on_any_text(gpt2, gpt2_reference, text):
    assert gpt2.encode(text) == gpt2_reference.encode(text).ids
    assert gpt2.decode(gpt2.encode(text)) == text
