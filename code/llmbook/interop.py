"""Weights to and from Hugging Face ``transformers``: GPT-2 and Llama families.

``from_hf(hf_model) -> GPT`` and ``to_hf(model) -> GPT2LMHeadModel | LlamaForCausalLM``
copy every weight across and map the configuration both ways, so the same ``GPT`` code
runs real checkpoints (GPT-2 on Colab, SmolLM2-135M offline) with logits that match
``transformers``.

Two differences of layout are all there is to it:

* GPT-2 stores its linear layers as ``Conv1D`` with weight ``(in, out)``; PyTorch's
  ``nn.Linear`` (ours) stores ``(out, in)``, so those weights are transposed.
* Llama has separate ``q_proj``, ``k_proj``, ``v_proj``; ``GPT`` has one fused
  ``qkv`` projection laid out ``[q | k | v]``, so they are concatenated (and split back).

Both use the same rotary layout ("rotate half"), so RoPE weights need no permutation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from llmbook.models import GPT, GPTConfig

__all__ = ["config_from_hf", "config_to_hf", "from_hf", "to_hf", "weight_map"]

GPT2_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")  # both are GELU with tanh


@dataclass(frozen=True)
class Mapping:
    """One of our parameters and where it lives in the Hugging Face model.

    ``kind``: ``"copy"`` (same tensor), ``"transpose"`` (Conv1D ``(in, out)`` vs
    ``(out, in)``) or ``"concat"`` (several HF tensors stacked along dim 0).
    """

    ours: str
    theirs: tuple[str, ...]
    kind: str = "copy"


# ------------------------------------------------------------------------- configs
def family(config: GPTConfig) -> str:
    """``"gpt2"`` or ``"llama"``: which Hugging Face class can hold this config."""
    c = config
    if c.qk_norm or (c.mlp == "gelu" and c.activation != "gelu_tanh"):
        raise ValueError(f"to_hf has no Hugging Face class for qk_norm={c.qk_norm} or "
                         f"activation={c.activation!r} (GPT-2 uses 'gelu_tanh')")
    if (c.norm, c.position, c.mlp) == ("layernorm", "learned", "gelu") and c.bias \
            and c.kv_heads == c.n_head:
        return "gpt2"
    if (c.norm, c.position, c.mlp) == ("rmsnorm", "rope", "swiglu"):
        return "llama"
    raise ValueError(
        "to_hf supports the GPT-2 family (layernorm, learned positions, gelu MLP, biases, "
        "n_kv_head = n_head) and the Llama family (rmsnorm, rope, swiglu); got "
        f"norm={c.norm!r}, position={c.position!r}, mlp={c.mlp!r}, bias={c.bias}, "
        f"n_kv_head={c.n_kv_head}")


def config_from_hf(hf_config) -> GPTConfig:
    """A ``GPTConfig`` from a ``GPT2Config`` or ``LlamaConfig``; other models are refused."""
    kind = getattr(hf_config, "model_type", None)
    if kind == "gpt2":
        return _gpt2_config_from_hf(hf_config)
    if kind == "llama":
        return _llama_config_from_hf(hf_config)
    raise ValueError(f"unsupported Hugging Face model type {kind!r}: llmbook.interop handles "
                     "'gpt2' (GPT2LMHeadModel) and 'llama' (LlamaForCausalLM)")


def _refuse(condition: bool, message: str) -> None:
    if condition:
        raise ValueError(f"unsupported configuration: {message}")


def _gpt2_config_from_hf(h) -> GPTConfig:
    _refuse(h.activation_function not in GPT2_ACTIVATIONS,
            f"activation_function={h.activation_function!r} (GPT uses GELU-tanh)")
    _refuse(not h.scale_attn_weights, "scale_attn_weights=False")
    _refuse(h.scale_attn_by_inverse_layer_idx, "scale_attn_by_inverse_layer_idx=True")
    _refuse(getattr(h, "add_cross_attention", False), "add_cross_attention=True")
    return GPTConfig(vocab_size=h.vocab_size, block_size=h.n_positions, n_layer=h.n_layer,
                     n_head=h.n_head, n_embd=h.n_embd, mlp_hidden=h.n_inner,
                     norm="layernorm", position="learned", mlp="gelu", bias=True,
                     tie_embeddings=bool(h.tie_word_embeddings),
                     norm_eps=h.layer_norm_epsilon, dropout=h.resid_pdrop)


def _rope_theta(h) -> float:
    """RoPE base from a Llama config (``rope_parameters`` in transformers 5, else 4.x)."""
    params = getattr(h, "rope_parameters", None) or {}
    scaling = getattr(h, "rope_scaling", None) or {}
    rope_type = params.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
    _refuse(rope_type != "default", f"rope scaling of type {rope_type!r}")
    return float(params.get("rope_theta", getattr(h, "rope_theta", 10000.0)))


def _llama_config_from_hf(h) -> GPTConfig:
    head_dim = getattr(h, "head_dim", None) or h.hidden_size // h.num_attention_heads
    _refuse(head_dim * h.num_attention_heads != h.hidden_size,
            f"head_dim={head_dim} with {h.num_attention_heads} heads != hidden {h.hidden_size}")
    _refuse(h.hidden_act != "silu", f"hidden_act={h.hidden_act!r} (SwiGLU uses silu)")
    _refuse(bool(h.attention_bias) != bool(h.mlp_bias),
            "attention_bias and mlp_bias differ (GPT has one bias switch)")
    return GPTConfig(vocab_size=h.vocab_size, block_size=h.max_position_embeddings,
                     n_layer=h.num_hidden_layers, n_head=h.num_attention_heads,
                     n_embd=h.hidden_size, n_kv_head=h.num_key_value_heads,
                     norm="rmsnorm", position="rope", mlp="swiglu",
                     mlp_hidden=h.intermediate_size, bias=bool(h.attention_bias),
                     tie_embeddings=bool(h.tie_word_embeddings), rope_theta=_rope_theta(h),
                     norm_eps=h.rms_norm_eps, dropout=float(h.attention_dropout))


def config_to_hf(config: GPTConfig):
    """A ``GPT2Config`` or ``LlamaConfig`` for ``config`` (see :func:`family`)."""
    from transformers import GPT2Config, LlamaConfig

    c = config
    if family(c) == "gpt2":
        special = 50256 if c.vocab_size > 50256 else None  # GPT-2's <|endoftext|>
        return GPT2Config(bos_token_id=special, eos_token_id=special, vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd,
                          n_layer=c.n_layer, n_head=c.n_head, n_inner=c.mlp_hidden,
                          activation_function="gelu_new", layer_norm_epsilon=c.norm_eps,
                          resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
                          tie_word_embeddings=c.tie_embeddings)
    return LlamaConfig(vocab_size=c.vocab_size, max_position_embeddings=c.block_size,
                       hidden_size=c.n_embd, num_hidden_layers=c.n_layer,
                       num_attention_heads=c.n_head, num_key_value_heads=c.kv_heads,
                       head_dim=c.head_dim, intermediate_size=c.mlp_hidden or 4 * c.n_embd,
                       hidden_act="silu", rms_norm_eps=c.norm_eps, attention_bias=c.bias,
                       mlp_bias=c.bias, tie_word_embeddings=c.tie_embeddings,
                       attention_dropout=c.dropout,
                       rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta})


# ---------------------------------------------------------------------- weight maps
def weight_map(config: GPTConfig) -> list[Mapping]:
    """Where each of ``GPT(config)``'s parameters lives in the Hugging Face model."""
    if family(config) == "gpt2":
        return _gpt2_map(config)
    return _llama_map(config)


