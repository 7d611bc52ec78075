"""Training that goes wrong must stop loudly: config values, non-finite losses, weights
and gradients, batches with nothing to learn, and checkpoints that are never replaced
by bad ones. Also the token sources ``get_batch`` accepts (tensors, arrays, memmaps)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbook import checkpoint
from llmbook.models import GPT, GPTConfig
from llmbook.train import TrainConfig, TrainingDiverged, get_batch, train

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = (torch.arange(2000) * 5 % 17).long()


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=17, block_size=16, n_layer=1, n_head=2, n_embd=16))


def _cfg(**kw) -> TrainConfig:
    base = {"max_steps": 12, "batch_size": 4, "block_size": 16, "lr": 3e-3, "warmup_steps": 2,
            "eval_interval": 1, "eval_batches": 1, "log_interval": 4, "progress": False}
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------- TrainConfig
BAD = [("lr", math.inf), ("lr", math.nan), ("lr", 0.0), ("lr", "1e-3"),
       ("grad_clip", math.nan), ("grad_clip", math.inf), ("grad_clip", 0.0),
       ("weight_decay", math.nan), ("weight_decay", -0.1), ("weight_decay", math.inf),
       ("min_lr", math.nan), ("min_lr", 1.0), ("min_lr", -1e-4),
       ("betas", (0.9, 1.0)), ("betas", (math.nan, 0.9)), ("betas", (0.9,)),
       ("warmup_steps", -1), ("warmup_steps", 2.5), ("max_steps", True),
       ("seed", -1), ("progress", "no"), ("batch_size", 0)]


@pytest.mark.parametrize("field, value", BAD, ids=[f"{f}={v!r}" for f, v in BAD])
def test_config_rejects_nonsense_naming_field_and_value(field, value):
    with pytest.raises((ValueError, TypeError), match=rf"TrainConfig\.{field}"):
        TrainConfig(**{field: value})


@settings(max_examples=40, deadline=None)
@given(lr=st.floats(allow_nan=True, allow_infinity=True),
       wd=st.floats(allow_nan=True, allow_infinity=True))
def test_config_accepts_exactly_finite_positive_lr_and_nonnegative_decay(lr, wd):
    ok = math.isfinite(lr) and lr > 0 and math.isfinite(wd) and wd >= 0
    if ok:
        TrainConfig(lr=lr, weight_decay=wd)
    else:
        with pytest.raises(ValueError, match="must be a finite number"):
            TrainConfig(lr=lr, weight_decay=wd)


# --------------------------------------------------------------- divergence
def _poison_at(step_to_poison: int):
    def hook(step, model):
        if step == step_to_poison:
            with torch.no_grad():
                model.ln_f.weight.fill_(float("nan"))
    return hook


def test_nan_loss_stops_naming_the_step_and_keeps_the_good_checkpoint(tmp_path):
    ckpt = tmp_path / "ck"
    with pytest.raises(TrainingDiverged,
                       match=r"training loss is nan .* at step 7 .*step 4\) is kept"):
        train(_model(), DATA, config=_cfg(), on_eval=_poison_at(6), checkpoint_dir=ckpt,
              checkpoint_interval=4)
    good = checkpoint.load(ckpt)
    assert all(torch.isfinite(p).all() for p in good.parameters())
    state, _ = checkpoint.load_train_state(ckpt)
    assert state["step"] == 4


def test_nan_weights_are_never_saved_over_a_good_checkpoint(tmp_path):
    ckpt = tmp_path / "ck"
    with pytest.raises(TrainingDiverged, match=r"weight ln_f.weight is nan .* step 8"):
        train(_model(), DATA, config=_cfg(), on_eval=_poison_at(8), checkpoint_dir=ckpt,
              checkpoint_interval=4)
    assert checkpoint.load_train_state(ckpt)[0]["step"] == 4


def test_nan_gradient_norm_is_named():
    class NanGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = _model()

        def forward(self, idx, targets=None):
            logits, _ = self.inner(idx)
            logits = NanGrad.apply(logits)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
            return logits, loss

    with pytest.raises(TrainingDiverged, match=r"gradient norm is nan .* at step 1"):
        train(Model(), DATA, config=_cfg(grad_clip=1.0))


def test_checks_every_log_interval_still_name_the_first_bad_step():
    """On a GPU the losses are read every log_interval steps; the first bad one is named."""
    from llmbook.train import _Watch

    losses = torch.ones(20)
    losses[6] = float("inf")
    losses[8] = float("nan")
    watch = _Watch(losses, torch.zeros(20), check_norms=True, checkpoint_dir=None, step=0)
    watch.check(4)                                   # steps 1..5 fine
    with pytest.raises(TrainingDiverged, match=r"training loss is inf \(not finite\) at step 7"):
        watch.check(9)


# ------------------------------------------------------------ all ignored targets
def test_all_ignore_index_targets_is_a_clear_error_not_nan():
    model = _model()
    idx = torch.randint(0, 17, (2, 5))
    with pytest.raises(ValueError, match="every target is ignore_index=-100"):
        model(idx, torch.full((2, 5), -100))
    targets = torch.full((2, 5), -100)
    targets[1, 2] = 3
    _, loss = model(idx, targets)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="target id 17 is neither -100"):
        model(idx, torch.full((2, 5), 17))


# ------------------------------------------------------------ numpy and memmaps
def test_get_batch_accepts_numpy_and_memmap_with_the_same_blocks(tmp_path):
    tokens = (np.arange(500) * 3 % 101).astype(np.uint16)
    path = tmp_path / "tokens.bin"
    tokens.tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    want = get_batch(torch.from_numpy(tokens.astype(np.int64)), 4, 8,
                     torch.Generator().manual_seed(1))
    for data in (tokens, mm):
        got = get_batch(data, 4, 8, torch.Generator().manual_seed(1))
        assert got[0].dtype == torch.int64
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    with pytest.raises(TypeError, match="integer token ids"):
        get_batch(np.zeros(100, dtype=np.float32), 2, 8)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(np.zeros((10, 10), dtype=np.int64), 2, 4)


def test_train_on_a_memmap(tmp_path):
    path = tmp_path / "tokens.bin"
    DATA.numpy().astype(np.uint16).tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    a, b = _model(), _model()
    train(a, mm, config=_cfg(max_steps=3))
    train(b, DATA, config=_cfg(max_steps=3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_nan_weights_after_the_last_step_are_reported_without_checkpoints():
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    real_step = opt.step
    count = {"n": 0}

    def step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        count["n"] += 1
        if count["n"] == 3:                            # the last of three steps
            with torch.no_grad():
                model.wte.weight[0, 0] = float("inf")
        return out

    opt.step = step
    with pytest.raises(TrainingDiverged, match=r"weight wte.weight is inf .* step 3"):
        train(model, DATA, config=_cfg(max_steps=3, grad_clip=None), optimizer=opt)
