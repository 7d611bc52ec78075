"""Checks for notebook 2.1, scaled dot-product attention."""
from __future__ import annotations

import math
from typing import Callable

import torch

from llmbook.exercises import exercise, expect


def _reference_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)


_softmax_jac = torch.func.vmap(torch.func.jacrev(lambda s: s.softmax(-1)))


@exercise("2.1.1")
def check_softmax_jacobian(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """`fn(weights (..., m))` returns dα_j/ds_l = α_j (δ_jl − α_l), shape (..., m, m)."""
    gen = torch.Generator().manual_seed(21)
    scores = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    weights = scores.softmax(-1)
    got = fn(weights.clone())
    expect(isinstance(got, torch.Tensor), "return a torch.Tensor holding the Jacobians.")
    expect(tuple(got.shape) == (6, 5, 5),
           f"for weights of shape (6, 5) return one 5 × 5 Jacobian per row, (6, 5, 5); got "
           f"{tuple(got.shape)}. torch.diag_embed and broadcasting help.")
    want = _softmax_jac(scores)
    got = got.to(torch.float64)
    expect(not torch.allclose(got, torch.diag_embed(weights), atol=1e-8),
           "this is only diag(α): every weight also depends on the other scores through "
           "the denominator, which gives the −α_j α_l terms.")
    expect(torch.allclose(got.sum(-2), torch.zeros(6, 5, dtype=torch.float64), atol=1e-8),
           "the weights always sum to 1, so each column of the Jacobian must sum to 0 "
           "(raising one score moves weight, it does not create any).")
    expect(torch.allclose(got, got.transpose(-2, -1), atol=1e-8),
           "the softmax Jacobian is symmetric: α_j(δ_jl − α_l) = α_l(δ_lj − α_j).")
    expect(torch.allclose(got, want, atol=1e-8),
           "your Jacobians differ from autograd's; the entry (j, l) is α_j (δ_jl − α_l).")
    one_hot = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    expect(torch.allclose(fn(one_hot).to(torch.float64), torch.zeros(1, 3, 3,
                                                                     dtype=torch.float64)),
           "one-hot weights (a saturated softmax) must give a zero Jacobian.")
    batched = torch.randn(2, 3, 4, 7, generator=gen).softmax(-1)
    expect(tuple(fn(batched).shape) == (2, 3, 4, 7, 7),
           "work on any leading batch dimensions: (2, 3, 4, 7) -> (2, 3, 4, 7, 7).")


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
