"""BLEU, chrF and ROUGE from scratch against sacreBLEU, rouge-score and hand counts."""
from __future__ import annotations

import math
import random

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook.textscore import (
    ascii_tokens,
    bleu_tokenize,
    corpus_bleu,
    corpus_chrf,
    corpus_rouge,
    lcs_length,
    rouge_l,
    rouge_n,
)

# Words mixing Chinese, Latin letters, digits and the punctuation the tokenisers treat
# specially, so random sentences exercise every rule.
WORDS = ["打开", "文件", "保存", "的", "。", "，", "file", "Open", "3.5", "1,000", "x-2",
         "(a)", "&amp;", "…", "—", "e.g.", "don't", "？", "：", "Ｆ", "a", "b", "of"]


def sentence(rng: random.Random, n_max: int = 12) -> str:
    sep = rng.choice(["", " "])
    return sep.join(rng.choice(WORDS) for _ in range(rng.randint(0, n_max)))


def corpus(rng: random.Random, n: int = 8, n_refs: int = 1):
    hyps = [sentence(rng) for _ in range(n)]
    streams = [[sentence(rng) for _ in range(n)] for _ in range(n_refs)]
    return hyps, streams


@pytest.mark.parametrize("tokenize", ["13a", "zh", "char", "none"])
@pytest.mark.parametrize("n_refs", [1, 2])
def test_bleu_matches_sacrebleu_on_random_corpora(tokenize, n_refs):
    rng = random.Random(hash((tokenize, n_refs)) % 1000)
    for _ in range(60):
        hyps, streams = corpus(rng, rng.randint(1, 8), n_refs)
        want = sacrebleu.corpus_bleu(hyps, streams, tokenize=tokenize)
        refs = [list(r) for r in zip(*streams)] if n_refs > 1 else streams[0]
        got = corpus_bleu(hyps, refs, tokenize=tokenize)
        assert got.score == pytest.approx(want.score, abs=1e-9), (hyps, streams)
        assert list(got.correct) == want.counts and list(got.total) == want.totals
        assert (got.sys_len, got.ref_len) == (want.sys_len, want.ref_len)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="打开文件的。，ab .,-1(&…", max_size=14), min_size=2,
                max_size=12))
def test_bleu_and_chrf_match_sacrebleu_on_generated_text(texts):
    half = len(texts) // 2
    hyps, refs = texts[:half], texts[half:2 * half]
    for tokenize in ("13a", "zh"):
        want = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize).score
        assert corpus_bleu(hyps, refs, tokenize=tokenize).score == pytest.approx(
            want, abs=1e-9)
    want = sacrebleu.corpus_chrf(hyps, [refs]).score
    assert corpus_chrf(hyps, refs) == pytest.approx(want, abs=1e-9)


def test_tokenizers_match_sacrebleu():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh
    rng = random.Random(3)
    t13, tzh = Tokenizer13a(), TokenizerZh()
    for _ in range(500):
        s = sentence(rng)
        assert bleu_tokenize(s, "13a") == t13(s.rstrip()).split(), s
        assert bleu_tokenize(s, "zh") == tzh(s.rstrip()).split(), s
    assert bleu_tokenize("打开文件。", "13a") == ["打开文件。"]
    assert bleu_tokenize("打开 PDF 文件。", "zh") == ["打", "开", "PDF", "文", "件", "。"]
    assert bleu_tokenize("price 3.5, total 1,000.", "13a") == [
        "price", "3.5", ",", "total", "1,000", "."]


def test_bleu_by_hand():
    # hyp "a b c d", ref "a b c e": precisions 3/4, 2/3, 1/2, 0/1 -> exp smoothing turns
    # the last into 1/(2*1); same lengths, so BP = 1.
    got = corpus_bleu(["a b c d"], ["a b c e"], tokenize="none")
    assert got.correct == (3, 2, 1, 0) and got.total == (4, 3, 2, 1)
    want = 100 * math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2)
                           + math.log(1 / 2)) / 4)
    assert got.score == pytest.approx(want)
    assert corpus_bleu(["a b c d"], ["a b c e"], tokenize="none", smooth="none").score == 0
    # a short hypothesis: c = 2, r = 4 -> BP = exp(1 - 4/2) = e^-1; no 3- or 4-grams: 0
    short = corpus_bleu(["a b"], ["a b c d"], tokenize="none")
    assert short.bp == pytest.approx(math.exp(-1)) and short.score == 0.0
    # clipping: "the the the" against "the cat" matches one "the", not three
    assert corpus_bleu(["the the the"], ["the cat"], tokenize="none").correct[0] == 1
    # identical Chinese: 100 with zh, and with 13a too only because the strings are equal
    assert corpus_bleu(["打开文件"], ["打开文件"], tokenize="zh").score == pytest.approx(100)
    # one character wrong: zh gives partial credit, 13a sees one token that differs
    assert corpus_bleu(["打开文件夹"], ["打开文件"], tokenize="13a").score == 0.0
    assert corpus_bleu(["打开文件夹"], ["打开文件"], tokenize="zh").score > 50


