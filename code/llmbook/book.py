"""Helpers for putting computed numbers into the book's prose.

``glue(name, value)`` stores a value under ``name`` so that Markdown cells can show it
with ``{glue:text}`name:.2f```. In a notebook it emits one output that serves two
readers at once:

- the book's HTML build (myst-nb) reads the value from it and pastes it into the prose,
  and does not show the output itself;
- Jupyter or Colab, where the ``{glue:text}`` roles stay raw markup, show the output as
  the line ``name = value`` under the code cell, so the numbers are there to read.

Outside a notebook (plain Python) nothing is shown. The output has the format of
myst-nb's own ``glue`` (no import of myst-nb needed, so it also works on Colab).
"""
from __future__ import annotations

from typing import Any

GLUE_PREFIX = "application/papermill.record/"   # myst-nb strips it and hides the output


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Make ``value`` available to the prose as ``{glue:text}`name```; returns ``value``.

    Values are converted to plain Python numbers first (a 0-d tensor or a numpy scalar
    would otherwise be pasted with its ``tensor(...)`` repr). In a notebook the value is
    shown as ``name = value`` (Jupyter, Colab) but not in the book's HTML;
    ``display=True`` shows the value's own output in the HTML too.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be an identifier-like string, got {name!r}")
    value = _plain(value)
    bundle = glue_bundle(name, value, display)
    if bundle is not None:
        from IPython.display import display as ipy_display

        data, metadata = bundle
        ipy_display(data, raw=True, metadata=metadata)
    return value


def glue_bundle(name: str, value: Any, display: bool = False) -> tuple[dict, dict] | None:
    """The ``(data, metadata)`` of the output :func:`glue` emits; None outside IPython.

    ``data`` holds the value's formatted mime types under :data:`GLUE_PREFIX` (what
    myst-nb pastes) and, unless ``display``, a ``text/plain`` line ``name = value`` for
    notebook readers: myst-nb cuts the prefix's length off every key, so that line's key
    becomes an empty one that nothing renders, and the HTML shows nothing twice.
    """
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    formatted, metadata = format_display_data(value)
    metadata = dict(metadata)
    if display:
        metadata["scrapbook"] = {"name": name, "mime_prefix": ""}
        return formatted, metadata
    data = {GLUE_PREFIX + k: v for k, v in formatted.items()}
    data["text/plain"] = f"{name} = {formatted.get('text/plain', repr(value))}"
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    return data, metadata


def _plain(value: Any) -> Any:
    """0-d tensors / numpy scalars -> Python scalars; anything else unchanged."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value
