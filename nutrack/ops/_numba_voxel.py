"""numba twins of csrc/voxelize_cpu.cpp, pass for pass (the C++ algorithm with one thread and
one hash bucket, so without the scatter pass), over the same cell function as
csrc/include/nutrack/voxel_geometry.h. Always available (no compiler needed); the tests hold
the C++ and CUDA kernels to these bit for bit. Every function compiles in nopython mode. The
cell arithmetic stays in float32 ((p - min) / size: no float64 literal mixes in), and the hash
arithmetic in uint64 (numba turns int64 op uint64 into float64, so never mix them).

The public twins (`voxelize_workspace_bytes`, `voxelize_assign`, `voxelize_fill`,
`point_voxel_coors`) take exactly the arguments of the C++ launchers in csrc/voxelize.h (arrays
in place of addresses, `grid` the same 9-tuple, `offsets` None for one cloud) and unpack them
for the compiled passes, which take the grid as `lo` (3,) float32 (pc_range[:3]), `size` (3,)
float32 and `shape` (3,) int64 (nx, ny, nz), and clouds as `offsets` (num_clouds + 1,) int64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(inline="always", cache=True)
def point_voxel_cell(points, i, lo, size, shape):
    """(kept, x, y, z): the cell floor((p - lo) / size) per axis in float32, kept iff
    0 <= cell < shape on every axis. As in the C++: 0 <= floor(q) < shape is exactly
    0 <= q < shape (NaN fails it), and truncating such a q is its floor."""
    qx = (points[i, 0] - lo[0]) / size[0]
    qy = (points[i, 1] - lo[1]) / size[1]
    qz = (points[i, 2] - lo[2]) / size[2]
    zero = np.float32(0.0)
    if not (qx >= zero and qx < np.float32(shape[0]) and qy >= zero and qy < np.float32(shape[1])
            and qz >= zero and qz < np.float32(shape[2])):
        return False, -1, -1, -1
    return True, np.int64(qx), np.int64(qy), np.int64(qz)


@njit(inline="always", cache=True)
def cloud_of(offsets, i):
    """The largest b < num_clouds with offsets[b] <= i."""
    lo = 0
    hi = len(offsets) - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if offsets[mid] <= i:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(inline="always", cache=True)
def voxel_table_bits(num_keys):
    bits = 6
    while (1 << bits) < 2 * num_keys:
        bits += 1
    return bits


@njit(inline="always", cache=True)
def voxel_home_slot(key, bits):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))


def _grid(grid):
    """The launchers' 9-tuple grid as (lo, size, shape) arrays."""
    return (np.array(grid[0:3], dtype=np.float32), np.array(grid[3:6], dtype=np.float32),
            np.array(grid[6:9], dtype=np.int64))


def _workspace(workspace, n, capacity):
    """What voxelize_fill reads, in the caller's workspace: order (n,) and starts (capacity,)."""
    words = workspace[:4 * (n + capacity)].view(np.int32)
    return words[:n], words[n:]


def voxelize_workspace_bytes(n, capacity):
    return 4 * (n + capacity)


def voxelize_assign(points, n, stride, grid, offsets, num_clouds, max_points, max_voxels,
                    capacity, workspace, coors, cloud_column, num_points, stats):
    """The twin of voxelize_assign_cpu (coors has 4 columns exactly when cloud_column)."""
    if offsets is None:
        offsets = np.array([0, n], dtype=np.int64)
    order, starts = _workspace(workspace, n, capacity)
    stats[0], stats[1] = _assign(points, *_grid(grid), offsets, max_points, max_voxels, coors,
                                 num_points, order, starts)


def voxelize_fill(points, n, stride, capacity, workspace, num_voxels, max_points, num_points,
                  voxels):
    """The twin of voxelize_fill_cpu."""
    order, starts = _workspace(workspace, n, capacity)
    _fill(points, order, starts, num_points, voxels)


def point_voxel_coors(points, n, stride, grid, out):
    """The twin of point_voxel_coors_cpu."""
    _point_coors(points, *_grid(grid), out)


