"""Checks for the exercises of notebook 5.5 (mixture of experts, sharding)."""
from __future__ import annotations

import math

import torch

from llmbook.exercises import exercise, expect


def _dropped(chosen: torch.Tensor, n_experts: int, capacity_factor: float) -> float:
    capacity = math.ceil(capacity_factor * chosen.numel() / n_experts)
    used = [0] * n_experts
    dropped = 0
    for e in chosen.flatten().tolist():
        if used[e] < capacity:
            used[e] += 1
        else:
            dropped += 1
    return dropped / chosen.numel()


@exercise("5.5.1")
def _capacity(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.5.1', dropped_fraction)")
    even = torch.arange(16).remainder(4)[:, None]                  # (16, 1), balanced
    got = fn(even.clone(), 4, 1.0)
    expect(isinstance(got, float), f"return a float, got {type(got).__name__}")
    expect(abs(got) < 1e-9, "a perfectly balanced routing drops nothing at capacity factor 1")
    one = torch.zeros(16, 1, dtype=torch.long)                      # every token to expert 0
    got = fn(one.clone(), 4, 1.0)
    expect(abs(got - 0.75) < 1e-9, f"all 16 tokens to one of 4 experts with capacity 4 keep "
           f"4 and drop 12: 0.75, got {got}")
    expect(abs(fn(one.clone(), 4, 2.0) - 0.5) < 1e-9,
           "capacity factor 2 doubles the capacity: 8 of 16 kept")
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(40, 6, generator=g), -1)
    chosen = probs.topk(2, -1).indices                              # (40, 2)
    for cf in (0.5, 1.0, 1.25):
        want = _dropped(chosen, 6, cf)
        got = fn(chosen.clone(), 6, cf)
        expect(abs(got - want) < 1e-9,
               f"top-2 routing of 40 tokens to 6 experts, capacity factor {cf}: expected "
               f"{want:.4f}, got {got:.4f}. The capacity counts assignments "
               "(ceil(capacity_factor * N * k / E)), filled in token order, first choice "
               "before second")


@exercise("5.5.2")
def _zero(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.5.2', zero_bytes)")
    psi, n = 7.5e9, 64
    want = {0: 120e9, 1: 31.4e9, 2: 16.6e9, 3: 1.9e9}               # the ZeRO paper, Fig. 1
    hint = {0: "plain DDP keeps 2 + 2 + 12 = 16 bytes per parameter on every rank",
            1: "stage 1 divides only the 12 bytes of optimiser state by N",
            2: "stage 2 divides the gradients (2 bytes) and the optimiser state by N",
            3: "stage 3 divides everything, 16 bytes per parameter, by N"}
    for stage, gb in want.items():
        got = fn(psi, n, stage)
        expect(isinstance(got, (int, float)), f"return a number of bytes, got {got!r}")
        expect(abs(got - gb) / gb < 0.03,
               f"stage {stage}, 7.5 B parameters, 64 GPUs: about {gb / 1e9:.1f} GB per GPU, "
               f"got {got / 1e9:.2f} GB; {hint[stage]}")
    expect(fn(1000, 1, 3) == fn(1000, 1, 0), "with one rank, sharding changes nothing")
