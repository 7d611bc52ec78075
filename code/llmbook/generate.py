"""Decoding: turn next-token distributions into text, one token at a time.

``generate`` samples (or, at ``temperature=0``, picks greedily) from a ``GPT``, with
optional top-k, top-p (nucleus) and min-p filtering and a repetition penalty, with or
without the KV cache, for ``max_new_tokens`` or until a ``stop`` function says so.
``beam_search`` keeps the ``num_beams`` most probable continuations instead of one.

Each step runs the model on the tokens so far and uses only the last position's
logits ``(B, vocab_size)``. Without a cache that means re-reading the whole sequence
every step; with a cache (``GPT.new_cache``) the prompt is read once ("prefill") and
then only the one new token is fed in, attending to the cached keys and values.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from llmbook.models import GPT, _check_attention_mask

__all__ = ["beam_search", "generate", "min_p_filter", "repetition_penalty", "sample_next",
           "top_k_filter", "top_p_filter"]


# ------------------------------------------------------------------- filtering
def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row, set the rest to ``-inf``.

    ``logits (..., V) -> (..., V)``. Ties at the k-th value are all kept.
    """
    _check_top_k(k)
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]                  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of tokens whose probability sums to ``>= p``.

    ``logits (..., V) -> (..., V)`` with the dropped tokens at ``-inf``. Tokens are taken
    from the most probable down; the most probable token is always kept.
    """
    _check_top_p(p)
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs        # probability of the tokens ranked above
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Min-p filtering: keep the tokens whose probability is at least ``min_p`` times
    that of the most probable token, set the rest to ``-inf``.

    ``logits (..., V) -> (..., V)``. Unlike top-p, the cut moves with the model's
    confidence: a peaked distribution keeps few tokens, a flat one many. The most
    probable token is always kept (Nguyen et al. 2024; ``transformers``' ``min_p``).
    """
    _check_min_p(min_p)
    probs = logits.float().softmax(dim=-1)
    keep = probs >= min_p * probs.amax(dim=-1, keepdim=True)
    return logits.masked_fill(~keep, float("-inf"))


def repetition_penalty(logits: torch.Tensor, context: torch.Tensor,
                       penalty: float) -> torch.Tensor:
    """Discourage tokens already present in ``context``: CTRL's repetition penalty.

    ``logits (B, V)``, ``context (B, T)`` int64 (prompt and generated tokens) ->
    ``(B, V)``. The logit of every token that occurs in its row's context is divided by
    ``penalty`` if positive and multiplied by it if negative, so ``penalty > 1`` always
    lowers it (Keskar et al. 2019, as ``transformers``' ``repetition_penalty`` does). It
    does not matter how often a token occurred; ``penalty = 1`` changes nothing.
    """
    _check_penalty(penalty)
    if context.dim() != 2 or context.size(0) != logits.size(0) or context.is_floating_point():
        raise ValueError(f"context must be (B, T) integer ids with B={logits.size(0)}, got "
                         f"{tuple(context.shape)} {context.dtype}")
    seen = logits.gather(-1, context)                                      # (B, T)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, context, seen)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None,
                generator: torch.Generator | None = None,
                min_p: float | None = None) -> torch.Tensor:
    """One next token per row from ``logits (B, V)``: returns ``(B, 1)`` int64.

    ``temperature=0`` is greedy (argmax); otherwise the logits are divided by the
    temperature, filtered by ``top_k``, then ``top_p``, then ``min_p``, and sampled.
    """
    _check_temperature(temperature)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if min_p is not None:
        logits = min_p_filter(logits, min_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)


