"""Checks for the exercises of notebook 4.5 (translation scores: paired bootstrap, CER)."""
from __future__ import annotations

import math
import random

from llmbook.exercises import exercise, expect
from llmbook.textscore import corpus_bleu

_CHARS = "打开文件保存关闭错误设置的"


def _sentences(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(_CHARS) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def _noisy(rng: random.Random, refs: list[str], p: float) -> list[str]:
    return ["".join(ch if rng.random() > p else rng.choice(_CHARS) for ch in r)
            for r in refs]


def _bleu(hyps: list[str], refs: list[str], idx: list[int]) -> float:
    return corpus_bleu([hyps[i] for i in idx], [refs[i] for i in idx], tokenize="zh").score


@exercise("4.5.1")
def _paired_bootstrap(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.5.1', paired_bootstrap)")
    rng = random.Random(0)
    refs = _sentences(rng, 30)
    good, bad = _noisy(rng, refs, 0.1), _noisy(rng, refs, 0.6)
    full = [list(range(30))]
    got = fn(good, bad, refs, full)
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number (the fraction of resamples A wins), got {got!r}")
    expect(got == 1.0, "on the whole test set the less noisy system A has the higher BLEU, "
                       f"so with that one resample the answer is 1.0, got {got}")
    expect(fn(bad, good, refs, full) == 0.0, "with A and B swapped, A never wins: 0.0")
    expect(fn(good, good, refs, full) == 0.0,
           "a tie is not a win: count only resamples where A's BLEU is strictly higher")
    resamples = [[rng.randrange(30) for _ in range(30)] for _ in range(40)]
    a, b = _noisy(rng, refs, 0.3), _noisy(rng, refs, 0.35)
    want = sum(_bleu(a, refs, idx) > _bleu(b, refs, idx) for idx in resamples) / 40
    mean_of_sentences = sum(
        sum(corpus_bleu([a[i]], [refs[i]], tokenize="zh").score for i in idx)
        > sum(corpus_bleu([b[i]], [refs[i]], tokenize="zh").score for i in idx)
        for idx in resamples) / 40
    got = fn(a, b, refs, resamples)
    if want != mean_of_sentences and math.isclose(got, mean_of_sentences):
        expect(False, "you compared sums or means of sentence BLEU; compute one corpus "
                      "BLEU per resample (sum the n-gram counts, then take the score)")
    expect(math.isclose(got, want), f"on 40 given resamples expected {want}, got {got}; use "
                                    "each index list as a whole test set, duplicates "
                                    "included, with tokenize='zh'")


def _edits(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        new = [i]
        for j, y in enumerate(b, 1):
            new.append(min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (x != y)))
        row = new
    return row[-1]


@exercise("4.5.2")
def _cer(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.5.2', corpus_cer)")
    got = fn(["打开文件"], ["打开文件"])
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number, got {got!r}")
    expect(got == 0, f"identical strings need no edit: CER 0, got {got}")
    expect(math.isclose(fn(["打开文档"], ["打开文件"]), 0.25),
           "one substitution in four reference characters: 0.25")
    expect(math.isclose(fn(["打开"], ["打开文件"]), 0.5),
           "two deletions (文, 件) over four reference characters: 0.5")
    expect(math.isclose(fn(["打开文件夹"], ["打开文件"]), 0.25),
           "one insertion (夹) over four reference characters: 0.25")
    expect(math.isclose(fn(["件文"], ["文件"]), 1.0),
           "swapping two characters costs two edits (Levenshtein has no transposition): 1.0")
    got = fn(["错", "打开文件保存"], ["错误", "打开文件保存"])
    expect(math.isclose(got, 1 / 8), "sum the edits over the corpus (1) and divide by all "
                                     f"reference characters (8): 0.125, got {got}; the mean "
                                     "of per-sentence rates would be 0.25")
    expect(math.isclose(fn(["a b"], ["ab"]), 0.5), "spaces are characters too: 'a b' is one "
                                                   "insertion from 'ab', over 2: 0.5")
    rng = random.Random(2)
    for _ in range(30):
        refs = _sentences(rng, 5)
        hyps = _sentences(rng, 5)
        want = sum(_edits(h, r) for h, r in zip(hyps, refs)) / sum(map(len, refs))
        got = fn(hyps, refs)
        expect(math.isclose(got, want), f"on hyps {hyps} and refs {refs} expected {want:.4f},"
                                        f" got {got}")
