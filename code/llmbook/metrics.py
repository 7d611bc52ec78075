"""Evaluation metrics with their uncertainty.

A proportion measured on a test set of ``n`` examples is an estimate: report it with an
interval. :func:`proportion_ci` gives the Wilson score interval, which, unlike the normal
approximation ``p ± 1.96·sqrt(p(1-p)/n)``, stays inside ``[0, 1]`` and keeps close to its
nominal coverage for small ``n`` and for ``p`` near 0 or 1.

Two classifiers scored on the *same* test set are compared by a paired test,
:func:`mcnemar` (exact), which looks only at the examples where they disagree: much
sharper than asking whether their two intervals overlap. Two proportions measured on
*different* examples (a score on one distribution against a score on another) are
compared by an interval on their difference, :func:`difference_ci`: two intervals can
overlap while the interval on the difference excludes zero.

For classifiers: :func:`confusion_matrix`, :func:`binary_report` (accuracy, precision,
recall, F1, each with an interval; F1's from :func:`bootstrap_ci`). For named entities:
:func:`bio_entities` reads the entity spans of a BIO-tagged sequence and
:func:`entity_f1` scores exact-match entities as ``seqeval`` does.
"""
from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["binary_report", "bio_entities", "bootstrap_ci", "confusion_matrix",
           "difference_ci", "entity_f1", "mcnemar", "proportion_ci"]


def proportion_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for ``successes`` out of ``n`` trials.

    >>> low, high = proportion_ci(90, 100)   # about (0.826, 0.945)
    """
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if n <= 0:
        raise ValueError(f"n must be a positive number of trials, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def difference_ci(successes_a: int, n_a: int, successes_b: int, n_b: int,
                  confidence: float = 0.95) -> tuple[float, float]:
    """Interval ``(low, high)`` for ``p_a - p_b``, two proportions from independent samples.

    Newcombe's hybrid score interval (his method 10, 1998): each proportion's Wilson
    interval (:func:`proportion_ci`) gives the distance from the estimate to its bounds,
    and the two distances on the relevant sides are added in quadrature. It stays inside
    ``[-1, 1]`` and keeps close to its nominal coverage for small samples, where the
    normal approximation does not. An interval that excludes 0 establishes a difference.

    >>> low, high = difference_ci(56, 70, 48, 80)     # 0.8 - 0.6: about (0.052, 0.334)
    """
    low_a, high_a = _named_ci("successes_a", successes_a, "n_a", n_a, confidence)
    low_b, high_b = _named_ci("successes_b", successes_b, "n_b", n_b, confidence)
    p_a, p_b = successes_a / n_a, successes_b / n_b
    diff = p_a - p_b
    return (max(-1.0, diff - math.hypot(p_a - low_a, high_b - p_b)),
            min(1.0, diff + math.hypot(high_a - p_a, p_b - low_b)))


def _named_ci(k_name: str, k, n_name: str, n, confidence: float) -> tuple[float, float]:
    """proportion_ci, with the caller's argument names in its messages."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{n_name} must be a positive int (a number of trials), got {n!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"{k_name} must be an int between 0 and {n_name}={n}, got {k!r}")
    return proportion_ci(k, n, confidence)


def mcnemar(correct_a, correct_b) -> tuple[int, int, float]:
    """Exact McNemar test of two classifiers on the same examples.

    ``correct_a`` and ``correct_b`` are equal-length sequences of booleans (or 0/1): was
    example ``i`` classified correctly by A, by B. Returns ``(a_only, b_only, p)``: the
    number of examples only A got right, only B got right, and the two-sided p-value of
    "A and B are equally accurate", i.e. of ``a_only`` under Binomial(a_only + b_only, 1/2).
    Examples both get right (or both wrong) carry no information about which is better.

    >>> mcnemar([1, 1, 1, 0], [0, 0, 1, 0])    # A alone right twice, B never: p = 0.5
    (2, 0, 0.5)
    """
    a, b = (_labels_1d(name, v) for name, v in (("correct_a", correct_a),
                                                 ("correct_b", correct_b)))
    if len(a) != len(b):
        raise ValueError(f"correct_a and correct_b must have the same length, got {len(a)} "
                         f"and {len(b)}")
    if not a:
        raise ValueError("correct_a and correct_b are empty: the test needs at least one example")
    for name, seq in (("correct_a", a), ("correct_b", b)):
        bad = [v for v in seq if v not in (0, 1)]     # True == 1, False == 0
        if bad:
            raise ValueError(f"{name} must hold booleans or 0/1, got {bad[0]!r}")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    n = a_only + b_only
    if n == 0:
        return 0, 0, 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return a_only, b_only, min(1.0, 2 * tail)


# --------------------------------------------------------------------------- classification
def _labels_1d(name: str, values) -> list:
    try:
        out = [v.item() if hasattr(v, "item") else v for v in values]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of labels, got {type(values).__name__}") from None
    return out


def _pair(y_true, y_pred) -> tuple[list, list]:
    t, p = _labels_1d("y_true", y_true), _labels_1d("y_pred", y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}")
    if not t:
        raise ValueError("y_true and y_pred are empty: there is nothing to score")
    return t, p


