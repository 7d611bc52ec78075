"""Knowledge distillation: train a student on a teacher's soft predictions.

:func:`distillation_loss` mixes the usual cross-entropy on the true next tokens with the
KL divergence from the teacher's distribution to the student's, both softened by a
temperature ``T`` (Hinton et al. 2015). The KL term is multiplied by ``T²`` so that its
gradients keep the same scale as ``T`` changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["distillation_loss"]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor, temperature: float = 2.0, alpha: float = 0.5,
                      ignore_index: int = -100) -> torch.Tensor:
    """``alpha · T² · KL(p_teacher,T || p_student,T) + (1 - alpha) · CE(student, targets)``.

    ``student_logits`` and ``teacher_logits`` are ``(B, T, V)`` (or ``(N, V)``),
    ``targets`` ``(B, T)`` (or ``(N,)``) int64; positions whose target is ``ignore_index``
    count in neither term. Returns a scalar.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    if targets.shape != student_logits.shape[:-1]:
        raise ValueError(f"targets must have shape {tuple(student_logits.shape[:-1])}, "
                         f"got {tuple(targets.shape)}")
    if not (isinstance(temperature, float | int) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not (isinstance(alpha, float | int) and 0 <= alpha <= 1):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    V = student_logits.shape[-1]
    s = student_logits.reshape(-1, V).float()
    t = teacher_logits.reshape(-1, V).float().detach()
    y = targets.reshape(-1)
    keep = y != ignore_index
    if not bool(keep.any()):
        raise ValueError(f"every target is ignore_index={ignore_index}: nothing to learn from")
    s, t, y = s[keep], t[keep], y[keep]
    ce = F.cross_entropy(s, y)
    kl = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                  log_target=True, reduction="batchmean")
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce
