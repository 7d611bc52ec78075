"""Checks for the exercises of notebook 5.2 (interpretability)."""
from __future__ import annotations

import math

import torch

from llmbook.exercises import exercise, expect
from llmbook.interpret import induction_scores, repeated_tokens
from llmbook.models import GPT, GPTConfig
from llmbook.scale import pick


@exercise("5.2.1", kind=callable)
def _previous_token_scores(fn) -> None:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=3, n_embd=24,
                    position="rope")
    model = GPT(cfg).eval()
    idx = torch.randint(0, 40, (3, 12), generator=torch.Generator().manual_seed(1))
    got = fn(model, idx.clone())
    expect(isinstance(got, torch.Tensor), "return a tensor of scores")
    expect(tuple(got.shape) == (2, 3), f"one score per layer and head: shape (2, 3), got "
                                       f"{tuple(got.shape)}")
    maps = model.attention_maps(idx)
    want = torch.tensor([[float(torch.stack([maps[l][b, h, t, t - 1] for b in range(3)
                                             for t in range(1, 12)]).mean())
                          for h in range(3)] for l in range(2)])
    if torch.allclose(got.float(), torch.stack(maps).diagonal(dim1=-2, dim2=-1)
                      .mean(dim=(1, 3)), atol=1e-5):
        expect(False, "that is the attention of each token to itself (t → t): use t → t − 1")
    expect(torch.allclose(got.float(), want, atol=1e-5),
           "the score of a head is its weight from position t to t − 1, averaged over "
           "t = 1 … T − 1 and over the batch")


@exercise("5.2.2", kind=callable)
def _induction_gpt(fn) -> None:
    steps = pick(ci=80, cpu=100, gpu=100)
    model = fn(steps)
    expect(isinstance(model, GPT), f"return the trained GPT, got {type(model).__name__}")
    c = model.config
    expect(c.vocab_size == 32 and c.block_size >= 24 and c.n_layer == 2,
           f"the model should be GPTConfig(vocab_size=32, block_size=24, n_layer=2, ...), "
           f"got vocab {c.vocab_size}, block {c.block_size}, {c.n_layer} layers")
    model.eval()
    seq = repeated_tokens(64, 12, 0, 32, torch.Generator().manual_seed(123))
    with torch.no_grad():
        logits, _ = model(seq[:, :-1])
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), seq[:, 1:],
                                            reduction="none")
    first, second = nll[:, :11].mean().item(), nll[:, 12:].mean().item()
    best = induction_scores(model, seq).max().item()
    print(f"after {steps} steps: loss {first:.2f} nats on the first half "
          f"(ln 32 = {math.log(32):.2f}), {second:.2f} on the second; best induction "
          f"score {best:.2f}")
    expect(second < 1.0, f"the second half should be easy once copied (loss {second:.2f} "
           "nats): does the model train on the repeated sequences, inputs seq[:, :-1] and "
           "targets seq[:, 1:]?")
    expect(best > 0.5, f"no head attends to the induction target (best score {best:.2f})")
