"""Checks for the exercises of notebook 4.3 (named entities, BIO tags, entity F1)."""
from __future__ import annotations

import random

from llmbook.exercises import exercise, expect
from llmbook.metrics import bio_entities

_TAGS = ["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def _random_tags(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(_TAGS) for _ in range(n)]


def _is_valid(tags: list[str]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


@exercise("4.3.1")
def _repair(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.3.1', repair_bio)")
    got = fn(["I-PER", "I-PER", "O"])
    expect(isinstance(got, list) and len(got) == 3,
           "return a list of tags as long as the input")
    expect(got == ["B-PER", "I-PER", "O"],
           "an I-PER that does not continue a PER starts one: it becomes B-PER")
    got = fn(["B-LOC", "I-ORG", "I-ORG"])
    expect(got == ["B-LOC", "B-ORG", "I-ORG"],
           "I-ORG after B-LOC starts a new ORG entity: B-ORG, and the next I-ORG continues it")
    rng = random.Random(0)
    for _ in range(300):
        tags = _random_tags(rng, rng.randint(0, 10))
        fixed = fn(list(tags))
        expect(_is_valid(fixed), f"{fixed} still has an I-X that does not follow B-X or "
                                 f"I-X (input {tags})")
        expect(bio_entities(fixed) == bio_entities(tags),
               f"repairing {tags} must keep its entities; got {fixed}")


def _overlap_reference(gold, pred) -> tuple[float, float, float]:
    def overlaps(e, others):
        return any(k == e[0] and a < e[2] and e[1] < b for k, a, b in others)

    hit_p = n_p = hit_g = n_g = 0
    for g, p in zip(gold, pred):
        eg, ep = bio_entities(g), bio_entities(p)
        hit_p += sum(overlaps(e, eg) for e in ep)
        hit_g += sum(overlaps(e, ep) for e in eg)
        n_p, n_g = n_p + len(ep), n_g + len(eg)
    precision = hit_p / n_p if n_p else 0.0
    recall = hit_g / n_g if n_g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@exercise("4.3.2")
def _overlap(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.3.2', overlap_prf)")
    gold = [["B-PER", "I-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "O", "B-ORG"]]
    got = fn(gold, pred)
    expect(isinstance(got, tuple) and len(got) == 3,
           "return a tuple (precision, recall, f1)")
    if abs(got[2]) < 1e-9:
        expect(False, "the predicted PER 0-2 overlaps the true PER 0-3: it counts as found")
    expect(abs(got[0] - 0.5) < 1e-9, "precision: 1 of the 2 predicted entities overlaps a "
                                     "true entity of the same type (ORG is not LOC)")
    expect(abs(got[1] - 0.5) < 1e-9, "recall: 1 of the 2 true entities is overlapped")
    rng = random.Random(1)
    for _ in range(50):
        g = [_random_tags(rng, rng.randint(1, 9)) for _ in range(6)]
        p = [[t if rng.random() < 0.6 else rng.choice(_TAGS) for t in s] for s in g]
        want = _overlap_reference(g, p)
        got = fn(g, p)
        expect(all(abs(a - b) < 1e-9 for a, b in zip(got, want)),
               f"on gold {g} and pred {p} expected {want}, got {got}; overlap means same "
               "type and at least one shared character")
