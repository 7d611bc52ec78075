"""Attention: the from-scratch formula, masks, multi-head / grouped-query attention, KV cache.

* ``attention(q, k, v, mask, causal)`` computes ``softmax(q kᵀ / sqrt(d)) v`` by hand and
  returns the weights too, for plotting.
* ``causal_mask(T)`` and ``padding_mask(...)`` build boolean masks, **True = may attend**.
* ``MultiHeadAttention`` projects, splits into heads, attends (``impl="sdpa"`` calls
  ``torch.nn.functional.scaled_dot_product_attention``, which picks flash /
  memory-efficient kernels on a GPU; ``impl="scratch"`` calls ``attention`` above) and
  merges the heads back. It does self- and cross-attention, grouped-query attention
  (``n_kv_head < n_head``) and RoPE.
* ``KVCache`` keeps the keys and values of tokens already seen, so decoding a new token
  costs one query against the cached keys instead of re-running the whole prefix.

The mask contract, the same on every path (``attention``, ``MultiHeadAttention`` with
``impl="sdpa"`` or ``"scratch"``):

* ``mask`` is **bool, True = may attend**, broadcastable to the scores ``(B, H, Tq, Tk)``;
  a float ``mask`` is refused (a 0/1 float tensor would be added to the scores, so the
  padding would still be attended);
* ``attn_bias`` is a **float additive bias** on the scores (``-inf`` = blocked);
* ``causal=True`` is aligned **bottom-right**: the ``Tq`` queries are the last ``Tq`` of
  the ``Tk`` key positions (what a KV cache needs); with ``Tq > Tk`` the first
  ``Tq - Tk`` queries see no key and give zeros, like any fully masked row.

Fully masked rows: a query whose mask row is all False gets **all-zero weights and a
zero output** (no NaN). PyTorch's SDPA does the same on CPU, so both paths agree. A NaN
inside ``q``, ``k`` or ``v`` propagates as it does in PyTorch, even from a masked key
(``0 * NaN = NaN``): masks do not clean inputs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook._validate import boolean, finite, float_tensor, positive_int, shape_str
from llmbook.positions import apply_rope

__all__ = ["KVCache", "MultiHeadAttention", "attention", "causal_allowed", "causal_mask",
           "check_bias", "check_mask", "padding_mask"]


# ----------------------------------------------------------------------------- masks

def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Lower-triangular ``(T, T)`` bool mask: query ``i`` may attend to keys ``j <= i``."""
    positive_int("causal_mask: T", T)
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def _causal_mask_rect(Tq: int, Tk: int, device: torch.device | None) -> torch.Tensor:
    """``(Tq, Tk)`` causal mask for queries that are the *last* ``Tq`` of ``Tk`` positions."""
    return torch.ones(Tq, Tk, dtype=torch.bool, device=device).tril(diagonal=Tk - Tq)


def padding_mask(lengths_or_mask: torch.Tensor, T: int | None = None) -> torch.Tensor:
    """Key-padding mask ``(B, 1, 1, T)``, True at real tokens, broadcastable to ``(B, H, Tq, T)``.

    Give either ``lengths (B,)`` integers (tokens ``0..length-1`` are real; right
    padding) together with ``T``, or a ``(B, T)`` 0/1 (or bool) attention mask as
    Hugging Face tokenizers return it (1 = real token, any padding side).
    """
    x = lengths_or_mask
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"padding_mask: expected a tensor, got {type(x).__name__}")
    if x.dim() == 1:
        if x.is_floating_point():
            raise TypeError(f"padding_mask: lengths must be integers, got {x.dtype}")
        if T is None:
            raise ValueError("padding_mask: give T together with lengths (B,)")
        positive_int("padding_mask: T", T)
        if x.numel() and (int(x.min()) < 0 or int(x.max()) > T):
            raise ValueError(f"padding_mask: lengths must lie in [0, T={T}], got "
                             f"{x.tolist()[:8]}")
        keep = torch.arange(T, device=x.device)[None, :] < x[:, None]     # (B, T)
    elif x.dim() == 2:
        if T is not None and x.size(1) != T:
            raise ValueError(f"padding_mask: attention mask has T={x.size(1)}, but T={T} given")
        keep = x.bool() if x.dtype == torch.bool else x != 0
    else:
        raise ValueError("padding_mask: expected lengths (B,) or an attention mask (B, T), "
                         f"got shape {tuple(x.shape)}")
    return keep[:, None, None, :]


