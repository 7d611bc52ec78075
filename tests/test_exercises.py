"""The feedback a student gets from llmbook.exercises.check."""
from __future__ import annotations

import numpy as np
import pytest

from llmbook import exercises
from llmbook.exercises import TODO, Incorrect, check, exercise, expect


@exercise("0.0.1")
def _square_check(square):
    expect(callable(square), "answer with a function square(x)")
    expect(square(3) == 9, f"square(3) should be 9, got {square(3)!r}")


def test_correct_answer_says_so(capsys):
    assert check("0.0.1", lambda x: x * x) is True
    assert "✓ Exercise 0.0.1: correct." in capsys.readouterr().out


def test_wrong_answer_shows_the_hint(capsys):
    assert check("0.0.1", lambda x: x + x) is False
    out = capsys.readouterr().out
    assert "✗ Exercise 0.0.1: not yet." in out and "square(3) should be 9, got 6" in out


def test_crash_names_the_exception_and_line(capsys):
    def square(x):
        return x / 0

    assert check("0.0.1", square) is False
    out = capsys.readouterr().out
    assert "your code raised ZeroDivisionError" in out and "of square)" in out


@pytest.mark.parametrize("answer", [TODO, "raise"], ids=["TODO", "NotImplementedError"])
def test_stub_is_reported_as_not_attempted(capsys, answer):
    def stub(x):
        raise NotImplementedError("Exercise 0.0.1: not attempted yet")

    assert check("0.0.1", stub if answer == "raise" else answer) is False
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "✗" not in out


def test_a_tuple_holding_a_todo_is_not_attempted(capsys):
    assert check("0.0.1", (3, TODO)) is False
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "✗" not in out


def test_raise_on_fail_reraises_for_autograding():
    with pytest.raises(Incorrect, match="should be 9"):
        check("0.0.1", lambda x: 0, raise_on_fail=True)
    with pytest.raises(NotImplementedError):
        check("0.0.1", TODO, raise_on_fail=True)


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(KeyError, match="no check for exercise '9.9.9'"):
        check("9.9.9", 1)


def test_an_id_cannot_get_two_checks():
    with pytest.raises(ValueError, match="already has a check"):
        exercise("0.0.1")(lambda answer: None)


def test_known_lists_registered_checks():
    assert "0.0.1" in exercises.known()


@pytest.mark.parametrize("use", [
    lambda t: t + 1, lambda t: t[0], lambda t: len(t), lambda t: float(t), lambda t: t(),
    lambda t: t.shape, lambda t: bool(t), lambda t: np.asarray(t, dtype=float) + 1,
], ids=["add", "index", "len", "float", "call", "attribute", "bool", "numpy"])
def test_todo_refuses_every_use(use):
    with pytest.raises(NotImplementedError, match="not attempted yet"):
        use(TODO)


@pytest.mark.parametrize("bad", ["1", "one.two", "", 1.2, None])
def test_malformed_ids_are_rejected(bad):
    with pytest.raises(ValueError, match="must look like '1.1.2'"):
        check(bad, 1)
    with pytest.raises(ValueError, match="must look like '1.1.2'"):
        exercise(bad)