def _gpt2_map(c: GPTConfig) -> list[Mapping]:
    maps = [Mapping("wte.weight", ("transformer.wte.weight",)),
            Mapping("wpe.weight", ("transformer.wpe.weight",))]
    for i in range(c.n_layer):
        ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
        for o, t, kind in [("ln_1", "ln_1", "copy"), ("attn.qkv", "attn.c_attn", "transpose"),
                           ("attn.proj", "attn.c_proj", "transpose"), ("ln_2", "ln_2", "copy"),
                           ("mlp.fc", "mlp.c_fc", "transpose"),
                           ("mlp.proj", "mlp.c_proj", "transpose")]:
            maps.append(Mapping(ours + o + ".weight", (theirs + t + ".weight",), kind))
            maps.append(Mapping(ours + o + ".bias", (theirs + t + ".bias",)))
    maps += [Mapping("ln_f.weight", ("transformer.ln_f.weight",)),
             Mapping("ln_f.bias", ("transformer.ln_f.bias",))]
    if not c.tie_embeddings:
        maps.append(Mapping("lm_head.weight", ("lm_head.weight",)))
    return maps


def _llama_map(c: GPTConfig) -> list[Mapping]:
    params = ["weight", "bias"] if c.bias else ["weight"]
    maps = [Mapping("wte.weight", ("model.embed_tokens.weight",))]
    for i in range(c.n_layer):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        maps.append(Mapping(ours + "ln_1.weight", (theirs + "input_layernorm.weight",)))
        maps.append(Mapping(ours + "ln_2.weight", (theirs + "post_attention_layernorm.weight",)))
        for p in params:
            qkv = tuple(f"{theirs}self_attn.{n}_proj.{p}" for n in "qkv")
            maps.append(Mapping(f"{ours}attn.qkv.{p}", qkv, "concat"))
            for o, t in [("attn.proj", "self_attn.o_proj"), ("mlp.gate", "mlp.gate_proj"),
                         ("mlp.up", "mlp.up_proj"), ("mlp.down", "mlp.down_proj")]:
                maps.append(Mapping(f"{ours}{o}.{p}", (f"{theirs}{t}.{p}",)))
    maps.append(Mapping("ln_f.weight", ("model.norm.weight",)))
    if not c.tie_embeddings:
        maps.append(Mapping("lm_head.weight", ("lm_head.weight",)))
    return maps


