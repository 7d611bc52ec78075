"""Weight quantisation from scratch: int8 absmax, group-wise int4, GGUF Q4_1, GPTQ.

A weight matrix ``W (out, in)`` of a ``nn.Linear`` is stored with fewer bits and expanded
back ("dequantised") before the matmul. Every function here returns the integer codes and
their scales, and :func:`dequantize` turns them back into floats, so the error of each
scheme can be measured exactly.

- :func:`absmax_int8`: one scale per output row, ``q = round(w / s)`` with
  ``s = max|w_row| / 127``; 8 bits per weight plus one scale per row.
- :func:`groupwise`: asymmetric (scale and zero point) ``bits``-bit codes for each group
  of ``group_size`` consecutive input weights: ``q = clamp(round(w / s) + z, 0, 2^bits-1)``.
- :func:`q4_1_dequantize`: the GGUF/llama.cpp Q4_1 block format, read from its raw
  bytes: 32 weights per 20-byte block, ``w = d * q + m`` with fp16 ``d`` and ``m``.
- :func:`gptq`: the same group-wise grid, but columns are quantised one at a time and the
  error of each is pushed onto the columns not yet quantised, weighted by the inverse
  Hessian of the layer's reconstruction loss on calibration inputs (Frantar et al. 2023).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Quantized", "absmax_int8", "dequantize", "fake_quantize_", "gptq", "groupwise",
           "q4_1_dequantize", "storage_bits"]

Q4_1_BLOCK = 32          # weights per block
Q4_1_BYTES = 20          # fp16 d, fp16 m, 16 bytes of 4-bit codes


@dataclass
class Quantized:
    """Integer codes ``q (out, in)`` with per-row or per-group ``scale`` and ``zero``.

    ``scale`` and ``zero`` have shape ``(out, n_groups)``; group ``g`` covers input columns
    ``g * group_size ... (g + 1) * group_size - 1`` (one group = the whole row for absmax).
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int


def _check_weight(w: object, name: str = "w") -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.ndim != 2 or not w.is_floating_point():
        desc = f"shape {tuple(w.shape)} {w.dtype}" if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"{name} must be a 2-D float tensor (out, in), got {desc}")
    if not torch.isfinite(w).all():
        raise ValueError(f"{name} has non-finite entries; quantising them would hide the problem")
    return w


def _check_bits_group(bits: object, group_size: object, n_in: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int from 2 to 8, got {bits!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if n_in % group_size:
        raise ValueError(f"group_size={group_size} must divide the input width {n_in}")


def absmax_int8(w: torch.Tensor) -> Quantized:
    """Symmetric int8 with one scale per output row. ``w (out, in)``."""
    w = _check_weight(w).float()
    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return Quantized(q, scale, torch.zeros_like(scale), 8, w.shape[1])


def _grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric grid for each row of ``w (rows, g)``: ``scale (rows, 1)``, ``zero (rows, 1)``."""
    qmax = 2 ** bits - 1
    lo = w.amin(dim=1, keepdim=True).clamp_max(0)
    hi = w.amax(dim=1, keepdim=True).clamp_min(0)
    scale = ((hi - lo) / qmax).clamp_min(1e-12)
    zero = torch.round(-lo / scale)
    return scale, zero


def _encode(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    return (torch.round(w / scale) + zero).clamp(0, 2 ** bits - 1)


def groupwise(w: torch.Tensor, bits: int = 4, group_size: int = 32) -> Quantized:
    """Round-to-nearest ``bits``-bit codes with a scale and zero point per group of
    ``group_size`` input columns. ``w (out, in)``; ``in`` must be a multiple of the group."""
    w = _check_weight(w).float()
    out, n_in = w.shape
    _check_bits_group(bits, group_size, n_in)
    g = w.reshape(out * n_in // group_size, group_size)
    scale, zero = _grid(g, bits)
    q = _encode(g, scale, zero, bits).to(torch.uint8).reshape(out, n_in)
    n_groups = n_in // group_size
    return Quantized(q, scale.reshape(out, n_groups), zero.reshape(out, n_groups), bits, group_size)


def dequantize(qt: Quantized) -> torch.Tensor:
    """The float weights ``(out, in)`` that ``qt`` stands for: ``(q - zero) * scale``."""
    n_in = qt.q.shape[1]
    scale = qt.scale.repeat_interleave(qt.group_size, dim=1)[:, :n_in]
    zero = qt.zero.repeat_interleave(qt.group_size, dim=1)[:, :n_in]
    return (qt.q.float() - zero) * scale


def storage_bits(qt: Quantized, scale_bits: int = 16) -> float:
    """Bits per weight, scales and zero points included (each stored in ``scale_bits``)."""
    if not isinstance(qt, Quantized):
        raise TypeError(f"qt must be a Quantized, got {type(qt).__name__}")
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int) or scale_bits < 1:
        raise ValueError(f"scale_bits must be a positive int, got {scale_bits!r}")
    n = qt.q.numel()
    stored = [qt.scale] + ([qt.zero] if bool(qt.zero.any()) else [])   # absmax: no zero
    return (n * qt.bits + sum(t.numel() for t in stored) * scale_bits) / n


def q4_1_dequantize(raw: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Dequantise GGUF Q4_1 rows from their bytes: ``raw (rows, n_blocks * 20)`` uint8
    -> ``(rows, n_blocks * 32)`` float32.

    Each 20-byte block holds ``d`` and ``m`` (little-endian fp16) and 16 bytes of codes:
    byte ``j`` carries weight ``j`` in its low nibble and weight ``j + 16`` in its high
    nibble; weight = ``d * code + m``.
    """
    raw = raw.numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw)
    if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] % Q4_1_BYTES:
        raise ValueError(f"raw must be uint8 (rows, k * {Q4_1_BYTES}), got {raw.dtype} {raw.shape}")
    rows = raw.shape[0]
    blocks = raw.reshape(rows, -1, Q4_1_BYTES)
    d = blocks[..., 0:2].copy().view("<f2").astype(np.float32)        # (rows, nb, 1)
    m = blocks[..., 2:4].copy().view("<f2").astype(np.float32)
    qs = blocks[..., 4:]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32)  # (rows, nb, 32)
    return torch.from_numpy((d * codes + m).reshape(rows, -1))


