"""numba twins of csrc/points_in_boxes_cpu.cpp, line for line over the same geometry as
csrc/include/nutrack/points_geometry.h. Always available (no compiler needed); the tests hold
the C++ and CUDA kernels to these bit for bit. Every function compiles in nopython mode;
all arithmetic stays in float32 (no float64 literals mix in) and numba does not contract
multiply-adds into FMAs without fastmath, matching the kernels' rounding.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# Box-frame columns, as in csrc/include/nutrack/common.h.
CX, CY, CZ, HX, HY, HZ, COS, SIN, RX, RY = range(10)


@njit(inline="always", cache=True)
def point_in_box_frame(px, py, pz, frames, j):
    dx = px - frames[j, CX]
    if abs(dx) > frames[j, RX]:
        return False
    dy = py - frames[j, CY]
    if abs(dy) > frames[j, RY]:
        return False
    dz = pz - frames[j, CZ]
    if abs(dz) > frames[j, HZ]:
        return False
    local_x = frames[j, COS] * dx + frames[j, SIN] * dy
    local_y = frames[j, COS] * dy - frames[j, SIN] * dx
    return abs(local_x) <= frames[j, HX] and abs(local_y) <= frames[j, HY]


@njit(inline="always", cache=True)
def point_in_convex_polygon(px, py, polygons, j, clockwise):
    k = polygons.shape[1]
    zero = np.float32(0.0)
    for v in range(k):
        # The previous vertex by a computed index: det3d's list index is what numba rejects.
        prev = k - 1 if v == 0 else v - 1
        ex = polygons[j, v, 0] - polygons[j, prev, 0]
        ey = polygons[j, v, 1] - polygons[j, prev, 1]
        cross = ex * (py - polygons[j, prev, 1]) - ey * (px - polygons[j, prev, 0])
        if (cross > zero) if clockwise else (cross < zero):
            return False
    return True


@njit(cache=True)
def points_in_boxes(points, frames, out):
    for i in range(points.shape[0]):
        found = -1
        for j in range(frames.shape[0]):
            if point_in_box_frame(points[i, 0], points[i, 1], points[i, 2], frames, j):
                found = j
                break
        out[i] = found


@njit(cache=True)
def points_in_boxes_dense(points, frames, out):
    for i in range(points.shape[0]):
        for j in range(frames.shape[0]):
            out[i, j] = point_in_box_frame(points[i, 0], points[i, 1], points[i, 2], frames, j)


@njit(cache=True)
def points_in_boxes_count(points, frames, counts):
    for i in range(points.shape[0]):
        count = 0
        for j in range(frames.shape[0]):
            if point_in_box_frame(points[i, 0], points[i, 1], points[i, 2], frames, j):
                count += 1
        counts[i] = count


@njit(cache=True)
def points_in_boxes_pairs(points, frames, offsets, pairs):
    for i in range(points.shape[0]):
        slot = offsets[i]
        for j in range(frames.shape[0]):
            if point_in_box_frame(points[i, 0], points[i, 1], points[i, 2], frames, j):
                pairs[slot, 0] = i
                pairs[slot, 1] = j
                slot += 1


@njit(cache=True)
def points_in_polygons(points, polygons, clockwise, out):
    for i in range(points.shape[0]):
        for j in range(polygons.shape[0]):
            out[i, j] = point_in_convex_polygon(points[i, 0], points[i, 1], polygons, j, clockwise)
