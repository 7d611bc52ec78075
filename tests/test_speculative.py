"""Speculative decoding: greedy output equals the target's, samples follow the target's
distribution, the layer draft shares weights, and bad input is refused."""
from __future__ import annotations

import itertools

import pytest
import torch
from llmbook.generate import generate
from llmbook.models import GPT, GPTConfig
from llmbook.speculative import SpeculativeStats, layer_draft, speculative_generate

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(preset: str, seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig.preset(preset, **{"vocab_size": 64, "block_size": 64,
                                            "n_layer": 3, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    return model.eval()


def _prompt(T: int = 5, V: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (1, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("k", [1, 3, 6])
def test_greedy_is_the_targets_greedy(preset, k):
    target = _model(preset)
    for seed, draft in itertools.product([0, 1], [layer_draft(target, 1),
                                                  _model(preset, seed=9), target]):
        idx = _prompt(seed=seed)
        want = generate(target, idx, 30, temperature=0)
        got, stats = speculative_generate(target, draft, idx, 30, k=k)
        assert torch.equal(got, want)
        assert stats.new_tokens == 30 and stats.accepted <= stats.proposed
        assert 1 <= stats.tokens_per_round <= k + 1


def test_draft_equal_to_target_accepts_everything():
    target = _model("tiny-llama")
    out, stats = speculative_generate(target, target, _prompt(), 20, k=4)
    assert stats.acceptance_rate == 1.0
    assert stats.rounds == 4                         # 20 tokens, 5 per round
    assert torch.equal(out, generate(target, _prompt(), 20, temperature=0))


def test_a_bad_draft_is_rejected_but_output_stays_exact():
    target = _model("tiny-gpt2")
    bad = _model("tiny-gpt2", seed=5)
    out, stats = speculative_generate(target, bad, _prompt(), 24, k=4)
    assert stats.acceptance_rate < 0.5
    assert torch.equal(out, generate(target, _prompt(), 24, temperature=0))


def test_layer_draft_shares_weights_and_runs_the_first_layers():
    target = _model("tiny-llama", n_layer=4)
    draft = layer_draft(target, 2)
    assert draft.config.n_layer == 2 and len(draft.blocks) == 2
    assert draft.blocks[1] is target.blocks[1] and draft.lm_head is target.lm_head
    idx = _prompt()
    x = target.wte(idx)
    rope = target.rope(idx.shape[1], 0)
    for block in target.blocks[:2]:
        x = block(x, causal=True, rope=rope)
    want = target.lm_head(target.ln_f(x))
    assert torch.allclose(draft(idx)[0], want, atol=1e-5)


def _exact_two_token_distribution(model: GPT, idx: torch.Tensor, t: float) -> torch.Tensor:
    """P(x1, x2 | idx) under the model at temperature t, (V, V)."""
    V = model.config.vocab_size
    p1 = (model(idx)[0][0, -1] / t).softmax(-1)
    seqs = torch.cat([idx.expand(V, -1), torch.arange(V)[:, None]], dim=1)
    p2 = (model(seqs)[0][:, -1] / t).softmax(-1)
    return p1[:, None] * p2


def test_sampling_follows_the_target_distribution():
    V = 6
    target = _model("tiny-gpt2", vocab_size=V, n_layer=1, n_embd=16, n_head=2)
    draft = _model("tiny-gpt2", seed=3, vocab_size=V, n_layer=1, n_embd=16, n_head=2)
    idx = torch.tensor([[1, 4]])
    t = 1.3
    with torch.no_grad():
        want = _exact_two_token_distribution(target, idx, t)
        draft_dist = _exact_two_token_distribution(draft, idx, t)
    assert 0.5 * (want - draft_dist).abs().sum() > 0.2    # the draft alone is far off
    g = torch.Generator().manual_seed(0)
    n = 3000
    counts = torch.zeros(V, V)
    for _ in range(n):
        out, _ = speculative_generate(target, draft, idx, 2, k=2, temperature=t, generator=g)
        counts[out[0, 2], out[0, 3]] += 1
    tv = 0.5 * (counts / n - want).abs().sum()
    assert tv < 0.06, float(tv)


def test_sampling_is_seeded():
    target = _model("tiny-llama")
    draft = layer_draft(target, 1)

    def run(seed):
        return speculative_generate(target, draft, _prompt(), 15, k=3, temperature=1.0,
                                    generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_zero_new_tokens_and_modes_restored():
    target = _model("tiny-gpt2").train()
    out, stats = speculative_generate(target, layer_draft(target, 1), _prompt(), 0)
    assert torch.equal(out, _prompt()) and stats.rounds == 0
    assert target.training
    assert SpeculativeStats().acceptance_rate != SpeculativeStats().acceptance_rate  # nan


def test_bad_input_is_refused():
    target = _model("tiny-gpt2")
    draft = layer_draft(target, 1)
    with pytest.raises(ValueError, match="one non-empty prompt"):
        speculative_generate(target, draft, torch.zeros(2, 3, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="same vocabulary"):
        speculative_generate(target, _model("tiny-gpt2", vocab_size=32), _prompt(), 4)
    with pytest.raises(ValueError, match="k must be"):
        speculative_generate(target, draft, _prompt(), 4, k=0)
    with pytest.raises(ValueError, match="block_size"):
        speculative_generate(target, draft, _prompt(), 100)
    with pytest.raises(ValueError, match="temperature"):
        speculative_generate(target, draft, _prompt(), 4, temperature=-1)
    with pytest.raises(ValueError, match="outside"):
        speculative_generate(target, draft, torch.tensor([[99]]), 4)
    with pytest.raises(TypeError, match="GPT"):
        speculative_generate(target, "draft", _prompt(), 4)
    with pytest.raises(ValueError, match="n_layer"):
        layer_draft(target, 4)
