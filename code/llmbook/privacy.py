"""Privacy in training: DP-SGD from scratch, its accountant, and canary exposure.

- :func:`per_example_grads`: the gradient of every example of a batch separately, with
  ``torch.func`` (``vmap`` over ``grad`` of a functional call of the model);
- :func:`clip_and_noise`: DP-SGD's aggregation (Abadi et al. 2016): clip each example's
  gradient to L2 norm ``max_norm``, sum, add Gaussian noise of standard deviation
  ``noise_multiplier · max_norm``, divide by the expected batch size;
- :func:`dp_sgd_step`: one step with Poisson-sampled batches;
- :func:`rdp_sampled_gaussian` and :func:`epsilon`: the Rényi-DP accountant of the
  sampled Gaussian mechanism (Mironov et al. 2019) at integer orders, and its conversion
  to ``(ε, δ)`` (Balle et al. 2020, the conversion Opacus uses);
- :func:`exposure`: Carlini et al.'s (2019) exposure of a canary among its candidates.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from llmbook._validate import finite, positive_int

__all__ = [
    "DEFAULT_ORDERS",
    "clip_and_noise",
    "dp_sgd_step",
    "epsilon",
    "exposure",
    "per_example_grads",
    "poisson_batch",
    "rdp_sampled_gaussian",
]

DEFAULT_ORDERS: tuple[int, ...] = tuple(range(2, 257))


def per_example_grads(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                                                          torch.Tensor],
                      x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradient of ``loss_fn(model(x_i), y_i)`` for each example ``i`` separately.

    ``x (B, ...)``, ``y (B, ...)``; ``loss_fn(logits, targets)`` must reduce to a scalar
    (for one example it sees a batch of one). Returns ``{name: (B, *param.shape)}`` for
    every parameter with ``requires_grad``. Buffers are used as they are (no batch norm).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError("x and y must be tensors")
    if x.dim() == 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same number B >= 1 of examples, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def one(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    return vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)


def clip_and_noise(grads: dict[str, torch.Tensor], max_norm: float, noise_multiplier: float,
                   expected_batch_size: float, generator: torch.Generator | None = None
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """DP-SGD's noisy mean of per-example gradients ``{name: (B, ...)}``.

    Each example's gradient (all parameters together, one vector) is scaled to L2 norm at
    most ``max_norm``; the clipped gradients are summed, Gaussian noise with standard
    deviation ``noise_multiplier · max_norm`` is added to every coordinate, and the sum
    is divided by ``expected_batch_size`` (with Poisson sampling the batch size itself
    would leak). Returns ``({name: param.shape}, per-example norms (B,))``.
    """
    max_norm = finite("max_norm", max_norm, gt=0)
    noise_multiplier = finite("noise_multiplier", noise_multiplier, ge=0)
    expected_batch_size = finite("expected_batch_size", expected_batch_size, gt=0)
    if not grads:
        raise ValueError("grads must hold at least one parameter's per-example gradients")
    sizes = {g.shape[0] for g in grads.values()}
    if len(sizes) != 1:
        raise ValueError(f"every entry of grads must have the same batch size, got {sizes}")
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))   # (B,)
    factor = (max_norm / (norms + 1e-6)).clamp(max=1.0)                           # (B,)
    out = {}
    for name, g in grads.items():
        total = torch.einsum("b,b...->...", factor, g)
        if noise_multiplier > 0:
            total = total + noise_multiplier * max_norm * torch.randn(
                total.shape, generator=generator, dtype=total.dtype).to(total.device)
        out[name] = total / expected_batch_size
    return out, norms


def poisson_batch(n: int, q: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each of ``n`` examples is in it with
    probability ``q`` independently (the sampling the accountant assumes). ``(b,)`` int64."""
    n = positive_int("n", n)
    q = finite("q", q, gt=0, le=1)
    return torch.nonzero(torch.rand(n, generator=generator) < q).flatten()


