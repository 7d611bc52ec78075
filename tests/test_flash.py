"""Blockwise attention and the online softmax against PyTorch's references."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.flash import blockwise_attention, online_softmax


@given(n=st.integers(1, 37), block=st.integers(1, 40), seed=st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_online_softmax_matches_torch(n: int, block: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, n, generator=g, dtype=torch.float64) * 20
    torch.testing.assert_close(online_softmax(x, block), torch.softmax(x, dim=-1))


def test_online_softmax_is_safe_with_huge_scores() -> None:
    x = torch.tensor([[1000.0, 1001.0, 999.0, -1000.0]])
    out = online_softmax(x, block_size=1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.softmax(x, dim=-1))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block", [1, 3, 16, 64, 100])
def test_blockwise_matches_sdpa(causal: bool, block: int) -> None:
    g = torch.Generator().manual_seed(block)
    q, k, v = (torch.randn(2, 3, 37, 8, generator=g, dtype=torch.float64) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(blockwise_attention(q, k, v, causal=causal, block_size=block), ref)


def test_blockwise_cross_attention_shapes() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 5, 8, generator=g)
    k = torch.randn(2, 4, 11, 8, generator=g)
    v = torch.randn(2, 4, 11, 6, generator=g)
    out = blockwise_attention(q, k, v, block_size=4)
    assert out.shape == (2, 4, 5, 6)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)


def test_blockwise_gradients_match() -> None:
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 9, 4, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    blockwise_attention(q, k, v, causal=True, block_size=2).square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, is_causal=True).square().sum().backward()
    for ours, ref in zip(grads, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(ours, ref)


def test_bad_inputs_are_rejected() -> None:
    q = torch.randn(1, 4, 8)
    with pytest.raises(ValueError, match="head dimension"):
        blockwise_attention(q, torch.randn(1, 4, 7), torch.randn(1, 4, 7))
    with pytest.raises(ValueError, match="causal"):
        blockwise_attention(q, torch.randn(1, 5, 8), torch.randn(1, 5, 8), causal=True)
    with pytest.raises(ValueError, match="block_size"):
        blockwise_attention(q, q, q, block_size=0)
    with pytest.raises(TypeError, match="floating"):
        blockwise_attention(q.long(), q, q)
    with pytest.raises(ValueError, match="k and v"):
        blockwise_attention(q, q, torch.randn(1, 3, 8))
    with pytest.raises(TypeError, match="floating"):
        online_softmax(torch.arange(4))
