"""attention() and MultiHeadAttention against PyTorch's references; masks; errors."""
import pytest
import torch
import torch.nn.functional as F
from llmbook.attention import KVCache, MultiHeadAttention, attention, causal_mask, padding_mask
from torch import nn

TOL = 1e-5


def qkv(B=2, H=3, Tq=5, Tk=5, d=8, dv=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, d, generator=g), torch.randn(B, H, Tk, d, generator=g),
            torch.randn(B, H, Tk, dv, generator=g))


def test_matches_sdpa_plain_and_causal():
    q, k, v = qkv(dv=6)
    out, w = attention(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() <= TOL
    assert w.shape == (2, 3, 5, 5)
    out, w = attention(q, k, v, causal=True)
    assert (out - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max() <= TOL
    assert (w.triu(1) == 0).all()


def test_matches_sdpa_with_padding_and_causal_masks():
    q, k, v = qkv()
    lengths = torch.tensor([5, 3])
    mask = padding_mask(lengths, 5)                                  # (B, 1, 1, T)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask & causal_mask(5))
    out, w = attention(q, k, v, mask=mask, causal=True)
    assert (out - ref).abs().max() <= TOL
    assert (w[1, :, :, 3:] == 0).all()


def test_causal_with_fewer_queries_is_bottom_right_aligned():
    q, k, v = qkv(Tq=2, Tk=6)
    explicit = torch.ones(2, 6, dtype=torch.bool).tril(diagonal=4)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=explicit)
    out, _ = attention(q, k, v, causal=True)
    assert (out - ref).abs().max() <= TOL


def test_fully_masked_row_gives_zeros_not_nan():
    q, k, v = qkv()
    mask = torch.ones(5, 5, dtype=torch.bool)
    mask[2] = False
    out, w = attention(q, k, v, mask=mask)
    assert not torch.isnan(out).any()
    assert (w[..., 2, :] == 0).all() and (out[..., 2, :] == 0).all()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (out - ref).abs().max() <= TOL


def test_padding_mask_from_lengths_equals_from_attention_mask():
    lengths = torch.tensor([4, 2, 0])
    am = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(padding_mask(lengths, 4), padding_mask(am))
    assert padding_mask(am).shape == (3, 1, 1, 4)
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool())


@pytest.mark.parametrize("args, exc, match", [
    ((torch.randn(2, 4), torch.randn(2, 5), torch.randn(2, 5)), ValueError, "last dims"),
    ((torch.randn(2, 4), torch.randn(3, 4), torch.randn(2, 4)), ValueError, "number of keys"),
    ((torch.ones(2, 4, dtype=torch.long), torch.randn(2, 4), torch.randn(2, 4)), TypeError,
     "q must be a float"),
    ((torch.randn(4), torch.randn(2, 4), torch.randn(2, 4)), ValueError, "at least 2 dims"),
])
def test_attention_rejects_bad_qkv(args, exc, match):
    with pytest.raises(exc, match=match):
        attention(*args)


def test_attention_rejects_bad_masks():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="mask must be a bool"):
        attention(q, k, v, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match=r"mask of shape \(4, 5\) does not broadcast"):
        attention(q, k, v, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="lengths must be integers"):
        padding_mask(torch.tensor([1.0, 2.0]), 3)
    with pytest.raises(ValueError, match="give T"):
        padding_mask(torch.tensor([1, 2]))


def copy_from_torch_mha(ref: nn.MultiheadAttention, ours: MultiHeadAttention) -> None:
    with torch.no_grad():
        if ours.cross:
            E = ref.embed_dim
            ours.q.weight.copy_(ref.in_proj_weight[:E])
            ours.q.bias.copy_(ref.in_proj_bias[:E])
            ours.kv.weight.copy_(ref.in_proj_weight[E:])
            ours.kv.bias.copy_(ref.in_proj_bias[E:])
        else:
            ours.qkv.weight.copy_(ref.in_proj_weight)
            ours.qkv.bias.copy_(ref.in_proj_bias)
        ours.proj.weight.copy_(ref.out_proj.weight)
        ours.proj.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("impl", ["sdpa", "scratch"])
def test_self_attention_matches_nn_multiheadattention(impl):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True)
    ours = MultiHeadAttention(32, 4, impl=impl)
    copy_from_torch_mha(ref, ours)
    x = torch.randn(3, 7, 32)
    lengths = torch.tensor([7, 5, 2])
    pad = torch.arange(7)[None] >= lengths[:, None]                   # True = pad (torch)
    future = nn.Transformer.generate_square_subsequent_mask(7).isinf()  # True = blocked
    expected, _ = ref(x, x, x, key_padding_mask=pad, attn_mask=future, need_weights=False)
    got = ours(x, mask=padding_mask(lengths, 7), causal=True)
    assert (got - expected).abs().max() <= TOL


