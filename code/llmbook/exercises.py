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

Guards against answers that pass by accident: ``exercise(id, kind=...)`` declares what
an answer must be (a type, a tuple of types, or ``callable``) and ``check`` says so when
it is something else; ``expect`` accepts only a real truth value (``bool``, a NumPy bool
or a one-element 0-d tensor/array), so a one-element array that happens to be truthy
is not taken as "correct". ``check`` stops an answer that runs longer than its
``time_limit`` (seconds, default :data:`TIME_LIMIT`; on the main thread of a Unix
process, i.e. a notebook or a script) and reports it instead of hanging the cell.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import pkgutil
import re
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any, Callable

_REGISTRY: dict[str, Callable[[Any], None]] = {}
_KINDS: dict[str, Any] = {}
_LOADED = False
TIME_LIMIT = 60.0
_ID_RE = re.compile(r"\d+(\.\d+)+")


def _valid_id(exercise_id: Any) -> str:
    """``exercise_id`` if it looks like ``"1.1.2"``, else a clear error."""
    if not isinstance(exercise_id, str) or not _ID_RE.fullmatch(exercise_id):
        raise ValueError(f"exercise id must look like '1.1.2' (chapter.section.number), "
                         f"got {exercise_id!r}")
    return exercise_id


class Incorrect(AssertionError):
    """Raised by a check when the answer is wrong; the message is the hint shown."""


class TooSlow(BaseException):
    """An answer ran past the check's time limit (an endless loop, most likely). A
    ``BaseException``, so an answer's own ``except Exception`` cannot swallow it."""


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


def exercise(exercise_id: str, kind: Any = None
             ) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register a check function under ``exercise_id`` (e.g. ``"1.1.2"``).

    ``kind`` (optional): what the answer must be, a type or tuple of types (``float``
    also accepts ints, not bools) or the builtin ``callable`` for a function.
    """

    _valid_id(exercise_id)
    if kind is not None and kind is not callable and not _is_type_spec(kind):
        raise TypeError(f"exercise {exercise_id}: kind must be a type, a tuple of types or "
                        f"callable, got {kind!r}")

    def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        if exercise_id in _REGISTRY and _REGISTRY[exercise_id] is not fn:
            raise ValueError(f"exercise {exercise_id!r} already has a check")
        _REGISTRY[exercise_id] = fn
        if kind is not None:
            _KINDS[exercise_id] = kind
        return fn

    return register


def _is_type_spec(kind: Any) -> bool:
    return isinstance(kind, type) or (isinstance(kind, tuple) and kind
                                      and all(isinstance(k, type) for k in kind))


def _check_kind(exercise_id: str, answer: Any) -> None:
    kind = _KINDS.get(exercise_id)
    if kind is None:
        return
    if kind is callable:
        expect(callable(answer), f"the answer should be a function; you gave a "
                                 f"{type(answer).__name__}: pass the function itself")
        return
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and not isinstance(answer, bool) and isinstance(answer, int):
        return
    if isinstance(answer, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(answer, kinds)
    names = " or ".join(k.__name__ for k in kinds)
    expect(ok, f"the answer should be a {names}; you gave a {type(answer).__name__}")
    if isinstance(answer, float) and not math.isfinite(answer):
        expect(False, f"the answer is {answer}: a finite number was expected")


def _truth(condition: Any) -> bool | None:
    """``condition`` as a bool if it is a real truth value, else None."""
    if isinstance(condition, bool):
        return condition
    if type(condition).__name__ == "bool_":                     # numpy.bool_
        return bool(condition)
    shape = getattr(condition, "shape", None)
    dtype = str(getattr(condition, "dtype", ""))
    if shape is not None and tuple(shape) == () and "bool" in dtype:
        return bool(condition)                                  # a 0-d bool tensor/array
    return None


def expect(condition: bool, hint: str) -> None:
    """Fail the check with ``hint`` unless ``condition`` holds.

    ``condition`` must be a truth value (``bool``, a NumPy bool, a 0-d bool tensor or
    array). Anything else, e.g. the one-element array an answer of the wrong kind can
    produce from ``answer == 9``, fails the check instead of passing by its truthiness.
    """
    truth = _truth(condition)
    if truth is None:
        raise Incorrect(f"{hint} (the answer has an unexpected kind: a test on it gave a "
                        f"{type(condition).__name__}, not True/False)")
    if not truth:
        raise Incorrect(hint)


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TooSlow` in the block after ``seconds`` (a SIGALRM timer; only on the
    main thread of a process that has one, else no limit)."""
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TooSlow(f"it ran for more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)   # an alarm set by the caller
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:                          # give the caller's alarm back, not cancelled
            left = outer - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


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


def check(exercise_id: str, answer: Any, *, raise_on_fail: bool = False,
          time_limit: float | None = TIME_LIMIT) -> bool:
    """Run the check for ``exercise_id`` on ``answer``, print feedback, return True if right.

    A ``NotImplementedError`` from the student's code (the student version's placeholder)
    is reported as "not attempted yet" rather than as a failure. An answer of the
    registered ``kind``'s wrong type fails with a hint saying what was expected. A check
    that takes longer than ``time_limit`` seconds (None = no limit) is stopped and
    reported as too slow.
    """
    _valid_id(exercise_id)
    if time_limit is not None and (isinstance(time_limit, bool)
                                   or not isinstance(time_limit, (int, float))
                                   or not math.isfinite(time_limit) or time_limit <= 0):
        raise ValueError(f"time_limit must be a finite number of seconds > 0 or None, "
                         f"got {time_limit!r}")
    _load_all()
    if exercise_id not in _REGISTRY:
        raise KeyError(f"no check for exercise {exercise_id!r}; known: {', '.join(known())}")
    try:
        if answer is TODO or (isinstance(answer, (tuple, list))
                              and any(part is TODO for part in answer)):
            raise NotImplementedError(TODO._MESSAGE)
        _check_kind(exercise_id, answer)
        with _time_limit(time_limit):
            _REGISTRY[exercise_id](answer)
    except TooSlow as err:
        print(f"✗ Exercise {exercise_id}: your code is too slow: {err} (an endless loop?). "
              "Fix it and run the check again.")
        if raise_on_fail:
            raise
        return False
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
