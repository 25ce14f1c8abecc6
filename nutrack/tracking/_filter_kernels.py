"""numba kernels of the filter tracker's per-frame bookkeeping (issue 12, item 2).

A frame holds a few dozen tracks and detections, where every numpy call costs more than the
arithmetic it does; each kernel here replaces a chain of small numpy operations of
:mod:`nutrack.tracking.filter` with one call, doing the same operations in the same order and
precision (float32 where numpy computed in float32), so the tracker's output stays identical
bit for bit (tests/test_tracking_filter_kernels.py holds each against its numpy form).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nutrack.ops._boxes import CX, CY, MAX_COORDINATE, MAX_SIZE, MIN_SIZE

__all__ = ["boxes_valid", "gate_candidates", "passing_pairs"]

_MIN_SIZE = np.float32(MIN_SIZE)
_MAX_SIZE = np.float32(MAX_SIZE)
_MAX_COORDINATE = np.float32(MAX_COORDINATE)


@njit(cache=True, nogil=True)
def boxes_valid(boxes):
    """Whether ``validate_boxes`` accepts these C-contiguous (M, 7) float32 boxes: finite,
    sizes in [MIN_SIZE, MAX_SIZE], centres within MAX_COORDINATE (the bounds rounded to
    float32, as numpy compares a float32 array with them). The caller calls ``validate_boxes``
    itself when this says no, for its error message."""
    for i in range(boxes.shape[0]):
        for k in range(7):
            if not np.isfinite(boxes[i, k]):
                return False
        for k in range(3):
            if not abs(boxes[i, k]) <= _MAX_COORDINATE:
                return False
        for k in range(3, 6):
            if not (boxes[i, k] > 0 and boxes[i, k] >= _MIN_SIZE and boxes[i, k] <= _MAX_SIZE):
                return False
    return True


@njit(cache=True, nogil=True)
def gate_candidates(track_frames, track_cls, det_frames, det_cls, gate_distance):
    """``(tracks, detections)`` bool: same class and the BEV centre distance (float32,
    computed as the ``center_distance`` kernel does: ``sqrt(dx * dx + dy * dy)``, detection
    minus track) at most the track class's float32 ``gate_distance``."""
    m, n = track_frames.shape[0], det_frames.shape[0]
    out = np.zeros((m, n), np.bool_)
    for i in range(m):
        c = track_cls[i]
        gate = gate_distance[c]
        tx = track_frames[i, CX]
        ty = track_frames[i, CY]
        for j in range(n):
            if det_cls[j] != c:
                continue
            dx = det_frames[j, CX] - tx
            dy = det_frames[j, CY] - ty
            out[i, j] = np.sqrt(dx * dx + dy * dy) <= gate
    return out


@njit(cache=True, nogil=True)
def passing_pairs(aff, candidates, rows, cols, threshold, is_distance):
    """The cost and valid matrices ``(len(rows), len(cols))`` that ``_assign_passing`` hands
    the assignment, over ``aff[rows][:, cols]`` (float64) and ``candidates[rows][:, cols]``:
    a pair is valid when it is a candidate and passes its row's ``threshold[k]`` (below it for
    a distance, above it for a similarity; NaN never passes); the cost is the affinity (a
    distance) or its negation (a similarity) on valid pairs, 0 elsewhere."""
    m, n = rows.shape[0], cols.shape[0]
    cost = np.zeros((m, n), np.float64)
    valid = np.zeros((m, n), np.bool_)
    for a in range(m):
        i = rows[a]
        thr = threshold[a]
        for b in range(n):
            j = cols[b]
            if not candidates[i, j]:
                continue
            v = aff[i, j]
            if is_distance:
                if v < thr:
                    valid[a, b] = True
                    cost[a, b] = v
            elif v > thr:
                valid[a, b] = True
                cost[a, b] = -v
    return cost, valid
