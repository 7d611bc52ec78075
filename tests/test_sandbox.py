"""llmbook.sandbox: the limits hold, and isolation works where the system allows it."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from llmbook.sandbox import SandboxResult, isolation, run_python

needs_ns = pytest.mark.skipif(not isolation().namespaces,
                              reason=f"no namespaces here: {isolation().reason}")


def test_a_program_that_passes_and_one_that_fails():
    r = run_python("print(6 * 7)")
    assert isinstance(r, SandboxResult)
    assert r.passed and r.status == "passed" and r.stdout == "42\n" and r.error == ""
    r = run_python("def f():\n    return 1\nassert f() == 2, 'wrong'\n")
    assert not r.passed and r.status == "failed" and r.error == "AssertionError: wrong"
    r = run_python("def f(:\n")
    assert r.status == "failed" and r.error.startswith("SyntaxError")


def test_infinite_loop_is_stopped():
    r = run_python("while True:\n    pass\n", timeout=1.0)
    assert r.timeout and not r.passed and r.error == "timeout"


def test_memory_bomb_raises_memory_error():
    r = run_python("x = bytearray(4 * 1024 ** 3)\nprint('allocated')\n", memory_mb=256)
    assert r.status == "failed" and "MemoryError" in r.error and "allocated" not in r.stdout


def test_the_limit_is_the_one_asked_for():
    code = "x = bytearray(300 * 1024 ** 2)\nprint('ok')\n"
    assert run_python(code, memory_mb=1024).passed
    assert not run_python(code, memory_mb=256).passed


def test_environment_is_scrubbed_and_cwd_is_a_fresh_temp_dir(monkeypatch):
    monkeypatch.setenv("LLMBOOK_SECRET_TOKEN", "hunter2")
    r = run_python("import os\nprint(sorted(os.environ))\nprint(os.getcwd())\n"
                   "print(os.listdir('.'))\n")
    assert r.passed and "LLMBOOK_SECRET_TOKEN" not in r.stdout and "hunter2" not in r.stdout
    lines = r.stdout.splitlines()
    assert "llmbook-sandbox-" in lines[1] and lines[2] == "['main.py']"
    assert not Path(lines[1]).exists()                              # removed afterwards


def test_writing_inside_the_temp_dir_works():
    r = run_python("open('out.txt', 'w').write('hi')\nprint(open('out.txt').read())\n")
    assert r.passed and r.stdout == "hi\n"


@needs_ns
def test_write_outside_the_temp_dir_is_refused(tmp_path):
    target = tmp_path / f"escape-{uuid.uuid4().hex}.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')\n")
    assert r.isolated and r.status == "failed" and "Read-only file system" in r.error
    assert not target.exists()


def test_without_isolation_the_same_write_succeeds(tmp_path):
    """What the docstring warns about: without namespaces nothing stops the write."""
    target = tmp_path / "written.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')\n", isolate=False)
    assert r.passed and not r.isolated and target.read_text() == "x"


@needs_ns
def test_no_network():
    code = ("import socket\ns = socket.socket()\ns.settimeout(3)\n"
            "s.connect(('192.0.2.1', 80))\n")
    r = run_python(code, timeout=10)
    assert r.status == "failed" and "unreachable" in r.error.lower()


@needs_ns
def test_child_processes_die_with_the_sandbox():
    marker = f"llmbook-orphan-{uuid.uuid4().hex}"
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 60'])\n"
            "time.sleep(60)\n")
    r = run_python(code, timeout=1.0)
    assert r.timeout
    alive = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                alive.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                pass
    assert not any(marker.encode() in cmd for cmd in alive)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"code": b"print(1)"}, TypeError, "code must be a str"),
    ({"code": "", "timeout": 0}, ValueError, "timeout must be"),
    ({"code": "", "timeout": float("nan")}, ValueError, "timeout must be"),
    ({"code": "", "memory_mb": 10}, ValueError, "memory_mb must be >= 64"),
    ({"code": "", "memory_mb": 1.5}, ValueError, "memory_mb must be a positive int"),
    ({"code": "", "file_mb": 0}, ValueError, "file_mb must be a positive int"),
    ({"code": "", "isolate": "yes"}, TypeError, "isolate must be True or False"),
])
def test_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        run_python(**kwargs)