def test_closest_reference_length_ties_go_to_the_shorter():
    got = corpus_bleu(["a b c"], [["a b", "a b c d"]], tokenize="none")
    assert got.ref_len == 2


def test_chrf_matches_sacrebleu_on_random_corpora():
    rng = random.Random(5)
    for _ in range(200):
        n_refs = rng.choice([1, 2])
        hyps, streams = corpus(rng, rng.randint(1, 6), n_refs)
        want = sacrebleu.corpus_chrf(hyps, streams).score
        refs = [list(r) for r in zip(*streams)] if n_refs > 1 else streams[0]
        assert corpus_chrf(hyps, refs) == pytest.approx(want, abs=1e-9), (hyps, streams)


def test_chrf_by_hand():
    # "ab" vs "ac": unigrams 1/2 precision and recall, bigrams 0/1: averages 1/4, 1/4
    assert corpus_chrf(["ab"], ["ac"]) == pytest.approx(25.0)
    assert corpus_chrf(["打开文件"], ["打开 文件"]) == pytest.approx(100.0)  # spaces ignored
    assert corpus_chrf([""], ["abc"]) == 0.0


def test_rouge_by_hand():
    assert rouge_n("今天天气很好", "今天天气很好") == (1.0, 1.0, 1.0)
    p, r, f = rouge_n("今天天气好", "今天天气很好", 1)       # 5 of 5, 5 of 6
    assert (p, r) == (1.0, 5 / 6) and f == pytest.approx(2 * 5 / 6 / (1 + 5 / 6))
    assert rouge_n("今天天气好", "今天天气很好", 2)[:2] == (3 / 4, 3 / 5)  # 今天 天天 天气
    assert lcs_length("ABCBDAB", "BDCABA") == 4
    assert rouge_l("a b c d", "a c d e", tokenize="whitespace")[2] == pytest.approx(0.75)
    assert ascii_tokens("今天天气很好") == [] and ascii_tokens("Hello, 世界 x2") == ["hello", "x2"]
    assert rouge_n("今天天气很好", "今天天气很好", tokenize="ascii") == (0.0, 0.0, 0.0)


def test_rouge_matches_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

    class Chars:
        def tokenize(self, text):
            return [ch for ch in text if not ch.isspace()]

    rng = random.Random(7)
    default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    chars = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=Chars())
    for _ in range(200):
        h, r = sentence(rng), sentence(rng)
        for scorer, tok in ((default, "ascii"), (chars, "char")):
            want = scorer.score(r, h)                    # rouge-score takes (target, pred)
            for name, got in (("rouge1", rouge_n(h, r, 1, tok)),
                              ("rouge2", rouge_n(h, r, 2, tok)),
                              ("rougeL", rouge_l(h, r, tok))):
                w = want[name]
                assert got == pytest.approx((w.precision, w.recall, w.fmeasure)), (h, r, name)
    # the trap: identical Chinese strings score 0 with rouge-score's default tokeniser
    assert default.score("今天天气很好", "今天天气很好")["rouge1"].fmeasure == 0.0


def test_corpus_rouge_is_the_mean_of_pairs():
    hyps, refs = ["今天天气很好", "ab"], ["今天天气好", "ab"]
    got = corpus_rouge(hyps, refs)
    assert got["rouge1"] == pytest.approx((rouge_n(hyps[0], refs[0])[2] + 1.0) / 2)
    assert set(got) == {"rouge1", "rouge2", "rougeL"}


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="hyps must be a list of strings"):
        corpus_bleu("abc", ["abc"])
    with pytest.raises(ValueError, match="same length"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="hyps is empty"):
        corpus_chrf([], [])
    with pytest.raises(ValueError, match="tokenize must be one of"):
        corpus_bleu(["a"], ["a"], tokenize="jieba")
    with pytest.raises(ValueError, match="smooth must be one of"):
        corpus_bleu(["a"], ["a"], smooth="floor")
    with pytest.raises(TypeError, match=r"hyps\[1\] must be a str"):
        corpus_bleu(["a", 3], ["a", "b"])
    with pytest.raises(ValueError, match=r"refs\[0\] must be a str or a non-empty list"):
        corpus_bleu(["a"], [[]])
    with pytest.raises(ValueError, match="max_order must be a positive int"):
        corpus_bleu(["a"], ["a"], max_order=0)
    with pytest.raises(ValueError, match="beta must be a number > 0"):
        corpus_chrf(["a"], ["a"], beta=0)
    with pytest.raises(ValueError, match="tokenize must be 'char'"):
        rouge_n("a", "a", tokenize="jieba")
    with pytest.raises(TypeError, match="ref must be a str"):
        rouge_l("a", ["a"])
    with pytest.raises(ValueError, match="one reference string"):
        corpus_rouge(["a"], [["a", "b"]])
