"""Count-based n-gram language models: the baseline every neural LM is compared with.

An n-gram model predicts the next token from the previous ``n - 1`` tokens only:

    P(x_t | x_<t)  ≈  P(x_t | x_{t-n+1} … x_{t-1})

and estimates that distribution by counting. Raw counts give probability 0 to anything
never seen, so the counts are *smoothed*:

* ``"add_k"`` (Laplace/Lidstone): add ``k`` to every count,
  ``P(w | h) = (c(h, w) + k) / (c(h) + k·V)``.
* ``"kneser_ney"``: interpolated Kneser–Ney. Subtract a discount ``d`` from every seen
  count and give the freed mass to a lower-order model, whose counts are *continuation*
  counts (in how many distinct contexts a token appears), down to a uniform distribution.

Tokens can be any hashable values (words, characters, integer ids). Tokens not seen in
training map to ``UNK``, which is part of the vocabulary, so every held-out text has a
finite perplexity. Example::

    lm = NGramLM.fit(word_tokens(train_text), n=3, smoothing="kneser_ney")
    lm.perplexity(word_tokens(heldout_text))
    lm.sample(20, seed=0)
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

UNK = "<unk>"
SMOOTHINGS = ("add_k", "kneser_ney")

_WORD_RE = re.compile(r"(?:mrs|mr|dr|st)\.|[a-z]+(?:'[a-z]+)?|[0-9]+|[.,!?;:\"()\-]")


def word_tokens(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: ``"Mr. Darcy!"`` -> ``['mr.', 'darcy', '!']``.

    The titles Mr., Mrs., Dr. and St. keep their full stop (it does not end a sentence);
    apostrophes inside words are kept (``"don't"`` is one token); other characters
    (underscores used for italics, for instance) are dropped.
    """
    if not isinstance(text, str):
        raise TypeError(f"word_tokens expects a str, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower().replace("\u2019", "'"))


class NGramLM:
    """An n-gram language model over a fixed vocabulary (training tokens plus ``UNK``).

    Build it with :meth:`fit`. ``vocab`` lists the tokens; ``vocab[i]`` has id ``i``.
    """

    def __init__(self, n: int, vocab: Sequence[Hashable], smoothing: str = "add_k",
                 k: float = 1.0, discount: float = 0.75) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"unknown smoothing {smoothing!r}; use one of {SMOOTHINGS}")
        if smoothing == "add_k" and not k > 0:
            raise ValueError(f"add-k smoothing needs k > 0, got k={k!r}")
        if smoothing == "kneser_ney" and not 0 < discount < 1:
            raise ValueError(f"the Kneser-Ney discount must lie in (0, 1), got {discount!r}")
        self.n, self.smoothing, self.k, self.discount = n, smoothing, float(k), float(discount)
        self.vocab: list[Hashable] = list(vocab)
        if UNK not in self.vocab:
            self.vocab.append(UNK)
        self.stoi: dict[Hashable, int] = {tok: i for i, tok in enumerate(self.vocab)}
        self.unk_id = self.stoi[UNK]
        # counts[m][context] = Counter{next_id: count} for context length m = 0 … n-1.
        # For Kneser-Ney, orders below n - 1 hold continuation counts instead of raw counts.
        self.counts: list[dict[tuple[int, ...], Counter]] = [defaultdict(Counter)
                                                             for _ in range(n)]
        self.totals: list[dict[tuple[int, ...], int]] = [{} for _ in range(n)]

    # ---------------------------------------------------------------- training
    @classmethod
    def fit(cls, tokens: Sequence[Hashable], n: int, smoothing: str = "add_k",
            k: float = 1.0, discount: float = 0.75,
            vocab: Sequence[Hashable] | None = None) -> NGramLM:
        """Count the n-grams of ``tokens`` (a sequence of length T) and return the model.

        ``vocab`` defaults to the distinct tokens of ``tokens`` (in first-seen order) plus
        ``UNK``; pass the same ``vocab`` to models you want to compare, so that their
        perplexities are over the same set of outcomes.
        """
        if len(tokens) < n:
            raise ValueError(f"need at least n={n} training tokens, got {len(tokens)}")
        if vocab is None:
            vocab = list(dict.fromkeys(tokens))
        lm = cls(n, vocab, smoothing=smoothing, k=k, discount=discount)
        ids = lm.encode(tokens)
        top = lm.counts[n - 1]
        for t in range(n - 1, len(ids)):
            top[tuple(ids[t - n + 1:t])][ids[t]] += 1
        if smoothing == "kneser_ney":
            lm._continuation_counts()
        else:  # add-k: lower orders are plain counts (used only for the context totals)
            for m in range(n - 1):
                for t in range(m, len(ids)):
                    lm.counts[m][tuple(ids[t - m:t])][ids[t]] += 1
        for m in range(n):
            lm.totals[m] = {ctx: sum(c.values()) for ctx, c in lm.counts[m].items()}
            lm.counts[m] = dict(lm.counts[m])
        return lm

    def _continuation_counts(self) -> None:
        """Order m < n-1 counts N1+(• h w): the number of distinct tokens seen before (h, w)."""
        for m in range(self.n - 2, -1, -1):
            for ctx, followers in self.counts[m + 1].items():
                for w in followers:
                    self.counts[m][ctx[1:]][w] += 1

    # ---------------------------------------------------------------- ids
    def encode(self, tokens: Sequence[Hashable]) -> list[int]:
        """Token -> id, with unseen tokens mapped to the id of ``UNK``."""
        if isinstance(tokens, str) and len(tokens) > 1 and tokens not in self.stoi:
            tokens = list(tokens)  # a plain string is a sequence of characters
        return [self.stoi.get(tok, self.unk_id) for tok in tokens]

    def _context(self, context: Sequence[Hashable]) -> tuple[int, ...]:
        ids = self.encode(context)
        return tuple(ids[len(ids) - (self.n - 1):]) if self.n > 1 else ()

    # ---------------------------------------------------------------- probabilities
    def prob(self, context: Sequence[Hashable], token: Hashable) -> float:
        """P(token | last n-1 tokens of ``context``)."""
        return self._prob(self._context(context), self.stoi.get(token, self.unk_id))

    def _prob(self, ctx: tuple[int, ...], w: int) -> float:
        if self.smoothing == "add_k":
            return self._prob_add_k(ctx, w)
        return self._prob_kn(ctx, w)

    def _prob_add_k(self, ctx: tuple[int, ...], w: int) -> float:
        m = len(ctx)
        followers = self.counts[m].get(ctx)
        seen = followers.get(w, 0) if followers else 0
        total = self.totals[m].get(ctx, 0)
        return (seen + self.k) / (total + self.k * len(self.vocab))

    def _prob_kn(self, ctx: tuple[int, ...], w: int) -> float:
        """Interpolated Kneser-Ney, recursing from the full context down to uniform."""
        m = len(ctx)
        lower = self._prob_kn(ctx[1:], w) if m > 0 else 1.0 / len(self.vocab)
        followers = self.counts[m].get(ctx)
        if not followers:
            return lower
        total = self.totals[m][ctx]
        seen = max(followers.get(w, 0) - self.discount, 0.0)
        backoff_mass = self.discount * len(followers) / total
        return seen / total + backoff_mass * lower

    def distribution(self, context: Sequence[Hashable]) -> np.ndarray:
        """The whole next-token distribution, shape (V,), summing to 1."""
        return self._distribution(self._context(context))

    def _distribution(self, ctx: tuple[int, ...]) -> np.ndarray:
        V = len(self.vocab)
        m = len(ctx)
        followers = self.counts[m].get(ctx)
        if self.smoothing == "add_k":
            p = np.full(V, self.k)
            if followers:
                p[list(followers)] += list(followers.values())
            return p / p.sum()
        lower = self._distribution(ctx[1:]) if m > 0 else np.full(V, 1.0 / V)
        if not followers:
            return lower
        total = self.totals[m][ctx]
        p = lower * (self.discount * len(followers) / total)
        p[list(followers)] += (np.fromiter(followers.values(), float) - self.discount) / total
        return p

    def token_logprobs(self, tokens: Sequence[Hashable]) -> list[float]:
        """Natural-log probability of each token given the ones before it, length T - (n-1).

        The first ``n - 1`` tokens only serve as context (they have no full history).
        """
        ids = self.encode(tokens)
        if len(ids) < self.n:
            raise ValueError(f"need at least n={self.n} tokens to score, got {len(ids)}")
        h = self.n - 1
        return [math.log(self._prob(tuple(ids[t - h:t]), ids[t])) for t in range(h, len(ids))]

    def perplexity(self, tokens: Sequence[Hashable]) -> float:
        """exp(mean negative log-probability per predicted token); ≥ 1, lower is better."""
        logps = self.token_logprobs(tokens)
        return math.exp(-sum(logps) / len(logps))

    # ---------------------------------------------------------------- generation
    def sample(self, n_tokens: int, context: Sequence[Hashable] = (), temperature: float = 1.0,
               seed: int | None = None, avoid_unk: bool = True) -> list[Any]:
        """Draw ``n_tokens`` tokens one at a time, each from P(· | previous n-1 tokens).

        ``temperature`` < 1 sharpens the distribution (p ** (1/T), renormalised), > 1
        flattens it. ``context`` (possibly empty) seeds the history; it is not returned.
        """
        if not isinstance(n_tokens, int) or n_tokens < 0:
            raise ValueError(f"n_tokens must be a non-negative int, got {n_tokens!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        rng = np.random.default_rng(seed)
        history = self.encode(context)
        out: list[int] = []
        for _ in range(n_tokens):
            ctx = tuple(history[len(history) - (self.n - 1):]) if self.n > 1 else ()
            p = self._distribution(ctx)
            if avoid_unk:
                p = p.copy()
                p[self.unk_id] = 0.0
            if temperature != 1.0:
                p = np.power(p, 1.0 / temperature)
            p = p / p.sum()
            nxt = int(rng.choice(len(p), p=p))
            history.append(nxt)
            out.append(self.vocab[nxt])
        return out

    def __repr__(self) -> str:
        n_ctx = len(self.counts[self.n - 1])
        extra = f"k={self.k}" if self.smoothing == "add_k" else f"discount={self.discount}"
        return (f"NGramLM(n={self.n}, V={len(self.vocab)}, smoothing={self.smoothing!r}, "
                f"{extra}, contexts={n_ctx})")


def detokenize(words: Sequence[str]) -> str:
    """Join word tokens into readable text (no space before punctuation)."""
    text = " ".join(words)
    return re.sub(r" ([.,!?;:)])", r"\1", text).replace("( ", "(")
