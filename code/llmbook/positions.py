"""Position information for attention: sinusoidal, learned, and rotary (RoPE).

Self-attention is permutation-equivariant, so a model that must know word order gets
positions from one of these:

* ``sinusoidal(T, C)`` -- the fixed table of Vaswani et al. (2017), added to embeddings.
* ``LearnedPositions`` -- a trainable table (GPT-2, BERT), added to embeddings.
* RoPE -- rotary embeddings (Su et al. 2021, Llama): queries and keys are rotated by an
  angle proportional to their position, so ``q_i . k_j`` depends on ``i - j`` only.
  ``rope_cos_sin`` builds the tables, ``apply_rope`` rotates. The layout follows
  Hugging Face Llama's *rotate-half* convention (the two halves of a head dimension are
  paired, not neighbouring entries), so Llama checkpoints load without permuting weights.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from llmbook._validate import finite, int_tensor, nonneg_int, positive_int

__all__ = [
    "LearnedPositions",
    "RoPE",
    "apply_rope",
    "check_position_ids",
    "rope_cos_sin",
    "rotate_half",
    "sinusoidal",
]


def sinusoidal(T: int, C: int, base: float = 10000.0) -> torch.Tensor:
    """Sinusoidal position table ``(T, C)``.

    ``PE[t, 2i] = sin(t / base^(2i/C))`` and ``PE[t, 2i+1] = cos(t / base^(2i/C))``
    (interleaved, as in Vaswani et al. 2017 §3.5). ``C`` must be even.
    """
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    if not isinstance(C, int) or C < 2 or C % 2:
        raise ValueError(f"C must be a positive even int, got {C!r}")
    base = finite("base", base, gt=1.0)
    position = torch.arange(T, dtype=torch.float32)[:, None]              # (T, 1)
    inv_freq = torch.exp(torch.arange(0, C, 2, dtype=torch.float32)
                         * (-math.log(base) / C))                         # (C/2,)
    table = torch.zeros(T, C)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)
    return table


def check_position_ids(position_ids: object, T: int, max_len: int,
                       name: str = "position_ids") -> torch.Tensor:
    """``position_ids`` if it is an integer ``(B, T)`` (or ``(T,)``) tensor with every id
    in ``[0, max_len)``; else a clear error."""
    int_tensor(name, position_ids, (1, 2), "(B, T)")
    if position_ids.size(-1) != T:
        raise ValueError(f"{name} has shape {tuple(position_ids.shape)}, expected T={T} "
                         "positions (one per token)")
    if position_ids.numel() and not position_ids.is_cuda:
        lo, hi = int(position_ids.min()), int(position_ids.max())
        if lo < 0 or hi >= max_len:
            raise ValueError(f"{name} must lie in [0, {max_len}), got values in "
                             f"[{lo}, {hi}]")
    return position_ids


def _window(T: int, offset: int, max_len: int, what: str, article: str) -> None:
    positive_int("T", T)
    nonneg_int("offset", offset)
    if offset + T > max_len:
        raise ValueError(f"positions {offset}..{offset + T - 1} exceed {article}{max_len} "
                         f"{what}")


class LearnedPositions(nn.Module):
    """A trainable position table ``(max_len, C)``.

    ``forward(T, offset=0) -> (T, C)``: rows ``offset .. offset+T-1``. The ``offset`` is
    the number of tokens already in a KV cache, so a token decoded at step ``t`` gets
    the embedding of position ``t``. ``forward(T, position_ids=ids)`` with ``ids (B, T)``
    returns ``(B, T, C)``, row ``b`` at positions ``ids[b]`` (left-padded batches).
    """

    def __init__(self, max_len: int, C: int) -> None:
        super().__init__()
        self.max_len = positive_int("max_len", max_len)
        self.weight = nn.Parameter(torch.empty(max_len, positive_int("C", C)))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, T: int, offset: int = 0,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        if position_ids is not None:
            check_position_ids(position_ids, T, self.max_len)
            return self.weight[position_ids]
        _window(T, offset, self.max_len, "learned positions", "the table of ")
        return self.weight[offset:offset + T]


def rope_cos_sin(T: int, head_dim: int, theta: float = 10000.0,
                 device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables ``cos, sin`` of shape ``(T, head_dim)``, computed in float32.

    Frequencies ``inv_freq[i] = theta^(-2i/head_dim)`` for ``i < head_dim/2``; the angle
    table ``t * inv_freq`` is repeated twice along the last dim (``cat([f, f])``), which
    is Hugging Face Llama's layout.
    """
    if not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be a positive even int, got {head_dim!r}")
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    theta = finite("rope_theta", theta, gt=1.0)
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64)
                                .to(device=device, dtype=torch.float32) / head_dim))
    t = torch.arange(T, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)                                      # (T, head_dim/2)
    emb = torch.cat((freqs, freqs), dim=-1)                               # (T, head_dim)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(..., D) -> (..., D)``: ``[x1, x2] -> [-x2, x1]`` with ``x1, x2`` the two halves."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys ``x (B, H, T, D)`` by ``cos, sin``; returns ``(B, H, T, D)``.

    ``x * cos + rotate_half(x) * sin``. ``cos``/``sin`` are ``(T, D)`` (every row at the
    same positions, already sliced: offset by the cache length when decoding) or
    ``(B, T, D)`` (each row at its own positions, from ``RoPE(T, position_ids=...)``).
    """
    if (cos.shape != sin.shape or x.shape[-2:] != cos.shape[-2:] or cos.dim() > 3
            or (cos.dim() == 3 and (x.dim() != 4 or cos.size(0) not in (1, x.size(0))))):
        raise ValueError(f"apply_rope: x has shape {tuple(x.shape)} (B, H, T, D) but cos/sin "
                         f"have {tuple(cos.shape)}/{tuple(sin.shape)}; expected (T, D) or "
                         "(B, T, D)")
    if cos.dim() == 3:                                     # (B, T, D) -> (B, 1, T, D)
        cos, sin = cos[:, None], sin[:, None]
    cos = cos.to(x.dtype)
    sin = sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin


class RoPE(nn.Module):
    """Precomputed RoPE tables for ``max_len`` positions (non-persistent buffers).

    ``forward(T, offset=0) -> (cos, sin)``, each ``(T, head_dim)``, for positions
    ``offset .. offset+T-1``; ``forward(T, position_ids=ids)`` with ``ids (B, T)`` gives
    ``(B, T, head_dim)`` each, row ``b`` at positions ``ids[b]`` (e.g. left padding).
    """

    def __init__(self, max_len: int, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        positive_int("max_len", max_len)
        self.max_len, self.head_dim, self.theta = max_len, head_dim, theta
        cos, sin = rope_cos_sin(max_len, head_dim, theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, T: int, offset: int = 0, position_ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if position_ids is not None:
            check_position_ids(position_ids, T, self.max_len)
            return self.cos[position_ids], self.sin[position_ids]
        _window(T, offset, self.max_len, "precomputed RoPE positions", "the ")
        return self.cos[offset:offset + T], self.sin[offset:offset + T]
