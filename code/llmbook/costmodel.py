"""What serving a language model costs: renting GPUs against paying an API per token.

Every price is an argument: nothing here knows what a GPU-hour or a million tokens
costs, because those prices change monthly and differ by provider, region and contract.
The unit of volume is **generated tokens per month**; prompts enter through the price
per generated token of the API (:func:`api_price_per_million`, which charges the prompt
tokens that come with each generated token) and through the measured throughput of the
self-hosted model (prompts are read as part of the work timed).

* API: ``cost = tokens / 1e6 * price_per_million`` (linear, nothing fixed).
* Self-hosting on GPUs rented for the whole month: each GPU serves at most
  ``tokens_per_s * 3600 * hours_per_month * utilisation`` tokens a month, as many GPUs
  as the volume needs are rented (at least one), ``cost = n_gpus * hours_per_month *
  gpu_hour_price + fixed_per_month`` (a step function of the volume; ``fixed`` is
  whatever else you pay each month: engineering time, storage, monitoring).
  ``utilisation`` is the fraction of its throughput a machine can really be kept busy
  with (load varies over the day; latency targets cap the batch): a rented hour costs
  the same busy or idle, so the price per token is ``1 / utilisation`` times that of a
  machine busy all the time.

:func:`break_even_tokens` is the smallest monthly volume at which self-hosting costs
no more than the API, or ``math.inf`` when it never does.
"""
from __future__ import annotations

import math

import numpy as np

from llmbook._validate import finite

__all__ = ["api_cost", "api_price_per_million", "break_even_tokens", "gpus_needed",
           "self_host_cost", "self_host_price_per_million"]

HOURS_PER_MONTH = 730.0      # 365 * 24 / 12


def api_price_per_million(price_in: float, price_out: float,
                          input_per_output: float) -> float:
    """The API's price per million **generated** tokens when each generated token comes
    with ``input_per_output`` prompt tokens: ``price_out + input_per_output * price_in``
    (prices per million input / output tokens)."""
    finite("price_in", price_in, ge=0.0)
    finite("price_out", price_out, ge=0.0)
    finite("input_per_output", input_per_output, ge=0.0)
    return price_out + input_per_output * price_in


def api_cost(tokens: float | np.ndarray, price_per_million: float) -> float | np.ndarray:
    """Monthly API bill for ``tokens`` generated tokens (a number or an array)."""
    finite("price_per_million", price_per_million, ge=0.0)
    _check_volume(tokens)
    if isinstance(tokens, np.ndarray):
        return tokens.astype(float) / 1e6 * price_per_million
    return tokens / 1e6 * price_per_million


def self_host_price_per_million(tokens_per_s: float, gpu_hour_price: float,
                                utilisation: float = 1.0) -> float:
    """What a million generated tokens cost on a rented GPU that serves ``tokens_per_s``
    when busy and is busy a fraction ``utilisation`` of the time."""
    finite("tokens_per_s", tokens_per_s, gt=0.0)
    finite("gpu_hour_price", gpu_hour_price, ge=0.0)
    finite("utilisation", utilisation, gt=0.0, le=1.0)
    return gpu_hour_price / (tokens_per_s * 3600 * utilisation) * 1e6


def gpus_needed(tokens: float | np.ndarray, tokens_per_s: float, utilisation: float = 1.0,
                hours_per_month: float = HOURS_PER_MONTH) -> int | np.ndarray:
    """GPUs to rent (at least one) to generate ``tokens`` a month."""
    finite("tokens_per_s", tokens_per_s, gt=0.0)
    finite("utilisation", utilisation, gt=0.0, le=1.0)
    finite("hours_per_month", hours_per_month, gt=0.0)
    _check_volume(tokens)
    per_gpu = tokens_per_s * 3600 * hours_per_month * utilisation
    n = np.maximum(1, np.ceil(np.asarray(tokens, dtype=float) / per_gpu))
    return n.astype(int) if isinstance(tokens, np.ndarray) else int(n)


def self_host_cost(tokens: float | np.ndarray, tokens_per_s: float, gpu_hour_price: float,
                   utilisation: float = 1.0, hours_per_month: float = HOURS_PER_MONTH,
                   fixed_per_month: float = 0.0) -> float | np.ndarray:
    """Monthly cost of generating ``tokens`` on GPUs rented all month (see the module)."""
    finite("gpu_hour_price", gpu_hour_price, ge=0.0)
    finite("fixed_per_month", fixed_per_month, ge=0.0)
    n = gpus_needed(tokens, tokens_per_s, utilisation, hours_per_month)
    return n * hours_per_month * gpu_hour_price + fixed_per_month


def break_even_tokens(price_per_million: float, tokens_per_s: float, gpu_hour_price: float,
                      utilisation: float = 1.0, hours_per_month: float = HOURS_PER_MONTH,
                      fixed_per_month: float = 0.0) -> float:
    """The smallest monthly volume (generated tokens) at which self-hosting costs no more
    than the API; ``math.inf`` if it never does.

    With ``n`` GPUs self-hosting costs ``C_n = n h g + F`` up to ``n`` GPUs' capacity
    ``n c``; the API costs ``V p / 1e6``. The first volume where the API reaches
    ``C_n`` inside that range needs ``n (c p / 1e6 - h g) >= F``: the smallest such
    ``n`` (at least 1) gives ``V = C_n 1e6 / p``. If a GPU's month costs at least what
    the API charges for its capacity, self-hosting never wins.
    """
    finite("price_per_million", price_per_million, ge=0.0)
    finite("gpu_hour_price", gpu_hour_price, ge=0.0)
    finite("fixed_per_month", fixed_per_month, ge=0.0)
    finite("tokens_per_s", tokens_per_s, gt=0.0)
    finite("utilisation", utilisation, gt=0.0, le=1.0)
    finite("hours_per_month", hours_per_month, gt=0.0)
    capacity = tokens_per_s * 3600 * hours_per_month * utilisation
    gpu_month = hours_per_month * gpu_hour_price
    margin = capacity * price_per_million / 1e6 - gpu_month    # API bill minus rent, per GPU
    if margin <= 0:
        return 0.0 if margin == 0 and gpu_month == 0 and fixed_per_month == 0 else math.inf
    n = max(1, math.ceil(fixed_per_month / margin - 1e-12))
    while n * margin < fixed_per_month:                         # floating-point guard
        n += 1
    return (n * gpu_month + fixed_per_month) * 1e6 / price_per_million


def _check_volume(tokens: object) -> None:
    if isinstance(tokens, np.ndarray):
        if not np.isfinite(tokens).all() or (tokens < 0).any():
            raise ValueError("tokens must be finite numbers >= 0 (generated tokens a month)")
    else:
        finite("tokens", tokens, ge=0.0)
