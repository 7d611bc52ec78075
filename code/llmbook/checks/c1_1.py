"""Checks for notebook 1.1 (what a language model is)."""
from __future__ import annotations

import math

from llmbook.exercises import exercise, expect

_CASES = [
    [math.log(0.5)] * 4,                          # always 1/2 -> PPL 2
    [math.log(0.1), math.log(0.2), math.log(0.9)],
    [math.log(1.0)] * 3,                          # always certain and right -> PPL 1
    [math.log(1 / 50)] * 7,                       # uniform over 50 -> PPL 50
]


def _reference_ppl(logprobs: list[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs))


@exercise("1.1.1")
def perplexity(fn) -> None:
    """``fn(logprobs) -> float``: perplexity from natural-log probabilities."""
    got = fn([math.log(0.5)] * 4)
    expect(isinstance(got, (int, float)) or hasattr(got, "item"),
           f"return a number, not {type(got).__name__}")
    got = float(got)
    expect(not math.isclose(got, 16.0, rel_tol=1e-6),
           "four tokens each with P = 1/2 gave 16: you exponentiated the *sum* of the "
           "negative log-probabilities; average over the tokens first.")
    expect(not math.isclose(got, 0.5, rel_tol=1e-6),
           "you got 0.5 for tokens each with P = 1/2: check the sign; perplexity is "
           "exp of the *negative* mean log-probability, and it is never below 1.")
    for case in _CASES:
        want = _reference_ppl(case)
        got = float(fn(list(case)))
        if not math.isclose(got, want, rel_tol=1e-6):
            if math.isclose(got, 10 ** (-sum(case) / len(case)), rel_tol=1e-6):
                expect(False, "the log-probabilities are natural logs: undo them with "
                              "math.exp, not a power of 10.")
            expect(False, f"for {len(case)} tokens with probabilities "
                          f"{[round(math.exp(x), 3) for x in case]} the perplexity is "
                          f"{want:.4g}, you returned {got:.4g}.")


_KN_TEXT = ("the cat sat on the mat . the dog sat on the log . a cat saw the dog . "
            "the dog saw a cat on the mat .").split()


@exercise("1.1.2")
def kn_bigram(fn) -> None:
    """``fn(tokens, d) -> prob(h, w)``: the interpolated Kneser-Ney bigram model."""
    from llmbook.ngram import NGramLM

    for d in (0.75, 0.5):
        prob = fn(list(_KN_TEXT), d)
        expect(callable(prob), f"kn_bigram should return a function prob(h, w), not "
                               f"{type(prob).__name__}")
        ref = NGramLM.fit(_KN_TEXT, n=2, smoothing="kneser_ney", discount=d)
        words = sorted(set(_KN_TEXT))
        total = sum(float(prob("the", w)) for w in words + ["<unk>"])
        expect(math.isclose(total, 1.0, rel_tol=1e-6),
               f"P(w | 'the') summed over the vocabulary and <unk> gives {total:.4f}, not "
               "1: V must count <unk>, and the back-off weight d·N1+(h •)/c(h) must "
               "multiply a distribution that itself sums to 1.")
        got, want = float(prob("the", "sat")), ref.prob(["the"], "sat")
        expect(got > 0, "the pair 'the sat' never occurs, but Kneser-Ney still gives it "
                        "the back-off share: a probability above 0.")
        # 'mat' and 'log' both follow only 'the': the continuation count sees one context
        got_mat, want_mat = float(prob("a", "mat")), ref.prob(["a"], "mat")
        if not math.isclose(got_mat, want_mat, rel_tol=1e-6):
            expect(False, f"P('mat' | 'a') should be {want_mat:.5f}, got {got_mat:.5f}. The "
                          "lower order counts *distinct left neighbours* N1+(• w), not how "
                          "often w occurs, and is itself discounted and mixed with 1/V.")
        for h in words + ["zebra"]:
            for w in words + ["zebra"]:
                got, want = float(prob(h, w)), ref.prob([h], w)
                expect(math.isclose(got, want, rel_tol=1e-6),
                       f"with d={d}, P({w!r} | {h!r}) should be {want:.6f}, got {got:.6f}"
                       + (" (an unseen history backs off to P_cont(w) alone)"
                          if h == "zebra" else "")
                       + (" (an unseen word is <unk>: continuation count 0)"
                          if w == "zebra" and h != "zebra" else ""))
