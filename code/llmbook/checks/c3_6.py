"""Checks for the exercises of notebook 3.6 (fine-tuning, LoRA)."""
from __future__ import annotations

import torch

from llmbook.exercises import exercise, expect


@exercise("3.6.1")
def _lora_params(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.6.1', lora_params)")
    got = fn(128, 384, 4)
    if got == 128 * 384:
        expect(False, "that is the size of W itself; LoRA trains A (r × d_in) and B (d_out × r)")
    if got == 4 * 128 * 384:
        expect(False, "A is r × d_in and B is d_out × r: add their sizes, don't multiply")
    if got in (4 * 128, 4 * 384):
        expect(False, "count both matrices, A (r × d_in) and B (d_out × r)")
    expect(got == 4 * (128 + 384), "r·d_in for A plus d_out·r for B")
    expect(fn(10, 20, 1) == 30, "the count must hold for every shape (try d_in=10, d_out=20, r=1)")


@exercise("3.6.2")
def _merge(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.6.2', merge_lora)")
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 5, generator=g, dtype=torch.float64)
    A = torch.randn(2, 5, generator=g, dtype=torch.float64)
    B = torch.randn(6, 2, generator=g, dtype=torch.float64)
    scale = 4.0
    got = fn(W.clone(), A.clone(), B.clone(), scale)
    expect(isinstance(got, torch.Tensor) and got.shape == W.shape,
           f"return a tensor of W's shape {tuple(W.shape)} (d_out, d_in); B @ A has it")
    if torch.allclose(got, W + B @ A):
        expect(False, "don't forget the factor alpha / r (scale)")
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    want = x @ W.T + (x @ A.T @ B.T) * scale
    expect(torch.allclose(x @ got.T, want), "the merged layer must compute W x + scale · B A x")
