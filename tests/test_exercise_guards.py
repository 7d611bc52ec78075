"""Exercise checks cannot hang a cell and do not pass answers of the wrong kind."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from llmbook.exercises import Incorrect, TooSlow, check, exercise, expect


@exercise("0.9.1", kind=callable)
def _double(fn):
    expect(fn(3) == 6, f"double(3) should be 6, got {fn(3)!r}")


@exercise("0.9.2", kind=float)
def _half(x):
    expect(abs(x - 0.5) < 1e-9, f"the answer is 0.5, got {x!r}")


@exercise("0.9.3")
def _nine(x):
    expect(x == 9, f"the answer is 9, got {x!r}")


def test_an_endless_loop_is_stopped_and_reported(capsys):
    def forever(x):
        while True:
            x += 1

    assert check("0.9.1", forever, time_limit=0.3) is False
    assert "too slow" in capsys.readouterr().out
    with pytest.raises(TooSlow):
        check("0.9.1", forever, time_limit=0.3, raise_on_fail=True)


def test_the_answers_own_except_exception_cannot_swallow_the_limit(capsys):
    def sneaky(x):
        while True:
            try:
                while True:
                    pass
            except Exception:  # noqa: BLE001, S110 (the point of the test)
                pass

    assert check("0.9.1", sneaky, time_limit=0.3) is False
    assert "too slow" in capsys.readouterr().out


def test_time_limit_is_validated_and_a_fast_answer_passes():
    assert check("0.9.1", lambda x: 2 * x, time_limit=5) is True
    for bad in (0, -1, float("nan"), float("inf"), "10", True):
        with pytest.raises(ValueError, match="time_limit must be"):
            check("0.9.1", lambda x: 2 * x, time_limit=bad)


@pytest.mark.parametrize("answer, hint", [
    ([6], "should be a function"), ("0.5", "should be a float; you gave a str"),
    (True, "should be a float; you gave a bool"), (float("nan"), "finite number"),
])
def test_declared_kind_is_enforced(capsys, answer, hint):
    exercise_id = "0.9.1" if hint == "should be a function" else "0.9.2"
    assert check(exercise_id, answer) is False
    assert hint in capsys.readouterr().out


def test_ints_count_as_floats():
    assert check("0.9.2", 0.5) is True
    with pytest.raises(Incorrect, match="the answer is 0.5"):
        check("0.9.2", 1, raise_on_fail=True)


@pytest.mark.parametrize("answer", [np.array([9]), torch.tensor([9]), [9]])
def test_one_element_containers_do_not_pass_by_truthiness(answer):
    with pytest.raises(Incorrect):
        check("0.9.3", answer, raise_on_fail=True)


@pytest.mark.parametrize("condition", [True, np.bool_(True), torch.tensor(True),
                                       np.array(True), torch.tensor(9) == 9])
def test_expect_takes_real_truth_values(condition):
    expect(condition, "never shown")


def test_expect_refuses_non_truth_values():
    for condition in (np.array([True]), 1, "yes", [True], torch.ones(1, dtype=torch.bool)):
        with pytest.raises(Incorrect, match="unexpected kind"):
            expect(condition, "hint")


def test_kind_must_be_a_type_or_callable():
    with pytest.raises(TypeError, match="kind must be a type"):
        exercise("0.9.9", kind="float")


def test_an_alarm_set_by_the_caller_survives_a_check():
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert check("0.9.1", lambda x: 2 * x, time_limit=5) is True
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 30.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
