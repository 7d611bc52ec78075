"""The cost model against brute force, and its error paths."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.costmodel import (
    HOURS_PER_MONTH,
    api_cost,
    api_price_per_million,
    break_even_tokens,
    gpus_needed,
    self_host_cost,
    self_host_price_per_million,
)


def test_api_cost_is_linear_and_blends_prompt_tokens():
    assert api_cost(2e6, 3.0) == pytest.approx(6.0)
    assert api_price_per_million(1.0, 4.0, input_per_output=3.0) == 7.0
    got = api_cost(np.array([0.0, 1e6, 5e6]), 2.0)
    assert np.allclose(got, [0.0, 2.0, 10.0])


def test_self_host_cost_steps_with_the_gpus_needed():
    tps, price = 100.0, 2.0
    per_gpu = tps * 3600 * HOURS_PER_MONTH
    assert gpus_needed(0.0, tps) == 1
    assert gpus_needed(per_gpu, tps) == 1
    assert gpus_needed(per_gpu + 1, tps) == 2
    assert gpus_needed(per_gpu, tps, utilisation=0.5) == 2
    month = HOURS_PER_MONTH * price
    assert self_host_cost(per_gpu * 2.5, tps, price, fixed_per_month=10.0) == 3 * month + 10.0
    arr = self_host_cost(np.array([1.0, per_gpu + 1]), tps, price)
    assert np.allclose(arr, [month, 2 * month])
    assert self_host_price_per_million(tps, price) == pytest.approx(price / (tps * 3.6e3) * 1e6)


def _brute(p, tps, g, util, fixed):
    """The first volume on a fine grid where self-hosting is no dearer, refined."""
    cap = tps * 3600 * HOURS_PER_MONTH * util
    grid = np.linspace(0, 60 * cap, 600_001)
    ok = self_host_cost(grid, tps, g, util, fixed_per_month=fixed) <= api_cost(grid, p) + 1e-9
    return grid[np.argmax(ok)] if ok.any() else math.inf, grid[1] - grid[0]


@settings(max_examples=40, deadline=None)
@given(p=st.floats(0.05, 50), tps=st.floats(1, 2000), g=st.floats(0.1, 10),
       util=st.floats(0.1, 1.0), fixed=st.sampled_from([0.0, 100.0, 5000.0]))
def test_break_even_matches_brute_force(p, tps, g, util, fixed):
    got = break_even_tokens(p, tps, g, util, fixed_per_month=fixed)
    want, step = _brute(p, tps, g, util, fixed)
    if math.isinf(want):
        # never within 60 GPUs' capacity: either never, or beyond the grid
        assert math.isinf(got) or got > 59 * tps * 3600 * HOURS_PER_MONTH * util
    else:
        assert got == pytest.approx(want, abs=step * 1.01, rel=1e-9)
        # at the break-even volume the two costs are equal, just below the API is cheaper
        assert self_host_cost(got, tps, g, util, fixed_per_month=fixed) == pytest.approx(
            api_cost(got, p), rel=1e-9)


def test_break_even_when_self_hosting_never_pays():
    tps = 10.0
    month = HOURS_PER_MONTH * 5.0
    capacity_bill = tps * 3600 * HOURS_PER_MONTH * 0.1 / 1e6      # API bill of a GPU's month
    assert capacity_bill < month
    assert break_even_tokens(0.1, tps, 5.0) == math.inf


@pytest.mark.parametrize("call, match", [
    (lambda: api_cost(1.0, -1.0), "price_per_million"),
    (lambda: api_cost(-5.0, 1.0), "tokens"),
    (lambda: api_cost(np.array([1.0, np.nan]), 1.0), "tokens"),
    (lambda: api_price_per_million(1.0, float("inf"), 1.0), "price_out"),
    (lambda: self_host_cost(1.0, 0.0, 1.0), "tokens_per_s"),
    (lambda: self_host_cost(1.0, 1.0, 1.0, utilisation=1.5), "utilisation"),
    (lambda: self_host_cost(1.0, 1.0, 1.0, fixed_per_month=-1.0), "fixed_per_month"),
    (lambda: break_even_tokens(1.0, 1.0, -2.0), "gpu_hour_price"),
    (lambda: gpus_needed(1.0, 1.0, hours_per_month=0.0), "hours_per_month"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
