"""Tools for a language model: a strict JSON call protocol, a safe calculator, an agent loop.

A model calls a tool by replying with one JSON object and nothing else::

    {"tool": "calculator", "arguments": {"expression": "37 * 24"}}

:func:`parse_call` reads such a reply strictly: ``json.loads``, then a schema check (the
two keys ``tool`` and ``arguments``, a known tool, exactly its arguments, each of its
type). A reply that is not a call at all (no ``{``) is a final answer; anything in
between is *malformed* and raises :class:`ToolError`, whose message goes back to the
model. Nothing the model writes is ever passed to ``eval``: :func:`calculate` walks the
syntax tree of an arithmetic expression and allows numbers, ``+ - * / **``, unary signs
and parentheses only, with limits on length, exponent and size.

:func:`run_agent` is the loop: ask the model, run the tool it calls, give it the result,
until it answers or runs out of turns. :func:`make_problems` writes seeded arithmetic
word problems with known answers.
"""
from __future__ import annotations

import ast
import json
import math
import operator
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmbook._validate import positive_int

__all__ = [
    "CALL_EXAMPLE",
    "RETRY",
    "TEMPLATES",
    "Episode",
    "Problem",
    "Tool",
    "ToolCall",
    "ToolError",
    "calculate",
    "calculator_tool",
    "extract_number",
    "format_number",
    "make_problems",
    "parse_call",
    "run_agent",
    "run_agents",
    "run_call",
    "search_tool",
    "system_prompt",
]

MAX_LENGTH = 100          # characters of an expression
MAX_EXPONENT = 100        # |b| in a ** b
MAX_MAGNITUDE = 1e100     # |value| of any intermediate result

CALL_EXAMPLE = '{"tool": "calculator", "arguments": {"expression": "37 * 24"}}'
# after a malformed call; no numbers in it, so that a model has none to copy
RETRY = 'Reply with one JSON object {"tool": ..., "arguments": {...}} or with the answer.'


class ToolError(ValueError):
    """A tool call that cannot be run; the message says why, for the model to read."""


# ----------------------------------------------------------------------- calculator
_BINARY: dict[type, Callable] = {ast.Add: operator.add, ast.Sub: operator.sub,
                                 ast.Mult: operator.mul, ast.Div: operator.truediv,
                                 ast.Pow: operator.pow}
_UNARY: dict[type, Callable] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def calculate(expression: str, max_length: int = MAX_LENGTH,
              max_exponent: int = MAX_EXPONENT) -> int | float:
    """The value of an arithmetic expression, computed without ``eval``.

    Allowed: int and float literals, ``+ - * / **``, unary ``+``/``-`` and parentheses.
    Anything else (names, calls, attributes, strings, comparisons, ``//``, ``%``) raises
    :class:`ToolError` naming what was found, as do an expression longer than
    ``max_length`` characters, an exponent above ``max_exponent`` in size (checked before
    the power is computed), any intermediate value above ``1e100`` in size, and division
    by zero.

    >>> calculate("(12 + 3) * 4 / 5")
    12.0
    """
    if not isinstance(expression, str):
        raise ToolError(f"expression must be a string, got {type(expression).__name__}")
    max_length = positive_int("max_length", max_length)
    max_exponent = positive_int("max_exponent", max_exponent)
    if len(expression) > max_length:
        raise ToolError(f"expression is {len(expression)} characters long; "
                        f"at most {max_length} are allowed")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise ToolError(f"expression {expression!r} is not valid arithmetic "
                        f"({err.msg})") from None
    return _evaluate(tree.body, max_exponent)


def _evaluate(node: ast.AST, max_exponent: int) -> int | float:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError(f"only numbers are allowed, got the constant {value!r}")
        return _bounded(value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, max_exponent))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate(node.left, max_exponent)
        right = _evaluate(node.right, max_exponent)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ToolError("division by zero")
        if isinstance(node.op, ast.Pow):
            _check_power(left, right, max_exponent)
        try:
            return _bounded(_BINARY[type(node.op)](left, right))
        except (OverflowError, ZeroDivisionError) as err:
            raise ToolError(f"{left} {_SYMBOL[type(node.op)]} {right}: {err}") from None
    what = type(node.op).__name__ if isinstance(node, ast.BinOp | ast.UnaryOp) else \
        type(node).__name__
    raise ToolError(f"{what} is not allowed: use numbers, + - * / ** and parentheses")


