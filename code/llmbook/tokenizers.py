"""Tokenizers from scratch: characters, and byte-level BPE (the GPT-2 kind).

A tokenizer turns text into a list of integer ids and back. Two are here:

* :class:`CharTokenizer` — one id per distinct character of a training text.
* :class:`BPETokenizer` — byte-level byte-pair encoding (Sennrich et al. 2016;
  Radford et al. 2019). Text is UTF-8 bytes, so *any* string can be encoded; the
  tokenizer learns ``merges``, an ordered list of byte-string pairs, and applies them
  in that order. :meth:`BPETokenizer.train` learns merges from a text;
  :meth:`BPETokenizer.from_gpt2` loads GPT-2's real ``encoder.json`` + ``vocab.bpe``
  and reproduces its ids exactly.

Ids of a trained tokenizer: ``0..255`` are the raw bytes, then one id per merge in
the order learned, then the special tokens (e.g. ``<|endoftext|>``).
"""
from __future__ import annotations

import heapq
import itertools
import json
import os
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import regex

# GPT-2's pre-tokenizer: contractions, letters, numbers, punctuation runs, spaces.
# A leading space sticks to the word after it, so " the" is one pre-token.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"


# ----------------------------------------------------------------------------- chars
class CharTokenizer:
    """One id per distinct character of ``text`` (ids follow sorted character order)."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer needs a non-empty str to learn its characters")
        self.chars: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(self.chars)}
        self.itos: dict[int, str] = dict(enumerate(self.chars))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """``str`` -> list of ids; raises ``ValueError`` naming characters never seen."""
        _check_str(text)
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]!r}")
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        """List of ids -> ``str``; raises ``ValueError`` for an id out of range."""
        ids = _as_id_list(ids, self.vocab_size)
        return "".join(self.itos[i] for i in ids)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# ------------------------------------------------------------------- byte <-> printable
@cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from the 256 byte values to printable characters.

    Printable bytes map to themselves; the others (space, control bytes, ...) are
    shifted to code points from 256 on, so a space becomes ``"Ġ"`` and a newline
    ``"Ċ"``. ``encoder.json`` and ``vocab.bpe`` are written in this alphabet.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping, shift = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


def _to_printable(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def _from_printable(text: str) -> bytes:
    inverse = {ch: b for b, ch in bytes_to_unicode().items()}
    try:
        return bytes(inverse[ch] for ch in text)
    except KeyError as err:
        raise ValueError(f"{text!r} is not in GPT-2's byte alphabet") from err


# ---------------------------------------------------------------------------- BPE
class BPETokenizer:
    """Byte-level BPE: ``merges`` (ordered byte pairs), ``vocab`` (id -> bytes), specials.

    Build one with :meth:`train` or :meth:`from_gpt2`, or :meth:`load` a saved one.
    Encoding a pre-token of ``n`` bytes costs ``O(n log n)`` (a heap of candidate pairs,
    not a rescan per merge), and the ids of recent pre-tokens are kept in an LRU cache
    of at most ``cache_size`` entries.
    """

    cache_size: int = 16384
    _CACHE_MAX_WORD = 128          # longer pre-tokens are rare: not worth caching

    def __init__(self, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
                 special_tokens: dict[str, int] | None = None,
                 pattern: str = GPT2_PATTERN) -> None:
        self.vocab: dict[int, bytes] = dict(vocab)
        self.merges: list[tuple[bytes, bytes]] = list(merges)
        self.special_tokens: dict[str, int] = dict(special_tokens or {})
        self.pattern = pattern
        self._regex = regex.compile(pattern)
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._ids = {tok: i for i, tok in self.vocab.items()
                     if i not in self.special_tokens.values()}
        self._special_regex = None
        if self.special_tokens:  # longest first, so one special is never cut by another
            alternatives = sorted(self.special_tokens, key=len, reverse=True)
            self._special_regex = regex.compile("(" + "|".join(map(regex.escape, alternatives)) + ")")
        self._cache: OrderedDict[str, list[int]] = OrderedDict()
        self._check_consistent()

    def _check_consistent(self) -> None:
        missing = [b for b in range(256) if bytes([b]) not in self._ids]
        if missing:
            raise ValueError(f"vocab lacks single bytes {missing[:5]}...: cannot encode all text")
        for a, b in self.merges:
            if a + b not in self._ids:
                raise ValueError(f"merge {a!r} + {b!r} gives a token missing from the vocab")
        for text, i in self.special_tokens.items():
            self.vocab[i] = text.encode("utf-8")

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (ids run from 0 to ``vocab_size - 1``)."""
        return max(self.vocab) + 1

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str | Iterable[str | os.PathLike], vocab_size: int,
              special_tokens: Iterable[str] = (ENDOFTEXT,),
              pattern: str = GPT2_PATTERN, verbose: bool = False) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        ``text`` is one string or an iterable of texts (strings, or paths of UTF-8 files,
        read one at a time), so a corpus need not fit in memory as one string; only the
        pre-token counts are kept. Each text is pre-tokenized on its own: the boundary
        between two texts is a pre-token boundary.

        The text is split into pre-tokens with ``pattern`` (GPT-2's regex), counted,
        and merges are learned over the word counts: each step merges the most frequent
        adjacent pair and updates only the pair counts of the words that contained it.
        Ties go to the pair that sorts first with single bytes in GPT-2's printable
        alphabet and merged tokens after them in the order learned — the rule of
        Hugging Face ``tokenizers``, so both learn the same merges from the same text.
        Training stops early when no pair is left.
        """
        special_tokens = list(special_tokens)
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            raise ValueError(f"vocab_size must be an int >= 256 + {len(special_tokens)} specials, "
                             f"got {vocab_size!r}")
        n_merges = vocab_size - 256 - len(special_tokens)
        compiled = regex.compile(pattern)
        counts: Counter = Counter()
        for piece in _texts(text):
            counts.update(_count_pretokens(piece, special_tokens, compiled))
        if not counts and not isinstance(text, str):
            raise ValueError("BPETokenizer.train: the iterable of texts was empty")
        word_counts = Counter({tuple(w.encode("utf-8")): c for w, c in counts.items()})
        merges_ids = _learn_merges(word_counts, n_merges, verbose)

        vocab = {i: bytes([i]) for i in range(256)}
        merges: list[tuple[bytes, bytes]] = []
        for new_id, (a, b) in enumerate(merges_ids, start=256):
            merges.append((vocab[a], vocab[b]))
            vocab[new_id] = vocab[a] + vocab[b]
        specials = {s: len(vocab) + k for k, s in enumerate(special_tokens)}
        return cls(vocab, merges, specials, pattern)

    # --------------------------------------------------------------- GPT-2 files
    @classmethod
    def from_gpt2(cls, encoder_json_path: str | Path, vocab_bpe_path: str | Path) -> BPETokenizer:
        """Load GPT-2's tokenizer: ``encoder.json`` (token -> id) and ``vocab.bpe`` (merges)."""
        try:
            encoder = json.loads(Path(encoder_json_path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{encoder_json_path} is not a valid encoder.json: {err}") from err
        if not isinstance(encoder, dict):
            raise ValueError(f"{encoder_json_path} must map tokens to ids (a JSON object)")
        lines = Path(vocab_bpe_path).read_text(encoding="utf-8").split("\n")
        merges = _parse_merges(lines[1:], vocab_bpe_path)  # line 0 is "#version: 0.2"
        specials = {tok: i for tok, i in encoder.items() if tok == ENDOFTEXT}
        vocab = {i: _from_printable(tok) for tok, i in encoder.items() if tok not in specials}
        return cls(vocab, merges, specials, GPT2_PATTERN)

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """``str`` -> list of ids. Special tokens written in the text become their id."""
        _check_str(text)
        ids: list[int] = []
        chunks = self._special_regex.split(text) if self._special_regex else [text]
        for chunk in chunks:
            if chunk in self.special_tokens:
                ids.append(self.special_tokens[chunk])
                continue
            for word in self._regex.findall(chunk):
                ids.extend(self._encode_word(word))
        return ids

    def encode_iterable(self, texts: Iterable[str]) -> Iterator[int]:
        """Yield the ids of ``"".join(texts)`` without holding the whole text (e.g. the
        lines of a large file): exactly ``encode("".join(texts))``.

        Only the pre-tokens that more text cannot change are encoded as each piece
        arrives: the last pre-token (``"\\n\\n"`` may still grow, ``"'"`` may become
        ``"'s"``) and a tail that could begin a special token are held back.
        """
        if isinstance(texts, str):
            raise TypeError("encode_iterable expects an iterable of str pieces (e.g. an "
                            "open file), got one str: use encode(text)")
        buf = ""
        for piece in texts:
            _check_str(piece)
            buf += piece
            ids, cut = self._encode_stable(buf)
            yield from ids
            buf = buf[cut:]
        if buf:
            yield from self.encode(buf)

    def _encode_stable(self, buf: str) -> tuple[list[int], int]:
        """Ids of the pre-tokens of ``buf`` that more text cannot change, and how many
        characters they cover. The pre-tokens come from splitting ``buf`` itself (the
        prefix alone could split differently: ``"\\n\\n"`` is one pre-token, but two in
        ``"\\n\\na"``)."""
        hold = len(buf)
        for special in self.special_tokens:          # a special may be cut in two
            for k in range(min(len(special) - 1, len(buf)), 0, -1):
                if buf.endswith(special[:k]):
                    hold = min(hold, len(buf) - k)
                    break
        text, ids, start = buf[:hold], [], 0
        if self._special_regex is not None:
            for m in self._special_regex.finditer(text):
                for word in self._regex.findall(text, start, m.start()):
                    ids.extend(self._encode_word(word))
                ids.append(self.special_tokens[m.group()])
                start = m.end()
        words = [(m.start(), m.group()) for m in self._regex.finditer(text, start)]
        for _, word in words[:-1]:                   # the last one may still grow
            ids.extend(self._encode_word(word))
        return ids, (words[-1][0] if words else start)

    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is not None:
            self._cache.move_to_end(word)
            return ids
        ids = [self._ids[p] for p in self.bpe(word.encode("utf-8"))]
        if len(word) <= self._CACHE_MAX_WORD:
            self._cache[word] = ids
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)          # the least recently used
        return ids

    def bpe(self, word: bytes) -> list[bytes]:
        """Apply the merges to one pre-token: repeatedly merge its best-ranked pair.

        ``bpe(b" hello")`` -> e.g. ``[b" hello"]``; unknown words fall apart into pieces.
        Same result as rescanning every pair after each merge (leftmost first among equal
        ranks), in ``O(n log n)``: the candidate pairs sit in a heap keyed by
        ``(rank, position)`` over a linked list of parts; stale entries are skipped.
        """
        parts: list[bytes] = [bytes([b]) for b in word]
        n = len(parts)
        if n < 2:
            return parts
        ranks = self._ranks
        nxt = list(range(1, n)) + [-1]
        prv = list(range(-1, n - 1))
        heap = [(r, i) for i in range(n - 1)
                if (r := ranks.get((parts[i], parts[i + 1]))) is not None]
        heapq.heapify(heap)
        while heap:
            rank, i = heapq.heappop(heap)
            j = nxt[i]
            if parts[i] is None or j < 0 or ranks.get((parts[i], parts[j])) != rank:
                continue                              # stale: a neighbour changed
            parts[i] = parts[i] + parts[j]
            parts[j] = None
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prv[nxt[j]] = i
            for a in (prv[i], i):
                b = nxt[a] if a >= 0 else -1
                if a >= 0 and b >= 0:
                    r = ranks.get((parts[a], parts[b]))
                    if r is not None:
                        heapq.heappush(heap, (r, a))
        return [p for p in parts if p is not None]

    def decode(self, ids: Iterable[int]) -> str:
        """List of ids -> ``str`` (invalid UTF-8 from a partial sequence becomes ``"�"``)."""
        ids = _as_id_list(ids, self.vocab_size)
        unknown = [i for i in ids if i not in self.vocab]
        if unknown:
            raise ValueError(f"token ids not in the vocabulary: {unknown[:5]}")
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each id's bytes as text, for display (``"�"`` where a token splits a character)."""
        return [self.vocab[i].decode("utf-8", errors="replace")
                for i in _as_id_list(ids, self.vocab_size)]

    # ------------------------------------------------------------------- saving
    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON (tokens in GPT-2's printable byte alphabet)."""
        data = {
            "format": "llmbook.BPETokenizer/1",
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "vocab": {_to_printable(tok): i for i, tok in self.vocab.items()
                      if i not in self.special_tokens.values()},
            "merges": [f"{_to_printable(a)} {_to_printable(b)}" for a, b in self.merges],
        }
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a saved llmbook BPETokenizer: {err}") from err
        if not isinstance(data, dict) or data.get("format") != "llmbook.BPETokenizer/1":
            raise ValueError(f"{path} is not a saved llmbook BPETokenizer")
        missing = [k for k in ("vocab", "merges", "special_tokens", "pattern") if k not in data]
        if missing:
            raise ValueError(f"{path}: saved tokenizer lacks {missing}")
        vocab = {i: _from_printable(tok) for tok, i in data["vocab"].items()}
        merges = _parse_merges(data["merges"], path)
        return cls(vocab, merges, data["special_tokens"], data["pattern"])

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)})")


