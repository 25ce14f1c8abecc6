"""numba twin of csrc/affinity_cpu.cpp over the same geometry as
csrc/include/nutrack/box_overlap.h, helper for helper and line for line (read that header for
the why). Always available; the tests hold the C++ and CUDA kernels to it. Every value stays
float32 (constants are np.float32, no float64 literal mixes in) and numba does not contract
multiply-adds without fastmath, so each operation rounds as in the kernels: keep the order of
every operation identical to the header.

Representation: every helper is inlined into the one loop function (inline="always"), and
values travel as scalars and tuples: a box frame is a 10-tuple (frame_at), a quad two 4-tuples
(x, y), the sorting networks swap scalars. Even inlined, an array argument costs an atomic
reference-count increment and decrement per call, so arrays reach only frame_at() and the
helpers that index the loop's one scratch array (clip_area(), hull_area()).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nutrack.ops._boxes import CX, CY, CZ, COS, HX, HY, HZ, RX, RY, SIN  # the frame layout

# Metric codes, as nutrack::metric in box_overlap.h.
CENTER_DISTANCE, BEV_IOU, IOU_3D, GIOU_BEV, GIOU_3D = range(5)
CLIP_CAPACITY = 16
HULL_CAPACITY = 16

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_MINUS_ONE = np.float32(-1.0)

# Scratch rows: the two clip polygons (x, y, x, y) and the hull chain (x, y).
_HULL_X, _HULL_Y = 4, 5
_SCRATCH_ROWS = 6
_SCRATCH_WIDTH = max(CLIP_CAPACITY, HULL_CAPACITY)

_jit = njit(inline="always", cache=True, error_model="numpy")


@_jit
def min_f32(a, b):
    return b if b < a else a


@_jit
def max_f32(a, b):
    return b if b > a else a


@_jit
def side_of(ex, ey, ox, oy, px, py):
    return ex * (py - oy) - ey * (px - ox)


@_jit
def frame_at(frames, j):
    """Row j of a (M, 10) frame array as a 10-tuple (the `const float* f` of the header)."""
    return (frames[j, CX], frames[j, CY], frames[j, CZ], frames[j, HX], frames[j, HY],
            frames[j, HZ], frames[j, COS], frames[j, SIN], frames[j, RX], frames[j, RY])


@_jit
def box_corners(f, ox, oy):
    """box_corners(): ((x0..x3), (y0..y3)) counter-clockwise, translated by (ox, oy)."""
    ax = f[COS] * f[HX]
    ay = f[SIN] * f[HX]
    bx = -(f[SIN] * f[HY])
    by = f[COS] * f[HY]
    u0 = ax + bx
    v0 = ay + by
    u1 = bx - ax
    v1 = by - ay
    return (ox + u0, ox + u1, ox - u0, ox - u1), (oy + v0, oy + v1, oy - v0, oy - v1)


@_jit
def quad_holds(qx, qy, px, py):
    for k in range(4):
        k1 = (k + 1) & 3
        ex = qx[k1] - qx[k]
        ey = qy[k1] - qy[k]
        for i in range(4):
            if side_of(ex, ey, qx[k], qy[k], px[i], py[i]) < _ZERO:
                return False
    return True


@_jit
def fan_area2(w, rx, ry, n):
    """fan_area2() of the polygon in scratch rows rx (x) and ry (y), first n entries."""
    total = _ZERO
    for i in range(1, n - 1):
        total = total + ((w[rx, i] - w[rx, 0]) * (w[ry, i + 1] - w[ry, 0])
                         - (w[ry, i] - w[ry, 0]) * (w[rx, i + 1] - w[rx, 0]))
    return total


@_jit
def clip_area(px, py, qx, qy, w):
    """clip_area(): polygon `cur` lives in scratch rows 2 cur (x) and 2 cur + 1 (y)."""
    for v in range(4):
        w[0, v] = px[v]
        w[1, v] = py[v]
    n = 4
    cur = 0
    for k in range(4):
        if n <= 0:
            break
        k1 = (k + 1) & 3
        ex = qx[k1] - qx[k]
        ey = qy[k1] - qy[k]
        src = 2 * cur
        dst = 2 * (cur ^ 1)
        m = 0
        x0 = w[src, n - 1]
        y0 = w[src + 1, n - 1]
        s0 = side_of(ex, ey, qx[k], qy[k], x0, y0)
        for i in range(n):
            x1 = w[src, i]
            y1 = w[src + 1, i]
            s1 = side_of(ex, ey, qx[k], qy[k], x1, y1)
            if (s0 > _ZERO and s1 < _ZERO) or (s0 < _ZERO and s1 > _ZERO):
                t = s0 / (s0 - s1)
                if m < CLIP_CAPACITY:
                    w[dst, m] = x0 + t * (x1 - x0)
                    w[dst + 1, m] = y0 + t * (y1 - y0)
                    m += 1
            if s1 >= _ZERO and m < CLIP_CAPACITY:
                w[dst, m] = x1
                w[dst + 1, m] = y1
                m += 1
            x0 = x1
            y0 = y1
            s0 = s1
        n = m
        cur ^= 1
    if n < 3:
        return _ZERO
    return _HALF * fan_area2(w, 2 * cur, 2 * cur + 1, n)


@_jit
def ordered(xi, yi, xj, yj):
    """order_pair() on scalars: (i, j) in lexicographic (x, y) order."""
    if xj < xi or (xj == xi and yj < yi):
        return xj, yj, xi, yi
    return xi, yi, xj, yj


@_jit
def sort_corners(x, y):
    """sort_corners(): the corners of a 4-tuple quad in lexicographic (x, y) order."""
    x0, x1, x2, x3 = x
    y0, y1, y2, y3 = y
    x0, y0, x1, y1 = ordered(x0, y0, x1, y1)
    x2, y2, x3, y3 = ordered(x2, y2, x3, y3)
    x0, y0, x2, y2 = ordered(x0, y0, x2, y2)
    x1, y1, x3, y3 = ordered(x1, y1, x3, y3)
    x1, y1, x2, y2 = ordered(x1, y1, x2, y2)
    return (x0, x1, x2, x3), (y0, y1, y2, y3)


@_jit
def merge_corners(psx, psy, qsx, qsy):
    """merge_corners(): both sorted quads as one sorted 8-tuple (concatenated when apart
    along x, else Batcher's merge)."""
    if qsx[3] < psx[0]:
        return qsx + psx, qsy + psy
    if psx[3] < qsx[0]:
        return psx + qsx, psy + qsy
    x0, x1, x2, x3 = psx
    y0, y1, y2, y3 = psy
    x4, x5, x6, x7 = qsx
    y4, y5, y6, y7 = qsy
    x0, y0, x4, y4 = ordered(x0, y0, x4, y4)
    x1, y1, x5, y5 = ordered(x1, y1, x5, y5)
    x2, y2, x6, y6 = ordered(x2, y2, x6, y6)
    x3, y3, x7, y7 = ordered(x3, y3, x7, y7)
    x2, y2, x4, y4 = ordered(x2, y2, x4, y4)
    x3, y3, x5, y5 = ordered(x3, y3, x5, y5)
    x1, y1, x2, y2 = ordered(x1, y1, x2, y2)
    x3, y3, x4, y4 = ordered(x3, y3, x4, y4)
    x5, y5, x6, y6 = ordered(x5, y5, x6, y6)
    return (x0, x1, x2, x3, x4, x5, x6, x7), (y0, y1, y2, y3, y4, y5, y6, y7)


@_jit
def hull_area(px, py, qx, qy, w):
    """hull_area(): the 8 corners sorted, then the monotone chain in scratch rows 4, 5."""
    psx, psy = sort_corners(px, py)
    qsx, qsy = sort_corners(qx, qy)
    x, y = merge_corners(psx, psy, qsx, qsy)
    w[_HULL_X, 0] = x[0]
    w[_HULL_Y, 0] = y[0]
    ax = x[0]
    ay = y[0]
    bx = x[1]
    by = y[1]
    k = 2
    for i in range(2, 8):  # lower chain, left to right
        while k >= 2 and side_of(bx - ax, by - ay, ax, ay, x[i], y[i]) <= _ZERO:
            k -= 1
            bx = ax
            by = ay
            if k >= 2:
                ax = w[_HULL_X, k - 2]
                ay = w[_HULL_Y, k - 2]
        w[_HULL_X, k - 1] = bx
        w[_HULL_Y, k - 1] = by
        ax = bx
        ay = by
        bx = x[i]
        by = y[i]
        k += 1
    lower = k + 1
    for i in range(6, -1, -1):  # upper chain, right to left
        while k >= lower and side_of(bx - ax, by - ay, ax, ay, x[i], y[i]) <= _ZERO:
            k -= 1
            bx = ax
            by = ay
            ax = w[_HULL_X, k - 2]
            ay = w[_HULL_Y, k - 2]
        w[_HULL_X, k - 1] = bx
        w[_HULL_Y, k - 1] = by
        ax = bx
        ay = by
        bx = x[i]
        by = y[i]
        k += 1
    return _HALF * fan_area2(w, _HULL_X, _HULL_Y, k - 1)


@_jit
def extreme_corner(ax, ay, bx, by, nx, ny):
    pa = nx * ax + ny * ay >= _ZERO
    pb = nx * bx + ny * by >= _ZERO
    if pb:
        return 0 if pa else 1
    return 3 if pa else 2


@_jit
def is_bridge(px, py, i, qx, qy, j):
    ex = qx[j] - px[i]
    ey = qy[j] - py[i]
    return (side_of(ex, ey, px[i], py[i], px[(i + 1) & 3], py[(i + 1) & 3]) >= _ZERO
            and side_of(ex, ey, px[i], py[i], px[(i + 3) & 3], py[(i + 3) & 3]) >= _ZERO
            and side_of(ex, ey, px[i], py[i], qx[(j + 1) & 3], qy[(j + 1) & 3]) >= _ZERO
            and side_of(ex, ey, px[i], py[i], qx[(j + 3) & 3], qy[(j + 3) & 3]) >= _ZERO)


@_jit
def chain_area2(x, y, start, stop):
    span = (stop - start) & 3
    total = _ZERO
    for e in range(3):
        k = (start + e) & 3
        k1 = (k + 1) & 3
        term = x[k] * y[k1] - y[k] * x[k1]
        total = total + (term if e < span else _ZERO)
    return total


@_jit
def half_vectors(f):
    """half_vectors(): heading (ax, ay) and left (bx, by) half vectors."""
    return f[COS] * f[HX], f[SIN] * f[HX], -(f[SIN] * f[HY]), f[COS] * f[HY]


@_jit
def find_bridge(va, px, py, vb, qx, qy, nx, ny):
    """find_bridge(): the corners (i, j) of the bridge P -> Q, extreme along the outward
    normal (nx, ny), else along the normal of that first guess; (-1, -1) when neither is a
    hull edge."""
    i = extreme_corner(va[0], va[1], va[2], va[3], nx, ny)
    j = extreme_corner(vb[0], vb[1], vb[2], vb[3], nx, ny)
    if is_bridge(px, py, i, qx, qy, j):
        return i, j
    nx = qy[j] - py[i]
    ny = -(qx[j] - px[i])
    i = extreme_corner(va[0], va[1], va[2], va[3], nx, ny)
    j = extreme_corner(vb[0], vb[1], vb[2], vb[3], nx, ny)
    if is_bridge(px, py, i, qx, qy, j):
        return i, j
    return -1, -1


@_jit
def apart_hull_area(va, px, py, vb, qx, qy, dx, dy):
    """apart_hull_area(): the hull of boxes apart by its bridges, or -1."""
    i, j = find_bridge(va, px, py, vb, qx, qy, dy, -dx)
    if i < 0:
        return _MINUS_ONE
    k, l = find_bridge(vb, qx, qy, va, px, py, -dy, dx)
    if k < 0:
        return _MINUS_ONE
    total = chain_area2(px, py, l, i)
    total = total + (px[i] * qy[j] - py[i] * qx[j])
    total = total + chain_area2(qx, qy, j, k)
    total = total + (qx[k] * py[l] - qy[k] * px[l])
    return _HALF * total


@_jit
def frame_precedes(f, g):
    for k in range(RX):
        if f[k] < g[k]:
            return True
        if g[k] < f[k]:
            return False
    return False


@_jit
def z_extents(f1, f2):
    """z_extents(): (overlap clamped to the lower height, enclosing extent)."""
    dz = f2[CZ] - f1[CZ]
    top = dz + f2[HZ]
    bottom = dz - f2[HZ]
    overlap = min_f32(f1[HZ], top) - max_f32(-f1[HZ], bottom)
    lower = min_f32(f1[HZ] + f1[HZ], f2[HZ] + f2[HZ])
    return min_f32(overlap, lower), max_f32(f1[HZ], top) - min_f32(-f1[HZ], bottom)


@_jit
def containment(px, py, qx, qy, area_p, area_q):
    if area_q <= area_p and quad_holds(px, py, qx, qy):
        return 1
    if area_p <= area_q and quad_holds(qx, qy, px, py):
        return 2
    return 0


@_jit
def bev_intersection(px, py, qx, qy, held, area_p, area_q, w):
    if held == 1:
        return area_q
    if held == 2:
        return area_p
    return max_f32(_ZERO, min_f32(clip_area(px, py, qx, qy, w), min_f32(area_p, area_q)))


@_jit
def enclosing_area(f1, px, py, f2, qx, qy, held, area_p, area_q, bev_apart, dx, dy, w):
    if held == 1:
        return area_p
    if held == 2:
        return area_q
    hull = _MINUS_ONE
    if bev_apart:
        hull = apart_hull_area(half_vectors(f1), px, py, half_vectors(f2), qx, qy, dx, dy)
    return hull_area(px, py, qx, qy, w) if hull < _ZERO else hull


@_jit
def ordered_affinity(metric, f1, px, py, f2, dx, dy, bev_apart, w):
    """ordered_affinity<metric>(): f2 at (dx, dy) from f1, whose footprint is (px, py)."""
    three_d = metric == IOU_3D or metric == GIOU_3D
    generalized = metric == GIOU_BEV or metric == GIOU_3D
    z_overlap, z_enclose = z_extents(f1, f2) if three_d else (_ONE, _ONE)
    apart = bev_apart or not (z_overlap > _ZERO)
    if apart and not generalized:
        return _ZERO

    area_1 = (f1[HX] + f1[HX]) * (f1[HY] + f1[HY])
    area_2 = (f2[HX] + f2[HX]) * (f2[HY] + f2[HY])
    qx, qy = box_corners(f2, dx, dy)
    held = 0 if bev_apart else containment(px, py, qx, qy, area_1, area_2)
    inter = _ZERO if apart else bev_intersection(px, py, qx, qy, held, area_1, area_2, w)
    if three_d:
        vol_1 = area_1 * (f1[HZ] + f1[HZ])
        vol_2 = area_2 * (f2[HZ] + f2[HZ])
        overlap = _ZERO if apart else inter * z_overlap
        total = vol_1 + vol_2 - overlap
    else:
        overlap = inter
        total = area_1 + area_2 - overlap
    iou = overlap / total
    if not generalized:
        return iou

    hull = enclosing_area(f1, px, py, f2, qx, qy, held, area_1, area_2, bev_apart, dx, dy, w)
    enclose = max_f32(total, hull * z_enclose if three_d else hull)
    return iou - (enclose - total) / enclose


@_jit
def pair_affinity(metric, fa, pax, pay, fb, dx, dy, bev_apart, w):
    """pair_affinity<metric>(): the pair in canonical order, then ordered_affinity()."""
    swap = frame_precedes(fb, fa)
    p1x, p1y = box_corners(fb, _ZERO, _ZERO) if swap else (pax, pay)  # row_footprint(fb)
    return ordered_affinity(metric, fb if swap else fa, p1x, p1y, fa if swap else fb,
                            -dx if swap else dx, -dy if swap else dy, bev_apart, w)


@njit(cache=True, error_model="numpy")
def pairwise_affinity(frames_a, na, frames_b, nb, metric, classes_a, classes_b, fill, out):
    """pairwise_affinity_cpu() of csrc/affinity_cpu.cpp, with its arguments: (na, 10) and
    (nb, 10) frames, the metric code, (na,) and (nb,) int64 classes or two empty int64 arrays
    for "no classes", the fill of masked pairs and the (na, nb) float32 output.

    The first half of box_affinity() (the centre distance and the BEV reject) is written out
    in the loop: an array handed to even an inlined helper costs a reference-count increment
    and decrement, which doubled the time of the rejected pairs (most of a scene)."""
    w = np.empty((_SCRATCH_ROWS, _SCRATCH_WIDTH), np.float32)
    use_classes = classes_a.shape[0] > 0
    generalized = metric == GIOU_BEV or metric == GIOU_3D
    for i in range(na):
        fa = frame_at(frames_a, i)
        pax, pay = box_corners(fa, _ZERO, _ZERO)  # row_footprint(fa)
        for j in range(nb):
            if use_classes and classes_a[i] != classes_b[j]:
                out[i, j] = fill
                continue
            # ---- box_affinity<metric>(fa, pa, fb)
            dx = frames_b[j, CX] - fa[CX]
            dy = frames_b[j, CY] - fa[CY]
            if metric == CENTER_DISTANCE:
                out[i, j] = np.sqrt(dx * dx + dy * dy)
                continue
            bev_apart = abs(dx) > fa[RX] + frames_b[j, RX] or abs(dy) > fa[RY] + frames_b[j, RY]
            if bev_apart and not generalized:
                out[i, j] = _ZERO
                continue
            out[i, j] = pair_affinity(metric, fa, pax, pay, frame_at(frames_b, j), dx, dy,
                                      bev_apart, w)
