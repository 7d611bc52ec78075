"""Left-padded batches: attention masks and explicit position ids in GPT and generate.

A left-padded batch must give each row's real tokens the logits the row gets alone, and
batched greedy generation must be token-identical to one prompt at a time, for both
families (learned positions and RoPE) and both attention paths.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook.generate import generate
from llmbook.models import GPT, GPTConfig
from llmbook.positions import LearnedPositions, RoPE, apply_rope

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILIES = [("tiny-gpt2", "sdpa"), ("tiny-gpt2", "scratch"),
            ("tiny-llama", "sdpa"), ("tiny-llama", "scratch")]


def _model(preset: str, impl: str) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.preset(preset, n_layer=2, block_size=48, attn_impl=impl)).eval()


def _left_pad(rows: list[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(r) for r in rows)
    idx = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for b, r in enumerate(rows):
        idx[b, T - len(r):] = r
        mask[b, T - len(r):] = 1
    return idx, mask


@pytest.mark.parametrize("preset, impl", FAMILIES)
def test_left_padded_logits_equal_each_row_alone(preset, impl):
    model = _model(preset, impl)
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, 512, (n,), generator=g) for n in (9, 3, 6)]
    idx, mask = _left_pad(rows, pad_id=7)
    logits, _ = model(idx, attention_mask=mask)
    assert torch.isfinite(logits).all()
    for b, r in enumerate(rows):
        alone, _ = model(r[None])
        torch.testing.assert_close(logits[b, -len(r):], alone[0], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("preset, impl", FAMILIES)
@pytest.mark.parametrize("use_cache", [True, False])
def test_batched_greedy_generation_equals_unbatched(preset, impl, use_cache):
    model = _model(preset, impl)
    g = torch.Generator().manual_seed(2)
    rows = [torch.randint(0, 512, (n,), generator=g) for n in (8, 2, 5)]
    idx, mask = _left_pad(rows)
    out = generate(model, idx, 12, temperature=0, attention_mask=mask, use_cache=use_cache)
    for b, r in enumerate(rows):
        alone = generate(model, r[None], 12, temperature=0, use_cache=use_cache)
        assert out[b, -(len(r) + 12):].tolist() == alone[0].tolist()


def test_uncached_generation_past_block_size_crops_mask_and_positions_alike():
    model = _model("tiny-gpt2", "sdpa")
    rows = [torch.arange(1, 40), torch.arange(5, 30)]
    idx, mask = _left_pad(rows)
    out = generate(model, idx, 20, temperature=0, attention_mask=mask, use_cache=False)
    for b, r in enumerate(rows):
        alone = generate(model, r[None], 20, temperature=0, use_cache=False)
        assert out[b, -(len(r) + 20):].tolist() == alone[0].tolist()


def test_explicit_position_ids_equal_mask_derived_ones():
    model = _model("tiny-llama", "sdpa")
    idx, mask = _left_pad([torch.arange(1, 7), torch.arange(3, 6)])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    a, _ = model(idx, attention_mask=mask)
    b, _ = model(idx, attention_mask=mask, position_ids=pos)
    assert torch.equal(a, b)


def test_position_ids_shift_equals_offset():
    """position_ids = k + arange(T) on a learned table equals the offset k."""
    pos = LearnedPositions(10, 4)
    ids = torch.arange(3, 7)[None].expand(2, 4)
    assert torch.equal(pos(4, position_ids=ids), pos(4, offset=3)[None].expand(2, 4, 4))
    rope = RoPE(10, 4)
    cos, sin = rope(4, position_ids=ids)
    c0, s0 = rope(4, offset=3)
    assert torch.equal(cos[1], c0) and torch.equal(sin[0], s0)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(apply_rope(x, cos, sin), apply_rope(x, c0, s0))


@settings(max_examples=15, deadline=None)
@given(shift=st.integers(0, 20), T=st.integers(1, 8))
def test_rope_scores_depend_on_relative_position_only(shift, T):
    rope = RoPE(32, 8)
    g = torch.Generator().manual_seed(T)
    q, k = torch.randn(1, 1, T, 8, generator=g), torch.randn(1, 1, T, 8, generator=g)
    base = torch.arange(T)[None]
    c0, s0 = rope(T, position_ids=base)
    c1, s1 = rope(T, position_ids=base + shift)
    s_a = apply_rope(q, c0, s0) @ apply_rope(k, c0, s0).transpose(-1, -2)
    s_b = apply_rope(q, c1, s1) @ apply_rope(k, c1, s1).transpose(-1, -2)
    torch.testing.assert_close(s_a, s_b, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------- bad input
def test_bad_masks_and_positions_are_named():
    model = _model("tiny-gpt2", "sdpa")
    idx = torch.randint(0, 512, (2, 5))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, T\) = \(2, 5\)"):
        model(idx, attention_mask=torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="attention_mask must be bool or integer 0/1"):
        model(idx, attention_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        model(idx, attention_mask=torch.full((2, 5), 2))
    with pytest.raises(ValueError, match=r"position_ids must have shape \(B, T\)"):
        model(idx, position_ids=torch.arange(4)[None])
    with pytest.raises(ValueError, match=r"position_ids must lie in \[0, 48\)"):
        model(idx, position_ids=torch.tensor([[0, 1, 2, 3, 48]] * 2))
    with pytest.raises(TypeError, match="position_ids must be an integer tensor"):
        model(idx, position_ids=torch.zeros(2, 5))


def test_generate_refuses_right_padding():
    model = _model("tiny-gpt2", "sdpa")
    idx = torch.randint(0, 512, (2, 4))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(ValueError, match=r"rows \[1\] end in padding.*left"):
        generate(model, idx, 3, attention_mask=mask)


def test_cached_forward_with_mask_over_cache_and_new_tokens():
    model = _model("tiny-llama", "sdpa")
    idx, mask = _left_pad([torch.arange(1, 7), torch.arange(3, 6)])
    full, _ = model(idx, attention_mask=mask)
    cache = model.new_cache(2)
    model(idx[:, :4], cache=cache, attention_mask=mask[:, :4])
    tail, _ = model(idx[:, 4:], cache=cache, attention_mask=mask)
    torch.testing.assert_close(tail, full[:, 4:], atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, T\) = \(2, 7\)"):
        model(idx[:, :1], cache=cache, attention_mask=mask)


def test_no_attention_row_is_ever_fully_masked():
    """Padding queries see themselves, so no kernel (CPU or GPU) meets an empty row."""
    from llmbook.models import _mask_and_positions

    keep = torch.tensor([[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
    mask, pos = _mask_and_positions(keep, None, 2, 3, 2, 16)       # 2 cached + 3 new
    assert mask.shape == (2, 1, 3, 5) and mask.any(-1).all()
    assert pos.tolist() == [[0, 0, 1], [2, 3, 4]]
    assert not mask[0, 0, 2, :2].any()                             # real query: pads hidden
