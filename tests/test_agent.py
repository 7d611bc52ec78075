"""llmbook.agent: the safe calculator, the strict call parser, the loop, the problems."""
from __future__ import annotations

import json
import operator
import random

import pytest
from llmbook import agent
from llmbook.agent import ToolError, calculate, parse_call

CALC = agent.calculator_tool()
SEARCH = agent.search_tool(["The red pen costs 14 yuan.", "The blue book costs 36 yuan.",
                            "The school opens at eight."])
TOOLS = [CALC, SEARCH]
OPS = [("+", operator.add), ("-", operator.sub), ("*", operator.mul),
       ("/", operator.truediv)]


def _random_expression(rng: random.Random, depth: int) -> tuple[str, float]:
    """An expression and its value, built together (the reference: Python's operators)."""
    if depth == 0 or rng.random() < 0.3:
        v = rng.randint(-50, 50) if rng.random() < 0.8 else round(rng.uniform(-9, 9), 2)
        return (f"({v})" if v < 0 else str(v)), v
    sym, fn = rng.choice(OPS)
    (ls, lv), (rs, rv) = _random_expression(rng, depth - 1), _random_expression(rng, depth - 1)
    if sym == "/" and rv == 0:
        sym, fn = "+", operator.add
    return f"({ls} {sym} {rs})", fn(lv, rv)


def test_calculator_matches_python_arithmetic():
    rng = random.Random(0)
    for _ in range(300):
        text, value = _random_expression(rng, 4)
        if len(text) > agent.MAX_LENGTH:
            continue
        assert calculate(text) == pytest.approx(value, rel=1e-12, abs=1e-12), text
    assert calculate("2 ** 10") == 1024
    assert calculate("-3 ** 2") == -9                       # as Python: -(3 ** 2)
    assert calculate("(1 + 2) * 3 / 4") == 2.25
    assert calculate(" 7 ") == 7


@pytest.mark.parametrize("text", [
    "__import__('os').system('ls')", "os.getcwd()", "x + 1", "open('f')",
    "(lambda: 1)()", "[1, 2]", "'a' * 3", "1 if 1 else 2", "3 // 2", "3 % 2",
    "1 < 2", "True + 1", "2j", "f'{1}'", "1; 2", "import os", "",
    "().__class__.__bases__[0].__subclasses__()",
])
def test_calculator_rejects_everything_but_arithmetic(text):
    with pytest.raises(ToolError):
        calculate(text)


def test_calculator_limits():
    with pytest.raises(ToolError, match="exponent"):
        calculate("2 ** 1000")
    with pytest.raises(ToolError, match="exponent"):
        calculate("9 ** 9 ** 9")                 # the inner power is too big already
    with pytest.raises(ToolError, match="larger"):
        calculate("99 ** 99")
    with pytest.raises(ToolError, match="too large"):
        calculate("1e99 * 1e99")
    with pytest.raises(ToolError, match="characters"):
        calculate("1 + " * 30 + "1")
    with pytest.raises(ToolError, match="division by zero"):
        calculate("1 / (2 - 2)")
    with pytest.raises(ToolError, match="negative power"):
        calculate("0 ** -1")
    with pytest.raises(ToolError, match="real number"):
        calculate("(-8) ** 0.5")
    with pytest.raises(ToolError, match="string"):
        calculate(12)
    with pytest.raises(ValueError, match="max_length"):
        calculate("1", max_length=0)
    assert calculate("2 ** 3", max_exponent=3) == 8
    with pytest.raises(ToolError):
        calculate("2 ** 4", max_exponent=3)


def test_format_number():
    assert agent.format_number(12.0) == "12"
    assert agent.format_number(7) == "7"
    assert agent.format_number(1 / 3) == "0.333333333333"
    assert agent.format_number(2.5) == "2.5"


def _call(tool, **arguments) -> str:
    return json.dumps({"tool": tool, "arguments": arguments})


def test_parse_valid_calls_and_answers():
    call = parse_call(_call("calculator", expression="3 * 4"), TOOLS)
    assert call == agent.ToolCall("calculator", {"expression": "3 * 4"})
    assert agent.run_call(call, TOOLS) == "12"
    assert parse_call("  " + _call("search", query="red pen") + "\n", TOOLS).tool == "search"
    assert agent.run_call(parse_call(_call("search", query="red pen"), TOOLS),
                          TOOLS) == "The red pen costs 14 yuan."
    assert parse_call("Answer: 12", TOOLS) is None
    assert parse_call("", TOOLS) is None


@pytest.mark.parametrize("text, message", [
    ('{"tool": "calculator", "arguments": {"expression": "3 * 4"}', "not valid JSON"),
    ("{'tool': 'calculator', 'arguments': {'expression': '1'}}", "not valid JSON"),
    ('Sure! {"tool": "calculator", "arguments": {"expression": "1"}}', "whole reply"),
    ('{"tool": "calculator", "arguments": {"expression": "1"}} done', "whole reply"),
    ('{"tool": "weather", "arguments": {"city": "Paris"}}', "unknown tool"),
    ('{"tool": 3, "arguments": {}}', "unknown tool"),
    ('{"name": "calculator", "arguments": {"expression": "1"}}', "exactly the keys"),
    ('{"tool": "calculator", "arguments": {"expression": "1"}, "x": 1}', "exactly the keys"),
    ('{"tool": "calculator", "arguments": "1 + 1"}', "must be a JSON object"),
    ('{"tool": "calculator", "arguments": {"expr": "1"}}', "takes the arguments"),
    ('{"tool": "calculator", "arguments": {"expression": 12}}', "must be a string"),
    ('{"tool": "calculator", "arguments": {"expression": ["1"]}}', "must be a string"),
    ('{"tool": "search", "arguments": {"query": null}}', "must be a string"),
])
def test_parse_rejects_malformed_calls(text, message):
    with pytest.raises(ToolError, match=message):
        parse_call(text, TOOLS)


