"""Checks for notebook 2.5 (the Transformer block)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from llmbook.exercises import exercise, expect


@exercise("2.5.1")
def check_fold_layer_norm(fn: Callable[..., tuple]) -> None:
    """``fn(gamma, beta, W, b) -> (W2, b2)`` with linear(LN_plain(x), W2, b2) = linear(LN(x))."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.5.1', fold_layer_norm).")
    g = torch.Generator().manual_seed(0)
    C, out_dim = 16, 24
    gamma = torch.randn(C, generator=g, dtype=torch.float64)
    beta = torch.randn(C, generator=g, dtype=torch.float64)
    W = torch.randn(out_dim, C, generator=g, dtype=torch.float64)
    b = torch.randn(out_dim, generator=g, dtype=torch.float64)
    result = fn(gamma.clone(), beta.clone(), W.clone(), b.clone())
    expect(isinstance(result, tuple) and len(result) == 2, "Return the pair (W2, b2).")
    W2, b2 = (t.double() for t in result)
    expect(tuple(W2.shape) == (out_dim, C) and tuple(b2.shape) == (out_dim,),
           f"W2 keeps W's shape (out, in) = {(out_dim, C)} and b2 b's {(out_dim,)}; got "
           f"{tuple(W2.shape)} and {tuple(b2.shape)}.")
    x = 3 + 2 * torch.randn(5, 7, C, generator=g, dtype=torch.float64)
    want = F.linear(F.layer_norm(x, (C,), gamma, beta), W, b)
    got = F.linear(F.layer_norm(x, (C,)), W2, b2)
    expect(not (torch.allclose(W2, W * gamma[None, :]) and not torch.allclose(got, want)),
           "The weights are right but the bias is not: β passes through W too, so "
           "b2 = b + W β.")
    Wsq = torch.randn(C, C, generator=g, dtype=torch.float64)
    W2sq, _ = fn(gamma.clone(), beta.clone(), Wsq.clone(), b[:C].clone())
    expect(not torch.allclose(W2sq.double(), Wsq * gamma[:, None]),
           "γ scales the *input* features, the columns of W (out, in): W * γ[None, :], "
           "not its rows.")
    expect(torch.allclose(got, want, atol=1e-8),
           "linear(LN(x)) changed: z = x̂ ⊙ γ + β, so z Wᵀ + b = x̂ (W ⊙ γ)ᵀ + (b + W β).")


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
