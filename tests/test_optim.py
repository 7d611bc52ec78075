"""Muon written from scratch (llmbook.optim) against torch.optim.Muon and torch's AdamW."""
from __future__ import annotations

import pytest
import torch
from llmbook.models import GPT, GPTConfig
from llmbook.optim import Muon, muon_param_groups, newton_schulz


def test_newton_schulz_makes_singular_values_near_one():
    g = torch.Generator().manual_seed(0)
    G = torch.randn(32, 96, generator=g) @ torch.diag(torch.logspace(-3, 1, 96))
    X = newton_schulz(G, dtype=torch.float32)
    s = torch.linalg.svdvals(X)
    assert X.shape == G.shape
    assert s.min() > 0.6 and s.max() < 1.25            # raw G spans 4 decades
    # the same singular vectors as G's polar factor U V^T
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    cos = torch.nn.functional.cosine_similarity(X.flatten(), (U @ Vh).flatten(), dim=0)
    assert cos > 0.97


def test_newton_schulz_tall_matrix_is_transposed_back():
    G = torch.randn(80, 20, generator=torch.Generator().manual_seed(1))
    X = newton_schulz(G, dtype=torch.float32)
    assert X.shape == (80, 20)
    torch.testing.assert_close(X, newton_schulz(G.T, dtype=torch.float32).T)


def test_newton_schulz_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D matrix"):
        newton_schulz(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="steps"):
        newton_schulz(torch.zeros(3, 4), steps=-1)


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
def test_muon_matches_torch_muon(nesterov, adjust):
    torch.manual_seed(0)
    shapes = [(24, 16), (16, 40)]
    ours_p = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    ref_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    ours = Muon(ours_p, lr=0.02, momentum=0.9, nesterov=nesterov, weight_decay=0.1,
                adjust_lr=adjust)
    ref = torch.optim.Muon(ref_p, lr=0.02, momentum=0.9, nesterov=nesterov,
                           weight_decay=0.1, adjust_lr_fn=adjust)
    for step in range(5):
        grads = [torch.randn(s, generator=torch.Generator().manual_seed(step)) for s in shapes]
        for p, q, g in zip(ours_p, ref_p, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(ours_p, ref_p):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_adamw_groups_match_torch_adamw():
    torch.manual_seed(0)
    ours_p = [torch.nn.Parameter(torch.randn(7)), torch.nn.Parameter(torch.randn(5, 3))]
    ref_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    ours = Muon([{"params": ours_p, "muon": False, "lr": 3e-3, "weight_decay": 0.1}])
    ref = torch.optim.AdamW(ref_p, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    for step in range(4):
        for p, q in zip(ours_p, ref_p):
            g = torch.randn(p.shape, generator=torch.Generator().manual_seed(step))
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(ours_p, ref_p):
        torch.testing.assert_close(p, q)


def test_muon_refuses_vectors_in_a_muon_group():
    with pytest.raises(ValueError, match="2-D matrices only"):
        Muon([torch.nn.Parameter(torch.zeros(4))])
    with pytest.raises(ValueError, match="adjust_lr"):
        Muon([torch.nn.Parameter(torch.zeros(4, 4))], adjust_lr="sqrt")


def test_param_groups_split_a_gpt_and_training_lowers_the_loss():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32))
    groups = muon_param_groups(model, muon_lr=0.02, adam_lr=3e-3)
    muon_params = groups[0]["params"]
    assert groups[0]["muon"] and all(p.ndim == 2 for p in muon_params)
    assert all(p is not model.wte.weight for p in muon_params)
    n_all = sum(len(g["params"]) for g in groups)
    assert n_all == len(list(model.parameters()))
    opt = Muon(groups)
    idx = torch.randint(0, 64, (8, 16), generator=torch.Generator().manual_seed(0))
    first = None
    for _ in range(30):
        _, loss = model(idx, idx)           # learn to copy the input: easy to fit
        loss.backward()
        opt.step()
        opt.zero_grad()
        first = loss.item() if first is None else first
    assert loss.item() < first - 1.0
