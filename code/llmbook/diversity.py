"""Text metrics for generated samples: diversity, repetition and verbatim copying.

Decoding trades quality against diversity, and both extremes are measurable:

- :func:`distinct_n` (Li et al. 2016): distinct n-grams / all n-grams over a set of
  samples. Near 0 when the samples repeat themselves or each other, near 1 when every
  n-gram is new.
- :func:`repetition_rate`: within one sample, the fraction of n-grams that already
  occurred earlier in it (greedy decoding's loops).
- :class:`NgramIndex` and :func:`copy_rate`: the fraction of a sample's n-grams (8-grams
  by default) that occur verbatim in a reference text, e.g. the training set. Long
  copied n-grams are memorised text, not generated text.

Every function works on sequences of hashable items: token ids, or words from
:func:`words`.
"""
from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence

__all__ = ["NgramIndex", "copy_rate", "distinct_n", "ngrams", "repetition_rate", "words"]

_WORD_RE = re.compile(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']")


def words(text: str, lower: bool = True) -> list[str]:
    """Split ``text`` into words and single punctuation marks: ``"Yes, sir." ->
    ["yes", ",", "sir", "."]`` (lower-cased unless ``lower=False``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower() if lower else text)


def ngrams(seq: Sequence[Hashable], n: int) -> list[tuple]:
    """All ``len(seq) - n + 1`` contiguous n-grams of ``seq`` as tuples (none if shorter)."""
    _check_n(n)
    seq = _as_sequence(seq, "seq")
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(samples: Iterable[Sequence[Hashable]], n: int) -> float:
    """Distinct n-grams divided by all n-grams, pooled over ``samples``.

    ``samples`` is a list of sequences (one per generated text). Raises if no sample is
    at least ``n`` long, since the ratio is then undefined.
    """
    _check_n(n)
    total, seen = 0, set()
    for sample in _as_samples(samples):
        grams = ngrams(sample, n)
        total += len(grams)
        seen.update(grams)
    if total == 0:
        raise ValueError(f"no sample has {n} or more items: distinct-{n} is undefined")
    return len(seen) / total


def repetition_rate(seq: Sequence[Hashable], n: int = 4) -> float:
    """Fraction of the n-grams of ``seq`` that repeat an n-gram seen earlier in ``seq``
    (0 = no repeats; close to 1 = a loop). Raises if ``seq`` is shorter than ``n``."""
    grams = ngrams(seq, n)
    if not grams:
        raise ValueError(f"seq has {len(seq)} items, fewer than n={n}")
    seen: set[tuple] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


class NgramIndex:
    """The set of n-grams of a reference sequence, for fast "was this copied?" lookups.

    ``NgramIndex(reference, n=8)``; ``gram in index``; ``index.copied(sample)`` -> a list
    of bools, one per n-gram of the sample. Stores the hash of each n-gram only, so a
    corpus of a million items costs tens of MB; a hash collision (about 2**-64 per
    lookup) could count an n-gram as copied that is not.
    """

    def __init__(self, reference: Sequence[Hashable], n: int = 8) -> None:
        _check_n(n)
        reference = _as_sequence(reference, "reference")
        if len(reference) < n:
            raise ValueError(f"reference has {len(reference)} items, fewer than n={n}")
        self.n = n
        self._hashes = {hash(tuple(reference[i:i + n])) for i in range(len(reference) - n + 1)}

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, gram: object) -> bool:
        return isinstance(gram, tuple) and len(gram) == self.n and hash(gram) in self._hashes

    def copied(self, sample: Sequence[Hashable]) -> list[bool]:
        """For each n-gram of ``sample`` (in order): does it occur in the reference?"""
        return [g in self for g in ngrams(sample, self.n)]


def copy_rate(samples: Iterable[Sequence[Hashable]], index: NgramIndex) -> float:
    """Fraction of all n-grams of ``samples`` (pooled) found verbatim in ``index``'s
    reference, with ``n = index.n``. Raises if no sample has ``n`` items."""
    if not isinstance(index, NgramIndex):
        raise TypeError(f"index must be an NgramIndex, got {type(index).__name__}")
    flags = [f for sample in _as_samples(samples) for f in index.copied(sample)]
    if not flags:
        raise ValueError(f"no sample has {index.n} or more items: the copy rate is undefined")
    return sum(flags) / len(flags)


# ---------------------------------------------------------------------- checks
def _check_n(n: object) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")


def _as_sequence(seq: object, name: str) -> Sequence[Hashable]:
    if isinstance(seq, str):
        raise TypeError(f"{name} must be a sequence of tokens or words, not a str; "
                        "split it first, e.g. with llmbook.diversity.words")
    if hasattr(seq, "tolist"):                      # a tensor or an array of token ids
        seq = seq.tolist()
    if not isinstance(seq, Sequence):
        raise TypeError(f"{name} must be a sequence (list, tuple), got {type(seq).__name__}")
    return seq


def _as_samples(samples: object) -> list[Sequence[Hashable]]:
    if isinstance(samples, str) or not isinstance(samples, Iterable):
        raise TypeError("samples must be a list of sequences (one per generated text), got "
                        f"{type(samples).__name__}")
    out = [_as_sequence(s, "each sample") for s in samples]
    if not out:
        raise ValueError("samples is empty")
    return out
