"""Checks for the exercises of notebook 3.3 (optimisation)."""
from __future__ import annotations

import math

import torch

from llmbook.exercises import exercise, expect
from llmbook.train import lr_at


@exercise("3.3.1")
def _schedule(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.3.1', my_lr)")
    args = {"max_lr": 1e-3, "warmup": 10, "max_steps": 100, "min_lr": 1e-4}
    expect(math.isclose(fn(0, *args.values()), 1e-4, rel_tol=1e-6),
           "step 0 should get max_lr / warmup (the ramp starts at (step + 1) / warmup)")
    expect(math.isclose(fn(9, *args.values()), 1e-3, rel_tol=1e-6),
           "the last warmup step (step warmup - 1) should reach max_lr")
    expect(math.isclose(fn(150, *args.values()), 1e-4, rel_tol=1e-6),
           "after max_steps the rate stays at min_lr")
    mid = fn(55, *args.values())
    expect(math.isclose(mid, 5.5e-4, rel_tol=1e-4),
           f"half-way through the decay (step 55) the rate should be (max_lr + min_lr) / 2 "
           f"= 5.5e-4, got {mid:.3g}; is the cosine running over max_steps - warmup?")
    for step in range(0, 120, 7):
        want = lr_at(step, 1e-3, 10, 100, 1e-4)
        expect(math.isclose(fn(step, *args.values()), want, rel_tol=1e-6),
               f"at step {step} expected {want:.4g}")


@exercise("3.3.2")
def _token_accuracy(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.3.2', token_accuracy)")
    pad = 0
    targets = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])           # 5 real tokens
    pred = torch.tensor([[5, 6, 1, 0], [8, 2, 0, 0]])               # 3 of them right
    logits = torch.nn.functional.one_hot(pred, 10).float()
    got = fn(logits, targets, pad)
    expect(isinstance(got, float), f"return a Python float, got {type(got).__name__}")
    expect(0.0 <= got <= 1.0, f"an accuracy lies in [0, 1], got {got}: "
           "do you divide by the number of sequences instead of tokens?")
    if math.isclose(got, 6 / 8):
        expect(False, "padding positions count as correct here: leave them out")
    expect(math.isclose(got, 3 / 5), f"3 of the 5 non-padding tokens are right; got {got:.3f}")
