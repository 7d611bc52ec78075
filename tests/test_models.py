"""GPT / encoder / encoder–decoder: loss at init, sdpa vs scratch, KV cache, bad input."""
import math

import pytest
import torch
from llmbook.models import GPT, GPTConfig

V = 97


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(family: str, **kw) -> GPTConfig:
    base = {"vocab_size": V, "block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 32}
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
    ({"n_embd": 30}, "divisible by n_head"),
    ({"n_kv_head": 3}, "multiple of n_kv_head"),
    ({"norm": "batchnorm"}, "norm='batchnorm'"),
    ({"position": "alibi"}, "position='alibi'"),
    ({"attn_impl": "flash"}, "attn_impl"),
    ({"vocab_size": 0}, "vocab_size must be a positive int"),
    ({"dropout": 1.5}, "dropout"),
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


# ---------------------------------------------------------------- encoder, seq2seq

from llmbook.models import Encoder, EncoderConfig, EncoderForMaskedLM, Seq2Seq, Seq2SeqConfig
from torch import nn


def enc_config(**kw) -> EncoderConfig:
    return EncoderConfig(**{"vocab_size": V, "block_size": 16, "n_layer": 2, "n_head": 2,
                                   "n_embd": 16, **kw})


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_ignores_padding(norm_first):
    torch.manual_seed(0)
    enc = Encoder(enc_config(norm_first=norm_first)).eval()
    idx = torch.randint(1, V, (1, 5))
    padded = torch.cat([idx, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    alone = enc(idx)
    with_pad = enc(padded, attention_mask=mask)
    assert with_pad.shape == (1, 8, 16)
    assert (with_pad[:, :5] - alone).abs().max() <= 1e-5
    unmasked = enc(padded)
    assert (unmasked[:, :5] - alone).abs().max() > 1e-3            # the mask matters


def test_encoder_is_bidirectional():
    torch.manual_seed(0)
    enc = Encoder(enc_config()).eval()
    idx = torch.randint(0, V, (1, 6))
    changed = idx.clone()
    changed[0, -1] = (idx[0, -1] + 1) % V
    assert (enc(idx)[0, 0] - enc(changed)[0, 0]).abs().max() > 1e-4


def test_masked_lm_loss_at_init():
    torch.manual_seed(0)
    mlm = EncoderForMaskedLM(enc_config())
    idx = torch.randint(0, V, (4, 12))
    labels = torch.full_like(idx, -100)
    labels[:, ::3] = torch.randint(0, V, (4, 4))
    logits, loss = mlm(idx, labels=labels)
    assert logits.shape == (4, 12, V)
    assert abs(loss.item() - math.log(V)) < 0.3
    assert mlm.decoder.weight is mlm.encoder.embed.tok.weight


def copy_mha(ref, ours):
    with torch.no_grad():
        if ours.cross:
            E = ref.embed_dim
            ours.q.weight.copy_(ref.in_proj_weight[:E]); ours.q.bias.copy_(ref.in_proj_bias[:E])
            ours.kv.weight.copy_(ref.in_proj_weight[E:]); ours.kv.bias.copy_(ref.in_proj_bias[E:])
        else:
            ours.qkv.weight.copy_(ref.in_proj_weight); ours.qkv.bias.copy_(ref.in_proj_bias)
        ours.proj.load_state_dict(ref.out_proj.state_dict())


def copy_from_nn_transformer(ref: nn.Transformer, model: Seq2Seq) -> None:
    for ours, theirs in zip(model.encoder.blocks, ref.encoder.layers):
        copy_mha(theirs.self_attn, ours.attn)
        ours.mlp.fc.load_state_dict(theirs.linear1.state_dict())
        ours.mlp.proj.load_state_dict(theirs.linear2.state_dict())
        ours.ln_1.load_state_dict(theirs.norm1.state_dict())
        ours.ln_2.load_state_dict(theirs.norm2.state_dict())
    for ours, theirs in zip(model.decoder.blocks, ref.decoder.layers):
        copy_mha(theirs.self_attn, ours.attn)
        copy_mha(theirs.multihead_attn, ours.cross_attn)
        ours.mlp.fc.load_state_dict(theirs.linear1.state_dict())
        ours.mlp.proj.load_state_dict(theirs.linear2.state_dict())
        ours.ln_1.load_state_dict(theirs.norm1.state_dict())
        ours.ln_cross.load_state_dict(theirs.norm2.state_dict())
        ours.ln_2.load_state_dict(theirs.norm3.state_dict())
    model.encoder.ln_f.load_state_dict(ref.encoder.norm.state_dict())
    model.decoder.ln_f.load_state_dict(ref.decoder.norm.state_dict())


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("impl", ["sdpa", "scratch"])
def test_seq2seq_matches_nn_transformer(norm_first, impl):
    torch.manual_seed(0)
    C, H = 32, 4
    ref = nn.Transformer(d_model=C, nhead=H, num_encoder_layers=2, num_decoder_layers=3,
                         dim_feedforward=48, dropout=0.0, batch_first=True,
                         norm_first=norm_first)
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=V, n_layer=2, n_dec_layer=3, n_head=H,
                                  n_embd=C, mlp_hidden=48, norm_first=norm_first,
                                  block_size=16, attn_impl=impl))
    copy_from_nn_transformer(ref, model)
    ref.train(), model.train()          # train mode with dropout 0: no fast path in torch
    src, tgt = torch.randn(2, 9, C), torch.randn(2, 6, C)
    src_len, tgt_len = torch.tensor([9, 5]), torch.tensor([6, 4])
    src_pad = torch.arange(9)[None] >= src_len[:, None]        # True = pad (torch's sense)
    tgt_pad = torch.arange(6)[None] >= tgt_len[:, None]
    expected = ref(src, tgt, tgt_mask=ref.generate_square_subsequent_mask(6, dtype=torch.bool),
                   src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
                   memory_key_padding_mask=src_pad)
    memory = model.encoder(src, mask=~src_pad[:, None, None, :])
    got = model.decoder(tgt, mask=~tgt_pad[:, None, None, :], causal=True, memory=memory,
                        memory_mask=~src_pad[:, None, None, :])
    assert (got - expected).abs().max() <= 1e-5


def test_seq2seq_cache_and_loss():
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=50, n_layer=2, n_head=2,
                                  n_embd=16, block_size=16)).eval()
    src, tgt = torch.randint(0, V, (2, 7)), torch.randint(0, 50, (2, 6))
    full, loss = model(src, tgt, targets=torch.randint(0, 50, (2, 6)))
    assert full.shape == (2, 6, 50) and abs(loss.item() - math.log(50)) < 0.5
    memory = model.encode(src)
    cache = model.new_cache(batch_size=2)
    steps = [model.decode(tgt[:, :2], memory, cache=cache)]
    steps += [model.decode(tgt[:, t:t + 1], memory, cache=cache) for t in range(2, 6)]
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="src_mask must have shape"):
        model(src, tgt, src_mask=torch.ones(2, 8))
    with pytest.raises(ValueError, match="tgt: token id 50 is out of range"):
        model(src, torch.full((2, 3), 50))


