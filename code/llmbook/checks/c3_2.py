"""Checks for the exercises of notebook 3.2 (the data pipeline)."""
from __future__ import annotations

import torch

from llmbook.exercises import exercise, expect


@exercise("3.2.1")
def _dedup(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.2.1', dedup_keep_order)")
    docs = ["b", "a", "b", "c", "a", "d"]
    got = fn(list(docs))
    expect(isinstance(got, list), f"return a list, got {type(got).__name__}")
    expect(sorted(got) == ["a", "b", "c", "d"],
           f"every distinct document should appear exactly once, got {got}")
    expect(got == ["b", "a", "c", "d"],
           f"keep the original order of first occurrences: expected ['b', 'a', 'c', 'd'], "
           f"got {got} (a set or sorted() loses the order)")
    expect(fn([]) == [], "an empty list should give an empty list")


@exercise("3.2.2")
def _causal_pairs(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.2.2', causal_pairs)")
    ids = torch.arange(23)
    got = fn(ids, 5)
    expect(isinstance(got, tuple) and len(got) == 2, "return a pair (x, y)")
    x, y = got
    expect(x.shape == (4, 5) and y.shape == (4, 5),
           f"23 tokens give 4 complete blocks of 5 (each needs one extra token for the last "
           f"label): expected shapes (4, 5), got {tuple(x.shape)} and {tuple(y.shape)}")
    expect(not torch.equal(x, y), "x and y are identical: the labels must be shifted by one")
    expect(torch.equal(y, x + 1), "y[i, t] must be the token after x[i, t] in the text")
    expect(torch.equal(x[:, 0], torch.tensor([0, 5, 10, 15])),
           "blocks should not overlap: block i starts at token i * block")
