"""Checks for the exercises of notebook 4.6 (code generation: truncation, tries to pass)."""
from __future__ import annotations

import math
import random

from llmbook.exercises import exercise, expect


@exercise("4.6.1")
def _truncate_at_dedent(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.6.1', truncate_at_dedent)")
    body = "\n    x = 1\n\n    return x"
    got = fn(body)
    expect(isinstance(got, str), f"return a str, got {got!r}")
    expect(got == body, "a completion with no line at column 0 is kept whole (blank lines "
                        f"inside the body included), got {got!r}")
    got = fn(body + "\n\nprint(f(1))\n")
    expect(got == body + "\n", "cut just before the newline that precedes the first line "
                               f"at column 0: expected {body + chr(10)!r}, got {got!r}")
    got = fn("\n    return x\n   \n\ndef g():\n    pass")
    expect(got == "\n    return x\n   \n",
           "a line of only spaces is empty and does not end the function; the cut is just "
           f"before the newline of 'def g', got {got!r}")
    got = fn("\n    return [\n1, 2]\n")
    expect(got == "\n    return [", "any non-space character at column 0 ends it, even "
                                     f"inside brackets (the rule is that simple), got {got!r}")
    got = fn("\n    return x\n# a comment\n")
    expect(got == "\n    return x", f"a comment at column 0 ends it too, got {got!r}")
    expect(fn("") == "", "the empty completion stays empty")
    got = fn("\n\tif x:\n\t\treturn 1\nclass A: pass")
    expect(got == "\n\tif x:\n\t\treturn 1", "a tab is whitespace: a line starting with a tab "
                                             f"is indented, got {got!r}")


@exercise("4.6.2")
def _expected_tries(fn) -> None:
    expect(callable(fn), "pass the function itself: check('4.6.2', expected_tries)")
    got = fn(1, 1)
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number, got {got!r}")
    expect(math.isclose(got, 1.0), f"one sample that passes: one try, got {got}")
    expect(fn(5, 0) == math.inf, "no sample passes: return math.inf (the sum has no end)")
    expect(math.isclose(fn(5, 5), 1.0), "every sample passes: the first try succeeds, 1.0")
    expect(math.isclose(fn(2, 1), 1.5), "two samples, one passes: 1 try half the time, 2 the "
                                        "other half: 1.5")
    for n in range(1, 25):
        for c in range(1, n + 1):
            got = fn(n, c)
            expect(math.isclose(got, (n + 1) / (c + 1), rel_tol=1e-9),
                   f"n={n}, c={c}: expected (n+1)/(c+1) = {(n + 1) / (c + 1):.6f}, got {got}; "
                   "the sum runs over k = 0 .. n-1 and pass@0 = 0 adds a 1")
    rng = random.Random(0)
    outcomes = [True] * 3 + [False] * 7
    total = 0
    for _ in range(4000):
        rng.shuffle(outcomes)
        total += outcomes.index(True) + 1
    expect(abs(fn(10, 3) - total / 4000) < 0.1, "a simulation of random orders disagrees")
