"""llmbook.fairness: WEAT's statistic, effect size and permutation test against their
definitions written out by brute force."""
import itertools
import statistics

import numpy as np
import pytest
from llmbook.fairness import association, weat_effect_size, weat_p_value, weat_statistic


def _cos(u, v):
    return float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))


def _sets(seed=0, nx=4, ny=4, shift=0.0):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(3, 6)), rng.normal(size=(4, 6))
    X = rng.normal(size=(nx, 6)) + shift * A.mean(0)
    Y = rng.normal(size=(ny, 6)) + shift * B.mean(0)
    return X, Y, A, B


def _s(w, A, B):
    return statistics.mean(_cos(w, a) for a in A) - statistics.mean(_cos(w, b) for b in B)


def test_statistic_and_effect_size_by_loops():
    X, Y, A, B = _sets(shift=1.0)
    sx, sy = [_s(x, A, B) for x in X], [_s(y, A, B) for y in Y]
    assert np.allclose(association(X, A, B), sx)
    assert np.isclose(weat_statistic(X, Y, A, B), sum(sx) - sum(sy))
    d = (statistics.mean(sx) - statistics.mean(sy)) / statistics.stdev(sx + sy)
    assert np.isclose(weat_effect_size(X, Y, A, B), d)
    assert np.isclose(weat_effect_size(Y, X, A, B), -d)
    assert np.isclose(weat_effect_size(X * 3.0, Y, A, B), d)      # cosines ignore length


def _brute_p(X, Y, A, B):
    words = list(X) + list(Y)
    observed = weat_statistic(X, Y, A, B)
    hits = total = 0
    for chosen in itertools.combinations(range(len(words)), len(X)):
        xi = [words[i] for i in chosen]
        yi = [words[i] for i in range(len(words)) if i not in chosen]
        total += 1
        hits += weat_statistic(np.array(xi), np.array(yi), A, B) >= observed - 1e-12
    return hits / total


@pytest.mark.parametrize("seed, shift", [(0, 0.0), (1, 1.0), (2, 0.3)])
def test_permutation_p_equals_brute_force_enumeration(seed, shift):
    X, Y, A, B = _sets(seed, nx=4, ny=5, shift=shift)
    want = _brute_p(X, Y, A, B)
    assert weat_p_value(X, Y, A, B) == pytest.approx(want, abs=1e-12)
    # the sampled test (forced by max_exact=1) estimates the same number
    sampled = weat_p_value(X, Y, A, B, max_exact=1, n_samples=20_000, seed=seed)
    assert abs(sampled - want) < 4 * np.sqrt(want * (1 - want) / 20_000) + 1e-3


def test_p_value_small_for_a_strong_association_and_not_for_none():
    X, Y, A, B = _sets(3, nx=6, ny=6, shift=3.0)
    assert weat_p_value(X, Y, A, B) < 0.01
    ps = [weat_p_value(*_sets(s, nx=5, ny=5)) for s in range(40)]
    assert 0.2 < np.mean(ps) < 0.8                   # no association: p roughly uniform


@pytest.mark.parametrize("call, match", [
    (lambda: association(np.ones(3), np.ones((2, 3)), np.ones((2, 3))), "W must be"),
    (lambda: association(np.ones((2, 3)), np.zeros((2, 3)), np.ones((2, 3))), "zero vector"),
    (lambda: association(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 3))), "same dimension"),
    (lambda: weat_effect_size(np.ones((1, 3)), np.ones((1, 3)), np.eye(3), np.eye(3)),
     "at least 3"),
    (lambda: weat_p_value(*_sets(), n_samples=0), "n_samples must be"),
    (lambda: association(np.full((2, 3), np.nan), np.ones((2, 3)), np.ones((2, 3))),
     "non-finite"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