# ------------------------------------------------------------------ training helpers
def _parse_merges(lines: Iterable[str], where: object) -> list[tuple[bytes, bytes]]:
    """``"a b"`` lines (GPT-2's printable alphabet) -> byte pairs; blank lines skipped."""
    merges = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{where}: merge {n} must be two tokens separated by one space, "
                             f"got {line!r}")
        merges.append((_from_printable(parts[0]), _from_printable(parts[1])))
    return merges


def _texts(text: str | Iterable[str | os.PathLike]) -> Iterator[str]:
    """One string, or each item of an iterable: a str, or a path read as UTF-8."""
    if isinstance(text, str):
        yield text
        return
    if isinstance(text, (bytes, os.PathLike)) or not isinstance(text, Iterable):
        raise TypeError(f"text must be a str or an iterable of str / paths, got "
                        f"{type(text).__name__}")
    for i, item in enumerate(text):
        if isinstance(item, os.PathLike):
            yield Path(item).read_text(encoding="utf-8")
        elif isinstance(item, str):
            yield item
        else:
            raise TypeError(f"text[{i}] must be a str or a path, got {type(item).__name__}")


def _count_pretokens(text: str, special_tokens: list[str], pattern: regex.Pattern) -> Counter:
    """Pre-tokenize ``text`` (specials removed first) and count each pre-token."""
    chunks = [text]
    if special_tokens:
        splitter = regex.compile("|".join(map(regex.escape, special_tokens)))
        chunks = splitter.split(text)
    counts: Counter = Counter()
    for chunk in chunks:
        counts.update(pattern.findall(chunk))
    return counts


