"""The mask contract of attention, on every path: bool = may attend, float = additive bias.

``attention()`` and ``MultiHeadAttention`` with ``impl="sdpa"`` and ``impl="scratch"``
must accept the same masks, refuse the same masks with the same clear errors, and agree
on the outputs, including fully masked rows and bottom-right causal alignment.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.attention import MultiHeadAttention, attention, causal_mask, padding_mask

pytestmark = pytest.mark.usefixtures("one_thread")

IMPLS = ("sdpa", "scratch")


def _pair(n_head: int = 2, n_kv_head: int | None = None, C: int = 8, seed: int = 0):
    """Two attention modules with the same weights, one per impl."""
    torch.manual_seed(seed)
    a = MultiHeadAttention(C, n_head, n_kv_head, impl="sdpa").eval()
    b = MultiHeadAttention(C, n_head, n_kv_head, impl="scratch").eval()
    b.load_state_dict(a.state_dict())
    return a, b


# ------------------------------------------------------------------ refused masks
@pytest.mark.parametrize("impl", IMPLS)
def test_float_mask_is_refused_on_every_path(impl):
    """A 0/1 float mask used to be added to the scores on the SDPA path (padding attended)."""
    mha = MultiHeadAttention(8, 2, impl=impl)
    x = torch.randn(2, 5, 8)
    float_mask = torch.ones(2, 1, 1, 5)
    float_mask[:, ..., -2:] = 0
    with pytest.raises(TypeError, match=r"mask must be a bool tensor.*attn_bias"):
        mha(x, mask=float_mask)
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        attention(x, x, x, mask=float_mask[:, 0])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(2, 1, 1, 4), (3, 1, 1, 5), (5, 4), (2, 2, 2, 5, 5)])
def test_mask_of_wrong_shape_names_both_shapes(impl, shape):
    mha = MultiHeadAttention(8, 2, impl=impl)
    mask = torch.ones(shape, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"mask of shape .* does not broadcast .*\(2, 2, 5, 5\)"):
        mha(torch.randn(2, 5, 8), mask=mask)


@pytest.mark.parametrize("impl", IMPLS)
def test_int_mask_and_non_tensor_mask_are_refused(impl):
    mha = MultiHeadAttention(8, 2, impl=impl)
    x = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match=r"bool tensor.*\.bool\(\)"):
        mha(x, mask=torch.ones(1, 1, 1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="bool tensor"):
        mha(x, mask=[[True, True, True]])


@pytest.mark.parametrize("impl", IMPLS)
def test_bool_bias_is_refused(impl):
    mha = MultiHeadAttention(8, 2, impl=impl)
    with pytest.raises(TypeError, match="attn_bias must be a float tensor"):
        mha(torch.randn(1, 3, 8), attn_bias=torch.ones(3, 3, dtype=torch.bool))


# ---------------------------------------------------------------- agreeing paths
@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 6), causal=st.booleans(),
       gqa=st.booleans(), seed=st.integers(0, 2**16), with_bias=st.booleans())
def test_sdpa_and_scratch_agree_on_any_bool_mask(B, T, causal, gqa, seed, with_bias):
    a, b = _pair(n_head=4, n_kv_head=2 if gqa else None, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 8, generator=g)
    mask = torch.rand(B, 1, T, T, generator=g) > 0.4           # fully masked rows happen
    bias = torch.randn(1, 4, T, T, generator=g) if with_bias else None
    ya = a(x, mask=mask, causal=causal, attn_bias=bias)
    yb = b(x, mask=mask, causal=causal, attn_bias=bias)
    assert torch.isfinite(ya).all() and torch.isfinite(yb).all()
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-4)


def test_padding_is_never_attended_on_sdpa():
    """Changing the padded tokens must not change the real tokens' outputs."""
    a, b = _pair()
    x = torch.randn(2, 6, 8)
    keep = padding_mask(torch.tensor([6, 3]), 6)
    y = x.clone()
    y[1, 3:] = 100 * torch.randn(3, 8)
    for mha in (a, b):
        out_x, out_y = mha(x, mask=keep), mha(y, mask=keep)
        torch.testing.assert_close(out_x[1, :3], out_y[1, :3])


def test_fully_masked_row_is_zero_on_both_paths():
    a, b = _pair()
    x = torch.randn(1, 3, 8)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    for mha in (a, b):
        out = mha(x, mask=mask)
        torch.testing.assert_close(out[0, 1], mha.proj.bias)   # zero attention output
    _, w = attention(x, x, x, mask=mask)
    assert torch.equal(w[0, 1], torch.zeros(3))


def test_neg_inf_bias_counts_as_masked():
    a, b = _pair()
    x = torch.randn(1, 3, 8)
    bias = torch.zeros(3, 3)
    bias[1] = float("-inf")                                   # a fully blocked row
    bias[0, 2] = float("-inf")
    mask = ~torch.isneginf(bias)
    for mha in (a, b):
        torch.testing.assert_close(mha(x, attn_bias=bias), mha(x, mask=mask))


