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

from llmbook._validate import boolean, finite, float_tensor, int_tensor, positive_int
from llmbook.attention import KVCache, MultiHeadAttention, padding_mask
from llmbook.layers import ACTIVATIONS, MLP, SwiGLU, make_norm
from llmbook.positions import LearnedPositions, RoPE, sinusoidal

__all__ = [
    "GPT",
    "Block",
    "Encoder",
    "EncoderConfig",
    "EncoderForMaskedLM",
    "GPTConfig",
    "Seq2Seq",
    "Seq2SeqConfig",
    "TransformerStack",
]


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
                 activation: str = "gelu_tanh", qk_norm: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = make_norm(norm, n_embd, bias, norm_eps)
        self.attn = MultiHeadAttention(n_embd, n_head, n_kv_head, bias=bias, dropout=dropout,
                                       impl=attn_impl, qk_norm=qk_norm)
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
                memory_mask: torch.Tensor | None = None,
                memory_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``x (B, T, C)`` -> ``(B, T, C)``; masks are bool, True = may attend.
        ``memory_kv``: the cross-attention's keys and values of ``memory``, computed once
        (``cross_attn.project_context(memory)``), used instead of projecting it again."""
        if self.norm_first:
            x = x + self.attn(self.ln_1(x), mask=mask, causal=causal, rope=rope, cache=cache,
                              layer=layer)
            if self.cross_attn is not None:
                x = x + self.cross_attn(self.ln_cross(x), context=memory, mask=memory_mask,
                                        context_kv=memory_kv)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, mask=mask, causal=causal, rope=rope, cache=cache,
                                    layer=layer))
        if self.cross_attn is not None:
            x = self.ln_cross(x + self.cross_attn(x, context=memory, mask=memory_mask,
                                                  context_kv=memory_kv))
        return self.ln_2(x + self.mlp(x))


def _init_weights(model: nn.Module, n_layer: int, zero_proj: bool = False) -> None:
    """GPT-2 init: Linear/Embedding ~ N(0, 0.02), biases 0, residual projections
    (``attn.proj``, ``mlp.proj``, ``mlp.down``) ~ N(0, 0.02 / sqrt(2 * n_layer)), or 0
    with ``zero_proj`` (every block starts as the identity)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
    for name, p in model.named_parameters():
        if name.endswith(("attn.proj.weight", "mlp.proj.weight", "mlp.down.weight")):
            if zero_proj:
                nn.init.zeros_(p)
            else:
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


IGNORE_INDEX = -100


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, name: str = "targets") -> torch.Tensor:
    """Mean cross-entropy of ``logits (..., V)`` against ``targets (...)``, ``-100`` ignored.

    Targets must be ``-100`` or in ``[0, V)``. A batch whose targets are *all* ``-100``
    has no token to average over: that is an error (``ValueError`` on CPU, a device-side
    assert on CUDA) instead of the NaN that ``F.cross_entropy`` would return.
    """
    V = logits.size(-1)
    flat = targets.reshape(-1)
    if flat.is_cuda or torch.compiler.is_compiling():
        torch._assert_async((flat != IGNORE_INDEX).any(),
                            f"{name}: every target is ignore_index={IGNORE_INDEX}")
    else:
        bad = (flat != IGNORE_INDEX) & ((flat < 0) | (flat >= V))
        if bad.any():
            raise ValueError(f"{name}: target id {int(flat[bad][0])} is neither "
                             f"{IGNORE_INDEX} (ignored) nor in [0, {V})")
        if not (flat != IGNORE_INDEX).any():
            raise ValueError(f"{name}: every target is ignore_index={IGNORE_INDEX}, so the "
                             "mean loss over zero tokens is undefined (it would be NaN); "
                             "leave at least one real target in the batch")
    return F.cross_entropy(logits.reshape(-1, V), flat, ignore_index=IGNORE_INDEX)


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


