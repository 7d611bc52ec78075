"""Muon: momentum, then orthogonalise the update of every weight matrix.

For a weight matrix ``W (m, n)`` with gradient ``G``, Muon keeps a momentum buffer
``M <- mu M + (1 - mu) G`` (Nesterov: the update is ``G + mu (M - G)``) and replaces the
update by the nearest semi-orthogonal matrix ``U V^T`` (``U S V^T`` is its SVD): every
direction the gradient moves in gets the same step size, however small its singular
value. An SVD per step is slow, so :func:`newton_schulz` approximates ``U V^T`` with five
matrix-polynomial iterations ``X <- a X + (b A + c A^2) X``, ``A = X X^T``, whose
coefficients push every singular value of ``X`` into roughly ``[0.7, 1.2]``.

Muon is for the 2-D hidden matrices only. Embeddings, the output head, biases and norm
gains keep AdamW: :class:`Muon` takes parameter groups with ``"muon": False`` and updates
those with AdamW, so one optimizer (one learning-rate schedule) drives the whole model.
:func:`muon_param_groups` splits a GPT's parameters that way.

The defaults follow ``torch.optim.Muon`` (same coefficients, Nesterov momentum 0.95, the
``sqrt(max(1, m / n))`` learning-rate scale), which the tests check this against.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["NS_COEFFICIENTS", "Muon", "muon_param_groups", "newton_schulz"]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR = ("original", "match_rms_adamw", "none")


def newton_schulz(G: torch.Tensor, steps: int = 5,
                  coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  eps: float = 1e-7, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Approximately orthogonalise ``G (m, n)``: about ``U V^T`` where ``G = U S V^T``.

    Works on the wide orientation (``m <= n``, transposing if needed) so that the Gram
    matrix ``X X^T`` is the small one, in ``dtype`` (bf16 by default, like the reference;
    pass ``torch.float32`` for a slower, more exact result). Returns ``(m, n)`` in ``dtype``.
    """
    if not isinstance(G, torch.Tensor) or G.ndim != 2:
        shape = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
        raise ValueError(f"newton_schulz needs a 2-D matrix G, got {shape}")
    if not isinstance(steps, int) or not 0 <= steps < 100:
        raise ValueError(f"steps must be an int in [0, 100), got {steps!r}")
    a, b, c = coefficients
    X = G.to(dtype)
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T
    X = X / X.norm().clamp(min=eps)          # Frobenius norm >= spectral norm: sigma <= 1
    for _ in range(steps):
        A = X @ X.T                                          # (m, m)
        B = torch.addmm(A, A, A, beta=b, alpha=c)            # b A + c A^2
        X = torch.addmm(X, B, X, beta=a)                     # a X + B X
    return X.T if tall else X


def _lr_scale(shape: torch.Size, adjust_lr: str) -> float:
    rows, cols = shape[0], shape[1]
    if adjust_lr == "original":
        return math.sqrt(max(1.0, rows / cols))
    if adjust_lr == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


class Muon(torch.optim.Optimizer):
    """Muon for 2-D matrices, AdamW for parameter groups marked ``"muon": False``.

    Muon groups: ``lr``, ``momentum`` (0.95), ``nesterov`` (True), ``weight_decay``
    (decoupled, ``W <- W (1 - lr wd)``), ``ns_steps`` (5), ``adjust_lr`` (``"original"``:
    ``lr * sqrt(max(1, m/n))``; ``"match_rms_adamw"``: ``0.2 sqrt(max(m, n))``, so the
    update has AdamW's typical RMS; ``"none"``), ``ns_dtype`` (bf16).
    AdamW groups: ``lr``, ``betas`` ((0.9, 0.95)), ``eps`` (1e-8), ``weight_decay``.

    Example::

        opt = Muon(muon_param_groups(model, muon_lr=0.02, adam_lr=3e-3))
    """

    def __init__(self, params: Iterable, lr: float = 0.02, momentum: float = 0.95,
                 nesterov: bool = True, weight_decay: float = 0.0, ns_steps: int = 5,
                 adjust_lr: str = "original", ns_dtype: torch.dtype = torch.bfloat16,
                 betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if adjust_lr not in ADJUST_LR:
            raise ValueError(f"adjust_lr={adjust_lr!r} is not one of {ADJUST_LR}")
        defaults = {"lr": lr, "momentum": momentum, "nesterov": nesterov,
                    "weight_decay": weight_decay, "ns_steps": ns_steps,
                    "adjust_lr": adjust_lr, "ns_dtype": ns_dtype, "betas": betas,
                    "eps": eps, "muon": True}
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["muon"]:
                for p in group["params"]:
                    if p.ndim != 2:
                        raise ValueError(f"Muon updates 2-D matrices only, got a parameter "
                                         f"of shape {tuple(p.shape)}; put it in a group "
                                         "with 'muon': False (AdamW)")

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 (torch's signature)
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update = self._muon if group["muon"] else self._adamw
            for p in group["params"]:
                if p.grad is not None:
                    update(p, group)
        return loss

    def _muon(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf, grad, mu = state["momentum_buffer"], p.grad, group["momentum"]
        buf.lerp_(grad, 1 - mu)                              # M <- mu M + (1 - mu) G
        g = grad.lerp(buf, mu) if group["nesterov"] else buf
        u = newton_schulz(g, group["ns_steps"], dtype=group["ns_dtype"])
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(u.to(p.dtype), alpha=-group["lr"] * _lr_scale(p.shape, group["adjust_lr"]))

    def _adamw(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t, (b1, b2) = state["step"], group["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(p.grad, 1 - b1)
        v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
        step_size = group["lr"] / (1 - b1 ** t)
        denom = (v / (1 - b2 ** t)).sqrt_().add_(group["eps"])
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.addcdiv_(m, denom, value=-step_size)


def muon_param_groups(model: nn.Module, muon_lr: float = 0.02, adam_lr: float = 3e-3,
                      weight_decay: float = 0.0,
                      adam_betas: tuple[float, float] = (0.9, 0.95)) -> list[dict]:
    """Split ``model``'s trainable parameters for :class:`Muon`.

    Muon: the 2-D weights inside the Transformer blocks (attention and MLP matrices).
    AdamW (``"muon": False``): embeddings, the LM head, biases and norm gains; matrices
    (embeddings, head) get ``weight_decay``, vectors none.
    """
    muon, adam_decay, adam_plain = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim == 2 and name.startswith("blocks."):
            muon.append(p)
        elif p.ndim >= 2:
            adam_decay.append(p)
        else:
            adam_plain.append(p)
    if not muon:
        raise ValueError("no 2-D block weights for Muon: expected parameters named "
                         "'blocks.<i>....weight' (an llmbook GPT)")
    groups = [{"params": muon, "lr": muon_lr, "weight_decay": weight_decay, "muon": True},
              {"params": adam_decay, "lr": adam_lr, "weight_decay": weight_decay,
               "betas": adam_betas, "muon": False},
              {"params": adam_plain, "lr": adam_lr, "weight_decay": 0.0,
               "betas": adam_betas, "muon": False}]
    return [g for g in groups if g["params"]]
