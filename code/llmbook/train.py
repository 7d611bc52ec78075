"""A plain training loop for language models, readable top to bottom.

The pieces, each usable on its own:

- :func:`get_batch` — random contiguous blocks from a 1-D token tensor, as ``(x, y)``
  with ``y`` shifted one token to the left (the causal-LM objective);
- :func:`lr_at` — linear warmup, then cosine decay to ``min_lr`` (plot it!);
- :func:`make_optimizer` — AdamW with weight decay on matrices only (fused on CUDA);
- :func:`estimate_loss` — mean loss over a few batches in ``eval()`` mode;
- :func:`train` — the loop: gradient accumulation, autocast (bf16, or fp16 with a
  GradScaler), gradient clipping, periodic evaluation, tqdm progress, optional
  safetensors checkpoints that it can resume from bit for bit; it returns a
  :class:`History` of losses.

Training that goes wrong stops loudly: a non-finite training loss, gradient norm,
validation loss or weight raises :class:`TrainingDiverged` naming the step and the
quantity, and a checkpoint is only ever replaced by one whose weights and losses are
finite. ``train(..., checkpoint_dir=d, checkpoint_interval=n)`` saves the model, the
optimiser state, the step, the loss history and the RNG states every ``n`` steps;
``train(..., resume_from=d)`` continues from there, and ends with the same weights, bit
for bit, as a run that was never interrupted (on the same machine and software).

Any model works that is called as ``model(idx, targets) -> (logits, loss)`` with
``idx`` and ``targets`` of shape ``(B, T)``, like :class:`llmbook.models.GPT`.

The step itself never waits for the GPU: losses stay on the device in a preallocated
tensor and are read (one host–device sync) only every ``log_interval`` steps.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llmbook._validate import boolean, finite, nonneg_int, positive_int
from llmbook.device import autocast, get_device, grad_scaler

__all__ = [
    "History",
    "TrainConfig",
    "TrainingDiverged",
    "estimate_loss",
    "get_batch",
    "lr_at",
    "make_optimizer",
    "train",
]


# ---------------------------------------------------------------------------- data
def _check_tokens(data: torch.Tensor | np.ndarray, block_size: int, name: str = "data") -> None:
    if not isinstance(data, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a 1-D torch.Tensor or NumPy array (a memmap is "
                        f"fine) of token ids, got {type(data).__name__}")
    if data.ndim != 1:
        raise ValueError(f"{name} must be 1-D (all tokens in a row), got shape {tuple(data.shape)}")
    integer = (not (data.dtype.is_floating_point or data.dtype.is_complex
                    or data.dtype == torch.bool) if isinstance(data, torch.Tensor)
               else np.issubdtype(data.dtype, np.integer))
    if not integer:
        raise TypeError(f"{name} must hold integer token ids, got dtype {data.dtype}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if len(data) < block_size + 1:
        raise ValueError(f"{name} has {len(data)} tokens, too few for one block of "
                         f"{block_size} (+1 for the shifted target)")


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None,
              device: str | torch.device | None = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` random contiguous blocks of ``block_size`` tokens.

    ``data`` is a 1-D integer tensor or NumPy array; a ``np.memmap`` of a token file
    (e.g. ``uint16``) is read only at the sampled blocks. Returns ``x, y``, both
    ``(B, T)`` int64 on ``device`` (the same blocks for a tensor and an array of the
    same tokens). ``y`` is ``x`` shifted one token left (``y[:, t]`` is the token that
    follows ``x[:, t]`` in the text), so position ``t`` learns to predict token ``t + 1``.
    Pass a seeded ``torch.Generator`` for a repeatable stream of batches.
    """
    _check_tokens(data, block_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    index = starts[:, None] + offsets                          # (B, T + 1)
    if isinstance(data, np.ndarray):
        blocks = torch.from_numpy(np.asarray(data[index.numpy()], dtype=np.int64))
    else:
        blocks = data[index].long()
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
            positive_int(f"TrainConfig.{name}", getattr(self, name))
        finite("TrainConfig.lr", self.lr, gt=0.0)
        if self.min_lr is not None:
            finite("TrainConfig.min_lr", self.min_lr, ge=0.0, le=self.lr)
        finite("TrainConfig.weight_decay", self.weight_decay, ge=0.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"TrainConfig.betas must be a pair (beta1, beta2), got "
                             f"{self.betas!r}")
        for i, beta in enumerate(self.betas):
            finite(f"TrainConfig.betas[{i}]", beta, ge=0.0, lt=1.0)
        self.betas = tuple(self.betas)
        if self.grad_clip is not None:
            finite("TrainConfig.grad_clip", self.grad_clip, gt=0.0)
        nonneg_int("TrainConfig.warmup_steps", self.warmup_steps)
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"TrainConfig.warmup_steps must be in [0, max_steps="
                             f"{self.max_steps}], got {self.warmup_steps}")
        nonneg_int("TrainConfig.seed", self.seed)
        boolean("TrainConfig.progress", self.progress)
        if self.min_lr is None:
            self.min_lr = self.lr / 10


