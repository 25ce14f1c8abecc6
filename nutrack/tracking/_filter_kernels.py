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

__all__ = ["boxes_valid", "gate_candidates", "passing_pairs", "measurements_of", "smooth_matched", "life_cycle_rows",
           "keep_rows", "fill_new_tracks", "output_rows"]

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
    """The assignment problem of ``_assign_passing`` over ``aff[rows][:, cols]`` and
    ``candidates[rows][:, cols]``: a pair is valid when it is a candidate and its affinity,
    as float64, passes its row's ``threshold[k]`` (below it for a distance, above it for a
    similarity; NaN never passes). Returns ``(r, c, cost, valid)``: the positions ``r`` in
    ``rows`` and ``c`` in ``cols`` (ascending) that have a valid pair, and the cost (the
    affinity of a distance, its negation for a similarity; 0 on invalid pairs) and valid
    matrices of those rows and columns only. The assignments give the same pairs on them as on
    the full matrices (rows and columns without a valid pair never match, and the order of the
    others is kept), and at 500 boxes a frame most detections have none."""
    m, n = rows.shape[0], cols.shape[0]
    passes = np.zeros((m, n), np.bool_)
    row_has = np.zeros(m, np.bool_)
    col_has = np.zeros(n, np.bool_)
    for a in range(m):
        i = rows[a]
        thr = threshold[a]
        for b in range(n):
            j = cols[b]
            if candidates[i, j]:
                v = np.float64(aff[i, j])
                if (v < thr) if is_distance else (v > thr):
                    passes[a, b] = True
                    row_has[a] = True
                    col_has[b] = True
    r = np.flatnonzero(row_has)
    c = np.flatnonzero(col_has)
    cost = np.zeros((r.shape[0], c.shape[0]), np.float64)
    valid = np.zeros((r.shape[0], c.shape[0]), np.bool_)
    for a in range(r.shape[0]):
        for b in range(c.shape[0]):
            if passes[r[a], c[b]]:
                v = np.float64(aff[rows[r[a]], cols[c[b]]])
                valid[a, b] = True
                cost[a, b] = v if is_distance else -v
    return r, c, cost, valid


@njit(cache=True, nogil=True)
def measurements_of(boxes, velocities, rows):
    """``motion.measurements(boxes[rows], velocities[rows])``: ``(K, 5)`` float64
    ``[x, y, yaw, vx, vy]``."""
    meas = np.empty((rows.shape[0], 5), np.float64)
    for k in range(rows.shape[0]):
        d = rows[k]
        meas[k, 0] = boxes[d, 0]
        meas[k, 1] = boxes[d, 1]
        meas[k, 2] = boxes[d, 6]
        meas[k, 3] = velocities[d, 0]
        meas[k, 4] = velocities[d, 1]
    return meas


@njit(cache=True, nogil=True)
def smooth_matched(matched, det_rows, boxes, scores, z, size, score, hits, tsu, confirmed, cls, min_hits,
                   size_smoothing, score_smoothing):
    """The non-Kalman part of the update of tracks ``matched`` with detections ``det_rows``,
    in place: z and size smoothed, the score taken (and smoothed when ``score_smoothing`` >
    0), one hit more, no frame unmatched, confirmed at the class's ``min_hits``. As numpy
    computed it: the detection's term ``a * box`` in float32 (a python float times a float32
    array), the track's term and the sum in float64."""
    keep = 1.0 - size_smoothing
    a32 = np.float32(size_smoothing)
    for k in range(matched.shape[0]):
        i = matched[k]
        d = det_rows[k]
        z[i] = keep * z[i] + np.float64(a32 * boxes[d, 2])
        for c in range(3):
            size[i, c] = keep * size[i, c] + np.float64(a32 * boxes[d, 3 + c])
        s = np.float64(scores[d])
        if score_smoothing > 0.0:
            s = (1.0 - score_smoothing) * s + score_smoothing * score[i]
        score[i] = s
        hits[i] += 1
        tsu[i] = 0
        confirmed[i] = confirmed[i] or hits[i] >= min_hits[cls[i]]


