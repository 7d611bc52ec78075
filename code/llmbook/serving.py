"""Serving many requests with one model: static batching against continuous batching.

A **request** is a prompt (token ids), how many tokens to generate and when it arrives.
Both schedulers decode greedily with the KV cache and give every request exactly the
tokens it would get alone (``generate(model, prompt[None], n, temperature=0)``):
rows of a batch are padded on the **left**, padding is masked, and positions count from
each row's first real token (see :func:`llmbook.generate.generate`).

* :func:`static_batching` takes up to ``max_batch`` waiting requests, reads their
  prompts in one pass (prefill) and decodes until the longest is done. Rows that finish
  early keep being computed (wasted rows), and a request that arrives meanwhile waits
  for the whole batch.
* :func:`continuous_batching` (Yu et al. 2022, "Orca") decides at every step: finished
  rows leave the batch at once, and waiting requests join it after a prefill of their
  own prompt, their keys and values copied into the running batch's cache (left-padded
  to its length; columns that are padding in every row are dropped again).

Time is kept on a clock that advances by the measured duration of every model call
(``clock``, default ``time.perf_counter``) and jumps over idle gaps to the next
arrival, so an experiment never sleeps. A request's **time to first token** is the
time from its arrival to the end of its prefill; its **latency** from its arrival to
its last token.

:func:`kv_cache_bytes` is the memory the cache of a batch needs.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from llmbook.attention import KVCache
from llmbook.models import GPT, GPTConfig

__all__ = ["Completion", "Request", "ServeResult", "continuous_batching", "kv_cache_bytes",
           "static_batching"]


@dataclass(frozen=True)
class Request:
    """One request: ``prompt`` token ids, ``max_new_tokens`` to generate, ``arrival`` (s)."""

    id: int
    prompt: tuple[int, ...]
    max_new_tokens: int
    arrival: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, (tuple, list)) or not self.prompt or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in self.prompt):
            raise ValueError(f"Request {self.id}: prompt must be a non-empty sequence of "
                             f"token ids >= 0, got {self.prompt!r}")
        object.__setattr__(self, "prompt", tuple(self.prompt))
        if (not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool)
                or self.max_new_tokens < 1):
            raise ValueError(f"Request {self.id}: max_new_tokens must be an int >= 1, got "
                             f"{self.max_new_tokens!r}")
        if not isinstance(self.arrival, (int, float)) or not self.arrival >= 0:
            raise ValueError(f"Request {self.id}: arrival must be a number >= 0 (seconds), "
                             f"got {self.arrival!r}")


@dataclass
class Completion:
    """What a request got: its new ``tokens`` and when (on the scheduler's clock)."""

    id: int
    tokens: list[int]
    arrival: float
    first_token: float
    finish: float

    @property
    def ttft(self) -> float:
        """Time to first token: arrival to the end of the prefill."""
        return self.first_token - self.arrival

    @property
    def latency(self) -> float:
        """Arrival to the last token."""
        return self.finish - self.arrival


@dataclass
class ServeResult:
    """The completions (in request-id order) and the work done.

    ``steps``: decode passes; ``prefills``: prefill passes; ``rows``: batch rows
    computed over all decode passes; ``wasted_rows``: those of rows already finished;
    ``max_batch_seen``: the largest decode batch.
    """

    completions: list[Completion]
    total_time: float
    steps: int = 0
    prefills: int = 0
    rows: int = 0
    wasted_rows: int = 0
    max_batch_seen: int = 0
    busy_time: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def mean_latency(self) -> float:
        return statistics.fmean(c.latency for c in self.completions)

    @property
    def mean_ttft(self) -> float:
        return statistics.fmean(c.ttft for c in self.completions)

    @property
    def tokens(self) -> int:
        return sum(len(c.tokens) for c in self.completions)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens over the whole time (idle gaps included)."""
        return self.tokens / self.total_time if self.total_time > 0 else float("inf")


def kv_cache_bytes(config: GPTConfig, batch_size: int, seq_len: int,
                   bytes_per_value: int = 4) -> int:
    """Bytes of a KV cache for ``batch_size`` rows of ``seq_len`` positions:
    ``2 (keys, values) * n_layer * batch_size * n_kv_head * seq_len * head_dim`` values."""
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len),
                        ("bytes_per_value", bytes_per_value)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return (2 * config.n_layer * batch_size * config.kv_heads * seq_len * config.head_dim
            * bytes_per_value)


# ------------------------------------------------------------------ the running batch
class _Batch:
    """Rows being decoded: their cache buffers ``(B, H, capacity, D)`` per layer, the
    filled ``length``, the mask ``(B, length)`` (True = real token) and the rows."""

    def __init__(self, model: GPT) -> None:
        self.model = model
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.length = 0
        self.capacity = 0
        self.mask: torch.Tensor | None = None
        self.rows: list[_Row] = []

    def cache(self) -> KVCache:
        c = self.model.config
        cache = KVCache(c.n_layer, len(self.rows), c.kv_heads, self.capacity, c.head_dim)
        cache.k, cache.v, cache.length = self.k, self.v, self.length
        return cache

    def merge(self, parts: list[tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]],
              rows: list[_Row]) -> None:
        """Put ``parts`` (keys, values ``(n, H, >= l, D)`` per layer and mask ``(n, l)``)
        and the current rows into one cache, each right-aligned to the longest."""
        if self.rows:
            parts = [(self.k, self.v, self.mask), *parts]
            rows = self.rows + rows
        length = max(m.shape[1] for _, _, m in parts)
        need = max(r.remaining_feeds for r in rows)
        block = self.model.config.block_size
        if length + need > block:
            raise ValueError(f"the batch's cache would need {length + need} positions "
                             f"(padded length {length} + {need} to decode), more than "
                             f"block_size={block}; lower max_batch or the token budgets")
        capacity = length + need
        ref = parts[0][0][0]
        B, (_, H, _, D) = len(rows), ref.shape
        ks = [ref.new_zeros(B, H, capacity, D) for _ in self.model.blocks]
        vs = [ref.new_zeros(B, H, capacity, D) for _ in self.model.blocks]
        mask = torch.zeros(B, length, dtype=torch.bool, device=ref.device)
        start = 0
        for k_part, v_part, m in parts:
            n, l = m.shape
            for i in range(len(ks)):
                ks[i][start:start + n, :, length - l:length] = k_part[i][:, :, :l]
                vs[i][start:start + n, :, length - l:length] = v_part[i][:, :, :l]
            mask[start:start + n, length - l:] = m
            start += n
        self.k, self.v, self.mask, self.rows = ks, vs, mask, rows
        self.length, self.capacity = length, capacity

    def keep(self, index: list[int]) -> None:
        """Keep only the rows ``index``; drop the columns that are padding in all of them."""
        self.rows = [self.rows[i] for i in index]
        if not self.rows:
            self.k, self.v, self.mask, self.length, self.capacity = [], [], None, 0, 0
            return
        idx = torch.tensor(index, device=self.mask.device)
        self.mask = self.mask.index_select(0, idx)
        lead = int(self.mask.any(0).long().argmax())            # first column someone uses
        self.k = [t.index_select(0, idx)[:, :, lead:] for t in self.k]
        self.v = [t.index_select(0, idx)[:, :, lead:] for t in self.v]
        self.mask = self.mask[:, lead:]
        self.length -= lead
        self.capacity -= lead

    def step(self) -> torch.Tensor:
        """One decode pass: feed every row's last token; returns the next tokens ``(B,)``."""
        last = torch.tensor([[r.tokens[-1]] for r in self.rows], device=self.mask.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=1)
        cache = self.cache()
        logits, _ = self.model(last, cache=cache, attention_mask=self.mask)
        self.length = cache.length
        return logits[:, -1].argmax(-1)


@dataclass
class _Row:
    request: Request
    tokens: list[int]
    first_token: float
    done: bool = False

    @property
    def remaining_feeds(self) -> int:
        """Decode passes this row still needs (its last token is not yet fed)."""
        return 0 if self.done else self.request.max_new_tokens - len(self.tokens)


def _check(model: GPT, requests: Sequence[Request], max_batch: int,
           eos_id: int | None) -> list[Request]:
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook GPT, got {type(model).__name__}")
    if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
        raise ValueError(f"max_batch must be an int >= 1, got {max_batch!r}")
    if not isinstance(requests, Sequence) or not requests or not all(
            isinstance(r, Request) for r in requests):
        raise ValueError("requests must be a non-empty sequence of Request")
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError(f"request ids must be unique, got {ids}")
    V = model.config.vocab_size
    for r in requests:
        if max(r.prompt) >= V:
            raise ValueError(f"Request {r.id}: prompt holds token ids >= vocab_size={V}")
        if len(r.prompt) + r.max_new_tokens > model.config.block_size:
            raise ValueError(f"Request {r.id}: prompt ({len(r.prompt)}) + max_new_tokens "
                             f"({r.max_new_tokens}) exceeds block_size="
                             f"{model.config.block_size}")
    if eos_id is not None and not (isinstance(eos_id, int) and 0 <= eos_id < V):
        raise ValueError(f"eos_id must be None or an int in [0, {V}), got {eos_id!r}")
    return sorted(requests, key=lambda r: (r.arrival, r.id))


def _finished(row: _Row, eos_id: int | None) -> bool:
    return (len(row.tokens) >= row.request.max_new_tokens
            or (eos_id is not None and row.tokens[-1] == eos_id))


def _prefill(model: GPT, prompts: list[tuple[int, ...]], capacity: int, device: torch.device
             ) -> tuple[KVCache, torch.Tensor, torch.Tensor]:
    """Prompts left-padded into one pass: the cache, the mask ``(B, T)``, next tokens."""
    T = max(len(p) for p in prompts)
    idx = torch.zeros(len(prompts), T, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    for i, p in enumerate(prompts):
        idx[i, T - len(p):] = torch.tensor(p)
        mask[i, T - len(p):] = True
    idx, mask = idx.to(device), mask.to(device)
    cache = model.new_cache(len(prompts), max_len=max(capacity, T))
    logits, _ = model(idx, cache=cache, attention_mask=None if bool(mask.all()) else mask,
                      logits_to_keep=1)
    return cache, mask, logits[:, -1].argmax(-1)


def _completions(rows: list[_Row], finish: dict[int, float]) -> list[Completion]:
    return [Completion(r.request.id, r.tokens, r.request.arrival, r.first_token,
                       finish[r.request.id]) for r in sorted(rows, key=lambda r: r.request.id)]


@torch.no_grad()
def continuous_batching(model: GPT, requests: Sequence[Request], max_batch: int = 8,
                        eos_id: int | None = None,
                        clock: Callable[[], float] = time.perf_counter) -> ServeResult:
    """Serve ``requests`` with continuous (iteration-level) batching, greedily.

    At every step: requests that have arrived join while fewer than ``max_batch`` rows
    run (each read alone, its first token taken from that pass); then one decode pass
    runs over all rows; rows that reached their ``max_new_tokens`` (or ``eos_id``)
    leave. Returns a :class:`ServeResult`; every request's tokens equal its greedy
    decoding alone.
    """
    pending = _check(model, requests, max_batch, eos_id)
    device = model.wte.weight.device
    was_training = model.training
    model.eval()
    batch = _Batch(model)
    now, busy, done_rows, finish = 0.0, 0.0, [], {}
    result = ServeResult([], 0.0)
    try:
        while pending or batch.rows:
            if not batch.rows and pending[0].arrival > now:
                now = pending[0].arrival                               # idle: jump ahead
            joined = []
            while (pending and pending[0].arrival <= now
                   and len(batch.rows) + len(joined) < max_batch):
                r = pending.pop(0)
                t0 = clock()
                cache, mask, nxt = _prefill(model, [r.prompt], len(r.prompt), device)
                token = int(nxt[0])
                spent = clock() - t0
                now, busy = now + spent, busy + spent
                result.prefills += 1
                row = _Row(r, [token], now)
                if _finished(row, eos_id):
                    row.done = True
                    finish[r.id] = now
                    done_rows.append(row)
                else:
                    joined.append((cache.k, cache.v, mask, row))
            if joined:
                batch.merge([(k, v, m) for k, v, m, _ in joined], [j[3] for j in joined])
            if not batch.rows:
                continue
            t0 = clock()
            nxt = batch.step().tolist()
            spent = clock() - t0
            now, busy = now + spent, busy + spent
            result.steps += 1
            result.rows += len(batch.rows)
            result.max_batch_seen = max(result.max_batch_seen, len(batch.rows))
            keep = []
            for i, (row, token) in enumerate(zip(batch.rows, nxt)):
                row.tokens.append(int(token))
                if _finished(row, eos_id):
                    row.done = True
                    finish[row.request.id] = now
                    done_rows.append(row)
                else:
                    keep.append(i)
            if len(keep) < len(batch.rows):
                batch.keep(keep)
    finally:
        model.train(was_training)
    result.completions = _completions(done_rows, finish)
    result.total_time, result.busy_time = now, busy
    return result


@torch.no_grad()
def static_batching(model: GPT, requests: Sequence[Request], max_batch: int = 8,
                    eos_id: int | None = None,
                    clock: Callable[[], float] = time.perf_counter) -> ServeResult:
    """Serve ``requests`` in static batches, greedily.

    When the model is free, up to ``max_batch`` requests that have arrived form a batch
    (in arrival order; if none has, the clock jumps to the next arrival). Their prompts
    are read in one left-padded pass, then the batch decodes until its longest request
    is done: finished rows keep being computed (``wasted_rows``) and newcomers wait. A
    request counts as finished at its own last token. Returns a :class:`ServeResult`.
    """
    pending = _check(model, requests, max_batch, eos_id)
    device = model.wte.weight.device
    was_training = model.training
    model.eval()
    now, busy, all_rows, finish = 0.0, 0.0, [], {}
    result = ServeResult([], 0.0)
    try:
        while pending:
            now = max(now, pending[0].arrival)
            group = []
            while pending and pending[0].arrival <= now and len(group) < max_batch:
                group.append(pending.pop(0))
            capacity = max(len(r.prompt) for r in group) + max(
                r.max_new_tokens for r in group) - 1
            t0 = clock()
            cache, mask, nxt = _prefill(model, [r.prompt for r in group], capacity, device)
            nxt = nxt.tolist()
            spent = clock() - t0
            now, busy = now + spent, busy + spent
            result.prefills += 1
            rows = [_Row(r, [int(t)], now) for r, t in zip(group, nxt)]
            for row in rows:
                if _finished(row, eos_id):
                    row.done, finish[row.request.id] = True, now
            while not all(row.done for row in rows):
                t0 = clock()
                last = torch.tensor([[row.tokens[-1]] for row in rows], device=device)
                mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
                logits, _ = model(last, cache=cache, attention_mask=mask)
                nxt = logits[:, -1].argmax(-1).tolist()
                spent = clock() - t0
                now, busy = now + spent, busy + spent
                result.steps += 1
                result.rows += len(rows)
                result.max_batch_seen = max(result.max_batch_seen, len(rows))
                for row, token in zip(rows, nxt):
                    if row.done:
                        result.wasted_rows += 1
                        continue
                    row.tokens.append(int(token))
                    if _finished(row, eos_id):
                        row.done, finish[row.request.id] = True, now
            all_rows += rows
    finally:
        model.train(was_training)
    result.completions = _completions(all_rows, finish)
    result.total_time, result.busy_time = now, busy
    return result
