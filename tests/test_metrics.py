"""llmbook.metrics: intervals checked against their own definition."""
import math

import pytest
from llmbook.metrics import proportion_ci


def test_wilson_bounds_solve_the_score_test():
    # Definition: the bounds are the p0 at which |p_hat - p0| / sqrt(p0 (1 - p0) / n) = z.
    z = 1.959963984540054
    for k, n in [(90, 100), (3, 7), (0, 10), (10, 10)]:
        for bound in proportion_ci(k, n):
            if bound in (0.0, 1.0):
                assert bound == (0.0 if k == 0 else 1.0)
                continue
            score = abs(k / n - bound) / math.sqrt(bound * (1 - bound) / n)
            assert math.isclose(score, z, rel_tol=1e-9)


def test_wilson_contains_estimate_and_shrinks_with_n():
    for k, n in [(1, 3), (50, 100), (999, 1000)]:
        low, high = proportion_ci(k, n)
        assert 0 <= low <= k / n <= high <= 1
    assert (proportion_ci(500, 1000)[1] - proportion_ci(500, 1000)[0]) < (
        proportion_ci(5, 10)[1] - proportion_ci(5, 10)[0])


@pytest.mark.parametrize("args, match", [((5, 0), "n must be"), ((11, 10), "successes"),
                                         ((1.5, 10), "successes must be an int"),
                                         ((1, 10, 1.0), "confidence")])
def test_bad_input_is_named(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        proportion_ci(*args)
