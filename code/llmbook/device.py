"""Pick the device (cuda > mps > cpu) and the mixed-precision recipe that suits it.

=====================  =====================================================
device                 recipe
=====================  =====================================================
CUDA with bf16         ``torch.autocast(dtype=torch.bfloat16)``, no scaler
CUDA without bf16      ``torch.autocast(dtype=torch.float16)`` + GradScaler
(e.g. a Colab T4)
MPS, CPU               plain fp32 (autocast off)
=====================  =====================================================
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

KNOWN_TYPES = ("cuda", "mps", "cpu")


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return ``prefer`` if given (checked), else the best available: cuda > mps > cpu."""
    if prefer is not None:
        if not isinstance(prefer, (str, torch.device)):
            raise TypeError(f"device must be a str or torch.device, got {type(prefer).__name__}")
        try:
            dev = torch.device(prefer)
        except RuntimeError:
            raise ValueError(f"unknown device {prefer!r}; use one of {KNOWN_TYPES}") from None
        if dev.type not in KNOWN_TYPES:
            raise ValueError(f"unknown device {str(prefer)!r}; use one of {KNOWN_TYPES}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but CUDA is not available here")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("device 'mps' was asked for but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _as_device(device: str | torch.device | None) -> torch.device:
    return get_device() if device is None else get_device(device)


def autocast_dtype(device: str | torch.device | None = None) -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 or fp16 on CUDA, ``None`` (fp32) elsewhere."""
    dev = _as_device(device)
    if dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: str | torch.device | None = None) -> ContextManager:
    """A context manager running the forward pass in the device's mixed precision."""
    dev = _as_device(device)
    dtype = autocast_dtype(dev)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=dtype)


def grad_scaler(device: str | torch.device | None = None) -> torch.amp.GradScaler:
    """A GradScaler, enabled only when autocast runs in fp16 (where gradients can underflow)."""
    dev = _as_device(device)
    return torch.amp.GradScaler(dev.type, enabled=autocast_dtype(dev) == torch.float16)


def describe(device: str | torch.device | None = None) -> str:
    """One line naming the device (with the GPU's name) and the precision used on it."""
    dev = _as_device(device)
    dtype = autocast_dtype(dev)
    name = dev.type
    if dev.type == "cuda":
        name = f"cuda ({torch.cuda.get_device_name(dev)})"
    precision = "fp32" if dtype is None else f"autocast {str(dtype).replace('torch.', '')}"
    if dtype == torch.float16:
        precision += " + GradScaler"
    return f"device {name} · {precision}"
