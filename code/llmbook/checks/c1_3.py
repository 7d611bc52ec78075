"""Checks for notebook 1.3 (embeddings)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmbook.exercises import exercise, expect


def _sgns_reference(v: torch.Tensor, u_pos: torch.Tensor, u_negs: torch.Tensor) -> torch.Tensor:
    return -(F.logsigmoid(u_pos @ v) + F.logsigmoid(-(u_negs @ v)).sum())


@exercise("1.3.1")
def sgns_loss_one(fn) -> None:
    """``fn(v (d,), u_pos (d,), u_negs (K, d)) -> 0-d tensor``: the SGNS loss of one example."""
    g = torch.Generator().manual_seed(13)
    v, u_pos, u_negs = torch.randn(6, generator=g), torch.randn(6, generator=g), torch.randn(4, 6, generator=g)
    got = fn(v, u_pos, u_negs)
    expect(isinstance(got, torch.Tensor), f"return a torch tensor, not {type(got).__name__}")
    expect(got.dim() == 0, f"return one number (a 0-d tensor), got shape {tuple(got.shape)}: "
                           "sum over the K negatives")
    want = _sgns_reference(v, u_pos, u_negs)
    expect(not torch.isclose(got, -F.logsigmoid(u_pos @ v), atol=1e-5),
           "your loss only has the positive term; add -log σ(-u_n·v) for every negative n")
    wrong_sign = -(F.logsigmoid(u_pos @ v) + F.logsigmoid(u_negs @ v).sum())
    expect(not torch.isclose(got, wrong_sign, atol=1e-5),
           "negatives must be pushed *apart*: use log σ(-u_n·v), with a minus inside σ")
    expect(got.item() > 0, "a loss built from -log σ(...) is always positive; check the overall sign")
    expect(torch.isclose(got, want, atol=1e-5),
           f"expected {want.item():.4f}, got {got.item():.4f}")
    v0 = torch.zeros(6)
    got0 = fn(v0, u_pos, u_negs)
    expect(torch.isclose(got0, torch.tensor(5 * 0.6931471805599453), atol=1e-4),
           "with v = 0 every σ is 1/2, so the loss is (1 + K)·log 2")


@exercise("1.3.2")
def nearest(fn) -> None:
    """``fn(vectors (V, d), i, k) -> list[int]``: top-k rows by cosine, excluding i."""
    vectors = torch.tensor([[1.0, 0.0], [10.0, 3.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    got = fn(vectors.clone(), 0, 2)
    got = list(got.tolist() if isinstance(got, torch.Tensor) else got)
    expect(0 not in got, "exclude the query row itself (its cosine with itself is 1)")
    expect(got != [1, 2], "[1, 2] ranks by dot product: row 1 is long, not more similar. "
                          "Normalise the rows first (cosine similarity).")
    expect(got == [2, 1], f"for this matrix the two nearest rows to row 0 are [2, 1], got {got}")
    g = torch.Generator().manual_seed(3)
    M = torch.randn(30, 5, generator=g) * torch.rand(30, 1, generator=g) * 10
    unit = F.normalize(M, dim=1)
    sims = unit @ unit[7]
    sims[7] = -2
    want = sims.topk(4).indices.tolist()
    got = fn(M.clone(), 7, 4)
    got = list(got.tolist() if isinstance(got, torch.Tensor) else got)
    expect(got == want, f"on a random matrix the 4 nearest rows to row 7 are {want}, got {got} "
                        "(most similar first)")