# ------------------------------------------------------------------- generation
@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None,
             attention_mask: torch.Tensor | None = None, min_p: float | None = None,
             repetition_penalty: float = 1.0,
             stop: Callable[[torch.Tensor], bool] | None = None) -> torch.Tensor:
    """Continue each prompt row by ``max_new_tokens`` tokens, or until ``stop`` says so.

    Args:
        model: a ``GPT`` (run in eval mode here; its mode is restored afterwards).
        idx: prompts ``(B, T)`` int64, ``1 <= T <= block_size``.
        temperature: ``0`` = greedy; ``< 1`` sharper, ``> 1`` flatter distributions.
        top_k, top_p: optional filters (see :func:`top_k_filter`, :func:`top_p_filter`).
        use_cache: decode with the KV cache (needs ``T + max_new_tokens <= block_size``);
            without it, a context longer than ``block_size`` is cropped to its last
            ``block_size`` tokens.
        generator: a ``torch.Generator`` on the model's device, for reproducible sampling.
        attention_mask: ``(B, T)`` bool or 0/1, 1 = real token, for a batch of prompts
            of different lengths **padded on the left** (the last column must be all 1).
            Padding is never attended to and positions count from each row's first real
            token, so every row continues exactly as it would alone (greedy decoding
            gives the same tokens as one prompt at a time). New tokens are real.
        min_p: optional min-p filter (see :func:`min_p_filter`), applied after top-p.
        repetition_penalty: ``> 1`` lowers the logits of tokens already in the row
            (prompt included) before any other step, greedy too (see
            :func:`llmbook.generate.repetition_penalty`); ``1`` = off.
        stop: optional ``stop(new) -> bool``, called after every step with the tokens
            written so far, ``new (B, n)`` int64 with ``1 <= n <= max_new_tokens``; when
            it returns ``True`` decoding ends there (for stop sequences: return whether
            every row holds one). It must return a ``bool``.

    Returns:
        ``(B, T + n)`` int64: the prompts (padding included) followed by the ``n`` new
        tokens, ``n = max_new_tokens`` unless ``stop`` ended decoding earlier.
    """
    _check_model(model)
    B, T = _check_prompt(model, idx)
    _check_sampling(max_new_tokens, temperature, top_k, top_p, generator, idx.device)
    if min_p is not None:
        _check_min_p(min_p)
    _check_penalty(repetition_penalty)
    if stop is not None and not callable(stop):
        raise TypeError(f"stop must be a function new_tokens -> bool or None, got "
                        f"{type(stop).__name__}")
    block = model.config.block_size
    if use_cache and T + max_new_tokens > block:
        raise ValueError(f"prompt ({T}) + max_new_tokens ({max_new_tokens}) exceeds "
                         f"block_size={block}: the KV cache cannot hold it; "
                         "use_cache=False crops the context instead")
    keep = _check_left_padding(attention_mask, B, T)
    if keep is not None and not keep.is_cuda and bool(keep.all()):
        keep = None                       # no padding at all: the same tokens, no mask work
    out = torch.empty(B, T + max_new_tokens, dtype=torch.long, device=idx.device)
    out[:, :T] = idx
    if keep is not None:                              # (B, T + new): new tokens are real
        keep = torch.cat([keep, keep.new_ones(B, max_new_tokens)], dim=1)
    was_training = model.training
    model.eval()
    end = T + max_new_tokens
    try:
        if use_cache:
            cache = model.new_cache(B, max_len=T + max_new_tokens)
            logits, _ = model(idx, cache=cache, attention_mask=_upto(keep, 0, T),  # prefill
                              logits_to_keep=1)                 # the last position only
        for t in range(T, T + max_new_tokens):
            if not use_cache:
                lo = max(0, t - block)                                  # the whole context
                logits, _ = model(out[:, lo:t], attention_mask=_upto(keep, lo, t),
                                  logits_to_keep=1)
            last = logits[:, -1]
            if repetition_penalty != 1.0:
                last = _penalise(last, out[:, :t], repetition_penalty)
            out[:, t:t + 1] = sample_next(last, temperature, top_k, top_p, generator, min_p)
            if stop is not None and _stopped(stop, out[:, T:t + 1]):
                end = t + 1
                break
            if use_cache and t + 1 < T + max_new_tokens:
                logits, _ = model(out[:, t:t + 1], cache=cache,         # one new token
                                  attention_mask=_upto(keep, 0, t + 1))
    finally:
        model.train(was_training)
    return out[:, :end]


def _stopped(stop: Callable[[torch.Tensor], bool], new: torch.Tensor) -> bool:
    answer = stop(new)
    if isinstance(answer, torch.Tensor) and answer.dtype == torch.bool and answer.numel() == 1:
        answer = bool(answer)
    if not isinstance(answer, bool):
        raise TypeError(f"stop must return a bool (True = end decoding), got "
                        f"{type(answer).__name__}: {answer!r:.60}")
    return answer


