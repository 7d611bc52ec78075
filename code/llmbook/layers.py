"""Per-token layers of a Transformer block: normalisation and feed-forward networks.

* ``LayerNorm`` (optional bias; GPT-2, BERT) and ``RMSNorm`` (Llama) over the last dim.
* ``MLP``: ``Linear(C, H) -> activation -> Linear(H, C)``; GELU with the tanh
  approximation by default, as GPT-2 (``"gelu"`` = exact erf GELU as BERT, ``"relu"``
  as the original Transformer).
* ``SwiGLU``: ``down(silu(gate(x)) * up(x))`` as Llama (Shazeer 2020).

All take ``x (..., C)`` and return ``(..., C)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmbook._validate import boolean, finite, positive_int

__all__ = ["ACTIVATIONS", "MLP", "LayerNorm", "RMSNorm", "SwiGLU", "make_norm"]

ACTIVATIONS = ("gelu_tanh", "gelu", "relu", "relu2")  # relu2: relu(x) ** 2


class LayerNorm(nn.Module):
    """LayerNorm over the last dim with an optional bias: ``(..., C) -> (..., C)``."""

    def __init__(self, ndim: int, bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        positive_int("ndim", ndim)
        boolean("bias", bias)
        self.eps = finite("eps", eps, gt=0.0)
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """Root-mean-square norm ``x / sqrt(mean(x^2) + eps) * weight``: ``(..., C) -> (..., C)``.

    No mean subtraction and no bias (Zhang & Sennrich 2019; Llama).
    """

    def __init__(self, ndim: int, eps: float = 1e-6) -> None:
        super().__init__()
        positive_int("ndim", ndim)
        self.eps = finite("eps", eps, gt=0.0)
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


def make_norm(kind: str, ndim: int, bias: bool, eps: float) -> nn.Module:
    """Build a norm by name: ``"layernorm"`` -> ``LayerNorm(ndim, bias, eps)``,
    ``"rmsnorm"`` -> ``RMSNorm(ndim, eps)``."""
    if kind == "layernorm":
        return LayerNorm(ndim, bias=bias, eps=eps)
    if kind == "rmsnorm":
        return RMSNorm(ndim, eps=eps)
    raise ValueError(f"unknown norm {kind!r}; use 'layernorm' or 'rmsnorm'")


def _check_width(x: torch.Tensor, C: int, who: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.size(-1) != C:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who}: x must have shape (..., C={C}), got {shape}")


def _check_sizes(n_embd: int, hidden: int | None, bias: bool, dropout: float) -> int:
    """Validate a feed-forward net's arguments; returns ``hidden`` (default ``4 * n_embd``)."""
    positive_int("n_embd", n_embd)
    boolean("bias", bias)
    finite("dropout", dropout, ge=0.0, lt=1.0)
    return 4 * n_embd if hidden is None else positive_int("hidden", hidden)


class MLP(nn.Module):
    """Position-wise feed-forward net ``proj(act(fc(x)))``: ``(..., C) -> (..., C)``.

    ``fc`` is ``Linear(C, hidden)``, ``proj`` is ``Linear(hidden, C)``; ``hidden``
    defaults to ``4 * C``. ``activation`` is one of ``ACTIVATIONS``.
    """

    def __init__(self, n_embd: int, hidden: int | None = None, bias: bool = True,
                 activation: str = "gelu_tanh", dropout: float = 0.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {ACTIVATIONS}")
        hidden = _check_sizes(n_embd, hidden, bias, dropout)
        self.activation = activation
        self.n_embd = n_embd      # fc may be wrapped (LoRA) by a module without in_features
        self.fc = nn.Linear(n_embd, hidden, bias=bias)
        self.proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_width(x, self.n_embd, "MLP")
        h = self.fc(x)
        if self.activation == "gelu_tanh":
            h = F.gelu(h, approximate="tanh")
        elif self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "relu2":
            h = F.relu(h).square()
        else:
            h = F.relu(h)
        return self.dropout(self.proj(h))


class SwiGLU(nn.Module):
    """Gated feed-forward net ``down(silu(gate(x)) * up(x))``: ``(..., C) -> (..., C)``.

    ``gate`` and ``up`` are ``Linear(C, hidden)``, ``down`` is ``Linear(hidden, C)``;
    named as Llama's ``gate_proj``/``up_proj``/``down_proj``. ``hidden`` defaults to
    ``4 * C`` (Llama uses about ``8/3 * C``; pass it explicitly).
    """

    def __init__(self, n_embd: int, hidden: int | None = None, bias: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        hidden = _check_sizes(n_embd, hidden, bias, dropout)
        self.n_embd = n_embd
        self.gate = nn.Linear(n_embd, hidden, bias=bias)
        self.up = nn.Linear(n_embd, hidden, bias=bias)
        self.down = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_width(x, self.n_embd, "SwiGLU")
        return self.dropout(self.down(F.silu(self.gate(x)) * self.up(x)))
