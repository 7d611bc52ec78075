"""Checks for the exercises of notebook 3.1 (loss and gradients)."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from llmbook.exercises import exercise, expect


@exercise("3.1.1")
def _nll_to_ppl(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.1.1', nll_to_ppl)")
    nll = torch.tensor([0.1, 2.0, 0.5, 3.0])
    got = fn(nll)
    expect(isinstance(got, float), f"return a Python float (use .item()), got {type(got).__name__}")
    want = math.exp(nll.mean().item())
    if math.isclose(got, torch.exp(nll).mean().item(), rel_tol=1e-4):
        expect(False, "that is the mean of exp(nll); perplexity is exp of the MEAN nll")
    if math.isclose(got, math.exp(nll.sum().item()), rel_tol=1e-4):
        expect(False, "exp of the SUM grows with the text's length; use the mean")
    expect(math.isclose(got, want, rel_tol=1e-5), f"for nll {nll.tolist()} expected {want:.4f}, got {got:.4f}")
    expect(math.isclose(fn(torch.zeros(7)), 1.0, rel_tol=1e-6), "a perfect model (nll 0) has perplexity 1")


@exercise("3.1.2")
def _grad_logits(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.1.2', grad_logits)")
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(4, (6,), generator=g)
    F.cross_entropy(z, t).backward()
    got = fn(z.detach().clone(), t)
    expect(isinstance(got, torch.Tensor) and got.shape == z.shape,
           f"return a tensor of shape {tuple(z.shape)} (one gradient per logit)")
    got = got.to(torch.float64)
    if torch.allclose(got, z.grad * z.shape[0], atol=1e-6):
        expect(False, "almost: the loss is the MEAN over the batch, so divide by N")
    if torch.allclose(got, -z.grad, atol=1e-6):
        expect(False, "sign: the gradient is softmax(z) - one_hot(y), not the reverse")
    expect(torch.allclose(got, z.grad, atol=1e-6),
           "for softmax + cross-entropy the gradient is (softmax(z) - one_hot(y)) / N "
           "(no sigmoid-derivative factor)")


@exercise("3.1.3")
def _max_loss(value) -> None:
    expect(isinstance(value, (int, float)), "give a number")
    if math.isclose(value, math.log(5), rel_tol=1e-3):
        expect(False, "that bound is for 5 classes; this classifier has 10")
    if math.isclose(value, 0.1, rel_tol=1e-3):
        expect(False, "1/10 is the smallest probability the true class can get; the loss is -ln of it")
    expect(math.isclose(value, math.log(10), rel_tol=1e-4),
           "a correct argmax gives the true class probability >= 1/C, so the loss is <= ln C")
