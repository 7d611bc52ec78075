"""Norms and feed-forward layers against PyTorch / Hugging Face references."""
import pytest
import torch
from llmbook.layers import MLP, LayerNorm, RMSNorm, SwiGLU, make_norm
from torch import nn


def test_layernorm_matches_torch_with_and_without_bias():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    ref = nn.LayerNorm(16)
    nn.init.normal_(ref.weight)
    nn.init.normal_(ref.bias)
    ours = LayerNorm(16)
    ours.load_state_dict(ref.state_dict())
    assert (ours(x) - ref(x)).abs().max() <= 1e-5
    nobias = LayerNorm(16, bias=False)
    assert nobias.bias is None and len(list(nobias.parameters())) == 1


def test_rmsnorm_formula():
    torch.manual_seed(0)
    x = torch.randn(3, 16)
    norm = RMSNorm(16, eps=1e-6)
    nn.init.normal_(norm.weight)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    assert (norm(x) - expected).abs().max() <= 1e-5


def test_mlp_gelu_tanh_matches_gpt2_gelu_new():
    from transformers.activations import NewGELUActivation
    torch.manual_seed(0)
    mlp = MLP(8, 32)
    x = torch.randn(4, 8)
    expected = mlp.proj(NewGELUActivation()(mlp.fc(x)))
    assert (mlp(x) - expected).abs().max() <= 1e-6
    assert (MLP(8, activation="relu").fc.out_features) == 32


def test_swiglu_matches_llama_mlp():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP
    torch.manual_seed(0)
    ref = LlamaMLP(LlamaConfig(hidden_size=16, intermediate_size=40, num_attention_heads=2))
    ours = SwiGLU(16, 40)
    with torch.no_grad():
        ours.gate.weight.copy_(ref.gate_proj.weight)
        ours.up.weight.copy_(ref.up_proj.weight)
        ours.down.weight.copy_(ref.down_proj.weight)
    x = torch.randn(2, 3, 16)
    assert (ours(x) - ref(x)).abs().max() <= 1e-6


def test_layer_errors():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP(8, activation="swish")
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        make_norm("batch", 8, True, 1e-5)
