"""Argument checks shared by the package, so every public function fails the same way.

Each helper raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) with a message that names the argument, shows the value and says what was
expected, e.g. ``"TrainConfig.lr must be a finite number > 0, got inf"``. They return
the checked value, so a check reads as an assignment: ``eps = finite("eps", eps, gt=0)``.
"""
from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "boolean",
    "finite",
    "float_tensor",
    "int_tensor",
    "nonneg_int",
    "positive_int",
    "shape_str",
]


def shape_str(x: Any) -> str:
    """``(2, 3)`` for a tensor or array, else the type name (for error messages)."""
    shape = getattr(x, "shape", None)
    return str(tuple(shape)) if shape is not None else type(x).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (a bool is not an int here)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def nonneg_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (the string ``"False"`` is not)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} "
                        f"({type(value).__name__})")
    return value


def finite(name: str, value: Any, *, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None) -> float:
    """``float(value)`` if it is a real number, finite, and within the given bounds.

    ``gt``/``ge`` are lower bounds (strict / inclusive), ``lt``/``le`` upper bounds.
    NaN and infinities are always rejected.
    """
    bounds = [f"{op} {b}" for op, b in ((">", gt), (">=", ge), ("<", lt), ("<=", le))
              if b is not None]
    want = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if not (isinstance(value, torch.Tensor) and value.numel() == 1):
            raise TypeError(f"{name} must be {want}, got {value!r} ({type(value).__name__})")
        value = value.item()
    v = float(value)
    ok = math.isfinite(v)
    ok = ok and (gt is None or v > gt) and (ge is None or v >= ge)
    ok = ok and (lt is None or v < lt) and (le is None or v <= le)
    if not ok:
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return v


def float_tensor(name: str, x: Any, ndim: int | tuple[int, ...] | None = None,
                 layout: str = "") -> torch.Tensor:
    """``x`` if it is a floating-point tensor (of ``ndim`` dims, if given).

    ``layout`` (e.g. ``"(B, T, C)"``) is quoted in the error message.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a float tensor {layout}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor {layout}, got dtype {x.dtype}")
    _check_ndim(name, x, ndim, layout)
    return x


def int_tensor(name: str, x: Any, ndim: int | tuple[int, ...] | None = None,
               layout: str = "") -> torch.Tensor:
    """``x`` if it is an integer (not bool) tensor (of ``ndim`` dims, if given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be an integer tensor {layout}, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor {layout}, got dtype {x.dtype}")
    _check_ndim(name, x, ndim, layout)
    return x


def _check_ndim(name: str, x: torch.Tensor, ndim: int | tuple[int, ...] | None,
                layout: str) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if x.dim() not in allowed:
        dims = " or ".join(str(d) for d in allowed)
        raise ValueError(f"{name} must have {dims} dims {layout}, got shape {tuple(x.shape)}")
