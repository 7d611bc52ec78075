"""Edge cases of the online softmax and blockwise attention: rows with no finite score,
zero keys, NaN inputs; they agree with the package's attention() conventions."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.attention import attention
from llmbook.flash import blockwise_attention, online_softmax


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 4), n=st.integers(1, 9), block=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_online_softmax_with_masked_entries_matches_attention_convention(rows, n, block, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, n, generator=g)
    keep = torch.rand(rows, n, generator=g) > 0.4              # some rows fully masked
    x = x.masked_fill(~keep, -math.inf)
    got = online_softmax(x, block)
    assert torch.isfinite(got).all()
    want = torch.softmax(x, -1).nan_to_num(0.0)                 # zeros for dead rows
    torch.testing.assert_close(got, want)
    dead = ~keep.any(-1)
    assert torch.equal(got[dead], torch.zeros_like(got[dead]))


def test_nan_and_plus_inf_propagate_to_their_row_only():
    x = torch.tensor([[0.0, math.nan, 1.0, 2.0], [math.inf, 0.0, 0.0, 0.0],
                      [0.0, 1.0, 2.0, 3.0]])
    out = online_softmax(x, 2)
    assert out[:2].isnan().all()
    torch.testing.assert_close(out[2], torch.softmax(x[2], -1))


def test_blockwise_zero_keys_is_an_error():
    q = torch.randn(1, 3, 4)
    with pytest.raises(ValueError, match="need at least one key"):
        blockwise_attention(q, torch.randn(1, 0, 4), torch.randn(1, 0, 4))
    with pytest.raises(TypeError, match="causal must be True or False"):
        blockwise_attention(q, q, q, causal="yes")


@pytest.mark.parametrize("T, block", [(1, 1), (5, 2), (8, 8), (7, 16)])
def test_blockwise_causal_equals_attention(T, block):
    torch.manual_seed(T)
    q, k, v = torch.randn(2, 2, T, 4), torch.randn(2, 2, T, 4), torch.randn(2, 2, T, 3)
    ref, _ = attention(q, k, v, causal=True)
    torch.testing.assert_close(blockwise_attention(q, k, v, causal=True, block_size=block), ref,
                               atol=1e-6, rtol=1e-5)
