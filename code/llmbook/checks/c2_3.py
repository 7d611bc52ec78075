"""Checks for notebook 2.3, multi-head and grouped-query attention."""
from __future__ import annotations

import math
from typing import Callable

import torch

from llmbook.exercises import exercise, expect


def _causal_gqa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Reference: q (B, h, T, d), k, v (B, g, T, d) -> causal GQA output (B, h, T, d)."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    T = q.shape[2]
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return scores.softmax(-1) @ v


@exercise("2.3.1")
def check_kv_step(fn: Callable[..., tuple]) -> None:
    """`fn(q, k_new, v_new, k_cache, v_cache)`: one cached GQA step, token by token."""
    gen = torch.Generator().manual_seed(23)
    B, h, g, T, d = 2, 6, 2, 5, 8
    q = torch.randn(B, h, T, d, generator=gen)
    k, v = torch.randn(B, g, T, d, generator=gen), torch.randn(B, g, T, d, generator=gen)
    want = _causal_gqa(q, k, v)
    k_cache, v_cache = torch.zeros(B, g, 0, d), torch.zeros(B, g, 0, d)
    for t in range(T):
        result = fn(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], k_cache, v_cache)
        expect(isinstance(result, tuple) and len(result) == 3,
               "return the triple (out, k_cache, v_cache).")
        out, k_cache, v_cache = result
        expect(tuple(out.shape) == (B, h, 1, d),
               f"out should have shape (B, h, 1, d) = {(B, h, 1, d)}, got {tuple(out.shape)}.")
        expect(tuple(k_cache.shape) == (B, g, t + 1, d) and
               tuple(v_cache.shape) == (B, g, t + 1, d),
               f"after token {t} the caches should hold {t + 1} positions of the {g} "
               f"key/value heads: {(B, g, t + 1, d)}; got {tuple(k_cache.shape)}. Cache "
               "the g shared heads, not their copies for every query head.")
        expect(torch.allclose(k_cache[:, :, -1:], k[:, :, t:t + 1]),
               "the newest cache entry must be the new token's key (append at the end, "
               "dim=2).")
        if not torch.allclose(out, want[:, :, t:t + 1], atol=1e-5):
            expect(not (t == 0 and not bool(torch.isfinite(out).all() and out.abs().sum())),
                   "the first token must attend to itself: append the new key and value "
                   "to the cache *before* attending.")
            expect(False, f"at step {t} your output differs from causal attention over the "
                          "whole sequence. Query head i reads key/value head i // (h/g): "
                          "repeat_interleave, not repeat (which tiles the heads).")


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
