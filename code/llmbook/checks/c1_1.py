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


@exercise("1.1.2")
def add_k_prob(fn) -> None:
    """``fn(count_hw, count_h, V, k) -> float``: the add-k estimate of P(w | h)."""
    got = float(fn(3, 10, 5, 1.0))
    expect(not math.isclose(got, 4 / 11, rel_tol=1e-9),
           "with c(h w)=3, c(h)=10, V=5, k=1 you returned 4/11: the denominator needs k "
           "for *every* word of the vocabulary, c(h) + k·V, or the probabilities do not "
           "sum to 1.")
    expect(math.isclose(got, 4 / 15, rel_tol=1e-9),
           f"with c(h w)=3, c(h)=10, V=5, k=1 the answer is (3+1)/(10+5) = 0.2667; "
           f"you returned {got:.4g}.")
    expect(float(fn(0, 10, 5, 0.5)) > 0, "an unseen pair must get a probability above 0.")
    counts = [4, 0, 1, 0, 5]
    total = sum(float(fn(c, sum(counts), len(counts), 0.3)) for c in counts)
    expect(math.isclose(total, 1.0, rel_tol=1e-9),
           f"over a vocabulary your probabilities sum to {total:.4f}, not 1.")
