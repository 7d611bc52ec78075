"""Checks for notebook 2.2, causal and padding masks."""
from __future__ import annotations

import math
from typing import Callable

import torch

from llmbook.exercises import exercise, expect


@exercise("2.2.1")
def check_causal_mask(fn: Callable[[int], torch.Tensor]) -> None:
    """`fn(T)` is the (T, T) bool lower triangle, diagonal included (True = may attend)."""
    for T in (4, 7, 1):
        m = fn(T)
        expect(isinstance(m, torch.Tensor), "return a torch.Tensor.")
        expect(tuple(m.shape) == (T, T), f"for T={T} the mask should be ({T}, {T}), got {tuple(m.shape)}.")
        expect(m.dtype == torch.bool, f"the mask should be a bool tensor, got {m.dtype}; "
               "float masks are added to the scores and mean something else.")
        want = torch.ones(T, T, dtype=torch.bool).tril()
        if T > 1:
            expect(not torch.equal(m, ~want) and not torch.equal(m, want.T),
                   "this is the inverted or transposed mask: row i is query i, and it may attend "
                   "to keys j <= i (the lower triangle), True = may attend.")
        expect(bool(m.diagonal().all()), "a token may attend to itself: the diagonal must be True "
               "(otherwise the first token attends to nothing).")
        expect(torch.equal(m, want), "the mask should be True exactly where j <= i "
               "(torch.tril of a matrix of ones).")


@exercise("2.2.2")
def check_key_mask(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """`fn(lengths, T)` is (B, T) bool, True at positions < length."""
    lengths, T = torch.tensor([3, 5, 1]), 6
    m = fn(lengths, T)
    expect(isinstance(m, torch.Tensor), "return a torch.Tensor.")
    expect(tuple(m.shape) == (3, T), f"expected shape (B, T) = (3, {T}), got {tuple(m.shape)}.")
    expect(m.dtype == torch.bool, f"return a bool tensor, got {m.dtype}.")
    want = torch.arange(T)[None, :] < lengths[:, None]
    expect(not torch.equal(m, ~want), "True should mark the *real* tokens, not the padding.")
    expect(not torch.equal(m, want.flip(-1)), "the sequences are right-padded: real tokens "
           "come first, padding at the end.")
    expect(torch.equal(m, want), "position t of sequence b is real when t < lengths[b].")


@exercise("2.2.3")
def check_leak_floor(fn: Callable[[int, int], float]) -> None:
    """Only the last of T positions is unpredictable: floor = ln V / T."""
    for V, T in ((50, 16), (10, 4), (1000, 128)):
        got = float(fn(V, T))
        expect(not math.isclose(got, math.log(V), rel_tol=1e-6),
               "ln V is the floor of the causal model. The unmasked one can copy every target "
               "except the last, so only one position in T costs ln V.")
        expect(not math.isclose(got, 0.0, abs_tol=1e-9),
               "the last target is not in the input, so that position still costs ln V.")
        expect(math.isclose(got, math.log(V) / T, rel_tol=1e-6),
               f"for V={V}, T={T} expected {math.log(V) / T:.4f}, got {got:.4f}: average "
               "T-1 positions of loss 0 and one of loss ln V.")
