"""A uniform BEV grid of boxes for the host backends (C++ and numba share it).

Each box is listed in every cell its conservative BEV bounds touch, in increasing box index,
so a point tests only the boxes of its own cell, in order: the first-box, dense, count and
pair outputs are exactly those of testing every box. Correctness does not depend on rounding:
a point that the exact test accepts passed the prefilter |p - c| <= r, so it lies within
[c - r - margin, c + r + margin] with margin ~8 float32 ulps, and the cell function
floor((p - origin) * inv_cell) in float32 is monotone, so its cell lies in the box's range.
The CUDA kernels do not use the grid (tiles in shared memory serve them without a host
round trip).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from nutrack.ops._boxes import CX, CY, RX, RY

# Cell edge relative to the median box footprint, and at most this many cells per axis.
CELL_PER_FOOTPRINT = 0.25
MAX_CELLS_PER_AXIS = 256
# Up to this many (point, box) pairs the boxes are not binned at all.
SMALL_PROBLEM_PAIRS = 1 << 17
# Past this many (box, cell) entries on average the cells are made coarser.
MAX_ENTRIES_PER_BOX = 64


class BoxGrid(NamedTuple):
    params: np.ndarray  # float32 [origin_x, origin_y, inv_cell]
    nx: int
    ny: int
    cell_start: np.ndarray  # int64 (nx * ny + 1,)
    cell_boxes: np.ndarray  # int32, box indices grouped by cell, increasing within a cell


def _cells(values: np.ndarray, origin: np.float32, inv_cell: np.float32) -> np.ndarray:
    return np.floor((values - origin) * inv_cell).astype(np.int64)


def _single_cell(m: int) -> BoxGrid:
    params = np.array([0.0, 0.0, 0.0], dtype=np.float32)  # every point maps to cell 0
    return BoxGrid(params, 1, 1, np.array([0, m], np.int64), np.arange(m, dtype=np.int32))


def build_box_grid(frames: np.ndarray, num_points: int | None = None) -> BoxGrid:
    """frames: (M, BOX_FRAME_WIDTH) float32 host box frames (see _boxes.box_frames). With `num_points`
    given, small problems get the one-cell grid: testing every box (each rejected after one
    subtraction) is cheaper than building cells (~50 us)."""
    m = len(frames)
    if m == 0 or (num_points is not None and num_points * m <= SMALL_PROBLEM_PAIRS):
        return _single_cell(m)
    cx, cy, rx, ry = frames[:, CX], frames[:, CY], frames[:, RX], frames[:, RY]
    ulps8 = np.float32(2.0**-20)
    low_x = (cx - rx) - (np.abs(cx) + rx) * ulps8
    high_x = (cx + rx) + (np.abs(cx) + rx) * ulps8
    low_y = (cy - ry) - (np.abs(cy) + ry) * ulps8
    high_y = (cy + ry) + (np.abs(cy) + ry) * ulps8
    origin_x, origin_y = low_x.min(), low_y.min()
    extent = max(float(high_x.max() - origin_x), float(high_y.max() - origin_y))
    footprint = float(np.median(np.maximum(high_x - low_x, high_y - low_y)))
    # Cells a quarter of the median footprint: measured fastest at nuScenes scale (fewer
    # candidates per point, most cells empty); coarser when a box would cover too many.
    cell = max(footprint * CELL_PER_FOOTPRINT, extent / MAX_CELLS_PER_AXIS, 1e-30)
    for _ in range(16):
        inv_cell = np.float32(1.0 / cell)
        if not np.isfinite(inv_cell) or inv_cell == 0:
            return _single_cell(m)
        x_lo, x_hi = _cells(low_x, origin_x, inv_cell), _cells(high_x, origin_x, inv_cell)
        y_lo, y_hi = _cells(low_y, origin_y, inv_cell), _cells(high_y, origin_y, inv_cell)
        width, height = x_hi - x_lo + 1, y_hi - y_lo + 1
        per_box = width * height
        total = int(per_box.sum())
        if total <= MAX_ENTRIES_PER_BOX * m + 4096:
            break
        cell *= 2.0
    else:
        return _single_cell(m)
    nx, ny = int(x_hi.max()) + 1, int(y_hi.max()) + 1
    cell_start, cell_boxes = _list_boxes_by_cell(x_lo, x_hi, y_lo, y_hi, nx, ny, total)
    params = np.array([origin_x, origin_y, inv_cell], dtype=np.float32)
    return BoxGrid(params, nx, ny, cell_start, cell_boxes)


@njit(cache=True, nogil=True)
def _list_boxes_by_cell(x_lo, x_hi, y_lo, y_hi, nx, ny, total):
    """A counting sort of the (box, cell) entries by cell: count, prefix sum, fill. Boxes are
    visited in increasing index, so each cell lists its boxes in increasing index (one pass
    over the entries; numpy's repeat/argsort version took ~10x longer)."""
    cell_start = np.zeros(nx * ny + 1, dtype=np.int64)
    for b in range(len(x_lo)):
        for y in range(y_lo[b], y_hi[b] + 1):
            for x in range(x_lo[b], x_hi[b] + 1):
                cell_start[y * nx + x + 1] += 1
    for c in range(nx * ny):
        cell_start[c + 1] += cell_start[c]
    cursor = cell_start[:-1].copy()
    cell_boxes = np.empty(total, dtype=np.int32)
    for b in range(len(x_lo)):
        for y in range(y_lo[b], y_hi[b] + 1):
            for x in range(x_lo[b], x_hi[b] + 1):
                cell = y * nx + x
                cell_boxes[cursor[cell]] = b
                cursor[cell] += 1
    return cell_start, cell_boxes
