"""Checks for the exercises of notebook 5.6 (tools: a safe operation, a new tool's schema)."""
from __future__ import annotations

import json
import math
import operator
import random

from llmbook import agent
from llmbook.agent import ToolError
from llmbook.exercises import exercise, expect

_ATTACKS = ["__import__('os').system('ls')", "x % 2", "open('f') // 1", "(1).__class__",
            "'7' % 3", "[1] * 3", "1 if 1 else 0", "True % 2", "lambda: 0"]


def _raises(fn, text: str) -> bool:
    try:
        fn(text)
    except ToolError:
        return True
    except Exception as err:  # noqa: BLE001 (the hint names what was raised instead)
        raise AssertionError(f"{text!r} raised {type(err).__name__}: {err}; "
                             "raise agent.ToolError so the model reads the reason") from None
    return False


@exercise("5.6.1", kind=callable)
def _modulo(fn) -> None:
    for text, want in [("17 % 5", 2), ("17 // 5", 3), ("-7 // 2", -4), ("-7 % 3", 2),
                       ("(3 + 4) * 5 % 6", 5), ("2 ** 5 // 3", 10), ("7.5 % 2", 1.5),
                       ("1 + 2 * 3", 7), ("10 / 4", 2.5), ("-(3)", -3)]:
        try:
            got = fn(text)
        except ToolError as err:
            expect(False, f"{text!r} is allowed arithmetic, but it raised: {err}")
        expect(isinstance(got, int | float) and not isinstance(got, bool),
               f"return the number itself; {text!r} gave {got!r}")
        expect(got == want, f"{text!r} should be {want} (as Python's operators), got {got!r}")
    rng = random.Random(0)
    ops = [("+", operator.add), ("-", operator.sub), ("*", operator.mul),
           ("%", operator.mod), ("//", operator.floordiv)]
    for _ in range(100):
        a, b, c = rng.randint(-99, 99), rng.randint(1, 20), rng.randint(1, 9)
        (s1, f1), (s2, f2) = rng.choice(ops), rng.choice(ops)
        text = f"({a} {s1} {b}) {s2} {c}"
        expect(fn(text) == f2(f1(a, b), c), f"{text!r} should be {f2(f1(a, b), c)}")
    for text in ("5 % 0", "5 // 0", "5 % (2 - 2)"):
        expect(_raises(fn, text), f"{text!r}: division by zero must raise agent.ToolError")
    for text in _ATTACKS:
        expect(_raises(fn, text), f"{text!r} must be rejected with agent.ToolError: only "
                                  "numbers and + - * / ** % // are allowed")
    for text in ("2 ** 1000", "9 ** 9 ** 9", "1 % " * 40 + "1"):
        expect(_raises(fn, text), f"{text[:30]!r} must be rejected (the limits of "
                                  "agent.calculate still hold: exponent, size, length)")
    print("17 % 5 =", fn("17 % 5"), "and 17 // 5 =", fn("17 // 5"),
          "; attacks, zero divisors and huge powers rejected")


_KM_PER_MILE = 1.609344


def _call(value, from_unit, to_unit) -> str:
    return json.dumps({"tool": "convert", "arguments": {"value": value, "from_unit": from_unit,
                                                        "to_unit": to_unit}})


@exercise("5.6.2", kind=callable)
def _convert_tool(make) -> None:
    tool = make()
    expect(isinstance(tool, agent.Tool), f"make_convert_tool() must return an agent.Tool, "
                                         f"got {type(tool).__name__}")
    expect(tool.name == "convert", f"the tool's name must be 'convert', got {tool.name!r}")
    expect(tool.parameters == {"value": float, "from_unit": str, "to_unit": str},
           "parameters must be {'value': float, 'from_unit': str, 'to_unit': str}, got "
           f"{tool.parameters!r}")
    tools = [agent.calculator_tool(), tool]
    factor = {"km": 1000.0, "m": 1.0, "mi": 1000.0 * _KM_PER_MILE}
    for value, a, b in [(5, "km", "m"), (2.5, "mi", "km"), (1609.344, "m", "mi"),
                        (0, "km", "mi"), (-3, "m", "km"), (7, "km", "km")]:
        out = agent.run_call(agent.parse_call(_call(value, a, b), tools), tools)
        expect(not out.startswith("Error"), f"{value} {a} -> {b} is valid, got {out!r}")
        try:
            got = float(out)
        except ValueError:
            got = math.nan
        want = value * factor[a] / factor[b]
        expect(math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9),
               f"{value} {a} in {b} is {want:.6g}, the tool said {out!r}")
    for bad in (_call(5, "km", "parsec"), _call(5, "KM ", "m"), _call(5, "kg", "m")):
        out = agent.run_call(agent.parse_call(bad, tools), tools)
        expect(out.startswith("Error:") and "unit" in out,
               f"an unknown unit must come back as 'Error: ...' naming the unit (raise "
               f"agent.ToolError), got {out!r} for {bad}")
    for bad, why in [(_call("5", "km", "m"), "a string is not a number"),
                     (_call(True, "km", "m"), "a bool is not a number"),
                     ('{"tool": "convert", "arguments": {"value": 5, "unit": "km"}}',
                      "wrong argument names")]:
        try:
            agent.parse_call(bad, tools)
        except ToolError:
            continue
        expect(False, f"the parser should reject {bad} ({why}): are the parameters' types "
                      "float and str?")
    print("convert: 2.5 mi =", agent.run_call(agent.parse_call(_call(2.5, "mi", "km"), tools),
                                              tools), "km; unknown units come back as errors")
