"""llmbook: the companion package of an executable book on large language models.

Small, readable, GPU-aware modules, one idea each. Notebooks start with::

    import llmbook
    env = llmbook.start()      # seeds everything, prints device / dtype / scale

``llmbook.book`` (glue numbers into the prose) and ``llmbook.exercises`` (checks) are
light and imported here, so ``llmbook.exercises.check(...)`` works after ``import llmbook``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from llmbook.scale import pick, current_scale  # noqa: E402
from llmbook.device import get_device  # noqa: E402
from llmbook.setup import Env, start, seed_everything  # noqa: E402
from llmbook import book, exercises  # noqa: E402

__all__ = ["__version__", "Env", "start", "seed_everything", "pick", "current_scale",
           "get_device", "book", "exercises"]