def _qkv_sizes(c: GPTConfig) -> list[int]:
    return [c.n_head * c.head_dim, c.kv_heads * c.head_dim, c.kv_heads * c.head_dim]


# --------------------------------------------------------------------- conversions
@torch.no_grad()
def from_hf(hf_model: nn.Module) -> GPT:
    """Copy a ``GPT2LMHeadModel`` or ``LlamaForCausalLM`` into a new ``GPT``.

    The result has the Hugging Face model's dtype and device and is in eval mode.
    Logits agree with ``hf_model(idx).logits`` to float rounding, ``(B, T, vocab_size)``.
    """
    if not isinstance(hf_model, nn.Module) or not hasattr(hf_model, "config"):
        raise TypeError(f"from_hf expects a transformers model, got {type(hf_model).__name__}")
    _check_class(hf_model)
    config = config_from_hf(hf_model.config)
    theirs = hf_model.state_dict()
    weight = next(hf_model.parameters())
    model = GPT(config).to(device=weight.device, dtype=weight.dtype)
    ours = model.state_dict()
    for m in weight_map(config):
        _require(theirs, m.theirs)
        if m.kind == "transpose":
            value = theirs[m.theirs[0]].t()
        elif m.kind == "concat":
            value = torch.cat([theirs[name] for name in m.theirs], dim=0)
        else:
            value = theirs[m.theirs[0]]
        _copy(ours[m.ours], value, m.ours)
    _check_all_mapped(model, weight_map(config))
    return model.eval()


@torch.no_grad()
def to_hf(model: GPT, attn_implementation: str = "sdpa") -> nn.Module:
    """Copy a ``GPT`` into a new ``GPT2LMHeadModel`` or ``LlamaForCausalLM``.

    ``attn_implementation``: ``"sdpa"`` or ``"eager"`` (Hugging Face's attention code
    path). The result has the model's dtype and device and is in eval mode.
    """
    from transformers import AutoModelForCausalLM

    if not isinstance(model, GPT):
        raise TypeError(f"to_hf expects an llmbook GPT, got {type(model).__name__}")
    config = model.config
    hf_config = config_to_hf(config)
    weight = model.wte.weight
    hf_model = AutoModelForCausalLM.from_config(hf_config, attn_implementation=attn_implementation)
    hf_model = hf_model.to(device=weight.device, dtype=weight.dtype)
    theirs = hf_model.state_dict()
    ours = model.state_dict()
    sizes = _qkv_sizes(config)
    for m in weight_map(config):
        _require(theirs, m.theirs)
        value = ours[m.ours]
        if m.kind == "transpose":
            _copy(theirs[m.theirs[0]], value.t(), m.theirs[0])
        elif m.kind == "concat":
            for name, part in zip(m.theirs, value.split(sizes, dim=0)):
                _copy(theirs[name], part, name)
        else:
            _copy(theirs[m.theirs[0]], value, m.theirs[0])
    return hf_model.eval()


# ---------------------------------------------------------------------------- checks
SUPPORTED = ("GPT2LMHeadModel", "LlamaForCausalLM")


def _check_class(hf_model: nn.Module) -> None:
    name = type(hf_model).__name__
    if name not in SUPPORTED:
        raise ValueError(f"unsupported model {name}: from_hf handles {', '.join(SUPPORTED)} "
                         "(a causal LM with its LM head)")


def _require(state: dict, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in state]
    if missing:
        raise ValueError(f"Hugging Face state dict lacks {missing}: not a standard checkpoint")


def _copy(dst: torch.Tensor, src: torch.Tensor, name: str) -> None:
    if dst.shape != src.shape:
        raise ValueError(f"{name}: shape {tuple(src.shape)} does not fit {tuple(dst.shape)}")
    dst.copy_(src)


def _check_all_mapped(model: GPT, maps: list[Mapping]) -> None:
    """Every parameter of ``model`` must have come from somewhere (tied ones count once)."""
    mapped = {m.ours for m in maps}
    names = {name for name, _ in model.named_parameters()}  # dedups the tied lm_head
    left = names - mapped
    if left:
        raise RuntimeError(f"interop map misses parameters {sorted(left)}")
