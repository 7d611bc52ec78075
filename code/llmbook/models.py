"""Transformer models built from one block: a GPT-style decoder, a BERT-style encoder and
an encoder–decoder.

``GPT`` covers the GPT-2 family (LayerNorm, learned positions, GELU-tanh MLP, biases,
tied embeddings) and the Llama family (RMSNorm, RoPE, SwiGLU, grouped-query attention,
no biases) through ``GPTConfig``. Reading order: ``Block`` (one pre-/post-LN layer),
``GPTConfig``, ``GPT``, then ``EncoderConfig``/``Encoder`` and
``Seq2SeqConfig``/``Seq2Seq``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.attention import KVCache, MultiHeadAttention, padding_mask
from llmbook.layers import ACTIVATIONS, MLP, SwiGLU, make_norm
from llmbook.positions import LearnedPositions, RoPE, sinusoidal

__all__ = ["Block", "GPTConfig", "GPT", "EncoderConfig", "Encoder", "EncoderForMaskedLM",
           "Seq2SeqConfig", "Seq2Seq", "TransformerStack"]


# ------------------------------------------------------------------------------ block

class Block(nn.Module):
    """One Transformer layer: self-attention, optional cross-attention, feed-forward.

    ``norm_first=True`` (pre-LN, GPT-2/Llama): ``x = x + attn(ln_1(x))``, then
    ``x = x + cross_attn(ln_cross(x), memory)`` if ``cross``, then ``x = x + mlp(ln_2(x))``.
    ``norm_first=False`` (post-LN, original Transformer/BERT): ``x = ln_1(x + attn(x))``,
    ``x = ln_cross(x + cross_attn(x, memory))``, ``x = ln_2(x + mlp(x))``.
    Shapes: ``x (B, T, C)``, ``memory (B, S, C)`` -> ``(B, T, C)``.
    """

    def __init__(self, n_embd: int, n_head: int, n_kv_head: int | None = None,
                 mlp: str = "gelu", mlp_hidden: int | None = None, norm: str = "layernorm",
                 bias: bool = True, norm_eps: float = 1e-5, dropout: float = 0.0,
                 attn_impl: str = "sdpa", norm_first: bool = True, cross: bool = False,
                 activation: str = "gelu_tanh") -> None:
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = make_norm(norm, n_embd, bias, norm_eps)
        self.attn = MultiHeadAttention(n_embd, n_head, n_kv_head, bias=bias, dropout=dropout,
                                       impl=attn_impl)
        self.cross_attn = None
        if cross:
            self.ln_cross = make_norm(norm, n_embd, bias, norm_eps)
            self.cross_attn = MultiHeadAttention(n_embd, n_head, n_kv_head, bias=bias,
                                                 dropout=dropout, impl=attn_impl, cross=True)
        self.ln_2 = make_norm(norm, n_embd, bias, norm_eps)
        if mlp == "swiglu":
            self.mlp = SwiGLU(n_embd, mlp_hidden, bias=bias, dropout=dropout)
        else:
            self.mlp = MLP(n_embd, mlp_hidden, bias=bias, activation=activation,
                           dropout=dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, layer: int = 0,
                memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, C)`` -> ``(B, T, C)``; masks are bool, True = may attend."""
        if self.norm_first:
            x = x + self.attn(self.ln_1(x), mask=mask, causal=causal, rope=rope, cache=cache,
                              layer=layer)
            if self.cross_attn is not None:
                x = x + self.cross_attn(self.ln_cross(x), context=memory, mask=memory_mask)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, mask=mask, causal=causal, rope=rope, cache=cache,
                                    layer=layer))
        if self.cross_attn is not None:
            x = self.ln_cross(x + self.cross_attn(x, context=memory, mask=memory_mask))
        return self.ln_2(x + self.mlp(x))


