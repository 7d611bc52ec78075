"""Run an untrusted Python program in a separate, limited process.

``run_python(code)`` writes ``code`` into a fresh temporary directory and runs it with
this interpreter in **isolated mode** (``python -I -B``) as a child process, never in
the caller's process, with:

- a **wall-clock time limit** (the whole process group is killed when it is reached)
  and a CPU-time rlimit a little above it;
- a **memory limit**: ``RLIMIT_AS`` (address space), so a large allocation fails with
  ``MemoryError`` instead of taking the machine's memory;
- a **file-size limit** (``RLIMIT_FSIZE``) and no core dumps;
- a **scrubbed environment**: only ``PATH``, ``HOME`` and ``TMPDIR`` (both the temporary
  directory), ``LANG`` and ``PYTHONHASHSEED``; no tokens or keys of the caller;
- the temporary directory as working directory, deleted afterwards;
- where Linux lets an ordinary user create namespaces (``unshare -r``), **no network**
  (a new network namespace with only a loopback that is down), **a read-only file
  system** except the temporary directory (a new mount namespace in which every mount
  is remounted read-only) and **a new PID namespace** (killing the sandbox kills every
  process it started). :func:`isolation` says what this machine allows; the result of
  every run says whether it was isolated.

What it does **not** protect against (do not run code you would not run yourself on
a machine that matters with only this):

- without namespaces (macOS, containers that forbid them) there is no network or file
  system isolation at all: the program can read and write everything the caller can;
- even with them, the program can **read** every file the caller can read (keys in
  ``~/.ssh``, the caller's source code), only not write them;
- it runs as the caller's user, with the same kernel: a kernel exploit escapes it;
  there is no seccomp filter on system calls;
- ``RLIMIT_AS`` limits address space, not resident memory, and is per process, so a
  program can start several processes, each with the full limit (there is no limit on
  the number of processes; in the PID namespace they all die with the sandbox);
- CPU time is limited per process and wall time for the group; a program can still
  fill the temporary directory up to the file-size limit per file, and shared memory
  or other processes' sockets outside the network namespace (abstract Unix sockets)
  are not covered by the read-only mounts.

Real services use containers, gVisor or separate virtual machines for this.
"""
from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from llmbook._validate import finite, positive_int

__all__ = ["Isolation", "SandboxResult", "isolation", "run_python"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class Isolation:
    """What the operating system lets the sandbox do here."""

    namespaces: bool     # user + network + mount + PID namespaces via ``unshare -r``
    reason: str          # why not, when ``namespaces`` is False


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run.

    ``status`` is ``"passed"`` (exit code 0), ``"failed"`` (any other exit, e.g. an
    exception or a failed ``assert``) or ``"timeout"``. ``error`` is the last line of
    standard error (e.g. ``"MemoryError"``), empty when it passed.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    isolated: bool

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def timeout(self) -> bool:
        return self.status == "timeout"

    @property
    def error(self) -> str:
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        if self.timeout:
            return "timeout"
        return lines[-1] if (lines and not self.passed) else ""


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    """Whether ``unshare -r`` can give the sandbox its own network, mount and PID
    namespaces on this machine (tried once, then cached)."""
    if not sys.platform.startswith("linux"):
        return Isolation(False, f"namespaces are a Linux feature; this is {sys.platform}")
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return Isolation(False, "the unshare and mount programs (util-linux) are missing")
    cmd = _unshare_prefix() + ["sh", "-c", "mount -o remount,bind,ro / && echo ok"]
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Isolation(False, f"unshare failed: {e}")
    if out.returncode != 0 or out.stdout.strip() != "ok":
        return Isolation(False, "unshare -r is not allowed here: "
                                + (out.stderr.strip().splitlines() or ["no message"])[-1])
    return Isolation(True, "")


def _unshare_prefix() -> list[str]:
    return ["unshare", "--map-root-user", "--net", "--mount", "--pid", "--fork",
            "--kill-child", "--propagation", "private"]


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            field = line.split()[1]
            # /proc/self/mounts escapes space, tab, newline and backslash as octal
            for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"),
                             ("\\134", "\\")):
                field = field.replace(code, ch)
            points.append(field)
    return sorted(set(points), key=len)


