"""numba twin of csrc/affinity_cpu.cpp, line for line over the same geometry as
csrc/include/nutrack/box_overlap.h (read that header for the why). Always available; the tests
hold the C++ and CUDA kernels to it. Every value stays float32 (constants are np.float32, no
float64 literal mixes in) and numba does not contract multiply-adds without fastmath, so each
operation rounds as in the kernels: keep the order of every operation identical to the header.

Structure: every array that an inline helper receives costs an atomic reference-count
increment and decrement per call (measured: ~50 ns per pair, 5-10x the geometry itself for
rejected pairs). So helpers here take and return only scalars and tuples (the quads are
4-tuples, the sorting network swaps scalars), and the one loop function reads the frames and
owns the only scratch array (the clipped polygons and the hull chain), with the bodies of
clip_area() and hull_area() of the header written out in it, each marked.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# Box-frame columns, as in csrc/include/nutrack/common.h.
CX, CY, CZ, HX, HY, HZ, COS, SIN, RX, RY = range(10)
# Metric codes, as nutrack::metric in box_overlap.h.
CENTER_DISTANCE, BEV_IOU, IOU_3D, GIOU_BEV, GIOU_3D = range(5)
CLIP_CAPACITY = 16
HULL_CAPACITY = 16

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_MINUS_ONE = np.float32(-1.0)


@njit(inline="always", cache=True, error_model="numpy")
def min_f32(a, b):
    return b if b < a else a


@njit(inline="always", cache=True, error_model="numpy")
def max_f32(a, b):
    return b if b > a else a


@njit(inline="always", cache=True, error_model="numpy")
def side_of(ex, ey, ox, oy, px, py):
    return ex * (py - oy) - ey * (px - ox)


@njit(inline="always", cache=True, error_model="numpy")
def box_corners(ox, oy, c, s, hx, hy):
    """box_corners() of box_overlap.h: ((x0..x3), (y0..y3)) counter-clockwise."""
    ax = c * hx
    ay = s * hx
    bx = -(s * hy)
    by = c * hy
    u0 = ax + bx
    v0 = ay + by
    u1 = bx - ax
    v1 = by - ay
    return (ox + u0, ox + u1, ox - u0, ox - u1), (oy + v0, oy + v1, oy - v0, oy - v1)


@njit(inline="always", cache=True, error_model="numpy")
def quad_holds(qx, qy, px, py):
    for k in range(4):
        k1 = (k + 1) & 3
        ex = qx[k1] - qx[k]
        ey = qy[k1] - qy[k]
        for i in range(4):
            if side_of(ex, ey, qx[k], qy[k], px[i], py[i]) < _ZERO:
                return False
    return True


@njit(inline="always", cache=True, error_model="numpy")
def ordered(xi, yi, xj, yj):
    """order_pair() of box_overlap.h on scalars: (i, j) in lexicographic (x, y) order."""
    if xj < xi or (xj == xi and yj < yi):
        return xj, yj, xi, yi
    return xi, yi, xj, yj


@njit(inline="always", cache=True, error_model="numpy")
def sort_corners(x, y):
    """sort_corners() of box_overlap.h on a 4-tuple quad: the corners in (x, y) order."""
    x0, x1, x2, x3 = x
    y0, y1, y2, y3 = y
    x0, y0, x1, y1 = ordered(x0, y0, x1, y1)
    x2, y2, x3, y3 = ordered(x2, y2, x3, y3)
    x0, y0, x2, y2 = ordered(x0, y0, x2, y2)
    x1, y1, x3, y3 = ordered(x1, y1, x3, y3)
    x1, y1, x2, y2 = ordered(x1, y1, x2, y2)
    return (x0, x1, x2, x3), (y0, y1, y2, y3)


@njit(inline="always", cache=True, error_model="numpy")
def merged_points(psx, psy, qsx, qsy):
    """The first half of hull_area() in box_overlap.h: both sorted quads as one sorted
    8-tuple (concatenated when apart along x, else Batcher's merge)."""
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


@njit(inline="always", cache=True, error_model="numpy")
def extreme_corner(ax, ay, bx, by, nx, ny):
    pa = nx * ax + ny * ay >= _ZERO
    pb = nx * bx + ny * by >= _ZERO
    if pb:
        return 0 if pa else 1
    return 3 if pa else 2


@njit(inline="always", cache=True, error_model="numpy")
def is_bridge(px, py, i, qx, qy, j):
    ex = qx[j] - px[i]
    ey = qy[j] - py[i]
    return (side_of(ex, ey, px[i], py[i], px[(i + 1) & 3], py[(i + 1) & 3]) >= _ZERO
            and side_of(ex, ey, px[i], py[i], px[(i + 3) & 3], py[(i + 3) & 3]) >= _ZERO
            and side_of(ex, ey, px[i], py[i], qx[(j + 1) & 3], qy[(j + 1) & 3]) >= _ZERO
            and side_of(ex, ey, px[i], py[i], qx[(j + 3) & 3], qy[(j + 3) & 3]) >= _ZERO)


@njit(inline="always", cache=True, error_model="numpy")
def chain_area2(x, y, start, stop):
    span = (stop - start) & 3
    total = _ZERO
    for e in range(3):
        k = (start + e) & 3
        k1 = (k + 1) & 3
        term = x[k] * y[k1] - y[k] * x[k1]
        total = total + (term if e < span else _ZERO)
    return total


@njit(inline="always", cache=True, error_model="numpy")
def apart_hull_area(a_ax, a_ay, a_bx, a_by, px, py, b_ax, b_ay, b_bx, b_by, qx, qy, dx, dy):
    """apart_hull_area() of box_overlap.h: the hull of boxes apart by its bridges, or -1."""
    nx = dy
    ny = -dx
    i = extreme_corner(a_ax, a_ay, a_bx, a_by, nx, ny)
    j = extreme_corner(b_ax, b_ay, b_bx, b_by, nx, ny)
    if not is_bridge(px, py, i, qx, qy, j):
        nx = qy[j] - py[i]
        ny = -(qx[j] - px[i])
        i = extreme_corner(a_ax, a_ay, a_bx, a_by, nx, ny)
        j = extreme_corner(b_ax, b_ay, b_bx, b_by, nx, ny)
        if not is_bridge(px, py, i, qx, qy, j):
            return _MINUS_ONE
    nx = -dy
    ny = dx
    k = extreme_corner(b_ax, b_ay, b_bx, b_by, nx, ny)
    l = extreme_corner(a_ax, a_ay, a_bx, a_by, nx, ny)
    if not is_bridge(qx, qy, k, px, py, l):
        nx = py[l] - qy[k]
        ny = -(px[l] - qx[k])
        k = extreme_corner(b_ax, b_ay, b_bx, b_by, nx, ny)
        l = extreme_corner(a_ax, a_ay, a_bx, a_by, nx, ny)
        if not is_bridge(qx, qy, k, px, py, l):
            return _MINUS_ONE
    total = chain_area2(px, py, l, i)
    total = total + (px[i] * qy[j] - py[i] * qx[j])
    total = total + chain_area2(qx, qy, j, k)
    total = total + (qx[k] * py[l] - qy[k] * px[l])
    return _HALF * total


# Scratch rows: the two clip polygons (x, y, x, y) and the hull chain (x, y).
_HULL_X, _HULL_Y = 4, 5
_SCRATCH_ROWS = 6
_SCRATCH_WIDTH = max(CLIP_CAPACITY, HULL_CAPACITY)


@njit(cache=True, error_model="numpy")
def pairwise_affinity(frames_a, frames_b, metric, classes_a, classes_b, use_classes, fill, out):
    """pairwise_affinity_cpu() of csrc/affinity_cpu.cpp, box_affinity<metric>() per pair."""
    w = np.empty((_SCRATCH_ROWS, _SCRATCH_WIDTH), np.float32)
    three_d = metric == IOU_3D or metric == GIOU_3D
    generalized = metric == GIOU_BEV or metric == GIOU_3D
    for i in range(frames_a.shape[0]):
        a_cx = frames_a[i, CX]
        a_cy = frames_a[i, CY]
        a_cz = frames_a[i, CZ]
        a_hx = frames_a[i, HX]
        a_hy = frames_a[i, HY]
        a_hz = frames_a[i, HZ]
        a_c = frames_a[i, COS]
        a_s = frames_a[i, SIN]
        a_rx = frames_a[i, RX]
        a_ry = frames_a[i, RY]
        px, py = box_corners(_ZERO, _ZERO, a_c, a_s, a_hx, a_hy)  # row_footprint()
        psx, psy = sort_corners(px, py)
        a_ax = a_c * a_hx  # half_vectors(fa)
        a_ay = a_s * a_hx
        a_bx = -(a_s * a_hy)
        a_by = a_c * a_hy
        for j in range(frames_b.shape[0]):
            if use_classes and classes_a[i] != classes_b[j]:
                out[i, j] = fill
                continue
            # ---- box_affinity<metric>(fa, fb)
            dx = frames_b[j, CX] - a_cx
            dy = frames_b[j, CY] - a_cy
            if metric == CENTER_DISTANCE:
                out[i, j] = np.sqrt(dx * dx + dy * dy)
                continue
            b_hx = frames_b[j, HX]
            b_hy = frames_b[j, HY]
            b_hz = frames_b[j, HZ]
            z_overlap = _ONE
            z_enclose = _ONE
            if three_d:
                dz = frames_b[j, CZ] - a_cz
                top = dz + b_hz
                bottom = dz - b_hz
                z_overlap = min_f32(a_hz, top) - max_f32(-a_hz, bottom)
                z_enclose = max_f32(a_hz, top) - min_f32(-a_hz, bottom)
            bev_apart = abs(dx) > a_rx + frames_b[j, RX] or abs(dy) > a_ry + frames_b[j, RY]
            apart = bev_apart or not (z_overlap > _ZERO)
            if apart and not generalized:
                out[i, j] = _ZERO
                continue

            area_a = (a_hx + a_hx) * (a_hy + a_hy)
            area_b = (b_hx + b_hx) * (b_hy + b_hy)
            qx, qy = box_corners(dx, dy, frames_b[j, COS], frames_b[j, SIN], b_hx, b_hy)
            held = 0
            if not bev_apart:
                if quad_holds(px, py, qx, qy):
                    held = 1
                elif quad_holds(qx, qy, px, py):
                    held = 2
            inter = _ZERO
            if not apart:
                if held == 1:
                    inter = area_b
                elif held == 2:
                    inter = area_a
                else:
                    # ---- clip_area(px, py, qx, qy): polygon `cur` in rows 2 cur, 2 cur + 1
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
                        for v in range(n):
                            x1 = w[src, v]
                            y1 = w[src + 1, v]
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
                    clipped = _ZERO
                    if n >= 3:  # 0.5 * fan_area2(polygon cur)
                        rx = 2 * cur
                        total2 = _ZERO
                        for v in range(1, n - 1):
                            total2 = total2 + ((w[rx, v] - w[rx, 0]) * (w[rx + 1, v + 1] - w[rx + 1, 0])
                                               - (w[rx + 1, v] - w[rx + 1, 0]) * (w[rx, v + 1] - w[rx, 0]))
                        clipped = _HALF * total2
                    # ---- end clip_area
                    inter = max_f32(_ZERO, min_f32(clipped, min_f32(area_a, area_b)))
            if three_d:
                vol_a = area_a * (a_hz + a_hz)
                vol_b = area_b * (b_hz + b_hz)
                overlap = _ZERO if apart else inter * z_overlap
                total = vol_a + vol_b - overlap
            else:
                overlap = inter
                total = area_a + area_b - overlap
            iou = overlap / total
            if not generalized:
                out[i, j] = iou
                continue

            if held == 1:
                hull = area_a
            elif held == 2:
                hull = area_b
            else:
                hull = _MINUS_ONE
                if bev_apart:
                    b_c = frames_b[j, COS]
                    b_s = frames_b[j, SIN]
                    hull = apart_hull_area(a_ax, a_ay, a_bx, a_by, px, py, b_c * b_hx, b_s * b_hx,
                                           -(b_s * b_hy), b_c * b_hy, qx, qy, dx, dy)
            if hull < _ZERO:  # overlapping bounds, or no bridge found
                # ---- hull_area(pa, qb): the 8 corners sorted, then the monotone chain
                qsx, qsy = sort_corners(qx, qy)
                x, y = merged_points(psx, psy, qsx, qsy)
                w[_HULL_X, 0] = x[0]
                w[_HULL_Y, 0] = y[0]
                ax = x[0]
                ay = y[0]
                bx = x[1]
                by = y[1]
                k = 2
                for v in range(2, 8):  # lower chain, left to right
                    while k >= 2 and side_of(bx - ax, by - ay, ax, ay, x[v], y[v]) <= _ZERO:
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
                    bx = x[v]
                    by = y[v]
                    k += 1
                lower = k + 1
                for v in range(6, -1, -1):  # upper chain, right to left
                    while k >= lower and side_of(bx - ax, by - ay, ax, ay, x[v], y[v]) <= _ZERO:
                        k -= 1
                        bx = ax
                        by = ay
                        ax = w[_HULL_X, k - 2]
                        ay = w[_HULL_Y, k - 2]
                    w[_HULL_X, k - 1] = bx
                    w[_HULL_Y, k - 1] = by
                    ax = bx
                    ay = by
                    bx = x[v]
                    by = y[v]
                    k += 1
                total2 = _ZERO  # 0.5 * fan_area2(hull, k - 1)
                for v in range(1, k - 2):
                    total2 = total2 + ((w[_HULL_X, v] - w[_HULL_X, 0]) * (w[_HULL_Y, v + 1] - w[_HULL_Y, 0])
                                       - (w[_HULL_Y, v] - w[_HULL_Y, 0]) * (w[_HULL_X, v + 1] - w[_HULL_X, 0]))
                hull = _HALF * total2
                # ---- end hull_area
            enclose = max_f32(hull * z_enclose if three_d else hull, total)
            out[i, j] = iou - (enclose - total) / enclose
