"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", 2017) for association.

Positives (a track and the detection of the same object) are a small minority of the
candidate pairs; the focal term ``(1 - p_t) ** gamma`` shrinks the loss of the many easy
negatives so that they do not swamp the few positives.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "sum") -> torch.Tensor:
    """Binary focal loss per pair.

    ``loss = -alpha_t * (1 - p_t) ** gamma * log(p_t)`` with ``p = sigmoid(logit)``,
    ``p_t = p`` for a positive and ``1 - p`` for a negative, ``alpha_t = alpha`` for a positive
    and ``1 - alpha`` for a negative (``alpha < 0`` disables the weighting). ``log(p_t)`` is
    computed stably from the logits.

    Args:
        logits: ``(P,)`` raw scores; targets: ``(P,)`` 0/1 (float or bool).
        reduction: ``"none"``, ``"sum"`` or ``"mean"``.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    y = targets.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")  # -log(p_t)
    p = torch.sigmoid(logits)
    p_t = p * y + (1.0 - p) * (1.0 - y)
    loss = ce * (1.0 - p_t).pow(gamma) if gamma != 0 else ce
    if alpha >= 0:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return _reduce(loss, reduction)


def softmax_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                       reduction: str = "sum") -> torch.Tensor:
    """Categorical focal loss per row: ``-(1 - p_t) ** gamma * log(p_t)`` with ``p`` the
    softmax of the row and ``t`` the target column.

    Args:
        logits: ``(Q, C)``; masked entries may be ``-inf`` (never the target).
        target: ``(Q,)`` int64 column of each row's true class (for association: the matching
            detection, or the row's "no match" slot).
    """
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (Q, C) and target (Q,), got {tuple(logits.shape)}, {tuple(target.shape)}")
    logp = torch.log_softmax(logits, dim=1)
    logp_t = logp.gather(1, target.view(-1, 1)).squeeze(1)
    p_t = logp_t.exp()
    loss = -logp_t * (1.0 - p_t).pow(gamma) if gamma != 0 else -logp_t
    return _reduce(loss, reduction)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