def _launcher(memory_mb: int, cpu_s: int, file_mb: int) -> str:
    """The child's first lines: set the rlimits, then run ``main.py`` as ``__main__``.
    (Set in the child itself, not with ``preexec_fn``, which is unsafe in a threaded
    parent such as a notebook running PyTorch.)"""
    mem, fsize = memory_mb * _MB, file_mb * _MB
    return ("import resource, runpy, sys; R = resource; "
            f"R.setrlimit(R.RLIMIT_AS, ({mem}, {mem})); "
            f"R.setrlimit(R.RLIMIT_CPU, ({cpu_s}, {cpu_s})); "
            f"R.setrlimit(R.RLIMIT_FSIZE, ({fsize}, {fsize})); "
            "R.setrlimit(R.RLIMIT_CORE, (0, 0)); "
            "sys.argv = ['main.py']; del R, resource; "
            "runpy.run_path('main.py', run_name='__main__')")


def run_python(code: str, timeout: float = 5.0, memory_mb: int = 512, file_mb: int = 16,
               isolate: bool = True) -> SandboxResult:
    """Run ``code`` (a whole Python program) in a sandboxed child process.

    Args:
        code: the program's source text; it is written to ``main.py`` in a new
            temporary directory, which is its working directory and is removed after.
        timeout: wall-clock limit in seconds (> 0); the CPU-time rlimit is
            ``ceil(timeout) + 1``.
        memory_mb: address-space limit of the program's process in MiB (>= 64; the
            interpreter itself needs some 20-40 MiB of address space).
        file_mb: the largest file the program may write, in MiB.
        isolate: use the namespaces of :func:`isolation` where available (no network,
            read-only file system outside the temporary directory, own PID namespace).

    Returns:
        a :class:`SandboxResult`; ``.isolated`` says whether namespaces were used.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str (a Python program), got {type(code).__name__}")
    timeout = finite("timeout", timeout, gt=0)
    memory_mb = positive_int("memory_mb", memory_mb)
    if memory_mb < 64:
        raise ValueError(f"memory_mb must be >= 64 (the interpreter needs that much address "
                         f"space to start), got {memory_mb}")
    file_mb = positive_int("file_mb", file_mb)
    if not isinstance(isolate, bool):
        raise TypeError(f"isolate must be True or False, got {isolate!r}")
    use_ns = isolate and isolation().namespaces
    with tempfile.TemporaryDirectory(prefix="llmbook-sandbox-") as tmp:
        tmp = os.path.realpath(tmp)
        with open(os.path.join(tmp, "main.py"), "w", encoding="utf-8") as f:
            f.write(code)
        python = [sys.executable, "-I", "-B", "-c",
                  _launcher(memory_mb, int(timeout) + 2, file_mb)]
        if use_ns:
            # the working directory is entered again after the bind mount, or relative
            # paths would resolve on the (now read-only) mount underneath it
            ro = [f"mount -o remount,bind,ro {shlex.quote(m)} 2>/dev/null"
                  for m in _mount_points() if m != tmp]
            script = " ; ".join([f"mount --bind {shlex.quote(tmp)} {shlex.quote(tmp)}"]
                                + ro + [f"cd {shlex.quote(tmp)}", "exec " + shlex.join(python)])
            cmd = _unshare_prefix() + ["sh", "-c", script]
        else:
            cmd = python
        env = {"PATH": os.defpath, "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            status = "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            status = "timeout"
        seconds = time.perf_counter() - t0
    return SandboxResult(status, proc.returncode, out[-20000:], err[-20000:], seconds, use_ns)
