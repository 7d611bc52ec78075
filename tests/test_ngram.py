"""Tests of llmbook.ngram: probabilities sum to one, hand-computed values, errors."""
from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from llmbook.ngram import UNK, NGramLM, detokenize, word_tokens

TOY = ["the", "cat", "sat", "on", "the", "mat", ".", "the", "dog", "sat", "on", "the", "log", "."]


@pytest.mark.parametrize("smoothing", ["add_k", "kneser_ney"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_distribution_sums_to_one_and_matches_prob(smoothing, n):
    lm = NGramLM.fit(TOY, n=n, smoothing=smoothing, k=0.5)
    for context in [[], ["the"], ["sat", "on", "the"], ["never", "seen"], ["on", "the"]]:
        p = lm.distribution(context)
        assert p.shape == (len(lm.vocab),)
        assert np.all(p > 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        for tok in ["the", "mat", "zebra"]:
            assert lm.prob(context, tok) == pytest.approx(p[lm.stoi.get(tok, lm.unk_id)])


def test_add_k_bigram_by_hand():
    lm = NGramLM.fit(TOY, n=2, smoothing="add_k", k=1.0)
    V = len(set(TOY)) + 1  # + UNK
    assert len(lm.vocab) == V
    # "the" is followed by cat, mat, dog, log: 4 times in total, "cat" once
    assert lm.prob(["the"], "cat") == pytest.approx((1 + 1) / (4 + V))
    assert lm.prob(["the"], "sat") == pytest.approx((0 + 1) / (4 + V))
    # only the last token of the context matters for a bigram model
    assert lm.prob(["dog", "sat", "on", "the"], "cat") == lm.prob(["the"], "cat")


def test_kneser_ney_bigram_by_hand():
    d = 0.75
    lm = NGramLM.fit(TOY, n=2, smoothing="kneser_ney", discount=d)
    V = len(lm.vocab)
    # unigram level: continuation counts N1+(. w) over the number of distinct bigram types
    bigram_types = len(set(pairwise(TOY)))
    cont = {w: len({a for a, b in pairwise(TOY) if b == w}) for w in set(TOY)}
    distinct_words = len(cont) - (0 if TOY[0] in {b for b in TOY[1:]} else 1)
    p_uni_cat = (cont["cat"] - d) / bigram_types + d * distinct_words / bigram_types / V
    # bigram level: "the" seen 4 times with 4 distinct followers
    expected = (1 - d) / 4 + d * 4 / 4 * p_uni_cat
    assert lm.prob(["the"], "cat") == pytest.approx(expected)


def test_perplexity_of_uniform_model_is_vocab_size():
    lm = NGramLM.fit(TOY, n=1, smoothing="add_k", k=1e9)
    assert lm.perplexity(TOY) == pytest.approx(len(lm.vocab), rel=1e-6)


def test_perplexity_is_exp_of_mean_nll_and_handles_unknown_words():
    lm = NGramLM.fit(TOY, n=2, smoothing="kneser_ney")
    text = ["the", "zebra", "sat", "on", "the", "mat", "."]
    logps = lm.token_logprobs(text)
    assert len(logps) == len(text) - 1
    assert lm.perplexity(text) == pytest.approx(math.exp(-sum(logps) / len(logps)))
    assert math.isfinite(lm.perplexity(text))
    assert lm.encode(["zebra"]) == [lm.stoi[UNK]]


def test_higher_order_memorises_training_text():
    tokens = word_tokens("It is a truth universally acknowledged, that a single man in "
                         "possession of a good fortune, must be in want of a wife.") * 3
    ppl = [NGramLM.fit(tokens, n=n, smoothing="kneser_ney").perplexity(tokens)
           for n in (1, 2, 3)]
    assert ppl[0] > ppl[1] > ppl[2]


def test_sample_is_reproducible_and_in_vocab():
    lm = NGramLM.fit(TOY, n=2, smoothing="kneser_ney")
    a = lm.sample(20, context=["the"], seed=3)
    assert a == lm.sample(20, context=["the"], seed=3)
    assert len(a) == 20 and all(tok in lm.stoi and tok != UNK for tok in a)
    cold = lm.sample(1, context=["sat"], temperature=1e-3, seed=0)
    assert cold == ["on"]  # "sat" is always followed by "on": near-greedy picks it


def test_characters_as_tokens():
    lm = NGramLM.fit("abracadabra", n=3, smoothing="kneser_ney")
    assert set(lm.vocab) == set("abrcd") | {UNK}
    assert lm.prob("ab", "r") > lm.prob("ab", "d")


def test_word_tokens_and_detokenize():
    assert word_tokens("Mr. Darcy's \u2019tis _very_ fine, Mrs. Smith.") == [
        "mr.", "darcy's", "tis", "very", "fine", ",", "mrs.", "smith", "."]
    assert detokenize(["she", "smiled", ",", "and", "left", "."]) == "she smiled, and left."
    with pytest.raises(TypeError, match="str"):
        word_tokens(["not", "a", "string"])


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "positive int"),
    ({"n": 2, "smoothing": "good_turing"}, "unknown smoothing"),
    ({"n": 2, "k": 0.0}, "k > 0"),
    ({"n": 2, "smoothing": "kneser_ney", "discount": 1.5}, "discount"),
    ({"n": 50}, "at least n=50"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramLM.fit(TOY, **kwargs)


def test_bad_generation_and_scoring_arguments():
    lm = NGramLM.fit(TOY, n=3)
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(5, temperature=0.0)
    with pytest.raises(ValueError, match="n_tokens"):
        lm.sample(-1)
    with pytest.raises(ValueError, match="at least n=3"):
        lm.perplexity(["the", "cat"])
