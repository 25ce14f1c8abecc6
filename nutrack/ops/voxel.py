"""Voxelization: points to voxels (hard, with caps) and to per-point voxel coordinates.

Semantics (all backends, bit for bit):
- A point's cell on each axis is floor((p - min) / size), evaluated in float32 (one
  subtraction, one division, IEEE rounding, no FMA). The grid is
  round((max - min) / size) per axis, evaluated in float32 and rounded half to even, here and
  nowhere else (`voxel_grid`). A point is kept iff 0 <= cell < grid on every axis; points with
  NaN or infinite coordinates, and points outside pc_range, are dropped and counted
  (`VoxelizeResult.num_dropped`).
- Voxels are numbered in order of first appearance (input order); each cloud keeps its first
  `max_voxels` voxels. A voxel keeps its first `max_points` points, in input order; rows past
  its count are zero.
- No dense grid is ever allocated: voxels are found through a hash table keyed on the 64-bit
  linear cell index, so any grid resolution works (nuScenes at 0.075 m x 0.2 m is 83M cells).
Only x, y, z (the first three columns) place a point; every column is copied into `voxels`.

Threads: the C++ backend runs its passes on threads decided per call (a thread takes at least
64k points, so one-sweep clouds stay on the calling thread; csrc/threads.h, README
"Threads"); the results never depend on the thread count.
"""
from __future__ import annotations

import operator
import sys
from typing import Any, NamedTuple, Sequence

import numpy as np

from nutrack.ops import _arrays, _backend, _numba_voxel
from nutrack.ops._launch import Launch, launchers

MAX_GRID_PER_AXIS = 1 << 24  # csrc/include/nutrack/voxel_geometry.h: kMaxGridPerAxis
_MAX_KEYS = 1 << 62  # clouds x cells must stay below this (64-bit keys)
_MAX_POINTS = (1 << 31) - 2  # point indices (and n + 1) are int32 in the kernels

WORKSPACE_BYTES = launchers(_numba_voxel.voxelize_workspace_bytes, "voxelize_workspace_bytes")
ASSIGN = launchers(_numba_voxel.voxelize_assign, "voxelize_assign")
FILL = launchers(_numba_voxel.voxelize_fill, "voxelize_fill")
POINT_COORS = launchers(_numba_voxel.point_voxel_coors, "point_voxel_coors")


class VoxelGrid(NamedTuple):
    """The voxel grid every backend reads.

    min: (3,) float32, pc_range[:3]. size: (3,) float32, voxel_size.
    shape: (nx, ny, nz), the number of cells along x, y, z. A sparse-convolution spatial
    shape in (z, y, x) order is `shape[::-1]`.
    """
    min: np.ndarray
    size: np.ndarray
    shape: tuple

    def native(self) -> tuple:
        """The 9-tuple nutrack._C reads: min x y z, size x y z, nx ny nz."""
        return (*(float(v) for v in self.min), *(float(v) for v in self.size), *self.shape)


class _VoxelizeFields(NamedTuple):
    voxels: Any
    coors: Any
    num_points: Any


class VoxelizeResult(_VoxelizeFields):
    """(voxels, coors, num_points), unpackable as a 3-tuple, plus

    num_dropped: int, the points that were NaN/inf or outside pc_range. Points that were in
    range but lost to the caps (a full voxel, or a voxel past max_voxels) are not counted
    there: they number N - num_dropped - num_points.sum().
    """

    def __new__(cls, voxels: Any, coors: Any, num_points: Any, num_dropped: int = 0):
        self = super().__new__(cls, voxels, coors, num_points)
        self.num_dropped = int(num_dropped)
        return self

    # NamedTuple's _make and _replace build the tuple without __new__, which would lose
    # num_dropped (it is an attribute, not a field, so that unpacking stays a 3-tuple).
    @classmethod
    def _make(cls, iterable: Any, num_dropped: int = 0) -> "VoxelizeResult":
        return cls(*iterable, num_dropped=num_dropped)

    def _replace(self, **changes: Any) -> "VoxelizeResult":
        num_dropped = changes.pop("num_dropped", self.num_dropped)
        return type(self)(*super()._replace(**changes), num_dropped=num_dropped)

    def __repr__(self) -> str:
        return (f"VoxelizeResult(voxels={tuple(self.voxels.shape)}, "
                f"coors={tuple(self.coors.shape)}, num_points={tuple(self.num_points.shape)}, "
                f"num_dropped={self.num_dropped})")


def _host_vector(x: Any, name: str, length: int) -> np.ndarray:
    if _arrays.kind_of(x) != "numpy":
        x = _arrays.to_host(x)
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {length} numbers, got {x!r}") from None
    if v.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must be finite, got {v.tolist()}")
    return v.astype(np.float32)


