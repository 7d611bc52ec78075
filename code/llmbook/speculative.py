"""Speculative decoding: a cheap draft model guesses, the target model checks.

Decoding one token at a time runs the big model once per token. Speculative decoding
(Leviathan et al. 2023; Chen et al. 2023) lets a small *draft* model propose ``k``
tokens, then runs the *target* on all of them in **one** forward pass. That pass gives
the target's distribution at each of the ``k + 1`` positions, so the proposals can be
checked in order:

- greedy (``temperature=0``): accept a proposal while it equals the target's argmax;
  at the first mismatch take the target's argmax instead. The output is exactly the
  target's own greedy output;
- sampling: accept proposal ``x`` with probability ``min(1, p(x) / q(x))`` (``p`` the
  target's distribution, ``q`` the draft's); after a rejection sample from
  ``max(0, p - q)`` renormalised. The output is distributed exactly as samples from
  the target alone.

Either way, each round yields the accepted proposals plus one token from the target
(a correction, or a bonus token if all ``k`` were accepted): between 1 and ``k + 1``
tokens per target pass. It pays when the draft is much cheaper than the target and
often right, and when a forward pass over ``k + 1`` tokens costs about as much as over
one (true on a GPU, where decoding is limited by reading the weights; less so on a CPU).

:func:`layer_draft` builds a draft from the target's own first layers (sharing their
weights, no training needed); any ``GPT`` with the same vocabulary works as a draft.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from llmbook.attention import KVCache
from llmbook.models import GPT

__all__ = ["SpeculativeStats", "layer_draft", "speculative_generate"]


@dataclass
class SpeculativeStats:
    """What one call of :func:`speculative_generate` did.

    ``proposed``/``accepted``: draft tokens proposed and accepted; ``rounds``: target
    forward passes; ``new_tokens``: tokens generated.
    """

    proposed: int = 0
    accepted: int = 0
    rounds: int = 0
    new_tokens: int = 0

    @property
    def acceptance_rate(self) -> float:
        """Accepted / proposed draft tokens (``nan`` if none was proposed)."""
        return self.accepted / self.proposed if self.proposed else math.nan

    @property
    def tokens_per_round(self) -> float:
        """New tokens per target forward pass (1 = no gain over plain decoding)."""
        return self.new_tokens / self.rounds if self.rounds else math.nan


def layer_draft(model: GPT, n_layer: int) -> GPT:
    """A draft model made of ``model``'s first ``n_layer`` blocks, its embeddings, final
    norm and LM head ("early exit"). The weights are shared, not copied: the draft
    costs no memory and no training, and is ``(B, T) -> (B, T, V)`` like ``model``."""
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook GPT, got {type(model).__name__}")
    L = model.config.n_layer
    if not isinstance(n_layer, int) or isinstance(n_layer, bool) or not 1 <= n_layer <= L:
        raise ValueError(f"n_layer must be an int in [1, {L}], got {n_layer!r}")
    return _Shell(model, n_layer)


class _Shell(GPT):
    """A ``GPT`` whose modules are borrowed from another one (see :func:`layer_draft`)."""

    def __init__(self, model: GPT, n_layer: int) -> None:
        nn.Module.__init__(self)
        from dataclasses import replace

        self.config = replace(model.config, n_layer=n_layer)
        self.wte, self.wpe, self.rope = model.wte, model.wpe, model.rope
        self.drop, self.ln_f, self.lm_head = model.drop, model.ln_f, model.lm_head
        self.blocks = nn.ModuleList(list(model.blocks[:n_layer]))
        self.train(model.training)


@torch.no_grad()
def speculative_generate(target: GPT, draft: GPT, idx: torch.Tensor, max_new_tokens: int,
                         k: int = 4, temperature: float = 0.0,
                         generator: torch.Generator | None = None
                         ) -> tuple[torch.Tensor, SpeculativeStats]:
    """Continue one prompt by ``max_new_tokens`` tokens with draft-and-verify decoding.

    Args:
        target, draft: ``GPT``s with the same vocabulary (run in eval mode).
        idx: the prompt, ``(1, T)`` int64 (one row: rows would accept different numbers
            of tokens per round), ``T + max_new_tokens <= block_size`` of both models.
        k: draft tokens proposed per round (``>= 1``).
        temperature: ``0`` = greedy, identical to ``generate(target, ...,
            temperature=0)``; ``> 0`` samples, distributed as the target's samples.
        generator: a ``torch.Generator`` for reproducible sampling.

    Returns:
        ``(out, stats)``: ``out (1, T + max_new_tokens)`` int64 and a
        :class:`SpeculativeStats`.
    """
    T = _check(target, draft, idx, max_new_tokens, k, temperature, generator)
    length = T + max_new_tokens
    seq = torch.empty(1, length, dtype=torch.long, device=idx.device)
    seq[:, :T] = idx
    n = T                                                      # tokens in seq so far
    stats = SpeculativeStats()
    t_cache, d_cache = target.new_cache(1, max_len=length), draft.new_cache(1, max_len=length)
    modes = [(m, m.training) for m in (target, draft)]
    for m, _ in modes:
        m.eval()
    try:
        while n < length:
            k_now = min(k, length - n - 1)        # the round adds at most k_now + 1 tokens
            proposal, q = [], []
            for _ in range(k_now):                                 # the draft, k_now steps
                logits = _feed(draft, d_cache, seq, n + len(proposal))[-1:]
                probs = _probs(logits, temperature)                # (1, V)
                token = _pick(probs, logits, temperature, generator)
                seq[0, n + len(proposal)] = token
                proposal.append(token)
                q.append(probs)
            logits = _feed(target, t_cache, seq, n + k_now)[-(k_now + 1):]  # (k+1, V)
            accepted, extra = _verify(proposal, q, logits, temperature, generator)
            seq[0, n + accepted] = extra
            stats.proposed += k_now
            stats.accepted += accepted
            stats.rounds += 1
            n += accepted + 1
            for cache in (t_cache, d_cache):  # forget what the rejected proposals wrote
                cache.length = min(cache.length, n - 1)
    finally:
        for m, mode in reversed(modes):
            m.train(mode)
    stats.new_tokens = max_new_tokens
    return seq, stats


def _feed(model: GPT, cache: KVCache, seq: torch.Tensor, end: int) -> torch.Tensor:
    """Run ``model`` on the tokens ``seq[0, cache.length:end]`` not yet in its cache;
    returns their logits ``(end - cache.length, V)``."""
    logits, _ = model(seq[:, cache.length:end], cache=cache)
    return logits[0].float()


def _probs(logits: torch.Tensor, temperature: float) -> torch.Tensor | None:
    return None if temperature == 0 else (logits / temperature).softmax(-1)


def _pick(probs: torch.Tensor | None, logits: torch.Tensor, temperature: float,
          generator: torch.Generator | None) -> int:
    if temperature == 0:
        return int(logits[-1].argmax())
    return int(torch.multinomial(probs[-1], 1, generator=generator))


def _verify(proposal: list[int], q: list[torch.Tensor], logits: torch.Tensor,
            temperature: float, generator: torch.Generator | None) -> tuple[int, int]:
    """Check the proposals against the target's ``logits (k + 1, V)``.

    Returns ``(accepted, extra)``: how many proposals are kept, and the token that
    follows them (the target's correction, or its bonus token after ``k`` accepts).
    """
    if temperature == 0:
        best = logits.argmax(-1).tolist()                          # (k + 1,)
        for i, token in enumerate(proposal):
            if token != best[i]:
                return i, best[i]
        return len(proposal), best[len(proposal)]
    p = (logits / temperature).softmax(-1)                         # (k + 1, V)
    for i, token in enumerate(proposal):
        ratio = p[i, token] / q[i][0, token]
        u = torch.rand((), generator=generator, device=p.device)
        if u >= ratio:                                             # rejected
            residual = (p[i] - q[i][0]).clamp(min=0)
            if residual.sum() <= 0:                                # p == q: cannot happen
                residual = p[i]                                    # after a rejection
            return i, int(torch.multinomial(residual / residual.sum(), 1,
                                            generator=generator))
    return len(proposal), int(torch.multinomial(p[len(proposal)], 1, generator=generator))


def _check(target: object, draft: object, idx: object, max_new_tokens: object, k: object,
           temperature: object, generator: object) -> int:
    for name, m in (("target", target), ("draft", draft)):
        if not isinstance(m, GPT):
            raise TypeError(f"{name} must be an llmbook GPT, got {type(m).__name__}")
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(f"target and draft need the same vocabulary, got vocab_size "
                         f"{target.config.vocab_size} and {draft.config.vocab_size}")
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError("idx must be a (1, T) int64 tensor of token ids, got "
                         f"{getattr(idx, 'shape', type(idx).__name__)}")
    if idx.shape[0] != 1 or idx.shape[1] == 0:
        raise ValueError(f"idx must hold one non-empty prompt, shape (1, T); got "
                         f"{tuple(idx.shape)} (decode rows one at a time)")
    V = target.config.vocab_size
    if bool(((idx < 0) | (idx >= V)).any()):
        raise ValueError(f"idx holds token ids outside [0, {V})")
    for name, value, low in (("max_new_tokens", max_new_tokens, 0), ("k", k, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    T = idx.shape[1]
    block = min(target.config.block_size, draft.config.block_size)
    if T + max_new_tokens > block:
        raise ValueError(f"prompt ({T}) + max_new_tokens ({max_new_tokens}) exceeds "
                         f"block_size={block}")
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return T
