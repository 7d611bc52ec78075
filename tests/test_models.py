"""GPT / encoder / encoder–decoder: loss at init, sdpa vs scratch, KV cache, bad input."""
import math

import pytest
import torch

from llmbook.models import GPT, GPTConfig

V = 97


def tiny(family: str, **kw) -> GPTConfig:
    base = dict(vocab_size=V, block_size=32, n_layer=2, n_head=4, n_embd=32)
    if family == "llama":
        base.update(norm="rmsnorm", position="rope", mlp="swiglu", bias=False, n_kv_head=2,
                    mlp_hidden=48)
    base.update(kw)
    return GPTConfig(**base)


FAMILIES = ["gpt2", "llama"]


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_at_init_is_log_vocab(family):
    torch.manual_seed(0)
    model = GPT(tiny(family)).eval()
    idx = torch.randint(0, V, (4, 16))
    targets = torch.randint(0, V, (4, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (4, 16, V)
    assert abs(loss.item() - math.log(V)) < 0.1


def test_loss_ignores_minus_100():
    torch.manual_seed(0)
    model = GPT(tiny("gpt2")).eval()
    idx = torch.randint(0, V, (2, 8))
    targets = torch.randint(0, V, (2, 8))
    logits, _ = model(idx)
    masked = targets.clone()
    masked[:, 4:] = -100
    _, loss = model(idx, masked)
    ref = torch.nn.functional.cross_entropy(logits[:, :4].reshape(-1, V),
                                            targets[:, :4].reshape(-1))
    assert torch.allclose(loss, ref, atol=1e-6)
    assert model(idx)[1] is None


@pytest.mark.parametrize("family", FAMILIES)
def test_sdpa_and_scratch_agree(family):
    torch.manual_seed(0)
    a = GPT(tiny(family)).eval()
    b = GPT(tiny(family, attn_impl="scratch")).eval()
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, V, (3, 20))
    assert (a(idx)[0] - b(idx)[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("impl", ["sdpa", "scratch"])
def test_kv_cache_matches_full_forward(family, impl):
    torch.manual_seed(0)
    model = GPT(tiny(family, attn_impl=impl)).eval()
    idx = torch.randint(0, V, (3, 24))
    full, _ = model(idx)
    cache = model.new_cache(batch_size=3)
    pieces = [model(idx[:, :9], cache=cache)[0]]          # prefill
    pieces.append(model(idx[:, 9:12], cache=cache)[0])    # a chunk of 3
    for t in range(12, 24):                               # then one token at a time
        pieces.append(model(idx[:, t:t + 1], cache=cache)[0])
    assert cache.length == 24
    assert (torch.cat(pieces, dim=1) - full).abs().max() <= 1e-5


def test_kv_cache_reorder_for_beams():
    torch.manual_seed(0)
    model = GPT(tiny("llama")).eval()
    idx = torch.randint(0, V, (2, 10))
    cache = model.new_cache(batch_size=2)
    model(idx[:, :9], cache=cache)
    cache.reorder(torch.tensor([1, 1, 0]))
    step, _ = model(idx[[1, 1, 0], 9:10], cache=cache)
    full, _ = model(idx[[1, 1, 0]])
    assert (step[:, 0] - full[:, -1]).abs().max() <= 1e-5


def test_kv_cache_overflow_and_mismatch():
    model = GPT(tiny("gpt2")).eval()
    cache = model.new_cache(batch_size=1, max_len=8)
    model(torch.zeros(1, 8, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="KVCache full"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="batch"):
        model(torch.zeros(2, 1, dtype=torch.long), cache=model.new_cache(batch_size=1))
    with pytest.raises(ValueError, match="exceeds block_size"):
        model.new_cache(1, max_len=33)


def test_tied_embeddings_and_num_params():
    model = GPT(tiny("gpt2"))
    assert model.lm_head.weight is model.wte.weight
    untied = GPT(tiny("gpt2", tie_embeddings=False))
    total = sum(p.numel() for p in untied.parameters())
    assert untied.num_params(non_embedding=False) == total
    assert untied.num_params() == total - 2 * V * 0 - V * 32 - 32 * 32
    assert model.num_params() == model.num_params(non_embedding=False) - 32 * 32


def test_init_scales_residual_projections():
    torch.manual_seed(0)
    model = GPT(tiny("gpt2", n_layer=8, n_embd=64, n_head=4))
    std = model.blocks[0].attn.proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(16)) < 1e-3
    assert abs(model.blocks[0].attn.qkv.weight.std().item() - 0.02) < 2e-3


def test_attention_maps():
    torch.manual_seed(0)
    model = GPT(tiny("llama")).eval()
    idx = torch.randint(0, V, (2, 7))
    maps = model.attention_maps(idx)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 7, 7)
    assert torch.allclose(maps[1].sum(-1), torch.ones(2, 4, 7), atol=1e-6)
    assert (maps[0].triu(1) == 0).all()
    assert all(not b.attn.record_weights for b in model.blocks)


@pytest.mark.parametrize("bad, exc, match", [
    (torch.zeros(2, 4), TypeError, "integer token ids"),
    (torch.full((2, 4), V), ValueError, f"token id {V} is out of range"),
    (torch.full((2, 4), -1), ValueError, "token id -1 is out of range"),
    (torch.zeros(2, 33, dtype=torch.long), ValueError, "exceeds block_size=32"),
    (torch.zeros(4, dtype=torch.long), ValueError, r"\(B, T\)"),
])
def test_gpt_rejects_bad_ids(bad, exc, match):
    model = GPT(tiny("gpt2"))
    with pytest.raises(exc, match=match):
        model(bad)


def test_gpt_rejects_bad_targets():
    model = GPT(tiny("gpt2"))
    idx = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(idx, torch.zeros(2, 5, dtype=torch.long))


@pytest.mark.parametrize("kw, match", [
    (dict(n_embd=30), "divisible by n_head"),
    (dict(n_kv_head=3), "multiple of n_kv_head"),
    (dict(norm="batchnorm"), "norm='batchnorm'"),
    (dict(position="alibi"), "position='alibi'"),
    (dict(attn_impl="flash"), "attn_impl"),
    (dict(vocab_size=0), "vocab_size must be a positive int"),
    (dict(dropout=1.5), "dropout"),
])
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny("gpt2", **kw)


def test_config_dict_round_trip_and_presets():
    cfg = tiny("llama")
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_heads": 3})
    small = GPTConfig.preset("gpt2")
    assert (small.n_layer, small.n_embd, small.vocab_size) == (12, 768, 50257)
    smol = GPTConfig.preset("smollm2-135m")
    assert (smol.kv_heads, smol.mlp, smol.position) == (3, "swiglu", "rope")
    with pytest.raises(ValueError, match="unknown preset"):
        GPTConfig.preset("gpt5")


def test_gpt2_small_parameter_count():
    with torch.device("meta"):
        model = GPT(GPTConfig.preset("gpt2"))
    assert model.num_params(non_embedding=False) == 124_439_808
