"""Hugging Face interop: random GPT-2 / Llama configs both ways, and the real SmolLM2."""
from __future__ import annotations

import pytest
import torch
from llmbook.interop import config_from_hf, config_to_hf, from_hf, to_hf
from llmbook.models import GPT, GPTConfig
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

TOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial values everywhere, norm gains and biases included (init has them 1 / 0),
    so a swapped or missing tensor shows up in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() == 1 and "norm" in name or name.endswith(("ln_1.weight", "ln_2.weight",
                                                                 "ln_f.weight")):
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(0.15 * noise)


def _gpt2(seed: int, tie: bool) -> GPT2LMHeadModel:
    g = torch.Generator().manual_seed(seed)
    n_head = int(torch.randint(1, 4, (1,), generator=g))
    cfg = GPT2Config(vocab_size=int(torch.randint(40, 120, (1,), generator=g)), n_positions=32,
                     n_embd=8 * n_head * int(torch.randint(1, 3, (1,), generator=g)),
                     n_layer=int(torch.randint(1, 4, (1,), generator=g)), n_head=n_head,
                     tie_word_embeddings=tie, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    _randomize(model, seed)
    return model.eval()


def _llama(seed: int, tie: bool) -> LlamaForCausalLM:
    g = torch.Generator().manual_seed(seed)
    n_kv = int(torch.randint(1, 3, (1,), generator=g))
    n_head = n_kv * int(torch.randint(1, 4, (1,), generator=g))      # GQA when > n_kv
    head_dim = 2 * int(torch.randint(2, 6, (1,), generator=g))
    cfg = LlamaConfig(vocab_size=int(torch.randint(40, 120, (1,), generator=g)),
                      max_position_embeddings=32, hidden_size=n_head * head_dim,
                      head_dim=head_dim, intermediate_size=int(torch.randint(8, 40, (1,), generator=g)),
                      num_hidden_layers=int(torch.randint(1, 4, (1,), generator=g)),
                      num_attention_heads=n_head, num_key_value_heads=n_kv,
                      rope_parameters={"rope_type": "default", "rope_theta": 500.0 + seed},
                      rms_norm_eps=1e-5, tie_word_embeddings=tie,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    _randomize(model, seed)
    return model.eval()


def _ids(vocab_size: int, seed: int, B: int = 2, T: int = 13) -> torch.Tensor:
    return torch.randint(0, vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


CASES = [(build, seed, tie) for build in (_gpt2, _llama) for seed in range(3)
         for tie in (True, False)]


@pytest.mark.parametrize("build,seed,tie", CASES)
def test_from_hf_matches_logits(build, seed, tie):
    hf = build(seed, tie)
    model = from_hf(hf)
    assert model.config.tie_embeddings == tie
    idx = _ids(hf.config.vocab_size, seed)
    with torch.no_grad():
        expected = hf(idx).logits
        got, _ = model(idx)
    assert expected.abs().max() > 0.1            # a real signal, not all zeros
    assert (got - expected).abs().max() <= TOL


@pytest.mark.parametrize("build,seed,tie", CASES)
def test_to_hf_matches_logits(build, seed, tie):
    source = from_hf(build(seed, tie))        # a GPT of that family with random weights
    _randomize(source, seed + 100)             # new weights, set on our side
    hf = to_hf(source)
    assert type(hf).__name__ == ("GPT2LMHeadModel" if build is _gpt2 else "LlamaForCausalLM")
    idx = _ids(source.config.vocab_size, seed + 1)
    with torch.no_grad():
        expected, _ = source(idx)
        got = hf(idx).logits
    assert (got - expected).abs().max() <= TOL
    assert config_from_hf(hf.config) == source.config


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_round_trip_of_presets(name):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(name)).eval()
    again = from_hf(to_hf(model, attn_implementation="eager"))
    idx = _ids(model.config.vocab_size, 0)
    with torch.no_grad():
        assert (again(idx)[0] - model(idx)[0]).abs().max() <= TOL
    assert again.config == model.config


def test_config_maps_both_ways():
    cfg = GPTConfig.preset("smollm2-135m")
    hf_cfg = config_to_hf(cfg)
    assert hf_cfg.num_key_value_heads == 3 and hf_cfg.rope_parameters["rope_theta"] == 1e5
    assert config_from_hf(hf_cfg) == cfg


# ------------------------------------------------------------------------ SmolLM2
@pytest.fixture(scope="module")
def smollm2():
    from llmbook import data
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = data.smollm2_path()
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return hf, AutoTokenizer.from_pretrained(path)


def test_smollm2_logits_and_greedy_continuation(smollm2):
    from llmbook.generate import generate

    hf, tok = smollm2
    model = from_hf(hf)
    idx = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        expected = hf(idx).logits
        got, _ = model(idx)
    assert (got - expected).abs().max() <= 1e-3
    ours = generate(model, idx, max_new_tokens=8, temperature=0)
    theirs = hf.generate(idx, max_new_tokens=8, do_sample=False)
    assert ours.tolist() == theirs.tolist()
    assert "Paris" in tok.decode(ours[0, idx.shape[1]:])


# ---------------------------------------------------------------------- refusals
def test_from_hf_refuses_other_models():
    bert = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32))
    with pytest.raises(ValueError, match="unsupported model BertForMaskedLM"):
        from_hf(bert)


def test_from_hf_refuses_non_models():
    with pytest.raises(TypeError, match="transformers model"):
        from_hf("gpt2")


def test_from_hf_refuses_unsupported_gpt2_options():
    cfg = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                     activation_function="relu")
    with pytest.raises(ValueError, match="activation_function"):
        from_hf(GPT2LMHeadModel(cfg))


def test_from_hf_refuses_rope_scaling():
    cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4})
    with pytest.raises(ValueError, match="rope scaling"):
        from_hf(LlamaForCausalLM(cfg))


def test_to_hf_refuses_mixed_family():
    model = GPT(GPTConfig.preset("tiny-gpt2", position="rope", n_layer=1))
    with pytest.raises(ValueError, match="GPT-2 family"):
        to_hf(model)
    with pytest.raises(TypeError, match="llmbook GPT"):
        to_hf(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
