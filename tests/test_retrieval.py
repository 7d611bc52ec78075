"""llmbook.retrieval: BM25 against bm25s and rank-bm25, cosine search against
sentence-transformers, MiniLM embeddings against SentenceTransformer, metrics by hand."""
import math
import random

import pytest
import torch
from llmbook.retrieval import (
    BM25,
    cosine_search,
    embed,
    first_relevant_rank,
    mean_pool,
    mrr,
    recall_at_k,
    tokenize,
)

WORDS = ["attention", "head", "token", "layer", "cache", "query", "key", "value", "norm",
         "loss", "grad", "step"]


def random_corpus(seed: int, n_docs: int = 40) -> list[list[str]]:
    rng = random.Random(seed)
    # a Zipf-like draw so that some words are common and some rare
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    return [rng.choices(WORDS, weights, k=rng.randint(1, 30)) for _ in range(n_docs)]


@pytest.mark.parametrize("k1, b", [(1.5, 0.75), (1.2, 0.3), (0.9, 1.0)])
def test_bm25_matches_bm25s_lucene(k1, b):
    bm25s = pytest.importorskip("bm25s")
    corpus = random_corpus(0)
    ours = BM25(corpus, k1=k1, b=b)
    ref = bm25s.BM25(method="lucene", k1=k1, b=b)
    ref.index(corpus, show_progress=False)
    rng = random.Random(1)
    for _ in range(10):
        query = rng.sample(WORDS, rng.randint(1, 4))
        theirs = torch.tensor(ref.get_scores(query), dtype=torch.float64)
        # bm25s (like Lucene) leaves out the constant factor (k1 + 1) of the classic form
        torch.testing.assert_close(ours.scores(query), (k1 + 1) * theirs, rtol=1e-5, atol=1e-6)


def test_bm25_term_weights_match_rank_bm25():
    rank_bm25 = pytest.importorskip("rank_bm25")
    corpus = random_corpus(2)
    ours = BM25(corpus)
    ref = rank_bm25.BM25Okapi(corpus, k1=1.5, b=0.75)
    ref.idf = dict(ours.idf)          # rank-bm25's idf is the original (can be negative)
    for query in (["attention"], ["grad", "step", "grad"], ["query", "missing"]):
        torch.testing.assert_close(ours.scores(query),
                                   torch.tensor(ref.get_scores(query), dtype=torch.float64))


def test_bm25_by_hand_and_search_order():
    corpus = [["a", "b", "a"], ["b", "c"], ["d"]]
    bm = BM25(corpus, k1=1.5, b=0.75)
    idf_a = math.log(1 + (3 - 1 + 0.5) / 1.5)
    norm0 = 1.5 * (1 - 0.75 + 0.75 * 3 / 2)
    assert math.isclose(bm.scores(["a"])[0].item(), idf_a * 2 * 2.5 / (2 + norm0))
    assert bm.scores(["zzz"]).eq(0).all()
    scores, idx = bm.search(["b"], k=5)                # k is cut to N; ties: lower index
    assert idx.tolist() == [1, 0, 2] and scores[0] > scores[1] > scores[2] == 0


def test_tokenize():
    assert tokenize("BM25 ranks Top-k, fast!") == ["bm25", "ranks", "top", "k", "fast"]
    assert tokenize("检索 RAG") == ["检", "索", "rag"]


def test_cosine_search_matches_semantic_search():
    util = pytest.importorskip("sentence_transformers.util")
    g = torch.Generator().manual_seed(0)
    corpus, queries = torch.randn(200, 16, generator=g), torch.randn(7, 16, generator=g)
    scores, idx = cosine_search(queries, corpus, k=5)
    assert scores.shape == idx.shape == (7, 5)
    for q, hits in enumerate(util.semantic_search(queries, corpus, top_k=5)):
        assert [h["corpus_id"] for h in hits] == idx[q].tolist()
        torch.testing.assert_close(torch.tensor([h["score"] for h in hits]), scores[q])


def test_mean_pool_ignores_padding():
    h = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(mean_pool(h, mask), torch.tensor([[1.0, 2.0], [8.0, 9.0]]))


def test_embed_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    from llmbook import data
    path = data.minilm_path()
    from transformers import AutoModel, AutoTokenizer
    texts = ["BM25 counts words.", "Dense retrieval compares embeddings of meaning.",
             "A short one"]
    ours = embed(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), texts,
                 batch_size=2)
    ref = st.SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_tensor=True,
                                                                 normalize_embeddings=True)
    torch.testing.assert_close(ours, ref.cpu().float(), atol=1e-5, rtol=1e-4)


def test_metrics_by_hand():
    rankings = [[3, 1, 2], [0, 2, 1], [2, 0, 1]]
    relevant = [{1}, {5}, {2, 1}]
    assert first_relevant_rank(rankings[0], relevant[0]) == 2
    assert first_relevant_rank(rankings[1], relevant[1]) is None
    assert math.isclose(recall_at_k(rankings, relevant, 1), (0 + 0 + 0.5) / 3)
    assert math.isclose(recall_at_k(rankings, relevant, 3), (1 + 0 + 1) / 3)
    assert math.isclose(mrr(rankings, relevant), (1 / 2 + 0 + 1) / 3)
    assert math.isclose(mrr(torch.tensor(rankings), relevant), (1 / 2 + 0 + 1) / 3)


@pytest.mark.parametrize("call, match", [
    (lambda: BM25([]), "corpus must be a non-empty"),
    (lambda: BM25(["a text"]), r"corpus\[0\] must be a list of str"),
    (lambda: BM25([["a"]], k1=-1), "k1 must be"),
    (lambda: BM25([["a"]], b=2), "b must be"),
    (lambda: BM25([["a"]]).scores("a"), "query must be a list of tokens"),
    (lambda: BM25([["a"]]).search(["a"], 0), "k must be an int >= 1"),
    (lambda: cosine_search(torch.randn(2, 3), torch.randn(4, 5), 1), "3 dimensions"),
    (lambda: cosine_search(torch.randn(3), torch.randn(4, 3), 1), "queries must be a 2-D"),
    (lambda: mean_pool(torch.randn(2, 3, 4), torch.ones(2, 4)), "attention_mask must be"),
    (lambda: recall_at_k([[1, 2]], [{1}], 3), "fewer than 3"),
    (lambda: recall_at_k([[1, 2]], [{1}, {2}], 1), "1 queries but relevant has 2"),
    (lambda: mrr([[1]], [set()]), r"relevant\[0\] is empty"),
    (lambda: tokenize(3), "text must be a str"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