def _check_numbers(cfg: Any) -> None:
    """The numeric and boolean fields every config has: ``dropout`` in [0, 1), ``norm_eps``
    finite > 0, ``bias`` a real bool (``bias="False"`` would be truthy)."""
    finite("dropout", cfg.dropout, ge=0.0, lt=1.0)
    finite("norm_eps", cfg.norm_eps, gt=0.0)
    boolean("bias", cfg.bias)


class _DictConfig:
    """``to_dict``/``from_dict`` shared by the config dataclasses (JSON-friendly)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Inverse of ``to_dict``; unknown keys are an error (they would be silently lost)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
        return cls(**d)


@dataclass
class GPTConfig(_DictConfig):
    """Shape and flavour of a decoder-only ``GPT``.

    ``vocab_size, block_size`` (max positions), ``n_layer, n_head, n_embd``;
    ``n_kv_head`` (None = ``n_head``; fewer = grouped-query attention), ``norm``
    (``"layernorm"`` | ``"rmsnorm"``), ``position`` (``"learned"`` | ``"rope"`` |
    ``"none"``), ``mlp`` (``"gelu"`` = GELU-tanh MLP | ``"swiglu"``), ``mlp_hidden``
    (None = ``4 * n_embd``), ``bias`` (in Linear and LayerNorm), ``tie_embeddings``
    (LM head shares the token embedding), ``rope_theta``, ``norm_eps``, ``dropout``,
    ``attn_impl`` (``"sdpa"`` | ``"scratch"``). Presets: ``GPTConfig.preset(name)``.
    Speed-run options (section 3.9): ``activation`` of the ``"gelu"`` MLP (``"gelu_tanh"``
    | ``"gelu"`` | ``"relu"`` | ``"relu2"`` = ReLU squared), ``qk_norm`` (RMS-normalise
    queries and keys), ``zero_init_proj`` (residual projections and an untied LM head
    start at zero).
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
    activation: str = "gelu_tanh"
    qk_norm: bool = False
    zero_init_proj: bool = False

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
        _check_choice("activation", self.activation, ACTIVATIONS)
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {self.head_dim}")
        _check_numbers(self)
        finite("rope_theta", self.rope_theta, gt=1.0)
        boolean("tie_embeddings", self.tie_embeddings)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads (``n_kv_head`` or ``n_head``)."""
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """Named shapes, with any field overridden by keyword.

        ``"gpt2"``: GPT-2 small (124M): 12 layers, 12 heads, 768 wide, vocab 50257, T 1024.
        ``"smollm2-135m"``: the Llama-style SmolLM2-135M: 30 layers, 9 heads, 3 KV heads,
        576 wide, SwiGLU 1536, RMSNorm, RoPE θ=100000, vocab 49152, no biases, tied.
        ``"tiny-gpt2"`` / ``"tiny-llama"``: the same families at toy size (4 layers, 128 wide,
        vocab 512, T 128) for tests and CPU runs.
        """
        llama = {"norm": "rmsnorm", "position": "rope", "mlp": "swiglu", "bias": False,
                 "tie_embeddings": True}
        presets: dict[str, dict[str, Any]] = {
            "gpt2": {"vocab_size": 50257, "block_size": 1024, "n_layer": 12, "n_head": 12,
                     "n_embd": 768},
            "smollm2-135m": {"vocab_size": 49152, "block_size": 8192, "n_layer": 30,
                             "n_head": 9, "n_kv_head": 3, "n_embd": 576, "mlp_hidden": 1536,
                             "rope_theta": 100000.0, **llama},
            "tiny-gpt2": {"vocab_size": 512, "block_size": 128, "n_layer": 4, "n_head": 4,
                          "n_embd": 128},
            "tiny-llama": {"vocab_size": 512, "block_size": 128, "n_layer": 4, "n_head": 4,
                           "n_kv_head": 2, "n_embd": 128, "mlp_hidden": 344, **llama},
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

    Example::

        model = GPT(GPTConfig.preset("tiny-gpt2"))
        logits, loss = model(idx, targets)     # training: idx, targets (B, T) int64
        maps = model.attention_maps(idx)       # n_layer tensors (B, n_head, T, T), to plot
        cache = model.new_cache(batch_size=B)  # decoding: see llmbook.attention.KVCache
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
                  attn_impl=c.attn_impl, norm_first=True, activation=c.activation,
                  qk_norm=c.qk_norm)
            for _ in range(c.n_layer))
        self.ln_f = make_norm(c.norm, c.n_embd, c.bias, c.norm_eps)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        _init_weights(self, c.n_layer, c.zero_init_proj)
        if c.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        elif c.zero_init_proj:
            nn.init.zeros_(self.lm_head.weight)

    # -- forward ---------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, logits_to_keep: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next-token logits, and the loss when ``targets`` are given.

        Args:
            idx: token ids ``(B, T)``, int64, each in ``[0, vocab_size)``.
            targets: ``(B, T)`` ids of the next tokens; ``-100`` = ignore (set it at
                padding). All ``-100`` is an error (see :func:`lm_loss`).
            cache: a ``KVCache`` from ``new_cache``. The ``T`` new tokens take positions
                ``cache.length .. cache.length + T - 1``, attend to everything cached,
                and are appended to it (``cache.length`` grows by ``T``).
            attention_mask: ``(B, cache.length + T)`` bool or 0/1 ints, 1 = real token,
                0 = padding, covering the cached tokens and the new ones (as Hugging
                Face's). Padded keys are never attended to. Left padding is the one
                that suits generation (see :func:`llmbook.generate.generate`). With a
                cache, pass the mask on every call (the cache does not remember it).
            position_ids: ``(B, T)`` positions of the new tokens. ``None`` = counted
                from the mask (``cumsum(attention_mask) - 1``, padding at 0), so a
                left-padded row gets the same positions as the same row alone; without
                a mask, ``cache.length + arange(T)``.
            logits_to_keep: ``0`` = logits at every position; ``n > 0`` = only at the
                last ``n`` (``(B, n, vocab_size)``), so decoding, which needs the last
                position only, skips the LM head on the rest of the prompt (as
                ``transformers``' argument of the same name). Not with ``targets``.

        Returns:
            ``logits (B, T, vocab_size)`` and ``loss`` (mean cross-entropy over
            non-ignored targets, a scalar) or ``None`` without targets. Logits at padded
            positions are finite but meaningless.
        """
        B, T = self._check_input(idx, targets, cache)
        if (not isinstance(logits_to_keep, int) or isinstance(logits_to_keep, bool)
                or logits_to_keep < 0):
            raise ValueError(f"logits_to_keep must be an int >= 0 (0 = all positions), got "
                             f"{logits_to_keep!r}")
        if logits_to_keep and targets is not None:
            raise ValueError("logits_to_keep > 0 keeps only the last positions' logits; the "
                             "loss needs all of them: pass targets=None or logits_to_keep=0")
        offset = 0 if cache is None else cache.length
        mask, position_ids = _mask_and_positions(attention_mask, position_ids, B, T, offset,
                                                 self.config.block_size)
        x = self.wte(idx)                                                   # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(T, offset, position_ids)
        rope = self.rope(T, offset, position_ids) if self.rope is not None else None
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, mask=mask, causal=True, rope=rope, cache=cache, layer=i)
        if cache is not None:
            cache.advance(T)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]                                      # (B, n, C)
        logits = self.lm_head(self.ln_f(x))                                 # (B, T, V)
        loss = lm_loss(logits, targets) if targets is not None else None
        return logits, loss

    def _check_input(self, idx: torch.Tensor, targets: torch.Tensor | None,
                     cache: KVCache | None) -> tuple[int, int]:
        c = self.config
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be a (B, T) tensor of token ids, got {shape}")
        _check_ids(idx, c.vocab_size)
        B, T = idx.shape
        if T == 0:
            raise ValueError(f"idx must hold at least one token per row, got {tuple(idx.shape)}")
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


