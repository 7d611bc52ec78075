"""llmbook.metrics: intervals checked against their own definition."""
import math
import random

import pytest
from llmbook.metrics import difference_ci, proportion_ci


def test_wilson_bounds_solve_the_score_test():
    # Definition: the bounds are the p0 at which |p_hat - p0| / sqrt(p0 (1 - p0) / n) = z.
    z = 1.959963984540054
    for k, n in [(90, 100), (3, 7), (0, 10), (10, 10)]:
        for bound in proportion_ci(k, n):
            if bound in (0.0, 1.0):
                assert bound == (0.0 if k == 0 else 1.0)
                continue
            score = abs(k / n - bound) / math.sqrt(bound * (1 - bound) / n)
            assert math.isclose(score, z, rel_tol=1e-9)


def test_wilson_contains_estimate_and_shrinks_with_n():
    for k, n in [(1, 3), (50, 100), (999, 1000)]:
        low, high = proportion_ci(k, n)
        assert 0 <= low <= k / n <= high <= 1
    assert (proportion_ci(500, 1000)[1] - proportion_ci(500, 1000)[0]) < (
        proportion_ci(5, 10)[1] - proportion_ci(5, 10)[0])


@pytest.mark.parametrize("args, match", [((5, 0), "n must be"), ((11, 10), "successes"),
                                         ((1.5, 10), "successes must be an int"),
                                         ((1, 10, 1.0), "confidence")])
def test_bad_input_is_named(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        proportion_ci(*args)


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (four decimals).
@pytest.mark.parametrize("counts, expected", [
    ((56, 70, 48, 80), (0.0524, 0.3339)), ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)), ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000))])
def test_difference_ci_matches_newcombe_table(counts, expected):
    low, high = difference_ci(*counts)
    assert (round(low, 4), round(high, 4)) == expected


def test_difference_ci_is_antisymmetric_and_covers():
    low, high = difference_ci(13, 48, 4, 48)
    assert difference_ci(4, 48, 13, 48) == pytest.approx((-high, -low))
    # seeded coverage: the true difference 0.3 - 0.2 falls inside about 95 % of the time
    rng, n, hits, trials = random.Random(0), 40, 0, 2000
    for _ in range(trials):
        k_a = sum(rng.random() < 0.3 for _ in range(n))
        k_b = sum(rng.random() < 0.2 for _ in range(n))
        lo, hi = difference_ci(k_a, n, k_b, n)
        hits += lo <= 0.1 <= hi
    assert 0.93 <= hits / trials <= 0.975


@pytest.mark.parametrize("args, match", [((5, 4, 1, 10), "successes_a must be"),
                                         ((1, 10, 1, 0), "n_b must be"),
                                         ((1, 10, -1, 10), "successes_b must be"),
                                         (("3", 10, 1, 10), "successes_a must be"),
                                         ((1, 10.0, 1, 10), "n_a must be"),
                                         ((1, 10, 1, 10, 2.0), "confidence")])
def test_difference_ci_bad_input_is_named(args, match):
    with pytest.raises(ValueError, match=match):
        difference_ci(*args)


# --------------------------------------------------------------------------- classification
def test_confusion_matrix_and_binary_report_match_sklearn():
    import random

    from llmbook.metrics import binary_report, confusion_matrix
    from sklearn import metrics as skm

    rng = random.Random(0)
    y = [rng.random() < 0.3 for _ in range(400)]
    p = [t if rng.random() < 0.8 else not t for t in y]
    y, p = [int(v) for v in y], [int(v) for v in p]
    assert confusion_matrix(y, p, [0, 1]) == skm.confusion_matrix(y, p, labels=[0, 1]).tolist()
    r = binary_report(y, p, positive=1)
    for key, fn in [("accuracy", skm.accuracy_score), ("precision", skm.precision_score),
                    ("recall", skm.recall_score), ("f1", skm.f1_score)]:
        value, low, high = r[key]
        assert math.isclose(value, fn(y, p)), key
        assert low <= value <= high and high - low < 0.2, key


def test_binary_report_without_positive_predictions_measures_nothing():
    from llmbook.metrics import binary_report

    r = binary_report([1, 0, 1, 0], [0, 0, 0, 0], positive=1)
    assert r["precision"] == (0.0, 0.0, 1.0) and r["recall"][0] == 0.0 and r["f1"][0] == 0.0


