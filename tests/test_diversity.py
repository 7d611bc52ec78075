"""Text metrics: distinct-n, repetition rate, n-gram copy rate."""
from __future__ import annotations

import pytest
import torch
from llmbook.diversity import NgramIndex, copy_rate, distinct_n, ngrams, repetition_rate, words


def test_words_splits_punctuation_and_lowercases():
    assert words("Yes, sir. I don't know!") == ["yes", ",", "sir", ".", "i", "don't", "know",
                                                "!"]
    assert words("Emma", lower=False) == ["Emma"]


def test_ngrams():
    assert ngrams([1, 2, 3, 4], 2) == [(1, 2), (2, 3), (3, 4)]
    assert ngrams([1, 2], 3) == []
    assert ngrams(torch.tensor([5, 6, 7]), 3) == [(5, 6, 7)]


def test_distinct_n_by_hand():
    # 2-grams: (a b) (b a) (a b) | (a b) (b c): 5 in all, 3 distinct
    assert distinct_n([list("abab"), list("abc")], 2) == pytest.approx(3 / 5)
    assert distinct_n([list("abcdef")], 1) == 1.0
    assert distinct_n([[7] * 10], 1) == pytest.approx(0.1)


def test_distinct_n_pools_across_samples():
    same = [list("abcd")] * 4
    assert distinct_n(same, 2) == pytest.approx(0.25)     # each sample alone would be 1.0


def test_repetition_rate():
    assert repetition_rate(list("abcdefgh"), 2) == 0.0
    loop = list("xyz" * 10)
    assert repetition_rate(loop, 3) == pytest.approx((28 - 3) / 28)


def test_copy_rate_finds_verbatim_spans():
    reference = words("it is a truth universally acknowledged that a single man in "
                      "possession of a good fortune must be in want of a wife")
    index = NgramIndex(reference, n=4)
    copied = words("a truth universally acknowledged")            # 1 four-gram, copied
    new = words("a truth rarely acknowledged by anyone")          # 3 four-grams, none copied
    assert copy_rate([copied], index) == 1.0
    assert copy_rate([new], index) == 0.0
    assert copy_rate([copied, new], index) == pytest.approx(1 / 4)
    assert ("a", "single", "man", "in") in index
    assert ("a", "single", "man") not in index                    # wrong length
    assert len(index) == len(set(ngrams(reference, 4)))


def test_copy_rate_on_token_ids():
    ref = torch.arange(100)
    index = NgramIndex(ref, n=8)
    assert copy_rate([torch.arange(10, 30)], index) == 1.0
    assert copy_rate([torch.arange(10, 30).flip(0)], index) == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="n must be"):
        distinct_n([[1, 2]], 0)
    with pytest.raises(ValueError, match="undefined"):
        distinct_n([[1, 2]], 3)
    with pytest.raises(TypeError, match="not a str"):
        distinct_n(["some text"], 1)
    with pytest.raises(TypeError, match="samples must be"):
        distinct_n("text", 1)
    with pytest.raises(ValueError, match="empty"):
        distinct_n([], 1)
    with pytest.raises(ValueError, match="fewer than n"):
        NgramIndex([1, 2, 3], n=8)
    with pytest.raises(TypeError, match="NgramIndex"):
        copy_rate([[1, 2]], {(1, 2)})
    with pytest.raises(ValueError, match="fewer than n"):
        repetition_rate([1, 2], 4)