def test_forward_compiles_without_graph_breaks():
    """fullgraph=True fails on any graph break (e.g. a Python branch on a tensor value)."""
    torch.manual_seed(0)
    model = GPT(tiny("llama", n_layer=1)).eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    idx, targets = torch.randint(0, V, (2, 7)), torch.randint(0, V, (2, 7))
    logits, loss = compiled(idx, targets)
    assert torch.equal(logits, model(idx)[0]) and torch.equal(loss, model(idx, targets)[1])
    cache = model.new_cache(2)
    steps = [compiled(idx[:, :5], cache=cache)[0]]
    steps += [compiled(idx[:, t:t + 1], cache=cache)[0] for t in range(5, 7)]
    assert (torch.cat(steps, 1) - logits).abs().max() <= 1e-5
    with pytest.raises(RuntimeError, match="out of range"):
        compiled(torch.full((2, 7), V))


def test_encoder_for_masked_lm_matches_hugging_face_bert():
    from transformers import BertConfig, BertForMaskedLM
    torch.manual_seed(0)
    hf = BertForMaskedLM(BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=48,
                                    max_position_embeddings=16, hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)).eval()
    ours = EncoderForMaskedLM(enc_config(n_embd=32, n_head=4, mlp_hidden=48)).eval()
    sd = hf.state_dict()
    enc = ours.encoder
    with torch.no_grad():
        enc.embed.tok.weight.copy_(sd["bert.embeddings.word_embeddings.weight"])
        enc.embed.pos.weight.copy_(sd["bert.embeddings.position_embeddings.weight"])
        enc.types.weight.copy_(sd["bert.embeddings.token_type_embeddings.weight"])
        enc.ln_embed.weight.copy_(sd["bert.embeddings.LayerNorm.weight"])
        enc.ln_embed.bias.copy_(sd["bert.embeddings.LayerNorm.bias"])
        for i, block in enumerate(enc.stack.blocks):
            p = f"bert.encoder.layer.{i}."
            for part in ("weight", "bias"):
                block.attn.qkv.get_parameter(part).copy_(torch.cat(
                    [sd[f"{p}attention.self.{n}.{part}"] for n in ("query", "key", "value")]))
                block.attn.proj.get_parameter(part).copy_(sd[f"{p}attention.output.dense.{part}"])
                block.ln_1.get_parameter(part).copy_(sd[f"{p}attention.output.LayerNorm.{part}"])
                block.mlp.fc.get_parameter(part).copy_(sd[f"{p}intermediate.dense.{part}"])
                block.mlp.proj.get_parameter(part).copy_(sd[f"{p}output.dense.{part}"])
                block.ln_2.get_parameter(part).copy_(sd[f"{p}output.LayerNorm.{part}"])
        for part in ("weight", "bias"):
            ours.dense.get_parameter(part).copy_(sd[f"cls.predictions.transform.dense.{part}"])
            ours.ln.get_parameter(part).copy_(sd[f"cls.predictions.transform.LayerNorm.{part}"])
        ours.decoder.bias.copy_(sd["cls.predictions.bias"])
    idx = torch.randint(0, V, (2, 10))
    attention_mask = torch.ones(2, 10, dtype=torch.long)
    attention_mask[1, 6:] = 0
    types = torch.zeros_like(idx)
    types[:, 5:] = 1
    expected = hf(input_ids=idx, attention_mask=attention_mask, token_type_ids=types).logits
    got, _ = ours(idx, attention_mask, token_type_ids=types)
    assert (got - expected).abs().max() <= 1e-5


