"""voxelize / voxelize_batch / point_voxel_coors: every backend against a plain numpy
reference (exactly: voxels, coors, num_points and the dropped count), on random clouds, clouds
with many points per voxel, points exactly on voxel boundaries, clouds with more voxels than
max_voxels, NaN/inf/out-of-range points, empty, float64, non-contiguous and torch input."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nutrack.ops import (VoxelizeResult, point_voxel_coors, voxel_grid, voxelize,
                         voxelize_batch)
from tests._helpers import HOST_BACKENDS, requires_cuda

NUSCENES_RANGE = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- reference
def reference_grid(voxel_size, pc_range):
    size = np.asarray(voxel_size, dtype=np.float32)
    bounds = np.asarray(pc_range, dtype=np.float32)
    lo = bounds[:3]
    return lo, size, np.rint((bounds[3:] - lo) / size).astype(np.int64)


def reference_cells(points, voxel_size, pc_range):
    """(cells (N, 3) int64 x y z, kept (N,) bool): floor((p - min) / size) in float32."""
    lo, size, grid = reference_grid(voxel_size, pc_range)
    points = np.asarray(points, dtype=np.float32).reshape(-1, np.shape(points)[-1])
    with np.errstate(invalid="ignore", over="ignore"):
        cell = np.floor((points[:, :3] - lo) / size)
        kept = np.all((cell >= 0) & (cell < grid), axis=1)
    return np.where(kept[:, None], cell, -1).astype(np.int64), kept


def reference_voxelize(clouds, voxel_size, pc_range, max_points, max_voxels=None):
    """Plain numpy and a dict, cloud by cloud, point by point, in input order.

    Returns (voxels, coors (V, 4) with the cloud first, num_points, dropped).
    """
    channels = np.shape(clouds[0])[-1]
    voxels, coors, dropped = [], [], 0
    for b, cloud in enumerate(clouds):
        cloud = np.asarray(cloud, dtype=np.float32)
        cells, kept = reference_cells(cloud, voxel_size, pc_range)
        dropped += int((~kept).sum())
        number = {}  # cell -> global voxel number, or -1 when past max_voxels
        cloud_voxels = 0
        for i in np.flatnonzero(kept):
            x, y, z = (int(c) for c in cells[i])
            if (x, y, z) not in number:
                in_cap = max_voxels is None or cloud_voxels < max_voxels
                number[(x, y, z)] = len(voxels) if in_cap else -1
                if in_cap:
                    voxels.append([])
                    coors.append((b, z, y, x))
                    cloud_voxels += 1
            v = number[(x, y, z)]
            if v >= 0 and len(voxels[v]) < max_points:
                voxels[v].append(cloud[i])
    out = np.zeros((len(voxels), max_points, channels), dtype=np.float32)
    for v, rows in enumerate(voxels):
        if rows:
            out[v, :len(rows)] = rows
    num_points = np.array([len(rows) for rows in voxels], dtype=np.int32)
    return out, np.array(coors, dtype=np.int32).reshape(-1, 4), num_points, dropped


def assert_same(result, expected, batch=False):
    voxels, coors, num_points, dropped = expected
    assert isinstance(result, VoxelizeResult)
    got_voxels, got_coors, got_num = (np.asarray(a) for a in result)
    assert got_voxels.dtype == np.float32 and got_coors.dtype == np.int32 and got_num.dtype == np.int32
    assert got_coors.shape == (len(coors), 4 if batch else 3)
    np.testing.assert_array_equal(got_num, num_points)
    np.testing.assert_array_equal(got_coors, coors if batch else coors[:, 1:])
    np.testing.assert_array_equal(got_voxels.view(np.uint32), voxels.view(np.uint32))  # bits, NaN too
    assert result.num_dropped == dropped


# ----------------------------------------------------------------------------- cases
def lidar_cloud(rng, n, channels=5, spread=60.0):
    """nuScenes-like: rings around the ego, most points on the ground, a few out of range."""
    azimuth = rng.uniform(0, 2 * np.pi, n)
    radius = np.exp(rng.uniform(np.log(1.5), np.log(spread), n))
    z = np.where(rng.random(n) < 0.7, rng.normal(-1.8, 0.05, n), rng.uniform(-1.8, 2.5, n))
    cols = [radius * np.cos(azimuth), radius * np.sin(azimuth), z]
    cols += [rng.uniform(0, 255, n) for _ in range(channels - 3)]
    return np.stack(cols, axis=1).astype(np.float32)


def boundary_cloud(rng, voxel_size, pc_range, n):
    """Coordinates exactly min + k * size in float32, and one ulp either side of them."""
    lo, size, grid = reference_grid(voxel_size, pc_range)
    k = rng.integers(-1, grid + 2, (n, 3)).astype(np.float32)
    points = (lo + k * size).astype(np.float32)
    nudge = rng.integers(-1, 2, (n, 3))
    points = np.where(nudge > 0, np.nextafter(points, np.float32(np.inf)), points)
    points = np.where(nudge < 0, np.nextafter(points, np.float32(-np.inf)), points)
    hi = np.asarray(pc_range, np.float32)[3:]
    points[: n // 10] = hi  # exactly on the max corner
    points[n // 10: n // 5] = lo  # exactly on the min corner
    return np.concatenate([points, rng.uniform(0, 1, (n, 1)).astype(np.float32)], axis=1)


CASES = {
    # name: (points, voxel_size, pc_range, max_points, max_voxels)
    "random": lambda rng: (rng.uniform(-6, 6, (3000, 4)).astype(np.float32), [0.5, 0.5, 1.0],
                           [-5, -5, -3, 5, 5, 3], 4, 1000),
    "lidar": lambda rng: (lidar_cloud(rng, 4000), [0.5, 0.5, 0.5], [-20, -20, -3, 20, 20, 2], 5, 2000),
    "many_per_voxel": lambda rng: (rng.uniform(0, 2, (5000, 3)).astype(np.float32), [1, 1, 1],
                                   [0, 0, 0, 2, 2, 2], 100, 8),
    "max_points_1": lambda rng: (rng.uniform(0, 4, (2000, 3)).astype(np.float32), [1, 1, 1],
                                 [0, 0, 0, 4, 4, 4], 1, 20000),
    "boundaries": lambda rng: (boundary_cloud(rng, [0.1, 0.2, 0.3], [-1.1, -0.7, -0.35, 1.3, 0.9, 0.55], 3000),
                               [0.1, 0.2, 0.3], [-1.1, -0.7, -0.35, 1.3, 0.9, 0.55], 3, 500),
    "boundaries_075": lambda rng: (boundary_cloud(rng, [0.075, 0.075, 0.2], NUSCENES_RANGE, 3000),
                                   [0.075, 0.075, 0.2], NUSCENES_RANGE, 2, 100000),
    "over_max_voxels": lambda rng: (rng.uniform(-10, 10, (3000, 4)).astype(np.float32), [0.3, 0.3, 0.3],
                                    [-10, -10, -10, 10, 10, 10], 3, 57),
    "no_cap": lambda rng: (rng.uniform(-10, 10, (3000, 4)).astype(np.float32), [0.3, 0.3, 0.3],
                           [-10, -10, -10, 10, 10, 10], 3, None),
    "nan_inf_out_of_range": lambda rng: (_with_bad_points(rng, rng.uniform(-3, 3, (2000, 4))),
                                         [0.25, 0.25, 0.25], [-2, -2, -2, 2, 2, 2], 3, 400),
    "all_dropped": lambda rng: (rng.uniform(10, 20, (500, 3)).astype(np.float32), [1, 1, 1],
                                [0, 0, 0, 5, 5, 5], 3, 10),
    "one_point": lambda rng: (np.array([[0.5, 0.5, 0.5, 7.0]], np.float32), [1, 1, 1], [0, 0, 0, 1, 1, 1], 3, 1),
    "coarse_grid": lambda rng: (rng.uniform(-1, 2, (1000, 3)).astype(np.float32), [0.7, 1.3, 1.9],
                                [0, 0, 0, 1, 1, 1], 7, 5),  # 1 x 1 x 1 grid (round(1/0.7) = 1)
}


def _with_bad_points(rng, points):
    points = points.astype(np.float32)
    bad = rng.choice(len(points), 300, replace=False)
    for j, i in enumerate(bad):
        points[i, j % 3] = [np.nan, np.inf, -np.inf, 1e30, -1e30, 2.0, -2.0000002][j % 7]
    points[bad[:20], 3] = np.nan  # NaN in a feature column is data, not a reason to drop
    return points


def make_case(name, seed=0):
    return CASES[name](np.random.default_rng(seed))


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_backends_equal_reference(name, backend):
    points, voxel_size, pc_range, max_points, max_voxels = make_case(name)
    expected = reference_voxelize([points], voxel_size, pc_range, max_points, max_voxels)
    result = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
    assert_same(result, expected)
    cells, kept = reference_cells(points, voxel_size, pc_range)
    per_point = point_voxel_coors(points, voxel_size, pc_range, backend=backend)
    assert per_point.shape == (len(points), 3) and per_point.dtype == np.int32
    np.testing.assert_array_equal(per_point, cells[:, ::-1])
    assert (per_point[~kept] == -1).all()


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_nuscenes_scale_cpu_equals_numba(backend):
    rng = np.random.default_rng(3)
    points = lidar_cloud(rng, 300_000)
    expected = voxelize(points, [0.075, 0.075, 0.2], NUSCENES_RANGE, 10, 120_000, backend="numba")
    result = voxelize(points, [0.075, 0.075, 0.2], NUSCENES_RANGE, 10, 120_000, backend=backend)
    assert len(expected.coors) == 120_000  # the cap is reached
    for got, want in zip(result, expected):
        np.testing.assert_array_equal(got, want)
    assert result.num_dropped == expected.num_dropped > 0
    # The first voxel is the first kept point's; a voxel holds its first max_points points.
    first = np.flatnonzero(point_voxel_coors(points, [0.075, 0.075, 0.2], NUSCENES_RANGE)[:, 0] >= 0)[0]
    np.testing.assert_array_equal(result.voxels[0, 0], points[first])


_PARTITION_SCRIPT = """
import sys
import numpy as np
from nutrack.ops import voxelize, voxelize_batch
data = dict(np.load(sys.argv[1]))
out = {}
for name in sys.argv[3:]:
    r = voxelize(data[name], [0.3, 0.3, 0.3], [-10, -10, -3, 10, 10, 3], 3, 700, backend="cpu")
    out.update({name + "/v": r.voxels, name + "/c": r.coors, name + "/n": r.num_points})
