"""Checks for notebook 2.1, scaled dot-product attention."""
from __future__ import annotations

import math
from typing import Callable

import torch

from llmbook.exercises import exercise, expect


def _reference_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)


@exercise("2.1.1")
def check_attention_weights(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """`fn(q, k)` returns softmax(q kᵀ / √d_k) over the keys, for batched and unequal n, m."""
    gen = torch.Generator().manual_seed(21)
    q, k = torch.randn(2, 3, 4, 16, generator=gen), torch.randn(2, 3, 6, 16, generator=gen)
    got = fn(q, k)
    expect(isinstance(got, torch.Tensor), "return a torch.Tensor holding the weights.")
    expect(tuple(got.shape) == (2, 3, 4, 6),
           f"weights should have shape (..., n, m) = (2, 3, 4, 6) for q (2, 3, 4, 16) and "
           f"k (2, 3, 6, 16); got {tuple(got.shape)}. Did you transpose the last two axes of k?")
    expect(torch.allclose(got.sum(-1), torch.ones(2, 3, 4), atol=1e-5),
           "each row (one query) must sum to 1: apply softmax over the keys, dim=-1.")
    unscaled = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    expect(not torch.allclose(got, unscaled, atol=1e-5),
           "these are the unscaled weights: divide the scores by √d_k before the softmax.")
    expect(torch.allclose(got, _reference_weights(q, k), atol=1e-5),
           "the weights differ from softmax(q kᵀ / √d_k); check the scale factor "
           "(√d_k, with d_k = q.shape[-1]).")


@exercise("2.1.2")
def check_score_variance(fn: Callable[[int, float], float]) -> None:
    """Var(q·k) = d_k σ⁴ for independent zero-mean entries of variance σ²."""
    cases = [(1, 1.0), (64, 1.0), (9, 0.5), (8, 2.0), (100, 0.1)]
    for d_k, sigma in cases:
        got = float(fn(d_k, sigma))
        want = d_k * sigma ** 4
        expect(not math.isclose(got, d_k * sigma ** 2, rel_tol=1e-6) or sigma == 1.0,
               "each term q_t·k_t is a product of two variables of variance σ², so its variance "
               "is σ²·σ² = σ⁴, not σ².")
        expect(not math.isclose(got, math.sqrt(d_k) * sigma ** 2, rel_tol=1e-6) or d_k == 1,
               "√d_k σ² is the standard deviation, not the variance.")
        expect(math.isclose(got, want, rel_tol=1e-6),
               f"for d_k={d_k}, σ={sigma} the variance is {want:g}, you returned {got:g}. "
               "Add up the variances of the d_k independent terms q_t·k_t.")


def _dog_bites_dog_weights() -> torch.Tensor:
    x = torch.tensor([[1., 0., 1., 0.], [0., 1., 1., 1.], [1., 0., 1., 0.]])
    w_q = torch.tensor([[1., 0., 0., 0.], [0., 1., 0., 0.], [1., 0., 0., 1.], [0., 0., 1., 0.]])
    w_k = torch.tensor([[0., 1., 0., 0.], [1., 0., 0., 0.], [0., 0., 1., 0.], [0., 0., 0., 1.]])
    return _reference_weights(x @ w_q, x @ w_k)


@exercise("2.1.3")
def check_most_even(answer: int) -> None:
    """Index of the row of the worked example's weights with the largest entropy."""
    weights = _dog_bites_dog_weights()
    ent = -(weights * weights.log()).sum(-1)
    expect(isinstance(answer, int) and answer in (0, 1, 2), "answer with a row index: 0, 1 or 2.")
    expect(answer != int(ent.argmin()),
           "that row is the most *peaked* one; the most even row has the largest entropy.")
    expect(answer == int(ent.argmax()),
           "compute the entropy −Σ α log α of each row of weights_ex and take the largest.")
