"""Blockwise attention with an online softmax: the idea behind FlashAttention, in plain PyTorch.

Ordinary attention builds the whole ``(T_q, T_k)`` score matrix, then takes a softmax
over each row. The online softmax (Milakov & Gimelshein 2018) visits the keys one block
at a time and keeps, for every query row, three running quantities:

* ``m`` — the largest score seen so far (for numerical safety),
* ``l`` — the sum of ``exp(score - m)`` seen so far,
* ``acc`` — the sum of ``exp(score - m) * v`` seen so far.

When a new block raises the maximum from ``m`` to ``m'``, the old ``l`` and ``acc`` are
rescaled by ``exp(m - m')``. At the end ``acc / l`` is exactly ``softmax(scores) @ V``,
yet no more than one ``(T_q, block)`` tile of scores ever exists at once. FlashAttention
(Dao et al. 2022) does the same inside one GPU kernel, with the tiles in fast on-chip
memory; this module is the readable version, not a fast one.

Edge cases, the same as :func:`llmbook.attention.attention`: a row with no key to look
at (every score ``-inf``) gives **zeros**, not the NaN that ``torch.softmax`` returns
for such a row; zero keys is an error, and so is causal attention with ``T_q != T_k``.
A NaN (or ``+inf``) in the input propagates to its row's output, as in PyTorch.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["blockwise_attention", "online_softmax"]


def _check_block_size(block_size: int) -> None:
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")


def online_softmax(x: Tensor, block_size: int = 4) -> Tensor:
    """Softmax over the last dimension, reading ``x`` in blocks of ``block_size`` columns.

    One pass over the blocks keeps a running maximum ``m`` and a running normaliser ``l``
    (rescaled whenever ``m`` grows); a second pass writes ``exp(x - m) / l``.

    x: ``(..., N)`` floating tensor. Returns a tensor of the same shape whose rows sum to
    1; a row whose entries are all ``-inf`` gives all zeros (no mass to share; torch
    returns NaN there), a NaN or ``+inf`` entry makes its row NaN.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}"
                        f"{'' if not isinstance(x, Tensor) else ' of dtype ' + str(x.dtype)}")
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dimension, got shape {tuple(x.shape)}")
    _check_block_size(block_size)
    m = torch.full(x.shape[:-1], -math.inf, dtype=x.dtype, device=x.device)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start:start + block_size]
        m_new = torch.maximum(m, block.amax(dim=-1))
        l = l * _safe_exp(m - m_new) + _safe_exp(block - m_new[..., None]).sum(dim=-1)
        m = m_new
    return _divide(_safe_exp(x - m[..., None]), l[..., None], m[..., None])


def _divide(num: Tensor, l: Tensor, m: Tensor) -> Tensor:
    """``num / l``, with 0 for rows that saw no finite score (``m = -inf``, so ``l = 0``)
    and NaN for rows whose running maximum is NaN or ``+inf``."""
    empty = torch.isneginf(m)
    out = num / torch.where(empty, torch.ones_like(l), l)
    return torch.where(torch.isnan(m) | torch.isposinf(m), torch.full_like(out, math.nan), out)


def _safe_exp(x: Tensor) -> Tensor:
    """``exp(x)`` with ``exp(nan) := 0``: ``-inf - (-inf)`` arises for rows with no key yet."""
    return torch.exp(torch.nan_to_num(x, nan=-math.inf))


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, causal: bool) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be floating point, got dtype {t.dtype}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, D), got {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the head dimension D, got {q.shape[-1]} and "
                         f"{k.shape[-1]}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"k and v must have the same leading shape (..., T_k), got "
                         f"{tuple(k.shape)} and {tuple(v.shape)}")
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q and k must have the same batch/head shape, got {tuple(q.shape)} "
                         f"and {tuple(k.shape)}")
    if k.shape[-2] == 0:
        raise ValueError(f"k has shape {tuple(k.shape)}: need at least one key (T_k >= 1)")
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be True or False, got {causal!r}")
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal=True needs as many queries as keys, got T_q={q.shape[-2]} "
                         f"and T_k={k.shape[-2]} (llmbook.attention.attention aligns "
                         "T_q < T_k bottom-right, for decoding)")


def blockwise_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False,
                        block_size: int = 64) -> Tensor:
    """``softmax(q kᵀ / √D) v`` computed one key block at a time with an online softmax.

    q: ``(..., T_q, D)``, k: ``(..., T_k, D)``, v: ``(..., T_k, D_v)`` (e.g. ``(B, H, T, D)``).
    causal: query ``i`` sees keys ``j <= i`` only (needs ``T_q == T_k``; a clear error
    otherwise).
    Returns ``(..., T_q, D_v)``, equal (up to rounding) to
    ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)``.
    A row whose scores are all ``-inf`` gives zeros (as ``attention`` does).
    Peak extra memory is one ``(..., T_q, block_size)`` tile instead of ``(..., T_q, T_k)``.
    """
    _check_qkv(q, k, v, causal)
    _check_block_size(block_size)
    t_q, t_k = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    lead = q.shape[:-1]
    m = torch.full(lead, -math.inf, dtype=q.dtype, device=q.device)
    l = torch.zeros(lead, dtype=q.dtype, device=q.device)
    acc = torch.zeros(*lead, v.shape[-1], dtype=q.dtype, device=q.device)
    rows = torch.arange(t_q, device=q.device)[:, None]
    for start in range(0, t_k, block_size):
        k_blk, v_blk = k[..., start:start + block_size, :], v[..., start:start + block_size, :]
        s = (q @ k_blk.transpose(-2, -1)) * scale                # (..., T_q, blk)
        if causal:
            cols = torch.arange(start, start + k_blk.shape[-2], device=q.device)[None, :]
            s = s.masked_fill(cols > rows, -math.inf)
        m_new = torch.maximum(m, s.amax(dim=-1))                 # (..., T_q)
        p = _safe_exp(s - m_new[..., None])                      # (..., T_q, blk)
        correction = _safe_exp(m - m_new)                        # (..., T_q)
        l = l * correction + p.sum(dim=-1)
        acc = acc * correction[..., None] + p @ v_blk
        m = m_new
    return _divide(acc, l[..., None], m[..., None])
