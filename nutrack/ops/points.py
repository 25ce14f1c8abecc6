"""Points in rotated boxes and in convex polygons.

Semantics (all backends, bit for bit): a point is in a box when its offset from the centre,
rotated by -yaw, satisfies |local| <= half extent on every axis — faces INCLUSIVE, as the
nuScenes devkit's `points_in_box`. Polygons: boundary inclusive as well.
"""
from __future__ import annotations

from typing import Any

from nutrack.ops import _arrays, _backend, _numba_points
from nutrack.ops._boxes import box_frames, validate_boxes
from nutrack.ops._grid import build_box_grid
from nutrack.ops._launch import Launch

# points_in_boxes_all returns pairs instead of a dense matrix past this many (point, box)
# cells (256 MiB of bool).
DENSE_LIMIT = 1 << 28


def _points(points: Any, name: str, width: int) -> Any:
    points = _arrays.as_float32(points, name, ndim=2, min_width=width)
    if points.shape[0]:
        _arrays.check_finite(points[:, :width], f"{name} coordinates")
    return points


def _prepare(points: Any, boxes: Any, backend: str) -> tuple[Any, Any, tuple, Launch]:
    """Validated inputs on the chosen backend's memory, the box frames, and for the host
    backends the box grid as the launcher arguments (params, nx, ny, cell_start, cell_boxes)."""
    points = _points(points, "points", 3)
    boxes = validate_boxes(boxes)
    device = _arrays.same_device(points=points, boxes=boxes)
    launch = Launch(_backend.resolve(backend, device is not None), points)
    frames = launch.input(box_frames(boxes))
    grid = tuple(build_box_grid(frames, points.shape[0])) if launch.on_host else ()
    return launch.input(points), frames, grid, launch


@_arrays.on_input_device
def points_in_boxes(points: Any, boxes: Any, *, backend: str = "auto") -> Any:
    """Index of the first box containing each point.

    Args:
        points: (N, C>=3) float32/float64, x y z in the boxes' frame (extra columns ignored).
        boxes: (M, 7) x, y, z (centre), dx, dy, dz (> 0), yaw.
        backend: 'auto' (by where the inputs live), 'cuda', 'cpu' or 'numba'.
    Returns:
        (N,) int32, the lowest index of a box containing the point, -1 where none does.
    """
    points, frames, grid, launch = _prepare(points, boxes, backend)
    n, m = points.shape[0], frames.shape[0]
    out = launch.empty((n,), "int32")
    if n:
        if launch.which == "numba":
            _numba_points.points_in_boxes(points, frames, *grid, out)
        elif launch.which == "cpu":
            launch.native("points_in_boxes", points, n, points.shape[1], frames, *grid, out)
        else:
            launch.native("points_in_boxes", points, n, points.shape[1], frames, m, out)
    return launch.output(out)


@_arrays.on_input_device
def points_in_boxes_all(points: Any, boxes: Any, *, sparse: bool | None = None,
                        backend: str = "auto") -> Any:
    """Every (point, box) containment.

    Args:
        points, boxes, backend: as `points_in_boxes`.
        sparse: False: a dense (N, M) bool matrix. True: an int64 (P, 2) array of
            (point index, box index) pairs, sorted by point then box. None (default): dense
            unless N * M passes DENSE_LIMIT (2^28).
    """
    points, frames, grid, launch = _prepare(points, boxes, backend)
    n, m = points.shape[0], frames.shape[0]
    if sparse is None:
        sparse = n * m > DENSE_LIMIT
    stride = points.shape[1]
    if not sparse:
        out = launch.empty((n, m), "bool")
        if n and m:
            if launch.which == "numba":
                _numba_points.points_in_boxes_dense(points, frames, *grid, out)
            else:
                launch.native("points_in_boxes_dense", points, n, stride, frames, m, *grid, out)
        return launch.output(out)
    counts = launch.empty((n,), "int64")
    if n:
        if launch.which == "numba":
            _numba_points.points_in_boxes_count(points, frames, *grid, counts)
        elif launch.which == "cpu":
            launch.native("points_in_boxes_count", points, n, stride, frames, *grid, counts)
        else:
            launch.native("points_in_boxes_count", points, n, stride, frames, m, counts)
    offsets, total = launch.exclusive_cumsum(counts)
    pairs = launch.empty((total, 2), "int64")
    if total:
        if launch.which == "numba":
            _numba_points.points_in_boxes_pairs(points, frames, *grid, offsets, pairs)
        elif launch.which == "cpu":
            launch.native("points_in_boxes_pairs", points, n, stride, frames, *grid, offsets, pairs)
        else:
            launch.native("points_in_boxes_pairs", points, n, stride, frames, m, offsets, pairs)
    return launch.output(pairs)


@_arrays.on_input_device
def points_in_polygons(points: Any, polygons: Any, clockwise: bool = True, *,
                       backend: str = "auto") -> Any:
    """Which points lie in which convex polygons.

    Args:
        points: (N, C>=2) float32/float64; x, y are read.
        polygons: (M, K>=3, 2) convex polygons; vertices clockwise in the x-right, y-up plane
            when `clockwise` (the interior on the right of each edge), else counter-clockwise.
            The result for non-convex or mis-oriented polygons is unspecified.
    Returns:
        (N, M) bool, boundary inclusive.
    """
    points = _points(points, "points", 2)
    polygons = _arrays.as_float32(polygons, "polygons", ndim=3, width=2)
    if polygons.shape[0] and polygons.shape[1] < 3:
        raise ValueError(f"polygons need at least 3 vertices, got shape {tuple(polygons.shape)}")
    if polygons.shape[0]:
        _arrays.check_finite(polygons, "polygons")
    device = _arrays.same_device(points=points, polygons=polygons)
    launch = Launch(_backend.resolve(backend, device is not None), points)
    points, polygons = launch.input(points), launch.input(polygons)
    n, m, k = points.shape[0], polygons.shape[0], polygons.shape[1]
    out = launch.empty((n, m), "bool")
    if n and m:
        if launch.which == "numba":
            _numba_points.points_in_polygons(points, polygons, bool(clockwise), out)
        else:
            launch.native("points_in_polygons", points, n, points.shape[1], polygons, m, k,
                          bool(clockwise), out)
    return launch.output(out)