def test_bootstrap_interval_of_a_mean_is_close_to_wilson():
    from llmbook.metrics import bootstrap_ci

    hits = [1] * 80 + [0] * 20
    low, high = bootstrap_ci(lambda idx: sum(hits[i] for i in idx) / len(idx), 100, 2000)
    wl, wh = proportion_ci(80, 100)
    assert abs(low - wl) < 0.03 and abs(high - wh) < 0.03


@pytest.mark.parametrize("call, match", [
    (lambda m: m.confusion_matrix([0, 1], [0]), "same length"),
    (lambda m: m.confusion_matrix([0, 2], [0, 1], labels=[0, 1]), "not in labels"),
    (lambda m: m.binary_report([0, 1], [0, 1], positive="spam"), "positive='spam'"),
    (lambda m: m.bootstrap_ci(len, 0), "n must be"),
    (lambda m: m.bio_entities(["B-PER", "X-LOC"]), "bad BIO tag 'X-LOC'"),
    (lambda m: m.bio_entities("B-PER"), "not a str"),
    (lambda m: m.entity_f1([["O"]], [["O", "O"]]), "sentence 0"),
])
def test_bad_classification_input_is_named(call, match):
    from llmbook import metrics

    with pytest.raises((ValueError, TypeError), match=match):
        call(metrics)


# --------------------------------------------------------------------------- entities
def test_bio_entities_reads_conlleval_style():
    from llmbook.metrics import bio_entities

    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "B-PER"]
    assert bio_entities(tags) == [("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6),
                                  ("ORG", 6, 7), ("PER", 7, 8)]


def test_entity_f1_matches_seqeval_on_random_tags():
    import random

    from llmbook.metrics import bio_entities, entity_f1
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(0)
    tagset = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    for trial in range(30):
        true = [[rng.choice(tagset) for _ in range(rng.randint(1, 12))] for _ in range(20)]
        pred = [[t if rng.random() < 0.7 else rng.choice(tagset) for t in s] for s in true]
        for s in true:
            assert bio_entities(s) == [(k, a, b + 1) for k, a, b in get_entities(s)]
        r = entity_f1(true, pred)
        assert math.isclose(r["f1"], f1_score(true, pred), abs_tol=1e-12), trial
        assert math.isclose(r["precision"], precision_score(true, pred), abs_tol=1e-12)
        assert math.isclose(r["recall"], recall_score(true, pred), abs_tol=1e-12)
        per = entity_f1(true, pred, kind="LOC")
        assert per["n_true"] == sum(k == "LOC" for s in true for k, _, _ in bio_entities(s))


# ----------------------------------------------------------------------------- mcnemar
def test_mcnemar_matches_scipy_binomtest():
    from scipy.stats import binomtest

    from llmbook.metrics import mcnemar
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(1, 60)
        a = [rng.random() < 0.8 for _ in range(n)]
        b = [rng.random() < 0.7 for _ in range(n)]
        a_only, b_only, p = mcnemar(a, b)
        assert a_only == sum(x and not y for x, y in zip(a, b))
        assert b_only == sum(y and not x for x, y in zip(a, b))
        want = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only).pvalue
        assert p == pytest.approx(want, rel=1e-9)


def test_mcnemar_is_symmetric_and_ignores_agreements():
    from llmbook.metrics import mcnemar
    a, b = [1, 1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 1]
    assert mcnemar(a, b) == (3, 0, 0.25)
    assert mcnemar(b, a) == (0, 3, 0.25)
    assert mcnemar(a + [1] * 100, b + [1] * 100) == (3, 0, 0.25)
    assert mcnemar([1, 0], [1, 0]) == (0, 0, 1.0)


@pytest.mark.parametrize("a, b, match", [
    ([1, 0], [1], "same length"), ([1, 2], [1, 0], "booleans or 0/1"),
    ([1, 0], [1, float("nan")], "booleans or 0/1"), (5, [1], "sequence"),
    ([], [], "empty")])
def test_mcnemar_bad_input(a, b, match):
    from llmbook.metrics import mcnemar
    with pytest.raises((ValueError, TypeError), match=match):
        mcnemar(a, b)