def _init_weights(model: nn.Module, n_layer: int) -> None:
    """GPT-2 init: Linear/Embedding ~ N(0, 0.02), biases 0, residual projections
    (``attn.proj``, ``mlp.proj``, ``mlp.down``) ~ N(0, 0.02 / sqrt(2 * n_layer))."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
    for name, p in model.named_parameters():
        if name.endswith(("attn.proj.weight", "mlp.proj.weight", "mlp.down.weight")):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


def _check_ids(idx: torch.Tensor, vocab_size: int, name: str = "idx") -> None:
    """Reject non-integer ids and ids outside ``[0, vocab_size)``.

    On CUDA (and under ``torch.compile``) the range check is ``torch._assert_async``:
    no host–device sync and no graph break. On CPU a ValueError names the offending id.
    """
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of token ids, got {type(idx).__name__}")
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (int64), got {idx.dtype}")
    if idx.numel() == 0:
        return
    if idx.is_cuda or torch.compiler.is_compiling():
        torch._assert_async(((idx >= 0) & (idx < vocab_size)).all(),
                            f"{name}: token id out of range [0, {vocab_size})")
        return
    bad = (idx < 0) | (idx >= vocab_size)
    if bad.any():
        first = int(idx[bad][0])
        raise ValueError(f"{name}: token id {first} is out of range [0, {vocab_size})")


# ------------------------------------------------------------------------ GPT config

NORMS = ("layernorm", "rmsnorm")
GPT_POSITIONS = ("learned", "rope", "none")
MLPS = ("gelu", "swiglu")
IMPLS = ("sdpa", "scratch")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")


def _check_positive(**values: Any) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


@dataclass
class GPTConfig:
    """Shape and flavour of a decoder-only ``GPT``.

    ``vocab_size, block_size`` (max positions), ``n_layer, n_head, n_embd``;
    ``n_kv_head`` (None = ``n_head``; fewer = grouped-query attention), ``norm``
    (``"layernorm"`` | ``"rmsnorm"``), ``position`` (``"learned"`` | ``"rope"`` |
    ``"none"``), ``mlp`` (``"gelu"`` = GELU-tanh MLP | ``"swiglu"``), ``mlp_hidden``
    (None = ``4 * n_embd``), ``bias`` (in Linear and LayerNorm), ``tie_embeddings``
    (LM head shares the token embedding), ``rope_theta``, ``norm_eps``, ``dropout``,
    ``attn_impl`` (``"sdpa"`` | ``"scratch"``). Presets: ``GPTConfig.preset(name)``.
    """

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_kv_head: int | None = None
    norm: str = "layernorm"
    position: str = "learned"
    mlp: str = "gelu"
    mlp_hidden: int | None = None
    bias: bool = True
    tie_embeddings: bool = True
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0
    attn_impl: str = "sdpa"

    def __post_init__(self) -> None:
        _check_positive(vocab_size=self.vocab_size, block_size=self.block_size,
                        n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd)
        if self.n_kv_head is not None:
            _check_positive(n_kv_head=self.n_kv_head)
            if self.n_head % self.n_kv_head:
                raise ValueError(f"n_head={self.n_head} must be a multiple of "
                                 f"n_kv_head={self.n_kv_head}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.mlp_hidden is not None:
            _check_positive(mlp_hidden=self.mlp_hidden)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("position", self.position, GPT_POSITIONS)
        _check_choice("mlp", self.mlp, MLPS)
        _check_choice("attn_impl", self.attn_impl, IMPLS)
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {self.head_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.norm_eps <= 0 or self.rope_theta <= 0:
            raise ValueError("norm_eps and rope_theta must be positive")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads (``n_kv_head`` or ``n_head``)."""
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GPTConfig":
        """Inverse of ``to_dict``; unknown keys are an error (they would be silently lost)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "GPTConfig":
        """Named shapes, with any field overridden by keyword.

        ``"gpt2"``: GPT-2 small (124M): 12 layers, 12 heads, 768 wide, vocab 50257, T 1024.
        ``"smollm2-135m"``: the Llama-style SmolLM2-135M: 30 layers, 9 heads, 3 KV heads,
        576 wide, SwiGLU 1536, RMSNorm, RoPE θ=100000, vocab 49152, no biases, tied.
        ``"tiny-gpt2"`` / ``"tiny-llama"``: the same families at toy size (4 layers, 128 wide,
        vocab 512, T 128) for tests and CPU runs.
        """
        gpt2 = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
        llama = dict(norm="rmsnorm", position="rope", mlp="swiglu", bias=False,
                     tie_embeddings=True)
        presets: dict[str, dict[str, Any]] = {
            "gpt2": gpt2,
            "smollm2-135m": dict(vocab_size=49152, block_size=8192, n_layer=30, n_head=9,
                                 n_kv_head=3, n_embd=576, mlp_hidden=1536, rope_theta=100000.0,
                                 **llama),
            "tiny-gpt2": dict(vocab_size=512, block_size=128, n_layer=4, n_head=4, n_embd=128),
            "tiny-llama": dict(vocab_size=512, block_size=128, n_layer=4, n_head=4, n_kv_head=2,
                               n_embd=128, mlp_hidden=344, **llama),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; use one of {sorted(presets)}")
        return cls(**{**presets[name], **overrides})


# -------------------------------------------------------------------------------- GPT

class GPT(nn.Module):
    """Decoder-only language model (pre-LN): ``idx (B, T) -> logits (B, T, vocab_size)``.

    token embedding ``wte`` (+ learned positions ``wpe``) -> dropout -> ``n_layer``
    causal ``Block``s (RoPE inside attention if ``position="rope"``) -> final norm
    ``ln_f`` -> ``lm_head`` (weight shared with ``wte`` if ``tie_embeddings``).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = LearnedPositions(c.block_size, c.n_embd) if c.position == "learned" else None
        self.rope = RoPE(c.block_size, c.head_dim, c.rope_theta) if c.position == "rope" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.n_embd, c.n_head, c.n_kv_head, mlp=c.mlp, mlp_hidden=c.mlp_hidden,
                  norm=c.norm, bias=c.bias, norm_eps=c.norm_eps, dropout=c.dropout,
                  attn_impl=c.attn_impl, norm_first=True)
            for _ in range(c.n_layer))
        self.ln_f = make_norm(c.norm, c.n_embd, c.bias, c.norm_eps)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        _init_weights(self, c.n_layer)
        if c.tie_embeddings:
            self.lm_head.weight = self.wte.weight

    # -- forward ---------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next-token logits, and the loss when ``targets`` are given.

        Args:
            idx: token ids ``(B, T)``, int64, each in ``[0, vocab_size)``.
            targets: ``(B, T)`` ids of the next tokens; ``-100`` = ignore.
            cache: a ``KVCache`` from ``new_cache``. The ``T`` new tokens take positions
                ``cache.length .. cache.length + T - 1``, attend to everything cached,
                and are appended to it (``cache.length`` grows by ``T``).

        Returns:
            ``logits (B, T, vocab_size)`` and ``loss`` (mean cross-entropy over
            non-ignored targets, a scalar) or ``None`` without targets.
        """
        B, T = self._check_input(idx, targets, cache)
        offset = 0 if cache is None else cache.length
        x = self.wte(idx)                                                   # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(T, offset)
        rope = self.rope(T, offset) if self.rope is not None else None
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, rope=rope, cache=cache, layer=i)
        if cache is not None:
            cache.advance(T)
        logits = self.lm_head(self.ln_f(x))                                 # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T),
                                   ignore_index=-100)
        return logits, loss

    def _check_input(self, idx: torch.Tensor, targets: torch.Tensor | None,
                     cache: KVCache | None) -> tuple[int, int]:
        c = self.config
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be a (B, T) tensor of token ids, got {shape}")
        _check_ids(idx, c.vocab_size)
        B, T = idx.shape
        offset = 0 if cache is None else cache.length
        if offset + T > c.block_size:
            raise ValueError(f"sequence length {offset + T} (cached {offset} + new {T}) "
                             f"exceeds block_size={c.block_size}")
        if cache is not None and (cache.n_layer != c.n_layer or cache.batch_size != B):
            raise ValueError(f"cache is for {cache.n_layer} layers and batch {cache.batch_size}, "
                             f"the model has {c.n_layer} layers and idx has batch {B}")
        if targets is not None:
            if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
                shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else targets
                raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, "
                                 f"got {shape}")
            if targets.is_floating_point():
                raise TypeError(f"targets must be integer ids, got {targets.dtype}")
        return B, T

    # -- helpers ---------------------------------------------------------------------
    def new_cache(self, batch_size: int, max_len: int | None = None,
                  device: torch.device | str | None = None,
                  dtype: torch.dtype | None = None) -> KVCache:
        """An empty ``KVCache`` for this model: buffers ``(batch_size, n_kv_head, max_len,
        head_dim)`` per layer. ``max_len`` defaults to ``block_size``; ``device``/``dtype``
        default to those of the first keys written (the model's, or autocast's)."""
        c = self.config
        max_len = c.block_size if max_len is None else max_len
        if max_len > c.block_size:
            raise ValueError(f"max_len={max_len} exceeds block_size={c.block_size}")
        if dtype is not None and device is None:
            device = self.wte.weight.device
        return KVCache(c.n_layer, batch_size, c.kv_heads, max_len, c.head_dim,
                       device=device, dtype=dtype)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (shared ones counted once). ``non_embedding=True`` leaves
        out the position table and, if the LM head is not tied, the token embedding
        (with tying, the shared matrix counts as the LM head), as nanoGPT does."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if self.wpe is not None:
                n -= self.wpe.weight.numel()
            if not self.config.tie_embeddings:
                n -= self.wte.weight.numel()
        return n

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer for ``idx (B, T)``: a list of ``n_layer``
        tensors ``(B, n_head, T, T)`` (rows sum to 1, causal). Runs the scratch path."""
        attns = [block.attn for block in self.blocks]
        for a in attns:
            a.record_weights = True
        try:
            self(idx)
            return [a.last_weights for a in attns]
        finally:
            for a in attns:
                a.record_weights, a.last_weights = False, None
