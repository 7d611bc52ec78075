"""Checks for the exercises of notebook 4.7 (calibration on the inputs, a hand-over threshold)."""
from __future__ import annotations

import math

import numpy as np

from llmbook.exercises import exercise, expect


def _norm(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@exercise("4.7.1")
def _calibrate_by_mean(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.7.1', calibrate_by_mean)")
    p = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.8, 0.2]])
    got = np.asarray(fn(np.log(p)))
    expect(got.shape == (4,), f"return one label per input, shape (4,), got {got.shape}")
    expect(np.issubdtype(got.dtype, np.integer), f"return integer labels, got dtype {got.dtype}")
    expect(got.tolist() == [0, 1, 1, 0],
           "with p = (0.9, 0.1), (0.7, 0.3), (0.6, 0.4), (0.8, 0.2) the mean is (0.75, 0.25); "
           f"dividing by it gives labels [0, 1, 1, 0], got {got.tolist()}: every input "
           "prefers label 0, but the 2nd and 3rd less than the average input does")
    flat = np.log(np.array([[0.7, 0.3], [0.3, 0.7]]))
    expect(np.asarray(fn(flat)).tolist() == [0, 1],
           "when the mean distribution is uniform, calibration changes nothing: plain argmax")
    # log-probabilities of label words do not sum to 1 over the labels: renormalise
    rng = np.random.default_rng(0)
    shifted = np.log(p) - rng.uniform(0, 4, (4, 1))
    expect(np.asarray(fn(shifted)).tolist() == [0, 1, 1, 0],
           "the label words' log-probabilities cover only part of the vocabulary, so "
           "renormalise each row over the labels (a softmax) before averaging; shifting "
           "a row's log-probabilities by a constant must not change the answer")
    for C in (2, 3, 5):
        lp = np.log(rng.dirichlet(np.ones(C), size=40)) - rng.uniform(0, 4, (40, 1))
        q = _norm(lp)
        want = np.argmax(q / q.mean(axis=0), axis=-1)
        got = np.asarray(fn(lp))
        expect(got.tolist() == want.tolist(),
               f"on 40 random inputs with {C} labels, {int((got != want).sum())} labels "
               "differ from softmax(logp) / mean over the inputs of softmax(logp), argmax "
               "per row")


def _reference(scores, correct, max_wrong) -> float:
    best, best_key = math.inf, (0, math.inf)
    for t in sorted(set(scores.tolist())) + [math.inf]:
        answered = scores >= t
        wrong = (answered & ~correct).sum() / len(scores)
        key = (int((answered & correct).sum()), t)
        if wrong <= max_wrong and key > best_key:
            best, best_key = t, key
    return best


@exercise("4.7.2")
def _pick_threshold(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.7.2', pick_threshold)")
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    correct = np.array([True, True, False, True, False])
    in_scope = np.array([True, True, True, True, False])
    got = fn(scores, correct, in_scope, 0.0)
    expect(isinstance(got, (int, float, np.floating)) and not isinstance(got, bool),
           f"return the threshold, a number, got {got!r}")
    expect(float(got) == 4.0, "with no wrong answer allowed, answer only the scores >= 4.0 "
                              f"(two right answers); got {got}")
    got = fn(scores, correct, in_scope, 0.2)
    expect(float(got) == 2.0, "with 20 % wrong allowed (1 of 5), answering down to 2.0 "
                              f"resolves three queries with one wrong; got {got}")
    got = fn(scores, correct, in_scope, 1.0)
    expect(float(got) == 2.0, "answering down to 1.0 adds only a wrong answer: same "
                              "containment, so the higher threshold 2.0 wins the tie; "
                              f"got {got}")
    got = fn(np.array([3.0, 2.0]), np.array([False, False]), np.array([False, False]), 0.0)
    expect(math.isinf(got), "when every answer would be wrong, the threshold is inf "
                            f"(hand everything over); got {got}")
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = int(rng.integers(3, 25))
        s = np.round(rng.uniform(0, 5, n), 1)
        c = rng.random(n) < 0.6
        limit = float(rng.choice([0.0, 0.05, 0.1, 0.3]))
        want = _reference(s, c, limit)
        got = fn(s, c, c | (rng.random(n) < 0.5), limit)
        expect(float(got) == want, f"scores {s.tolist()}, correct {c.astype(int).tolist()}, "
                                   f"max_wrong {limit}: expected {want}, got {got}")
