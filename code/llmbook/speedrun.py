"""Time to a target validation loss: the measurements of section 3.9 ("Training faster")
and of ``python -m llmbook.bench --speedrun``.

A :class:`Setup` is one training recipe (model flavour, optimiser, learning rates,
schedule, batch). :func:`race` trains several setups (and seeds) *interleaved*: each
advances ``eval_every`` steps in turn, so a busy shared machine slows them all alike. The
clock is the process CPU time of the training steps only (evaluation is not counted), the
steadier figure on a shared CPU; wall-clock time is kept too. Every evaluation scores the
*same* validation tokens (:func:`val_loss`, non-overlapping windows), and the time to the
target is interpolated between the two evaluations around the crossing.

``BASELINE`` is nanoGPT's default recipe at the book's tiny size: GPT-2 blocks (LayerNorm,
learned positions, GELU, biases, tied embeddings), AdamW at 6e-4 with betas (0.9, 0.95),
weight decay 0.1, gradient clipping at 1, a short warmup and cosine decay to a tenth.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from llmbook.models import GPT, GPTConfig
from llmbook.optim import Muon, muon_param_groups

__all__ = ["BASELINE", "BOOK", "SCHEDULES", "Setup", "Trace", "lr_factor", "make_model",
           "make_optimizer", "race", "summarise", "token_losses", "val_loss"]

SCHEDULES = ("cosine", "wsd")
Builder = Callable[["Setup", int, int], tuple[torch.nn.Module, torch.optim.Optimizer]]
OPTIMIZERS = ("adamw", "muon")


@dataclass(frozen=True)
class Setup:
    """One recipe. ``model``: ``GPTConfig`` keywords besides ``vocab_size``/``block_size``.

    ``optimizer``: ``"adamw"`` (all parameters at ``lr``) or ``"muon"`` (block matrices at
    ``muon_lr``, the rest AdamW at ``lr``). ``schedule``: ``"cosine"`` (warmup, cosine to
    ``lr / 10``) or ``"wsd"`` (warmup, constant, then linear to 0 over the last
    ``cooldown`` fraction of the steps). ``warmup``: fraction of the steps (at least one).
    """

    name: str = "baseline"
    model: dict = field(default_factory=lambda: {"n_layer": 4, "n_head": 4, "n_embd": 128})
    block_size: int = 128
    batch_size: int = 16
    optimizer: str = "adamw"
    lr: float = 6e-4
    muon_lr: float = 0.02
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    schedule: str = "cosine"
    warmup: float = 0.01
    cooldown: float = 0.5
    grad_clip: float | None = 1.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not one of {SCHEDULES}")
        for name in ("block_size", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not (0 <= self.warmup < 1 and 0 < self.cooldown <= 1):
            raise ValueError(f"need 0 <= warmup < 1 and 0 < cooldown <= 1, got "
                             f"warmup={self.warmup}, cooldown={self.cooldown}")

    def but(self, name: str, **changes) -> Setup:
        """A copy named ``name`` with ``changes``; ``model=`` entries are merged."""
        if "model" in changes:
            changes["model"] = {**self.model, **changes["model"]}
        return dataclasses.replace(self, name=name, **changes)


BASELINE = Setup()


def lr_factor(setup: Setup, step: int, max_steps: int) -> float:
    """Multiplier of the base learning rates at ``step`` (0-based) of ``max_steps``."""
    warm = max(1, round(setup.warmup * max_steps))
    if step < warm:
        return (step + 1) / warm
    if setup.schedule == "cosine":
        progress = min(1.0, (step - warm) / max(1, max_steps - warm))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    start = max_steps * (1 - setup.cooldown)
    if step < start:
        return 1.0
    return max(0.0, (max_steps - step) / max(1.0, max_steps - start))


def make_model(setup: Setup, vocab_size: int, seed: int = 0) -> GPT:
    """The setup's GPT, initialised from ``seed``."""
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=setup.block_size, dropout=0.0,
                         **setup.model))