# ------------------------------------------------------------------- beam search
@torch.no_grad()
def beam_search(model: GPT, idx: torch.Tensor, max_new_tokens: int, num_beams: int = 4,
                length_penalty: float = 1.0, eos_token_id: int | None = None) -> torch.Tensor:
    """The most probable continuation found by keeping ``num_beams`` candidates per row.

    Each step extends every beam by every token, scores the candidates by their summed
    log-probability and keeps the ``num_beams`` best. A candidate ending in
    ``eos_token_id`` is set aside as finished, scored ``sum_logprob / n_new **
    length_penalty`` (``n_new`` = tokens generated, eos included); search stops for a row
    when ``num_beams`` finished hypotheses beat every running one. With one beam and no
    eos this is greedy decoding.

    Args:
        idx: prompts ``(B, T)`` int64 with ``T + max_new_tokens <= block_size``.

    Returns:
        ``(B, T + max_new_tokens)`` int64; a hypothesis that ended early is padded with
        ``eos_token_id``.
    """
    _check_model(model)
    B, T = _check_prompt(model, idx)
    _check_count("max_new_tokens", max_new_tokens, minimum=0)
    _check_count("num_beams", num_beams, minimum=1)
    V = model.config.vocab_size
    if eos_token_id is not None and not (isinstance(eos_token_id, int) and 0 <= eos_token_id < V):
        raise ValueError(f"eos_token_id must be an int in [0, {V}), got {eos_token_id!r}")
    if not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be finite, got {length_penalty}")
    if T + max_new_tokens > model.config.block_size:
        raise ValueError(f"prompt ({T}) + max_new_tokens ({max_new_tokens}) exceeds "
                         f"block_size={model.config.block_size}")
    if max_new_tokens == 0:
        return idx.clone()

    K, device = num_beams, idx.device
    was_training = model.training
    model.eval()
    try:
        cache = model.new_cache(B, max_len=T + max_new_tokens)
        logits, _ = model(idx, cache=cache)                             # prefill once
        rows = torch.arange(B, device=device).repeat_interleave(K)     # (B*K,)
        cache.reorder(rows)
        logits = logits[rows, -1]                                       # (B*K, V)
        beams = idx[rows].view(B, K, T)                                 # (B, K, t)
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0                        # all beams start equal: expand one only
        finished: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(B)]
        done = [False] * B
        for step in range(1, max_new_tokens + 1):
            logp = F.log_softmax(logits.float(), dim=-1).view(B, K, V)
            candidates = (scores.unsqueeze(-1) + logp).view(B, K * V)
            top_scores, top_ids = candidates.topk(min(2 * K, K * V), dim=-1)   # (B, 2K)
            next_beam = torch.zeros(B, K, dtype=torch.long, device=device)
            next_token = torch.full((B, K), eos_token_id or 0, dtype=torch.long, device=device)
            next_score = torch.full((B, K), float("-inf"), device=device)
            for b in range(B):
                if done[b]:
                    continue
                kept = _select_beams(top_scores[b].tolist(), top_ids[b].tolist(), V, K,
                                     eos_token_id, beams[b], step ** length_penalty, finished[b])
                for n, (beam, token, score) in enumerate(kept):
                    next_beam[b, n], next_token[b, n], next_score[b, n] = beam, token, score
                finished[b] = sorted(finished[b], key=lambda h: -h[0])[:K]
                best_running = next_score[b, 0].item() / step ** length_penalty
                done[b] = len(finished[b]) == K and finished[b][-1][0] >= best_running
            flat_index = (torch.arange(B, device=device).unsqueeze(1) * K + next_beam).view(-1)
            beams = torch.cat([beams.view(B * K, -1)[flat_index].view(B, K, -1),
                               next_token.unsqueeze(-1)], dim=-1)
            scores = next_score
            if all(done) or step == max_new_tokens:
                break
            cache.reorder(flat_index)
            logits, _ = model(next_token.view(B * K, 1), cache=cache)
            logits = logits[:, -1]
    finally:
        model.train(was_training)
    return _best_hypotheses(beams, scores, finished, done, length_penalty, T,
                            T + max_new_tokens, eos_token_id)


def _select_beams(scores: list[float], ids: list[int], V: int, K: int, eos: int | None,
                  beams: torch.Tensor, norm: float,
                  finished: list[tuple[float, torch.Tensor]]) -> list[tuple[int, int, float]]:
    """One row's step: walk the best candidates (flat ids ``beam * V + token``) in order.

    A candidate ending in ``eos`` among the top ``K`` joins ``finished`` (its score divided
    by ``norm``); the others fill the next ``K`` beams. Returns ``(beam, token, score)``s.
    """
    kept: list[tuple[int, int, float]] = []
    for rank, (score, flat) in enumerate(zip(scores, ids)):
        beam, token = divmod(flat, V)
        if token == eos:
            if rank < K and score > float("-inf"):
                finished.append((score / norm, torch.cat([beams[beam], beams.new_tensor([token])])))
            continue
        kept.append((beam, token, score))
        if len(kept) == K:
            break
    return kept


