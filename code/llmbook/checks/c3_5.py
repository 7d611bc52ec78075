"""Checks for the exercises of notebook 3.5 (scaling)."""
from __future__ import annotations

import math

import numpy as np

from llmbook.exercises import exercise, expect


@exercise("3.5.1")
def _flops_per_token(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.5.1', flops_per_token)")
    got = fn(1_000_000)
    expect(isinstance(got, (int, float)), f"return a number, got {type(got).__name__}")
    if math.isclose(got, 2e6):
        expect(False, "2·N is the forward pass only; the backward pass costs twice as much")
    if math.isclose(got, 4e6):
        expect(False, "4·N is the backward pass only; add the forward pass (2·N)")
    expect(math.isclose(got, 6e6), "training costs 6 FLOPs per parameter per token")
    expect(math.isclose(fn(3), 18), "the answer must scale linearly with n_params")


@exercise("3.5.2")
def _memory_7b(value) -> None:
    expect(isinstance(value, (int, float)), "give a number of gigabytes")
    n = 7e9
    wrong = {n * 4 / 1e9: "that is the weights only; add gradients and the two AdamW moments",
             n * 8 / 1e9: "weights + gradients only; AdamW also keeps two moments per parameter",
             n * 12 / 1e9: "you left out one of the four fp32 copies (weights, gradients, m, v)",
             n * 16 / 2**30: "that is in GiB (2³⁰ bytes); the exercise asks for GB (10⁹ bytes)",
             n * 16: "that is bytes; divide by 10⁹ for gigabytes"}
    for w, hint in wrong.items():
        if math.isclose(value, w, rel_tol=1e-3):
            expect(False, hint)
    expect(math.isclose(value, n * 16 / 1e9, rel_tol=1e-3),
           "4 bytes each for weights, gradients, first and second moment: 16 bytes/parameter")


@exercise("3.5.3")
def _held_out(answer) -> None:
    expect(isinstance(answer, tuple) and len(answer) == 3,
           "pass the tuple (N, L, held_out_error)")
    n, loss, err = answer
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    expect(n.shape == loss.shape and n.size >= 3, "N and L must be arrays of at least 3 models")
    slope, intercept = np.polyfit(np.log(n[:-1]), np.log(loss[:-1]), 1)
    want = abs(math.exp(intercept) * n[-1] ** slope - loss[-1]) / loss[-1]
    slope_all, icpt_all = np.polyfit(np.log(n), np.log(loss), 1)
    leak = abs(math.exp(icpt_all) * n[-1] ** slope_all - loss[-1]) / loss[-1]
    if not math.isclose(want, leak, rel_tol=1e-6) and math.isclose(float(err), leak, rel_tol=1e-4):
        expect(False, "leave the largest model out of the fit: N[:-1], L[:-1]")
    expect(math.isclose(float(err), want, rel_tol=1e-4, abs_tol=1e-9),
           f"fit log L = log a - alpha log N on all but the last model; expected {want:.4f}")
