"""Checks for the exercises of notebook 4.2 (text classification)."""
from __future__ import annotations

import math
import random

from llmbook.exercises import exercise, expect


@exercise("4.2.1")
def _max_loss(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.2.1', max_loss_if_correct)")
    got = fn(5)
    expect(isinstance(got, float | int), "return a number (nats)")
    if abs(got - math.log(10)) < 1e-6:
        expect(False, "ln 10 belongs to ten classes; the bound depends on C")
    expect(abs(got - math.log(5)) < 1e-6,
           "if the true class has the largest probability it has at least 1/C")
    for C in (2, 3, 10, 1000):
        expect(abs(fn(C) - math.log(C)) < 1e-6, f"the bound must hold for every C (C={C})")


def _reference(probs, labels, target):
    for t in sorted(set(probs)):
        flagged = [y for p, y in zip(probs, labels) if p >= t]
        if flagged and sum(flagged) / len(flagged) >= target:
            return t
    return None


@exercise("4.2.2")
def _threshold(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.2.2', threshold_for_precision)")
    probs, labels = [0.1, 0.4, 0.6, 0.8, 0.9], [0, 1, 0, 1, 1]
    got = fn(probs, labels, 0.75)
    expect(got is not None, "flagging the two or three most probable e-mails reaches 0.75")
    expect(abs(got - 0.4) < 1e-9, "at t = 0.4 four e-mails are flagged and 3 of 4 are spam; "
                                  "return the smallest threshold that reaches the target")
    expect(fn(probs, [0, 0, 0, 0, 0], 0.5) is None, "return None when no threshold works")
    rng = random.Random(0)
    for _ in range(40):
        p = [round(rng.random(), 2) for _ in range(30)]
        y = [int(rng.random() < q) for q in p]
        want, got = _reference(p, y, 0.8), fn(p, y, 0.8)
        expect((want is None and got is None) or (
            want is not None and got is not None and abs(got - want) < 1e-9),
            f"expected {want}, got {got} on a random case")