# ------------------------------------------------------------------ scaled dot product

def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"attention: {name} must be a tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"attention: {name} must be a float tensor, got {t.dtype}")
        if t.dim() < 2:
            raise ValueError(f"attention: {name} needs at least 2 dims (T, d), "
                             f"got shape {tuple(t.shape)}")
    if q.size(-1) != k.size(-1):
        raise ValueError(f"attention: last dims of q {tuple(q.shape)} and k {tuple(k.shape)} "
                         "must match (the query/key size d)")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"attention: k {tuple(k.shape)} and v {tuple(v.shape)} must have "
                         "the same number of keys (dim -2)")
    if k.size(-2) == 0:
        raise ValueError(f"attention: k has shape {tuple(k.shape)}: need at least one key "
                         "(with no key there is nothing to attend to)")


def _check_broadcast(name: str, t: torch.Tensor, scores_shape: tuple[int, ...],
                     device: torch.device) -> None:
    # By hand: torch.broadcast_shapes runs Python reference code that costs more than a
    # decoding step's attention (it is called once per layer per step).
    have, want = tuple(t.shape), tuple(scores_shape)
    fits = len(have) <= len(want) and all(
        h == 1 or h == w for h, w in zip(reversed(have), reversed(want)))
    if not fits:
        raise ValueError(f"attention: {name} of shape {tuple(t.shape)} does not broadcast "
                         f"to the scores' shape {tuple(scores_shape)} (B, H, Tq, Tk)")
    if t.device != device:
        raise ValueError(f"attention: {name} is on {t.device} but the queries are on {device}")


