"""Scores for generated text against references: BLEU, chrF and ROUGE, from scratch.

* :func:`corpus_bleu` is corpus BLEU (Papineni et al. 2002) as sacreBLEU computes it:
  clipped n-gram counts summed over the corpus, n = 1..4, the geometric mean of the four
  precisions times the brevity penalty ``exp(1 - r / c)`` when the output is shorter
  (``c`` its length, ``r`` the summed length of the closest reference of each
  segment, ties to the shorter). Smoothing is sacreBLEU's default, ``"exp"`` (NIST
  mteval-v13a): the k-th order with no match counts as ``1 / (2^k · total)``; ``"none"``
  gives 0 as soon as one order has no match. Tokenisers: ``"13a"`` (sacreBLEU's
  default, made for European languages: a run of Chinese characters stays one token),
  ``"zh"`` (every Chinese character its own token, then 13a), ``"char"``, ``"none"``.
* :func:`corpus_chrf` is chrF (Popović 2015) as sacreBLEU computes it: character
  n-grams n = 1..6 with whitespace removed, precision and recall averaged over the
  orders present, F-beta with beta = 2 (recall counts more).
* :func:`rouge_n` and :func:`rouge_l` (Lin 2004): n-gram overlap and the longest common
  subsequence, as precision, recall and F1 of one pair, on the tokens of ``tokenize``
  (``"char"``, ``"whitespace"`` or a callable). :func:`ascii_tokens` is the default
  tokeniser of the ``rouge-score`` package, which keeps only ``[a-z0-9]`` runs: on
  Chinese it returns no token at all.

Every score is in ``[0, 100]`` for BLEU and chrF (sacreBLEU's scale) and ``[0, 1]`` for
ROUGE (``rouge-score``'s). Bad input (a string where a list is expected, lists of
different lengths, an unknown tokeniser) raises an error naming the argument.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmbook._validate import positive_int

__all__ = ["BLEUResult", "ascii_tokens", "bleu_tokenize", "corpus_bleu", "corpus_chrf",
           "corpus_rouge", "lcs_length", "rouge_l", "rouge_n"]

BLEU_TOKENIZERS = ("13a", "zh", "char", "none")
SMOOTHING = ("exp", "none")

# ---------------------------------------------------------------- tokenisation

# ASCII punctuation that 13a splits off everywhere: every printable ASCII character
# that is not a letter, a digit, an apostrophe, a comma, a hyphen or a period.
_PUNCT = re.compile(r"([!-&(-+/:-@\[-`{-~])")
_PERIOD_COMMA_AFTER = re.compile(r"([^0-9])([.,])")     # split . , unless after a digit
_PERIOD_COMMA_BEFORE = re.compile(r"([.,])([^0-9])")    # ... or unless before a digit
_DIGIT_DASH = re.compile(r"([0-9])(-)")

# Code-point ranges sacreBLEU's "zh" tokeniser treats as Chinese: CJK ideographs and
# their extensions, CJK punctuation and symbols, full-width forms. One entry of its table
# is written '\u20000'..'\u2a6d6', which Python reads as two-character strings; compared
# with one character that range is U+2001..U+2A6D (general punctuation such as … and —,
# arrows, dingbats). We reproduce that range so that the scores agree.
_ZH_RANGES = ((0x3400, 0x4DB5), (0x4E00, 0x9FBB), (0xF900, 0xFA2D), (0xFA30, 0xFA6A),
              (0xFA70, 0xFAD9), (0x2001, 0x2A6D), (0x2F800, 0x2FA1D), (0xFF00, 0xFFEF),
              (0x2E80, 0x2EFF), (0x3000, 0x303F), (0x31C0, 0x31EF), (0x2F00, 0x2FDF),
              (0x2FF0, 0x2FFF), (0x3100, 0x312F), (0x31A0, 0x31BF), (0xFE10, 0xFE1F),
              (0xFE30, 0xFE4F), (0x2600, 0x26FF), (0x2700, 0x27BF), (0x3200, 0x32FF),
              (0x3300, 0x33FF))


def _is_zh(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _ZH_RANGES)


def _split_punctuation(line: str) -> str:
    line = _PUNCT.sub(r" \1 ", line)
    line = _PERIOD_COMMA_AFTER.sub(r"\1 \2 ", line)
    line = _PERIOD_COMMA_BEFORE.sub(r" \1 \2", line)
    line = _DIGIT_DASH.sub(r"\1 \2 ", line)
    return " ".join(line.split())


def _tok_13a(line: str) -> str:
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, char)
    return _split_punctuation(f" {line} ")


def _tok_zh(line: str) -> str:
    spaced = "".join(f" {ch} " if _is_zh(ch) else ch for ch in line.strip())
    return _split_punctuation(spaced)


def bleu_tokenize(text: str, tokenize: str = "13a") -> list[str]:
    """The tokens BLEU counts in ``text`` under sacreBLEU's tokeniser ``tokenize``.

    >>> bleu_tokenize("打开文件。", "13a"), bleu_tokenize("打开文件。", "zh")
    (['打开文件。'], ['打', '开', '文', '件', '。'])
    """
    _check_str("text", text)
    _check_choice("tokenize", tokenize, BLEU_TOKENIZERS)
    text = text.rstrip()
    if tokenize == "13a":
        return _tok_13a(text).split()
    if tokenize == "zh":
        return _tok_zh(text).split()
    if tokenize == "char":
        return " ".join(text).split()   # every non-space character a token
    return text.split()


def ascii_tokens(text: str) -> list[str]:
    """``rouge-score``'s default tokeniser: lowercase, keep runs of ``[a-z0-9]``.

    Every other character separates tokens, so Chinese text yields ``[]``."""
    _check_str("text", text)
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _rouge_tokenizer(tokenize: str | Callable[[str], list[str]]) -> Callable[[str], list]:
    if callable(tokenize):
        return tokenize
    if tokenize == "char":
        return lambda s: [ch for ch in s if not ch.isspace()]
    if tokenize == "whitespace":
        return str.split
    if tokenize == "ascii":
        return ascii_tokens
    raise ValueError(f"tokenize must be 'char', 'whitespace', 'ascii' or a callable "
                     f"str -> list of tokens, got {tokenize!r}")


# ---------------------------------------------------------------- input checks

def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}: {value!r:.60}")


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_corpus(hyps: object, refs: object) -> list[list[str]]:
    """Hypotheses (a list of str) and references (one str or a non-empty list of str per
    hypothesis) -> the references as a list of lists."""
    if isinstance(hyps, str) or not isinstance(hyps, Sequence):
        raise TypeError("hyps must be a list of strings (one per segment), got "
                        f"{type(hyps).__name__}: {hyps!r:.60}")
    if isinstance(refs, str) or not isinstance(refs, Sequence):
        raise TypeError("refs must be a list with one reference (a str) or a list of "
                        f"references per segment, got {type(refs).__name__}: {refs!r:.60}")
    if len(hyps) != len(refs):
        raise ValueError(f"hyps and refs must have the same length (one reference entry "
                         f"per hypothesis), got {len(hyps)} and {len(refs)}")
    if not hyps:
        raise ValueError("hyps is empty: a corpus score needs at least one segment")
    out = []
    for i, (h, r) in enumerate(zip(hyps, refs)):
        _check_str(f"hyps[{i}]", h)
        r = [r] if isinstance(r, str) else r
        if not isinstance(r, Sequence) or not r:
            raise ValueError(f"refs[{i}] must be a str or a non-empty list of str, got {r!r:.60}")
        for j, x in enumerate(r):
            _check_str(f"refs[{i}][{j}]", x)
        out.append(list(r))
    return out


# ------------------------------------------------------------------------ BLEU

@dataclass(frozen=True)
class BLEUResult:
    """Corpus BLEU and its parts. ``score`` and ``precisions`` are percentages;
    ``correct[n-1]``/``total[n-1]`` the clipped matches and hypothesis n-grams of order
    n; ``sys_len``/``ref_len`` the summed token counts that give the brevity penalty."""

    score: float
    precisions: tuple[float, ...]
    bp: float
    correct: tuple[int, ...]
    total: tuple[int, ...]
    sys_len: int
    ref_len: int

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} ratio = "
                f"{self.sys_len / max(self.ref_len, 1):.3f} hyp_len = {self.sys_len} "
                f"ref_len = {self.ref_len})")


def _ngrams(tokens: Sequence, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _closest(hyp_len: int, ref_lens: list[int]) -> int:
    """The reference length closest to ``hyp_len``; a tie goes to the shorter."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str | Sequence[str]],
                tokenize: str = "13a", smooth: str = "exp", max_order: int = 4,
                lowercase: bool = False) -> BLEUResult:
    """Corpus BLEU of ``hyps`` against ``refs`` (one str, or a list of str, per hypothesis).

    Equal to ``sacrebleu.corpus_bleu(hyps, streams, tokenize=tokenize)`` where
    ``streams[k][i]`` is the k-th reference of segment i (see the module docstring for
    the counting, the brevity penalty and the smoothing)."""
    all_refs = _check_corpus(hyps, refs)
    _check_choice("tokenize", tokenize, BLEU_TOKENIZERS)
    _check_choice("smooth", smooth, SMOOTHING)
    positive_int("max_order", max_order)
    correct, total = [0] * max_order, [0] * max_order
    sys_len = ref_len = 0
    for hyp, rs in zip(hyps, all_refs):
        fold = str.lower if lowercase else str
        h = bleu_tokenize(fold(hyp), tokenize)
        r_toks = [bleu_tokenize(fold(r), tokenize) for r in rs]
        sys_len += len(h)
        ref_len += _closest(len(h), [len(r) for r in r_toks])
        for n in range(1, max_order + 1):
            best: Counter = Counter()
            for r in r_toks:              # a reference n-gram counts as often as it
                best |= _ngrams(r, n)     # occurs in the reference where it is most frequent
            hyp_counts = _ngrams(h, n)
            total[n - 1] += sum(hyp_counts.values())
            correct[n - 1] += sum(min(c, best[g]) for g, c in hyp_counts.items())
    return _bleu_from_counts(correct, total, sys_len, ref_len, smooth)


