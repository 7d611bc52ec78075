"""Checks for the exercises of notebook 3.8 (instruction tuning, DPO)."""
from __future__ import annotations

import torch

from llmbook.exercises import exercise, expect


@exercise("3.8.1")
def _mask_prompt(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.8.1', mask_prompt)")
    ids = [5, 17, 3, 99, 42, 7]
    got = fn(list(ids), 4)
    expect(isinstance(got, (list, tuple, torch.Tensor)) and len(got) == len(ids),
           f"return one label per input token ({len(ids)} here)")
    got = [int(v) for v in got]
    if got == [5, 17, 3, 99, -100, -100]:
        expect(False, "reversed: the PROMPT (the first prompt_len tokens) gets -100")
    if got == [-100, -100, -100, 99, 42, 7] or got == [-100] * 5 + [7]:
        expect(False, "off by one: exactly prompt_len tokens are masked")
    expect(got == [-100, -100, -100, -100, 42, 7],
           "labels: -100 for the first prompt_len tokens, the token ids after them")
    expect([int(v) for v in fn([1, 2], 0)] == [1, 2], "prompt_len = 0 masks nothing")


@exercise("3.8.2")
def _dpo_optimum(fn) -> None:
    expect(callable(fn), "pass the function itself: check('3.8.2', dpo_optimum)")
    g = torch.Generator().manual_seed(3)
    log_ref = torch.randn(6, generator=g, dtype=torch.float64).log_softmax(-1)
    reward = torch.randn(6, generator=g, dtype=torch.float64)
    beta = 0.25
    got = fn(log_ref.clone(), reward.clone(), beta)
    expect(isinstance(got, torch.Tensor) and got.shape == (6,),
           "return a tensor of probabilities, one per answer")
    got = got.to(torch.float64)
    expect(abs(float(got.sum()) - 1) < 1e-6, "normalise: the probabilities must sum to 1")
    if torch.allclose(got, (log_ref + beta * reward).softmax(-1)):
        expect(False, "the reward is divided by β: a SMALL β lets the policy move far")
    if torch.allclose(got, reward.softmax(-1) if beta == 1 else (reward / beta).softmax(-1)):
        expect(False, "the optimum starts from the reference: multiply by π_ref")
    want = (log_ref + reward / beta).softmax(-1)
    expect(torch.allclose(got, want, atol=1e-6), "π*(y) ∝ π_ref(y) · exp(r(y) / β)")
