"""Checks for the exercises of notebook 4.4 (retrieval and RAG)."""
from __future__ import annotations

import math

from llmbook.exercises import exercise, expect


@exercise("4.4.1")
def _rrf(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.4.1', rrf)")
    got = fn([[3, 1, 2], [1, 4]])
    expect(isinstance(got, (list, tuple)), "return a list of passage indices, best first")
    got = [int(i) for i in got]
    expect(sorted(got) == [1, 2, 3, 4],
           "every passage that appears in any ranking appears once in the result")
    expect(got[0] == 1, "passage 1 is ranked by both lists, so it must come first")
    expect(got[:2] == [1, 3], "with k=60, passage 3 (rank 1 once) beats passage 4 "
                              "(rank 2 once)")
    # ties: two passages ranked first in one list each score the same
    expect([int(i) for i in fn([[7], [5]])] == [5, 7],
           "equal scores: the smaller passage index comes first")
    # k matters: with a small k, being first counts for much more
    a = [int(i) for i in fn([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [4, 0, 1, 2, 3]], k=1)]
    s = {i: 0.0 for i in range(5)}
    for r in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [4, 0, 1, 2, 3]):
        for rank, i in enumerate(r, start=1):
            s[i] += 1 / (1 + rank)
    want = sorted(s, key=lambda i: (-s[i], i))
    expect(a == want, f"with k=1 the fused order of that example is {want}, got {a}: "
                      "score each passage by the sum of 1/(k + rank)")


@exercise("4.4.2")
def _ndcg(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.4.2', ndcg_at_k)")
    gains = {2: 3.0, 5: 1.0}
    perfect = fn([2, 5, 0, 1], gains, 3)
    expect(isinstance(perfect, (int, float)), "return a number")
    expect(math.isclose(perfect, 1.0, rel_tol=1e-9),
           "the best possible ordering has nDCG 1")
    got = fn([5, 0, 2], gains, 3)
    dcg = 1.0 / math.log2(2) + 3.0 / math.log2(4)
    ideal = 3.0 / math.log2(2) + 1.0 / math.log2(3)
    if math.isclose(got, (1.0 / 1 + 3.0 / 3) / (3.0 / 1 + 1.0 / 2), rel_tol=1e-6):
        expect(False, "the discount is log2(rank + 1), not the rank")
    expect(math.isclose(got, dcg / ideal, rel_tol=1e-6),
           "DCG sums gain / log2(rank + 1) over ranks 1..k; divide by the ideal DCG")
    expect(math.isclose(fn([0, 1, 2], gains, 2), 0.0, abs_tol=1e-12),
           "only the top k count: passage 2 at rank 3 is outside k = 2")
    expect(fn([0, 1], {}, 2) == 0.0, "no passage with a positive gain: return 0.0")
