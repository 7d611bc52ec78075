"""A plain training loop for language models, readable top to bottom.

The pieces, each usable on its own:

- :func:`get_batch` — random contiguous blocks from a 1-D token tensor, as ``(x, y)``
  with ``y`` shifted one token to the left (the causal-LM objective);
- :func:`lr_at` — linear warmup, then cosine decay to ``min_lr`` (plot it!);
- :func:`make_optimizer` — AdamW with weight decay on matrices only (fused on CUDA);
- :func:`estimate_loss` — mean loss over a few batches in ``eval()`` mode;
- :func:`train` — the loop: gradient accumulation, autocast (bf16, or fp16 with a
  GradScaler), gradient clipping, periodic evaluation, tqdm progress, an optional
  safetensors checkpoint; it returns a :class:`History` of losses.

Any model works that is called as ``model(idx, targets) -> (logits, loss)`` with
``idx`` and ``targets`` of shape ``(B, T)``, like :class:`llmbook.models.GPT`.

The step itself never waits for the GPU: losses stay on the device in a preallocated
tensor and are read (one host–device sync) only every ``log_interval`` steps.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from llmbook.device import autocast, get_device, grad_scaler

__all__ = [
    "History",
    "TrainConfig",
    "estimate_loss",
    "get_batch",
    "lr_at",
    "make_optimizer",
    "train",
]


# ---------------------------------------------------------------------------- data
def _check_tokens(data: torch.Tensor, block_size: int, name: str = "data") -> None:
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D torch.Tensor of token ids, got {type(data).__name__}")
    if data.ndim != 1:
        raise ValueError(f"{name} must be 1-D (all tokens in a row), got shape {tuple(data.shape)}")
    if data.dtype.is_floating_point or data.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {data.dtype}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if data.numel() < block_size + 1:
        raise ValueError(f"{name} has {data.numel()} tokens, too few for one block of "
                         f"{block_size} (+1 for the shifted target)")


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None,
              device: str | torch.device | None = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` random contiguous blocks of ``block_size`` tokens.

    ``data`` is a 1-D integer tensor. Returns ``x, y``, both ``(B, T)`` int64 on
    ``device``. ``y`` is ``x`` shifted one token left (``y[:, t]`` is the token that
    follows ``x[:, t]`` in the text), so position ``t`` learns to predict token ``t + 1``.
    Pass a seeded ``torch.Generator`` for a repeatable stream of batches.
    """
    _check_tokens(data, block_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    starts = torch.randint(data.numel() - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    blocks = data[starts[:, None] + offsets].long()           # (B, T + 1)
    x, y = blocks[:, :-1], blocks[:, 1:]
    dev = get_device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        return (x.pin_memory().to(dev, non_blocking=True),
                y.pin_memory().to(dev, non_blocking=True))
    return x.to(dev), y.to(dev)


# ---------------------------------------------------------------------- schedule
def lr_at(step: int, max_lr: float, warmup_steps: int, max_steps: int,
          min_lr: float = 0.0) -> float:
    """Learning rate at ``step``: linear warmup to ``max_lr``, cosine decay to ``min_lr``.

    Steps count from 0. During warmup the rate is ``max_lr * (step + 1) / warmup_steps``;
    from ``warmup_steps`` to ``max_steps`` it follows half a cosine down to ``min_lr``;
    after ``max_steps`` it stays at ``min_lr``.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps < 0 or max_steps < 1 or warmup_steps > max_steps:
        raise ValueError(f"need 0 <= warmup_steps <= max_steps and max_steps >= 1, "
                         f"got warmup_steps={warmup_steps}, max_steps={max_steps}")
    if not 0.0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 <= min_lr <= max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


# --------------------------------------------------------------------- optimiser
def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1,
                   betas: tuple[float, float] = (0.9, 0.95),
                   device: str | torch.device | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only; biases and norms are not decayed.

    Uses the fused CUDA kernel when the parameters live on a GPU.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    on_cuda = params[0].device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=on_cuda or None)


# -------------------------------------------------------------------- evaluation
@torch.no_grad()
def estimate_loss(model: nn.Module, data: torch.Tensor, batch_size: int, block_size: int,
                  n_batches: int = 20, seed: int = 1234,
                  device: str | torch.device | None = None) -> float:
    """Mean loss of ``model`` over ``n_batches`` random batches of ``data``, in eval mode.

    The batches come from a generator seeded with ``seed``, so two calls (or two models)
    see the same text. The model's train/eval mode is restored afterwards.
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    device = _model_device(model) if device is None else get_device(device)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    for _ in range(n_batches):
        x, y = get_batch(data, batch_size, block_size, gen, device)
        with autocast(device):
            _, loss = model(x, y)
        total += loss.float()
    model.train(was_training)
    return (total / n_batches).item()


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError("the model has no parameters") from None


# -------------------------------------------------------------------------- loop
@dataclass
class TrainConfig:
    """Everything the loop needs to know; ``min_lr`` defaults to ``lr / 10``."""

    max_steps: int = 1000
    batch_size: int = 32
    block_size: int = 128
    lr: float = 1e-3
    min_lr: float | None = None
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    eval_interval: int = 200
    eval_batches: int = 20
    log_interval: int = 50
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "block_size", "grad_accum",
                     "eval_interval", "eval_batches", "log_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"TrainConfig.warmup_steps must be in [0, max_steps], "
                             f"got {self.warmup_steps}")
        if self.min_lr is None:
            self.min_lr = self.lr / 10


@dataclass
class History:
    """What :func:`train` returns: per-step training loss and learning rate, the
    periodic validation losses, and the wall-clock time in seconds."""

    train_loss: list[float] = field(default_factory=list)   # one per optimiser step
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    eval_train_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)


