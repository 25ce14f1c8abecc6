"""The CUDA kernels of csrc/*_cuda.cu, executed on the CPU (tests/cuda_emu.py: the same
sources compiled with g++ against HIP-CPU), compared bit for bit with the C++ backend over the
whole CUDA test matrix: every case of the CUDA tests in test_points_in_boxes.py,
test_voxelize.py and test_affinity.py, plus what only a kernel has (tiles of shared memory,
warp ballots, atomics, the device scan and sort, the grid-y loop).

What this cannot catch (races, warp divergence, device float behaviour, speed) needs a real
GPU: benchmarks/gpu_check.sh. Skips only where g++, TBB or HIP-CPU are missing.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import nutrack.ops
from nutrack.ops import (_backend, box_frames, pairwise_affinity, point_voxel_coors,
                         points_in_boxes, points_in_boxes_all, points_in_polygons, voxelize,
                         voxelize_batch)
from tests import cuda_emu
from tests import test_affinity as affinity_cases
from tests import test_points_in_boxes as points_cases
from tests import test_voxelize as voxel_cases
from tests._helpers import HOST_BACKENDS, random_boxes

pytestmark = pytest.mark.cuda_emu
HOST = "cpu" if "cpu" in HOST_BACKENDS else "numba"  # bit-identical by design; cpu when built


@pytest.fixture(scope="session", autouse=True)
def emulated():
    """Builds (or finds in the cache) the emulated module of the checkout's sources and
    registers it as the cuda_emu backend for the session."""
    reason = cuda_emu.missing()
    if reason:
        pytest.skip(f"cuda_emu: {reason}")
    if cuda_emu.sanitize_requested() and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("cuda_emu: NUTRACK_EMU_SANITIZE=1 needs the sanitizer runtimes preloaded: "
                    "run python -m tests.cuda_emu --sanitize")
    module = cuda_emu.load(cuda_emu.build())
    _backend.register_emulated(module)
    yield module
    _backend.register_emulated(None)


def assert_same(got, expected):
    assert type(got) is type(expected)
    if isinstance(got, tuple):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same(a, b)
        return
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # bit for bit (NaN == NaN here)


def both(op, *args, **kwargs):
    """(emulated CUDA result, host result) of one op call."""
    return op(*args, **kwargs, backend="cuda_emu"), op(*args, **kwargs, backend=HOST)


# ----------------------------------------------------------------------------- points in boxes
@pytest.mark.parametrize("name", points_cases.CASES)
def test_points_in_boxes(name):
    points, boxes = points_cases.case(name)
    assert_same(*both(points_in_boxes, points, boxes))
    assert_same(*both(points_in_boxes_all, points, boxes, sparse=False))
    assert_same(*both(points_in_boxes_all, points, boxes, sparse=True))


@pytest.mark.parametrize("clockwise", [True, False])
@pytest.mark.parametrize("name", ["random", "faces_edges_corners", "far_from_origin"])
def test_points_in_polygons(name, clockwise):
    points, _ = points_cases.case(name)
    polygons = points_cases._convex_polygons(np.random.default_rng(0), 20, 5, clockwise)
    assert_same(*both(points_in_polygons, points[:, :2], polygons, clockwise))


def test_points_in_boxes_past_2_21_points_and_many_tiles():
    """More than 2^21 points (8193 blocks) and more boxes than one shared-memory tile holds
    (300 > 256, a ragged second tile), with most points in some box."""
    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 300, extent=8, size_range=(1.0, 6.0))
    points = rng.uniform(-10, 10, ((1 << 21) + 7, 4)).astype(np.float32)
    got, expected = both(points_in_boxes, points, boxes)
    assert_same(got, expected)
    assert (expected >= 256).any() and (expected == -1).any()
    sample = points[::97]
    assert_same(*both(points_in_boxes_all, sample, boxes, sparse=True))


def test_points_in_boxes_tile_boundaries():
    """Box counts around the tile width: the last box of a tile, the first of the next."""
    rng = np.random.default_rng(3)
    points = rng.uniform(-10, 10, (3000, 3)).astype(np.float32)
    for m in (1, 255, 256, 257, 513):
        boxes = random_boxes(rng, m, extent=10, size_range=(0.5, 3.0))
        assert_same(*both(points_in_boxes_all, points, boxes, sparse=True))
        assert_same(*both(points_in_boxes, points, boxes))


def test_naive_baseline_kernel_runs():
    """The benchmarks' one-thread-per-point kernel: not bit-identical by design (cos/sin per
    pair), so it must agree except within a rounding of some face."""
    rng = np.random.default_rng(5)
    points = rng.uniform(-20, 20, (20_000, 5)).astype(np.float32)
    boxes = random_boxes(rng, 100, extent=20)
    out = np.empty(len(points), np.int32)
    _backend.emulated.points_in_boxes_naive_cuda(
        points=points.ctypes.data, n=len(points), stride=5, boxes=boxes.ctypes.data,
        nb=len(boxes), out=out.ctypes.data, device=0, stream=0)
    _backend.emulated.synchronize_cuda(device=0)
    assert (out != points_in_boxes(points, boxes, backend=HOST)).mean() < 1e-3


# ----------------------------------------------------------------------------- voxelize
@pytest.mark.parametrize("name", list(voxel_cases.CASES))
def test_voxelize(name):
    points, voxel_size, pc_range, max_points, max_voxels = voxel_cases.make_case(name)
    got, expected = both(voxelize, points, voxel_size, pc_range, max_points, max_voxels)
    assert_same(tuple(got), tuple(expected))
    assert got.num_dropped == expected.num_dropped
    assert_same(*both(point_voxel_coors, points, voxel_size, pc_range))


def test_voxelize_batch_with_empty_clouds():
    rng = np.random.default_rng(4)
    lidar = voxel_cases.lidar_cloud
    clouds = [lidar(rng, 30_000), np.zeros((0, 5), np.float32), lidar(rng, 5_000),
              rng.uniform(100, 200, (50, 5)).astype(np.float32), np.zeros((0, 5), np.float32)]
    for max_voxels in (8_000, 700, None):
        args = (clouds, [0.1, 0.1, 0.2], voxel_cases.NUSCENES_RANGE, 5, max_voxels)
        got, expected = both(voxelize_batch, *args)
        assert_same(tuple(got), tuple(expected))
        assert got.num_dropped == expected.num_dropped
    empty = voxelize(np.zeros((0, 4), np.float32), [1, 1, 1], [0, 0, 0, 4, 4, 4], 3, 5,
                     backend="cuda_emu")
    assert empty.voxels.shape == (0, 3, 4) and empty.coors.shape == (0, 3)


def test_voxelize_nuscenes_scale_and_caps():
    """300k points at nuScenes resolution: a large hash table, a sort over many bits, voxels
    past max_voxels dropped, full voxels past max_points."""
    rng = np.random.default_rng(8)
    points = voxel_cases.lidar_cloud(rng, 300_000)
    for voxel_size, max_points, max_voxels in (([0.075, 0.075, 0.2], 10, 120_000),
                                               ([0.1, 0.1, 0.2], 3, None),
                                               ([0.8, 0.8, 8.0], 2, 1_000)):
        got, expected = both(voxelize, points, voxel_size, voxel_cases.NUSCENES_RANGE,
                             max_points, max_voxels)
        assert_same(tuple(got), tuple(expected))
        assert got.num_dropped == expected.num_dropped


def test_voxelize_drop_counts_in_every_warp():
    """Dropped points only in chosen 32-point runs (every other warp, the upper half of HIP-CPU's
    64-lane warps among them): the per-warp ballot must count each run exactly once."""
    rng = np.random.default_rng(11)
    points = rng.uniform(0.1, 3.9, (4096, 3)).astype(np.float32)
    for start in range(32, 4096, 64):
        points[start:start + 32, 0] = 50.0  # outside pc_range
    points[5, 1] = np.nan
    got, expected = both(voxelize, points, [1, 1, 1], [0, 0, 0, 4, 4, 4], 4, 50)
    assert got.num_dropped == expected.num_dropped == 2048 + 1
    assert_same(tuple(got), tuple(expected))


def test_voxelize_drop_count_under_concurrent_blocks():
    """HIP-CPU runs a launch's blocks on several OS threads at once, so a drop count updated
    with a plain read-modify-write instead of an atomic loses updates when 2^22 mostly dropped
    points (16k blocks) are counted: measured 2 of 3 runs wrong on 2 cores. Probabilistic in
    that direction only: correct code always passes."""
    rng = np.random.default_rng(9)
    n = 1 << 22
    points = rng.uniform(10, 20, (n, 3)).astype(np.float32)
    points[::1000] = 0.5
    kept = len(points[::1000])
    for _ in range(3):
        got = voxelize(points, [1, 1, 1], [0, 0, 0, 5, 5, 5], 3, 10, backend="cuda_emu")
        assert got.num_dropped == n - kept


# ----------------------------------------------------------------------------- affinity
@pytest.mark.parametrize("name", affinity_cases.CASES)
def test_affinity(name):
    a, b = affinity_cases.case(name)
    rng = np.random.default_rng(1)
    ca, cb = rng.integers(0, 3, len(a)), rng.integers(0, 3, len(b))
    for metric in nutrack.ops.AFFINITY_METRICS:
        assert_same(*both(pairwise_affinity, a, b, metric))
        assert_same(*both(pairwise_affinity, a, b, metric, ca, cb))


def test_affinity_classes_ragged_tiles_and_empty():
    rng = np.random.default_rng(12)
    # 301 x 205 crosses several 8 x 32 tiles in both directions, with ragged edges.
    a, b = random_boxes(rng, 301, extent=15), random_boxes(rng, 205, extent=15)
    ca, cb = rng.integers(0, 4, 301), rng.integers(0, 4, 205)
    for metric in nutrack.ops.AFFINITY_METRICS:
        assert_same(*both(pairwise_affinity, a, b, metric, ca, cb, fill=2.5))
        assert_same(*both(pairwise_affinity, a, b, metric))
    assert pairwise_affinity(a[:0], b, "giou_bev", backend="cuda_emu").shape == (0, 205)
    assert pairwise_affinity(a, b[:0], "giou_bev", backend="cuda_emu").shape == (301, 0)


def test_affinity_grid_y_loop():
    """More than 65535 row tiles of 8 (m > 524,280): the grid strides over the rows."""
    rng = np.random.default_rng(13)
    tall = random_boxes(rng, 600_000, extent=40)
    b = random_boxes(rng, 3, extent=40)
    got, expected = both(pairwise_affinity, tall, b, "bev_iou")
    assert_same(got, expected)
    classes = rng.integers(0, 2, len(tall))
    got, expected = both(pairwise_affinity, tall, b, "center_distance", classes, np.array([0, 1, 0]))
    assert_same(got, expected)


# ----------------------------------------------------------------------------- the launchers
def test_every_cuda_launcher_is_emulated(emulated):
    """The emulated module exposes exactly the CUDA launchers of nutrack._C (when it has
    them), so no kernel escapes these tests."""
    def launchers(module):
        return {n for n in dir(module) if n.endswith("_cuda") and callable(getattr(module, n))}

    names = launchers(emulated)
    assert {"points_in_boxes_cuda", "points_in_boxes_dense_cuda", "points_in_boxes_count_cuda",
            "points_in_boxes_pairs_cuda", "points_in_polygons_cuda", "points_in_boxes_naive_cuda",
            "voxelize_workspace_bytes_cuda", "voxelize_assign_cuda", "voxelize_fill_cuda",
            "point_voxel_coors_cuda", "pairwise_affinity_cuda", "synchronize_cuda"} == names
    if nutrack.ops.has_cuda():
        assert names == launchers(_backend.native)


def test_launcher_arguments_are_named(emulated):
    """A launcher called with an argument under a wrong name fails loudly (TypeError), never
    reading one argument as another."""
    frames = box_frames(random_boxes(np.random.default_rng(0), 2))
    with pytest.raises(TypeError):
        emulated.pairwise_affinity_cuda(frames_a=frames.ctypes.data, na=2,
                                        frames_b=frames.ctypes.data, n=2, metric=0, classes_a=0,
                                        classes_b=0, fill=0.0, out=0, device=0, stream=0)


def test_an_edited_kernel_is_rebuilt(tmp_path, monkeypatch):
    """The cache key of a source's object follows its bytes and every header: editing a kernel
    (or a header it includes) rebuilds, and only what it affects."""
    import shutil

    shutil.copytree(cuda_emu.CSRC, tmp_path / "csrc")
    monkeypatch.setattr(cuda_emu, "CSRC", tmp_path / "csrc")
    before = {s.name: k for s, k in cuda_emu._object_keys(False).items()}
    kernel = tmp_path / "csrc" / "voxelize_cuda.cu"
    kernel.write_text(kernel.read_text() + "\n// edited\n")
    after = {s.name: k for s, k in cuda_emu._object_keys(False).items()}
    assert {n for n in before if before[n] != after[n]} == {"voxelize_cuda.cu"}
    header = tmp_path / "csrc" / "include" / "nutrack" / "common.h"
    header.write_text(header.read_text() + "\n// edited\n")
    again = {s.name: k for s, k in cuda_emu._object_keys(False).items()}
    assert all(again[n] != after[n] for n in after)