@pytest.mark.parametrize("impl", ["sdpa", "scratch"])
def test_cross_attention_matches_nn_multiheadattention(impl):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True)
    ours = MultiHeadAttention(32, 4, impl=impl, cross=True)
    copy_from_torch_mha(ref, ours)
    x, memory = torch.randn(2, 4, 32), torch.randn(2, 9, 32)
    lengths = torch.tensor([9, 6])
    pad = torch.arange(9)[None] >= lengths[:, None]
    expected, _ = ref(x, memory, memory, key_padding_mask=pad, need_weights=False)
    got = ours(x, context=memory, mask=padding_mask(lengths, 9))
    assert (got - expected).abs().max() <= TOL


def test_grouped_query_attention_equals_repeated_kv_heads():
    torch.manual_seed(0)
    C, H, Hkv = 32, 4, 2
    D = C // H
    gqa = MultiHeadAttention(C, H, n_kv_head=Hkv, bias=False)
    full = MultiHeadAttention(C, H, bias=False)
    with torch.no_grad():
        wq, wk, wv = gqa.qkv.weight.split([C, Hkv * D, Hkv * D])
        rep = lambda w: w.view(Hkv, D, C).repeat_interleave(H // Hkv, dim=0).reshape(H * D, C)
        full.qkv.weight.copy_(torch.cat([wq, rep(wk), rep(wv)]))
        full.proj.weight.copy_(gqa.proj.weight)
    x = torch.randn(2, 6, C)
    assert (gqa(x, causal=True) - full(x, causal=True)).abs().max() <= TOL
    gqa.impl = "scratch"
    assert (gqa(x, causal=True) - full(x, causal=True)).abs().max() <= TOL


def test_record_weights_gives_per_head_maps():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(3, 5, 16)
    plain = mha(x, causal=True)
    mha.record_weights = True
    recorded = mha(x, causal=True)
    assert mha.last_weights.shape == (3, 2, 5, 5)
    assert (plain - recorded).abs().max() <= TOL


def test_mha_errors():
    with pytest.raises(ValueError, match="not divisible by n_head"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="not divisible by n_kv_head"):
        MultiHeadAttention(32, 4, n_kv_head=3)
    with pytest.raises(ValueError, match="unknown attention impl"):
        MultiHeadAttention(32, 4, impl="flash")
    with pytest.raises(ValueError, match="needs a context"):
        MultiHeadAttention(32, 4, cross=True)(torch.randn(1, 2, 32))


def test_kv_cache_buffers_and_errors():
    cache = KVCache(n_layer=2, batch_size=2, n_kv_head=3, max_len=6, head_dim=4)
    assert cache.dtype is None                                   # allocated on first write
    k = torch.randn(2, 3, 4, 4)
    ks, vs = cache.append(0, k, k + 1)
    assert ks.shape == (2, 3, 4, 4) and cache.k[0].shape == (2, 3, 6, 4)
    assert torch.equal(vs, k + 1)
    assert cache.length == 0
    cache.advance(4)
    with pytest.raises(ValueError, match="KVCache full"):
        cache.append(0, torch.randn(2, 3, 3, 4), torch.randn(2, 3, 3, 4))
    with pytest.raises(ValueError, match="do not fit"):
        cache.append(0, torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4))
    with pytest.raises(TypeError, match="buffers are torch.float32"):
        cache.append(1, k[:, :, :1].double(), k[:, :, :1].double())
    with pytest.raises(ValueError, match="1-D integers"):
        cache.reorder(torch.tensor([0.0, 1.0]))
    cache.reorder(torch.tensor([1, 1, 0]))
    assert cache.batch_size == 3 and torch.equal(cache.k[0][2, :, :4], k[0])


def test_gqa_with_expanded_kv_heads_gives_the_same_result(monkeypatch):
    """The path taken on CUDA when SDPA cannot group K/V heads itself."""
    import llmbook.attention as attn_module
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, n_kv_head=2)
    x = torch.randn(2, 6, 32)
    mask = padding_mask(torch.tensor([6, 4]), 6)
    native = mha(x, mask=mask, causal=True)
    monkeypatch.setattr(attn_module, "_sdpa_groups_kv", lambda q, m: False)
    assert (mha(x, mask=mask, causal=True) - native).abs().max() <= TOL