def _bleu_from_counts(correct: list[int], total: list[int], sys_len: int, ref_len: int,
                      smooth: str) -> BLEUResult:
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len else 0.0)
    precisions = [0.0] * len(correct)
    halvings = 1.0
    for n, (c, t) in enumerate(zip(correct, total)):
        if t == 0:
            break                              # no n-gram this long: the score is 0
        if c:
            precisions[n] = 100.0 * c / t
        elif smooth == "exp":
            halvings *= 2
            precisions[n] = 100.0 / (halvings * t)
    score = 0.0
    if any(correct) and all(p > 0 for p in precisions):
        score = bp * math.exp(sum(math.log(p) for p in precisions) / len(precisions))
    return BLEUResult(score, tuple(precisions), bp, tuple(correct), tuple(total), sys_len,
                      ref_len)


# ------------------------------------------------------------------------ chrF

def _char_ngrams(text: str, n: int) -> Counter:
    s = "".join(text.split())
    return Counter(s[i:i + n] for i in range(len(s) - n + 1))


def _chrf_stats(hyp: str, ref: str, order: int) -> list[tuple[int, int, int]]:
    """Per order: (hypothesis n-grams, reference n-grams, clipped matches)."""
    out = []
    for n in range(1, order + 1):
        h, r = _char_ngrams(hyp, n), _char_ngrams(ref, n)
        match = sum(min(c, r[g]) for g, c in h.items())
        out.append((sum(h.values()) if r else 0, sum(r.values()), match))
    return out