def _check_power(base: float, exponent: float, max_exponent: int) -> None:
    if abs(exponent) > max_exponent:
        raise ToolError(f"exponent {exponent} is too large (at most {max_exponent} in size)")
    if base == 0 and exponent < 0:
        raise ToolError("0 cannot be raised to a negative power")
    if base < 0 and exponent != int(exponent):
        raise ToolError(f"{base} ** {exponent} is not a real number")
    if base != 0 and abs(exponent) * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise ToolError(f"{base} ** {exponent} is larger than {MAX_MAGNITUDE:.0e}")


def _bounded(value: float) -> int | float:
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ToolError("a value in the expression is too large or not a real number")
    return value


def format_number(value: float) -> str:
    """A number as a model should read it: ``12.0 -> '12'``, ``1/3 -> '0.333333333333'``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.12g}"


# ----------------------------------------------------------------------------- tools
@dataclass(frozen=True)
class Tool:
    """A tool: its name, a one-line description, its arguments ``{name: type}`` and the
    function that runs it (keyword arguments in, a string for the model out)."""

    name: str
    description: str
    parameters: dict[str, type]
    fn: Callable[..., str]

    def schema(self) -> str:
        """The line that describes the tool in the system prompt."""
        args = ", ".join(f'"{k}": {_TYPE_NAMES[t]}' for k, t in self.parameters.items())
        return f'- {self.name}: {self.description} Arguments: {{{args}}}'


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "true or false"}


@dataclass(frozen=True)
class ToolCall:
    """A call that passed the schema check."""

    tool: str
    arguments: dict


def calculator_tool(max_length: int = MAX_LENGTH, max_exponent: int = MAX_EXPONENT) -> Tool:
    """The calculator: ``{"expression": str}`` -> the value as text (:func:`calculate`)."""
    def run(expression: str) -> str:
        return format_number(calculate(expression, max_length, max_exponent))
    return Tool("calculator", "computes an arithmetic expression with + - * / ** and "
                "parentheses.", {"expression": str}, run)


def search_tool(passages: Sequence[str], k: int = 1) -> Tool:
    """A search over ``passages`` with BM25 (``llmbook.retrieval``): ``{"query": str}``
    -> the ``k`` best passages, one a line."""
    from llmbook.retrieval import BM25, tokenize
    if isinstance(passages, str) or not passages or \
            not all(isinstance(p, str) for p in passages):
        raise ValueError(f"passages must be a non-empty list of strings, got {passages!r:.80}")
    k = positive_int("k", k)
    index = BM25([tokenize(p) for p in passages])

    def run(query: str) -> str:
        words = tokenize(query)
        if not words:
            raise ToolError("the query has no words")
        top = index.search(words, min(k, len(passages)))[1].tolist()
        return "\n".join(passages[i] for i in top)
    return Tool("search", "finds the fact that best matches a query.", {"query": str}, run)


def _by_name(tools: Sequence[Tool]) -> dict[str, Tool]:
    if isinstance(tools, Tool) or not all(isinstance(t, Tool) for t in tools):
        raise TypeError(f"tools must be a sequence of Tool, got {tools!r:.80}")
    return {t.name: t for t in tools}


def system_prompt(tools: Sequence[Tool], task: str = "") -> str:
    """The protocol, told to the model: the tools, how to call one, how to answer."""
    lines = "\n".join(t.schema() for t in _by_name(tools).values())
    return (f"{task}You can use these tools:\n{lines}\n"
            "To use a tool, reply with one JSON object and nothing else, for example\n"
            f"{CALL_EXAMPLE}\n"
            "The result comes back in a message that starts with 'Result:'. "
            "When you know the answer, reply 'Answer: ' and the number.")


# ---------------------------------------------------------------------------- parser
def parse_call(text: str, tools: Sequence[Tool], max_chars: int = 500) -> ToolCall | None:
    """Read a reply: ``None`` if it is a final answer (it has no ``{``), a
    :class:`ToolCall` if it is exactly one valid call; otherwise raise :class:`ToolError`.

    Valid: the whole reply (spaces aside) is a JSON object with exactly the keys
    ``"tool"`` (the name of one of ``tools``) and ``"arguments"`` (an object with exactly
    that tool's arguments, each of its type; a bool is not a number).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    known = _by_name(tools)
    body = text.strip()
    if "{" not in body:
        return None
    if len(body) > max_chars:
        raise ToolError(f"the call is {len(body)} characters long; at most {max_chars}")
    if not body.startswith("{") or not body.endswith("}"):
        raise ToolError("a tool call must be the whole reply: one JSON object, "
                        "with no text before or after it")
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as err:
        raise ToolError(f"the call is not valid JSON ({err.msg} at character "
                        f"{err.pos})") from None
    if not isinstance(obj, dict):
        raise ToolError(f"the call must be a JSON object, got {type(obj).__name__}")
    if set(obj) != {"tool", "arguments"}:
        raise ToolError(f'the call must have exactly the keys "tool" and "arguments", '
                        f"got {sorted(obj)}")
    name, args = obj["tool"], obj["arguments"]
    if not isinstance(name, str) or name not in known:
        raise ToolError(f"unknown tool {name!r}; the tools are {sorted(known)}")
    if not isinstance(args, dict):
        raise ToolError(f'"arguments" must be a JSON object, got {type(args).__name__}')
    want = known[name].parameters
    if set(args) != set(want):
        raise ToolError(f"{name} takes the arguments {sorted(want)}, got {sorted(args)}")
    for key, typ in want.items():
        value = args[key]
        ok = isinstance(value, typ) and not (isinstance(value, bool) and typ is not bool)
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ToolError(f"argument {key!r} of {name} must be a {_TYPE_NAMES[typ]}, "
                            f"got {value!r}")
    return ToolCall(name, dict(args))


def run_call(call: ToolCall, tools: Sequence[Tool]) -> str:
    """Run a parsed call; a :class:`ToolError` inside the tool comes back as its message,
    prefixed with ``Error:``, for the model to read."""
    if not isinstance(call, ToolCall):
        raise TypeError(f"call must be a ToolCall (from parse_call), got {call!r:.80}")
    known = _by_name(tools)
    if call.tool not in known:
        raise ValueError(f"unknown tool {call.tool!r}; the tools are {sorted(known)}")
    try:
        return known[call.tool].fn(**call.arguments)
    except ToolError as err:
        return f"Error: {err}"


# ------------------------------------------------------------------------ agent loop
@dataclass
class Episode:
    """What happened in one run of the loop."""

    messages: list[dict]
    answer: str | None = None              # the final reply, None if turns ran out
    calls: list[ToolCall] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)   # the parser's messages

    @property
    def attempts(self) -> int:
        """Replies that tried to call a tool (well-formed or not)."""
        return len(self.calls) + len(self.malformed)


def run_agent(reply: Callable[[list[dict]], str], messages: list[dict],
              tools: Sequence[Tool], max_turns: int = 3) -> Episode:
    """Ask ``reply(messages) -> str`` (the model) until it answers, at most ``max_turns``
    replies. A valid call is run and its result sent back as a user message
    ``"Result: ..."``; a malformed one gets ``"Error: <why>. "`` + :data:`RETRY`
    instead. The model never runs anything itself. ``messages`` is not modified."""
    return run_agents(lambda convs: [reply(c) for c in convs], [messages], tools,
                      max_turns)[0]


def run_agents(reply: Callable[[list[list[dict]]], list[str]],
               conversations: Sequence[list[dict]], tools: Sequence[Tool],
               max_turns: int = 3) -> list[Episode]:
    """:func:`run_agent` for many conversations in lockstep, so that a model can answer
    all those still open in one batch: ``reply([messages, ...]) -> [text, ...]``."""
    max_turns = positive_int("max_turns", max_turns)
    _by_name(tools)
    if isinstance(conversations, dict) or not all(isinstance(c, list) for c in conversations):
        raise TypeError("conversations must be a list of message lists")
    episodes = [Episode([dict(m) for m in c]) for c in conversations]
    open_ = list(range(len(episodes)))
    for _ in range(max_turns):
        if not open_:
            break
        texts = reply([list(episodes[i].messages) for i in open_])
        if not isinstance(texts, list) or len(texts) != len(open_) or \
                not all(isinstance(t, str) for t in texts):
            raise TypeError(f"reply must return a list of {len(open_)} strings, got "
                            f"{texts!r:.80}")
        still = []
        for i, text in zip(open_, texts, strict=True):
            if _step(episodes[i], text, tools):
                still.append(i)
        open_ = still
    return episodes


def _step(episode: Episode, text: str, tools: Sequence[Tool]) -> bool:
    """Record one reply; True if the conversation goes on."""
    episode.messages.append({"role": "assistant", "content": text})
    try:
        call = parse_call(text, tools)
    except ToolError as err:
        episode.malformed.append(str(err))
        episode.messages.append({"role": "user", "content": f"Error: {err}. {RETRY}"})
        return True
    if call is None:
        episode.answer = text
        return False
    result = run_call(call, tools)
    episode.calls.append(call)
    episode.results.append(result)
    episode.messages.append({"role": "user", "content": f"Result: {result}"})
    return True


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_number(text: str | None) -> float | None:
    """The first number in a reply (``"Answer: 1,234."`` -> ``1234.0``), or None."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or None, got {type(text).__name__}")
    m = _NUMBER.search(text)
    return float(m.group().replace(",", "")) if m else None


# -------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """A word problem with its known answer and the expression that gives it."""

    text: str
    answer: int
    expression: str
    template: str


# name -> (the problem with slots {a} {b} {c} {p}, the expression of its answer)
TEMPLATES: dict[str, tuple[str, str]] = {
    "boxes": (("A shop has {a} boxes with {b} apples in each box. "
               "How many apples are there in all?"), "{a} * {b}"),
    "stamps": (("Mia had {a} stamps and gave {b} of them to her brother. "
                "How many stamps does she have now?"), "{a} - {b}"),
    "train": ("A train travels {a} km every day. How many km does it travel in {b} days?",
              "{a} * {b}"),
    "shelves": (("A library puts {a} books on each of {b} shelves and then gets {c} more "
                 "books. How many books does it have?"), "{a} * {b} + {c}"),
    "groups": (("There are {p} students, split into groups of {b}. How many groups are "
                "there?"), "{p} / {b}"),
    "savings": (("Leo saves {a} yuan a week for {b} weeks and then spends {c} yuan. "
                 "How many yuan are left?"), "{a} * {b} - {c}"),
}


def make_problems(templates: Sequence[str], n: int, seed: int) -> list[Problem]:
    """``n`` seeded problems, cycling through ``templates`` (names in :data:`TEMPLATES`).

    Numbers: ``a`` 12..99, ``b`` 12..49 and ``c`` 100..999, so that products have three or
    four digits; ``stamps`` takes ``a`` 120..999 from it, ``savings`` spends less than it
    saved, and in ``groups`` the total ``p = a * b`` divides exactly: answers are ints > 0.
    """
    n = positive_int("n", n)
    if isinstance(templates, str) or not templates:
        raise ValueError(f"templates must be a non-empty list of names, got {templates!r}")
    for t in templates:
        if t not in TEMPLATES:
            raise ValueError(f"unknown template {t!r}; known: {sorted(TEMPLATES)}")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = templates[i % len(templates)]
        a, b, c = rng.randint(12, 99), rng.randint(12, 49), rng.randint(100, 999)
        if name == "stamps":
            a, b = a * 10 + rng.randint(0, 9), rng.randint(12, 99)
        if name == "savings":
            c = rng.randint(100, a * b - 1)               # something is left
        text, expr = TEMPLATES[name]
        values = {"a": a, "b": b, "c": c, "p": a * b}
        expression = expr.format(**values)
        answer = calculate(expression)
        out.append(Problem(text.format(**values), int(answer), expression, name))
    return out
