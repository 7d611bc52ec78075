"""llmbook.prune and llmbook.distill against their definitions."""
import pytest
import torch
import torch.nn.functional as F
from llmbook.distill import distillation_loss
from llmbook.prune import magnitude_mask, prune_, sparsity, two_four_mask


def test_magnitude_mask_keeps_the_largest():
    w = torch.tensor([[0.1, -3.0, 0.5, 2.0], [-0.2, 0.05, 1.0, -0.7]])
    keep = magnitude_mask(w, 0.5)
    assert keep.sum() == 4
    assert w[keep].abs().min() >= w[~keep].abs().max()


def test_two_four_has_two_of_every_four():
    w = torch.randn(6, 16, generator=torch.Generator().manual_seed(0))
    keep = two_four_mask(w)
    assert (keep.reshape(-1, 4).sum(1) == 2).all()
    g, k = w.abs().reshape(-1, 4), keep.reshape(-1, 4)
    assert (g[k].reshape(-1, 2).min(1).values >= g[~k].reshape(-1, 2).max(1).values).all()


def test_prune_model_reaches_the_sparsity_and_spares_tied_embeddings():
    from llmbook.models import GPT, GPTConfig

    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32))
    emb = m.wte.weight.clone()
    prune_(m, 0.6)
    assert sparsity(m) == pytest.approx(0.6, abs=0.01) and torch.equal(m.wte.weight, emb)
    prune_(m, pattern="2:4")
    assert sparsity(m) >= 0.6


def test_distillation_loss_limits():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    y = torch.randint(7, (2, 5), generator=g)
    ce = F.cross_entropy(s.reshape(-1, 7), y.reshape(-1))
    assert torch.allclose(distillation_loss(s, t, y, alpha=0.0), ce)
    assert distillation_loss(s, s, y, alpha=1.0).abs() < 1e-6          # KL(p || p) = 0
    p, q = F.softmax(t / 3, -1), F.log_softmax(s / 3, -1)
    kl = (p * (p.log() - q)).sum(-1).mean() * 9
    assert torch.allclose(distillation_loss(s, t, y, temperature=3.0, alpha=1.0), kl, atol=1e-5)
    y[0] = -100
    assert torch.isfinite(distillation_loss(s, t, y))


@pytest.mark.parametrize("call, match", [
    (lambda: magnitude_mask(torch.randn(3, 3), 1.0), "sparsity"),
    (lambda: two_four_mask(torch.randn(3, 6)), "divisible by 4"),
    (lambda: prune_(torch.nn.Linear(4, 4), pattern="1:2"), "pattern"),
    (lambda: distillation_loss(torch.randn(2, 3), torch.randn(2, 4), torch.zeros(2).long()), "same shape"),
    (lambda: distillation_loss(torch.randn(2, 3), torch.randn(2, 3), torch.full((2,), -100)), "ignore_index"),
    (lambda: distillation_loss(torch.randn(2, 3), torch.randn(2, 3), torch.zeros(2).long(), temperature=0), "temperature"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