def _best_hypotheses(beams: torch.Tensor, scores: torch.Tensor,
                     finished: list[list[tuple[float, torch.Tensor]]], done: list[bool],
                     length_penalty: float, prompt_len: int, length: int,
                     pad: int | None) -> torch.Tensor:
    """Each row's best of its finished and still-running hypotheses, padded to ``length``.

    ``beams (B, K, t)`` are the running hypotheses (prompt included), ``scores (B, K)``
    their summed log-probabilities; returns ``(B, length)`` int64.
    """
    B, K, t = beams.shape
    n_new = t - prompt_len
    out = torch.full((B, length), pad if pad is not None else 0, dtype=torch.long,
                     device=beams.device)
    for b in range(B):
        hyps = list(finished[b])
        if not done[b]:
            hyps += [(scores[b, k].item() / n_new ** length_penalty, beams[b, k])
                     for k in range(K) if scores[b, k] > float("-inf")]
        best = max(hyps, key=lambda h: h[0])[1]
        out[b, :best.numel()] = best
    return out


# ------------------------------------------------------------------- input checks
def _upto(keep: torch.Tensor | None, lo: int, hi: int) -> torch.Tensor | None:
    return None if keep is None else keep[:, lo:hi]


def _check_left_padding(attention_mask: object, B: int, T: int) -> torch.Tensor | None:
    """The prompt mask as bool ``(B, T)``; every row must end in a real token."""
    if attention_mask is None:
        return None
    keep = _check_attention_mask(attention_mask, B, T)
    if not bool(keep[:, -1].all()):
        rows = torch.nonzero(~keep[:, -1]).flatten().tolist()
        raise ValueError(f"attention_mask: rows {rows[:5]} end in padding; generate needs "
                         "prompts padded on the left (attention_mask[:, -1] all 1)")
    return keep


def _check_temperature(temperature: object) -> None:
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")


_penalise = repetition_penalty       # generate's argument of the same name shadows it


def _check_min_p(p: object) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"min_p must be a float in [0, 1], got {p!r}")


def _check_penalty(penalty: object) -> None:
    if (not isinstance(penalty, (int, float)) or isinstance(penalty, bool)
            or not math.isfinite(penalty) or penalty <= 0):
        raise ValueError(f"repetition_penalty must be a finite number > 0, got {penalty!r}")


def _check_model(model: object) -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"expected an llmbook GPT, got {type(model).__name__}")


def _check_prompt(model: GPT, idx: torch.Tensor) -> tuple[int, int]:
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"idx must be a tensor of token ids, got {type(idx).__name__}")
    if idx.dim() != 2:
        hint = " (add a batch dimension: idx[None])" if idx.dim() == 1 else ""
        raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}{hint}")
    if idx.dtype != torch.long:
        raise TypeError(f"idx must be int64 (torch.long) token ids, got {idx.dtype}")
    B, T = idx.shape
    if B == 0 or T == 0:
        raise ValueError(f"idx must hold at least one token per row, got {tuple(idx.shape)}")
    if T > model.config.block_size:
        raise ValueError(f"prompt length {T} exceeds block_size={model.config.block_size}")
    V = model.config.vocab_size
    if bool(((idx < 0) | (idx >= V)).any()):
        raise ValueError(f"idx holds token ids outside [0, {V})")
    weight = model.wte.weight
    if idx.device != weight.device:
        raise ValueError(f"idx is on {idx.device} but the model is on {weight.device}")
    return B, T


def _check_count(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_top_k(k: object) -> None:
    _check_count("top_k", k, minimum=1)


def _check_top_p(p: object) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be a float in (0, 1], got {p!r}")


def _check_sampling(max_new_tokens: object, temperature: object, top_k: object, top_p: object,
                    generator: object, device: torch.device) -> None:
    _check_count("max_new_tokens", max_new_tokens, minimum=0)
    _check_temperature(temperature)
    if top_k is not None:
        _check_top_k(top_k)
    if top_p is not None:
        _check_top_p(top_p)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != device.type:
            raise ValueError(f"generator is on {generator.device} but idx is on {device}")