# ------------------------------------------------------------------ shared layer stack

class TransformerStack(nn.Module):
    """``n_layer`` ``Block``s and an optional final norm ``ln_f``: ``(B, T, C) -> (B, T, C)``.

    The encoder side of ``Seq2Seq`` (``cross=False``), its decoder side (``cross=True``)
    and ``Encoder`` are all one of these. ``block_kwargs`` go to every ``Block``.
    """

    def __init__(self, n_layer: int, final_norm: bool, norm: str, n_embd: int, bias: bool,
                 norm_eps: float, **block_kwargs: Any) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(n_embd, norm=norm, bias=bias, norm_eps=norm_eps, **block_kwargs)
            for _ in range(n_layer))
        self.ln_f = make_norm(norm, n_embd, bias, norm_eps) if final_norm else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None, memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None,
                memory_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                ) -> torch.Tensor:
        """``x (B, T, C)``, optional ``memory (B, S, C)``; bool masks broadcastable to
        ``(B, H, T, T)`` / ``(B, H, T, S)``, True = may attend. Returns ``(B, T, C)``.
        ``memory_kv``: one cross-attention ``(k, v)`` pair per block (see ``Block``)."""
        if memory_kv is not None and (not isinstance(memory_kv, (list, tuple))
                                      or len(memory_kv) != len(self.blocks)):
            raise ValueError(f"memory_kv must hold one (k, v) pair per block "
                             f"({len(self.blocks)}), got {_shape(memory_kv)}")
        for i, block in enumerate(self.blocks):
            x = block(x, mask=mask, causal=causal, cache=cache, layer=i, memory=memory,
                      memory_mask=memory_mask,
                      memory_kv=None if memory_kv is None else memory_kv[i])
        return x if self.ln_f is None else self.ln_f(x)


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _check_attention_mask(attention_mask: object, B: int, T: int,
                          name: str = "attention_mask") -> torch.Tensor:
    """A ``(B, T)`` bool or 0/1 integer mask (1 = real token), checked; returned as bool."""
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"{name} must be a (B, T) = {(B, T)} tensor of 0/1, got "
                        f"{type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != (B, T):
        raise ValueError(f"{name} must have shape (B, T) = {(B, T)}, got "
                         f"{tuple(attention_mask.shape)}")
    if attention_mask.dtype == torch.bool:
        return attention_mask
    if attention_mask.is_floating_point() or attention_mask.is_complex():
        raise TypeError(f"{name} must be bool or integer 0/1 (1 = real token), got "
                        f"{attention_mask.dtype}; use {name}.long() or {name}.bool()")
    if not attention_mask.is_cuda and bool(((attention_mask != 0) & (attention_mask != 1)).any()):
        raise ValueError(f"{name} must hold only 0 (padding) and 1 (real token), got values "
                         f"{sorted(set(attention_mask.unique().tolist()))[:6]}")
    return attention_mask != 0


