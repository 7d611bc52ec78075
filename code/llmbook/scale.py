"""The one knob that sets how big every experiment in the book is: ``LLMBOOK_SCALE``.

=========  ==================================================================
``ci``     seconds per notebook; only checks that the code runs (CI, tests)
``cpu``    what the published HTML is built at: meaningful results in a few
           minutes per notebook on a 2-core laptop
``gpu``    what a Colab T4 (or better) reader gets
=========  ==================================================================

Default: ``gpu`` when CUDA is available, else ``cpu``. Notebooks never branch on the
scale themselves; they ask :func:`pick` for a size::

    n_steps = pick(ci=20, cpu=2_000, gpu=10_000)
"""
from __future__ import annotations

import os
from typing import TypeVar

SCALES = ("ci", "cpu", "gpu")
ENV_VAR = "LLMBOOK_SCALE"

T = TypeVar("T")


def default_scale() -> str:
    """``gpu`` if a CUDA device is visible, else ``cpu``."""
    try:
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"


def current_scale() -> str:
    """The scale in force: ``$LLMBOOK_SCALE`` if set, else :func:`default_scale`."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return default_scale()
    if value not in SCALES:
        raise ValueError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a known scale; use one of {SCALES}"
        )
    return value


def pick(ci: T, cpu: T, gpu: T | None = None, *, scale: str | None = None) -> T:
    """Return the value for the current scale (``gpu`` falls back to ``cpu`` if omitted).

    >>> pick(ci=10, cpu=1000, scale="ci")
    10
    """
    scale = current_scale() if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {SCALES}")
    if scale == "ci":
        return ci
    if scale == "gpu" and gpu is not None:
        return gpu
    return cpu
