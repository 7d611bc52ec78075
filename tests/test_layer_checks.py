"""Shapes and values below the entry points: configs, norms, positions, Seq2Seq inputs,
sampling helpers. Every error names the argument, the value and what was expected."""
from __future__ import annotations

import math

import pytest
import torch
from llmbook.generate import sample_next
from llmbook.layers import MLP, LayerNorm, RMSNorm, SwiGLU
from llmbook.models import (
    Encoder,
    EncoderConfig,
    GPTConfig,
    Seq2Seq,
    Seq2SeqConfig,
)
from llmbook.positions import RoPE, rope_cos_sin, sinusoidal

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16}


@pytest.mark.parametrize("kw, match", [
    ({"n_head": 0}, "n_head must be a positive int, got 0"),
    ({"bias": "False"}, "bias must be True or False, got 'False'"),
    ({"tie_embeddings": 0}, "tie_embeddings must be True or False"),
    ({"norm_eps": math.nan}, "norm_eps must be a finite number > 0.0, got nan"),
    ({"norm_eps": 0.0}, "norm_eps must be"),
    ({"rope_theta": math.nan}, "rope_theta must be a finite number"),
    ({"rope_theta": math.inf}, "rope_theta must be"),
    ({"rope_theta": 0.5}, "rope_theta must be a finite number > 1.0"),
    ({"dropout": math.nan}, "dropout must be a finite number"),
])
def test_gpt_config_rejects_nonsense(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GPTConfig(vocab_size=10, **{**SMALL, **kw})


@pytest.mark.parametrize("cls, kw", [(EncoderConfig, {"vocab_size": 10}),
                                     (Seq2SeqConfig, {"src_vocab_size": 10})])
@pytest.mark.parametrize("bad, match", [({"bias": "False"}, "bias must be True or False"),
                                        ({"norm_eps": -1e-5}, "norm_eps must be"),
                                        ({"norm_first": "yes"}, "norm_first must be"),
                                        ({"n_head": 0}, "n_head must be a positive int")])
def test_encoder_and_seq2seq_configs_reject_nonsense(cls, kw, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls(**kw, **{**SMALL, **bad})


def test_norms_and_feed_forwards_check_their_arguments():
    with pytest.raises(ValueError, match="eps must be a finite number > 0.0, got nan"):
        LayerNorm(8, eps=math.nan)
    with pytest.raises(ValueError, match="eps must be"):
        RMSNorm(8, eps=0.0)
    with pytest.raises(TypeError, match="bias must be True or False"):
        LayerNorm(8, bias="False")
    with pytest.raises(ValueError, match="ndim must be a positive int"):
        RMSNorm(0)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        MLP(8, hidden=0)
    with pytest.raises(ValueError, match="dropout must be"):
        SwiGLU(8, dropout=1.5)


def test_position_tables_check_their_arguments():
    with pytest.raises(ValueError, match="rope_theta must be a finite number"):
        rope_cos_sin(4, 8, theta=math.nan)
    with pytest.raises(ValueError, match="rope_theta must be"):
        RoPE(8, 8, theta=-1.0)
    with pytest.raises(ValueError, match="base must be a finite number"):
        sinusoidal(4, 8, base=math.inf)
    rope = RoPE(8, 4)
    with pytest.raises(ValueError, match="offset must be an int >= 0, got -1"):
        rope(2, offset=-1)
    with pytest.raises(ValueError, match=r"position_ids must lie in \[0, 8\), got values in \[-1, 2\]"):
        rope(2, position_ids=torch.tensor([[-1, 2]]))


def _seq2seq() -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(src_vocab_size=20, tgt_vocab_size=15, **SMALL)).eval()


def test_seq2seq_batch_sizes_must_agree():
    model = _seq2seq()
    src, tgt = torch.randint(0, 20, (3, 5)), torch.randint(0, 15, (1, 4))
    with pytest.raises(ValueError, match=r"src \(3, 5\) and tgt \(1, 4\) must have the same batch"):
        model(src, tgt)


def test_seq2seq_decode_checks_its_memory():
    model = _seq2seq()
    tgt = torch.randint(0, 15, (2, 4))
    memory = model.encode(torch.randint(0, 20, (2, 5)))
    assert model.decode(tgt, memory).shape == (2, 4, 15)
    with pytest.raises(ValueError, match=r"memory must have shape \(B=2, S >= 1, C=16\)"):
        model.decode(tgt, memory[:1])
    with pytest.raises(ValueError, match=r"memory must have shape"):
        model.decode(tgt, memory[..., :8])
    with pytest.raises(ValueError, match=r"memory must have 3 dims"):
        model.decode(tgt, memory[0])
    with pytest.raises(TypeError, match="memory must be a float tensor"):
        model.decode(tgt, memory.long())
    with pytest.raises(ValueError, match=r"src_mask must have shape \(B, T\) = \(2, 5\)"):
        model.decode(tgt, memory, src_mask=torch.ones(2, 4, dtype=torch.long))


def test_token_type_ids_shape_and_range():
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig(vocab_size=20, **SMALL))
    idx = torch.randint(0, 20, (2, 5))
    with pytest.raises(ValueError, match=r"token_type_ids must have the shape of idx \(2, 5\), got \(1, 5\)"):
        enc(idx, token_type_ids=torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_type_ids: token id 2 is out of range \[0, 2\)"):
        enc(idx, token_type_ids=torch.full((2, 5), 2))
    with pytest.raises(TypeError, match="attention_mask must be bool or integer"):
        enc(idx, attention_mask=torch.ones(2, 5))


@pytest.mark.parametrize("t", [-1.0, -0.5, math.nan, math.inf, "1", True])
def test_sampling_helper_rejects_bad_temperatures(t):
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        sample_next(torch.randn(2, 5), temperature=t)


def test_cache_masks_and_feed_forwards_name_bad_shapes():
    from llmbook.attention import KVCache, causal_mask, padding_mask

    cache = KVCache(1, 2, 2, 4, 4)
    with pytest.raises(ValueError, match=r"must both be \(B, n_kv_head, T, head_dim\), got \(2, 2, 4\)"):
        cache.append(0, torch.zeros(2, 2, 4), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"index values must lie in \[0, batch_size=2\)"):
        cache.reorder(torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=5\], got \[3, 9\]"):
        padding_mask(torch.tensor([3, 9]), 5)
    with pytest.raises(ValueError, match="T must be a positive int"):
        causal_mask(True)
    with pytest.raises(ValueError, match=r"MLP: x must have shape \(\.\.\., C=8\), got \(2, 6\)"):
        MLP(8)(torch.zeros(2, 6))
    with pytest.raises(ValueError, match=r"SwiGLU: x must have shape"):
        SwiGLU(8)(torch.zeros(2, 6))


def test_tokenizer_files_with_bad_merges_are_named(tmp_path):
    from llmbook.tokenizers import BPETokenizer

    tok = BPETokenizer.train("the then there " * 20, 270)
    tok.save(tmp_path / "t.json")
    import json

    data = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    data["merges"][0] = "abc"
    (tmp_path / "t.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="merge 1 must be two tokens"):
        BPETokenizer.load(tmp_path / "t.json")
    (tmp_path / "t.json").write_text('{"format": "llmbook.BPETokenizer/1"}', encoding="utf-8")
    with pytest.raises(ValueError, match="lacks"):
        BPETokenizer.load(tmp_path / "t.json")
    (tmp_path / "t.json").write_text('{"form', encoding="utf-8")
    with pytest.raises(ValueError, match="not a saved llmbook BPETokenizer"):
        BPETokenizer.load(tmp_path / "t.json")


class _Wrapped(torch.nn.Module):
    """A wrapper of a Linear that, like a LoRA layer, has no ``in_features``."""

    def __init__(self, base: torch.nn.Linear) -> None:
        super().__init__()
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + 1.0


def test_feed_forward_nets_accept_wrapped_linears():
    from llmbook.layers import MLP, SwiGLU

    x = torch.randn(2, 3, 8)
    mlp = MLP(8)
    plain = mlp(x)
    mlp.fc, mlp.proj = _Wrapped(mlp.fc), _Wrapped(mlp.proj)
    assert mlp(x).shape == plain.shape and not torch.equal(mlp(x), plain)
    glu = SwiGLU(8)
    glu.gate, glu.down = _Wrapped(glu.gate), _Wrapped(glu.down)
    assert glu(x).shape == (2, 3, 8)
    with pytest.raises(ValueError, match="C=8"):
        mlp(torch.randn(2, 3, 7))
