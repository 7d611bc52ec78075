"""Decoding additions: min-p filtering and the repetition penalty, checked against
``transformers``' logits processors; greedy decoding of SmolLM2 against its ``generate``."""
from __future__ import annotations

import pytest
import torch
from llmbook.generate import generate, min_p_filter, repetition_penalty, sample_next
from llmbook.interop import from_hf, to_hf
from llmbook.models import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(preset: str = "tiny-llama", seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig.preset(preset, vocab_size=64, block_size=48, n_layer=2))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    return model.eval()


@pytest.mark.parametrize("min_p", [0.0, 0.05, 0.3, 1.0])
def test_min_p_matches_transformers(min_p):
    from transformers import MinPLogitsWarper

    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1)) * 3
    ours = min_p_filter(logits, min_p)
    theirs = MinPLogitsWarper(min_p=min_p)(None, logits.clone())
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    kept = ~torch.isinf(ours)
    assert torch.equal(ours[kept], logits[kept])
    assert kept.sum(-1).min() >= 1                      # the top token always survives


def test_min_p_cut_follows_confidence():
    peaked = torch.tensor([[8.0, 2.0, 1.0, 0.0, 0.0]])
    flat = torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6]])
    assert (~torch.isinf(min_p_filter(peaked, 0.1))).sum() == 1
    assert (~torch.isinf(min_p_filter(flat, 0.1))).sum() == 5


@pytest.mark.parametrize("penalty", [0.7, 1.0, 1.5])
def test_repetition_penalty_matches_transformers(penalty):
    from transformers import RepetitionPenaltyLogitsProcessor

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 40, generator=g)
    context = torch.randint(0, 40, (3, 12), generator=g)     # with repeated ids
    ours = repetition_penalty(logits, context, penalty)
    theirs = RepetitionPenaltyLogitsProcessor(penalty)(context, logits.clone())
    assert torch.allclose(ours, theirs)
    unseen = torch.ones_like(logits, dtype=torch.bool).scatter(-1, context, False)
    assert torch.equal(ours[unseen], logits[unseen])
    if penalty > 1:
        assert (ours[~unseen] < logits[~unseen]).all()


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama"])
def test_generate_with_penalty_matches_transformers(preset):
    model = _model(preset)
    hf = to_hf(model).eval()
    idx = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(3))
    for use_cache in (True, False):
        ours = generate(model, idx, 20, temperature=0, repetition_penalty=1.8,
                        use_cache=use_cache)
        theirs = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=20,
                             do_sample=False, repetition_penalty=1.8, pad_token_id=0)
        assert ours.tolist() == theirs.tolist()
    plain = generate(model, idx, 20, temperature=0)
    assert not torch.equal(plain, ours)              # the penalty does change the output


def test_penalty_reduces_repeats():
    model = _model("tiny-gpt2")
    idx = torch.zeros(1, 1, dtype=torch.long)
    plain = generate(model, idx, 40, temperature=0)[0].tolist()
    penalised = generate(model, idx, 40, temperature=0, repetition_penalty=3.0)[0].tolist()
    assert len(set(penalised)) > len(set(plain))


def test_min_p_in_sampling_is_seeded_and_restrictive():
    logits = torch.tensor([[5.0, 4.9, 0.0, -1.0, -2.0]])
    draws = {int(sample_next(logits, 1.0, min_p=0.5,
                             generator=torch.Generator().manual_seed(s))) for s in range(50)}
    assert draws == {0, 1}
    model = _model()
    idx = torch.zeros(2, 3, dtype=torch.long)

    def run(seed):
        return generate(model, idx, 12, temperature=1.2, min_p=0.1,
                        generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(5), run(5))


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1", True])
def test_min_p_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="min_p"):
        min_p_filter(torch.zeros(1, 4), bad)
    with pytest.raises(ValueError, match="min_p"):
        generate(_model(), torch.zeros(1, 2, dtype=torch.long), 2, min_p=bad)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "2"])
def test_repetition_penalty_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="repetition_penalty"):
        generate(_model(), torch.zeros(1, 2, dtype=torch.long), 2, repetition_penalty=bad)


def test_repetition_penalty_rejects_bad_context():
    with pytest.raises(ValueError, match="context"):
        repetition_penalty(torch.zeros(2, 5), torch.zeros(3, 4, dtype=torch.long), 1.2)


# ------------------------------------------------------------------------ SmolLM2
@pytest.fixture(scope="module")
def smollm2():
    from llmbook import data
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = data.smollm2_path()
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return hf, AutoTokenizer.from_pretrained(path)


def test_smollm2_greedy_and_penalised_match_transformers(smollm2):
    hf, tok = smollm2
    model = from_hf(hf)
    idx = tok("It is a truth universally acknowledged", return_tensors="pt").input_ids
    mask = torch.ones_like(idx)
    for penalty in (1.0, 1.3):
        ours = generate(model, idx, 16, temperature=0, repetition_penalty=penalty)
        theirs = hf.generate(idx, attention_mask=mask, max_new_tokens=16, do_sample=False,
                             repetition_penalty=penalty)
        assert ours.tolist() == theirs.tolist(), penalty
