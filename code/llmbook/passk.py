"""pass@k: the chance that at least one of k programs sampled for a problem passes its tests.

With ``n >= k`` samples of which ``c`` pass, the unbiased estimator of Chen et al. (2021)
is the fraction of the ``C(n, k)`` subsets of size ``k`` that contain a passing sample::

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

The product form never builds a binomial coefficient, so it neither overflows nor loses
precision for large ``n``. The **naive** estimator ("did any of the first ``k`` samples
pass?", :func:`pass_at_k_naive`) is unbiased when the samples are independent, but it
throws away ``n - k`` samples and is 0 or 1 per problem, so it is much noisier; it is
biased as soon as the order of the samples is not random (a greedy sample first, samples
sorted by likelihood). Plugging pass@1 into ``1 - (1 - c/n)^k``
(:func:`pass_at_k_with_replacement`) is biased low: it treats the ``n`` samples as if
drawn with replacement.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from llmbook._validate import nonneg_int, positive_int

__all__ = [
    "mean_pass_at_k",
    "pass_at_k",
    "pass_at_k_brute",
    "pass_at_k_naive",
    "pass_at_k_with_replacement",
]


def _check(n: int, c: int, k: int) -> tuple[int, int, int]:
    n, c, k = (int(v) if isinstance(v, np.integer) else v for v in (n, c, k))
    n, c, k = positive_int("n", n), nonneg_int("c", c), positive_int("k", k)
    if c > n:
        raise ValueError(f"c (passing samples) must be <= n (samples), got c={c}, n={n}")
    if k > n:
        raise ValueError(f"k must be <= n (samples), got k={k}, n={n}: pass@k needs at "
                         "least k samples per problem")
    return n, c, k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from ``n`` samples, ``c`` of them passing.

    ``1 - C(n-c, k) / C(n, k)``, computed as ``1 - prod(1 - k / i)`` for
    ``i = n-c+1 .. n`` (stable; 1.0 exactly when ``n - c < k``).
    """
    n, c, k = _check(n, c, k)
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k_brute(results: Sequence[bool], k: int) -> float:
    """pass@k by enumeration: the fraction of all ``k``-subsets of ``results`` (one bool
    per sample) that contain a pass. Exponential; for tests and small ``n`` only."""
    results = [bool(r) for r in results]
    _check(len(results), sum(results), k)
    subsets = list(itertools.combinations(results, k))
    return sum(any(s) for s in subsets) / len(subsets)


def pass_at_k_naive(results: Sequence[bool], k: int) -> float:
    """The naive estimate: 1.0 if any of the **first** ``k`` samples passed, else 0.0."""
    results = [bool(r) for r in results]
    _check(len(results), sum(results), k)
    return float(any(results[:k]))


def pass_at_k_with_replacement(n: int, c: int, k: int) -> float:
    """``1 - (1 - c/n)^k``: the estimated pass@1 plugged into the formula for ``k``
    independent draws. Never above :func:`pass_at_k` and biased low (Jensen: ``(1 - x)^k``
    is convex), because the ``k`` are drawn from the ``n`` without replacement. Kept to
    show the bias."""
    n, c, k = _check(n, c, k)
    return 1.0 - (1.0 - c / n) ** k


def mean_pass_at_k(n: Sequence[int] | int, c: Sequence[int], k: int) -> float:
    """Mean unbiased pass@k over problems; ``n`` one int for all or one per problem."""
    c = list(c)
    ns = [n] * len(c) if isinstance(n, int) else list(n)
    if len(ns) != len(c):
        raise ValueError(f"n and c must have one entry per problem, got {len(ns)} and "
                         f"{len(c)}")
    if not c:
        raise ValueError("c must hold at least one problem, got an empty sequence")
    return math.fsum(pass_at_k(a, b, k) for a, b in zip(ns, c)) / len(c)
