"""Checks for the exercises of notebook 4.1 (decoding)."""
from __future__ import annotations

import torch

from llmbook.exercises import exercise, expect


@exercise("4.1.1")
def _expected_tokens(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.1.1', expected_tokens)")
    expect(abs(float(fn(0.0, 4)) - 1.0) < 1e-9,
           "with alpha = 0 every proposal is rejected, yet the target still gives 1 token")
    expect(abs(float(fn(1.0, 4)) - 5.0) < 1e-9,
           "with alpha = 1 all k proposals are accepted, plus the target's bonus token")
    g = torch.Generator().manual_seed(0)
    for alpha, k in [(0.6, 3), (0.9, 5), (0.3, 1)]:
        # simulate: accept while a coin with probability alpha says yes, at most k times
        coins = torch.rand(200_000, k, generator=g) < alpha
        simulated = float(coins.long().cumprod(1).sum(1).float().mean()) + 1
        exact = sum(alpha ** i for i in range(k + 1))
        got = float(fn(alpha, k))
        if abs(got - (exact - alpha ** k)) < 1e-6 and alpha ** k > 1e-3:
            expect(False, "you left out one term: the target adds a token also when all k "
                          "proposals are accepted")
        expect(abs(got - exact) < 1e-6,
               f"alpha={alpha}, k={k}: a simulation gives about {simulated:.3f} tokens per "
               f"round; the i-th proposal survives with probability alpha**i")


@exercise("4.1.2")
def _epsilon_filter(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.1.2', epsilon_filter)")
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05],
                                     [0.3, 0.25, 0.25, 0.2]]))
    got = fn(logits.clone(), 0.1)
    expect(isinstance(got, torch.Tensor) and got.shape == logits.shape,
           "return logits of the same shape (B, V)")
    kept = torch.isfinite(got)
    expect(kept.tolist() == [[True, True, True, False], [True, True, True, True]],
           "keep exactly the tokens with probability >= eps (0.05 < 0.1 is dropped)")
    expect(torch.allclose(got[kept], logits[kept]), "kept logits must stay unchanged")
    flat = torch.zeros(1, 20)                          # every token has probability 0.05
    survivors = torch.isfinite(fn(flat.clone(), 0.2)).sum().item()
    expect(survivors >= 1, "when every token is below eps, keep at least the most "
                           "probable one, or there is nothing left to sample")
    peaked = torch.tensor([[5.0, 0.0, 0.0]])
    expect(torch.isfinite(fn(peaked.clone(), 0.9)).tolist() == [[True, False, False]],
           "the threshold is absolute, on probabilities (min-p would scale it)")


@exercise("4.1.3")
def _frequency_penalty(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.1.3', frequency_penalty)")
    logits = torch.tensor([[1.0, -1.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    context = torch.tensor([[0, 0, 2, 0], [3, 3, 3, 1]])
    got = fn(logits.clone(), context, 0.5)
    expect(isinstance(got, torch.Tensor) and got.shape == logits.shape,
           "return penalised logits of the same shape (B, V)")
    want = torch.tensor([[1.0 - 1.5, -1.0, 2.0 - 0.5, 0.5], [0.0, -0.5, 0.0, -1.5]])
    presence = torch.tensor([[0.5, -1.0, 1.5, 0.5], [0.0, -0.5, 0.0, -0.5]])
    if torch.allclose(got, presence):
        expect(False, "each occurrence counts: token 0 appears 3 times in row 0, so it "
                      "loses 3 * alpha")
    expect(torch.allclose(got, want), "subtract alpha times the number of occurrences of "
                                      "each token in its own row's context")