def check_mask(mask: object, scores_shape: tuple[int, ...], device: torch.device,
               name: str = "mask") -> None:
    """The one mask contract: ``mask`` is **bool, True = may attend**, broadcastable to
    ``scores_shape (..., Tq, Tk)`` and on ``device``. A float mask is refused: a 0/1
    float tensor would be *added* to the scores (padding still attended), so an additive
    bias must be passed by its own name, ``attn_bias`` (see :func:`check_bias`)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"attention: {name} must be a bool tensor (True = may attend), "
                        f"got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        hint = (" (a float tensor is an additive bias: pass it as attn_bias=..., or "
                f"{name}.bool() if it holds 1 = keep / 0 = drop)"
                if mask.is_floating_point() else f" (use {name}.bool())")
        raise TypeError(f"attention: {name} must be a bool tensor (True = may attend), "
                        f"got dtype {mask.dtype}{hint}")
    _check_broadcast(name, mask, scores_shape, device)


def check_bias(attn_bias: object, scores_shape: tuple[int, ...], device: torch.device,
               name: str = "attn_bias") -> None:
    """An additive bias on the scores (ALiBi, relative positions, ``-inf`` = blocked): a
    float tensor broadcastable to ``scores_shape (..., Tq, Tk)``, on ``device``."""
    if not isinstance(attn_bias, torch.Tensor) or not attn_bias.is_floating_point():
        got = attn_bias.dtype if isinstance(attn_bias, torch.Tensor) else type(attn_bias).__name__
        raise TypeError(f"attention: {name} must be a float tensor added to the scores, "
                        f"got {got} (a bool keep-mask goes in mask=...)")
    _check_broadcast(name, attn_bias, scores_shape, device)


def causal_allowed(Tq: int, Tk: int, device: torch.device | None) -> torch.Tensor:
    """The causal ``(Tq, Tk)`` bool mask, **aligned bottom-right**: the ``Tq`` queries are
    the *last* ``Tq`` of ``Tk`` positions, so query ``i`` sees keys ``j <= i + (Tk - Tq)``
    (decoding with a KV cache; for ``Tq == Tk`` the usual lower triangle).

    More queries than keys (``Tq > Tk``) keeps the same rule: the first ``Tq - Tk``
    queries come before every key, so their rows are fully masked and (as every fully
    masked row here) get zero weights and a zero output. PyTorch's ``is_causal=True``
    aligns top-left instead; the package never hands it a ``Tq != Tk`` problem.
    """
    return _causal_mask_rect(Tq, Tk, device)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None, causal: bool = False,
              attn_bias: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention from scratch: ``softmax(q kᵀ / sqrt(d) + bias) v``.

    Args:
        q: queries ``(..., Tq, d)``.
        k: keys ``(..., Tk, d)``, ``Tk >= 1``.
        v: values ``(..., Tk, dv)``. Leading dims broadcast (e.g. ``(B, H)``).
        mask: optional **bool**, broadcastable to ``(..., Tq, Tk)``; True = may attend.
            A float mask is an error (see :func:`check_mask`).
        causal: if True, query ``i`` sees keys ``j <= i + (Tk - Tq)``: the queries are
            the *last* ``Tq`` positions (bottom-right alignment), which is what decoding
            with a KV cache needs; for ``Tq > Tk`` the first ``Tq - Tk`` rows see no key
            and are all zero (see :func:`causal_allowed`).
        attn_bias: optional **float**, broadcastable to ``(..., Tq, Tk)``, added to the
            scores; ``-inf`` entries count as masked.

    Returns:
        ``out (..., Tq, dv)`` and ``weights (..., Tq, Tk)``; each row of ``weights``
        sums to 1, masked entries are exactly 0, and a fully masked row is all 0 (its
        output is 0). A NaN in ``q``, ``k`` or ``v`` propagates as in PyTorch, even from
        a masked key's value (``0 * NaN`` is NaN): clean the inputs, do not rely on masks.
    """
    _check_qkv(q, k, v)
    if not isinstance(causal, bool):
        raise TypeError(f"attention: causal must be True or False, got {causal!r}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))             # (..., Tq, Tk)
    allowed = None
    if mask is not None:
        check_mask(mask, scores.shape, q.device)
        allowed = mask
    if attn_bias is not None:
        check_bias(attn_bias, scores.shape, q.device)
        scores = scores + attn_bias.to(scores.dtype)
        finite = ~torch.isneginf(attn_bias)
        allowed = finite if allowed is None else allowed & finite
    if causal:
        tri = causal_allowed(q.size(-2), k.size(-2), q.device)
        allowed = tri if allowed is None else allowed & tri
    if allowed is not None:
        # A large finite negative, not -inf: a fully masked row then gives a uniform
        # softmax (no NaN), which the second masked_fill turns into zeros.
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:
        weights = weights.masked_fill(~allowed, 0.0)
    return weights @ v, weights


# --------------------------------------------------------------------------- KV cache

class KVCache:
    """Preallocated keys and values of every layer, for incremental decoding.

    One buffer pair per layer, each ``(B, n_kv_head, max_len, head_dim)``, and
    ``length``: how many positions are filled (the same for every layer and batch row).

    How a model uses it (``GPT.forward(idx, cache=cache)`` does all of this):
    layer ``i`` calls ``append(i, k, v)`` with the new keys/values ``(B, n_kv_head, T,
    head_dim)`` and attends to the returned ``(B, n_kv_head, length + T, head_dim)``
    views; after the last layer the model calls ``advance(T)``. Positions of the new
    tokens start at ``length``.

    A decoding loop::

        cache = model.new_cache(batch_size=B)          # empty, length 0
        logits, _ = model(prompt, cache=cache)         # prefill: prompt (B, T0)
        for _ in range(n_new):
            nxt = logits[:, -1].argmax(-1, keepdim=True)   # (B, 1)
            logits, _ = model(nxt, cache=cache)        # one token, attends to the cache

    For beam search, ``reorder(index)`` keeps/duplicates batch rows (``index (B_new,)``).
    If ``dtype``/``device`` are None, the buffers are allocated at the first
    ``append`` with the dtype and device of those keys (so autocast just works).
    """

    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, max_len: int,
                 head_dim: int, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        for name, val in (("n_layer", n_layer), ("batch_size", batch_size),
                          ("n_kv_head", n_kv_head), ("max_len", max_len),
                          ("head_dim", head_dim)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"KVCache: {name} must be a positive int, got {val!r}")
        self.n_layer, self.batch_size, self.n_kv_head = n_layer, batch_size, n_kv_head
        self.max_len, self.head_dim = max_len, head_dim
        self.length = 0
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        if dtype is not None:
            self._allocate(torch.device(device) if device is not None else torch.device("cpu"),
                           dtype)

    def _allocate(self, device: torch.device, dtype: torch.dtype) -> None:
        shape = (self.batch_size, self.n_kv_head, self.max_len, self.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(self.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(self.n_layer)]

    @property
    def dtype(self) -> torch.dtype | None:
        return self.k[0].dtype if self.k else None

    @property
    def device(self) -> torch.device | None:
        return self.k[0].device if self.k else None

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k, v (B, n_kv_head, T, head_dim)`` at ``length`` for ``layer``.

        Returns views of all keys and values so far, ``(B, n_kv_head, length + T,
        head_dim)``. Does not move ``length``: call ``advance(T)`` once per forward.
        """
        if (not isinstance(k, torch.Tensor) or not isinstance(v, torch.Tensor)
                or k.dim() != 4 or v.shape != k.shape):
            raise ValueError(f"KVCache: keys and values must both be (B, n_kv_head, T, "
                             f"head_dim), got {shape_str(k)} / {shape_str(v)}")
        B, H, T, D = k.shape
        if (B, H, D) != (self.batch_size, self.n_kv_head, self.head_dim):
            raise ValueError(f"KVCache: keys {tuple(k.shape)} / values {tuple(v.shape)} do not "
                             f"fit buffers (B={self.batch_size}, n_kv_head={self.n_kv_head}, "
                             f"T, head_dim={self.head_dim})")
        if not 0 <= layer < self.n_layer:
            raise ValueError(f"KVCache: layer {layer} out of range 0..{self.n_layer - 1}")
        end = self.length + T
        if end > self.max_len:
            raise ValueError(f"KVCache full: {self.length} cached + {T} new positions > "
                             f"max_len={self.max_len}")
        if not self.k:
            self._allocate(k.device, k.dtype)
        if k.dtype != self.dtype:
            raise TypeError(f"KVCache: buffers are {self.dtype} but keys are {k.dtype}; "
                            "create the cache with dtype=None to adopt the model's dtype")
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, T: int) -> None:
        """Mark ``T`` more positions as filled (called once per model forward)."""
        if self.length + T > self.max_len:
            raise ValueError(f"KVCache: cannot advance {T} past max_len={self.max_len}")
        self.length += T

    def reorder(self, index: torch.Tensor) -> KVCache:
        """Select batch rows: buffers become ``buffer[index]``, ``index (B_new,)`` int64.

        Beam search calls this after each step with the beam each survivor came from;
        ``B_new`` may differ from ``B`` (e.g. expanding one prompt into ``num_beams``).
        Returns ``self``.
        """
        if (not isinstance(index, torch.Tensor) or index.dim() != 1
                or index.is_floating_point() or index.dtype == torch.bool):
            raise ValueError(f"KVCache.reorder: index must be 1-D integers, got "
                             f"{shape_str(index)} {getattr(index, 'dtype', '')}")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.batch_size):
            raise ValueError(f"KVCache.reorder: index values must lie in [0, batch_size="
                             f"{self.batch_size}), got {index.tolist()[:8]}")
        if self.k:
            index = index.to(self.device)
            self.k = [t.index_select(0, index) for t in self.k]
            self.v = [t.index_select(0, index) for t in self.v]
        self.batch_size = int(index.numel())
        return self

    def reset(self) -> None:
        """Forget every cached position (buffers are kept)."""
        self.length = 0

    def __repr__(self) -> str:
        return (f"KVCache(n_layer={self.n_layer}, batch_size={self.batch_size}, "
                f"n_kv_head={self.n_kv_head}, length={self.length}/{self.max_len}, "
                f"head_dim={self.head_dim}, dtype={self.dtype})")


# ------------------------------------------------------------------ multi-head module

def _sdpa_groups_kv(q: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether SDPA's ``enable_gqa`` is the fast way for these inputs.

    On CPU its flash kernel takes grouped K/V heads directly. On CUDA only the flash
    kernel does (fp16/bf16, no explicit mask); otherwise SDPA would fall back to its slow
    math kernel, so repeating the K/V heads first (letting the memory-efficient kernel
    run) is better.
    """
    if not q.is_cuda:
        return True
    return mask is None and q.dtype in (torch.float16, torch.bfloat16)


IMPLS = ("sdpa", "scratch")


class MultiHeadAttention(nn.Module):
    """Multi-head (and grouped-query) attention: ``(B, T, C) -> (B, T, C)``.

    Self-attention (``cross=False``) uses one fused projection ``qkv: Linear(C, (H + 2
    H_kv) * D)`` whose output is laid out ``[q (H*D) | k (H_kv*D) | v (H_kv*D)]``.
    Cross-attention (``cross=True``) has ``q: Linear(C, H*D)`` applied to ``x`` and
    ``kv: Linear(kv_dim, 2*H_kv*D)`` (``[k | v]``) applied to the ``context``.
    ``proj: Linear(H*D, C)`` merges the heads. ``D = C // n_head``.

    Grouped-query attention: ``n_kv_head`` divides ``n_head``; query head ``h`` uses
    key/value head ``h // (n_head // n_kv_head)`` (as Hugging Face's ``repeat_kv``).

    Set ``record_weights = True`` to keep the per-head weights ``(B, H, Tq, Tk)`` of the
    next forwards in ``last_weights`` (this runs the scratch path).

    ``qk_norm=True`` RMS-normalises every query and key vector (over ``D``, no gain)
    before RoPE, so attention logits stay bounded however large the weights grow.
    """

    def __init__(self, n_embd: int, n_head: int, n_kv_head: int | None = None,
                 bias: bool = True, dropout: float = 0.0, impl: str = "sdpa",
                 cross: bool = False, kv_dim: int | None = None,
                 qk_norm: bool = False) -> None:
        super().__init__()
        self.qk_norm = qk_norm
        positive_int("n_embd", n_embd)
        positive_int("n_head", n_head)
        n_kv_head = n_head if n_kv_head is None else positive_int("n_kv_head", n_kv_head)
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        if n_head % n_kv_head:
            raise ValueError(f"n_head={n_head} is not divisible by n_kv_head={n_kv_head}")
        if impl not in IMPLS:
            raise ValueError(f"unknown attention impl {impl!r}; use one of {IMPLS}")
        boolean("bias", bias)
        boolean("cross", cross)
        dropout = finite("dropout", dropout, ge=0.0, lt=1.0)
        kv_dim = n_embd if kv_dim is None else positive_int("kv_dim", kv_dim)
        self.n_embd, self.kv_dim = n_embd, kv_dim
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, n_embd // n_head
        self.impl, self.cross, self.dropout = impl, cross, dropout
        q_dim, kv_out = n_head * self.head_dim, n_kv_head * self.head_dim
        if cross:
            self.q = nn.Linear(n_embd, q_dim, bias=bias)
            self.kv = nn.Linear(kv_dim, 2 * kv_out, bias=bias)
        else:
            self.qkv = nn.Linear(n_embd, q_dim + 2 * kv_out, bias=bias)
        self.proj = nn.Linear(q_dim, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.record_weights = False
        self.last_weights: torch.Tensor | None = None

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """``(B, T, n*D) -> (B, n, T, D)``."""
        B, T, _ = x.shape
        return x.view(B, T, n, self.head_dim).transpose(1, 2)

    def _project(self, x: torch.Tensor, context: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kv_out = self.n_kv_head * self.head_dim
        if self.cross:
            q = self.q(x)
            k, v = self.kv(context).split([kv_out, kv_out], dim=-1)
        else:
            q, k, v = self.qkv(x).split([self.n_head * self.head_dim, kv_out, kv_out], dim=-1)
        return self._heads(q, self.n_head), self._heads(k, self.n_kv_head), \
            self._heads(v, self.n_kv_head)

    def project_context(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of ``context (B, S, kv_dim)``, each
        ``(B, n_kv_head, S, D)``: what ``forward`` computes from the context on every call.
        A decoder attending to the same source at every step computes them once and
        passes them as ``forward(..., context_kv=(k, v))``."""
        if not self.cross:
            raise ValueError("project_context is for cross-attention; build with cross=True")
        if isinstance(context, torch.Tensor) and context.dim() == 2:
            context = context[None]
        float_tensor("context", context, 3, "(B, S, kv_dim)")
        if context.size(-1) != self.kv_dim or context.size(1) == 0:
            raise ValueError(f"context must have shape (B, S >= 1, kv_dim={self.kv_dim}), "
                             f"got {tuple(context.shape)}")
        kv_out = self.n_kv_head * self.head_dim
        k, v = self.kv(context).split([kv_out, kv_out], dim=-1)
        k, v = self._heads(k, self.n_kv_head), self._heads(v, self.n_kv_head)
        if self.qk_norm:
            k = F.rms_norm(k, (self.head_dim,))
        return k, v

    def _check_context_kv(self, x: torch.Tensor, context_kv: object) -> None:
        float_tensor("x", x, 3, "(B, T, C)")
        if x.size(-1) != self.n_embd:
            raise ValueError(f"x has width {x.size(-1)} (shape {tuple(x.shape)}), but this "
                             f"attention was built for n_embd={self.n_embd}")
        if not self.cross:
            raise ValueError("self-attention got context_kv; build with cross=True")
        B, H, D = x.size(0), self.n_kv_head, self.head_dim
        ok = (isinstance(context_kv, tuple) and len(context_kv) == 2
              and all(isinstance(t, torch.Tensor) and t.dim() == 4 and t.size(0) == B
                      and t.size(1) == H and t.size(3) == D and t.size(2) > 0
                      for t in context_kv)
              and context_kv[0].shape == context_kv[1].shape)
        if not ok:
            got = (tuple(shape_str(t) for t in context_kv) if isinstance(context_kv, tuple)
                   else type(context_kv).__name__)
            raise ValueError(f"context_kv must be a pair (k, v) from project_context, each "
                             f"(B={B}, n_kv_head={H}, S >= 1, head_dim={D}), got {got}")

    def _check_inputs(self, x: torch.Tensor, context: torch.Tensor | None) -> None:
        """``x (B, T, n_embd)`` and, for cross-attention, ``context (B, S, kv_dim)``."""
        float_tensor("x", x, 3, "(B, T, C)")
        if x.size(-1) != self.n_embd:
            raise ValueError(f"x has width {x.size(-1)} (shape {tuple(x.shape)}), but this "
                             f"attention was built for n_embd={self.n_embd}")
        if not self.cross:
            if context is not None:
                raise ValueError("self-attention got a context; build with cross=True")
            return
        if context is None:
            raise ValueError(f"cross-attention needs a context (B, S, kv_dim={self.kv_dim})")
        float_tensor("context", context, 3, "(B, S, kv_dim)")
        if context.size(-1) != self.kv_dim or context.size(0) != x.size(0):
            raise ValueError(f"context must have shape (B={x.size(0)}, S, kv_dim="
                             f"{self.kv_dim}), got {tuple(context.shape)}")
        if context.size(1) == 0:
            raise ValueError("context has no positions (S = 0): nothing to attend to")

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, causal: bool = False,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, layer: int = 0,
                attn_bias: torch.Tensor | None = None,
                context_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Attend from ``x (B, T, C)``; returns ``(B, T, C)``.

        An unbatched ``x (T, C)`` (and ``context (S, kv_dim)``) is treated as a batch
        of one and gives ``(T, C)`` back. Both ``impl``s apply the same checks.

        Args:
            context: ``(B, S, kv_dim)`` keys/values source for cross-attention.
            mask: **bool**, broadcastable to ``(B, H, T, Tk)``, True = may attend (e.g.
                ``padding_mask(...)`` of shape ``(B, 1, 1, Tk)``). A float mask is an
                error: pass an additive bias as ``attn_bias``.
            causal: causal self-attention, aligned bottom-right (the queries are the
                last ``T`` of ``Tk`` positions; with ``T > Tk`` the first ``T - Tk``
                queries see no key and give a zero attention output).
            rope: ``(cos, sin)``, each ``(T, D)`` (or ``(B, T, D)`` for per-row
                positions), for this call's positions.
            cache: a ``KVCache``; new keys/values are appended for ``layer`` and the
                queries attend to everything cached so far.
            attn_bias: **float**, broadcastable to ``(B, H, T, Tk)``, added to the scores.
            context_kv: cross-attention only, instead of ``context``: its keys and values
                ``(k, v)`` as ``project_context(context)`` returns them (same result).
        """
        if isinstance(x, torch.Tensor) and x.dim() == 2:              # unbatched (T, C)
            if isinstance(context, torch.Tensor) and context.dim() == 2:
                context = context[None]
            return self.forward(x[None], context, mask, causal, rope, cache, layer,
                                attn_bias, context_kv)[0]
        if context_kv is not None:
            self._check_context_kv(x, context_kv)
            q, (k, v) = self._heads(self.q(x), self.n_head), context_kv
            if self.qk_norm:
                q = F.rms_norm(q, (self.head_dim,))
        else:
            self._check_inputs(x, context)
            q, k, v = self._project(x, context)
            if self.qk_norm:
                q, k = F.rms_norm(q, (self.head_dim,)), F.rms_norm(k, (self.head_dim,))
        boolean("causal", causal)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        B, _, Tq, _ = q.shape
        Tk = k.size(2)
        scores_shape = (B, self.n_head, Tq, Tk)
        if mask is not None:
            check_mask(mask, scores_shape, q.device)
        if attn_bias is not None:
            check_bias(attn_bias, scores_shape, q.device)
        is_causal = False
        if causal:
            if Tq == 1:
                pass                                # one query at the end sees every key
            elif (mask is None and attn_bias is None and Tq == Tk
                    and not self.record_weights and self.impl == "sdpa"):
                is_causal = True                    # SDPA's fast causal path, no mask tensor
            else:                                   # built only here: decoding needs none
                tri = causal_allowed(Tq, Tk, q.device)
                mask = tri if mask is None else mask & tri
        dropout_p = self.dropout if self.training else 0.0
        if self.impl == "sdpa" and not self.record_weights:
            y = self._sdpa(q, k, v, mask, attn_bias, is_causal, dropout_p)
        else:
            y = self._scratch(q, k, v, mask, attn_bias, dropout_p)
        y = y.transpose(1, 2).reshape(B, Tq, self.n_head * self.head_dim)
        return self.resid_dropout(self.proj(y))

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None, attn_bias: torch.Tensor | None, is_causal: bool,
              dropout_p: float) -> torch.Tensor:
        """PyTorch's fused attention with the bool mask and float bias folded into one
        float ``attn_mask`` when both are given (fully masked rows are zeroed after)."""
        attn_mask = mask
        if attn_bias is not None:
            attn_mask = attn_bias.to(q.dtype)
            if mask is not None:
                attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
        gqa = self.n_kv_head != self.n_head
        if gqa and not _sdpa_groups_kv(q, attn_mask):
            k, v = self._expand_kv(k, v)
            gqa = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                           is_causal=is_causal, enable_gqa=gqa)
        if attn_bias is not None:                   # the scratch path's zero rows, everywhere
            alive = ~torch.isneginf(attn_mask).all(dim=-1, keepdim=True)
            y = y.masked_fill(~alive, 0.0)
        return y

    def _expand_kv(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, H_kv, Tk, D) -> (B, H, Tk, D)``: each K/V head repeated for its query group."""
        rep = self.n_head // self.n_kv_head
        if rep == 1:
            return k, v
        return k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)

    def _scratch(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 mask: torch.Tensor | None, attn_bias: torch.Tensor | None,
                 dropout_p: float) -> torch.Tensor:
        k, v = self._expand_kv(k, v)
        out, weights = attention(q, k, v, mask=mask, attn_bias=attn_bias)
        if self.record_weights:
            self.last_weights = weights.detach()
        if dropout_p > 0:
            out = F.dropout(weights, p=dropout_p) @ v
        return out
