"""Checks for the exercises of notebook 3.7 (conflicting objectives, distribution shift)."""
from __future__ import annotations

import math

import numpy as np
import torch

from llmbook.exercises import exercise, expect


@exercise("3.7.1")
def _project(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.7.1', project)")
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    got = fn(a.clone(), b.clone())
    expect(isinstance(got, torch.Tensor) and got.shape == a.shape,
           "return a tensor of the same shape as g_i")
    if torch.allclose(got, torch.tensor([1.5, -0.5])):
        expect(False, "sign: subtract (g_i·g_j)/|g_j|² · g_j; with a negative dot product that adds")
    if torch.allclose(got, a - (a @ b) / b.norm() * b):
        expect(False, "divide by the SQUARED norm |g_j|² = g_j·g_j")
    expect(torch.allclose(got, torch.tensor([0.5, 0.5])),
           "for g_i=(1,0), g_j=(-1,1) the projection is (0.5, 0.5)")
    expect(abs(float(got @ b)) < 1e-6, "after projection g_i must be orthogonal to g_j")
    c = torch.tensor([1.0, 0.2])
    expect(torch.allclose(fn(c.clone(), torch.tensor([0.5, 1.0])), c),
           "only project when the gradients conflict (negative dot product); "
           "otherwise return g_i unchanged")


@exercise("3.7.2")
def _shift_penalty(answer) -> None:
    expect(isinstance(answer, tuple) and len(answer) == 2,
           "pass the tuple (bits, shift_penalty)")
    bits, value = answer
    bits = np.asarray(bits, dtype=float)
    expect(bits.ndim == 2 and bits.shape[0] >= 1 and bits.shape[1] >= 2,
           "bits must be the (models × domains) matrix")
    want = bits[0, 1] - bits[0, 0]
    value = float(value)
    if not math.isclose(want, bits[1, 0] - bits[0, 0]) and math.isclose(value, bits[1, 0] - bits[0, 0]):
        expect(False, "rows are the training domain, columns the evaluation domain: "
                      "use bits[0, 1], the Austen model on KJV")
    if math.isclose(value, -want, abs_tol=1e-9) and want != 0:
        expect(False, "the penalty is the loss on the OTHER domain minus the loss at home")
    expect(math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9),
           f"expected bits[0, 1] - bits[0, 0] = {want:.3f}")
