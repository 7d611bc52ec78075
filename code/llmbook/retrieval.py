"""Retrieval: find the passages of a corpus that answer a query, and measure how well.

Two ways to rank ``N`` passages for a query:

- **BM25** (sparse, lexical): a passage scores for every query word it contains, more for
  rare words (inverse document frequency) and with diminishing returns for repeats, on a
  scale normalised by passage length. :class:`BM25` writes it out.
- **Dense** (semantic): an encoder maps query and passages to unit vectors ``(N, C)``;
  the score is their cosine. :func:`embed` (mean pooling, as sentence-transformers does
  for MiniLM) and :func:`cosine_search` (exact, by one matrix product) do this.

Rankings are judged against the passages known to hold each answer:
:func:`recall_at_k` (did the top ``k`` find them?) and :func:`mrr` (how high was the
first one?).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Sequence

import torch

__all__ = ["BM25", "cosine_search", "embed", "first_relevant_rank", "mean_pool", "mrr",
           "recall_at_k", "tokenize"]

_WORD = re.compile(r"[\u4e00-\u9fff]|[^\W_]+")       # one CJK character, or a run of letters


def tokenize(text: str) -> list[str]:
    """Lower-cased words (runs of letters and digits); each CJK character is its own token.

    >>> tokenize("BM25 ranks Top-k 文本")
    ['bm25', 'ranks', 'top', 'k', '文', '本']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


# ------------------------------------------------------------------------- BM25
class BM25:
    """Okapi BM25 over a tokenized corpus (Robertson and Zaragoza 2009).

    For a query ``q`` and passage ``d`` of length ``|d|`` (mean length ``avgdl``)::

        score(q, d) = sum over t in q of  idf(t) * tf(t, d) * (k1 + 1)
                                          / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
        idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

    ``tf`` counts ``t`` in ``d``, ``df`` counts the passages that contain ``t``. This idf
    (Lucene's) is always positive, unlike the original ``ln((N - df + 0.5)/(df + 0.5))``,
    which goes negative for words in more than half the passages. A word repeated in the
    query counts once per repetition. ``k1`` sets how fast repeats saturate (0: a word
    counts once however often it occurs), ``b`` how much long passages are penalised.

    Args:
        corpus: ``N >= 1`` passages, each a sequence of tokens (e.g. from :func:`tokenize`).
    """

    def __init__(self, corpus: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75):
        if isinstance(corpus, str) or not isinstance(corpus, Sequence) or len(corpus) == 0:
            raise ValueError("corpus must be a non-empty sequence of token lists, got "
                             f"{type(corpus).__name__} of length {_len(corpus)}")
        for i, doc in enumerate(corpus):
            if isinstance(doc, str) or not all(isinstance(t, str) for t in doc):
                raise TypeError(f"corpus[{i}] must be a list of str tokens (tokenize it "
                                f"first), got {doc!r:.60}")
        if not (isinstance(k1, int | float) and k1 >= 0):
            raise ValueError(f"k1 must be a number >= 0, got {k1!r}")
        if not (isinstance(b, int | float) and 0 <= b <= 1):
            raise ValueError(f"b must be a number in [0, 1], got {b!r}")
        self.k1, self.b = float(k1), float(b)
        self.n_docs = len(corpus)
        self.doc_len = torch.tensor([len(d) for d in corpus], dtype=torch.float64)  # (N,)
        self.avgdl = max(float(self.doc_len.mean()), 1e-12)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(corpus):
            for term, count in Counter(doc).items():
                ids, tfs = postings.setdefault(term, ([], []))
                ids.append(i)
                tfs.append(count)
        norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avgdl)        # (N,)
        self._postings: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.idf: dict[str, float] = {}
        for term, (ids, tfs) in postings.items():
            ids_t = torch.tensor(ids)
            tf = torch.tensor(tfs, dtype=torch.float64)
            self.idf[term] = math.log(1 + (self.n_docs - len(ids) + 0.5) / (len(ids) + 0.5))
            weight = self.idf[term] * tf * (self.k1 + 1) / (tf + norm[ids_t])
            self._postings[term] = (ids_t, weight)

    def scores(self, query: Sequence[str]) -> torch.Tensor:
        """BM25 score of every passage for ``query`` (a token list): ``(N,)`` float64."""
        if isinstance(query, str):
            raise TypeError("query must be a list of tokens, not a str: pass "
                            "tokenize(query)")
        out = torch.zeros(self.n_docs, dtype=torch.float64)
        for term in query:
            if term in self._postings:
                ids, weight = self._postings[term]
                out.index_add_(0, ids, weight)
        return out

    def search(self, query: Sequence[str], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best passages: ``(scores (k,), indices (k,))``, best first.

        ``k`` larger than the corpus is cut to ``N``; ties go to the lower index.
        """
        _check_k(k)
        s = self.scores(query)
        order = _stable_top(s.unsqueeze(0), min(k, self.n_docs))[0]
        return s[order], order


# ------------------------------------------------------------------------ dense
def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each row over its real (mask = 1) tokens.

    ``hidden (B, T, C)``, ``attention_mask (B, T)`` of 0/1 -> ``(B, C)``.
    """
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (B, T, C), got shape {tuple(hidden.shape)}")
    if attention_mask.shape != hidden.shape[:2]:
        raise ValueError(f"attention_mask must be (B, T) = {tuple(hidden.shape[:2])}, "
                         f"got {tuple(attention_mask.shape)}")
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)                         # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def embed(model: torch.nn.Module, tokenizer, texts: Sequence[str], batch_size: int = 32,
          max_length: int = 256) -> torch.Tensor:
    """Unit-length sentence embeddings ``(N, C)`` float32 of ``texts`` (on the CPU).

    ``model`` is an encoder returning ``last_hidden_state (B, T, C)`` (e.g. MiniLM loaded
    with ``transformers.AutoModel``); texts longer than ``max_length`` tokens are cut.
    Mean pooling then L2 normalisation: what sentence-transformers does for MiniLM.
    Texts are batched by length (less padding); rows come back in the order of ``texts``.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of str (wrap a single text in a list)")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if len(texts) == 0:
        raise ValueError("texts is empty: nothing to embed")
    device = next(model.parameters()).device
    # batches of similar length waste little compute on padding; the order is restored
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(0)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            batch = {name: v.to(device) for name, v in batch.items()}
            hidden = model(**batch).last_hidden_state                         # (B, T, C)
            pooled = mean_pool(hidden.float(), batch["attention_mask"])
            if out.numel() == 0:
                out = torch.empty(len(texts), pooled.shape[1])
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).cpu()
    finally:
        model.train(was_training)
    return out


def cosine_search(queries: torch.Tensor, corpus: torch.Tensor,
                  k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact nearest passages by cosine similarity.

    ``queries (Q, C)``, ``corpus (N, C)`` (need not be normalised) ->
    ``(scores (Q, k), indices (Q, k))``, best first; ``k`` is cut to ``N``.
    """
    _check_k(k)
    for name, x in (("queries", queries), ("corpus", corpus)):
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a 2-D float tensor (rows = vectors), got {shape}")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} dimensions but corpus has "
                         f"{corpus.shape[1]}: embed both with the same model")
    q = torch.nn.functional.normalize(queries.float(), dim=-1)
    c = torch.nn.functional.normalize(corpus.float().to(q.device), dim=-1)
    sims = q @ c.T                                                             # (Q, N)
    order = _stable_top(sims, min(k, corpus.shape[0]))
    return sims.gather(1, order), order


