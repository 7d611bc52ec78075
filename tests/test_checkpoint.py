"""Checkpoints: exact round trip for every model kind, tied weights, clear errors."""
import json

import pytest
import torch
from llmbook import checkpoint
from llmbook.models import (
    GPT,
    Encoder,
    EncoderConfig,
    EncoderForMaskedLM,
    GPTConfig,
    Seq2Seq,
    Seq2SeqConfig,
)
from safetensors import safe_open


def models():
    torch.manual_seed(0)
    small = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 16}
    return [
        GPT(GPTConfig(vocab_size=40, **small)),
        GPT(GPTConfig(vocab_size=40, n_kv_head=1, norm="rmsnorm", position="rope", mlp="swiglu",
                      bias=False, tie_embeddings=False, **small)),
        Encoder(EncoderConfig(vocab_size=40, **small)),
        EncoderForMaskedLM(EncoderConfig(vocab_size=40, **small)),
        Seq2Seq(Seq2SeqConfig(src_vocab_size=40, tgt_vocab_size=30, **small)),
    ]


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_round_trip_is_exact(model, tmp_path):
    checkpoint.save(model, tmp_path / "ckpt")
    loaded = checkpoint.load(tmp_path / "ckpt")
    assert type(loaded) is type(model) and loaded.config == model.config
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["kind"] in checkpoint.KINDS


def test_tied_weights_stay_tied(tmp_path):
    model = models()[0]
    checkpoint.save(model, tmp_path)
    loaded = checkpoint.load(tmp_path)
    assert loaded.lm_head.weight is loaded.wte.weight
    idx = torch.randint(0, 40, (2, 5))
    assert torch.equal(model.eval()(idx)[0], loaded(idx)[0])


def test_weights_stored_transposed_save_and_stay_tied(tmp_path):
    # A weight may be a transposed view (a memory layout chosen for speed); safetensors'
    # save_model fails on such a tensor when it is shared. The same file is written.
    model = models()[0]
    checkpoint.save(model, tmp_path / "plain")
    tied = torch.nn.Parameter(model.wte.weight.detach().t().contiguous().t())
    model.wte.weight = model.lm_head.weight = tied
    model.blocks[0].mlp.fc.weight = torch.nn.Parameter(
        model.blocks[0].mlp.fc.weight.detach().t().contiguous().t())
    assert not model.wte.weight.is_contiguous()
    checkpoint.save(model, tmp_path / "strided")
    loaded = checkpoint.load(tmp_path / "strided")
    assert loaded.lm_head.weight is loaded.wte.weight
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    names = [set(safe_open(str(tmp_path / d / checkpoint.WEIGHTS_NAME), "pt").keys())
             for d in ("plain", "strided")]
    assert names[0] == names[1]                           # the tied weight stored once


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        checkpoint.load(tmp_path / "nowhere")
    model = models()[0]
    checkpoint.save(model, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        checkpoint.load(tmp_path)
    checkpoint.save(model, tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**meta, "kind": "rnn"}))
    with pytest.raises(ValueError, match="unknown model kind 'rnn'"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"],
                                                                         "n_embd": 32}}))
    with pytest.raises(ValueError, match="does not match"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        checkpoint.load(tmp_path)
    with pytest.raises(TypeError, match="cannot save a Linear"):
        checkpoint.save(torch.nn.Linear(2, 2), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        checkpoint.load(tmp_path)


def test_a_model_its_config_cannot_rebuild_is_refused_before_writing(tmp_path):
    from llmbook.moe import moe_gpt
    moe = moe_gpt(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8), 4)
    with pytest.raises(TypeError, match=r"cannot save this GPT: its modules differ .*"
                                        r"extra tensors \['blocks.0.mlp.experts"):
        checkpoint.save(moe, tmp_path / "moe")
    assert not (tmp_path / "moe").exists()