def gptq(w: torch.Tensor, x: torch.Tensor, bits: int = 4, group_size: int = 32,
         damp: float = 0.01) -> Quantized:
    """GPTQ: quantise ``w (out, in)`` column by column on the group-wise grid, minimising
    the layer's output error on calibration inputs ``x (n, in)``.

    The Hessian of ``||x w^T - x ŵ^T||^2`` is ``H = 2 x^T x``. After column ``i`` is
    rounded, its error ``e`` is spread over the later columns as ``-e * Hinv[i, j] /
    Hinv[i, i]``, using the upper Cholesky factor of ``H^-1`` (the optimal update of
    Optimal Brain Surgeon, done in a fixed order). ``damp`` adds ``damp * mean(diag H)``
    to the diagonal for stability. The grid of each group is chosen from the weights as
    they stand when the group is reached.
    """
    w = _check_weight(w).float().clone()
    x = _check_weight(x, "x").float()
    out, n_in = w.shape
    if x.shape[1] != n_in:
        raise ValueError(f"x has {x.shape[1]} features but w has {n_in} input columns")
    _check_bits_group(bits, group_size, n_in)
    if not (isinstance(damp, float | int) and 0 < damp < 1):
        raise ValueError(f"damp must be in (0, 1), got {damp!r}")
    h = 2 * x.T @ x / x.shape[0]
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += damp * torch.diag(h).mean() * torch.eye(n_in)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    n_groups = n_in // group_size
    q = torch.zeros(out, n_in)
    scale = torch.zeros(out, n_groups)
    zero = torch.zeros(out, n_groups)
    # Columns go in blocks (a multiple of the group): inside a block the error is spread
    # column by column; the rest of the matrix gets the block's errors in one matmul.
    step = group_size * max(1, 128 // group_size)
    for b0 in range(0, n_in, step):
        b1 = min(b0 + step, n_in)
        wb, hb = w[:, b0:b1].clone(), hinv[b0:b1, b0:b1]
        errs = torch.zeros(out, b1 - b0)
        for j in range(b1 - b0):
            i, g = b0 + j, (b0 + j) // group_size
            if i % group_size == 0:
                s, z = _grid(wb[:, j:j + group_size], bits)
                scale[:, g], zero[:, g] = s[:, 0], z[:, 0]
            s, z = scale[:, g], zero[:, g]
            code = _encode(wb[:, j], s, z, bits)
            q[:, i] = code
            errs[:, j] = (wb[:, j] - (code - z) * s) / hb[j, j]
            wb[:, j + 1:] -= errs[:, j:j + 1] * hb[j, j + 1:][None, :]
        w[:, b1:] -= errs @ hinv[b0:b1, b1:]
    return Quantized(q.to(torch.uint8), scale, zero, bits, group_size)


@torch.no_grad()
def fake_quantize_(module: torch.nn.Module, scheme: str, bits: int = 4,
                   group_size: int = 32) -> int:
    """Replace the weight of every ``nn.Linear`` inside ``module`` (in place) by its
    quantised-then-dequantised value. ``scheme``: ``"int8"`` (absmax per row),
    ``"int4"`` (group-wise, ``bits``/``group_size``) or ``"bf16"`` (rounded to bfloat16).
    Returns the number of weights changed. The matmuls still run in the model's dtype:
    this measures the *error* of a scheme, not its speed. A ``Linear`` whose weight is
    shared with an ``nn.Embedding`` (a tied LM head) is left alone, as the embedding is."""
    if scheme not in ("int8", "int4", "bf16"):
        raise ValueError(f"scheme must be 'int8', 'int4' or 'bf16', got {scheme!r}")
    n = 0
    tied = {id(m.weight) for m in module.modules() if isinstance(m, torch.nn.Embedding)}
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear) and id(layer.weight) not in tied:
            w = layer.weight
            if scheme == "bf16":
                new = w.to(torch.bfloat16).to(w.dtype)
            elif scheme == "int8":
                new = dequantize(absmax_int8(w))
            else:
                new = dequantize(groupwise(w, bits, group_size))
            w.copy_(new.to(w.dtype))
            n += w.numel()
    return n