def _key_mask(attention_mask: torch.Tensor | None, B: int, T: int,
              name: str = "attention_mask") -> torch.Tensor | None:
    """``(B, T)`` 0/1 attention mask -> bool ``(B, 1, 1, T)``, checking its shape."""
    if attention_mask is None:
        return None
    return padding_mask(_check_attention_mask(attention_mask, B, T, name))


def _mask_and_positions(attention_mask: torch.Tensor | None,
                        position_ids: torch.Tensor | None, B: int, T: int, offset: int,
                        block_size: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The mask ``(B, 1, T, offset + T)`` and positions ``(B, T)`` of ``GPT.forward``.

    Positions default to ``cumsum(mask) - 1`` over the whole sequence (padding clamped to
    0), sliced to the ``T`` new tokens; ``None`` (consecutive positions) without a mask.
    """
    mask = None
    if attention_mask is not None:
        keep = _check_attention_mask(attention_mask, B, offset + T)
        # Every query may also see itself, so a padding query never has an empty row:
        # real queries are unchanged, and no attention kernel meets a fully masked row.
        cols = torch.arange(offset + T, device=keep.device)
        itself = cols[None, :] == (offset + torch.arange(T, device=keep.device))[:, None]
        mask = padding_mask(keep) | itself                           # (B, 1, T, offset + T)
        if position_ids is None:
            position_ids = (keep.long().cumsum(-1) - 1).clamp(min=0)[:, offset:]
    if position_ids is not None and (not isinstance(position_ids, torch.Tensor)
                                     or tuple(position_ids.shape) != (B, T)):
        raise ValueError(f"position_ids must have shape (B, T) = {(B, T)}, got "
                         f"{_shape(position_ids)}")
    return mask, position_ids


class _Embeddings(nn.Module):
    """Token embedding + positions (``"learned"``, ``"sinusoidal"`` or ``"none"``):
    ``idx (B, T) -> (B, T, C)``, optionally scaled by ``sqrt(C)`` (Vaswani et al.)."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, position: str,
                 scale: bool = False) -> None:
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.scale = math.sqrt(n_embd) if scale else 1.0
        self.tok = nn.Embedding(vocab_size, n_embd)
        self.pos = LearnedPositions(block_size, n_embd) if position == "learned" else None
        if position == "sinusoidal":
            self.register_buffer("table", sinusoidal(block_size, n_embd), persistent=False)
        else:
            self.table = None

    def forward(self, idx: torch.Tensor, offset: int = 0, name: str = "idx") -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"{name} must be a (B, T) tensor of token ids, got {shape}")
        _check_ids(idx, self.vocab_size, name)
        T = idx.size(1)
        if offset + T > self.block_size:
            raise ValueError(f"{name}: sequence length {offset + T} exceeds "
                             f"block_size={self.block_size}")
        x = self.tok(idx) * self.scale
        if self.pos is not None:
            x = x + self.pos(T, offset)
        elif self.table is not None:
            x = x + self.table[offset:offset + T].to(x.dtype)
        return x


