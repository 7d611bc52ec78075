"""Checks for notebook 2.3, multi-head and grouped-query attention."""
from __future__ import annotations

import math
from typing import Callable

import torch

from llmbook.exercises import exercise, expect


@exercise("2.3.1")
def check_heads(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """`fn(x, h)`: (B, T, C) -> (B, h, T, C/h), head i = features i*C/h ... of every token."""
    B, T, C, h = 2, 5, 12, 3
    x = torch.arange(B * T * C, dtype=torch.float32).view(B, T, C)
    got = fn(x, h)
    expect(isinstance(got, torch.Tensor), "return a torch.Tensor.")
    expect(tuple(got.shape) == (B, h, T, C // h),
           f"expected shape (B, h, T, C/h) = {(B, h, T, C // h)}, got {tuple(got.shape)}.")
    want = x.view(B, T, h, C // h).transpose(1, 2)
    expect(not torch.equal(got, x.reshape(B, h, T, C // h)),
           "the shape is right but the numbers are scrambled: reshaping (B, T, C) straight to "
           "(B, h, T, C/h) mixes tokens across heads. Split the last axis first, "
           "view(B, T, h, C/h), then move the head axis with transpose(1, 2).")
    expect(torch.equal(got[:, 0, :, :], x[:, :, : C // h]),
           "head 0 should hold the first C/h features of every token.")
    expect(torch.equal(got, want), "head i should hold features i*C/h ... (i+1)*C/h - 1 of each token.")


@exercise("2.3.2")
def check_gqa_params(fn: Callable[[int, int, int], int]) -> None:
    """No biases: C² (Q) + 2·C·n_kv·(C/h) (K, V) + C² (O)."""
    for C, h, g in ((576, 9, 3), (512, 8, 8), (4096, 32, 8), (64, 8, 1)):
        got = int(fn(C, h, g))
        want = 2 * C * C + 2 * C * g * (C // h)
        expect(not (got == 4 * C * C and g != h),
               "4C² is plain multi-head attention; with grouped-query attention K and V project "
               "to n_kv_head · (C / n_head) features only.")
        expect(got != want - C * C, "did you forget the output projection W_O (C × C)?")
        expect(got == want, f"for C={C}, n_head={h}, n_kv_head={g} expected {want:,}, got {got:,}. "
               "Add up Q (C × C), K and V (C × n_kv_head·C/n_head each) and O (C × C).")


@exercise("2.3.3")
def check_kv_gib(answer: float) -> None:
    """8 sequences × 2 (K, V) × 32 layers × 8 kv heads × 128 × 4096 tokens × 2 bytes = 4 GiB."""
    want = 8 * 2 * 32 * 8 * 128 * 4096 * 2 / 2 ** 30
    expect(isinstance(answer, (int, float)), "store a number (GiB) in kv_gib.")
    expect(not math.isclose(answer, want * 4, rel_tol=1e-3),
           "that is the size with 32 key/value heads; with GQA only the 8 key/value heads are cached.")
    expect(not math.isclose(answer, want / 2, rel_tol=1e-3), "both keys and values are cached: factor 2.")
    expect(not math.isclose(answer, want / 8, rel_tol=1e-3), "that is one sequence; the batch has 8.")
    expect(not math.isclose(answer, want * 2 ** 30 / 1e9, rel_tol=1e-3),
           "that is in GB (10⁹ bytes); a GiB is 2³⁰ bytes.")
    expect(math.isclose(answer, want, rel_tol=1e-3), f"expected {want:.2f} GiB, got {answer}.")
