"""The Word Embedding Association Test (WEAT) of Caliskan, Bryson & Narayanan (2017).

Two sets of target words ``X``, ``Y`` (e.g. flowers, insects) and two sets of attribute
words ``A``, ``B`` (pleasant, unpleasant), given as embedding matrices:

- :func:`association`: ``s(w, A, B) = mean_a cos(w, a) − mean_b cos(w, b)`` per word;
- :func:`weat_effect_size`: ``(mean_{x∈X} s(x) − mean_{y∈Y} s(y)) / std_{w∈X∪Y} s(w)``
  (the standard deviation with ``n − 1``, as in the paper), a Cohen's d;
- :func:`weat_p_value`: the one-sided permutation test: over all ways of splitting
  ``X ∪ Y`` into two sets of the sizes of ``X`` and ``Y``, the share whose statistic
  ``Σ_X s − Σ_Y s`` is at least the observed one; exact (every split) when there are at
  most ``max_exact`` splits, else estimated from random splits.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from llmbook._validate import positive_int

__all__ = ["association", "weat_effect_size", "weat_p_value", "weat_statistic"]


def _matrix(name: str, m) -> np.ndarray:
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().numpy()
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or len(m) < 1:
        raise ValueError(f"{name} must be a (n, d) matrix of n >= 1 word vectors, got shape "
                         f"{m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} contains non-finite values")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} contains a zero vector, whose cosine is undefined")
    return m / norms


def _check_dims(**mats: np.ndarray) -> None:
    dims = {k: v.shape[1] for k, v in mats.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(f"all word vectors must have the same dimension, got {dims}")


def association(W, A, B) -> np.ndarray:
    """``s(w, A, B)`` for every row of ``W (n, d)``, with ``A (nA, d)``, ``B (nB, d)``.

    Returns ``(n,)``: mean cosine with the ``A`` words minus mean cosine with ``B``'s.
    """
    W, A, B = _matrix("W", W), _matrix("A", A), _matrix("B", B)
    _check_dims(W=W, A=A, B=B)
    return (W @ A.T).mean(1) - (W @ B.T).mean(1)


def weat_statistic(X, Y, A, B) -> float:
    """The test statistic ``Σ_{x∈X} s(x, A, B) − Σ_{y∈Y} s(y, A, B)``."""
    return float(association(X, A, B).sum() - association(Y, A, B).sum())


def weat_effect_size(X, Y, A, B) -> float:
    """Caliskan et al.'s effect size: difference of the mean associations of ``X`` and
    ``Y``, divided by the standard deviation (``n − 1``) of the associations over
    ``X ∪ Y``. Positive: ``X`` is closer to ``A`` (and ``Y`` to ``B``) than the reverse."""
    sx, sy = association(X, A, B), association(Y, A, B)
    both = np.concatenate([sx, sy])
    if len(both) < 3:
        raise ValueError("X and Y together need at least 3 words for a standard deviation")
    return float((sx.mean() - sy.mean()) / both.std(ddof=1))


def weat_p_value(X, Y, A, B, max_exact: int = 200_000, n_samples: int = 20_000,
                 seed: int = 0) -> float:
    """One-sided permutation p-value of the WEAT statistic.

    The share of equal-size re-splits ``(X_i, Y_i)`` of ``X ∪ Y`` with
    ``S(X_i, Y_i) ≥ S(X, Y)``; the observed split is one of them, so ``p > 0``. With at
    most ``max_exact`` splits all are enumerated; otherwise ``n_samples`` random splits
    are drawn (seeded) and ``(1 + hits) / (1 + n_samples)`` is returned.
    """
    max_exact = positive_int("max_exact", max_exact)
    n_samples = positive_int("n_samples", n_samples)
    sx, sy = association(X, A, B), association(Y, A, B)
    s = np.concatenate([sx, sy])
    n, k = len(s), len(sx)
    observed = sx.sum()
    tol = 1e-12 * max(1.0, float(np.abs(s).sum()))
    # S(X_i, Y_i) = 2 Σ_{X_i} s − Σ s, so it is enough to compare the sums over X_i
    if math.comb(n, k) <= max_exact:
        sums = np.fromiter((s[list(c)].sum() for c in itertools.combinations(range(n), k)),
                           dtype=np.float64, count=math.comb(n, k))
        return float((sums >= observed - tol).mean())
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n_samples, n)), axis=1)[:, :k]
    sums = s[idx].sum(1)
    return float((1 + (sums >= observed - tol).sum()) / (1 + n_samples))
