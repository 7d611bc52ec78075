"""Checks for notebook 2.6 (attention at scale)."""
from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import torch

from llmbook.exercises import exercise, expect


@exercise("2.6.1")
def check_kv_bytes(fn: Callable[..., int]) -> None:
    """``fn(config, bytes_per_value)`` = 2 * n_layer * n_kv_head * head_dim * bytes."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.6.1', kv_bytes_per_token).")
    mha = SimpleNamespace(n_layer=12, n_head=12, n_kv_head=None, n_embd=768)
    gqa = SimpleNamespace(n_layer=30, n_head=9, n_kv_head=3, n_embd=576)
    right_mha, right_gqa = 2 * 12 * 12 * 64 * 2, 2 * 30 * 3 * 64 * 2
    got = fn(mha, 2)
    expect(isinstance(got, int) and not isinstance(got, bool),
           f"Return an int number of bytes, got {type(got).__name__}.")
    expect(got != right_mha // 2, "Half the right value: the cache holds a key *and* a value "
           "per head, layer and token.")
    expect(got != right_mha // 12, "Every layer has its own cache: multiply by n_layer.")
    expect(got == right_mha, f"GPT-2 small (12 layers, 12 heads of 64, fp16) needs "
           f"{right_mha:,} bytes per token; you have {got:,}.")
    got = fn(gqa, 2)
    expect(got != 2 * 30 * 9 * 64 * 2, "With grouped-query attention only n_kv_head heads "
           "store keys and values, not n_head.")
    expect(got == right_gqa, f"SmolLM2-135M (30 layers, 3 kv heads of 64) needs "
           f"{right_gqa:,} bytes per token; you have {got:,}. head_dim = n_embd // n_head.")
    expect(fn(mha, 4) == 2 * right_mha, "Use bytes_per_value (4 for fp32).")


@exercise("2.6.2")
def check_merge(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Merging two online-softmax summaries (m, l) of two blocks of the same rows."""
    expect(callable(fn), "Pass your function itself, e.g. check('2.6.2', merge).")
    g = torch.Generator().manual_seed(0)
    s1 = torch.randn(5, 7, generator=g, dtype=torch.float64) * 4
    s2 = torch.randn(5, 3, generator=g, dtype=torch.float64) * 4 + 2
    summary = lambda s: (s.amax(-1), torch.exp(s - s.amax(-1, keepdim=True)).sum(-1))
    (m1, l1), (m2, l2) = summary(s1), summary(s2)
    out = fn(m1, l1, m2, l2)
    expect(isinstance(out, tuple) and len(out) == 2, "Return a pair (m, l).")
    m, l = out
    m_ref, l_ref = summary(torch.cat([s1, s2], dim=-1))
    expect(torch.allclose(m.double(), m_ref), "The merged maximum is the larger of m1 and m2.")
    expect(not torch.allclose(l.double(), l1 + l2), "l1 and l2 are sums of exp(s - m1) and "
           "exp(s - m2): different bases. Rescale each to the new maximum first.")
    expect(torch.allclose(l.double(), l_ref), "l must equal the sum of exp(s - m) over both "
           "blocks: rescale l1 by exp(m1 - m) and l2 by exp(m2 - m).")
