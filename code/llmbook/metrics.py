"""Evaluation metrics with their uncertainty.

A proportion measured on a test set of ``n`` examples is an estimate: report it with an
interval. :func:`proportion_ci` gives the Wilson score interval, which, unlike the normal
approximation ``p ± 1.96·sqrt(p(1-p)/n)``, stays inside ``[0, 1]`` and keeps close to its
nominal coverage for small ``n`` and for ``p`` near 0 or 1.
"""
from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["proportion_ci"]


def proportion_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for ``successes`` out of ``n`` trials.

    >>> low, high = proportion_ci(90, 100)   # about (0.826, 0.945)
    """
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if n <= 0:
        raise ValueError(f"n must be a positive number of trials, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high
