"""Exercise checks that give a student helpful feedback instead of a bare assert.

A notebook's exercise has three cells:

1. the task (Markdown, "Exercise 1.1.2 — ...");
2. the student's code: in the book's source it holds the solution between
   ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (the cell is tagged ``solution`` and
   ``hide-input``, so the HTML hides it behind a toggle, and ``tools/make_student.py``
   replaces the block: inside a function by ``raise NotImplementedError(hint)``, at the
   top level of the cell by ``name = TODO`` for each name the solution defines);
3. the check: ``check("1.1.2", answer)``.

:data:`TODO` stands for an answer not written yet: using it in any way raises
``NotImplementedError``, and :func:`check` reports it as "not attempted yet".

Checks live in ``llmbook.checks`` (one module per notebook) and are registered with
:func:`exercise`. A check function takes the student's answer and raises
:class:`Incorrect` with a hint; :func:`expect` is the shorthand for that.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import traceback
from typing import Any, Callable

_REGISTRY: dict[str, Callable[[Any], None]] = {}
_LOADED = False
_ID_RE = re.compile(r"\d+(\.\d+)+")


def _valid_id(exercise_id: Any) -> str:
    """``exercise_id`` if it looks like ``"1.1.2"``, else a clear error."""
    if not isinstance(exercise_id, str) or not _ID_RE.fullmatch(exercise_id):
        raise ValueError(f"exercise id must look like '1.1.2' (chapter.section.number), "
                         f"got {exercise_id!r}")
    return exercise_id


class Incorrect(AssertionError):
    """Raised by a check when the answer is wrong; the message is the hint shown."""


class _Todo:
    """The placeholder a student replaces; any use of it raises ``NotImplementedError``."""

    _MESSAGE = "this exercise is not attempted yet: replace TODO with your code"

    def __repr__(self) -> str:
        return "TODO"

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(self._MESSAGE)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        self._refuse()

    __call__ = __iter__ = __len__ = __getitem__ = __bool__ = __float__ = __int__ = _refuse
    __index__ = __array__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = _refuse
    __rmul__ = __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __neg__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __pow__ = __contains__ = _refuse


TODO = _Todo()


def exercise(exercise_id: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register a check function under ``exercise_id`` (e.g. ``"1.1.2"``)."""

    _valid_id(exercise_id)

    def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        if exercise_id in _REGISTRY and _REGISTRY[exercise_id] is not fn:
            raise ValueError(f"exercise {exercise_id!r} already has a check")
        _REGISTRY[exercise_id] = fn
        return fn

    return register


def expect(condition: bool, hint: str) -> None:
    """Fail the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise Incorrect(hint)


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import llmbook.checks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    _LOADED = True


def known() -> list[str]:
    """Ids of all exercises that have a check."""
    _load_all()
    return sorted(_REGISTRY)


def check(exercise_id: str, answer: Any, *, raise_on_fail: bool = False) -> bool:
    """Run the check for ``exercise_id`` on ``answer``, print feedback, return True if right.

    A ``NotImplementedError`` from the student's code (the student version's placeholder)
    is reported as "not attempted yet" rather than as a failure.
    """
    _valid_id(exercise_id)
    _load_all()
    if exercise_id not in _REGISTRY:
        raise KeyError(f"no check for exercise {exercise_id!r}; known: {', '.join(known())}")
    try:
        if answer is TODO:
            raise NotImplementedError(TODO._MESSAGE)
        _REGISTRY[exercise_id](answer)
    except NotImplementedError:
        print(f"Exercise {exercise_id}: not attempted yet — replace the `TODO` or the "
              "`raise NotImplementedError` with your code and run the check again.")
        if raise_on_fail:
            raise
        return False
    except Incorrect as err:
        print(f"✗ Exercise {exercise_id}: not yet. {err}")
        if raise_on_fail:
            raise
        return False
    except Exception as err:  # the student's code crashed inside the check
        frame = traceback.extract_tb(err.__traceback__)[-1]
        print(f"✗ Exercise {exercise_id}: your code raised {type(err).__name__}: {err} "
              f"(line {frame.lineno} of {frame.name}).")
        if raise_on_fail:
            raise
        return False
    print(f"✓ Exercise {exercise_id}: correct.")
    return True