def _chrf_from_stats(stats: list[tuple[int, int, int]], beta: float) -> float:
    precs, recs = [], []
    for n_hyp, n_ref, match in stats:
        if n_hyp and n_ref:                    # orders the text is long enough for
            precs.append(match / n_hyp)
            recs.append(match / n_ref)
    if not precs:
        return 0.0
    p, r = sum(precs) / len(precs), sum(recs) / len(recs)
    if p + r == 0:
        return 0.0
    return 100.0 * (1 + beta ** 2) * p * r / (beta ** 2 * p + r)


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str | Sequence[str]],
                char_order: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF in ``[0, 100]``, as ``sacrebleu.corpus_chrf`` (chrF2, no word n-grams).

    Per segment the reference with the best chrF is kept; the counts of every order are
    summed over the corpus before precision and recall are taken."""
    all_refs = _check_corpus(hyps, refs)
    positive_int("char_order", char_order)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    summed = [[0, 0, 0] for _ in range(char_order)]
    for hyp, rs in zip(hyps, all_refs):
        candidates = [_chrf_stats(hyp, r, char_order) for r in rs]
        best = max(candidates, key=lambda s: _chrf_from_stats(s, beta))   # first on ties
        for acc, s in zip(summed, best):
            for k in range(3):
                acc[k] += s[k]
    return _chrf_from_stats([tuple(s) for s in summed], beta)


# ----------------------------------------------------------------------- ROUGE

def _prf(overlap: int, n_hyp: int, n_ref: int) -> tuple[float, float, float]:
    p = overlap / n_hyp if n_hyp else 0.0
    r = overlap / n_ref if n_ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def rouge_n(hyp: str, ref: str, n: int = 1,
            tokenize: str | Callable[[str], list[str]] = "char"
            ) -> tuple[float, float, float]:
    """ROUGE-N ``(precision, recall, f1)`` of one hypothesis against one reference:
    clipped n-gram matches over the hypothesis's and the reference's n-gram counts."""
    _check_str("hyp", hyp)
    _check_str("ref", ref)
    positive_int("n", n)
    tok = _rouge_tokenizer(tokenize)
    h, r = _ngrams(tok(hyp), n), _ngrams(tok(ref), n)
    overlap = sum(min(c, r[g]) for g, c in h.items())
    return _prf(overlap, sum(h.values()), sum(r.values()))


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``, in O(len(a)·len(b))."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hyp: str, ref: str, tokenize: str | Callable[[str], list[str]] = "char"
            ) -> tuple[float, float, float]:
    """ROUGE-L ``(precision, recall, f1)``: the longest common subsequence of the token
    sequences over the hypothesis's and the reference's lengths."""
    _check_str("hyp", hyp)
    _check_str("ref", ref)
    tok = _rouge_tokenizer(tokenize)
    h, r = tok(hyp), tok(ref)
    return _prf(lcs_length(h, r), len(h), len(r))


def corpus_rouge(hyps: Sequence[str], refs: Sequence[str],
                 tokenize: str | Callable[[str], list[str]] = "char") -> dict[str, float]:
    """Mean F1 over pairs of ROUGE-1, ROUGE-2 and ROUGE-L, keys ``rouge1``, ``rouge2``,
    ``rougeL`` (each pair scored alone, then averaged, as ``rouge-score`` reports)."""
    all_refs = _check_corpus(hyps, refs)
    if any(len(r) != 1 for r in all_refs):
        raise ValueError("corpus_rouge takes one reference string per hypothesis")
    _rouge_tokenizer(tokenize)
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for h, (r,) in zip(hyps, all_refs):
        sums["rouge1"] += rouge_n(h, r, 1, tokenize)[2]
        sums["rouge2"] += rouge_n(h, r, 2, tokenize)[2]
        sums["rougeL"] += rouge_l(h, r, tokenize)[2]
    return {k: v / len(hyps) for k, v in sums.items()}
