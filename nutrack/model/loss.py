"""The association loss: focal loss over the candidate pairs of a batch."""
from __future__ import annotations

from typing import Dict, Tuple

import torch

from nutrack.model.focal import sigmoid_focal_loss, softmax_focal_loss

__all__ = ["association_loss"]


def association_loss(logits: torch.Tensor, nomatch: torch.Tensor, batch: Dict[str, torch.Tensor],
                     normalization: str = "sigmoid", alpha: float = 0.25, gamma: float = 2.0
                     ) -> Tuple[torch.Tensor, int, int]:
    """Focal loss of a :func:`nutrack.model.training_data.collate` batch.

    * ``sigmoid``: binary focal loss of every pair, summed and divided by the number of
      positives (at least one), as for dense detection.
    * ``softmax``: per query, a softmax over its candidate pairs and its no-match slot;
      categorical focal loss against the positive pair (or the no-match slot when the query's
      object is absent from the later frame), averaged over the queries.

    Returns ``(loss, positives, negatives)``; callers skip batches without positives or
    without negatives (see :mod:`nutrack.train`).
    """
    labels = batch["labels"]
    npos = int(labels.sum().item())
    nneg = int(labels.numel()) - npos
    if normalization == "sigmoid":
        loss = sigmoid_focal_loss(logits, labels, alpha=alpha, gamma=gamma, reduction="sum") / max(npos, 1)
        return loss, npos, nneg
    if normalization != "softmax":
        raise ValueError(f"normalization must be 'sigmoid' or 'softmax', got {normalization!r}")
    q = nomatch.shape[0]
    ncol = 1 + (int(batch["pair_col"].max().item()) + 1 if logits.numel() else 0)
    mat = torch.full((q, ncol), float("-inf"), dtype=logits.dtype, device=logits.device)
    mat = mat.index_put((batch["pair_q"], batch["pair_col"] + 1), logits)
    mat = torch.cat([nomatch.unsqueeze(1), mat[:, 1:]], dim=1)
    loss = softmax_focal_loss(mat, batch["query_target"], gamma=gamma, reduction="mean")
    return loss, npos, nneg
