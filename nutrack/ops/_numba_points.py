"""numba twins of csrc/points_in_boxes_cpu.cpp, line for line over the same geometry as
csrc/include/nutrack/points_geometry.h. Always available (no compiler needed); the tests hold
the C++ and CUDA kernels to these bit for bit. Every function compiles in nopython mode;
all arithmetic stays in float32 (no float64 literals mix in) and numba does not contract
multiply-adds into FMAs without fastmath, matching the kernels' rounding.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nutrack.ops._boxes import CX, CY, CZ, COS, HX, HY, HZ, RX, RY, SIN  # the frame layout


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


@njit(inline="always", cache=True)
def grid_cell(px, py, params, nx, ny):
    tx = (px - params[0]) * params[2]
    ty = (py - params[1]) * params[2]
    if not (tx >= 0) or not (ty >= 0) or tx >= np.float32(nx) or ty >= np.float32(ny):
        return -1
    return np.int64(ty) * nx + np.int64(tx)


# Every twin takes exactly the arguments of its C++ launcher (csrc/bindings.cpp), arrays in
# place of addresses: `n` points of `stride` columns (the rows of `points`), the box grid of
# nutrack/ops/_grid.py as (grid_params, grid_nx, grid_ny, cell_start, cell_boxes). Each point
# tests only the boxes of its cell, in increasing index.
@njit(cache=True)
def points_in_boxes(points, n, stride, frames, grid_params, grid_nx, grid_ny, cell_start,
                    cell_boxes, out):
    for i in range(n):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        found = -1
        cell = grid_cell(px, py, grid_params, grid_nx, grid_ny)
        if cell >= 0:
            for e in range(cell_start[cell], cell_start[cell + 1]):
                if point_in_box_frame(px, py, pz, frames, cell_boxes[e]):
                    found = cell_boxes[e]
                    break
        out[i] = found


@njit(cache=True)
def points_in_boxes_dense(points, n, stride, frames, nb, grid_params, grid_nx, grid_ny,
                          cell_start, cell_boxes, out):
    out[:] = False
    for i in range(n):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        cell = grid_cell(px, py, grid_params, grid_nx, grid_ny)
        if cell >= 0:
            for e in range(cell_start[cell], cell_start[cell + 1]):
                if point_in_box_frame(px, py, pz, frames, cell_boxes[e]):
                    out[i, cell_boxes[e]] = True


@njit(cache=True)
def points_in_boxes_count(points, n, stride, frames, grid_params, grid_nx, grid_ny, cell_start,
                          cell_boxes, counts):
    for i in range(n):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        count = 0
        cell = grid_cell(px, py, grid_params, grid_nx, grid_ny)
        if cell >= 0:
            for e in range(cell_start[cell], cell_start[cell + 1]):
                if point_in_box_frame(px, py, pz, frames, cell_boxes[e]):
                    count += 1
        counts[i] = count


@njit(cache=True)
def points_in_boxes_pairs(points, n, stride, frames, grid_params, grid_nx, grid_ny, cell_start,
                          cell_boxes, offsets, pairs):
    for i in range(n):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        slot = offsets[i]
        cell = grid_cell(px, py, grid_params, grid_nx, grid_ny)
        if cell >= 0:
            for e in range(cell_start[cell], cell_start[cell + 1]):
                if point_in_box_frame(px, py, pz, frames, cell_boxes[e]):
                    pairs[slot, 0] = i
                    pairs[slot, 1] = cell_boxes[e]
                    slot += 1


@njit(cache=True)
def points_in_polygons(points, n, stride, polygons, nb, k, clockwise, out):
    for i in range(n):
        for j in range(nb):
            out[i, j] = point_in_convex_polygon(points[i, 0], points[i, 1], polygons, j, clockwise)
