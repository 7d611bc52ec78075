"""Contrastive image–text learning in the style of CLIP: two encoders, one shared space.

A batch holds ``B`` matching pairs (image ``i``, text ``i``). Both are embedded and
L2-normalised; ``logits[i, j] = cos(image_i, text_j) / temperature``. The symmetric
InfoNCE loss (:func:`clip_loss`) asks each image to pick its own text among the ``B``
texts of the batch and each text its own image:

    loss = ( CE(logits, arange(B)) + CE(logitsᵀ, arange(B)) ) / 2

:class:`TextEncoder` reads short strings as character ids through the book's ``Block``
and mean-pools the real (non-padding) positions; :func:`top1` is the retrieval rule
used to score the shared space.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmbook._validate import finite, float_tensor, int_tensor, positive_int
from llmbook.layers import LayerNorm
from llmbook.models import Block
from llmbook.positions import LearnedPositions

__all__ = ["TextEncoder", "clip_logits", "clip_loss", "top1"]


def _pair(image_emb: object, text_emb: object) -> tuple[torch.Tensor, torch.Tensor]:
    image_emb = float_tensor("image_emb", image_emb, ndim=2, layout="(B, D)")
    text_emb = float_tensor("text_emb", text_emb, ndim=2, layout="(B, D)")
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"image_emb and text_emb must have the same shape (B, D), got "
                         f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}")
    for name, emb in (("image_emb", image_emb), ("text_emb", text_emb)):
        bad = ~torch.isfinite(emb.detach()).all(dim=1)
        if bool(bad.any()):              # normalising would spread a NaN over the batch
            rows = bad.nonzero().flatten()[:5].tolist()
            raise ValueError(f"{name} must be finite, but rows {rows} hold NaN or inf "
                             f"(a diverged encoder?)")
    return image_emb, text_emb


def _temperature(temperature: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(temperature, torch.Tensor) and temperature.numel() == 1:
        t = temperature.detach()
        if not bool(torch.isfinite(t)) or float(t) <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        return temperature
    return finite("temperature", temperature, gt=0.0)


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor,
                temperature: float | torch.Tensor = 0.07) -> torch.Tensor:
    """``(B, D), (B, D)`` -> ``logits (B, B)``: cosine similarities / temperature.

    Row ``i`` scores image ``i`` against every text; a tensor ``temperature`` (e.g. a
    learned one) keeps its gradient.
    """
    image_emb, text_emb = _pair(image_emb, text_emb)
    t = _temperature(temperature)
    return F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T / t


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor,
              temperature: float | torch.Tensor = 0.07) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of ``B`` matching pairs ``(B, D), (B, D)`` -> scalar."""
    logits = clip_logits(image_emb, text_emb, temperature)
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def top1(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index of the most cosine-similar key for each query: ``(Q, D), (K, D)`` -> ``(Q,)``."""
    queries = float_tensor("queries", queries, ndim=2, layout="(Q, D)")
    keys = float_tensor("keys", keys, ndim=2, layout="(K, D)")
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} dimensions but keys have "
                         f"{keys.shape[1]}: embed both into the same space")
    return (F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T).argmax(dim=1)


class TextEncoder(nn.Module):
    """Short strings as character ids -> one vector: ``ids (B, T)`` -> ``(B, n_embd)``.

    ``ids`` hold ``0`` for padding (so real characters use ids ``1 .. vocab_size - 1``);
    the output is the mean of the final-normed outputs over the real positions.
    """

    def __init__(self, vocab_size: int, max_len: int, n_embd: int = 64, n_head: int = 4,
                 n_layer: int = 1) -> None:
        super().__init__()
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.max_len = positive_int("max_len", max_len)
        if positive_int("n_head", n_head) and positive_int("n_embd", n_embd) % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        self.wte = nn.Embedding(vocab_size, n_embd, padding_idx=0)
        self.pos = LearnedPositions(max_len, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head)
                                    for _ in range(positive_int("n_layer", n_layer)))
        self.ln_f = LayerNorm(n_embd)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = int_tensor("ids", ids, ndim=2, layout="(B, T)")
        T = ids.shape[1]
        if T > self.max_len:
            raise ValueError(f"ids have {T} positions but this encoder reads at most "
                             f"max_len={self.max_len}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"ids must lie in 0..{self.vocab_size - 1} (0 = padding), got "
                             f"values from {int(ids.min())} to {int(ids.max())}")
        real = ids != 0                                                   # (B, T)
        if not bool(real.any(dim=1).all()):
            raise ValueError("every row of ids needs at least one real (non-zero) id")
        keys = real[:, None, None, :]                       # (B, 1, 1, Tk): may attend
        x = self.wte(ids) + self.pos(T)
        for block in self.blocks:
            x = block(x, mask=keys)
        x = self.ln_f(x)
        w = real.unsqueeze(-1).to(x.dtype)
        return (x * w).sum(1) / w.sum(1)
