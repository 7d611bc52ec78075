"""A Vision Transformer: an image read as a sequence of patches by the book's ``Block``.

An image ``(B, C, H, W)`` is cut into non-overlapping ``p × p`` patches, row by row;
each patch, flattened channel first, is one token of ``C·p·p`` numbers
(:func:`patchify`, the same order as ``torch.nn.functional.unfold``). A linear layer
embeds the tokens, a learned ``[CLS]`` token is put in front, learned positions are
added, and the sequence goes through the same pre-LN :class:`llmbook.models.Block` as
the language models, without a causal mask. The ``[CLS]`` output is the image's
feature vector (:meth:`ViT.features`); a linear head classifies it.
"""
from __future__ import annotations

import torch
from torch import nn

from llmbook._validate import finite, float_tensor, nonneg_int, positive_int
from llmbook.layers import LayerNorm
from llmbook.models import Block
from llmbook.positions import LearnedPositions

__all__ = ["ViT", "patchify"]


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Non-overlapping patches as tokens: ``(B, C, H, W)`` -> ``(B, N, C·p·p)``.

    ``N = (H / p) · (W / p)``, patches in row-major order; each token lists channel 0's
    ``p × p`` pixels row by row, then channel 1's, ... (``unfold``'s layout).
    """
    images = float_tensor("images", images, ndim=4, layout="(B, C, H, W)")
    p = positive_int("patch", patch)
    B, C, H, W = images.shape
    if H % p or W % p:
        raise ValueError(f"patch={p} must divide the image height and width, got images of "
                         f"shape {tuple(images.shape)}")
    x = images.reshape(B, C, H // p, p, W // p, p)          # (B, C, h, p, w, p)
    x = x.permute(0, 2, 4, 1, 3, 5)                          # (B, h, w, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)


class ViT(nn.Module):
    """Vision Transformer for small images: patches -> ``Block``s -> ``[CLS]`` -> logits.

    ``forward(images (B, C, H, W)) -> logits (B, n_classes)``;
    ``features(images) -> (B, n_embd)``, the final-normed ``[CLS]`` output.
    ``n_classes=0`` builds the trunk only (``forward`` then returns the features).
    """

    def __init__(self, image_size: int = 8, patch: int = 2, channels: int = 1,
                 n_classes: int = 10, n_embd: int = 64, n_head: int = 4, n_layer: int = 2,
                 mlp_hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.image_size = positive_int("image_size", image_size)
        self.patch = positive_int("patch", patch)
        if image_size % patch:
            raise ValueError(f"patch={patch} must divide image_size={image_size}")
        self.channels = positive_int("channels", channels)
        n_classes = nonneg_int("n_classes", n_classes)
        positive_int("n_embd", n_embd)
        if positive_int("n_head", n_head) and n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        finite("dropout", dropout, ge=0.0, lt=1.0)
        self.n_patches = (image_size // patch) ** 2
        self.embed = nn.Linear(channels * patch * patch, n_embd)
        self.cls = nn.Parameter(torch.zeros(1, 1, n_embd))
        self.pos = LearnedPositions(self.n_patches + 1, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, mlp_hidden=mlp_hidden, dropout=dropout)
            for _ in range(positive_int("n_layer", n_layer)))
        self.ln_f = LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, n_classes) if n_classes else None

    def _check(self, images: object) -> torch.Tensor:
        images = float_tensor("images", images, ndim=4, layout="(B, C, H, W)")
        want = (self.channels, self.image_size, self.image_size)
        if tuple(images.shape[1:]) != want:
            raise ValueError(f"images must have shape (B, {want[0]}, {want[1]}, {want[2]}) for "
                             f"this ViT, got {tuple(images.shape)}")
        return images

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Every output token ``(B, 1 + N, n_embd)``, ``[CLS]`` first, after the final norm."""
        x = self.embed(patchify(self._check(images), self.patch))          # (B, N, C)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)    # (B, 1 + N, C)
        x = self.drop(x + self.pos(x.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The ``[CLS]`` feature vector ``(B, n_embd)``."""
        return self.tokens(images)[:, 0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, C, H, W)`` -> ``logits (B, n_classes)`` (features if no head)."""
        f = self.features(images)
        return f if self.head is None else self.head(f)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