# ------------------------------------------------------------------- causal alignment
@pytest.mark.parametrize("impl", IMPLS)
def test_causal_is_bottom_right_aligned(impl):
    """Tq < Tk: the queries are the last Tq positions, as with a KV cache."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 5, 4)
    _, w = attention(q, k, k, causal=True)
    want = causal_mask(5)[-2:]
    assert torch.equal(w[0, 0] > 0, want)


@pytest.mark.parametrize("impl", IMPLS)
def test_more_queries_than_keys_gives_zero_rows_for_queries_before_every_key(impl):
    """Documented behaviour: bottom-right alignment, the first Tq - Tk rows see no key."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 4, 8), torch.randn(1, 1, 2, 8)
    out, w = attention(q, k, k, causal=True)
    assert torch.equal(w[0, 0, :2], torch.zeros(2, 2))
    assert torch.equal(out[0, 0, :2], torch.zeros(2, 8))
    torch.testing.assert_close(w[0, 0, 2:].sum(-1), torch.ones(2))
    assert torch.equal(w[0, 0, 2:] > 0, causal_mask(2))
    cross = MultiHeadAttention(8, 2, cross=True, impl=impl).eval()
    x, ctx = torch.randn(1, 4, 8), torch.randn(1, 2, 8)
    y = cross(x, context=ctx, causal=True)
    torch.testing.assert_close(y[0, :2], cross.proj.bias.expand(2, 8))   # zero attention
    torch.testing.assert_close(y[0, 2:], cross(x[:, 2:], context=ctx, causal=True)[0])


def test_zero_keys_is_a_clear_error():
    q = torch.randn(1, 3, 4)
    with pytest.raises(ValueError, match="at least one key"):
        attention(q, torch.randn(1, 0, 4), torch.randn(1, 0, 4))
    cross = MultiHeadAttention(8, 2, cross=True)
    with pytest.raises(ValueError, match="no positions"):
        cross(torch.randn(1, 3, 8), context=torch.randn(1, 0, 8))


# --------------------------------------------------------------- input shape checks
@pytest.mark.parametrize("impl", IMPLS)
def test_input_width_and_rank_are_checked(impl):
    mha = MultiHeadAttention(8, 2, impl=impl)
    with pytest.raises(ValueError, match=r"width 6 .* n_embd=8"):
        mha(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match=r"x must have 3 dims \(B, T, C\)"):
        mha(torch.randn(2, 2, 3, 8))
    with pytest.raises(TypeError, match="float tensor"):
        mha(torch.ones(2, 3, 8, dtype=torch.long))
    cross = MultiHeadAttention(8, 2, cross=True, kv_dim=6, impl=impl)
    with pytest.raises(ValueError, match=r"context must have shape \(B=2, S, kv_dim=6\)"):
        cross(torch.randn(2, 3, 8), context=torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match=r"context must have shape \(B=2"):
        cross(torch.randn(2, 3, 8), context=torch.randn(1, 4, 6))


@pytest.mark.parametrize("impl", IMPLS)
def test_unbatched_input_is_a_batch_of_one(impl):
    mha = MultiHeadAttention(8, 2, impl=impl).eval()
    x = torch.randn(5, 8)
    out = mha(x, causal=True)
    assert out.shape == (5, 8)
    torch.testing.assert_close(out, mha(x[None], causal=True)[0])
    cross = MultiHeadAttention(8, 2, cross=True, impl=impl).eval()
    ctx = torch.randn(4, 8)
    torch.testing.assert_close(cross(x, context=ctx), cross(x[None], context=ctx[None])[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_head": 0}, "n_head must be a positive int"),
    ({"n_head": 2, "n_kv_head": 0}, "n_kv_head must be a positive int"),
    ({"n_head": 2, "bias": "False"}, "bias must be True or False"),
    ({"n_head": 2, "dropout": float("nan")}, "dropout must be a finite number"),
    ({"n_head": 2, "dropout": 1.0}, "dropout must be"),
])
def test_constructor_arguments_are_checked(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MultiHeadAttention(8, **kwargs)


def test_kv_cache_decoding_matches_full_causal_with_a_mask():
    """Bottom-right causal + a padding mask over the cache, one token at a time."""
    torch.manual_seed(0)
    from llmbook.attention import KVCache

    for impl in IMPLS:
        mha = MultiHeadAttention(8, 2, impl=impl).eval()
        x = torch.randn(2, 5, 8)
        keep = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]).bool()
        full = mha(x, mask=padding_mask(keep), causal=True)
        cache = KVCache(1, 2, 2, 5, 4)
        steps = []
        for t in range(5):
            steps.append(mha(x[:, t:t + 1], mask=padding_mask(keep[:, :t + 1]), causal=True,
                             cache=cache))
            cache.advance(1)
        torch.testing.assert_close(torch.cat(steps, 1)[:, 2:], full[:, 2:], atol=1e-6,
                                   rtol=1e-5)


def test_mask_broadcast_check_agrees_with_torch_broadcast_shapes():
    # check_mask tests broadcasting by hand (torch.broadcast_shapes is slow per call);
    # the hand-written rule must accept exactly the shapes torch would broadcast.
    import random

    from llmbook.attention import check_mask
    rng = random.Random(0)
    target = (2, 3, 4, 5)
    for _ in range(300):
        shape = tuple(rng.choice([1, 2, 3, 4, 5, 6]) for _ in range(rng.randint(0, 5)))
        try:
            ok = tuple(torch.broadcast_shapes(shape, target)) == target
        except RuntimeError:
            ok = False
        mask = torch.ones(shape, dtype=torch.bool)
        if ok:
            check_mask(mask, target, mask.device)
        else:
            with pytest.raises(ValueError, match="does not broadcast"):
                check_mask(mask, target, mask.device)