def test_encoder_and_seq2seq_errors():
    enc = Encoder(enc_config())
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, T\) = \(2, 5\)"):
        enc(torch.zeros(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="exceeds block_size=16"):
        enc(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="token_type_ids: token id 2 is out of range"):
        enc(torch.zeros(1, 3, dtype=torch.long), token_type_ids=torch.full((1, 3), 2))
    with pytest.raises(ValueError, match="position='rope'"):
        enc_config(position="rope")
    with pytest.raises(ValueError, match="activation='swish'"):
        Seq2SeqConfig(activation="swish")
    with pytest.raises(ValueError, match="divisible by n_head"):
        Seq2SeqConfig(n_embd=30, n_head=4)
    with pytest.raises(TypeError, match="needs a Seq2SeqConfig"):
        Seq2Seq(enc_config())
    cfg = Seq2SeqConfig(src_vocab_size=10, n_layer=1, n_head=2, n_embd=8)
    assert Seq2SeqConfig.from_dict(cfg.to_dict()) == cfg


def test_seq2seq_greedy_with_cached_cross_attention_is_token_identical():
    torch.manual_seed(0)
    for norm_first in (False, True):
        model = Seq2Seq(Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=40, n_layer=2,
                                      n_dec_layer=3, n_head=2, n_embd=16, block_size=24,
                                      norm_first=norm_first)).eval()
        src = torch.randint(0, V, (5, 9))
        src_mask = torch.ones(5, 9, dtype=torch.long)
        src_mask[1, 6:] = src_mask[3, 2:] = 0
        memory = model.encode(src, src_mask)
        kv = model.cross_kv(memory)
        assert len(kv) == 3 and kv[0][0].shape == (5, 2, 9, 8)
        cached = model.greedy(src, 20, bos_id=1, src_mask=src_mask)
        plain = model.greedy(src, 20, bos_id=1, src_mask=src_mask, cache_cross=False)
        assert cached.shape == (5, 20) and torch.equal(cached, plain)
        # against no cache at all: re-decode the whole prefix and take the last argmax
        tgt = torch.full((5, 1), 1)
        for _ in range(20):
            logits = model.decode(tgt, memory, src_mask)
            tgt = torch.cat([tgt, logits[:, -1].argmax(-1, keepdim=True)], 1)
        assert torch.equal(cached, tgt[:, 1:])
        # the logits themselves agree, step by step
        step = model.decode(tgt[:, :4], memory, src_mask, memory_kv=kv)
        assert torch.allclose(step, model.decode(tgt[:, :4], memory, src_mask), atol=1e-6)


def test_seq2seq_greedy_stops_at_eos_and_checks_its_arguments():
    torch.manual_seed(1)
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=12, n_layer=1, n_head=2,
                                  n_embd=16, block_size=16)).eval()
    src = torch.randint(0, V, (3, 5))
    free = model.greedy(src, 16, bos_id=0)
    eos = int(free[0, 2])                         # a token row 0 emits at step 3
    out = model.greedy(src, 16, bos_id=0, eos_id=eos)
    for row, full in zip(out, free):
        hits = (full == eos).nonzero()
        if len(hits):
            k = int(hits[0])
            assert torch.equal(row[:k + 1], full[:k + 1]) and (row[k:] == eos).all()
    assert out.size(1) == 16 or (out == eos).any(dim=1).all()   # stops once all are done
    with pytest.raises(ValueError, match="bos_id must be an int in"):
        model.greedy(src, 4, bos_id=12)
    with pytest.raises(ValueError, match="max_new_tokens=17 exceeds block_size=16"):
        model.greedy(src, 17, bos_id=0)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int"):
        model.greedy(src, 0, bos_id=0)
    with pytest.raises(TypeError, match="src"):
        model.greedy(src.float(), 4, bos_id=0)
    memory = model.encode(src)
    with pytest.raises(ValueError, match="memory_kv must hold one"):
        model.decode(src[:, :1] % 12, memory, memory_kv=[])
    k, v = model.cross_kv(memory)[0]
    with pytest.raises(ValueError, match="context_kv must be a pair"):
        model.decode(src[:, :1] % 12, memory, memory_kv=[(k[:2], v[:2])])
