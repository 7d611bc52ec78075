"""Fine-tuning a pretrained encoder as a text classifier: mean pooling + a linear head.

The encoder is any module called as ``encoder(input_ids=..., attention_mask=...)``
that returns an object with ``last_hidden_state (B, T, C)`` (a ``transformers``
``AutoModel`` such as MiniLM/BERT). Every weight is trained, the encoder at ``lr`` and
the freshly initialised head at ``head_lr`` (a new layer needs larger steps than
weights that are already good), with AdamW and a linear decay to zero.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from llmbook._validate import finite, positive_int
from llmbook.retrieval import mean_pool

__all__ = ["EncoderClassifier", "fit_classifier", "predict_logits", "tokenize_batch"]


class EncoderClassifier(nn.Module):
    """``input_ids (B, T)``, ``attention_mask (B, T)`` -> class logits ``(B, n_classes)``.

    The logits are ``head(mean of the encoder's last states over real tokens)``; with
    ``masked_pool=False`` the mean also counts the padding positions (the mistake the
    book measures), the encoder itself still receiving the attention mask.
    """

    def __init__(self, encoder: nn.Module, n_classes: int = 2, hidden_size: int | None = None,
                 masked_pool: bool = True) -> None:
        super().__init__()
        positive_int("n_classes", n_classes)
        if hidden_size is None:
            hidden_size = getattr(getattr(encoder, "config", None), "hidden_size", None)
            if hidden_size is None:
                raise ValueError("hidden_size must be given when encoder has no "
                                 "config.hidden_size")
        self.encoder = encoder
        self.head = nn.Linear(positive_int("hidden_size", hidden_size), n_classes)
        self.masked_pool = masked_pool

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(f"input_ids and attention_mask must both be (B, T), got "
                             f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}")
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.masked_pool:
            pooled = mean_pool(h, attention_mask)
        else:
            pooled = h.mean(1)
        return self.head(pooled)


def tokenize_batch(tokenizer, texts: Sequence[str], max_len: int,
                   pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Token ids and attention mask ``(B, T)``: truncated to ``max_len`` tokens, then
    right-padded to the longest row, or to ``pad_to`` (>= ``max_len``) positions.

    Truncating before padding keeps the real tokens of a row the same whatever
    ``pad_to`` is, so only the amount of padding changes.
    """
    positive_int("max_len", max_len)
    if pad_to is not None and (positive_int("pad_to", pad_to) < max_len):
        raise ValueError(f"pad_to must be >= max_len={max_len}, got {pad_to!r}")
    enc = tokenizer(list(texts), truncation=True, max_length=max_len)
    if pad_to is None:
        return tokenizer.pad(enc, padding="longest", return_tensors="pt")
    return tokenizer.pad(enc, padding="max_length", max_length=pad_to, return_tensors="pt")


def _check_data(texts: Sequence[str], labels: Sequence[int], n_classes: int) -> list[int]:
    if not isinstance(texts, Sequence) or isinstance(texts, str) or not texts:
        raise ValueError(f"texts must be a non-empty list of strings, got {texts!r:.80}")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must hold only strings")
    labels = [int(y) for y in labels]
    if len(labels) != len(texts):
        raise ValueError(f"labels must have one entry per text ({len(texts)}), "
                         f"got {len(labels)}")
    bad = [y for y in labels if not 0 <= y < n_classes]
    if bad:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {bad[0]!r}")
    return labels


def fit_classifier(model: EncoderClassifier, tokenizer, texts: Sequence[str],
                   labels: Sequence[int], *, max_len: int, epochs: int = 2,
                   batch_size: int = 16, lr: float = 2e-5, head_lr: float = 1e-3,
                   weight_decay: float = 0.01, seed: int = 0,
                   device: str | torch.device = "cpu") -> list[float]:
    """Train every weight of ``model`` on ``(texts, labels)``; returns the loss of each
    step (cross-entropy, nats).

    Each epoch visits the texts in an order drawn from ``seed``; the learning rates fall
    linearly from ``lr`` (encoder) and ``head_lr`` (head) to zero over all steps.
    """
    if not isinstance(model, EncoderClassifier):
        raise TypeError(f"model must be an EncoderClassifier, got {type(model).__name__}")
    labels = _check_data(texts, labels, model.head.out_features)
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    finite("lr", lr, gt=0)
    finite("head_lr", head_lr, gt=0)
    finite("weight_decay", weight_decay, ge=0)
    model.to(device).train()
    opt = torch.optim.AdamW([
        {"params": list(model.encoder.parameters()), "lr": lr},
        {"params": list(model.head.parameters()), "lr": head_lr}],
        weight_decay=weight_decay)
    n_steps = epochs * -(-len(texts) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / n_steps)
    gen = torch.Generator().manual_seed(seed)
    y_all = torch.tensor(labels)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(texts), generator=gen).tolist()
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            enc = tokenize_batch(tokenizer, [texts[j] for j in idx], max_len).to(device)
            loss = F.cross_entropy(model(enc["input_ids"], enc["attention_mask"]),
                                   y_all[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def predict_logits(model: EncoderClassifier, tokenizer, texts: Sequence[str], *,
                   max_len: int, batch_size: int = 32, pad_to: int | None = None,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """Class logits ``(N, n_classes)`` on the CPU, in eval mode, batches padded as
    :func:`tokenize_batch` pads them."""
    _check_data(texts, [0] * len(texts), 1)
    positive_int("batch_size", batch_size)
    model.to(device).eval()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenize_batch(tokenizer, texts[i:i + batch_size], max_len, pad_to).to(device)
        out.append(model(enc["input_ids"], enc["attention_mask"]).float().cpu())
    return torch.cat(out)
