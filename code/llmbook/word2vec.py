"""Skip-gram with negative sampling (word2vec), the recipe built step by step in section 1.3.

A corpus is a 1-D tensor of word ids ``(N,)`` and the count of each word ``freq (V,)``.
Every epoch:

1. **subsample** frequent words: token ``w`` is kept with probability
   ``min(1, sqrt(t / f(w)) + t / f(w))``, ``f`` its relative frequency (Mikolov et al.'s
   rule as in the reference C code), so "the" and "of" stop dominating the pairs;
2. take every (centre, context) pair within a window whose reach is drawn per centre
   from ``1 .. window`` (near words count more often than far ones), shuffled;
3. for each pair draw ``negatives`` words from the unigram distribution to the power
   0.75 and minimise

       loss = -log σ(u_c · v_w) - Σ_k log σ(-u_k · v_w)

with Adam and a learning rate falling linearly to 2 % of its start. The word vectors are
the centre table ``v``; :func:`train_skipgram` returns the trained :class:`SkipGram`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmbook._validate import finite, int_tensor, positive_int

__all__ = ["SkipGram", "epoch_pairs", "keep_probability", "noise_distribution",
           "sgns_loss", "train_skipgram"]


def _freq(freq: object) -> torch.Tensor:
    freq = torch.as_tensor(freq, dtype=torch.float) if not isinstance(freq, torch.Tensor) \
        else freq.float()
    if freq.ndim != 1 or len(freq) == 0:
        raise ValueError(f"freq must be a non-empty 1-D tensor of word counts (V,), got "
                         f"shape {tuple(freq.shape)}")
    if not bool(torch.isfinite(freq).all()) or bool((freq <= 0).any()):
        raise ValueError("freq must hold finite counts > 0 (one per vocabulary word), got "
                         f"min {float(freq.min())}")
    return freq


def _ids_in_range(ids: object, vocab_size: int, per_word: str) -> torch.Tensor:
    ids = int_tensor("ids", ids, ndim=1, layout="(N,)")
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"ids must lie in 0 .. {vocab_size - 1} (one entry of {per_word} "
                         f"per word), got values from {int(ids.min())} to {int(ids.max())}")
    return ids


def keep_probability(freq: torch.Tensor, t: float = 1e-4) -> torch.Tensor:
    """``freq (V,)`` word counts -> ``(V,)`` probability of keeping each token of a word."""
    freq = _freq(freq)
    t = finite("t", t, gt=0.0)
    rel = freq / freq.sum()
    return torch.clamp(torch.sqrt(t / rel) + t / rel, max=1.0)


def noise_distribution(freq: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """``freq (V,)`` -> ``(V,)`` the distribution negatives are drawn from, ∝ freq^power."""
    noise = _freq(freq) ** finite("power", power, ge=0.0)
    return noise / noise.sum()


def epoch_pairs(ids: torch.Tensor, keep_prob: torch.Tensor, window: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over ``ids (N,)``: subsample, pair within a random reach, shuffle.

    Returns ``centre (P,)`` and ``context (P,)``; each kept token is a centre for the
    tokens up to its reach (drawn from ``1 .. window``) on either side.
    """
    ids = _ids_in_range(ids, len(keep_prob), "keep_prob")
    window = positive_int("window", window)
    ids = ids[torch.rand(len(ids), generator=generator) < keep_prob[ids]]
    reach = torch.randint(1, window + 1, (len(ids),), generator=generator)
    centre, context = [], []
    for off in range(1, min(window, max(len(ids) - 1, 0)) + 1):
        right = reach[:-off] >= off          # centre t, context t + off
        left = reach[off:] >= off            # centre t + off, context t
        centre += [ids[:-off][right], ids[off:][left]]
        context += [ids[off:][right], ids[:-off][left]]
    if not centre:
        empty = torch.empty(0, dtype=ids.dtype)
        return empty, empty
    centre, context = torch.cat(centre), torch.cat(context)
    order = torch.randperm(len(centre), generator=generator)
    return centre[order], context[order]


def sgns_loss(v_centre: torch.Tensor, u_context: torch.Tensor,
              u_negative: torch.Tensor) -> torch.Tensor:
    """``v_centre (B, d), u_context (B, d), u_negative (B, K, d)`` -> scalar batch mean."""
    positive = F.logsigmoid((v_centre * u_context).sum(-1))                      # (B,)
    negative = F.logsigmoid(-(u_negative @ v_centre.unsqueeze(-1)).squeeze(-1))  # (B, K)
    return -(positive + negative.sum(-1)).mean()


class SkipGram(nn.Module):
    """Two tables: centre vectors ``v (V, d)`` (the word vectors) and context ``u (V, d)``.

    ``v`` starts uniform in ``±0.5/d`` and ``u`` at zero, as in the reference code.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.v = nn.Embedding(positive_int("vocab_size", vocab_size), positive_int("dim", dim))
        self.u = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.v.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.u.weight)

    def vectors(self) -> torch.Tensor:
        """``(V, d)`` unit-length word vectors (so a dot product is a cosine)."""
        return F.normalize(self.v.weight.detach(), dim=1)


def train_skipgram(ids: torch.Tensor, freq: torch.Tensor, dim: int = 100, window: int = 5,
                   negatives: int = 5, epochs: int = 5, batch_size: int = 1024,
                   lr: float = 0.01, t: float = 1e-4,
                   seed: int = 0) -> tuple[SkipGram, list[float]]:
    """Train skip-gram vectors on ``ids (N,)`` (values in ``0 .. V-1``, ``V = len(freq)``).

    Returns the model and the loss of every step.
    """
    freq = _freq(freq)
    ids = _ids_in_range(ids, len(freq), "freq")
    if len(ids) < 2:
        raise ValueError(f"ids must hold at least 2 tokens, got {len(ids)}")
    dim, window = positive_int("dim", dim), positive_int("window", window)
    negatives, epochs = positive_int("negatives", negatives), positive_int("epochs", epochs)
    batch_size, lr = positive_int("batch_size", batch_size), finite("lr", lr, gt=0.0)
    keep, noise = keep_probability(freq, t), noise_distribution(freq)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SkipGram(len(freq), dim)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = epoch_pairs(ids, keep, window, gen)
    if len(first[0]) < batch_size:
        raise ValueError(f"batch_size={batch_size} is more than the {len(first[0])} pairs "
                         f"of one epoch: use a smaller batch or more text")
    total = epochs * (len(first[0]) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.02, 1 - s / total))
    losses: list[float] = []
    for epoch in range(epochs):
        centre, context = first if epoch == 0 else epoch_pairs(ids, keep, window, gen)
        for start in range(0, len(centre) - batch_size + 1, batch_size):
            c, x = centre[start:start + batch_size], context[start:start + batch_size]
            neg = torch.multinomial(noise, batch_size * negatives, replacement=True,
                                    generator=gen).view(batch_size, negatives)
            loss = sgns_loss(model.v(c), model.u(x), model.u(neg))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return model, losses
