"""Execute the book's notebooks for `make book`: one process per notebook, one retry.

1. The sources are copied into DEST (``tools/prepare_ci_book.py``: its ``_config.yml``
   has execution off), so the working tree's notebooks are never touched.
2. Each notebook is executed by nbclient in a process of its own (``--one``), under a
   time limit for the whole notebook as well as nbclient's per-cell limit. A kernel that
   dies, hangs, or loses its channels (exit status 2) is retried once in a fresh
   process; an exception raised by a cell (exit status 1) is a real failure and is not.
   An executed notebook whose outputs fail the checks of ``tools/executed_checks.py``
   (duplicated stream output, progress-bar debris) counts as a kernel failure too, so a
   reader never sees them.
3. ``tools/finish_notebooks.py`` adds the build stamp, folds the setup cell and gives
   every figure its alt text. `make book` then builds DEST with execution off.

An executed notebook is kept in CACHE with the SHA-256 of its source, the scale and the
package's code (every file of ``code/llmbook``), and reused while all three are unchanged,
so a second `make book` re-runs only what changed, and a change to the package re-runs
everything (its outputs may depend on any of it).

Usage: python tools/execute_book.py DEST [--offline DIR] [--cache DIR] [--cell-timeout S]
                                         [--notebook-timeout S] [--retries N] [--jobs N]
       python tools/execute_book.py --one NOTEBOOK --cell-timeout S   (used by the above)
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import executed_checks
import finish_notebooks
from prepare_ci_book import prepare

OK, CELL_ERROR, KERNEL_FAILURE = 0, 1, 2


class IdleKernelWatchdog:
    """Stops a kernel that sits idle while nbclient waits for it.

    Seen under heavy load: the kernel idles in its event loop while the client still waits
    for the reply to the cell it sent (a message lost between them), until the cell's
    time limit. A notebook of this book never waits idle for minutes; a kernel process
    that used less than ``min_cpu`` seconds of CPU over ``idle_limit`` seconds is killed,
    which nbclient reports as a dead kernel, and the notebook is retried at once.
    """

    def __init__(self, km, idle_limit: float, min_cpu: float = 1.0, every: float = 10.0):
        import threading

        self.km, self.idle_limit, self.min_cpu, self.every = km, idle_limit, min_cpu, every
        self.verdict = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        return getattr(provisioner, "pid", None) if provisioner is not None else None

    @staticmethod
    def _cpu_seconds(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _watch(self) -> None:
        history: list[tuple[float, float]] = []
        while not self._stop.wait(self.every):
            pid = self._pid()
            cpu = self._cpu_seconds(pid) if pid else None
            if cpu is None:
                continue
            now = time.monotonic()
            history = [(t, c) for t, c in history if now - t <= self.idle_limit] + [(now, cpu)]
            start_t, start_cpu = history[0]
            if now - start_t >= self.idle_limit - self.every and cpu - start_cpu < self.min_cpu:
                self.verdict = (f"the kernel used {cpu - start_cpu:.2f} s of CPU in the last "
                                f"{now - start_t:.0f} s while a cell was running: it lost a "
                                "message and would wait for ever; stopped it")
                os.kill(pid, signal.SIGKILL)
                return


def execute_one(path: Path, cell_timeout: int, idle_limit: float = 300) -> int:
    """Execute ``path`` in place (atomically); return OK, CELL_ERROR or KERNEL_FAILURE."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="llmbook-kernel-") as sockets:
        # IPC sockets (files, by absolute path: the kernel runs in the notebook's folder)
        # rather than TCP ports: no port race with other builds on the machine
        km = AsyncKernelManager(kernel_name="python3", transport="ipc",
                           ip=str(Path(sockets) / "kernel"))
        client = NotebookClient(nb, km=km, timeout=cell_timeout, kernel_name="python3",
                                record_timing=True, allow_errors=False, iopub_timeout=60,
                                resources={"metadata": {"path": str(path.parent)}})
        watchdog = IdleKernelWatchdog(km, idle_limit, every=min(10.0, idle_limit / 4))
        try:
            with watchdog:       # cleanup_kc: shut the kernel down (nbclient does not when
                client.execute(cleanup_kc=True)   # given a manager): no orphan outlives us
        except CellExecutionError as exc:
            print(f"{path}: a cell raised\n{str(exc)[-3000:]}", file=sys.stderr)
            return CELL_ERROR
        except (CellTimeoutError, DeadKernelError, RuntimeError, OSError) as exc:
            why = watchdog.verdict or f"{type(exc).__name__}: {str(exc)[:500]}"
            print(f"{path}: kernel failure: {why}", file=sys.stderr)
            return KERNEL_FAILURE
        except Exception as exc:  # zmq errors and the like: the kernel's channels broke
            print(f"{path}: kernel failure: {type(exc).__name__}: {exc}", file=sys.stderr)
            return KERNEL_FAILURE
    failed = executed_checks.failed_solutions(nb)
    if failed:                     # a bug in the book, not in the kernel: no retry
        print(f"{path}: " + "\n  ".join(failed), file=sys.stderr)
        return CELL_ERROR
    problems = executed_checks.problems(nb)
    if problems:
        print(f"{path}: outputs a reader must not see:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return KERNEL_FAILURE
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return OK


PACKAGE = ROOT / "code" / "llmbook"


def source_key(source: Path, package: Path = PACKAGE) -> str:
    """What an executed copy depends on: the notebook's bytes, the scale, the package."""
    h = hashlib.sha256(source.read_bytes())
    h.update(os.environ.get("LLMBOOK_SCALE", "").encode())
    for f in sorted(package.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.relative_to(package).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def run_in_own_process(path: Path, cell_timeout: int, notebook_timeout: int,
                       idle_limit: float = 300, threads: int | None = None) -> int:
    cmd = [sys.executable, __file__, "--one", str(path), "--cell-timeout", str(cell_timeout),
           "--idle-limit", str(idle_limit)]
    env = dict(os.environ)
    if threads is not None:                  # the kernel inherits it: torch reads it
        env["OMP_NUM_THREADS"] = str(threads)
    try:
        return subprocess.run(cmd, timeout=notebook_timeout, check=False, env=env).returncode
    except subprocess.TimeoutExpired:
        print(f"{path}: still running after {notebook_timeout} s: stopped", file=sys.stderr)
        return KERNEL_FAILURE


def threads_per_notebook(jobs: int) -> int | None:
    """With several notebooks at once, share the cores out (unless OMP_NUM_THREADS is set):
    two notebooks each running torch on every core would slow each other down."""
    if jobs == 1 or "OMP_NUM_THREADS" in os.environ:
        return None
    return max(1, (os.cpu_count() or 1) // jobs)


def execute_with_retries(path: Path, rel: Path, label: str, cell_timeout: int,
                         notebook_timeout: int, retries: int, threads: int | None) -> int:
    """Execute one notebook, retrying a kernel failure in a fresh process."""
    for attempt in range(retries + 1):
        start = time.perf_counter()
        rc = run_in_own_process(path, cell_timeout, notebook_timeout, threads=threads)
        took = time.perf_counter() - start
        print(f"{label} {rel}: {'ok' if rc == OK else 'FAILED'} in {took:.0f} s"
              f"{f' (attempt {attempt + 1})' if attempt else ''}", flush=True)
        if rc != KERNEL_FAILURE:
            break
        if attempt < retries:
            print(f"    kernel failure: retrying {rel} in a fresh process", flush=True)
            shutil.copy2(ROOT / rel, path)   # start again from the stripped source
    return rc


def execute_all(dest: Path, cache: Path, cell_timeout: int, notebook_timeout: int,
                retries: int, jobs: int = 1) -> list[str]:
    """Execute every notebook of ``dest/chapters``, ``jobs`` at a time; return the ones
    that failed. Notebooks share nothing but the read-only data cache, so order is free."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    notebooks = sorted((dest / "chapters").rglob("*.ipynb"))
    todo = []
    for i, path in enumerate(notebooks, 1):
        rel = path.relative_to(dest)
        key = source_key(ROOT / rel)
        cached = cache / rel
        label = f"[{i}/{len(notebooks)}]"
        if cached.is_file() and nbformat.read(cached, as_version=4).metadata.get(
                "llmbook", {}).get("source_sha256") == key:
            shutil.copy2(cached, path)
            print(f"{label} {rel}: unchanged, executed copy reused", flush=True)
        else:
            todo.append((path, rel, label, key, cached))
    threads = threads_per_notebook(jobs)

    def run(item) -> str | None:
        path, rel, label, key, cached = item
        rc = execute_with_retries(path, rel, label, cell_timeout, notebook_timeout,
                                  retries, threads)
        if rc != OK:
            return str(rel)
        nb = nbformat.read(path, as_version=4)
        nb.metadata.setdefault("llmbook", {})["source_sha256"] = key
        nbformat.write(nb, path)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, cached)
        return None

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run, todo))
    return sorted(r for r in results if r is not None)


def config_timeout() -> int:
    import yaml

    return int(yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path)
    parser.add_argument("--one", type=Path, help="execute this one notebook in place")
    parser.add_argument("--offline", type=Path, default=ROOT / "_build" / "offline")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / "executed-cache")
    parser.add_argument("--cell-timeout", type=int, default=config_timeout(),
                        help="seconds per cell (default: execute.timeout in _config.yml)")
    parser.add_argument("--notebook-timeout", type=int, default=3600)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks executed at once (1); the cores are shared out")
    parser.add_argument("--idle-limit", type=float, default=300,
                        help="seconds a kernel may sit idle in a running notebook (300)")
    args = parser.parse_args(argv)
    # No progress bars in the built book (tqdm reads TQDM_DISABLE; the kernels inherit
    # it): they are for readers who run the notebooks, and llmbook.start() already
    # silences Hugging Face's.
    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.one:
        return execute_one(args.one, args.cell_timeout, args.idle_limit)
    if args.dest is None:
        parser.error("DEST is required (or --one NOTEBOOK)")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    prepare(args.dest, args.offline)
    failed = execute_all(args.dest, args.cache, args.cell_timeout, args.notebook_timeout,
                         args.retries, args.jobs)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    finish_notebooks.finish_folder(args.dest / "chapters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
