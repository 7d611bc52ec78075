"""Checks for notebook 2.2, causal and padding masks."""
from __future__ import annotations

import math
from typing import Callable

import torch

from llmbook.exercises import exercise, expect


@exercise("2.2.1")
def check_causal_mask_rect(fn: Callable[[int, int], torch.Tensor]) -> None:
    """`fn(T_q, T_k)`: bool mask, query i sees keys j <= i + T_k - T_q (bottom right)."""
    from llmbook.attention import attention

    for T_q, T_k in ((4, 4), (3, 6), (1, 5), (2, 7), (5, 5)):
        m = fn(T_q, T_k)
        expect(isinstance(m, torch.Tensor), "return a torch.Tensor.")
        expect(tuple(m.shape) == (T_q, T_k),
               f"for T_q={T_q}, T_k={T_k} the mask should be ({T_q}, {T_k}): one row per "
               f"query, one column per key; got {tuple(m.shape)}.")
        expect(m.dtype == torch.bool, f"the mask should be a bool tensor, got {m.dtype}.")
        top_left = torch.ones(T_q, T_k, dtype=torch.bool).tril()
        eye = torch.eye(T_k)
        want = attention(torch.randn(T_q, 4), torch.randn(T_k, 4), eye, causal=True)[0] > 0
        if T_q < T_k:
            expect(not torch.equal(m, top_left),
                   f"for {T_q} queries and {T_k} keys this is the top-left triangle "
                   "(is_causal=True in SDPA): query 0 is position T_k - T_q of the "
                   "sequence, so it sees keys 0 … T_k - T_q.")
        if T_q == 1:
            expect(bool(m.all()), "a single query is the newest token: it sees every key.")
        expect(bool(m[-1].all()), "the last query is the last position: it sees every key.")
        expect(torch.equal(m, want),
               f"for T_q={T_q}, T_k={T_k} query i may attend to keys j <= i + {T_k - T_q}; "
               f"expected {want.int().tolist()}, got {m.int().tolist()}.")


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