def confusion_matrix(y_true, y_pred, labels: list | None = None) -> list[list[int]]:
    """Counts ``m[i][j]`` of examples whose true label is ``labels[i]`` and predicted
    label is ``labels[j]``. ``labels`` defaults to the sorted union of both sequences;
    a label outside ``labels`` raises ``ValueError``."""
    t, p = _pair(y_true, y_pred)
    labels = sorted(set(t) | set(p)) if labels is None else list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    for name, seq in (("y_true", t), ("y_pred", p)):
        extra = set(seq) - set(index)
        if extra:
            raise ValueError(f"{name} has labels {sorted(extra, key=str)} not in labels={labels}")
    m = [[0] * len(labels) for _ in labels]
    for a, b in zip(t, p):
        m[index[a]][index[b]] += 1
    return m


def _f1(tp: int, n_pred: int, n_true: int) -> float:
    return 0.0 if n_pred + n_true == 0 else 2 * tp / (n_pred + n_true)


def bootstrap_ci(stat, n: int, n_boot: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(indices)`` over ``n`` test examples.

    ``stat`` receives a list of ``n`` indices drawn with replacement and returns a
    number; the interval holds the central ``confidence`` of ``n_boot`` such draws.
    Used for statistics that are not a simple proportion, such as F1.
    """
    import random

    if not callable(stat):
        raise TypeError(f"stat must be a function of a list of indices, got {stat!r}")
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int (the test-set size), got {n!r}")
    if not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot must be an int >= 10, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    rng = random.Random(seed)
    values = sorted(stat(rng.choices(range(n), k=n)) for _ in range(n_boot))
    lo = math.floor((1 - confidence) / 2 * n_boot)
    hi = min(n_boot - 1, math.ceil((1 + confidence) / 2 * n_boot) - 1)
    return float(values[lo]), float(values[hi])


def binary_report(y_true, y_pred, positive=1, confidence: float = 0.95,
                  n_boot: int = 1000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Accuracy, precision, recall and F1 of a binary classifier, each as
    ``(value, low, high)``.

    Accuracy, precision (``TP / (TP + FP)``) and recall (``TP / (TP + FN)``) are
    proportions: Wilson intervals (:func:`proportion_ci`). F1 is not, so its interval is
    a percentile bootstrap over the test examples. A precision with no positive
    prediction is reported as ``(0, 0, 1)``: nothing was measured.
    """
    t, p = _pair(y_true, y_pred)
    if positive not in set(t) | set(p):
        raise ValueError(f"positive={positive!r} occurs in neither y_true nor y_pred")
    hit = [a == positive for a in t]
    said = [b == positive for b in p]

    def counts(idx):
        tp = sum(1 for i in idx if hit[i] and said[i])
        return tp, sum(1 for i in idx if said[i]), sum(1 for i in idx if hit[i])

    n = len(t)
    correct = sum(1 for a, b in zip(t, p) if a == b)
    tp, n_pred, n_true = counts(range(n))

    def with_ci(k: int, m: int) -> tuple[float, float, float]:
        if m == 0:
            return 0.0, 0.0, 1.0
        return (k / m, *proportion_ci(k, m, confidence))

    f1_lo, f1_hi = bootstrap_ci(lambda idx: _f1(*counts(idx)), n, n_boot, confidence, seed)
    return {"accuracy": with_ci(correct, n), "precision": with_ci(tp, n_pred),
            "recall": with_ci(tp, n_true), "f1": (_f1(tp, n_pred, n_true), f1_lo, f1_hi)}


# --------------------------------------------------------------------------- entities
def _split_tag(tag: str) -> tuple[str, str]:
    if not isinstance(tag, str):
        raise TypeError(f"a BIO tag must be a str such as 'B-PER', got {tag!r}")
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not kind:
        raise ValueError(f"bad BIO tag {tag!r}: expected 'O', 'B-<type>' or 'I-<type>'")
    return prefix, kind


def bio_entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """The entities ``(type, start, end)`` (``end`` exclusive) of one BIO-tagged sequence.

    Follows the CoNLL ``conlleval`` reading that ``seqeval`` uses by default: an entity
    starts at ``B-X``, or at an ``I-X`` that does not continue an entity of type ``X``
    (after ``O`` or another type); it ends before the next tag that does not continue it.
    """
    if isinstance(tags, str):
        raise TypeError("tags must be a list of tags such as ['B-PER', 'I-PER', 'O'], not a str")
    out = []
    kind, start = None, 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, k = _split_tag(tag)
        continues = prefix == "I" and k == kind
        if kind is not None and not continues:
            out.append((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and not continues):
            kind, start = k, i
    return out


def entity_f1(true_seqs: list[list[str]], pred_seqs: list[list[str]],
              kind: str | None = None) -> dict[str, float]:
    """Entity-level micro precision, recall and F1 over sentences of BIO tags.

    A predicted entity counts only when its type, start and end all match a true one
    (exact match, as ``seqeval`` and CoNLL score). ``kind`` restricts the score to one
    entity type. Returns ``precision``, ``recall``, ``f1`` and the counts ``tp``,
    ``n_pred``, ``n_true``.
    """
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"true_seqs and pred_seqs must hold the same number of sentences, "
                         f"got {len(true_seqs)} and {len(pred_seqs)}")
    tp = n_pred = n_true = 0
    for i, (t, p) in enumerate(zip(true_seqs, pred_seqs)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags but {len(p)} predicted tags")
        gold = {e for e in bio_entities(t) if kind is None or e[0] == kind}
        pred = {e for e in bio_entities(p) if kind is None or e[0] == kind}
        tp += len(gold & pred)
        n_pred += len(pred)
        n_true += len(gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    return {"precision": precision, "recall": recall, "f1": _f1(tp, n_pred, n_true),
            "tp": tp, "n_pred": n_pred, "n_true": n_true}
