"""A mixture-of-experts feed-forward layer: a router sends each token to ``top_k`` of
``n_experts`` MLPs, so the parameters grow with ``n_experts`` while the compute per token
grows only with ``top_k``.

``MoE`` is a drop-in replacement for the ``MLP`` of a ``GPT`` block (``moe_gpt`` builds one
with every block's MLP replaced). The router is ``Linear(C, n_experts)``; its softmax is
kept for the ``top_k`` largest entries and, for ``top_k > 1``, renormalised over them
(GShard, Mixtral). With ``top_k = 1`` the chosen probability is used as it is (Switch
Transformer): renormalised it would always be 1 and the router would get no gradient
from the language-model loss. Each forward pass stores the Switch load-balancing loss
``n_experts * sum_e f_e * P_e`` in ``aux_loss`` (``f_e`` share of the routed tokens that
went to expert ``e``, ``P_e`` mean router probability of ``e``; 1.0 when balanced).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook._validate import positive_int
from llmbook.layers import MLP
from llmbook.models import GPT, GPTConfig

__all__ = ["MoE", "load_balancing_loss", "moe_gpt", "balance_loss", "count_params"]


def load_balancing_loss(probs: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Switch load-balancing loss ``E * sum_e f_e * P_e``, a scalar.

    ``probs (N, E)``: router softmax per token; ``chosen (N, k)`` int64: the experts each
    token was sent to. ``f_e`` = share of the ``N * k`` assignments that went to ``e``
    (no gradient), ``P_e`` = mean of ``probs[:, e]`` (carries the gradient).
    """
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise ValueError(f"probs must be an (N, E) tensor, got {_shape(probs)}")
    if (not isinstance(chosen, torch.Tensor) or chosen.dim() != 2
            or chosen.size(0) != probs.size(0)):
        raise ValueError(f"chosen must be an (N={probs.size(0)}, k) tensor of expert ids, "
                         f"got {_shape(chosen)}")
    n_experts = probs.size(1)
    counts = torch.bincount(chosen.reshape(-1), minlength=n_experts).to(probs.dtype)
    f = counts / chosen.numel()
    return n_experts * (f * probs.mean(0)).sum()


class MoE(nn.Module):
    """Top-k mixture of expert MLPs: ``(..., C) -> (..., C)``.

    ``n_experts`` MLPs ``Linear(C, hidden) -> activation -> Linear(hidden, C)`` and a
    router ``Linear(C, n_experts, bias=False)``. After a forward pass: ``aux_loss`` (the
    load-balancing loss, scalar), ``load (n_experts,)`` share of assignments per expert.
    """

    def __init__(self, n_embd: int, n_experts: int, top_k: int = 2, hidden: int | None = None,
                 bias: bool = True, activation: str = "gelu_tanh") -> None:
        super().__init__()
        positive_int("n_experts", n_experts)
        positive_int("top_k", top_k)
        if top_k > n_experts:
            raise ValueError(f"top_k must be at most n_experts={n_experts}, got {top_k}")
        self.n_embd, self.n_experts, self.top_k = n_embd, n_experts, top_k
        self.router = nn.Linear(n_embd, n_experts, bias=False)
        self.experts = nn.ModuleList(MLP(n_embd, hidden, bias=bias, activation=activation)
                                     for _ in range(n_experts))
        self.aux_loss: torch.Tensor | None = None
        self.load: torch.Tensor | None = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (N, C)`` -> ``probs (N, E)``, ``gates (N, k)``, ``chosen (N, k)``."""
        probs = F.softmax(self.router(x), dim=-1)
        top, chosen = probs.topk(self.top_k, dim=-1)
        gates = top / top.sum(-1, keepdim=True) if self.top_k > 1 else top
        return probs, gates, chosen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.size(-1) != self.n_embd:
            raise ValueError(f"MoE: x must have shape (..., C={self.n_embd}), got {_shape(x)}")
        flat = x.reshape(-1, self.n_embd)                                   # (N, C)
        probs, gates, chosen = self.route(flat)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (chosen == e).nonzero(as_tuple=True)   # tokens sent to e
            if rows.numel():
                out.index_add_(0, rows, gates[rows, slot, None] * expert(flat[rows]))
        self.aux_loss = load_balancing_loss(probs, chosen)
        self.load = torch.bincount(chosen.reshape(-1), minlength=self.n_experts
                                   ).float().div(chosen.numel()).detach()
        return out.reshape(x.shape)

    def dense_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same output computed densely: every expert on every token, weighted by a
        gate matrix that is zero outside the chosen experts (a reference, ``E`` times
        the compute)."""
        flat = x.reshape(-1, self.n_embd)
        _, gates, chosen = self.route(flat)
        weight = torch.zeros(flat.size(0), self.n_experts, dtype=flat.dtype, device=flat.device)
        weight = weight.scatter(1, chosen, gates)                          # (N, E)
        every = torch.stack([expert(flat) for expert in self.experts], 1)   # (N, E, C)
        return (weight[..., None] * every).sum(1).reshape(x.shape)


def moe_gpt(config: GPTConfig, n_experts: int, top_k: int = 2,
            expert_hidden: int | None = None) -> GPT:
    """A ``GPT`` whose every block has a ``MoE`` in place of its MLP (GELU MLP configs).

    Initialised as the GPT's own MLPs: ``N(0, 0.02)``, output projections
    ``N(0, 0.02 / sqrt(2 * n_layer))``, router ``N(0, 0.02)``.
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    if config.mlp != "gelu":
        raise ValueError(f"moe_gpt needs config.mlp='gelu', got {config.mlp!r}")
    model = GPT(config)
    std = 0.02 / math.sqrt(2 * config.n_layer)
    for block in model.blocks:
        block.mlp = MoE(config.n_embd, n_experts, top_k, expert_hidden, config.bias,
                        config.activation)
        for name, p in block.mlp.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, 0.0, std if name.endswith("proj.weight") else 0.02)
    return model


def balance_loss(model: nn.Module) -> torch.Tensor:
    """Mean ``aux_loss`` of the model's ``MoE`` layers after its last forward pass."""
    losses = [m.aux_loss for m in model.modules() if isinstance(m, MoE) and
              m.aux_loss is not None]
    if not losses:
        raise ValueError("balance_loss: the model has no MoE layer that has run forward")
    return torch.stack(losses).mean()


def count_params(model: nn.Module) -> tuple[int, int]:
    """``(total, active)`` parameters: ``active`` counts, in each ``MoE``, the router
    and ``top_k`` of its experts (those one token uses)."""
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for m in model.modules():
        if isinstance(m, MoE):
            per_expert = sum(p.numel() for p in m.experts[0].parameters())
            inactive += (m.n_experts - m.top_k) * per_expert
    return total, total - inactive


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__