class TrainingDiverged(FloatingPointError):
    """Training produced a NaN or an infinity; the message names the step and what."""


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
          checkpoint_dir: str | Path | None = None, checkpoint_interval: int | None = None,
          resume_from: str | Path | None = None) -> History:
    """Train ``model`` on random blocks of ``train_data`` (1-D token ids); return a History.

    Each optimiser step sees ``batch_size * grad_accum`` blocks of ``block_size`` tokens.
    Every ``eval_interval`` steps (and at the end) the mean loss on ``val_data`` (and on
    ``train_data``) is recorded and ``on_eval(step, model)`` is called, e.g. to print a
    sample. ``optimizer`` defaults to :func:`make_optimizer`; the learning rate of every
    parameter group follows :func:`lr_at` (for a group with its own base ``"lr"`` the
    schedule is scaled by ``group_lr / config.lr``).

    Checkpoints (``llmbook.checkpoint``, safetensors + JSON, atomic): with
    ``checkpoint_dir`` the model is saved there at the end and, with
    ``checkpoint_interval=n``, after every ``n`` steps, together with what resuming
    needs (optimiser and grad-scaler state, step, loss history, data and torch RNG
    states). ``resume_from`` (usually the same folder) loads all of that into ``model``
    and ``optimizer`` and continues at the saved step; the config must match the saved
    one (``progress`` and ``log_interval`` may differ). A resumed run ends bit-identical
    to an uninterrupted one.

    Raises :class:`TrainingDiverged` (naming the step and the quantity) as soon as the
    training loss, the gradient norm, a validation loss or, at a checkpoint, a weight is
    NaN or infinite; the last good checkpoint is never overwritten. On a GPU the loss is
    read every ``log_interval`` steps (no per-step sync), on the CPU every step.
    """
    cfg = config or TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(cfg).__name__}")
    _check_tokens(train_data, cfg.block_size, "train_data")
    if val_data is not None:
        _check_tokens(val_data, cfg.block_size, "val_data")
    if checkpoint_interval is not None:
        positive_int("checkpoint_interval", checkpoint_interval)
        if checkpoint_dir is None:
            raise ValueError("checkpoint_interval needs a checkpoint_dir to save into")
    device = _model_device(model) if device is None else get_device(device)
    model.to(device)
    opt = optimizer or make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)
    base_lrs = [g.get("initial_lr", g["lr"]) for g in opt.param_groups]
    scaler = grad_scaler(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = torch.zeros(cfg.max_steps, device=device)        # stays on the device
    norms = torch.zeros(cfg.max_steps, device=device)
    hist = History(config=asdict(cfg))
    first = 0
    if resume_from is not None:
        first, base_lrs = _resume(resume_from, model, opt, scaler, gen, cfg, hist, device)
        losses[:first] = torch.tensor(hist.train_loss[:first], device=device)
    watch = _Watch(losses, norms, check_norms=cfg.grad_clip is not None
                   and not scaler.is_enabled(), checkpoint_dir=checkpoint_dir, step=first)
    bar = _progress(cfg)
    start = time.perf_counter()
    model.train()
    every = 1 if device.type == "cpu" else cfg.log_interval
    for step in range(first, cfg.max_steps):
        lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.max_steps, cfg.min_lr)
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = lr * base / cfg.lr
        hist.lr.append(lr)
        losses[step] = _accumulate_gradients(model, train_data, cfg, gen, device, scaler)
        norms[step] = _optimizer_step(model, opt, scaler, cfg.grad_clip)
        last = step == cfg.max_steps - 1
        if (step + 1) % every == 0 or last:
            watch.check(step)                                  # the one sync
        if last:
            watch.check_weights(model, step + 1)
        if (step + 1) % cfg.log_interval == 0 or last:
            _report(bar, losses, step, cfg.log_interval, lr)
        if (step + 1) % cfg.eval_interval == 0 or last:
            _evaluate(model, train_data, val_data, cfg, device, step + 1, hist)
            watch.check_eval(step, hist)
            if on_eval is not None:
                on_eval(step + 1, model)
            model.train()
        if checkpoint_dir is not None and (last or (
                checkpoint_interval is not None and (step + 1) % checkpoint_interval == 0)):
            watch.check(step)
            hist.train_loss = losses[:step + 1].tolist()
            _save_checkpoint(checkpoint_dir, model, opt, scaler, gen, cfg, hist,
                             step + 1, base_lrs, watch)
    if bar is not None:
        bar.close()
    hist.train_loss = losses.tolist()
    hist.seconds += time.perf_counter() - start
    return hist