@njit(cache=True)
def _assign(points, lo, size, shape, offsets, max_points, max_voxels, coors, num_points, order,
            starts):
    """Numbers the voxels (first appearance, per-cloud max_voxels, per-voxel max_points): the
    C++ passes with one thread and one bucket.

    Writes coors[:V] ((z, y, x) or (cloud, z, y, x) when coors has 4 columns), num_points[:V]
    and, for _fill, order (n,) and starts[:V]; returns (V, dropped).
    """
    n = points.shape[0]
    nx, ny, nz = shape[0], shape[1], shape[2]
    # 1. Keys.
    keys = np.empty(n, dtype=np.int64)
    point_local = np.empty(n, dtype=np.int32)
    point_slot = np.empty(n, dtype=np.int32)
    dropped = 0
    for i in range(n):
        kept, x, y, z = point_voxel_cell(points, i, lo, size, shape)
        if kept:
            keys[i] = ((cloud_of(offsets, i) * nz + z) * ny + y) * nx + x
        else:
            keys[i] = -1
            point_local[i] = -1
            point_slot[i] = -1
            dropped += 1
    # 3. Local voxels (first-appearance order) and slots, through an open-addressing table
    # (pass 2, the scatter by bucket, is the identity with one bucket).
    bits = voxel_table_bits(n - dropped)
    mask = (1 << bits) - 1
    table_key = np.full(1 << bits, -1, dtype=np.int64)
    table_local = np.empty(1 << bits, dtype=np.int32)
    local_count = np.empty(n, dtype=np.int32)
    next_local = 0
    for i in range(n):
        key = keys[i]
        if key < 0:
            continue
        s = voxel_home_slot(key, bits)
        while table_key[s] != key and table_key[s] != -1:
            s = (s + 1) & mask
        if table_key[s] == -1:  # first appearance
            table_key[s] = key
            table_local[s] = next_local
            local_count[next_local] = 0
            next_local += 1
        local = table_local[s]
        slot = -1
        if local_count[local] < max_points:
            slot = local_count[local]
            local_count[local] += 1
        point_local[i] = local if slot >= 0 else -1
        point_slot[i] = slot
    # 4. Global voxel numbers in first-appearance order, capped per cloud.
    local_to_voxel = np.empty(next_local, dtype=np.int32)
    num_voxels = 0
    for b in range(len(offsets) - 1):
        cloud_voxels = 0
        for i in range(offsets[b], offsets[b + 1]):
            if point_slot[i] != 0:  # not the first point of its voxel
                continue
            local = point_local[i]
            if cloud_voxels < max_voxels:
                local_to_voxel[local] = num_voxels
                num_points[num_voxels] = local_count[local]
                num_voxels += 1
                cloud_voxels += 1
            else:
                local_to_voxel[local] = -1
    # 5. Group the placed points by voxel; each voxel's coordinates from its first point.
    running = 0
    for v in range(num_voxels):
        starts[v] = running
        running += num_points[v]
    for i in range(n):
        local = point_local[i]
        if local >= 0 and local_to_voxel[local] >= 0:
            order[starts[local_to_voxel[local]] + point_slot[i]] = i
    cloud_column = coors.shape[1] == 4
    for v in range(num_voxels):
        first = order[starts[v]]
        kept, x, y, z = point_voxel_cell(points, first, lo, size, shape)
        c = 0
        if cloud_column:
            coors[v, 0] = cloud_of(offsets, first)
            c = 1
        coors[v, c] = z
        coors[v, c + 1] = y
        coors[v, c + 2] = x
    return num_voxels, dropped


@njit(cache=True)
def _fill(points, order, starts, num_points, voxels):
    """voxels (V, max_points, C): each voxel's points in order, zero padded."""
    max_points = voxels.shape[1]
    channels = voxels.shape[2]
    zero = np.float32(0.0)
    for v in range(voxels.shape[0]):
        count = num_points[v]
        for s in range(max_points):
            if s < count:
                i = order[starts[v] + s]
                for c in range(channels):
                    voxels[v, s, c] = points[i, c]
            else:
                for c in range(channels):
                    voxels[v, s, c] = zero


@njit(cache=True)
def _point_coors(points, lo, size, shape, out):
    """out (N, 3) int32: each point's (z, y, x), or a row of -1."""
    for i in range(points.shape[0]):
        kept, x, y, z = point_voxel_cell(points, i, lo, size, shape)
        out[i, 0] = z
        out[i, 1] = y
        out[i, 2] = x
