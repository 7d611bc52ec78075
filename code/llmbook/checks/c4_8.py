"""Checks for the exercises of notebook 4.8 (batch memory, time per output token,
break-even utilisation)."""
from __future__ import annotations

import math

from llmbook.costmodel import self_host_price_per_million
from llmbook.exercises import exercise, expect
from llmbook.models import GPTConfig
from llmbook.serving import Completion, kv_cache_bytes


def _brute_batch(config: GPTConfig, seq_len: int, memory: int, weights: int, bpv: int) -> int:
    b = 0
    while weights + kv_cache_bytes(config, b + 1, seq_len, bpv) <= memory:
        b += 1
    return b


@exercise("4.8.1")
def _max_batch(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.8.1', max_batch_size)")
    gqa = GPTConfig(vocab_size=100, block_size=64, n_layer=3, n_head=8, n_kv_head=2,
                    n_embd=64)
    mha = GPTConfig(vocab_size=100, block_size=64, n_layer=2, n_head=4, n_embd=32)
    per = kv_cache_bytes(mha, 1, 10, 2)
    got = fn(mha, 10, 1000 + 3 * per, 1000)
    expect(isinstance(got, int) and not isinstance(got, bool),
           f"return a whole number of requests (an int), got {got!r}")
    expect(got == 3, f"weights 1000 bytes and room for exactly three caches of {per} bytes:"
                     f" 3, got {got}")
    expect(fn(mha, 10, 1000 + 3 * per - 1, 1000) == 2,
           "one byte short of three caches: only 2 fit (round down)")
    expect(fn(mha, 10, 500, 1000) == 0, "weights larger than the memory: 0 requests fit, "
                                        "never a negative number")
    want = _brute_batch(gqa, 16, 10**6, 2 * 10**5, 2)
    got = fn(gqa, 16, 10**6, 2 * 10**5)
    if got == max(0, (10**6 - 2 * 10**5) // (2 * 3 * 8 * 8 * 16 * 2)):
        expect(False, "with grouped-query attention the cache holds config.kv_heads "
                      "key/value heads (2 here), not n_head (8)")
    expect(got == want, f"3 layers, 2 key/value heads of dimension 8, 16 positions, bf16, "
                        f"800,000 bytes free: {want} requests, got {got} (keys AND values)")
    expect(fn(gqa, 16, 10**6, 2 * 10**5, bytes_per_value=4) == _brute_batch(
        gqa, 16, 10**6, 2 * 10**5, 4), "with bytes_per_value=4 (float32) half as many fit")


def _c(i: int, n: int, first: float, finish: float) -> Completion:
    return Completion(i, list(range(n)), 0.0, first, finish)


@exercise("4.8.2")
def _tpot(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.8.2', mean_tpot)")
    got = fn([_c(0, 5, 1.0, 3.0)])
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number of seconds, got {got!r}")
    expect(math.isclose(got, 0.5), f"5 tokens, first at 1.0 s, last at 3.0 s: 2 s over 4 "
                                   f"later tokens = 0.5, got {got}")
    got = fn([_c(0, 5, 1.0, 3.0), _c(1, 2, 0.0, 2.0)])
    expect(math.isclose(got, 4 / 5), "totals, not a mean of ratios: (2 + 2) s over (4 + 1) "
                                     f"tokens = 0.8, got {got} (the mean of 0.5 and 2.0 "
                                     "would be 1.25)")
    got = fn([_c(0, 1, 1.0, 1.0), _c(1, 3, 0.0, 1.0)])
    expect(math.isclose(got, 0.5), f"a one-token completion has no later token: leave it "
                                   f"out (0.5), got {got}")
    expect(fn([_c(0, 1, 1.0, 1.0)]) == 0.0, "only one-token completions: return 0.0")


@exercise("4.8.3")
def _utilisation(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.8.3', break_even_utilisation)")
    got = fn(1.0, 100.0, 0.18)
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number, got {got!r}")
    expect(math.isclose(got, 0.5), "100 tokens/s all hour are 360,000 tokens, worth 0.36 at "
                                   "1.0 per million; an hour costs 0.18: half busy pays, "
                                   f"0.5, got {got}")
    for p, t, h in [(0.4, 1500.0, 1.5), (2.0, 50.0, 0.2), (0.1, 3000.0, 0.5)]:
        got = fn(p, t, h)
        expect(math.isfinite(got) and math.isclose(
            self_host_price_per_million(t, h, got), p, rel_tol=1e-9),
            f"at the returned utilisation ({got}) the machine's price per million should "
            f"equal the API's {p} (price {p}, {t} tokens/s, {h} per hour)")
    got = fn(0.1, 10.0, 5.0)
    expect(got == math.inf, "a machine busy all the time that still costs more than the API "
                            f"never pays: return math.inf (a utilisation above 1 is "
                            f"impossible), got {got}")