def voxel_grid(voxel_size: Any, pc_range: Any) -> VoxelGrid:
    """Validates voxel_size (3,) and pc_range (6,) (x_min, y_min, z_min, x_max, y_max, z_max)
    and computes the grid: round((max - min) / size) per axis, in float32."""
    size = _host_vector(voxel_size, "voxel_size", 3)
    bounds = _host_vector(pc_range, "pc_range", 6)
    if not (size > 0).all():
        raise ValueError(f"voxel_size must be > 0 on every axis, got {size.tolist()}")
    lo, hi = bounds[:3], bounds[3:]
    if not (hi > lo).all():
        raise ValueError(f"pc_range must have max > min on every axis, got {bounds.tolist()}")
    with np.errstate(over="ignore"):
        cells = np.rint((hi - lo) / size)  # float32 throughout, half to even
    if not np.isfinite(cells).all() or (cells > MAX_GRID_PER_AXIS).any():
        raise ValueError(f"pc_range / voxel_size gives {cells.tolist()} cells per axis; at most "
                         f"{MAX_GRID_PER_AXIS} are supported")
    if (cells < 1).any():
        raise ValueError(f"pc_range {bounds.tolist()} is less than half a voxel_size "
                         f"{size.tolist()} along some axis (grid {cells.tolist()})")
    return VoxelGrid(lo.copy(), size, tuple(int(c) for c in cells))


