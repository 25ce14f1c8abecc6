"""Ground-truth assignment: which annotated instance does each detection belong to?

The rule is the devkit's tracking-evaluation matching for one frame: a detection and a
ground-truth box can match only if they have the same tracking class and their BEV centre
distance is strictly below 2 m (the devkit drops distances ``>= dist_th_tp``); among those
pairs, a one-to-one assignment with the most matches and, among those, the least total
distance (motmetrics' ``linear_sum_assignment`` with expensive non-edges, here
``scipy.optimize.linear_sum_assignment``).

Ties (assignments of equal cardinality and total distance, up to 1e-6 m) are broken
deterministically: the higher-scoring detection wins, then the earlier detection, then the
earlier ground-truth box.

These labels are the learned tracker's training targets (a (track, detection) pair is
positive when both carry the same instance token) and per-detection diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["assign_gt", "Assignment", "assign_frame", "MATCH_DISTANCE"]

#: The devkit's ``dist_th_tp`` for tracking (``tracking_nips_2019``), metres.
MATCH_DISTANCE = 2.0
_TIE_EPS = 1e-7  # total tie-break perturbation stays below 1e-6 m


def _check(name, arr, ndim_tail):
    if arr.ndim != 1 + len(ndim_tail) or arr.shape[1:] != ndim_tail:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, ndim_tail))}), got {arr.shape}")


def assign_gt(
    det_boxes,
    det_classes,
    gt_boxes,
    gt_classes,
    det_scores: Optional[np.ndarray] = None,
    max_dist: float = MATCH_DISTANCE,
) -> np.ndarray:
    """Match detections to ground-truth boxes with the devkit's rule.

    Args:
        det_boxes: ``(N, >=2)`` detections (only x, y are used; ``(N, 7)`` boxes work).
        det_classes: ``(N,)`` integer classes.
        gt_boxes: ``(M, >=2)`` ground truth.
        gt_classes: ``(M,)`` integer classes.
        det_scores: ``(N,)`` scores, used only to break ties (higher wins).
        max_dist: match only below this BEV centre distance (strict, as the devkit).

    Returns:
        ``(N,)`` int64: the index of the matched ground-truth box for each detection, -1
        where there is none.
    """
    det = np.asarray(det_boxes, dtype=np.float64)
    gt = np.asarray(gt_boxes, dtype=np.float64)
    if det.ndim != 2 or det.shape[1] < 2:
        raise ValueError(f"det_boxes must have shape (N, >=2), got {det.shape}")
    if gt.ndim != 2 or gt.shape[1] < 2:
        raise ValueError(f"gt_boxes must have shape (M, >=2), got {gt.shape}")
    dc = np.asarray(det_classes).reshape(-1)
    gc = np.asarray(gt_classes).reshape(-1)
    n, m = len(det), len(gt)
    if dc.shape != (n,):
        raise ValueError(f"det_classes must have shape ({n},), got {np.shape(det_classes)}")
    if gc.shape != (m,):
        raise ValueError(f"gt_classes must have shape ({m},), got {np.shape(gt_classes)}")
    if not (np.isfinite(det[:, :2]).all() and np.isfinite(gt[:, :2]).all()):
        raise ValueError("box centres must be finite")
    if not max_dist > 0:
        raise ValueError(f"max_dist must be positive, got {max_dist}")
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out

    # Exact BEV differences in float64 (no |a|^2 - 2ab + |b|^2 shortcut near the 2 m edge).
    d = np.hypot(gt[:, None, 0] - det[None, :, 0], gt[:, None, 1] - det[None, :, 1])  # (M, N)
    valid = (d < max_dist) & (gc[:, None] == dc[None, :])
    if not valid.any():
        return out
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    d, valid = d[np.ix_(rows, cols)], valid[np.ix_(rows, cols)]

    # Tie-break ranks in [0, 1): detections by descending score then index; gt by index.
    if det_scores is not None:
        s = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        if s.shape != (n,):
            raise ValueError(f"det_scores must have shape ({n},), got {np.shape(det_scores)}")
        order = np.lexsort((cols, -s[cols]))
    else:
        order = np.arange(len(cols))
    det_rank = np.empty(len(cols))
    det_rank[order] = np.arange(len(cols)) / len(cols)
    gt_rank = np.arange(len(rows)) / len(rows)
    k = min(len(rows), len(cols))
    cost = d + (_TIE_EPS / k) * (det_rank[None, :] + 0.5 * gt_rank[:, None])
    # Non-edges: expensive enough that any assignment with more matches is cheaper
    # (motmetrics' add_expensive_edges).
    big = 2.0 * k * (max_dist + 1.0) + 1.0
    cost = np.where(valid, cost, big)
    r, c = linear_sum_assignment(cost)
    ok = valid[r, c]
    out[cols[c[ok]]] = rows[r[ok]]
    return out


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Assignment:
    """Per-detection ground-truth labels of one frame.

    gt_index (N,) int64 (-1: none); instance_tokens (N,) str ('' for none);
    distance (N,) float64 BEV centre distance to the matched box (NaN for none).
    """

    gt_index: np.ndarray
    instance_tokens: np.ndarray
    distance: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        return self.gt_index >= 0


def assign_frame(detections, ground_truth, max_dist: float = MATCH_DISTANCE) -> Assignment:
    """Label a frame's :class:`~nutrack.data.Detections` with the instance tokens of a
    :class:`~nutrack.data.GroundTruth` (use ``NuScenesData.ground_truth``)."""
    idx = assign_gt(detections.boxes, detections.classes, ground_truth.boxes, ground_truth.classes,
                    det_scores=detections.scores, max_dist=max_dist)
    n = len(idx)
    tokens = np.full(n, "", dtype=ground_truth.instance_tokens.dtype if len(ground_truth) else "<U1")
    dist = np.full(n, np.nan)
    ok = idx >= 0
    if ok.any():
        tokens = tokens.astype(ground_truth.instance_tokens.dtype)
        tokens[ok] = ground_truth.instance_tokens[idx[ok]]
        g = ground_truth.boxes[idx[ok]].astype(np.float64)
        dd = detections.boxes[ok].astype(np.float64)
        dist[ok] = np.hypot(g[:, 0] - dd[:, 0], g[:, 1] - dd[:, 1])
    return Assignment(gt_index=idx, instance_tokens=tokens, distance=dist)