ENC_POSITIONS = ("learned", "sinusoidal", "none")


# ---------------------------------------------------------------------------- encoder

@dataclass
class EncoderConfig(_DictConfig):
    """Shape of a BERT-like bidirectional ``Encoder``.

    Defaults follow BERT: post-LN (``norm_first=False``) with a LayerNorm on the
    embeddings, exact GELU, learned positions, ``type_vocab_size=2`` segment embeddings
    (0 = none), ``norm_eps=1e-12``. With ``norm_first=True`` the stack is pre-LN and
    ends with a final norm instead.
    """

    vocab_size: int = 30522
    block_size: int = 512
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    mlp_hidden: int | None = None
    norm_first: bool = False
    position: str = "learned"
    activation: str = "gelu"
    type_vocab_size: int = 2
    bias: bool = True
    norm_eps: float = 1e-12
    dropout: float = 0.0
    attn_impl: str = "sdpa"
    activation: str = "gelu_tanh"
    qk_norm: bool = False
    zero_init_proj: bool = False

    def __post_init__(self) -> None:
        _check_positive(vocab_size=self.vocab_size, block_size=self.block_size,
                        n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        _check_choice("position", self.position, ENC_POSITIONS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("attn_impl", self.attn_impl, IMPLS)
        if not isinstance(self.type_vocab_size, int) or self.type_vocab_size < 0:
            raise ValueError(f"type_vocab_size must be an int >= 0, got {self.type_vocab_size!r}")
        _check_numbers(self)
        boolean("norm_first", self.norm_first)


class Encoder(nn.Module):
    """Bidirectional encoder: ``idx (B, T)`` (+ ``attention_mask (B, T)``) -> hidden
    states ``(B, T, C)``. No causal mask: every token sees every non-pad token."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"Encoder needs an EncoderConfig, got {type(config).__name__}")
        self.config = c = config
        self.embed = _Embeddings(c.vocab_size, c.block_size, c.n_embd, c.position)
        self.types = nn.Embedding(c.type_vocab_size, c.n_embd) if c.type_vocab_size else None
        self.ln_embed = None if c.norm_first else make_norm("layernorm", c.n_embd, c.bias,
                                                            c.norm_eps)
        self.drop = nn.Dropout(c.dropout)
        self.stack = TransformerStack(c.n_layer, final_norm=c.norm_first, norm="layernorm",
                                      n_embd=c.n_embd, bias=c.bias, norm_eps=c.norm_eps,
                                      n_head=c.n_head, mlp_hidden=c.mlp_hidden,
                                      activation=c.activation, dropout=c.dropout,
                                      attn_impl=c.attn_impl, norm_first=c.norm_first)
        _init_weights(self, c.n_layer)

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``idx (B, T)`` int64, ``attention_mask (B, T)`` 1 = real token / 0 = pad,
        ``token_type_ids (B, T)`` segment ids -> hidden states ``(B, T, C)``."""
        x = self.embed(idx)
        if self.types is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(idx)
            if (not isinstance(token_type_ids, torch.Tensor)
                    or token_type_ids.shape != idx.shape):
                raise ValueError(f"token_type_ids must have the shape of idx "
                                 f"{tuple(idx.shape)}, got {_shape(token_type_ids)}")
            _check_ids(token_type_ids, self.config.type_vocab_size, "token_type_ids")
            x = x + self.types(token_type_ids)
        if self.ln_embed is not None:
            x = self.ln_embed(x)
        mask = _key_mask(attention_mask, *idx.shape)
        return self.stack(self.drop(x), mask=mask)


class EncoderForMaskedLM(nn.Module):
    """``Encoder`` plus BERT's masked-LM head (dense -> GELU -> LayerNorm -> vocab, the
    output matrix tied to the token embedding): ``idx (B, T) -> logits (B, T, V)``."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = Encoder(config)
        self.dense = nn.Linear(c.n_embd, c.n_embd)
        self.ln = make_norm("layernorm", c.n_embd, True, c.norm_eps)
        self.decoder = nn.Linear(c.n_embd, c.vocab_size)
        _init_weights(self.dense, 1)
        nn.init.zeros_(self.decoder.bias)
        self.decoder.weight = self.encoder.embed.tok.weight

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns ``logits (B, T, V)`` and, with ``labels (B, T)`` (-100 = not masked,
        ignored), the mean cross-entropy over masked positions (a batch with no masked
        position is an error, see :func:`lm_loss`)."""
        h = self.encoder(idx, attention_mask, token_type_ids)
        logits = self.decoder(self.ln(F.gelu(self.dense(h))))
        loss = None
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.shape != idx.shape:
                raise ValueError(f"labels must have the shape of idx {tuple(idx.shape)}, "
                                 f"got {_shape(labels)}")
            loss = lm_loss(logits, labels, "labels")
        return logits, loss


# -------------------------------------------------------------------- encoder–decoder

@dataclass
class Seq2SeqConfig(_DictConfig):
    """Shape of an encoder–decoder ``Seq2Seq`` (Vaswani et al. 2017).

    Defaults follow the original Transformer and ``torch.nn.Transformer``: post-LN
    (``norm_first=False``) with a final LayerNorm after each stack, ReLU, sinusoidal
    positions, embeddings scaled by ``sqrt(n_embd)``. ``n_dec_layer`` None = ``n_layer``;
    ``tgt_vocab_size`` None = ``src_vocab_size``; ``tie_embeddings`` ties the decoder's
    token embedding to the output layer.
    """

    src_vocab_size: int = 1000
    tgt_vocab_size: int | None = None
    block_size: int = 256
    n_layer: int = 6
    n_dec_layer: int | None = None
    n_head: int = 8
    n_embd: int = 512
    mlp_hidden: int | None = None
    norm_first: bool = False
    position: str = "sinusoidal"
    activation: str = "relu"
    scale_embeddings: bool = True
    tie_embeddings: bool = True
    bias: bool = True
    norm_eps: float = 1e-5
    dropout: float = 0.0
    attn_impl: str = "sdpa"

    def __post_init__(self) -> None:
        _check_positive(src_vocab_size=self.src_vocab_size, block_size=self.block_size,
                        n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd)
        if self.tgt_vocab_size is not None:
            _check_positive(tgt_vocab_size=self.tgt_vocab_size)
        if self.n_dec_layer is not None:
            _check_positive(n_dec_layer=self.n_dec_layer)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        _check_choice("position", self.position, ENC_POSITIONS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("attn_impl", self.attn_impl, IMPLS)
        _check_numbers(self)
        for name in ("norm_first", "scale_embeddings", "tie_embeddings"):
            boolean(name, getattr(self, name))

    @property
    def tgt_vocab(self) -> int:
        return self.src_vocab_size if self.tgt_vocab_size is None else self.tgt_vocab_size


class Seq2Seq(nn.Module):
    """Encoder–decoder: ``src (B, S)``, ``tgt (B, T)`` -> ``logits (B, T, tgt_vocab)``.

    ``encoder`` and ``decoder`` are ``TransformerStack``s with the parameter layout of
    ``torch.nn.Transformer`` (so its weights copy over one to one); the decoder's blocks
    add causal self-attention and cross-attention to the encoder output ``memory``.
    Teacher forcing: ``tgt`` is the shifted target (BOS + y[:-1]), ``targets`` is y.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"Seq2Seq needs a Seq2SeqConfig, got {type(config).__name__}")
        self.config = c = config
        self.src_embed = _Embeddings(c.src_vocab_size, c.block_size, c.n_embd, c.position,
                                     c.scale_embeddings)
        self.tgt_embed = _Embeddings(c.tgt_vocab, c.block_size, c.n_embd, c.position,
                                     c.scale_embeddings)
        self.drop = nn.Dropout(c.dropout)
        common = {"norm": "layernorm", "n_embd": c.n_embd, "bias": c.bias,
                  "norm_eps": c.norm_eps, "n_head": c.n_head, "mlp_hidden": c.mlp_hidden,
                  "activation": c.activation, "dropout": c.dropout, "attn_impl": c.attn_impl,
                  "norm_first": c.norm_first, "final_norm": True}
        self.encoder = TransformerStack(c.n_layer, **common)
        self.decoder = TransformerStack(c.n_dec_layer or c.n_layer, cross=True, **common)
        self.lm_head = nn.Linear(c.n_embd, c.tgt_vocab, bias=False)
        _init_weights(self, c.n_layer + (c.n_dec_layer or c.n_layer))
        if c.tie_embeddings:
            self.lm_head.weight = self.tgt_embed.tok.weight

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``src (B, S)`` ids, ``src_mask (B, S)`` 1 = real -> ``memory (B, S, C)``."""
        x = self.drop(self.src_embed(src, name="src"))
        return self.encoder(x, mask=_key_mask(src_mask, *src.shape, name="src_mask"))

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor,
               src_mask: torch.Tensor | None = None, tgt_mask: torch.Tensor | None = None,
               cache: KVCache | None = None,
               memory_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
               ) -> torch.Tensor:
        """``tgt (B, T)`` ids attending causally to themselves and to ``memory (B, S, C)``
        -> ``logits (B, T, V)``. ``tgt_mask (B, T_total)`` 1 = real token. With a
        ``cache`` (``new_cache``) the decoder's self-attention keys/values are kept
        and ``tgt`` holds only the new tokens. ``memory_kv = cross_kv(memory)`` gives the
        cross-attention keys/values computed once per source; without it every call
        projects ``memory`` again in every layer (same result, more work)."""
        offset = 0 if cache is None else cache.length
        x = self.drop(self.tgt_embed(tgt, offset=offset, name="tgt"))
        B, T = tgt.shape
        float_tensor("memory", memory, 3, "(B, S, C)")
        if memory.size(0) != B or memory.size(2) != self.config.n_embd or memory.size(1) == 0:
            raise ValueError(f"memory must have shape (B={B}, S >= 1, C={self.config.n_embd}) "
                             f"to match tgt {tuple(tgt.shape)}, got {tuple(memory.shape)}")
        self_mask = _key_mask(tgt_mask, B, offset + T, name="tgt_mask")
        memory_mask = _key_mask(src_mask, B, memory.size(1), name="src_mask")
        h = self.decoder(x, mask=self_mask, causal=True, cache=cache, memory=memory,
                         memory_mask=memory_mask, memory_kv=memory_kv)
        if cache is not None:
            cache.advance(T)
        return self.lm_head(h)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor,
                src_mask: torch.Tensor | None = None, tgt_mask: torch.Tensor | None = None,
                targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced logits ``(B, T, V)`` and the loss against ``targets (B, T)``
        (-100 ignored), or ``None`` without targets."""
        if (isinstance(src, torch.Tensor) and isinstance(tgt, torch.Tensor)
                and src.dim() == tgt.dim() == 2 and src.size(0) != tgt.size(0)):
            raise ValueError(f"src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must have "
                             "the same batch size B")
        logits = self.decode(tgt, self.encode(src, src_mask), src_mask, tgt_mask)
        loss = None
        if targets is not None:
            if not isinstance(targets, torch.Tensor) or targets.shape != tgt.shape:
                raise ValueError(f"targets must have the shape of tgt {tuple(tgt.shape)}, "
                                 f"got {_shape(targets)}")
            loss = lm_loss(logits, targets)
        return logits, loss

    def new_cache(self, batch_size: int, max_len: int | None = None,
                  device: torch.device | str | None = None,
                  dtype: torch.dtype | None = None) -> KVCache:
        """An empty ``KVCache`` for the decoder's self-attention (see ``GPT.new_cache``)."""
        c = self.config
        return KVCache(c.n_dec_layer or c.n_layer, batch_size, c.n_head,
                       max_len or c.block_size, c.n_embd // c.n_head, device=device,
                       dtype=dtype)

    def cross_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The decoder's cross-attention keys and values of ``memory (B, S, C)``: one
        ``(k, v)`` pair per decoder layer, each ``(B, n_head, S, C // n_head)``. They
        depend on the source only, so a decoding loop computes them once."""
        float_tensor("memory", memory, 3, "(B, S, C)")
        return [block.cross_attn.project_context(memory) for block in self.decoder.blocks]

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_new_tokens: int, bos_id: int,
               eos_id: int | None = None, src_mask: torch.Tensor | None = None,
               cache_cross: bool = True) -> torch.Tensor:
        """Greedy decoding: ``src (B, S)`` -> target ids ``(B, n)``, ``n <= max_new_tokens``
        (BOS not included). A row that has produced ``eos_id`` is padded with it; the loop
        stops when every row has. The source is encoded once; the decoder's
        self-attention uses a ``KVCache``; with ``cache_cross`` (the default) the
        cross-attention keys/values are computed once per source (``cross_kv``) instead
        of at every step. Both settings give the same tokens."""
        c = self.config
        int_tensor("src", src, 2, "(B, S)")
        positive_int("max_new_tokens", max_new_tokens)
        boolean("cache_cross", cache_cross)
        if max_new_tokens > c.block_size:
            raise ValueError(f"max_new_tokens={max_new_tokens} exceeds block_size="
                             f"{c.block_size}")
        for name, tok in (("bos_id", bos_id), ("eos_id", eos_id)):
            if tok is None and name == "eos_id":
                continue
            if isinstance(tok, bool) or not isinstance(tok, int) or not 0 <= tok < c.tgt_vocab:
                raise ValueError(f"{name} must be an int in [0, {c.tgt_vocab}), got {tok!r}")
        was_training = self.training
        self.eval()
        try:
            memory = self.encode(src, src_mask)
            memory_kv = self.cross_kv(memory) if cache_cross else None
            B = src.size(0)
            cache = self.new_cache(B, max_len=max_new_tokens)
            nxt = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)
            done = torch.zeros(B, dtype=torch.bool, device=src.device)
            out = []
            for _ in range(max_new_tokens):
                logits = self.decode(nxt, memory, src_mask, cache=cache, memory_kv=memory_kv)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                if eos_id is not None:
                    nxt = nxt.masked_fill(done[:, None], eos_id)
                    done = done | (nxt[:, 0] == eos_id)
                out.append(nxt)
                if eos_id is not None and bool(done.all()):
                    break
        finally:
            self.train(was_training)
        return torch.cat(out, dim=1)
