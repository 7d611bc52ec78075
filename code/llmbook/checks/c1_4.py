"""Checks for notebook 1.4 (families of models)."""
from __future__ import annotations

import math

from llmbook.exercises import exercise, expect


def _gpt2_params(V: int, T: int, L: int, C: int) -> int:
    attention = 3 * C * C + 3 * C + C * C + C
    mlp = 4 * C * C + 4 * C + 4 * C * C + C
    return V * C + T * C + L * (attention + mlp + 4 * C) + 2 * C


@exercise("1.4.1")
def gpt2_params(fn) -> None:
    """``fn(V, T, L, C) -> int``: GPT-2-style parameter count, tied head."""
    got = fn(50257, 1024, 12, 768)
    want = _gpt2_params(50257, 1024, 12, 768)
    expect(isinstance(got, (int, float)), f"return a number, got {type(got).__name__}")
    expect(got != want + 50257 * 768,
           "you counted the LM head separately; with tying it *is* the token embedding, "
           "so its V·C parameters are counted once.")
    expect(got != want - 1024 * 768, "don't forget the learned position embedding (T·C).")
    expect(got != 12 * 12 * 768 * 768, "12·L·C² counts only the weight matrices of the blocks; "
                                       "add embeddings, biases and LayerNorms.")
    expect(got == want, f"GPT-2 small (V=50257, T=1024, L=12, C=768) has {want:,} parameters, "
                        f"you computed {got:,}. Per block: attention 4C² + 4C, MLP 8C² + 5C, "
                        "two LayerNorms 4C.")
    for args in [(100, 16, 2, 32), (512, 128, 4, 128)]:
        want, got = _gpt2_params(*args), fn(*args)
        expect(got == want, f"gpt2_params{args} should be {want:,}, got {got:,}")


@exercise("1.4.2")
def adamw_training_gib(fn) -> None:
    """``fn(n_params) -> float``: fp32 weights + grads + two AdamW moments, in GiB."""
    n = 7_000_000_000
    got = float(fn(n))
    want = n * 16 / 2**30
    expect(not math.isclose(got, n * 4 / 2**30, rel_tol=1e-6),
           "that is the weights alone; training also stores a gradient and two AdamW "
           "moments per parameter, each fp32.")
    expect(not math.isclose(got, n * 12 / 2**30, rel_tol=1e-6),
           "count four fp32 tensors per parameter: weights, gradients, first and second moment.")
    expect(not math.isclose(got, n * 16 / 1e9, rel_tol=1e-6),
           "a GiB is 2**30 bytes, not 10**9.")
    expect(math.isclose(got, want, rel_tol=1e-6),
           f"for 7e9 parameters the answer is {want:.1f} GiB, you returned {got:.4g}")
    expect(math.isclose(float(fn(2**30)), 16.0, rel_tol=1e-9), "2**30 parameters need 16 GiB")
