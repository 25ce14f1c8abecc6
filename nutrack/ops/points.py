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
from nutrack.ops._launch import Launch, launchers

FIRST_BOX = launchers(_numba_points.points_in_boxes, "points_in_boxes")
DENSE = launchers(_numba_points.points_in_boxes_dense, "points_in_boxes_dense")
COUNT = launchers(_numba_points.points_in_boxes_count, "points_in_boxes_count")
PAIRS = launchers(_numba_points.points_in_boxes_pairs, "points_in_boxes_pairs")
POLYGONS = launchers(_numba_points.points_in_polygons, "points_in_polygons")

# points_in_boxes_all returns pairs instead of a dense matrix past this many (point, box)
# cells (256 MiB of bool).
DENSE_LIMIT = 1 << 28


def _points(points: Any, name: str, width: int) -> Any:
    points = _arrays.as_float32(points, name, ndim=2, min_width=width)
    if points.shape[0]:
        _arrays.check_finite(points, f"{name} coordinates", columns=width)
    return points


def _prepare(points: Any, boxes: Any, backend: str) -> tuple[dict, int, Launch]:
    """The launcher arguments every points-in-boxes launcher takes, the number of boxes, and
    the launch. Host launchers find a point's boxes through the box grid (nutrack/ops/_grid.py);
    the CUDA kernels tile over every box and take their number `nb` instead."""
    points = _points(points, "points", 3)
    boxes = validate_boxes(boxes)
    device = _arrays.same_device(points=points, boxes=boxes)
    launch = Launch(_backend.resolve(backend, device is not None), points)
    frames = launch.input(box_frames(boxes))
    points = launch.input(points)
    args = dict(points=points, n=points.shape[0], stride=points.shape[1], frames=frames)
    m = frames.shape[0]
    if launch.on_device:
        args.update(nb=m)
    else:
        grid = build_box_grid(frames, points.shape[0])
        args.update(grid_params=grid.params, grid_nx=grid.nx, grid_ny=grid.ny,
                    cell_start=grid.cell_start, cell_boxes=grid.cell_boxes)
    return args, m, launch


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
    args, _, launch = _prepare(points, boxes, backend)
    out = launch.empty((args["n"],), "int32")
    if args["n"]:
        launch.run(FIRST_BOX, **args, out=out)
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
    sparse = _arrays.check_flag(sparse, "sparse", allow_none=True)
    args, m, launch = _prepare(points, boxes, backend)
    n = args["n"]
    if sparse is None:
        sparse = n * m > DENSE_LIMIT
    if not sparse:
        out = launch.empty((n, m), "bool")
        if n and m:
            launch.run(DENSE, **{**args, "nb": m}, out=out)
        return launch.output(out)
    counts = launch.empty((n,), "int64")
    if n:
        launch.run(COUNT, **args, counts=counts)
    offsets, total = launch.exclusive_cumsum(counts)
    pairs = launch.empty((total, 2), "int64")
    if total:
        launch.run(PAIRS, **args, offsets=offsets, pairs=pairs)
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
    clockwise = _arrays.check_flag(clockwise, "clockwise")
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
        launch.run(POLYGONS, points=points, n=n, stride=points.shape[1], polygons=polygons, nb=m,
                   k=k, clockwise=clockwise, out=out)
    return launch.output(out)
