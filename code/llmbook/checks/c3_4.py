"""Checks for the exercises of notebook 3.4 (pretraining a tiny GPT)."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from llmbook.exercises import exercise, expect


def _tiny_model_and_ids():
    from llmbook.models import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    with torch.no_grad():                      # make the predictions far from uniform
        for p in model.parameters():
            p.mul_(4.0)
    ids = torch.randint(20, (17,), generator=torch.Generator().manual_seed(1))
    return model, ids


@exercise("3.4.1")
def _mean_nll(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.4.1', mean_nll)")
    model, ids = _tiny_model_and_ids()
    got = fn(model, ids)
    if isinstance(got, torch.Tensor):
        expect(got.numel() == 1, "return one number, the mean over all predicted tokens")
        got = got.item()
    expect(isinstance(got, float), f"return a float, got {type(got).__name__}")
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        want = F.cross_entropy(logits[0], ids[1:]).item()
        unshifted = model(ids[None], ids[None])[1].item()          # labels = inputs
    if math.isclose(got, unshifted, rel_tol=1e-4):
        expect(False, "the targets must be the inputs shifted by one: predict ids[1:] "
               "from ids[:-1]")
    if math.isclose(got, want * (len(ids) - 1), rel_tol=1e-4):
        expect(False, "that is the total; return the mean over tokens")
    expect(math.isclose(got, want, rel_tol=1e-4), f"expected {want:.4f}, got {got:.4f}")


@exercise("3.4.2")
def _bits_per_char(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.4.2', bits_per_char)")
    got = fn(2.0, 100, 300)
    want = 2.0 * 100 / 300 / math.log(2)
    if math.isclose(got, 2.0 * 100 / 300, rel_tol=1e-6):
        expect(False, "the loss is in nats: divide by ln 2 to get bits")
    if math.isclose(got, 2.0 / math.log(2), rel_tol=1e-6):
        expect(False, "convert per token to per character: total = loss x n_tokens, "
               "then divide by n_chars")
    expect(math.isclose(got, want, rel_tol=1e-6), f"expected {want:.4f} bits/char, got {got}")
