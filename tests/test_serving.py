"""Static and continuous batching give every request the tokens it gets alone."""
from __future__ import annotations

import random

import pytest
import torch
from llmbook.generate import generate
from llmbook.models import GPT, GPTConfig
from llmbook.serving import Request, continuous_batching, kv_cache_bytes, static_batching

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(preset: str = "tiny-llama", impl: str = "sdpa") -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.preset(preset, n_layer=2, block_size=96, attn_impl=impl)).eval()


def _requests(n: int, seed: int, vocab: int, spread: float = 3.0) -> list[Request]:
    rng = random.Random(seed)
    out, t = [], 0.0
    for i in range(n):
        t += rng.expovariate(1.0) * spread
        prompt = tuple(rng.randrange(vocab) for _ in range(rng.randint(1, 12)))
        out.append(Request(i, prompt, rng.randint(1, 14), arrival=t))
    return out


class Ticks:
    """A fake clock: every reading moves it by one, so a model call, timed as the
    difference of two readings, takes one unit."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def _alone(model: GPT, r: Request, eos_id: int | None = None) -> list[int]:
    idx = torch.tensor([r.prompt])
    new = generate(model, idx, r.max_new_tokens, temperature=0)[0, len(r.prompt):].tolist()
    if eos_id is not None and eos_id in new:
        new = new[:new.index(eos_id) + 1]
    return new


@pytest.mark.parametrize("preset, impl", [("tiny-llama", "sdpa"), ("tiny-llama", "scratch"),
                                          ("tiny-gpt2", "sdpa")])
@pytest.mark.parametrize("scheduler", [static_batching, continuous_batching])
def test_every_request_gets_its_tokens_alone(preset, impl, scheduler):
    model = _model(preset, impl)
    requests = _requests(14, seed=1, vocab=model.config.vocab_size)
    result = scheduler(model, requests, max_batch=4, clock=Ticks())
    assert [c.id for c in result.completions] == [r.id for r in requests]
    for r, c in zip(requests, result.completions):
        assert c.tokens == _alone(model, r), r.id
        assert len(c.tokens) == r.max_new_tokens
        assert c.arrival <= c.first_token <= c.finish
    assert result.max_batch_seen <= 4
    assert result.tokens == sum(r.max_new_tokens for r in requests)


@pytest.mark.parametrize("scheduler", [static_batching, continuous_batching])
def test_eos_ends_a_request(scheduler):
    model = _model()
    requests = _requests(10, seed=2, vocab=model.config.vocab_size, spread=0.5)
    # the most frequent first generated token is a good eos: several requests stop early
    firsts = [_alone(model, r)[0] for r in requests]
    eos = max(set(firsts), key=firsts.count)
    result = scheduler(model, requests, max_batch=3, eos_id=eos, clock=Ticks())
    for r, c in zip(requests, result.completions):
        assert c.tokens == _alone(model, r, eos), r.id
    assert any(len(c.tokens) < r.max_new_tokens for r, c in zip(requests, result.completions))


def test_continuous_batching_wastes_no_rows_and_static_does():
    model = _model()
    requests = [Request(i, (1 + i, 2, 3), n, 0.0) for i, n in enumerate([2, 9, 3, 12])]
    static = static_batching(model, requests, max_batch=4, clock=Ticks())
    cont = continuous_batching(model, requests, max_batch=4, clock=Ticks())
    # static: one prefill, 11 decode passes of 4 rows; rows done early keep being computed
    assert static.prefills == 1 and static.steps == 11 and static.rows == 44
    assert static.wasted_rows == 44 - sum(n - 1 for n in [2, 9, 3, 12])
    assert cont.wasted_rows == 0 and cont.rows == sum(n - 1 for n in [2, 9, 3, 12])
    assert cont.prefills == 4


def test_newcomers_join_a_running_batch():
    """A request arriving mid-batch starts at once with continuous batching and waits for
    the whole batch with static batching (on a clock of model calls)."""
    model = _model()
    requests = [Request(0, (5, 6, 7), 20, 0.0), Request(1, (8, 9), 3, 2.0)]
    static = static_batching(model, requests, max_batch=2, clock=Ticks())
    cont = continuous_batching(model, requests, max_batch=2, clock=Ticks())
    assert static.completions[1].first_token > static.completions[0].finish - 1e-9
    assert cont.completions[1].finish < cont.completions[0].finish
    assert cont.max_batch_seen == 2 and static.max_batch_seen == 1
    assert cont.completions[1].tokens == static.completions[1].tokens


def test_idle_gaps_are_jumped_not_waited():
    model = _model()
    requests = [Request(0, (1, 2), 2, 0.0), Request(1, (3, 4), 2, 1000.0)]
    for scheduler in (static_batching, continuous_batching):
        result = scheduler(model, requests, max_batch=2, clock=Ticks())
        assert result.completions[1].first_token >= 1000.0
        assert result.total_time == 1000.0 + 2 and result.busy_time == 4.0   # 2 calls each
        assert result.completions[0].latency == 2.0


def test_cache_longer_than_block_is_refused_clearly():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny-llama", n_layer=1, block_size=16)).eval()
    requests = [Request(0, tuple(range(1, 13)), 4, 0.0), Request(1, (1,), 15, 0.0)]
    with pytest.raises(ValueError, match="block_size"):
        continuous_batching(model, requests, max_batch=2, clock=Ticks())


def test_kv_cache_bytes_matches_the_tensors():
    model = _model()
    cache = model.new_cache(3, max_len=20)
    model(torch.ones(3, 5, dtype=torch.long), cache=cache)
    held = sum(t.nbytes for t in cache.k + cache.v)
    assert kv_cache_bytes(model.config, 3, 20) == held
    assert kv_cache_bytes(model.config, 3, 20, bytes_per_value=2) == held // 2


@pytest.mark.parametrize("kwargs, match", [
    ({"prompt": (), "max_new_tokens": 2}, "prompt"),
    ({"prompt": (1, -2), "max_new_tokens": 2}, "prompt"),
    ({"prompt": (1,), "max_new_tokens": 0}, "max_new_tokens"),
    ({"prompt": (1,), "max_new_tokens": 2, "arrival": -1.0}, "arrival"),
    ({"prompt": (1,), "max_new_tokens": 2, "arrival": float("nan")}, "arrival"),
])
def test_bad_requests_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Request(0, **kwargs)


def test_bad_arguments_are_refused():
    model = _model()
    ok = [Request(0, (1, 2), 2)]
    with pytest.raises(ValueError, match="max_batch"):
        static_batching(model, ok, max_batch=0)
    with pytest.raises(ValueError, match="requests"):
        continuous_batching(model, [])
    with pytest.raises(ValueError, match="unique"):
        continuous_batching(model, ok + ok)
    with pytest.raises(ValueError, match="vocab_size"):
        continuous_batching(model, [Request(0, (10**6,), 2)])
    with pytest.raises(ValueError, match="block_size"):
        static_batching(model, [Request(0, (1,) * 90, 10)])
    with pytest.raises(ValueError, match="eos_id"):
        static_batching(model, ok, eos_id=-1)
    with pytest.raises(TypeError, match="GPT"):
        static_batching(torch.nn.Linear(2, 2), ok)
    with pytest.raises(ValueError, match="batch_size"):
        kv_cache_bytes(model.config, 0, 3)
