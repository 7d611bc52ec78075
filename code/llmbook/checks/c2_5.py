"""Checks for notebook 2.5 (the Transformer block)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from llmbook.exercises import exercise, expect


@exercise("2.5.1")
def check_layer_norm(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(x, weight, bias, eps)`` must equal ``F.layer_norm`` over the last dim."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.5.1', my_layer_norm).")
    g = torch.Generator().manual_seed(0)
    x = 3 + 2 * torch.randn(4, 6, 16, generator=g, dtype=torch.float64)
    w = torch.randn(16, generator=g, dtype=torch.float64)
    b = torch.randn(16, generator=g, dtype=torch.float64)
    ref = F.layer_norm(x, (16,), w, b, 1e-5)
    out = fn(x, w, b, 1e-5)
    expect(isinstance(out, torch.Tensor) and out.shape == x.shape,
           f"Return a tensor of the input's shape {tuple(x.shape)}.")
    mu = x.mean(-1, keepdim=True)
    unbiased = (x - mu) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5) * w + b
    expect(not torch.allclose(out, unbiased, atol=1e-6),
           "You used the unbiased variance (divide by C-1); LayerNorm divides by C: "
           "x.var(-1, unbiased=False) or ((x - mu)**2).mean(-1).")
    x_norm = (x - mu) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    expect(not torch.allclose(out, x_norm, atol=1e-6),
           "Normalised correctly, but apply the weight and bias: x_hat * weight + bias.")
    expect(torch.allclose(out.mean(-1), ref.mean(-1), atol=1e-4) or not
           torch.allclose(out, (x - x.mean(0)) / x.std(0) * w + b, atol=1e-4),
           "Normalise over the last dimension (each token's features), not over the batch.")
    expect(torch.allclose(out, ref, atol=1e-6),
           "Not equal to F.layer_norm: subtract the mean over the last dim, divide by "
           "sqrt(variance + eps) (eps inside the root), then * weight + bias.")
    tiny = torch.full((2, 16), 5.0, dtype=torch.float64)
    out_tiny = fn(tiny, w, b, 1e-5)
    expect(torch.isfinite(out_tiny).all(), "A constant row gives 0/0: add eps to the "
           "variance before the square root.")


@exercise("2.5.2")
def check_block_params(fn: Callable[[int], int]) -> None:
    """``fn(C)`` = parameters of a GPT-2 block = 12 C^2 + 13 C."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.5.2', gpt2_block_params).")
    for C in (64, 768):
        got = fn(C)
        expect(isinstance(got, int) and not isinstance(got, bool),
               f"Return an int, got {type(got).__name__}.")
        right = 12 * C * C + 13 * C
        expect(got != 12 * C * C, "12 C² counts the weight matrices only; add the biases "
               "and the LayerNorm weights and biases.")
        expect(got != 12 * C * C + 9 * C, "Biases are there, but each of the two LayerNorms "
               "has a weight and a bias of size C.")
        expect(got != 4 * C * C + 4 * C + 8 * C * C + 8 * C + 4 * C,
               "The FFN's biases have sizes 4C (first layer) and C (second layer), not 4C each.")
        expect(got == right, f"For C = {C} the block has {right:,} parameters, you have "
               f"{got:,}. Count W_q, W_k, W_v, W_o (C×C each) with biases, the FFN (C×4C, "
               "4C×C) with biases, and two LayerNorms.")


@exercise("2.5.3")
def check_swiglu_hidden(answer: Any) -> None:
    """3·C·d = 2·C·4C for C = 768, so d = 8C/3 = 2048."""
    expect(isinstance(answer, (int, float)) and not isinstance(answer, bool),
           f"Give a number, not {type(answer).__name__}.")
    expect(answer != 3072, "3072 = 4C is the GELU MLP's width; SwiGLU has three matrices "
           "instead of two, so it must be narrower.")
    expect(answer != 1536, "1536 = 2C would give SwiGLU 3·C·2C = 6C² parameters; the MLP "
           "has 8C².")
    expect(abs(answer - 2048) < 1e-6, "Solve 3·C·d = 2·C·4C for d.")
