"""Plot defaults for the book, including a CJK font so Chinese labels are not empty boxes."""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei",
                "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC")
CJK_GLOBS = ("/usr/share/fonts/**/NotoSansCJK*.tt[cf]", "/usr/share/fonts/**/NotoSerifCJK*.tt[cf]",
             "/usr/share/fonts/**/wqy*.tt[cf]")

_cjk_family: str | None = None
_warned = False


def _register_cjk() -> str | None:
    """Find a CJK font on the system, register it with matplotlib, return its family name."""
    from matplotlib import font_manager

    for pattern in CJK_GLOBS:
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            try:
                font_manager.fontManager.addfont(str(path))
            except (OSError, RuntimeError):
                continue
    available = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in available:
            return family
    return None


def cjk_font() -> str | None:
    """The CJK font family in use, or None (with a one-time warning saying what to install)."""
    global _cjk_family, _warned
    if _cjk_family is None:
        _cjk_family = _register_cjk()
    if _cjk_family is None and not _warned:
        _warned = True
        warnings.warn("No CJK font found: Chinese text in figures will show as boxes. "
                      "Install one with `apt-get install fonts-noto-cjk` (Debian/Ubuntu/Colab).",
                      stacklevel=2)
    return _cjk_family


def setup() -> None:
    """Book-wide matplotlib defaults: readable sizes, a grid, and a CJK fallback font."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.figsize": (7, 4),
        "figure.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    family = _register_cjk()
    global _cjk_family
    _cjk_family = family
    if family is not None:
        plt.rcParams["font.family"] = ["DejaVu Sans", family]


__all__ = ["setup", "cjk_font", "matplotlib"]
