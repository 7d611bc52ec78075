"""Property tests (hypothesis): softmax rows, masks, permutation equivariance, causality,
KV-cache splits, checkpoint round trips. Small sizes, few examples."""
import tempfile

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook import checkpoint
from llmbook.attention import attention
from llmbook.models import GPT, Encoder, EncoderConfig, GPTConfig

FEW = settings(max_examples=12, deadline=None)


pytestmark = pytest.mark.usefixtures("one_thread")


@FEW
@given(B=st.integers(1, 3), Tq=st.integers(1, 6), Tk=st.integers(1, 6), d=st.integers(1, 8),
       causal=st.booleans(), seed=st.integers(0, 2**16))
def test_rows_sum_to_one_and_masked_weights_are_zero(B, Tq, Tk, d, causal, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, Tq, d, generator=g), torch.randn(B, Tk, d, generator=g),
               torch.randn(B, Tk, d, generator=g))
    mask = torch.rand(B, Tq, Tk, generator=g) < 0.7
    _, w = attention(q, k, v, mask=mask, causal=causal)
    allowed = mask & torch.ones(Tq, Tk, dtype=torch.bool).tril(Tk - Tq) if causal else mask
    assert (w[~allowed] == 0).all()
    rows = allowed.any(-1)
    assert torch.allclose(w.sum(-1)[rows], torch.ones(int(rows.sum())), atol=1e-5)
    assert (w.sum(-1)[~rows] == 0).all()                       # fully masked rows: zeros
    assert not torch.isnan(w).any()


@FEW
@given(T=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_encoder_without_positions_is_permutation_equivariant(T, seed):
    torch.manual_seed(seed)
    enc = Encoder(EncoderConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=16,
                                position="none")).eval()
    idx = torch.randint(0, 30, (2, T))
    perm = torch.randperm(T)
    assert (enc(idx[:, perm]) - enc(idx)[:, perm]).abs().max() <= 1e-5


@FEW
@given(T=st.integers(2, 8), seed=st.integers(0, 2**16), position=st.sampled_from(
    ["none", "learned", "rope"]))
def test_decoder_prefix_outputs_ignore_the_future(T, seed, position):
    """Causality: logits at position t depend on tokens 0..t only. With ``position="none"``
    the first token sees only itself, so its logits are those of the 1-token input."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=16,
                          position=position)).eval()
    idx = torch.randint(0, 30, (2, T))
    other = idx.clone()
    other[:, -1] = (idx[:, -1] + 1) % 30
    a, b = model(idx)[0], model(other)[0]
    assert (a[:, :-1] - b[:, :-1]).abs().max() <= 1e-5
    assert (a[:, -1] - b[:, -1]).abs().max() > 1e-6
    assert (a[:, :1] - model(idx[:, :1])[0]).abs().max() <= 1e-5


@FEW
@given(split=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_kv_cache_any_prefill_split(split, seed):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=30, block_size=10, n_layer=2, n_head=4, n_kv_head=2,
                          n_embd=16, norm="rmsnorm", position="rope", mlp="swiglu",
                          bias=False)).eval()
    idx = torch.randint(0, 30, (2, 10))
    cache = model.new_cache(2)
    parts = [model(idx[:, :split], cache=cache)[0]]
    parts += [model(idx[:, t:t + 1], cache=cache)[0] for t in range(split, 10)]
    assert (torch.cat(parts, 1) - model(idx)[0]).abs().max() <= 1e-5


@settings(max_examples=6, deadline=None)
@given(n_layer=st.integers(1, 2), heads=st.sampled_from([(2, 1), (2, 2), (4, 2)]),
       norm=st.sampled_from(["layernorm", "rmsnorm"]),
       position=st.sampled_from(["learned", "rope", "none"]), tie=st.booleans(),
       seed=st.integers(0, 2**16))
def test_checkpoint_round_trip_is_exact(n_layer, heads, norm, position, tie, seed):
    torch.manual_seed(seed)
    n_head, n_kv_head = heads
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=n_layer, n_head=n_head,
                          n_kv_head=n_kv_head, n_embd=8, norm=norm, position=position,
                          tie_embeddings=tie)).eval()
    with tempfile.TemporaryDirectory() as d:
        checkpoint.save(model, d)
        loaded = checkpoint.load(d)
    idx = torch.randint(0, 20, (1, 8))
    assert torch.equal(model(idx)[0], loaded(idx)[0])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values()))