def _count_words(text: str, special_tokens: list[str], pattern: regex.Pattern) -> Counter:
    """Pre-tokenize ``text`` (specials removed first) and count each pre-token's bytes."""
    counts = _count_pretokens(text, special_tokens, pattern)
    return Counter({tuple(w.encode("utf-8")): c for w, c in counts.items()})


def _learn_merges(word_counts: Counter, n_merges: int, verbose: bool) -> list[tuple[int, int]]:
    """Greedy BPE over word counts with incremental pair-count updates.

    ``pair_counts[p]`` is how often pair ``p`` occurs, weighted by word frequency;
    ``where[p]`` lists the words that (may) contain it. A heap of
    ``(-count, tie_key, pair)`` finds the best pair; stale entries are skipped lazily.
    """
    order = _tie_order()

    def entry(pair: tuple[int, int], count: int) -> tuple:
        return (-count, (order.get(pair[0], pair[0]), order.get(pair[1], pair[1])), pair)

    words = [list(w) for w in word_counts]
    freqs = list(word_counts.values())
    pair_counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = {}
    for wi, word in enumerate(words):
        for pair in itertools.pairwise(word):
            pair_counts[pair] += freqs[wi]
            where.setdefault(pair, set()).add(wi)
    heap = [entry(p, c) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    while len(merges) < n_merges and heap:
        neg, _, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg or -neg <= 0:
            continue  # stale entry: this pair's count changed since it was pushed
        new_id = 256 + len(merges)
        merges.append(pair)
        changed: set[tuple[int, int]] = set()
        for wi in where.pop(pair, ()):
            word, f = words[wi], freqs[wi]
            if len(word) < 2:
                continue
            for p in itertools.pairwise(word):
                pair_counts[p] -= f
                changed.add(p)
            word = _merge(word, pair, new_id)
            words[wi] = word
            for p in itertools.pairwise(word):
                pair_counts[p] += f
                changed.add(p)
                where.setdefault(p, set()).add(wi)
        del pair_counts[pair]
        changed.discard(pair)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, entry(p, pair_counts[p]))
            else:
                del pair_counts[p]
        if verbose and len(merges) % 500 == 0:
            print(f"{len(merges)} merges, last {pair} x{-neg}")
    return merges


def _tie_order() -> dict[int, int]:
    """Rank of each byte when the 256 bytes are sorted by their printable character."""
    table = bytes_to_unicode()
    return {b: rank for rank, b in enumerate(sorted(range(256), key=lambda b: table[b]))}


def _merge(parts: list, pair: tuple, new) -> list:
    """Replace every non-overlapping occurrence of ``pair`` in ``parts`` (left to right)."""
    out, i = [], 0
    while i < len(parts):
        if i + 1 < len(parts) and parts[i] == pair[0] and parts[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


# ------------------------------------------------------------------- input checks
def _check_str(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected text as str, got {type(text).__name__}")


def _as_id_list(ids: Iterable[int], vocab_size: int) -> list[int]:
    if hasattr(ids, "tolist"):  # a torch tensor or numpy array
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)):
        raise TypeError("decode expects a list of int ids, got text")
    ids = list(ids)
    for i in ids:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"token ids must be ints, got {type(i).__name__}")
        if not 0 <= i < vocab_size:
            raise ValueError(f"token id {i} out of range [0, {vocab_size})")
    return ids