clouds = [data[name] for name in sys.argv[3:]]
r = voxelize_batch(clouds, [0.3, 0.3, 0.3], [-10, -10, -3, 10, 10, 3], 3, 700, backend="cpu")
out.update({"batch/v": r.voxels, "batch/c": r.coors, "batch/n": r.num_points})
np.savez(sys.argv[2], **out)
"""


def test_cpu_thread_count_does_not_change_the_result(tmp_path):
    """The C++ passes split the points into per-thread chunks and hash buckets: 1 and 5 threads
    (in fresh processes: the thread count is read at start-up) give the numba result."""
    if "cpu" not in HOST_BACKENDS:
        pytest.skip("nutrack._C is not built")
    rng = np.random.default_rng(5)
    # Each cloud is above the C++ kMinParallel (16384 points), so every pass runs threaded.
    clouds = {"lidar": lidar_cloud(rng, 40_000, channels=4),
              "uniform": rng.uniform(-12, 12, (40_000, 4)).astype(np.float32),
              "bad": _with_bad_points(rng, rng.uniform(-5, 5, (40_000, 4))),
              "dense": rng.uniform(-1, 1, (40_000, 4)).astype(np.float32)}
    np.savez(tmp_path / "in.npz", **clouds)
    args = ([0.3, 0.3, 0.3], [-10, -10, -3, 10, 10, 3], 3, 700)
    expected = {name: voxelize(c, *args, backend="numba") for name, c in clouds.items()}
    expected["batch"] = voxelize_batch(list(clouds.values()), *args, backend="numba")
    for threads in ("1", "5"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        run = subprocess.run([sys.executable, "-c", _PARTITION_SCRIPT, str(tmp_path / "in.npz"),
                              str(tmp_path / "out.npz"), *clouds], env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, (threads, run.stderr[-2000:])
        got = np.load(tmp_path / "out.npz")
        for name, want in expected.items():
            for key, array in zip("vcn", want):
                np.testing.assert_array_equal(got[f"{name}/{key}"], array, err_msg=f"{threads} {name}")


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_batch_equals_reference_and_single_clouds(backend):
    rng = np.random.default_rng(11)
    clouds = [lidar_cloud(rng, 3000, channels=4), np.zeros((0, 4), np.float32),
              rng.uniform(-25, 25, (2500, 4)).astype(np.float32), lidar_cloud(rng, 100, channels=4)]
    args = ([0.4, 0.4, 0.4], [-20, -20, -3, 20, 20, 2], 3, 700)
    expected = reference_voxelize(clouds, *args)
    result = voxelize_batch(clouds, *args, backend=backend)
    assert result.coors.ndim == 2 and result.coors.shape[1] == 4  # (V, 4): batch, z, y, x
    assert_same(result, expected, batch=True)
    # Each cloud's part is exactly what voxelize gives that cloud alone (the cap is per cloud).
    for b, cloud in enumerate(clouds):
        alone = voxelize(cloud, *args, backend=backend)
        mine = result.coors[:, 0] == b
        np.testing.assert_array_equal(result.coors[mine, 1:], alone.coors)
        np.testing.assert_array_equal(result.voxels[mine], alone.voxels)
        np.testing.assert_array_equal(result.num_points[mine], alone.num_points)
    # Cloud order is kept: batch indices never decrease.
    assert (np.diff(result.coors[:, 0]) >= 0).all()


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_batch_of_one(backend):
    points, voxel_size, pc_range, max_points, max_voxels = make_case("random")
    result = voxelize_batch([points], voxel_size, pc_range, max_points, max_voxels, backend=backend)
    single = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
    assert result.coors.shape == (len(single.coors), 4)
    assert (result.coors[:, 0] == 0).all()
    np.testing.assert_array_equal(result.coors[:, 1:], single.coors)
    np.testing.assert_array_equal(result.voxels, single.voxels)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_empty_inputs(backend):
    for channels in (3, 5):
        result = voxelize(np.zeros((0, channels), np.float32), [1, 1, 1], [0, 0, 0, 4, 4, 4], 6, 10,
                          backend=backend)
        assert result.voxels.shape == (0, 6, channels) and result.voxels.dtype == np.float32
        assert result.coors.shape == (0, 3) and result.num_points.shape == (0,)
        assert result.num_dropped == 0
    batch = voxelize_batch([np.zeros((0, 4)), np.zeros((0, 4))], [1, 1, 1], [0, 0, 0, 4, 4, 4], 6,
                           backend=backend)
    assert batch.voxels.shape == (0, 6, 4) and batch.coors.shape == (0, 4)
    assert point_voxel_coors(np.zeros((0, 3)), [1, 1, 1], [0, 0, 0, 4, 4, 4], backend=backend).shape == (0, 3)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_float64_and_non_contiguous(backend):
    points, voxel_size, pc_range, max_points, max_voxels = make_case("lidar", seed=2)
    expected = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
    wide = np.zeros((len(points) * 2, 10), dtype=np.float64)
    wide[::2, ::2] = points  # every other row and column: strided float64
    strided = wide[::2, ::2]
    assert not strided.flags.c_contiguous
    got = voxelize(strided, voxel_size, pc_range, max_points, max_voxels, backend=backend)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    fortran = np.asfortranarray(points)
    got = voxelize(fortran, voxel_size, pc_range, max_points, max_voxels, backend=backend)
    np.testing.assert_array_equal(got.voxels, expected.voxels)
    np.testing.assert_array_equal(point_voxel_coors(strided, voxel_size, pc_range, backend=backend),
                                  point_voxel_coors(points, voxel_size, pc_range, backend=backend))
    # Lists and tuples work for every argument.
    got = voxelize(points[:50].tolist(), tuple(voxel_size), list(pc_range), max_points, backend=backend)
    ref = reference_voxelize([points[:50]], voxel_size, pc_range, max_points)
    assert_same(got, ref)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_torch_cpu_in_torch_out(backend):
    torch = pytest.importorskip("torch")
    points, voxel_size, pc_range, max_points, max_voxels = make_case("nan_inf_out_of_range")
    expected = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
    got = voxelize(torch.from_numpy(points).double(), torch.tensor(voxel_size), pc_range,
                   max_points, max_voxels, backend=backend)
    for tensor, dtype, want in zip(got, (torch.float32, torch.int32, torch.int32), expected):
        assert isinstance(tensor, torch.Tensor) and tensor.dtype == dtype and tensor.device.type == "cpu"
        np.testing.assert_array_equal(tensor.numpy(), want)
    assert got.num_dropped == expected.num_dropped
    batch = voxelize_batch([torch.from_numpy(points), torch.from_numpy(points[:100])], voxel_size,
                           pc_range, max_points, max_voxels, backend=backend)
    assert isinstance(batch.coors, torch.Tensor) and tuple(batch.coors.shape[1:]) == (4,)
    per_point = point_voxel_coors(torch.from_numpy(points), voxel_size, pc_range, backend=backend)
    assert isinstance(per_point, torch.Tensor) and per_point.dtype == torch.int32
    with pytest.raises(ValueError, match=r"points_list\[1\] is a numpy array on cpu"):
        voxelize_batch([torch.from_numpy(points), points], voxel_size, pc_range, max_points)


def test_result_unpacks_and_reports_drops():
    points, voxel_size, pc_range, max_points, max_voxels = make_case("nan_inf_out_of_range")
    result = voxelize(points, voxel_size, pc_range, max_points, max_voxels)
    voxels, coors, num_points = result
    assert voxels is result.voxels and coors is result.coors and num_points is result.num_points
    _, kept = reference_cells(points, voxel_size, pc_range)
    assert result.num_dropped == int((~kept).sum()) > 0
    assert "num_dropped" in repr(result)
    # Kept points lost to the caps are the rest.
    assert len(points) - result.num_dropped - int(num_points.sum()) >= 0


def test_voxel_grid():
    grid = voxel_grid([0.075, 0.075, 0.2], NUSCENES_RANGE)
    assert grid.shape == (1440, 1440, 40)
    assert grid.min.dtype == np.float32 and grid.size.dtype == np.float32
    assert voxel_grid([0.1, 0.1, 0.2], NUSCENES_RANGE).shape == (1080, 1080, 40)
    assert voxel_grid([0.2, 0.2, 8], NUSCENES_RANGE).shape == (540, 540, 1)
    assert voxel_grid([0.7, 1.3, 1.9], [0, 0, 0, 1, 1, 1]).shape == (1, 1, 1)


def test_repeated_calls_are_identical():
    points, voxel_size, pc_range, max_points, max_voxels = make_case("lidar", seed=9)
    for backend in HOST_BACKENDS:
        first = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
        for _ in range(3):
            again = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
            for a, b in zip(first, again):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs,match", [
    (dict(voxel_size=[0, 1, 1]), "voxel_size must be > 0"),
    (dict(voxel_size=[-0.1, 1, 1]), "voxel_size must be > 0"),
    (dict(voxel_size=[1, 1]), r"voxel_size must have shape \(3,\)"),
    (dict(voxel_size=[np.nan, 1, 1]), "voxel_size must be finite"),
    (dict(voxel_size="abc"), "voxel_size must be 3 numbers"),
    (dict(voxel_size=[1e-9, 1, 1]), "cells per axis"),
    (dict(pc_range=[0, 0, 0, 4, 0, 4]), "pc_range must have max > min"),
    (dict(pc_range=[0, 0, 5, 4, 4, 4]), "pc_range must have max > min"),
    (dict(pc_range=[0, 0, 0, 4, 4]), r"pc_range must have shape \(6,\)"),
    (dict(pc_range=[0, 0, 0, 4, 4, np.inf]), "pc_range must be finite"),
    (dict(pc_range=[0, 0, 0, 0.4, 4, 4]), "less than half a voxel_size"),
    (dict(max_points=0), "max_points must be >= 1"),
    (dict(max_points=-2), "max_points must be >= 1"),
    (dict(max_points=2.5), "max_points must be an integer"),
    (dict(max_points=None), "max_points must be an integer"),
    (dict(max_points=True), "max_points must be an integer"),
    (dict(max_voxels=0), "max_voxels must be >= 1"),
    (dict(max_voxels=1.5), "max_voxels must be an integer"),
    (dict(points=np.zeros((5, 2))), "points must have at least 3 columns"),
    (dict(points=np.zeros(5)), "points must have 2 dimensions"),
    (dict(points=np.zeros((2, 5, 3))), "points must have 2 dimensions"),
    (dict(points=np.zeros((5, 3), dtype=np.int32)), "points has unsupported dtype int32"),
    (dict(backend="gpu"), "backend must be one of"),
    (dict(backend="cuda"), "backend='cuda' needs inputs on a CUDA device"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(points=np.zeros((5, 4), np.float32), voxel_size=[1, 1, 1],
                pc_range=[0, 0, 0, 4, 4, 4], max_points=3, max_voxels=10)
    args.update(kwargs)
    backend = args.pop("backend", "auto")
    with pytest.raises(ValueError, match=match):
        voxelize(**args, backend=backend)


def test_bad_batch_and_per_point_inputs():
    good = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match="at least one point cloud"):
        voxelize_batch([], [1, 1, 1], [0, 0, 0, 4, 4, 4], 3)
    with pytest.raises(ValueError, match="points_list must be a list or tuple"):
        voxelize_batch(np.zeros((2, 5, 4)), [1, 1, 1], [0, 0, 0, 4, 4, 4], 3)
    with pytest.raises(ValueError, match=r"points_list\[1\] has 5 columns"):
        voxelize_batch([good, np.zeros((5, 5))], [1, 1, 1], [0, 0, 0, 4, 4, 4], 3)
    with pytest.raises(ValueError, match=r"points_list\[1\] must have at least 3 columns"):
        voxelize_batch([good, np.zeros((5, 2))], [1, 1, 1], [0, 0, 0, 4, 4, 4], 3)
    with pytest.raises(ValueError, match="max_voxels must be >= 1"):
        voxelize_batch([good], [1, 1, 1], [0, 0, 0, 4, 4, 4], 3, 0)
    with pytest.raises(ValueError, match="voxel_size must be > 0"):
        point_voxel_coors(good, [1, 0, 1], [0, 0, 0, 4, 4, 4])
    with pytest.raises(ValueError, match="pc_range must have max > min"):
        point_voxel_coors(good, [1, 1, 1], [0, 0, 0, -4, 4, 4])
    with pytest.raises(ValueError, match="points must have at least 3 columns"):
        point_voxel_coors(good[:, :2], [1, 1, 1], [0, 0, 0, 4, 4, 4])


def test_numba_twins_compile_in_nopython_mode():
    from nutrack.ops import _numba_voxel

    points, voxel_size, pc_range, max_points, max_voxels = make_case("random")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend="numba")
        point_voxel_coors(points, voxel_size, pc_range, backend="numba")
    for name in ("_assign", "_fill", "_point_coors"):  # the compiled passes of the twins
        dispatcher = getattr(_numba_voxel, name)
        assert dispatcher.signatures, name
        assert all(not cres.objectmode for cres in dispatcher.overloads.values()), name


# ----------------------------------------------------------------------------- properties
# Coordinates drawn from a small alphabet of awkward values: cell boundaries (for a 0.1 m grid
# from -0.3), one ulp around them, the range ends, NaN, +-inf, -0.0 and plain values.
_AWKWARD = np.array([-0.3, -0.2, -0.1, 0.0, -0.0, 0.1, 0.2, 0.3, 0.15, -0.25, 0.29999998,
                     np.nextafter(np.float32(0.1), np.float32(1)), np.nextafter(np.float32(0.1), np.float32(-1)),
                     np.nextafter(np.float32(-0.3), np.float32(-1)), np.nan, np.inf, -np.inf, 7.0],
                    dtype=np.float32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 250), max_points=st.integers(1, 6),
       max_voxels=st.one_of(st.none(), st.integers(1, 40)), awkward=st.booleans(),
       voxel=st.sampled_from([0.1, 0.05, 0.3, 0.075, 1.0 / 3.0]))
def test_property_backends_equal_reference(seed, n, max_points, max_voxels, awkward, voxel):
    rng = np.random.default_rng(seed)
    if awkward:
        points = rng.choice(_AWKWARD, (n, 4))
    else:
        points = rng.uniform(-0.4, 0.4, (n, 4)).astype(np.float32)
    voxel_size, pc_range = [voxel, voxel, voxel], [-0.3, -0.3, -0.3, 0.3, 0.3, 0.3]
    expected = reference_voxelize([points], voxel_size, pc_range, max_points, max_voxels)
    for backend in HOST_BACKENDS:
        result = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend=backend)
        assert_same(result, expected)
        # Invariants that hold whatever the reference says.
        assert len(result.coors) == len(np.unique(result.coors, axis=0))  # one row per voxel
        assert ((result.num_points >= 1) & (result.num_points <= max_points)).all()
        if max_voxels is not None:
            assert len(result.coors) <= max_voxels


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), sizes=st.lists(st.integers(0, 120), min_size=1, max_size=5),
       max_voxels=st.integers(1, 30))
def test_property_batch_is_per_cloud(seed, sizes, max_voxels):
    rng = np.random.default_rng(seed)
    clouds = [rng.uniform(-1, 1, (m, 3)).astype(np.float32) for m in sizes]
    args = ([0.25, 0.25, 0.5], [-0.9, -0.9, -0.9, 0.9, 0.9, 0.9], 2, max_voxels)
    expected = reference_voxelize(clouds, *args)
    for backend in HOST_BACKENDS:
        assert_same(voxelize_batch(clouds, *args, backend=backend), expected, batch=True)


# ----------------------------------------------------------------------------- CUDA
CUDA_CASES = ["random", "lidar", "many_per_voxel", "boundaries", "boundaries_075", "over_max_voxels",
              "no_cap", "nan_inf_out_of_range", "all_dropped", "one_point", "max_points_1"]


def _device_kit(array_kind):
    if array_kind == "torch":
        import torch

        return (lambda a: torch.from_numpy(np.ascontiguousarray(a)).cuda()), (lambda a: a.cpu().numpy())
    cupy = pytest.importorskip("cupy")
    return cupy.asarray, cupy.asnumpy


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name", CUDA_CASES)
@pytest.mark.parametrize("array_kind", ["torch", "cupy"])
def test_cuda_equals_numba(name, array_kind):
    to_device, to_host = _device_kit(array_kind)
    points, voxel_size, pc_range, max_points, max_voxels = make_case(name)
    expected = voxelize(points, voxel_size, pc_range, max_points, max_voxels, backend="numba")
    got = voxelize(to_device(points), voxel_size, pc_range, max_points, max_voxels)
    assert got.coors.shape == (len(expected.coors), 3)
    for a, b in zip(got, expected):
        assert type(a) is type(to_device(points[:1]))
        np.testing.assert_array_equal(to_host(a), b)
    assert got.num_dropped == expected.num_dropped
    np.testing.assert_array_equal(to_host(point_voxel_coors(to_device(points), voxel_size, pc_range)),
                                  point_voxel_coors(points, voxel_size, pc_range, backend="numba"))


@requires_cuda
@pytest.mark.cuda
def test_cuda_batch_and_empty():
    import torch

    rng = np.random.default_rng(4)
    clouds = [lidar_cloud(rng, 30_000), np.zeros((0, 5), np.float32), lidar_cloud(rng, 5_000),
              rng.uniform(100, 200, (50, 5)).astype(np.float32)]
    args = ([0.1, 0.1, 0.2], NUSCENES_RANGE, 5, 8_000)
    expected = voxelize_batch(clouds, *args, backend="numba")
    got = voxelize_batch([torch.from_numpy(c).cuda() for c in clouds], *args)
    assert got.coors.shape == (len(expected.coors), 4) and got.coors.is_cuda
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.cpu().numpy(), b)
    assert got.num_dropped == expected.num_dropped
    empty = voxelize(torch.zeros((0, 4), device="cuda"), [1, 1, 1], [0, 0, 0, 4, 4, 4], 3, 5)
    assert empty.voxels.shape == (0, 3, 4) and empty.voxels.is_cuda and empty.coors.shape == (0, 3)
    assert point_voxel_coors(torch.zeros((0, 3), device="cuda"), [1, 1, 1], [0, 0, 0, 4, 4, 4]).shape == (0, 3)


@requires_cuda
@pytest.mark.cuda
def test_cuda_nuscenes_scale_streams_and_determinism():
    import torch

    rng = np.random.default_rng(8)
    points = lidar_cloud(rng, 300_000)
    for voxel_size, max_voxels in (([0.075, 0.075, 0.2], 120_000), ([0.1, 0.1, 0.2], None)):
        expected = voxelize(points, voxel_size, NUSCENES_RANGE, 10, max_voxels, backend="numba")
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            device_points = torch.from_numpy(points).cuda()
            runs = [voxelize(device_points, voxel_size, NUSCENES_RANGE, 10, max_voxels) for _ in range(3)]
        stream.synchronize()
        for got in runs:
            for a, b in zip(got, expected):
                np.testing.assert_array_equal(a.cpu().numpy(), b)
        # Forcing the host backends on device input copies there and back.
        cpu = voxelize(device_points, voxel_size, NUSCENES_RANGE, 10, max_voxels, backend=HOST_BACKENDS[0])
        assert cpu.voxels.is_cuda
        np.testing.assert_array_equal(cpu.coors.cpu().numpy(), expected.coors)
