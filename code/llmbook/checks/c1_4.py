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
def compute_optimal(fn) -> None:
    """``fn(flops) -> (N, D)``: parameters and tokens with D = 20 N and 6 N D = flops."""
    out = fn(1.2e21)
    expect(isinstance(out, (tuple, list)) and len(out) == 2, "return a pair (N, D)")
    N, D = (float(x) for x in out)
    expect(N > 0 and D > 0, f"N and D must be positive, got ({N:.3g}, {D:.3g})")
    expect(not math.isclose(N, 20 * D, rel_tol=1e-6),
           "N and D are swapped: D = 20·N tokens, many more tokens than parameters.")
    expect(math.isclose(D, 20 * N, rel_tol=1e-6),
           f"the recipe is D = 20·N; you returned D/N = {D / N:.3g}")
    expect(math.isclose(6 * N * D, 1.2e21, rel_tol=1e-6),
           f"6·N·D = {6 * N * D:.3g} FLOPs, but the budget is 1.2e21: with D = 20·N the "
           "budget is 6·N·20·N = 120·N², so N = sqrt(C / 120).")
    expect(math.isclose(N, 1e10 / 3.1622776601683795, rel_tol=1e-6),
           f"for 1.2e21 FLOPs N should be {1e10 / 3.1622776601683795:.4g}")
    for flops in (6e18, 3.8e25):
        N, D = (float(x) for x in fn(flops))
        expect(math.isclose(6 * N * D, flops, rel_tol=1e-6) and math.isclose(D, 20 * N,
                                                                               rel_tol=1e-6),
               f"correct for 1.2e21 FLOPs but not for {flops:.2g}")
