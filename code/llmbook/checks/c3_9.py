"""Checks for the exercises of notebook 3.9 (training faster)."""
from __future__ import annotations

import math

import torch

from llmbook.exercises import exercise, expect


@exercise("3.9.1")
def _time_to_target(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.9.1', time_to_target)")
    times, losses = [0.0, 10.0, 20.0, 30.0], [5.0, 4.0, 3.0, 2.5]
    got = fn(times, losses, 3.5)
    expect(got is not None, "the loss 3.5 is reached between t=10 and t=20")
    if math.isclose(got, 20.0):
        expect(False, "interpolate between the evaluation before the crossing and the "
               "first one at or below the target: 3.5 lies halfway from 4.0 to 3.0")
    expect(math.isclose(got, 15.0, rel_tol=1e-9), f"expected 15.0, got {got}")
    expect(math.isclose(fn(times, losses, 3.0), 20.0), "a loss equal to the target counts "
           "as reached")
    expect(fn(times, losses, 2.0) is None, "return None when the target is never reached")
    expect(math.isclose(fn(times, [2.0, 1.0, 1.0, 1.0], 3.0), 0.0),
           "a run that starts below the target reaches it at its first time")
    got = fn(times, [5.0, 3.0, 4.0, 2.0], 3.5)     # 3.5 is 3/4 of the way from 5 to 3
    expect(got is not None and math.isclose(got, 7.5), "use the *first* crossing (losses "
           f"can go up again): losses 5, 3, 4, 2 reach 3.5 at t=7.5, got {got}")


@exercise("3.9.2")
def _cubic_newton_schulz(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.9.2', cubic_ns)")
    g = torch.Generator().manual_seed(0)
    G = torch.randn(6, 10, generator=g, dtype=torch.float64)
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    polar = U @ Vh
    X = fn(G.clone(), 40)
    expect(isinstance(X, torch.Tensor) and X.shape == G.shape,
           f"return a tensor of G's shape {tuple(G.shape)}")
    expect(bool(torch.isfinite(X).all()), "the iteration blew up: divide G by its norm "
           "first, so that every singular value is at most 1")
    expect(torch.allclose(X, polar, atol=1e-6), "after 40 steps X should equal U V^T "
           "(the iteration is X <- 1.5 X - 0.5 X X^T X)")
    big = fn(1000.0 * G.clone(), 40)
    expect(torch.allclose(big, polar, atol=1e-6), "scaling G must not change the result: "
           "normalise it by its (Frobenius) norm")
