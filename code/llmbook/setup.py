"""The first cell of every notebook calls :func:`start`: seeds, device, scale, plots."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from llmbook.device import autocast_dtype, describe, get_device
from llmbook.scale import current_scale


@dataclass(frozen=True)
class Env:
    """What a notebook runs on: ``device``, autocast ``dtype`` (None = fp32), ``scale``."""

    device: torch.device
    dtype: torch.dtype | None
    scale: str
    seed: int


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so every run repeats."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def start(seed: int = 0, device: str | None = None, quiet: bool = False) -> Env:
    """Seed everything, pick the device, set up plotting and print a one-line banner.

    Returns an :class:`Env` with ``device``, ``dtype`` (autocast dtype or None) and ``scale``.
    """
    seed_everything(seed)
    dev = get_device(device)
    scale = current_scale()
    try:
        from llmbook import viz

        viz.setup()
    except ImportError:  # viz needs matplotlib, a dependency; stay usable without it
        pass
    env = Env(device=dev, dtype=autocast_dtype(dev), scale=scale, seed=seed)
    if not quiet:
        import llmbook

        print(f"llmbook {llmbook.__version__} · torch {torch.__version__} · {describe(dev)}"
              f" · scale {scale} (set LLMBOOK_SCALE=ci|cpu|gpu) · seed {seed}")
    return env
