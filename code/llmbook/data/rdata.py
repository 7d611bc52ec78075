"""A small pure-Python reader for R's lazy-load databases (``.rdx`` + ``.rdb``).

An R package stores its data sets as a pair of files:

* ``Rdata.rdx`` -- a gzip-compressed, R-serialized list whose ``variables`` element maps
  each object name to ``(offset, length)`` in the ``.rdb`` file;
* ``Rdata.rdb`` -- the objects, one after another, each a 4-byte big-endian length
  followed by a zlib stream (or, for other compression levels, a one-byte tag
  ``Z``/``2``/``X``/``0`` then the stream) holding one R-serialized object.

R's serialization (the ``X`` = XDR big-endian format) is a tree of items, each starting
with a 32-bit ``flags`` word: the low byte is the type (``SEXPTYPE``), bit 9 says the item
has attributes, bit 10 that it has a tag. This reader understands the types that data
sets use (character, integer, logical, double vectors, lists, pairlists, symbols and
references) and returns plain Python values: a character vector becomes ``list[str]``
(``None`` for ``NA``), a named list a ``dict``, a pairlist a ``dict`` keyed by tag.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from pathlib import Path
from typing import Any

# SEXPTYPE codes (R Internals, "Serialization formats").
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP, EXPRSXP = 9, 10, 13, 14, 16, 19, 20
REFSXP, NILVALUE_SXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP = 255, 254, 242, 241, 253
UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP = 252, 251, 250
NA_INTEGER = -(2**31)
LATIN1_MASK = 1 << 2  # in a CHARSXP's "levels" (flags >> 12): the bytes are latin-1
_PAIRLIST_TYPES = {LISTSXP, LANGSXP, CLOSXP, PROMSXP, 17}
_SINGLETONS = {NILVALUE_SXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP,
               UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP}


class RFormatError(ValueError):
    """The bytes are not an R serialization this reader understands."""


class _Reader:
    """Reads one XDR-format R serialization stream."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos, self.refs = buf, 0, []

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.buf, self.pos)
        self.pos += 4
        return v

    def raw(self, n: int) -> bytes:
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two more ints
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def header(self) -> None:
        if self.raw(2) != b"X\n":
            raise RFormatError("only the XDR ('X') R serialization format is supported")
        version = self.int()
        self.int(), self.int()  # writer's and minimal reader's R versions
        if version == 3:
            self.raw(self.int())  # native encoding name
        elif version != 2:
            raise RFormatError(f"unknown R serialization version {version}")

    def item(self) -> Any:
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind in _SINGLETONS:
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if kind in _PAIRLIST_TYPES:
            return self.pairlist(has_attr, has_tag)
        if kind == CHARSXP:
            return self.charsxp(flags >> 12)
        value = self.vector(kind)
        if has_attr:
            attributes = self.item()
            names = attributes.get("names") if isinstance(attributes, dict) else None
            if kind == VECSXP and names is not None:
                return dict(zip(names, value))  # a named list becomes a dict
        return value

    def pairlist(self, has_attr: bool, has_tag: bool) -> dict[str, Any]:
        """A pairlist becomes a dict tag -> value (untagged cells get their index)."""
        out: dict[str, Any] = {}
        while True:
            if has_attr:
                self.item()
            tag = self.item() if has_tag else str(len(out))
            out[tag] = self.item()
            flags = self.int()  # the CDR: another cell or the end
            kind = flags & 0xFF
            if kind == NILVALUE_SXP:
                return out
            if kind not in _PAIRLIST_TYPES:
                raise RFormatError(f"unexpected pairlist tail of type {kind}")
            has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))

    def charsxp(self, levels: int) -> str | None:
        """One string; ``levels`` carries its encoding flag (latin-1 or UTF-8/ASCII)."""
        n = self.int()
        if n == -1:
            return None  # NA_character_
        encoding = "latin-1" if levels & LATIN1_MASK else "utf-8"
        return self.raw(n).decode(encoding, errors="replace")

    def vector(self, kind: int) -> Any:
        if kind in (STRSXP, VECSXP, EXPRSXP):
            return [self.item() for _ in range(self.length())]
        if kind in (INTSXP, LGLSXP):
            n = self.length()
            vals = struct.unpack_from(f">{n}i", self.buf, self.pos)
            self.pos += 4 * n
            return [None if v == NA_INTEGER else v for v in vals]
        if kind == REALSXP:
            n = self.length()
            vals = struct.unpack_from(f">{n}d", self.buf, self.pos)
            self.pos += 8 * n
            return list(vals)
        if kind == NILSXP:
            return None
        raise RFormatError(f"R object type {kind} is not supported by this reader")


def unserialize(buf: bytes) -> Any:
    """Decode one R-serialized object (XDR format, version 2 or 3) into Python values."""
    reader = _Reader(buf)
    reader.header()
    return reader.item()


def _decompress(blob: bytes) -> bytes:
    """One ``.rdb`` record: 4-byte length, then zlib data or a tag byte and a stream."""
    if len(blob) < 5:
        raise RFormatError("lazy-load record is too short")
    expected = struct.unpack(">I", blob[:4])[0]
    body = blob[4:]
    tag = body[:1]
    if tag == b"Z":
        out = zlib.decompress(body[1:])
    elif tag == b"2":
        out = bz2.decompress(body[1:])
    elif tag == b"X":
        out = lzma.decompress(body[1:])
    elif tag == b"0":
        out = body[1:]
    else:
        out = zlib.decompress(body)
    if len(out) != expected:
        raise RFormatError(f"record decompressed to {len(out)} bytes, header says {expected}")
    return out


def read_lazyload(base: str | Path) -> dict[str, Any]:
    """Read every object of the lazy-load database ``base.rdx`` / ``base.rdb``.

    ``base`` is the path without extension, e.g. ``.../janeaustenr/data/Rdata``.
    Returns ``{object name: value}``; character vectors come back as ``list[str]``.
    """
    base = Path(base)
    rdx, rdb = base.with_suffix(".rdx"), base.with_suffix(".rdb")
    for p in (rdx, rdb):
        if not p.is_file():
            raise FileNotFoundError(f"R lazy-load file not found: {p}")
    index = unserialize(gzip.decompress(rdx.read_bytes()))
    if not isinstance(index, dict) or not isinstance(index.get("variables"), dict):
        raise RFormatError(f"{rdx} does not hold a lazy-load index")
    data = rdb.read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        out[name] = unserialize(_decompress(data[offset:offset + length]))
    return out
