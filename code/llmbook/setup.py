"""The first cell of every notebook calls :func:`start`: seeds, device, scale, plots."""
from __future__ import annotations

import os
import random
import re
import sys
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
    quiet_progress_bars()
    dev = get_device(device)
    scale = current_scale()
    try:
        from llmbook import viz

        viz.setup()
    except ImportError:  # viz needs matplotlib, a dependency; stay usable without it
        pass
    env = Env(device=dev, dtype=autocast_dtype(dev), scale=scale, seed=seed)
    if not quiet:
        print(banner(env))
    return env


def quiet_progress_bars() -> None:
    """No progress bars from Hugging Face libraries ("Loading weights" and downloads),
    and none from tqdm where ``TQDM_DISABLE=1`` (set by the book's builds).

    The Hugging Face switch is the ``HF_HUB_DISABLE_PROGRESS_BARS`` variable, read when
    ``transformers`` is imported; if it was imported already, its own switch is used.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:
        hf_logging.disable_progress_bar()
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true"):
        # the book's builds set TQDM_DISABLE; tqdm's text bars read it, its notebook
        # bars (widgets) do not: make them follow it too
        import functools

        from tqdm.notebook import tqdm_notebook

        if not isinstance(tqdm_notebook.__init__, functools.partialmethod):
            tqdm_notebook.__init__ = functools.partialmethod(tqdm_notebook.__init__,
                                                             disable=True)


def banner(env: Env) -> str:
    """The line :func:`start` prints: versions, device, precision, scale and seed."""
    import llmbook

    return (f"llmbook {llmbook.__version__} · torch {torch.__version__} · "
            f"{describe(env.device)} · scale {env.scale} (set LLMBOOK_SCALE=ci|cpu|gpu)"
            f" · seed {env.seed}")


BANNER_RE = re.compile(r"llmbook (?P<llmbook>\S+) · torch (?P<torch>\S+) · "
                       r"device (?P<device>.+?) · (?P<precision>[^·]+?) · "
                       r"scale (?P<scale>\w+)")


def parse_banner(text: str) -> dict[str, str] | None:
    """The fields of a :func:`banner` line found in ``text`` (None if there is none):
    ``llmbook``, ``torch``, ``device``, ``precision`` and ``scale``."""
    match = BANNER_RE.search(text)
    return match.groupdict() if match else None