# ---------------------------------------------------------------------- metrics
def first_relevant_rank(ranking: Sequence[int], relevant: Collection[int]) -> int | None:
    """1-based position of the first relevant passage in ``ranking``, or None if absent."""
    for pos, idx in enumerate(_as_ids(ranking), start=1):
        if idx in relevant:
            return pos
    return None


def recall_at_k(rankings: Sequence[Sequence[int]] | torch.Tensor,
                relevant: Sequence[Collection[int]], k: int) -> float:
    """Mean over queries of the fraction of each query's relevant passages in its top ``k``.

    ``rankings (Q, K)``: passage indices per query, best first (``K >= k``);
    ``relevant``: ``Q`` non-empty sets of indices. With one relevant passage per query
    this is the fraction of queries whose answer is in the top ``k`` (a proportion).
    """
    _check_k(k)
    rows = _check_pairs(rankings, relevant)
    if any(len(r) < k for r in rows):
        raise ValueError(f"k={k} but some rankings hold fewer than {k} passages; "
                         "retrieve at least k")
    return sum(len(set(r[:k]) & set(rel)) / len(rel)
               for r, rel in zip(rows, relevant)) / len(rows)


def mrr(rankings: Sequence[Sequence[int]] | torch.Tensor,
        relevant: Sequence[Collection[int]]) -> float:
    """Mean reciprocal rank: the mean of ``1 / rank`` of each query's first relevant
    passage, counting 0 when none is in its ranking (so MRR@K for rankings of length K)."""
    rows = _check_pairs(rankings, relevant)
    ranks = [first_relevant_rank(r, rel) for r, rel in zip(rows, relevant)]
    return sum(0.0 if r is None else 1.0 / r for r in ranks) / len(rows)


# ---------------------------------------------------------------------- helpers
def _stable_top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(Q, k)`` of the k largest scores per row; ties keep the lower index."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def _check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


def _len(x: object) -> object:
    try:
        return len(x)  # type: ignore[arg-type]
    except TypeError:
        return "n/a"


def _as_ids(ranking: Sequence[int] | torch.Tensor) -> list[int]:
    return ranking.tolist() if isinstance(ranking, torch.Tensor) else [int(i) for i in ranking]


def _check_pairs(rankings, relevant) -> list[list[int]]:
    if isinstance(rankings, torch.Tensor) and rankings.dim() != 2:
        raise ValueError(f"rankings must be (Q, K), got shape {tuple(rankings.shape)}")
    rows = [_as_ids(r) for r in rankings]
    if len(rows) == 0:
        raise ValueError("rankings is empty: need at least one query")
    if len(rows) != len(relevant):
        raise ValueError(f"rankings has {len(rows)} queries but relevant has {len(relevant)}")
    for i, rel in enumerate(relevant):
        if len(rel) == 0:
            raise ValueError(f"relevant[{i}] is empty: every query needs at least one "
                             "relevant passage")
    return rows