def _count(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _cloud(points: Any, name: str) -> Any:
    points = _arrays.as_float32(points, name, ndim=2, min_width=3)
    if points.shape[0] > _MAX_POINTS:
        raise ValueError(f"{name} has {points.shape[0]} points; at most {_MAX_POINTS} are "
                         "supported")
    return points


def _concat(clouds: list) -> Any:
    kind = _arrays.kind_of(clouds[0])
    if kind == "torch":
        return sys.modules["torch"].cat(clouds, dim=0)
    if kind == "cupy":
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(clouds[0].device.id):
            return cupy.concatenate(clouds, axis=0)
    return np.concatenate(clouds, axis=0)


def _check_output_fits(num_voxels: int, max_points: int, channels: int, like: Any) -> None:
    """A clear error instead of a MemoryError (or, with overcommit, the OOM killer while the
    padding is written) when the (V, max_points, C) output cannot be allocated."""
    nbytes = num_voxels * max_points * channels * 4
    free = _arrays.free_bytes(like)
    if free is not None and nbytes > free:
        raise ValueError(
            f"max_points={max_points} needs a ({num_voxels}, {max_points}, {channels}) float32 "
            f"output of {nbytes / 2**30:.3g} GiB, more than the {free / 2**30:.3g} GiB free on "
            f"{_arrays.device_name(like)}; lower max_points (or max_voxels)")


def _run(points: Any, sizes: list, grid: VoxelGrid, max_points: int, max_voxels: int | None,
         backend: str, cloud_column: bool) -> VoxelizeResult:
    """Voxelizes the concatenated clouds `points` (validated float32, caller's kind)."""
    if len(sizes) * int(np.prod(grid.shape, dtype=object)) >= _MAX_KEYS:
        raise ValueError(f"{len(sizes)} clouds of {grid.shape} cells exceed the 64-bit key space")
    device = _arrays.cuda_device_of(points)
    launch = Launch(_backend.resolve(backend, device is not None), points)
    points = launch.input(points)
    n, channels = points.shape
    cap = n if max_voxels is None else max_voxels
    capacity = sum(min(size, cap) for size in sizes)
    coors = launch.empty((max(capacity, 1), 4 if cloud_column else 3), "int32")
    num_points = launch.empty((max(capacity, 1),), "int32")
    if n == 0:
        return VoxelizeResult(launch.output(launch.empty((0, max_points, channels), "float32")),
                              launch.output(coors[:0]), launch.output(num_points[:0]), 0)
    offsets = None  # one cloud
    if len(sizes) > 1:
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        offsets = offsets if launch.on_host else _arrays.from_host(offsets, points)
    workspace = launch.empty((launch.run(WORKSPACE_BYTES, n=n, capacity=capacity),), "uint8")
    stats = launch.empty((2,), "int64")
    launch.run(ASSIGN, points=points, n=n, stride=channels, grid=grid.native(), offsets=offsets,
               num_clouds=len(sizes), max_points=max_points, max_voxels=cap, capacity=capacity,
               workspace=workspace, coors=coors, cloud_column=cloud_column,
               num_points=num_points, stats=stats)
    num_voxels, dropped = (int(v) for v in _arrays.to_host(stats))  # CUDA: synchronises
    _check_output_fits(num_voxels, max_points, channels, points)
    voxels = launch.empty((num_voxels, max_points, channels), "float32")
    if num_voxels:
        launch.run(FILL, points=points, n=n, stride=channels, capacity=capacity,
                   workspace=workspace, num_voxels=num_voxels, max_points=max_points,
                   num_points=num_points, voxels=voxels)
    return VoxelizeResult(launch.output(voxels), launch.output(coors[:num_voxels]),
                          launch.output(num_points[:num_voxels]), dropped)


@_arrays.on_input_device
def voxelize(points: Any, voxel_size: Any, pc_range: Any, max_points: int,
             max_voxels: int | None = None, *, backend: str = "auto") -> VoxelizeResult:
    """Hard voxelization of one point cloud, deterministic on every backend.

    Args:
        points: (N, C>=3) float32/float64; x, y, z place the point, all C columns are copied.
            NaN/inf points are dropped (and counted), never an error.
        voxel_size: (3,) voxel edge along x, y, z, > 0.
        pc_range: (6,) x_min, y_min, z_min, x_max, y_max, z_max.
        max_points: points kept per voxel (the first ones, in input order), >= 1.
        max_voxels: voxels kept (the first to appear), >= 1; None keeps every voxel.
        backend: 'auto' (by where the points live), 'cuda', 'cpu' or 'numba'.
    Returns:
        VoxelizeResult(voxels (V, max_points, C) float32 zero padded, coors (V, 3) int32
        (z, y, x), num_points (V,) int32) with `.num_dropped`; arrays of the caller's kind on
        the caller's device.
    """
    points = _cloud(points, "points")
    grid = voxel_grid(voxel_size, pc_range)
    return _run(points, [points.shape[0]], grid, _count(max_points, "max_points"),
                _count(max_voxels, "max_voxels", allow_none=True), backend, cloud_column=False)


@_arrays.on_input_device
def voxelize_batch(points_list: Sequence[Any], voxel_size: Any, pc_range: Any, max_points: int,
                   max_voxels: int | None = None, *, backend: str = "auto") -> VoxelizeResult:
    """`voxelize` for a batch of clouds, in one call (one launch sequence on the GPU).

    Args:
        points_list: a sequence of (N_b, C) clouds, all with the same C, all of one kind on
            one device.
        max_voxels: the cap PER CLOUD (as when each cloud is voxelized alone); None: no cap.
        The rest as `voxelize`.
    Returns:
        VoxelizeResult(voxels (V, max_points, C), coors (V, 4) int32 (batch, z, y, x),
        num_points (V,)): cloud 0's voxels first, each cloud's exactly those `voxelize` gives
        it alone; `.num_dropped` summed over the clouds.
    """
    if isinstance(points_list, (str, bytes)) or not isinstance(points_list, Sequence):
        raise ValueError("points_list must be a list or tuple of (N, C) point clouds, got "
                         f"{type(points_list).__name__}")
    if len(points_list) == 0:
        raise ValueError("points_list must hold at least one point cloud")
    clouds = [_cloud(p, f"points_list[{b}]") for b, p in enumerate(points_list)]
    channels = clouds[0].shape[1]
    for b, cloud in enumerate(clouds):
        if cloud.shape[1] != channels:
            raise ValueError(f"points_list[{b}] has {cloud.shape[1]} columns but points_list[0] "
                             f"has {channels}; every cloud needs the same columns")
    _arrays.same_device(**{f"points_list[{b}]": c for b, c in enumerate(clouds)})
    sizes = [int(c.shape[0]) for c in clouds]
    if sum(sizes) > _MAX_POINTS:
        raise ValueError(f"points_list holds {sum(sizes)} points; at most {_MAX_POINTS} are "
                         "supported")
    grid = voxel_grid(voxel_size, pc_range)
    points = clouds[0] if len(clouds) == 1 else _concat(clouds)
    return _run(points, sizes, grid, _count(max_points, "max_points"),
                _count(max_voxels, "max_voxels", allow_none=True), backend, cloud_column=True)


@_arrays.on_input_device
def point_voxel_coors(points: Any, voxel_size: Any, pc_range: Any, *,
                      backend: str = "auto") -> Any:
    """Dynamic voxelization: each point's voxel.

    Args:
        points: (N, C>=3) float32/float64 (x, y, z are read).
        voxel_size, pc_range, backend: as `voxelize`.
    Returns:
        (N, 3) int32 (z, y, x) per point; a whole row of -1 for a dropped point (NaN/inf or
        outside pc_range). Same cells as `voxelize`.
    """
    points = _cloud(points, "points")
    grid = voxel_grid(voxel_size, pc_range)
    device = _arrays.cuda_device_of(points)
    launch = Launch(_backend.resolve(backend, device is not None), points)
    points = launch.input(points)
    n = points.shape[0]
    out = launch.empty((n, 3), "int32")
    if n:
        launch.run(POINT_COORS, points=points, n=n, stride=points.shape[1], grid=grid.native(),
                   out=out)
    return launch.output(out)
