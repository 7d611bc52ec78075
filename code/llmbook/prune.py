"""Magnitude pruning: set the smallest weights of each linear layer to zero.

- :func:`magnitude_mask`: unstructured, keep the ``1 - sparsity`` fraction of largest
  ``|w|`` of a matrix;
- :func:`two_four_mask`: the 2:4 pattern that sparse tensor cores accelerate, two
  non-zeros in every group of four consecutive input weights (exactly 50 % sparsity);
- :func:`prune_`: apply either to every ``nn.Linear`` of a model, in place.

Zeros only save memory or time with a sparse format or kernel that uses them; here they
measure how much of a trained model's accuracy the small weights carry.
"""
from __future__ import annotations

import torch

__all__ = ["magnitude_mask", "prune_", "sparsity", "two_four_mask"]


def _check_matrix(w: object) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.ndim != 2 or not w.is_floating_point():
        desc = f"shape {tuple(w.shape)} {w.dtype}" if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"w must be a 2-D float tensor (out, in), got {desc}")
    return w


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask ``(out, in)``, True = keep: the ``round((1 - sparsity) * numel)``
    entries of largest magnitude (ties broken by position)."""
    w = _check_matrix(w)
    if isinstance(sparsity, bool) or not isinstance(sparsity, float | int) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    n_keep = round((1 - sparsity) * w.numel())
    keep = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
    keep[w.abs().flatten().topk(n_keep).indices] = True
    return keep.view_as(w)


def two_four_mask(w: torch.Tensor) -> torch.Tensor:
    """Bool mask ``(out, in)`` keeping the 2 largest ``|w|`` of every 4 consecutive
    input weights; ``in`` must be a multiple of 4."""
    w = _check_matrix(w)
    if w.shape[1] % 4:
        raise ValueError(f"2:4 pruning needs an input width divisible by 4, got {w.shape[1]}")
    groups = w.abs().reshape(-1, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, groups.topk(2, dim=1).indices, True)
    return keep.view_as(w)


@torch.no_grad()
def prune_(module: torch.nn.Module, sparsity: float | None = None, pattern: str = "unstructured") -> int:
    """Zero the pruned weights of every ``nn.Linear`` in ``module`` (a tied LM head,
    whose weight is an embedding's, is left alone). ``pattern``: ``"unstructured"`` (needs
    ``sparsity``) or ``"2:4"``. Returns the number of weights set to zero."""
    if pattern not in ("unstructured", "2:4"):
        raise ValueError(f"pattern must be 'unstructured' or '2:4', got {pattern!r}")
    if pattern == "unstructured" and sparsity is None:
        raise ValueError("unstructured pruning needs a sparsity in [0, 1)")
    tied = {id(m.weight) for m in module.modules() if isinstance(m, torch.nn.Embedding)}
    zeroed = 0
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear) and id(layer.weight) not in tied:
            w = layer.weight
            keep = two_four_mask(w) if pattern == "2:4" else magnitude_mask(w, sparsity)
            zeroed += int((~keep).sum())
            w.mul_(keep)
    return zeroed


def sparsity(module: torch.nn.Module) -> float:
    """Fraction of exact zeros among the weights of the (untied) linear layers."""
    tied = {id(m.weight) for m in module.modules() if isinstance(m, torch.nn.Embedding)}
    ws = [m.weight for m in module.modules()
          if isinstance(m, torch.nn.Linear) and id(m.weight) not in tied]
    total = sum(w.numel() for w in ws)
    if total == 0:
        raise ValueError("module has no untied nn.Linear layers")
    return sum(int((w == 0).sum()) for w in ws) / total
