"""llmbook.quantize: codes and scales against their definitions, Q4_1 against the gguf
package, GPTQ against round-to-nearest."""
import itertools

import numpy as np
import pytest
import torch
from llmbook.quantize import (
    absmax_int8,
    dequantize,
    fake_quantize_,
    gptq,
    groupwise,
    q4_1_dequantize,
    storage_bits,
)


@pytest.fixture
def w():
    return torch.randn(24, 64, generator=torch.Generator().manual_seed(0))


def test_absmax_int8_error_is_at_most_half_a_step(w):
    qt = absmax_int8(w)
    assert qt.q.dtype == torch.int8 and qt.q.abs().max() == 127
    err = (dequantize(qt) - w).abs()
    assert (err <= qt.scale / 2 + 1e-7).all()
    assert storage_bits(qt) == pytest.approx(8 + 16 / 64)


def test_groupwise_codes_use_the_whole_range_and_round_to_nearest(w):
    qt = groupwise(w, bits=4, group_size=16)
    assert qt.q.max() <= 15 and qt.scale.shape == (24, 4)
    deq = dequantize(qt)
    step = qt.scale.repeat_interleave(16, dim=1)
    assert ((deq - w).abs() <= step / 2 + 1e-6).all()
    # Brute force: no other code on the group's grid is closer to the weight.
    zero = qt.zero.repeat_interleave(16, dim=1)
    grid = (torch.arange(16).view(16, 1, 1) - zero) * step          # (16, out, in)
    best = (grid - w).abs().amin(dim=0)
    assert torch.allclose((deq - w).abs(), best, atol=1e-6)


def test_more_bits_less_error(w):
    errs = [(dequantize(groupwise(w, b, 32)) - w).pow(2).mean() for b in (2, 3, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(errs))


def test_q4_1_matches_the_gguf_package():
    gguf = pytest.importorskip("gguf")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 128)).astype(np.float32)
    raw = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q4_1)
    ref = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType.Q4_1)
    ours = q4_1_dequantize(raw)
    assert ours.shape == (8, 128)
    assert np.array_equal(ours.numpy(), ref)            # bit for bit
    assert np.abs(ref - w).max() < 0.5


def test_gptq_beats_round_to_nearest_on_correlated_inputs():
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(64, 64, generator=g)
    x = torch.randn(512, 64, generator=g) @ mix          # correlated features
    w = torch.randn(32, 64, generator=g)
    rtn = dequantize(groupwise(w, 3, 16))
    ours = dequantize(gptq(w, x, bits=3, group_size=16))
    err = lambda wq: (x @ (w - wq).T).pow(2).mean()
    assert err(ours) < 0.8 * err(rtn)


def test_fake_quantize_leaves_tied_embeddings_alone():
    from llmbook.models import GPT, GPTConfig

    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=32))
    emb = m.wte.weight.clone()
    before = [p.clone() for n, p in m.named_parameters() if n.endswith("weight")]
    n = fake_quantize_(m, "int4", group_size=16)
    assert n > 0 and torch.equal(m.wte.weight, emb)
    after = [p for n, p in m.named_parameters() if n.endswith("weight")]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("call, match", [
    (lambda: groupwise(torch.randn(4, 30), 4, 32), "must divide"),
    (lambda: groupwise(torch.randn(4, 32), 9, 32), "bits"),
    (lambda: absmax_int8(torch.randn(4)), "2-D"),
    (lambda: absmax_int8(torch.tensor([[float("nan"), 1.0]])), "non-finite"),
    (lambda: gptq(torch.randn(4, 32), torch.randn(8, 16)), "features"),
    (lambda: q4_1_dequantize(np.zeros((2, 19), np.uint8)), "uint8"),
    (lambda: fake_quantize_(torch.nn.Linear(2, 2), "fp8"), "scheme"),
    (lambda: storage_bits(absmax_int8(torch.randn(2, 4)), 0), "scale_bits"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
