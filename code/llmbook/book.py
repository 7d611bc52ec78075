"""Helpers for putting computed numbers into the book's prose.

``glue(name, value)`` stores a value under ``name`` so that Markdown cells can show it
with ``{glue:text}`name:.2f```. In the built book this is myst-nb's glue; elsewhere
(e.g. on Colab, where myst-nb is not installed) the value is simply shown.
"""
from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Make ``value`` available to the prose as ``{glue:text}`name```; returns ``value``.

    Values are converted to plain Python numbers first (a 0-d tensor or a numpy scalar
    would otherwise be pasted with its ``tensor(...)`` repr).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be an identifier-like string, got {name!r}")
    value = _plain(value)
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:
        if display:
            print(f"{name} = {value}")
        return value
    _myst_glue(name, value, display=display)
    return value


def _plain(value: Any) -> Any:
    """0-d tensors / numpy scalars -> Python scalars; anything else unchanged."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value