def make_optimizer(setup: Setup, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (decay on matrices only, as ``llmbook.train``) or Muon + AdamW."""
    if setup.optimizer == "muon":
        return Muon(muon_param_groups(model, setup.muon_lr, setup.lr, setup.weight_decay,
                                      setup.betas))
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2],
               "weight_decay": setup.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=setup.lr, betas=setup.betas)


@torch.no_grad()
def token_losses(model: GPT, ids: torch.Tensor, block_size: int | None = None) -> torch.Tensor:
    """Cross-entropy (nats) of every token of ``ids[1:]`` given the ones before it.

    ``ids`` is 1-D; it is cut into non-overlapping windows of ``block_size`` inputs
    (default: the model's), so each token sees the earlier tokens of its window as
    context. Returns a float tensor of shape ``(len(ids) - 1,)``, aligned with ``ids[1:]``.
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or ids.numel() < 2:
        raise ValueError(f"ids must be a 1-D tensor of at least 2 token ids, got "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else ids!r}")
    T = block_size or model.config.block_size
    if not 1 <= T <= model.config.block_size:
        raise ValueError(f"block_size must be in [1, {model.config.block_size}], got {T}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, ids.numel() - 1, T):
        chunk = ids[start:start + T + 1].to(device)
        x, y = chunk[None, :-1].contiguous(), chunk[None, 1:].contiguous()
        logits, _ = model(x, y)                                 # full (1, T, V) logits
        out.append(F.cross_entropy(logits[0].float(), chunk[1:], reduction="none").cpu())
    model.train(was_training)
    return torch.cat(out)


def val_loss(model: GPT, ids: torch.Tensor, block_size: int | None = None) -> float:
    """Mean of :func:`token_losses`: nats per token on ``ids[1:]``."""
    return token_losses(model, ids, block_size).mean().item()


@dataclass
class Trace:
    """One training run: evaluations at ``steps`` with the CPU seconds, wall seconds and
    tokens spent on training so far, and the time to the target (None: not reached)."""

    name: str
    seed: int
    steps: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    target_cpu_s: float | None = None
    target_wall_s: float | None = None
    target_tokens: float | None = None

    def time_to(self, target: float) -> tuple[float, float, float] | None:
        """``(cpu_s, wall_s, tokens)`` at the first evaluation with a validation loss of
        at most ``target``, interpolated linearly from the evaluation before; None if
        never reached."""
        for i, v in enumerate(self.val):
            if v <= target:
                if i == 0:
                    return self.cpu_s[0], self.wall_s[0], float(self.tokens[0])
                hi = self.val[i - 1]
                f = (hi - target) / (hi - v) if hi > v else 1.0

                def at(xs: list) -> float:
                    return xs[i - 1] + f * (xs[i] - xs[i - 1])
                return at(self.cpu_s), at(self.wall_s), at(self.tokens)
        return None

    def _crossing(self, target: float) -> None:
        hit = self.time_to(target)
        if hit is not None:
            self.target_cpu_s, self.target_wall_s, self.target_tokens = hit


class _Runner:
    """A setup and seed in flight: model, optimiser, batch stream and clocks."""

    def __init__(self, setup: Setup, seed: int, vocab_size: int, max_steps: int,
                 build: Builder | None = None) -> None:
        self.setup, self.max_steps, self.step = setup, max_steps, 0
        if build is None:
            self.model = make_model(setup, vocab_size, seed)
            self.opt = make_optimizer(setup, self.model)
        else:
            self.model, self.opt = build(setup, vocab_size, seed)
        self.model.train()
        self.base = [g["lr"] for g in self.opt.param_groups]
        self.gen = torch.Generator().manual_seed(seed)
        self.trace = Trace(setup.name, seed)
        self.cpu = self.wall = 0.0

    def advance(self, data: torch.Tensor, n: int) -> None:
        s = self.setup
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        for _ in range(min(n, self.max_steps - self.step)):
            f = lr_factor(s, self.step, self.max_steps)
            for g, base in zip(self.opt.param_groups, self.base):
                g["lr"] = base * f
            starts = torch.randint(data.numel() - s.block_size, (s.batch_size,),
                                   generator=self.gen)
            blocks = data[starts[:, None] + torch.arange(s.block_size + 1)]
            x, y = blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous()
            _, loss = self.model(x, y)
            loss.backward()
            if s.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            self.step += 1
        self.cpu += time.process_time() - t_cpu
        self.wall += time.perf_counter() - t_wall

    def evaluate(self, val_ids: torch.Tensor, target: float | None) -> None:
        t = self.trace
        t.steps.append(self.step)
        t.cpu_s.append(self.cpu)
        t.wall_s.append(self.wall)
        t.tokens.append(self.step * self.setup.batch_size * self.setup.block_size)
        t.val.append(val_loss(self.model, val_ids, self.setup.block_size))
        if target is not None:
            t._crossing(target)


def race(setups: Sequence[Setup], train_ids: torch.Tensor, val_ids: torch.Tensor,
         vocab_size: int, max_steps: int, eval_every: int, target: float | None = None,
         seeds: Sequence[int] = (0,), stop_at_target: bool = True,
         builders: dict[str, Builder] | None = None) -> list[Trace]:
    """Train every setup with every seed, interleaved, for ``max_steps`` steps each.

    Every ``eval_every`` steps each run is scored on ``val_ids`` (1-D). With
    ``stop_at_target`` a run stops once its validation loss is at most ``target``.
    ``builders`` maps a setup's name to ``build(setup, vocab_size, seed) -> (model,
    optimizer)`` for a model from elsewhere (called as ``model(idx, targets) -> (logits,
    loss)``, with ``model.config.block_size``); the others use :func:`make_model` and
    :func:`make_optimizer`. Returns one :class:`Trace` per (seed, setup), seeds outermost.
    """
    if not setups:
        raise ValueError("race needs at least one setup")
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive int, got {eval_every!r}")
    builders = builders or {}
    runners = [_Runner(s, seed, vocab_size, max_steps, builders.get(s.name))
               for seed in seeds for s in setups]
    for r in runners:
        r.evaluate(val_ids, None)
    live = list(runners)
    while live:
        for r in live:
            r.advance(train_ids, eval_every)
            r.evaluate(val_ids, target)
        live = [r for r in live if r.step < max_steps
                and not (stop_at_target and r.trace.target_cpu_s is not None)]
    return [r.trace for r in runners]


def summarise(traces: Sequence[Trace], baseline: str | None = None,
              target: float | None = None) -> list[dict]:
    """One row per setup: median time (CPU s) and tokens to the target over seeds, the
    per-seed speed-up (baseline's time / this setup's time: median, min, max), and the
    median final loss.

    ``target`` (re)computes every trace's time to that loss first (:meth:`Trace.time_to`);
    by default the times recorded by :func:`race` are used. The speed-up pairs each
    seed's run with the baseline's run of the same seed; a setup that did not reach the
    target with every seed has ``None`` for its times.
    """
    if target is not None:
        for t in traces:
            t.target_cpu_s = t.target_wall_s = t.target_tokens = None
            t._crossing(target)
    names = list(dict.fromkeys(t.name for t in traces))
    baseline = names[0] if baseline is None else baseline
    base = {t.seed: t for t in traces if t.name == baseline}
    rows = []
    for name in names:
        runs = [t for t in traces if t.name == name]
        times = [t.target_cpu_s for t in runs]
        reached = all(x is not None for x in times)
        ratios = [base[t.seed].target_cpu_s / t.target_cpu_s for t in runs
                  if t.target_cpu_s and base.get(t.seed) and base[t.seed].target_cpu_s]
        rows.append({
            "setup": name, "seeds": len(runs), "reached": sum(x is not None for x in times),
            "cpu_s": statistics.median(times) if reached else None,
            "tokens": statistics.median(t.target_tokens for t in runs) if reached else None,
            "speedup": statistics.median(ratios) if reached and ratios else None,
            "speedup_min": min(ratios) if reached and ratios else None,
            "speedup_max": max(ratios) if reached and ratios else None,
            "final_val": statistics.median(t.val[-1] for t in runs),
        })
    return rows


# The recipe section 3.9 arrives at, every change together: Muon for the block matrices,
# a 6x higher AdamW rate for the rest, no weight decay, warmup-stable-decay to zero,
# RMSNorm, RoPE, ReLU², QK-norm, an untied head and zero-initialised projections.
BOOK = BASELINE.but("book recipe", optimizer="muon", lr=4e-3, muon_lr=0.02,
                    weight_decay=0.0, schedule="wsd", warmup=0.02,
                    model={"norm": "rmsnorm", "position": "rope", "activation": "relu2",
                           "qk_norm": True, "bias": False, "tie_embeddings": False,
                           "zero_init_proj": True})
