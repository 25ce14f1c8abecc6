"""numba kernels behind :func:`nutrack.model.features.gather_object_points`.

The containment test is the ops' own (``nutrack.ops._numba_points.point_in_box_frame``, the
numba twin of the C++ kernel, bit for bit), so a box gets exactly the points that
``points_in_boxes_all`` gives it; the features repeat the numpy reference's arithmetic
operation for operation (float64 from the float32 inputs, rounded to float32 once at the end;
no fastmath, so no contracted multiply-adds).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nutrack.ops import _numba_affinity as _aff
from nutrack.ops._boxes import CX, CY, RX, RY
from nutrack.ops._numba_points import point_in_box_frame

# a box looks at the grid cells its BEV bounding box reaches, widened by this much (metres):
# far more than the float32 rounding of the containment test's |p - centre| <= r
_CELL_MARGIN = 0.01
# a box's points are put in cloud order by a sort up to this many, by a scan of flags beyond
_SORT_LIMIT = 128


@njit(inline="always", cache=True)
def _cell(v, origin, inv, size):
    c = int(np.floor((np.float64(v) - origin) * inv))
    return min(max(c, 0), size - 1)


@njit(cache=True)
def bin_points(points, cell):
    """``(finite, params [x0, y0, 1 / cell], nx, ny, cell_start (nx * ny + 1,), order (N,))`` for
    N > 0 points: the grid from the points' lowest x, y, and the points of cell ``c``
    (row-major, y major) as ``order[cell_start[c]:cell_start[c + 1]]``, in cloud order.
    ``finite`` False (and the rest empty) when a point's x, y or z is NaN or infinite."""
    n = points.shape[0]
    xmin, xmax, ymin, ymax = points[0, 0], points[0, 0], points[0, 1], points[0, 1]
    finite = True
    for i in range(n):
        x, y = points[i, 0], points[i, 1]
        finite = finite and np.isfinite(x) and np.isfinite(y) and np.isfinite(points[i, 2])
        xmin, xmax = min(xmin, x), max(xmax, x)
        ymin, ymax = min(ymin, y), max(ymax, y)
    if not finite:
        return finite, np.zeros(3), 0, 0, np.zeros(1, np.int64), np.zeros(0, np.int64)
    params = np.array([np.float64(xmin), np.float64(ymin), 1.0 / cell])
    nx = int((np.float64(xmax) - params[0]) / cell) + 1
    ny = int((np.float64(ymax) - params[1]) / cell) + 1
    cells = np.empty(n, np.int64)
    counts = np.zeros(nx * ny + 1, np.int64)
    for i in range(n):
        c = _cell(points[i, 1], params[1], params[2], ny) * nx + _cell(points[i, 0], params[0], params[2], nx)
        cells[i] = c
        counts[c + 1] += 1
    for c in range(nx * ny):
        counts[c + 1] += counts[c]
    fill = counts[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        order[fill[cells[i]]] = i
        fill[cells[i]] += 1
    return finite, params, nx, ny, counts, order


@njit(cache=True)
def _in_cloud_order(found, m, flags):
    """``found[:m]`` (distinct point indices) in increasing order: sorted when few; when many
    (a box near the sensor holds thousands of points), flagged and read back by one scan of
    their index range, which costs less than the sort. ``flags`` is all False again after."""
    if m <= _SORT_LIMIT:
        return np.sort(found[:m])
    lo, hi = found[0], found[0]
    for r in range(m):
        p = found[r]
        flags[p] = True
        lo, hi = min(lo, p), max(hi, p)
    r = 0
    for p in range(lo, hi + 1):
        if flags[p]:
            flags[p] = False
            found[r] = p
            r += 1
    return found[:m]


@njit(cache=True)
def _box_points(points, params, nx, ny, cell_start, order, frames, b, found, limit):
    """The points of box ``b`` (in its ``frames`` row) into ``found``, in cell order, up to
    ``limit`` of them; returns how many. Only the grid cells the box's BEV bounding box reaches
    are looked at."""
    x0, y0, inv = params[0], params[1], params[2]
    cx, cy = np.float64(frames[b, CX]), np.float64(frames[b, CY])
    rx, ry = np.float64(frames[b, RX]) + _CELL_MARGIN, np.float64(frames[b, RY]) + _CELL_MARGIN
    ix0, ix1 = _cell(cx - rx, x0, inv, nx), _cell(cx + rx, x0, inv, nx)
    iy0, iy1 = _cell(cy - ry, y0, inv, ny), _cell(cy + ry, y0, inv, ny)
    m = 0
    for iy in range(iy0, iy1 + 1):
        for t in range(cell_start[iy * nx + ix0], cell_start[iy * nx + ix1 + 1]):
            p = order[t]
            if point_in_box_frame(points[p, 0], points[p, 1], points[p, 2], frames, b):
                found[m] = p
                m += 1
                if m == limit:
                    return m
    return m


@njit(cache=True)
def count_points(points, params, nx, ny, cell_start, order, frames, k, counts):
    """``counts[b]``: the points of each box (in its ``frames`` row), at most ``k``: the
    number of slots :func:`gather_points` fills for it, without the features (the scan of a
    box stops at its ``k``-th point)."""
    found = np.empty(points.shape[0], np.int64)
    for b in range(frames.shape[0]):
        counts[b] = _box_points(points, params, nx, ny, cell_start, order, frames, b, found, k)


@njit(cache=True)
def gather_points(points, has_intensity, params, nx, ny, cell_start, order, frames, boxes, big, cos_yaw, sin_yaw,
                  k, out, mask, counts):
    """Fill ``out (M, k, 7)`` / ``mask (M, k)`` for the boxes: each box's points (those in its
    enlarged box ``frames`` row) in cloud order, all of them when at most ``k``, else the ranks
    ``r`` with ``(s * cnt) // k == r`` for ``s = (r * k + cnt - 1) // cnt`` (evenly spaced), in
    slot ``s``; features as :func:`nutrack.model.features.gather_object_points` documents;
    ``counts[b]``: the slots filled."""
    found = np.empty(points.shape[0], np.int64)
    flags = np.zeros(points.shape[0], np.bool_)
    four = 4.0
    for b in range(frames.shape[0]):
        m = _box_points(points, params, nx, ny, cell_start, order, frames, b, found, -1)
        counts[b] = min(m, k)
        if m == 0:
            continue
        sel = _in_cloud_order(found, m, flags)
        c, s = cos_yaw[b], sin_yaw[b]
        h0, h1, h2 = np.float64(big[b, 3]) / 2.0, np.float64(big[b, 4]) / 2.0, np.float64(big[b, 5]) / 2.0
        bx, by, bz = np.float64(boxes[b, 0]), np.float64(boxes[b, 1]), np.float64(boxes[b, 2])
        for r in range(m):
            if m > k:
                slot = (r * k + m - 1) // m
                if (slot * m) // k != r or slot >= k:
                    continue
            else:
                slot = r
                if slot >= k:
                    continue
            p = sel[r]
            d0 = np.float64(points[p, 0]) - bx
            d1 = np.float64(points[p, 1]) - by
            d2 = np.float64(points[p, 2]) - bz
            lx = c * d0 + s * d1
            ly = -s * d0 + c * d1
            out[b, slot, 0] = lx / h0
            out[b, slot, 1] = ly / h1
            out[b, slot, 2] = d2 / h2
            out[b, slot, 3] = lx / four
            out[b, slot, 4] = ly / four
            out[b, slot, 5] = d2 / four
            if has_intensity:
                v = points[p, 3] / np.float32(255.0)
                if v < np.float32(0.0):
                    v = np.float32(0.0)
                elif v > np.float32(1.0):
                    v = np.float32(1.0)
                out[b, slot, 6] = v
            mask[b, slot] = True


@njit(cache=True)
def geometry_rows(boxes, vel, scores, rot, trans, ego_yaw, counts, out):
    """The rows of :func:`nutrack.model.features.object_geometry` into ``out (N, GEOM_DIM)``
    float32: float64 arithmetic (from float32 or float64 inputs), rounded once. ``vel``: finite
    (NaN already 0); ``rot``, ``trans``: the ego pose's rotation and translation; ``ego_yaw``
    its heading.
    Velocities in the ego frame take the rotation's 2x2 block."""
    floor = 1e-2
    for i in range(boxes.shape[0]):
        d0 = np.float64(boxes[i, 0]) - trans[0]
        d1 = np.float64(boxes[i, 1]) - trans[1]
        d2 = np.float64(boxes[i, 2]) - trans[2]
        x = d0 * rot[0, 0] + d1 * rot[1, 0] + d2 * rot[2, 0]  # R^T (c - t)
        y = d0 * rot[0, 1] + d1 * rot[1, 1] + d2 * rot[2, 1]
        z = d0 * rot[0, 2] + d1 * rot[1, 2] + d2 * rot[2, 2]
        out[i, 0] = x / 50.0
        out[i, 1] = y / 50.0
        out[i, 2] = z / 5.0
        out[i, 3] = np.hypot(x, y) / 50.0
        for c in range(3):
            out[i, 4 + c] = np.log(max(np.float64(boxes[i, 3 + c]), floor))
        yaw = np.float64(boxes[i, 6]) - ego_yaw
        out[i, 7] = np.cos(yaw)
        out[i, 8] = np.sin(yaw)
        vx, vy = np.float64(vel[i, 0]), np.float64(vel[i, 1])
        out[i, 9] = (vx * rot[0, 0] + vy * rot[1, 0]) / 10.0
        out[i, 10] = (vx * rot[0, 1] + vy * rot[1, 1]) / 10.0
        out[i, 11] = np.hypot(vx, vy) / 10.0
        out[i, 12] = scores[i]
        out[i, 13] = np.log1p(np.float64(counts[i])) / 5.0


@njit(inline="always", cache=True)
def _nan_to_num(v):
    """``np.nan_to_num`` of one value, in float64."""
    v = np.float64(v)
    if np.isnan(v):
        return 0.0
    if np.isinf(v):
        return np.finfo(np.float64).max if v > 0 else -np.finfo(np.float64).max
    return v


@njit(cache=True)
def pair_columns(tb, db, tv, dv, dt, tsu, ti, di, out):
    """Columns 3-11 of :func:`nutrack.model.features.pair_geometry` for pairs ``(ti, di)``, as
    its numpy code computed them (float64 from the float32 boxes, rounded to float32 once):
    |dz|, the log size ratios, cos and sin of the heading difference, the velocity difference
    / 5 (velocities ``tv``, ``dv`` float32 or float64, NaN and inf as np.nan_to_num turns them),
    the time gap and frames since the update / 5 (``tsu`` None: left 0). numba's log, cos,
    sin and hypot give numpy's float32 values (tests/test_model_scorer_fast.py)."""
    floor = 1e-2
    for k in range(ti.shape[0]):
        i, j = ti[k], di[k]
        out[k, 3] = abs(np.float64(tb[i, 2]) - np.float64(db[j, 2]))
        for c in range(3):
            out[k, 4 + c] = np.log(max(np.float64(db[j, 3 + c]), floor) / max(np.float64(tb[i, 3 + c]), floor))
        dyaw = np.float64(db[j, 6]) - np.float64(tb[i, 6])
        out[k, 7] = np.cos(dyaw)
        out[k, 8] = np.sin(dyaw)
        out[k, 9] = np.hypot(_nan_to_num(tv[i, 0]) - _nan_to_num(dv[j, 0]),
                             _nan_to_num(tv[i, 1]) - _nan_to_num(dv[j, 1])) / 5.0
        out[k, 10] = dt[i]
        if tsu is not None:
            out[k, 11] = tsu[i] / 5.0


@njit(cache=True, error_model="numpy")
def pair_affinities(frames_t, frames_d, ti, di, out):
    """Columns 0-2 of :func:`nutrack.model.features.pair_geometry` for the pairs ``(ti, di)``
    of the (trusted) frames: ``center_distance / 2``, ``giou_bev`` and ``iou_3d``, each as
    the ops' numba twin (``_numba_affinity.pairwise_affinity``, held bit for bit to the C++
    kernel by the ops' tests) writes it, its loop body evaluated for these pairs only instead
    of three full matrices indexed afterwards. error_model "numpy" as that kernel."""
    w = np.empty((_aff._SCRATCH_ROWS, _aff._SCRATCH_WIDTH), np.float32)
    zero, two = np.float32(0.0), np.float32(2.0)
    for k in range(ti.shape[0]):
        i, j = ti[k], di[k]
        fa = _aff.frame_at(frames_t, i)
        pax, pay = _aff.box_corners(fa, zero, zero)
        dx = frames_d[j, CX] - fa[CX]
        dy = frames_d[j, CY] - fa[CY]
        out[k, 0] = np.sqrt(dx * dx + dy * dy) / two
        bev_apart = abs(dx) > fa[RX] + frames_d[j, RX] or abs(dy) > fa[RY] + frames_d[j, RY]
        fb = _aff.frame_at(frames_d, j)
        out[k, 1] = _aff.pair_affinity(_aff.GIOU_BEV, fa, pax, pay, fb, dx, dy, bev_apart, w)
        out[k, 2] = zero if bev_apart else _aff.pair_affinity(_aff.IOU_3D, fa, pax, pay, fb, dx, dy, bev_apart, w)


@njit(cache=True)
def gated_pairs(tb, tc, db, dc, gates):
    """``(ti, di)`` of the same-class pairs of the float64 boxes whose BEV centre distance
    may lie under the track's gate ``gates[i]`` (a bound 1e-6 relative looser than ``hypot < gate``), row-major as
    ``np.nonzero`` gives them; the caller applies the exact ``np.hypot`` test to these."""
    m, n = tb.shape[0], db.shape[0]
    ti = np.empty(m * n, np.int64)
    di = np.empty(m * n, np.int64)
    p = 0
    for i in range(m):
        bound = gates[i] * (1.0 + 1e-6)
        bound2 = bound * bound
        for j in range(n):
            if tc[i] != dc[j]:
                continue
            dx = tb[i, 0] - db[j, 0]
            dy = tb[i, 1] - db[j, 1]
            if dx * dx + dy * dy < bound2:
                ti[p], di[p] = i, j
                p += 1
    return ti[:p], di[:p]


# -- the confidence head's inputs (nutrack.model.confidence) ---------------------------------
@njit(cache=True)
def history_push(hist_ids, hist_window, hist_count, hist_sum, ids, entries):
    """:meth:`nutrack.model.confidence.TrackHistory.push` in one pass: this frame's windows
    ``(M, L, F)`` (entries first, then the track's previous window shifted), output counts and
    score sums, and the new state (``ids`` sorted, the three arrays in that order)."""
    m, length, width = ids.shape[0], hist_window.shape[1], hist_window.shape[2]
    window = np.zeros((m, length, width), np.float32)
    count = np.ones(m, np.int64)
    score_sum = np.empty(m, np.float64)
    for i in range(m):
        window[i, 0] = entries[i]
        score_sum[i] = np.float64(entries[i, 0])
        p = np.searchsorted(hist_ids, ids[i])
        if p < hist_ids.shape[0] and hist_ids[p] == ids[i]:
            window[i, 1:] = hist_window[p, :length - 1]
            count[i] += hist_count[p]
            score_sum[i] += hist_sum[p]
    order = np.argsort(ids, kind="mergesort")
    return window, count, score_sum, ids[order], window[order], count[order], score_sum[order]


@njit(cache=True)
def confidence_rows(geom, classes, tsu, hits, age, matched, mean_score, count, window, num_classes, out):
    """The rows of :func:`nutrack.model.confidence.confidence_inputs` into ``out``: geometry,
    class one-hot, the track statistics (float64, rounded once), the window flattened."""
    gd = geom.shape[1]
    flat = window.shape[1] * window.shape[2]
    for i in range(geom.shape[0]):
        out[i, :gd] = geom[i]
        out[i, gd:gd + num_classes] = 0.0
        out[i, gd + classes[i]] = 1.0
        k = gd + num_classes
        h, a = np.float64(hits[i]), np.float64(age[i])
        out[i, k] = min(np.float64(tsu[i]), 8.0) / 4.0
        out[i, k + 1] = np.log1p(h) / 3.0
        out[i, k + 2] = np.log1p(a) / 3.0
        out[i, k + 3] = h / (a + 1.0)
        out[i, k + 4] = matched[i]
        out[i, k + 5] = mean_score[i]
        out[i, k + 6] = np.log1p(np.float64(count[i])) / 3.0
        out[i, k + 7:k + 7 + flat] = window[i].reshape(flat)


@njit(cache=True)
def same_rows(boxes_a, vel_a, scores_a, classes_a, boxes_b, vel_b, scores_b, classes_b, rows):
    """For each row ``r`` of ``rows`` into set b, the last row of set a with the same bits
    (boxes, velocities and scores as uint32, classes), -1 if none."""
    out = np.full(rows.shape[0], -1, np.int64)
    for k in range(rows.shape[0]):
        r = rows[k]
        for j in range(boxes_a.shape[0] - 1, -1, -1):
            if classes_a[j] != classes_b[r] or scores_a[j] != scores_b[r]:
                continue
            same = vel_a[j, 0] == vel_b[r, 0] and vel_a[j, 1] == vel_b[r, 1]
            for c in range(7):
                same = same and boxes_a[j, c] == boxes_b[r, c]
            if same:
                out[k] = j
                break
    return out


@njit(cache=True)
def confidence_frame(hist_ids, hist_window, hist_count, hist_sum, ids, classes, tsu, hits, age, scores, geom,
                     num_classes, out):
    """:func:`nutrack.model.confidence.confidence_inputs` in one call: each track's entry (score,
    matched, the points feature ``geom[:, 13]``, present), :func:`history_push`, then
    :func:`confidence_rows` into ``out``. Returns the history's new state."""
    m = ids.shape[0]
    entries = np.empty((m, hist_window.shape[2]), np.float32)
    matched = np.empty(m, np.float32)
    for i in range(m):
        matched[i] = 1.0 if tsu[i] == 0 else 0.0
        entries[i, 0], entries[i, 1], entries[i, 2], entries[i, 3] = scores[i], matched[i], geom[i, 13], 1.0
    window, count, score_sum, new_ids, new_window, new_count, new_sum = history_push(
        hist_ids, hist_window, hist_count, hist_sum, ids, entries)
    confidence_rows(geom, classes, tsu, hits, age, matched, score_sum / count, count, window, num_classes, out)
    return new_ids, new_window, new_count, new_sum


# -- the learned scorer's per-track state (nutrack.model.scorer) ------------------------------
@njit(cache=True)
def observed_state(old_ids, old_time, ids, det_index, cached, now, n_old, n_det):
    """The scorer's state after a frame (``LearnedScorer.observe``), as index arithmetic: the
    live ``ids`` the state knew and that were not updated (``det_index`` -1) keep their row;
    updated ones take the row of their detection's features (``cached``: for each updated
    track in order, its row among the ``n_det`` this frame encoded, -1 if none; those get the
    zero row). Returns the new ids (sorted), times, and for each the row of its features in
    ``[old features (n_old); detection features (n_det); one zero row]``, then the ids of the
    tracks that kept their row and the (track id, detection index) of those without features."""
    m = ids.shape[0]
    new_ids = np.empty(m, np.int64)
    new_time = np.empty(m, np.float64)
    src = np.empty(m, np.int64)
    stay_ids = np.empty(m, np.int64)
    miss_ids = np.empty(m, np.int64)
    miss_det = np.empty(m, np.int64)
    r = n_stay = n_miss = u = 0
    for i in range(m):  # the tracks that keep their state first, as the numpy code ordered them
        if det_index[i] >= 0:
            continue
        p = np.searchsorted(old_ids, ids[i])
        if p < old_ids.shape[0] and old_ids[p] == ids[i]:
            new_ids[r], new_time[r], src[r] = ids[i], old_time[p], p
            stay_ids[n_stay] = ids[i]
            r += 1
            n_stay += 1
    for i in range(m):
        if det_index[i] < 0:
            continue
        new_ids[r], new_time[r] = ids[i], now
        if cached[u] >= 0:
            src[r] = n_old + cached[u]
        else:
            src[r] = n_old + n_det
            miss_ids[n_miss], miss_det[n_miss] = ids[i], det_index[i]
            n_miss += 1
        r += 1
        u += 1
    order = np.argsort(new_ids[:r], kind="mergesort")
    return (new_ids[:r][order], new_time[:r][order], src[:r][order], stay_ids[:n_stay], miss_ids[:n_miss],
            miss_det[:n_miss])