# ------------------------------------------------------------- divergence watch
class _Watch:
    """Finds the first non-finite training loss / gradient norm since the last check."""

    def __init__(self, losses: torch.Tensor, norms: torch.Tensor, check_norms: bool,
                 checkpoint_dir: str | Path | None, step: int) -> None:
        self.losses, self.norms, self.check_norms = losses, norms, check_norms
        self.checked = step                          # steps [0, checked) are known good
        self.checkpoint_dir, self.saved_step = checkpoint_dir, None

    def _stop(self, what: str, step: int, value: float) -> None:
        kept = ""
        if self.checkpoint_dir is not None:
            kept = (f"; the checkpoint in {self.checkpoint_dir} (step {self.saved_step}) is "
                    "kept" if self.saved_step is not None else
                    f"; nothing was saved to {self.checkpoint_dir}")
        raise TrainingDiverged(f"training stopped: the {what} is {value} (not finite) at "
                               f"step {step} (counting optimiser steps from 1){kept}. "
                               "Lower the learning rate, clip gradients, or check the data.")

    def check(self, step: int) -> None:
        lo, hi = self.checked, step + 1
        if hi <= lo:
            return
        series = [("training loss", self.losses)]
        if self.check_norms:
            series.append(("gradient norm", self.norms))
        for what, values in series:
            window = values[lo:hi]
            bad = ~torch.isfinite(window)
            if bool(bad.any()):
                i = int(bad.nonzero()[0])
                self._stop(what, lo + i + 1, float(window[i]))
        self.checked = hi

    def check_eval(self, step: int, hist: History) -> None:
        for what, values in (("validation loss", hist.val_loss),
                             ("evaluation loss on the training data", hist.eval_train_loss)):
            if values and not math.isfinite(values[-1]):
                self._stop(what, step + 1, values[-1])

    def check_weights(self, model: nn.Module, step: int) -> None:
        for name, p in model.named_parameters():
            p = p.detach()
            if not bool(torch.isfinite(p).all()):
                self._stop(f"weight {name}", step, float(p[~torch.isfinite(p)][0]))


