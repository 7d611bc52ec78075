"""Checks for notebook 1.3 (embeddings)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmbook.exercises import exercise, expect


def _sgns_loss(v: torch.Tensor, u_pos: torch.Tensor, u_negs: torch.Tensor) -> torch.Tensor:
    return -(F.logsigmoid(u_pos @ v) + F.logsigmoid(-(u_negs @ v)).sum())


@exercise("1.3.1")
def sgns_grad_v(fn) -> None:
    """``fn(v (d,), u_pos (d,), u_negs (K, d)) -> (d,)``: dℓ/dv of the SGNS loss, by hand."""
    g = torch.Generator().manual_seed(13)
    for d, K in ((6, 4), (3, 1), (8, 10)):
        v = torch.randn(d, generator=g, dtype=torch.float64)
        u_pos = torch.randn(d, generator=g, dtype=torch.float64)
        u_negs = torch.randn(K, d, generator=g, dtype=torch.float64)
        with torch.no_grad():
            got = fn(v.clone(), u_pos.clone(), u_negs.clone())
        expect(isinstance(got, torch.Tensor), f"return a torch tensor, not {type(got).__name__}")
        expect(tuple(got.shape) == (d,), f"the gradient has the shape of v, ({d},); got "
                                         f"{tuple(got.shape)}")
        want = torch.func.grad(_sgns_loss)(v, u_pos, u_negs)
        got = got.to(torch.float64)
        expect(not torch.allclose(got, -want, atol=1e-6),
               "your gradient has the opposite sign: it points uphill. A step v − η·∇ℓ "
               "must move v *towards* u_pos and *away* from the negatives.")
        pos_only = -(1 - torch.sigmoid(u_pos @ v)) * u_pos
        expect(not torch.allclose(got, pos_only, atol=1e-6),
               "you have the positive term only; each negative adds σ(u_n·v)·u_n.")
        wrong = -torch.sigmoid(u_pos @ v) * u_pos + (torch.sigmoid(u_negs @ v)[:, None]
                                                     * u_negs).sum(0)
        expect(not torch.allclose(got, wrong, atol=1e-6),
               "d/dz of −log σ(z) is −(1 − σ(z)), not −σ(z): a pair the model already "
               "scores high gets almost no pull.")
        expect(torch.allclose(got, want, atol=1e-6),
               f"autograd gives {[round(x, 4) for x in want.tolist()]}, you gave "
               f"{[round(x, 4) for x in got.tolist()]}")


def _ppmi_reference(X: torch.Tensor) -> torch.Tensor:
    P = X / X.sum()
    pmi = torch.log(P / (P.sum(1, keepdim=True) * P.sum(0, keepdim=True)))
    return torch.where(X > 0, pmi.clamp_min(0), torch.zeros_like(P))


@exercise("1.3.2")
def ppmi(fn) -> None:
    """``fn(X (V, V)) -> (V, V)``: positive pointwise mutual information of counts X."""
    X = torch.tensor([[0.0, 4.0, 1.0], [4.0, 0.0, 2.0], [1.0, 2.0, 6.0]])
    got = fn(X.clone())
    expect(isinstance(got, torch.Tensor), f"return a torch tensor, not {type(got).__name__}")
    expect(tuple(got.shape) == (3, 3), f"return a (V, V) matrix, got {tuple(got.shape)}")
    expect(bool(torch.isfinite(got).all()),
           "your matrix has inf or nan: log 0 where X = 0. Put 0 there (torch.where).")
    expect(bool((got >= 0).all()), "positive PMI is max(PMI, 0): no negative entries.")
    want = _ppmi_reference(X)
    expect(not torch.allclose(got, (torch.log(X / (X.sum(1, keepdim=True) * X.sum(0, keepdim=True)))
                                    .clamp_min(0)).nan_to_num(0.0), atol=1e-5) or
           torch.allclose(got, want, atol=1e-5),
           "turn counts into probabilities first: P(i, j) = X_ij / ΣX, and P(i), P(j) are "
           "the row and column sums of P, not of X.")
    expect(torch.allclose(got, want, atol=1e-5),
           f"for X = {X.tolist()} the PPMI is {[[round(x, 3) for x in r] for r in want.tolist()]}, "
           f"got {[[round(x, 3) for x in r] for r in got.tolist()]}")
    g = torch.Generator().manual_seed(5)
    Y = torch.poisson(torch.rand(12, 12, generator=g) * 3, generator=g)
    Y = Y + Y.T
    Y[0, 0] = 1.0
    expect(torch.allclose(fn(Y.clone()), _ppmi_reference(Y), atol=1e-5),
           "correct on the small example but not on a random 12 × 12 count matrix")
    doubled = fn(10 * Y.clone())
    expect(torch.allclose(doubled, _ppmi_reference(Y), atol=1e-5),
           "PMI depends on counts only through probabilities: 10·X must give the same matrix.")