@njit(cache=True, nogil=True)
def life_cycle_rows(confirmed, tsu, cls, max_age, tentative_max_age, track_det, det_used, high, sel_idx,
                    sel_score, sel_cls, birth_score):
    """The life cycle's indices: ``alive`` (tracks kept: confirmed ones unmatched for at most
    their class's ``max_age`` frames, others for at most ``tentative_max_age``), ``born``
    (rows of the frame's detections starting a track: selected, high, unmatched, scoring at
    least their class's ``birth_score``) and, for the alive tracks then the born ones, the
    frame's detection each was updated with or born from (-1: none)."""
    m = tsu.shape[0]
    alive = np.empty(m, np.int64)
    n_alive = 0
    for i in range(m):
        if tsu[i] <= (max_age[cls[i]] if confirmed[i] else tentative_max_age):
            alive[n_alive] = i
            n_alive += 1
    n_sel = sel_idx.shape[0]
    born = np.empty(n_sel, np.int64)
    n_born = 0
    for j in range(n_sel):
        if high[j] and not det_used[j] and sel_score[j] >= birth_score[sel_cls[j]]:
            born[n_born] = sel_idx[j]
            n_born += 1
    det_of_track = np.empty(n_alive + n_born, np.int64)
    for k in range(n_alive):
        j = track_det[alive[k]]
        det_of_track[k] = sel_idx[j] if j >= 0 else -1
    det_of_track[n_alive:] = born[:n_born]
    return alive[:n_alive], born[:n_born], det_of_track


@njit(cache=True, nogil=True)
def keep_rows(keep, ids, cls, x, P, yaw, z, size, score, hits, age, tsu, confirmed):
    """Moves the tracks ``keep`` (ascending) to the first ``len(keep)`` rows of every column,
    in place (row ``keep[k] >= k`` is read before row ``k`` is written)."""
    for k in range(keep.shape[0]):
        i = keep[k]
        if i == k:
            continue
        ids[k] = ids[i]
        cls[k] = cls[i]
        x[k] = x[i]
        P[k] = P[i]
        yaw[k] = yaw[i]
        z[k] = z[i]
        size[k] = size[i]
        score[k] = score[i]
        hits[k] = hits[i]
        age[k] = age[i]
        tsu[k] = tsu[i]
        confirmed[k] = confirmed[i]


@njit(cache=True, nogil=True)
def fill_new_tracks(start, first_id, det_rows, boxes, scores, classes, min_hits, first_frames_of,
                    ids, cls, yaw, z, size, score, hits, age, tsu, confirmed):
    """Rows ``start ...`` of the columns (all but the motion state) for tracks born from
    detections ``det_rows``: ids from ``first_id`` on, the detection's class, yaw, z, size
    and score, one hit, confirmed when the class needs one hit or the scene is in its first
    ``min_hits`` frames (``first_frames_of[class]``)."""
    for k in range(det_rows.shape[0]):
        i = start + k
        d = det_rows[k]
        c = classes[d]
        ids[i] = first_id + k
        cls[i] = c
        yaw[i] = boxes[d, 6]
        z[i] = boxes[d, 2]
        for a in range(3):
            size[i, a] = boxes[d, 3 + a]
        score[i] = scores[d]
        hits[i] = 1
        age[i] = 0
        tsu[i] = 0
        confirmed[i] = min_hits[c] <= 1 or first_frames_of[c]


@njit(cache=True, nogil=True)
def output_rows(tsu, confirmed, cls, max_coast, show_tentative):
    """Tracks to output: matched this frame (``tsu == 0``; unconfirmed ones only with
    ``show_tentative``) and confirmed ones coasting at most their class's ``max_coast``
    frames."""
    out = np.empty(tsu.shape[0], np.int64)
    n = 0
    for i in range(tsu.shape[0]):
        updated = tsu[i] == 0
        coasting = confirmed[i] and tsu[i] > 0 and tsu[i] <= max_coast[cls[i]]
        if (updated and (show_tentative or confirmed[i])) or coasting:
            out[n] = i
            n += 1
    return out[:n]
