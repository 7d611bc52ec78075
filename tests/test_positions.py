"""Sinusoidal table, learned positions and RoPE (against Hugging Face Llama's RoPE)."""
import math

import pytest
import torch
from llmbook.positions import LearnedPositions, RoPE, apply_rope, rope_cos_sin, sinusoidal


def test_sinusoidal_formula():
    pe = sinusoidal(50, 16)
    assert pe.shape == (50, 16)
    t, i = 7, 3
    angle = t / 10000 ** (2 * i / 16)
    assert math.isclose(pe[t, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
    assert math.isclose(pe[t, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal(4, 7)


def test_learned_positions_offset_and_limit():
    pos = LearnedPositions(10, 4)
    assert torch.equal(pos(3, offset=5), pos.weight[5:8])
    with pytest.raises(ValueError, match="exceed the table of 10"):
        pos(4, offset=7)


def test_rope_matches_hugging_face_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, rope_theta=500.0,
                      max_position_embeddings=32)
    hf = LlamaRotaryEmbedding(cfg)
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 10, 16), torch.randn(2, 4, 10, 16)
    pos_ids = torch.arange(3, 13)[None].expand(2, -1)
    cos_hf, sin_hf = hf(q, pos_ids)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos_hf, sin_hf)
    cos, sin = RoPE(32, 16, theta=500.0)(10, offset=3)
    assert (apply_rope(q, cos, sin) - q_hf).abs().max() <= 1e-5
    assert (apply_rope(k, cos, sin) - k_hf).abs().max() <= 1e-5


def test_rope_scores_depend_on_relative_position_only():
    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)
    cos, sin = rope_cos_sin(40, 16)

    def score(i, j):
        qi = apply_rope(q.expand(40, 16), cos, sin)[i]
        kj = apply_rope(k.expand(40, 16), cos, sin)[j]
        return (qi * kj).sum()

    assert torch.allclose(score(5, 2), score(30, 27), atol=1e-4)
    assert not torch.allclose(score(5, 2), score(5, 4), atol=1e-3)
    x = torch.randn(1, 1, 40, 16)
    assert torch.allclose(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_rope_errors():
    with pytest.raises(ValueError, match="even"):
        rope_cos_sin(4, 7)
    cos, sin = rope_cos_sin(4, 8)
    with pytest.raises(ValueError, match="apply_rope"):
        apply_rope(torch.randn(1, 1, 5, 8), cos, sin)
    with pytest.raises(ValueError, match="exceed the 4 precomputed"):
        RoPE(4, 8)(2, offset=3)