def test_parse_bool_is_not_a_number_and_long_calls_are_refused():
    tool = agent.Tool("count", "counts.", {"n": int, "x": float}, lambda n, x: str(n * x))
    assert parse_call('{"tool": "count", "arguments": {"n": 2, "x": 3}}', [tool]).arguments \
        == {"n": 2, "x": 3}
    with pytest.raises(ToolError, match="integer"):
        parse_call('{"tool": "count", "arguments": {"n": true, "x": 1.0}}', [tool])
    with pytest.raises(ToolError, match="characters"):
        parse_call(_call("calculator", expression="1" * 600), TOOLS)
    with pytest.raises(TypeError, match="text"):
        parse_call(None, TOOLS)
    with pytest.raises(TypeError, match="tools"):
        parse_call("{}", CALC)


def test_tool_errors_come_back_as_messages():
    call = parse_call(_call("calculator", expression="__import__('os')"), TOOLS)
    assert agent.run_call(call, TOOLS).startswith("Error: Call is not allowed")
    call = parse_call(_call("search", query="!!!"), TOOLS)
    assert agent.run_call(call, TOOLS) == "Error: the query has no words"
    with pytest.raises(TypeError, match="ToolCall"):
        agent.run_call({"tool": "calculator"}, TOOLS)
    with pytest.raises(ValueError, match="passages"):
        agent.search_tool([])


def test_run_agent_loop():
    script = iter(['{"tool": "calculator", "arguments": {"expr": "6 * 7"}}',
                   '{"tool": "calculator", "arguments": {"expression": "6 * 7"}}',
                   "Answer: 42"])
    seen = []

    def reply(messages):
        seen.append(len(messages))
        return next(script)

    start = [{"role": "user", "content": "What is six times seven?"}]
    ep = agent.run_agent(reply, start, TOOLS)
    assert ep.answer == "Answer: 42" and agent.extract_number(ep.answer) == 42
    assert ep.results == ["42"] and len(ep.malformed) == 1 and ep.attempts == 2
    assert seen == [1, 3, 5] and len(start) == 1
    assert ep.messages[2]["content"].startswith("Error: calculator takes the arguments")
    assert ep.messages[4] == {"role": "user", "content": "Result: 42"}
    stuck = agent.run_agent(lambda m: "{", start, TOOLS, max_turns=2)
    assert stuck.answer is None and len(stuck.malformed) == 2
    with pytest.raises(ValueError, match="max_turns"):
        agent.run_agent(reply, start, TOOLS, max_turns=0)


def test_extract_number():
    assert agent.extract_number("Answer: 1,234.") == 1234
    assert agent.extract_number("It is -7.5 km") == -7.5
    assert agent.extract_number("no idea") is None
    assert agent.extract_number(None) is None


def test_problems_are_seeded_and_correct():
    names = list(agent.TEMPLATES)
    probs = agent.make_problems(names, 60, seed=1)
    assert probs == agent.make_problems(names, 60, seed=1)
    assert probs != agent.make_problems(names, 60, seed=2)
    assert [p.template for p in probs[:6]] == names
    for p in probs:
        assert isinstance(p.answer, int) and p.answer == calculate(p.expression) and p.answer > 0
        numbers = [int(x) for x in p.expression.replace("*", " ").replace("/", " ")
                   .replace("+", " ").replace("-", " ").split()]
        assert all(str(x) in p.text for x in numbers)
    with pytest.raises(ValueError, match="unknown template"):
        agent.make_problems(["nope"], 3, 0)
    with pytest.raises(ValueError, match="n must"):
        agent.make_problems(names, 0, 0)


def test_system_prompt_lists_tools():
    text = agent.system_prompt(TOOLS, "Solve it. ")
    assert text.startswith("Solve it. ") and '"expression": string' in text
    assert '"query": string' in text and agent.CALL_EXAMPLE in text


def test_run_agents_in_lockstep_equals_one_at_a_time():
    scripts = {"a": ['{"tool": "calculator", "arguments": {"expression": "2 + 2"}}',
                     "Answer: 4"],
               "b": ["Answer: 9"],
               "c": ["{oops", '{"tool": "calculator", "arguments": {"expression": "3*3"}}',
                     "Answer: 9"]}

    def scripted(messages):
        key = messages[0]["content"]
        return scripts[key][sum(m["role"] == "assistant" for m in messages)]

    batches = []

    def many(convs):
        batches.append(len(convs))
        return [scripted(c) for c in convs]

    convs = [[{"role": "user", "content": k}] for k in scripts]
    together = agent.run_agents(many, convs, TOOLS)
    alone = [agent.run_agent(scripted, c, TOOLS) for c in convs]
    assert [e.messages for e in together] == [e.messages for e in alone]
    assert batches == [3, 2, 1]
    assert [e.answer for e in together] == ["Answer: 4", "Answer: 9", "Answer: 9"]
    with pytest.raises(TypeError, match="list of 3 strings"):
        agent.run_agents(lambda convs: ["x"], convs, TOOLS)
