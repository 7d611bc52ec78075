"""Decoding: KV cache vs no cache, seeded sampling, filters, beam search, bad input."""
from __future__ import annotations

import itertools

import pytest
import torch
from llmbook.generate import beam_search, generate, sample_next, top_k_filter, top_p_filter
from llmbook.models import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(preset: str, seed: int = 0, **overrides) -> GPT:
    """A small random GPT with weights large enough that its distributions are peaked."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig.preset(preset, **{"vocab_size": 64, "block_size": 48,
                                            "n_layer": 2, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    return model.eval()


def _prompt(B: int = 3, T: int = 5, V: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


FAMILIES = ["tiny-gpt2", "tiny-llama"]  # tiny-llama has n_kv_head=2 < n_head=4 (GQA)


@pytest.mark.parametrize("preset", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_cached_greedy_equals_uncached(preset, seed):
    model = _model(preset, seed)
    idx = _prompt(seed=seed)
    cached = generate(model, idx, 40, temperature=0)
    uncached = generate(model, idx, 40, temperature=0, use_cache=False)
    assert cached.shape == (3, 45) and cached.dtype == torch.long
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[:, :5], idx)


def test_greedy_matches_argmax_loop():
    model = _model("tiny-gpt2")
    idx = _prompt(B=2)
    seq = idx
    for _ in range(10):
        logits, _ = model(seq)
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generate(model, idx, 10, temperature=0), seq)


@pytest.mark.parametrize("preset", FAMILIES)
def test_seeded_sampling_is_reproducible(preset):
    model = _model(preset)
    idx = _prompt()

    def run(seed: int, use_cache: bool = True) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return generate(model, idx, 25, temperature=0.9, top_k=20, top_p=0.95,
                        use_cache=use_cache, generator=gen)

    assert torch.equal(run(7), run(7))
    assert torch.equal(run(7), run(7, use_cache=False))
    assert not torch.equal(run(7), run(8))


@pytest.mark.parametrize("use_cache", [True, False])
def test_stop_ends_decoding_with_the_same_tokens(use_cache):
    model = _model("tiny-llama")
    idx = _prompt()
    full = generate(model, idx, 30, temperature=0.9, use_cache=use_cache,
                    generator=torch.Generator().manual_seed(3))
    target = int(full[0, 5 + 12])                 # row 0's 13th new token
    calls = []

    def stop(new: torch.Tensor) -> bool:
        calls.append(new.shape)
        return bool((new[0] == target).any())

    short = generate(model, idx, 30, temperature=0.9, use_cache=use_cache,
                     generator=torch.Generator().manual_seed(3), stop=stop)
    n = int((full[0, 5:] == target).nonzero()[0]) + 1        # where it first appears
    assert short.shape == (3, 5 + n)
    assert torch.equal(short, full[:, :5 + n])                # the same tokens, cut there
    assert calls == [(3, j) for j in range(1, n + 1)]         # once per step, new tokens only
    never = generate(model, idx, 30, temperature=0, use_cache=use_cache,
                     stop=lambda new: False)
    assert torch.equal(never, generate(model, idx, 30, temperature=0, use_cache=use_cache))


def test_stop_must_be_a_function_returning_a_bool():
    model = _model("tiny-gpt2")
    with pytest.raises(TypeError, match="stop must be a function"):
        generate(model, _prompt(), 3, stop="<|im_end|>")
    with pytest.raises(TypeError, match="stop must return a bool.*NoneType"):
        generate(model, _prompt(), 3, stop=lambda new: None)
    with pytest.raises(TypeError, match="stop must return a bool.*Tensor"):
        generate(model, _prompt(), 3, stop=lambda new: new[:, -1] == 0)   # one per row
    stopped = generate(model, _prompt(), 3, stop=lambda new: torch.tensor(True))
    assert stopped.shape == (3, 6)


def test_generate_restores_training_mode():
    model = _model("tiny-gpt2").train()
    generate(model, _prompt(), 2)
    assert model.training


def test_uncached_crops_a_long_context():
    model = _model("tiny-gpt2", block_size=8)
    out = generate(model, _prompt(T=6), 10, temperature=0, use_cache=False)
    assert out.shape == (3, 16)


# ----------------------------------------------------------------------- filters
def test_top_k_filter_keeps_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = top_k_filter(logits, 2)
    assert torch.isfinite(kept).tolist() == [[False, True, False, True, False]]
    assert torch.equal(kept[torch.isfinite(kept)], torch.tensor([5.0, 4.0]))
    assert torch.equal(top_k_filter(logits, 99), logits)


def test_top_p_filter_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.05, 0.3, 0.15]])
    logits = probs.log()
    assert torch.isfinite(top_p_filter(logits, 0.75)).tolist() == [[True, False, True, False]]
    assert torch.isfinite(top_p_filter(logits, 0.8)).tolist() == [[True, False, True, False]]
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [[True, False, True, True]]
    assert torch.isfinite(top_p_filter(logits, 0.01)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()


def test_sampling_only_draws_kept_tokens():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    allowed = torch.isfinite(top_p_filter(top_k_filter(logits, 5), 0.7))
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        tok = sample_next(logits, 1.0, top_k=5, top_p=0.7, generator=gen)
        assert allowed.gather(1, tok).all()


def test_temperature_zero_is_argmax():
    logits = torch.randn(3, 10)
    assert torch.equal(sample_next(logits, 0.0), logits.argmax(-1, keepdim=True))


# ------------------------------------------------------------------- beam search
@pytest.mark.parametrize("preset", FAMILIES)
def test_one_beam_is_greedy(preset):
    model = _model(preset)
    idx = _prompt()
    assert torch.equal(beam_search(model, idx, 20, num_beams=1),
                       generate(model, idx, 20, temperature=0))


def _sequence_logprob(model: GPT, prompt: torch.Tensor, new: tuple[int, ...]) -> float:
    x = torch.cat([prompt, torch.tensor(new)])[None]
    with torch.no_grad():
        logp = model(x)[0][0].log_softmax(-1)
    T = prompt.numel()
    return sum(logp[T - 1 + i, tok].item() for i, tok in enumerate(new))


@pytest.mark.parametrize("preset", FAMILIES)
def test_wide_beam_finds_the_most_probable_sequence(preset):
    """With num_beams >= V^(n-1) nothing is ever pruned: beam search is exhaustive."""
    V, n = 5, 3
    model = _model(preset, seed=3, vocab_size=V, block_size=16, n_layer=1)
    prompt = torch.tensor([[1, 2], [3, 0]])
    found = beam_search(model, prompt, n, num_beams=V ** (n - 1), length_penalty=0.0)
    for row in range(2):
        best = max(itertools.product(range(V), repeat=n),
                   key=lambda seq: _sequence_logprob(model, prompt[row], seq))
        assert tuple(found[row, 2:].tolist()) == best


def test_beam_search_stops_at_eos_and_pads():
    model = _model("tiny-gpt2")
    idx = _prompt(B=2)
    greedy = generate(model, idx, 12, temperature=0)
    eos = int(greedy[0, 7])                    # greedy would emit it as its 3rd new token
    out = beam_search(model, idx, 12, num_beams=1, eos_token_id=eos)
    assert out.shape == (2, 17)
    first = (out[0, 5:] == eos).nonzero()[0].item()
    assert (out[0, 5 + first:] == eos).all()   # everything after the first eos is eos padding
    assert torch.equal(out[0, :5 + first], greedy[0, :5 + first])


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,error,match", [
    ({"temperature": -1.0}, ValueError, "temperature"),
    ({"temperature": float("nan")}, ValueError, "temperature"),
    ({"top_k": 0}, ValueError, "top_k"),
    ({"top_k": 2.5}, ValueError, "top_k"),
    ({"top_p": 0.0}, ValueError, "top_p"),
    ({"top_p": 1.5}, ValueError, "top_p"),
    ({"max_new_tokens": -1}, ValueError, "max_new_tokens"),
    ({"generator": "seed"}, TypeError, "torch.Generator"),
])
def test_generate_rejects_bad_settings(kwargs, error, match):
    model = _model("tiny-gpt2")
    args = {"max_new_tokens": 3} | kwargs
    with pytest.raises(error, match=match):
        generate(model, _prompt(), **args)


def test_generate_rejects_bad_prompts():
    model = _model("tiny-gpt2", block_size=8)
    with pytest.raises(ValueError, match=r"idx\[None\]"):
        generate(model, torch.tensor([1, 2, 3]), 2)
    with pytest.raises(TypeError, match="int64"):
        generate(model, torch.zeros(1, 3), 2)
    with pytest.raises(TypeError, match="int64"):
        generate(model, torch.zeros(1, 3, dtype=torch.int32), 2)
    with pytest.raises(ValueError, match="exceeds block_size"):
        generate(model, torch.zeros(1, 9, dtype=torch.long), 1, use_cache=False)
    with pytest.raises(ValueError, match="KV cache cannot hold"):
        generate(model, torch.zeros(1, 6, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="outside"):
        generate(model, torch.tensor([[1, 64]]), 2)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="llmbook GPT"):
        generate(torch.nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long), 2)


def test_beam_search_rejects_bad_settings():
    model = _model("tiny-gpt2", block_size=8)
    idx = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="num_beams"):
        beam_search(model, idx, 2, num_beams=0)
    with pytest.raises(ValueError, match="eos_token_id"):
        beam_search(model, idx, 2, eos_token_id=64)
    with pytest.raises(ValueError, match="exceeds block_size"):
        beam_search(model, idx, 6)
