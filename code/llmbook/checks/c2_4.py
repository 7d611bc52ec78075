"""Checks for notebook 2.4 (position)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from llmbook.exercises import exercise, expect


def _close(a: Any, b: torch.Tensor) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.double(), b, atol=1e-5))


def _alibi(T: int, H: int) -> torch.Tensor:
    slopes = 2.0 ** (-8.0 * torch.arange(1, H + 1, dtype=torch.float64) / H)
    dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).double()
    return (-slopes[:, None, None] * dist).masked_fill(dist < 0, float("-inf"))


@exercise("2.4.1")
def check_alibi(fn: Callable[[int, int], torch.Tensor]) -> None:
    """``fn(T, H)``: the (H, T, T) ALiBi bias, -m_h (i - j) below the diagonal, -inf above."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.4.1', alibi_bias).")
    out = fn(6, 4)
    expect(isinstance(out, torch.Tensor), f"Return a torch.Tensor, not {type(out).__name__}.")
    expect(tuple(out.shape) == (4, 6, 6), f"Expected shape (H, T, T) = (4, 6, 6) for T=6, "
           f"H=4, got {tuple(out.shape)}.")
    out = out.double()
    want = _alibi(6, 4)
    upper = torch.ones(6, 6, dtype=torch.bool).triu(1)
    expect(bool(torch.isneginf(out[:, upper]).all()),
           "Above the diagonal (j > i, the future) the bias must be -inf: ALiBi is used "
           "with a causal mask.")
    lower = ~upper
    expect(torch.allclose(out.diagonal(dim1=-2, dim2=-1), torch.zeros(4, 6,
                                                                     dtype=torch.float64)),
           "On the diagonal (distance 0) the bias is 0.")
    got, ref = out[:, lower], want[:, lower]
    expect(bool((got <= 0).all()), "The bias is a penalty: -m_h (i - j) is never positive.")
    expect(not torch.allclose(got, want.flip(0)[:, lower]),
           "Your slopes run the wrong way: head 0 has the steepest slope, 2^(-8/H).")
    expect(torch.allclose(got, ref, atol=1e-6),
           "Values differ from -m_h (i - j) with m_h = 2^(-8(h+1)/H): head 0 of 4 has "
           "slope 2^-2 = 0.25, head 3 has 2^-8.")
    big = fn(9, 8).double()
    expect(torch.allclose(big[:, ~torch.ones(9, 9, dtype=torch.bool).triu(1)],
                          _alibi(9, 8)[:, ~torch.ones(9, 9, dtype=torch.bool).triu(1)],
                          atol=1e-6),
           "Works for (6, 4) but not for (9, 8): don't hard-code the sizes.")


def _rope(x: torch.Tensor, interleaved: bool = False, sign: float = 1.0,
          offset: int = 0) -> torch.Tensor:
    T, D = x.shape
    inv_freq = 1.0 / 10000 ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = (torch.arange(T, dtype=torch.float64)[:, None] + offset) * inv_freq * sign  # (T, D/2)
    cos, sin = ang.cos(), ang.sin()
    x = x.double()
    if interleaved:
        x1, x2 = x[:, 0::2], x[:, 1::2]
        out = torch.empty_like(x)
        out[:, 0::2], out[:, 1::2] = x1 * cos - x2 * sin, x1 * sin + x2 * cos
        return out
    x1, x2 = x[:, : D // 2], x[:, D // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


@exercise("2.4.2")
def check_rope(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``fn(x)`` rotates a (T, D) tensor with half-split RoPE, base 10000, positions 0..T-1."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.4.2', rope_rotate).")
    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = fn(x.clone())
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (12, 8),
           "Return a tensor of the same shape as x, (T, D).")
    expect(not torch.allclose(out.double(), x), "Nothing changed: rotate pair i of row m "
           "by the angle m * 10000^(-2i/D).")
    expect(not _close(out, _rope(x, interleaved=True)),
           "You rotated neighbouring pairs (x0, x1), (x2, x3), ...: that is the original "
           "RoFormer layout. Here use the 'rotate half' layout of Hugging Face's Llama: "
           "pair i is (x[i], x[i + D/2]).")
    expect(not _close(out, _rope(x, sign=-1.0)), "You rotate the wrong way: use "
           "(x1 cos - x2 sin, x1 sin + x2 cos).")
    expect(not _close(out, _rope(x, offset=1)), "Positions start at 0, so row 0 is unchanged.")
    expect(torch.allclose(out.double().norm(dim=-1), x.norm(dim=-1), atol=1e-5),
           "A rotation keeps every row's length; yours changes it.")
    expect(_close(out, _rope(x)), "Lengths are kept, but the angles are off: pair i at "
           "position m turns by m * 10000^(-2i/D).")


@exercise("2.4.3")
def check_longest_wavelength(answer: Any) -> None:
    """The longest wavelength (in positions) of the sinusoidal table for C = 512."""
    expect(isinstance(answer, (int, float)) and not isinstance(answer, bool),
           f"Give a number (float), not {type(answer).__name__}.")
    right = 2 * math.pi * 10000 ** (510 / 512)
    expect(not math.isclose(answer, 2 * math.pi * 10000, rel_tol=1e-4),
           "Close, but the last pair has index i = C/2 - 1 = 255, so the exponent is 510/512, "
           "not 1.")
    expect(not math.isclose(answer, 10000 ** (510 / 512), rel_tol=1e-3),
           "That is 1/ω. A sine sin(ω·pos) repeats every 2π/ω positions.")
    expect(math.isclose(answer, right, rel_tol=1e-3),
           "The wavelength of pair i is 2π / ω_i with ω_i = 10000^(-2i/C); take the slowest pair.")
