"""GPT.forward(logits_to_keep=n): the last n positions' logits, as with all of them."""
from __future__ import annotations

import pytest
import torch
from llmbook.generate import generate
from llmbook.models import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama"])
def test_last_logits_equal_those_of_the_full_pass(preset):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(preset, n_layer=2, block_size=32)).eval()
    idx = torch.randint(0, model.config.vocab_size, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[0, :4] = 0
    with torch.no_grad():
        full, _ = model(idx, attention_mask=mask)
        for n in (1, 4, 9):
            part, _ = model(idx, attention_mask=mask, logits_to_keep=n)
            assert part.shape == (3, n, model.config.vocab_size)
            torch.testing.assert_close(part, full[:, -n:], rtol=1e-5, atol=1e-5)
        cache = model.new_cache(3, max_len=12)
        part, _ = model(idx, cache=cache, attention_mask=mask, logits_to_keep=1)
        assert cache.length == 9                       # the cache still holds every position
        torch.testing.assert_close(part, full[:, -1:], rtol=1e-5, atol=1e-5)


def test_generate_matches_a_loop_over_full_logits():
    torch.manual_seed(1)
    model = GPT(GPTConfig.preset("tiny-llama", n_layer=2, block_size=32)).eval()
    idx = torch.randint(0, model.config.vocab_size, (2, 5))
    seq = idx
    with torch.no_grad():
        for _ in range(6):
            nxt = model(seq)[0][:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(generate(model, idx, 6, temperature=0), seq)
    assert torch.equal(generate(model, idx, 6, temperature=0, use_cache=False), seq)


@pytest.mark.parametrize("value", [-1, 1.5, True, "1"])
def test_bad_logits_to_keep_is_refused(value):
    model = GPT(GPTConfig.preset("tiny-gpt2", n_layer=1, block_size=16))
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(torch.zeros(1, 4, dtype=torch.long), logits_to_keep=value)


def test_logits_to_keep_with_targets_is_refused():
    model = GPT(GPTConfig.preset("tiny-gpt2", n_layer=1, block_size=16))
    x = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="targets"):
        model(x, targets=x, logits_to_keep=1)