def dp_sgd_step(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
                max_norm: float, noise_multiplier: float, expected_batch_size: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One DP-SGD step on the batch ``(x, y)``: per-example gradients, clipping, noise,
    then ``optimizer.step()`` with the noisy mean in ``.grad``. An empty batch (possible
    with Poisson sampling) still adds the noise. Returns the per-example norms ``(B,)``."""
    params = {k: v for k, v in model.named_parameters() if v.requires_grad}
    if len(x) == 0:
        grads = {k: torch.zeros((0, *v.shape), dtype=v.dtype, device=v.device)
                 for k, v in params.items()}
    else:
        grads = per_example_grads(model, loss_fn, x, y)
    noisy, norms = clip_and_noise(grads, max_norm, noise_multiplier, expected_batch_size,
                                  generator)
    for k, p in params.items():
        p.grad = noisy[k].to(p.dtype)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norms


def _log_add(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi if lo == -math.inf else hi + math.log1p(math.exp(lo - hi))


def rdp_sampled_gaussian(q: float, noise_multiplier: float, steps: int,
                         orders: Sequence[int] = DEFAULT_ORDERS) -> np.ndarray:
    """Rényi-DP of ``steps`` compositions of the sampled Gaussian mechanism, per order.

    For an integer order ``α ≥ 2``, sampling rate ``q`` and noise multiplier ``σ``
    (Mironov, Talwar & Zhang 2019, section 3.3):

        A_α = Σ_{k=0}^{α} C(α, k) (1 − q)^{α−k} q^k exp((k² − k) / (2σ²)),
        RDP(α) = steps · log(A_α) / (α − 1),

    computed in log space. Returns ``(len(orders),)`` float64.
    """
    q = finite("q", q, gt=0, le=1)
    sigma = finite("noise_multiplier", noise_multiplier, gt=0)
    steps = positive_int("steps", steps)
    out = []
    for a in orders:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 2:
            raise ValueError(f"orders must be integers >= 2, got {a!r}")
        a = int(a)
        if q == 1.0:
            out.append(a / (2 * sigma ** 2))
            continue
        log_a = -math.inf
        for k in range(a + 1):
            term = (math.lgamma(a + 1) - math.lgamma(k + 1) - math.lgamma(a - k + 1)
                    + k * math.log(q) + (a - k) * math.log1p(-q)
                    + (k * k - k) / (2 * sigma ** 2))
            log_a = _log_add(log_a, term)
        out.append(log_a / (a - 1))
    return steps * np.array(out, dtype=np.float64)


def epsilon(q: float, noise_multiplier: float, steps: int, delta: float,
            orders: Sequence[int] = DEFAULT_ORDERS) -> float:
    """The ``ε`` of ``(ε, δ)``-DP after ``steps`` DP-SGD steps at sampling rate ``q``.

    RDP at each order converted with Balle et al. (2020, theorem 21),
    ``ε = RDP(α) + log((α − 1)/α) − (log δ + log α)/(α − 1)``, minimised over the orders.
    """
    delta = finite("delta", delta, gt=0, lt=1)
    rdp = rdp_sampled_gaussian(q, noise_multiplier, steps, orders)
    a = np.asarray(orders, dtype=np.float64)
    eps = rdp + np.log((a - 1) / a) - (math.log(delta) + np.log(a)) / (a - 1)
    return float(max(eps.min(), 0.0))


def exposure(canary_logprob: float, candidate_logprobs: torch.Tensor | np.ndarray) -> float:
    """Exposure of a canary (Carlini et al. 2019): ``log2 |R| − log2 rank``.

    ``candidate_logprobs (|R|,)`` are the model's log-probabilities of every candidate
    secret, the canary's own included; ``rank`` is 1 + the number of candidates scored
    strictly higher than the canary (ties count in the canary's favour). The largest
    exposure, ``log2 |R|``, means the canary is the model's first choice; a secret the
    model never saw has exposure about ``1/ln 2 ≈ 1.44`` bits on average.
    """
    scores = torch.as_tensor(candidate_logprobs, dtype=torch.float64).flatten()
    if scores.numel() == 0:
        raise ValueError("candidate_logprobs must hold at least one candidate")
    c = finite("canary_logprob", canary_logprob)
    if not bool((scores == c).any()):
        raise ValueError("candidate_logprobs must include the canary's own log-probability "
                         f"{c!r}: exposure ranks the canary among all candidates")
    rank = 1 + int((scores > c).sum())
    return math.log2(scores.numel()) - math.log2(rank)