# --------------------------------------------------------------- checkpoints
TRAIN_FORMAT = 1
_FREE_FIELDS = ("progress", "log_interval")      # may differ between a run and its resume


def _save_checkpoint(directory: str | Path, model: nn.Module, opt: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler, gen: torch.Generator, cfg: TrainConfig,
                     hist: History, step: int, base_lrs: list[float], watch: _Watch) -> None:
    from llmbook import checkpoint

    watch.check_weights(model, step)
    tensors: dict[str, torch.Tensor] = {"rng.data": gen.get_state(),
                                        "rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    opt_state = opt.state_dict()
    plain: dict[str, dict] = {}
    for index, values in opt_state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{index}.{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    state = {"train_format": TRAIN_FORMAT, "step": step, "config": asdict(cfg),
             "base_lrs": base_lrs, "param_groups": opt_state["param_groups"],
             "optimizer_plain_state": plain, "optimizer": type(opt).__name__,
             "scaler": scaler.state_dict() if scaler.is_enabled() else None,
             "history": {k: v for k, v in asdict(hist).items() if k != "config"}}
    checkpoint.save(model, directory, train_state=(state, tensors))
    watch.saved_step = step


def _resume(directory: str | Path, model: nn.Module, opt: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler, gen: torch.Generator, cfg: TrainConfig,
            hist: History, device: torch.device) -> tuple[int, list[float]]:
    """Load weights, optimiser, scaler, RNG states and history; return (step, base_lrs)."""
    from llmbook import checkpoint

    state, tensors = checkpoint.load_train_state(directory)
    if state.get("train_format") != TRAIN_FORMAT:
        raise ValueError(f"{directory}: training state format {state.get('train_format')!r}, "
                         f"this llmbook reads {TRAIN_FORMAT}")
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()}
    ours = asdict(cfg)
    diff = [f"{k}: saved {saved.get(k)!r}, now {ours[k]!r}" for k in ours
            if k not in _FREE_FIELDS and saved.get(k) != ours[k]]
    if diff:
        raise ValueError(f"cannot resume from {directory} with a different TrainConfig "
                         f"({'; '.join(diff)})")
    if state["optimizer"] != type(opt).__name__:
        raise ValueError(f"{directory} holds {state['optimizer']} state, but the optimizer "
                         f"is a {type(opt).__name__}")
    loaded = checkpoint.load(directory)
    if getattr(model, "config", None) != loaded.config:
        raise ValueError(f"{directory} holds a model with config {loaded.config}, which is "
                         f"not the model's {getattr(model, 'config', None)}")
    weights = loaded.state_dict()
    with torch.no_grad():
        for name, p in model.state_dict().items():
            p.copy_(weights[name])
    opt_state: dict = {"state": {}, "param_groups": state["param_groups"]}
    for key, t in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            opt_state["state"].setdefault(int(index), {})[name] = t
    for index, values in state["optimizer_plain_state"].items():
        opt_state["state"].setdefault(int(index), {}).update(values)
    opt.load_state_dict(opt_state)
    if state["scaler"] is not None and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    gen.set_state(tensors["rng.data"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())
            if f"rng.cuda.{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    for key, value in state["history"].items():
        setattr(hist, key, value)
    step = int(state["step"])
    if step >= cfg.max_steps:
        warnings.warn(f"{directory} is already at step {step} of {cfg.max_steps}: "
                      "nothing left to train", stacklevel=3)
    return step, list(state["base_lrs"])


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
                    scaler: torch.amp.GradScaler, grad_clip: float | None) -> torch.Tensor:
    """Clip (if asked), step, zero the gradients; returns the gradient norm (0 without
    clipping), a 0-d tensor on the device (no sync)."""
    norm = torch.zeros(())
    if grad_clip is not None:
        scaler.unscale_(opt)                      # clip the true gradients, not scaled ones
        norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    return norm


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
