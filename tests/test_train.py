"""Tests of llmbook.train: sampler, schedule, clipping, accumulation, determinism, errors."""
from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from llmbook.train import (
    History,
    TrainConfig,
    estimate_loss,
    get_batch,
    lr_at,
    make_optimizer,
    train,
)
from torch import nn
from torch.nn import functional as F


class TinyLM(nn.Module):
    """A bigram-plus-linear LM: small, deterministic, no dropout."""

    def __init__(self, vocab: int = 11, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx, targets=None):
        logits = self.head(torch.tanh(self.emb(idx)))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def cyclic_tokens(n: int = 2000, vocab: int = 11) -> torch.Tensor:
    """0, 1, 2, ..., vocab-1, 0, 1, ...: perfectly predictable from the previous token."""
    return torch.arange(n) % vocab


def quiet(**kw) -> TrainConfig:
    base = {"max_steps": 30, "batch_size": 8, "block_size": 16, "lr": 1e-2, "warmup_steps": 3,
                "eval_interval": 10, "eval_batches": 2, "log_interval": 5, "progress": False}
    base.update(kw)
    return TrainConfig(**base)


def test_get_batch_shapes_and_shift():
    data = torch.arange(100)
    x, y = get_batch(data, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10)
    assert x.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(y, x + 1)          # contiguous blocks of arange


def test_get_batch_is_seeded():
    data = torch.randint(50, (500,), generator=torch.Generator().manual_seed(1))
    a = get_batch(data, 3, 8, torch.Generator().manual_seed(7))
    b = get_batch(data, 3, 8, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("bad, err", [
    (torch.arange(10).view(2, 5), ValueError),       # not 1-D
    (torch.rand(100), TypeError),                    # float tokens
    (torch.arange(5), ValueError),                   # too short for the block
    ([1, 2, 3], TypeError),                          # not a tensor
])
def test_get_batch_rejects_bad_data(bad, err):
    with pytest.raises(err):
        get_batch(bad, 2, 8)


def test_get_batch_rejects_unknown_device():
    with pytest.raises(ValueError, match="unknown device"):
        get_batch(torch.arange(100), 2, 8, device="xla")


def test_schedule_values():
    kw = {"max_lr": 1.0, "warmup_steps": 10, "max_steps": 110, "min_lr": 0.1}
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)         # half-way: mean of max and min
    assert lr_at(110, **kw) == pytest.approx(0.1)
    assert lr_at(500, **kw) == pytest.approx(0.1)
    values = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))   # monotone decay


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError):
        lr_at(-1, 1.0, 0, 10)
    with pytest.raises(ValueError):
        lr_at(0, 1.0, 20, 10)
    with pytest.raises(ValueError):
        lr_at(0, 1.0, 0, 10, min_lr=2.0)


def test_loss_decreases_on_tiny_problem():
    torch.manual_seed(0)
    model = TinyLM()
    data = cyclic_tokens()
    before = estimate_loss(model, data, 8, 16, n_batches=2)
    hist = train(model, data, data, quiet(max_steps=60))
    assert isinstance(hist, History)
    assert len(hist.train_loss) == 60 and len(hist.lr) == 60
    assert before == pytest.approx(math.log(11), abs=0.5)
    assert hist.val_loss[-1] < 0.3 * before
    assert hist.eval_steps == [10, 20, 30, 40, 50, 60]
    assert hist.seconds > 0


def test_training_is_deterministic():
    data = cyclic_tokens()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = TinyLM()
        hist = train(model, data, config=quiet(seed=5))
        runs.append((hist.train_loss, model.head.weight.detach().clone()))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_accumulation_equals_larger_batch():
    data = torch.randint(11, (3000,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    big, small = TinyLM(), None
    small = copy.deepcopy(big)
    train(big, data, config=quiet(max_steps=3, batch_size=8, grad_accum=1))
    train(small, data, config=quiet(max_steps=3, batch_size=4, grad_accum=2))
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_accumulation_without_division_differs():
    """The check above can fail: summing micro-batch losses doubles the gradient."""
    data = torch.randint(11, (3000,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = TinyLM()
    x, y = get_batch(data, 8, 16, torch.Generator().manual_seed(0))
    _, loss = model(x, y)
    g_mean = torch.autograd.grad(loss, model.head.weight)[0]
    g_sum = sum(torch.autograd.grad(model(x[i:i + 4], y[i:i + 4])[1], model.head.weight)[0]
                for i in (0, 4))
    torch.testing.assert_close(g_sum, 2 * g_mean, rtol=1e-5, atol=1e-6)


def test_gradient_clipping_limits_the_update():
    """With SGD (lr=1) one step moves the weights by exactly the clipped gradient."""
    data = cyclic_tokens()
    torch.manual_seed(0)
    model = TinyLM()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train(model, data, optimizer=opt,
          config=quiet(max_steps=1, warmup_steps=0, lr=1.0, min_lr=1.0, grad_clip=1e-3))
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                          for p, b in zip(model.parameters(), before)))
    assert step.item() == pytest.approx(1e-3, rel=1e-4)


def test_no_clipping_gives_a_larger_step():
    data = cyclic_tokens()
    torch.manual_seed(0)
    model = TinyLM()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train(model, data, optimizer=opt,
          config=quiet(max_steps=1, warmup_steps=0, lr=1.0, min_lr=1.0, grad_clip=None))
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                          for p, b in zip(model.parameters(), before)))
    assert step.item() > 1e-2


def test_make_optimizer_decays_matrices_only():
    opt = make_optimizer(TinyLM(), lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])


def test_estimate_loss_restores_training_mode():
    model = TinyLM().train()
    estimate_loss(model, cyclic_tokens(), 2, 8, n_batches=1)
    assert model.training


@pytest.mark.parametrize("kw", [{"max_steps": 0}, {"batch_size": -1}, {"lr": 0.0},
                                {"grad_accum": 0}, {"grad_clip": -1.0},
                                {"warmup_steps": 100, "max_steps": 10}])
def test_config_rejects_bad_values(kw):
    with pytest.raises(ValueError):
        TrainConfig(**kw)


def test_train_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        train(TinyLM(), torch.zeros(4, 100, dtype=torch.long), config=quiet())
    with pytest.raises(TypeError, match="TrainConfig"):
        train(TinyLM(), cyclic_tokens(), config={"max_steps": 3})
    with pytest.raises(ValueError, match="too few"):
        train(TinyLM(), cyclic_tokens(), torch.arange(5), config=quiet())


def test_checkpoint_dir_saves_the_trained_model(tmp_path):
    pytest.importorskip("llmbook.checkpoint")
    from llmbook import checkpoint
    from llmbook.models import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16))
    train(model, cyclic_tokens(), config=quiet(max_steps=3), checkpoint_dir=tmp_path / "ck")
    loaded = checkpoint.load(tmp_path / "ck")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