def train(model: nn.Module, train_data: torch.Tensor, val_data: torch.Tensor | None = None,
          config: TrainConfig | None = None, device: str | torch.device | None = None,
          optimizer: torch.optim.Optimizer | None = None,
          on_eval: Callable[[int, nn.Module], None] | None = None,
          checkpoint_dir: str | Path | None = None) -> History:
    """Train ``model`` on random blocks of ``train_data`` (1-D token ids); return a History.

    Each optimiser step sees ``batch_size * grad_accum`` blocks of ``block_size`` tokens.
    Every ``eval_interval`` steps (and at the end) the mean loss on ``val_data`` (and on
    ``train_data``) is recorded and ``on_eval(step, model)`` is called, e.g. to print a
    sample. ``optimizer`` defaults to :func:`make_optimizer`; the learning rate of every
    parameter group follows :func:`lr_at` (for a group with its own base ``"lr"`` the
    schedule is scaled by ``group_lr / config.lr``). With ``checkpoint_dir`` the final
    model is saved there with :func:`llmbook.checkpoint.save` (safetensors + JSON).
    """
    cfg = config or TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(cfg).__name__}")
    _check_tokens(train_data, cfg.block_size, "train_data")
    if val_data is not None:
        _check_tokens(val_data, cfg.block_size, "val_data")
    device = _model_device(model) if device is None else get_device(device)
    model.to(device)
    opt = optimizer or make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)
    base_lrs = [g.get("initial_lr", g["lr"]) for g in opt.param_groups]
    scaler = grad_scaler(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = torch.zeros(cfg.max_steps, device=device)        # stays on the device
    hist = History(config=asdict(cfg))
    bar = _progress(cfg)
    start = time.perf_counter()
    model.train()
    for step in range(cfg.max_steps):
        lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.max_steps, cfg.min_lr)
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = lr * base / cfg.lr
        hist.lr.append(lr)
        losses[step] = _accumulate_gradients(model, train_data, cfg, gen, device, scaler)
        _optimizer_step(model, opt, scaler, cfg.grad_clip)
        last = step == cfg.max_steps - 1
        if (step + 1) % cfg.log_interval == 0 or last:
            _report(bar, losses, step, cfg.log_interval, lr)   # the one sync
        if (step + 1) % cfg.eval_interval == 0 or last:
            _evaluate(model, train_data, val_data, cfg, device, step + 1, hist)
            if on_eval is not None:
                on_eval(step + 1, model)
            model.train()
    if bar is not None:
        bar.close()
    hist.train_loss = losses.tolist()
    hist.seconds = time.perf_counter() - start
    if checkpoint_dir is not None:
        from llmbook import checkpoint

        checkpoint.save(model, checkpoint_dir)
    return hist


def _accumulate_gradients(model: nn.Module, data: torch.Tensor, cfg: TrainConfig,
                          gen: torch.Generator, device: torch.device,
                          scaler: torch.amp.GradScaler) -> torch.Tensor:
    """Forward and backward over ``grad_accum`` micro-batches; returns the mean loss (0-d).

    Each micro-batch loss is divided by ``grad_accum`` so the summed gradient equals
    the gradient of the mean loss over the whole (large) batch.
    """
    total = torch.zeros((), device=device)
    for _ in range(cfg.grad_accum):
        x, y = get_batch(data, cfg.batch_size, cfg.block_size, gen, device)
        with autocast(device):
            _, loss = model(x, y)
        loss = loss / cfg.grad_accum
        scaler.scale(loss).backward()
        total += loss.detach().float()
    return total


def _optimizer_step(model: nn.Module, opt: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, grad_clip: float | None) -> None:
    if grad_clip is not None:
        scaler.unscale_(opt)                      # clip the true gradients, not scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)


def _evaluate(model: nn.Module, train_data: torch.Tensor, val_data: torch.Tensor | None,
              cfg: TrainConfig, device: torch.device, step: int, hist: History) -> None:
    hist.eval_steps.append(step)
    hist.eval_train_loss.append(estimate_loss(model, train_data, cfg.batch_size,
                                              cfg.block_size, cfg.eval_batches, device=device))
    if val_data is not None:
        hist.val_loss.append(estimate_loss(model, val_data, cfg.batch_size, cfg.block_size,
                                           cfg.eval_batches, device=device))


def _progress(cfg: TrainConfig):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.max_steps, desc="training", unit="step")


def _report(bar, losses: torch.Tensor, step: int, interval: int, lr: float) -> None:
    if bar is None:
        return
    first = max(0, step + 1 - interval)
    recent = losses[first:step + 1].mean().item()
    bar.set_postfix(loss=f"{recent:.3f}", lr=f"{lr:.2e}")
    bar.update(step + 1 - bar.n)
