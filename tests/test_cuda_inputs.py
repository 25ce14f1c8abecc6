"""Every op on CUDA with torch AND cupy inputs, on small inputs, against the C++ backend bit for
bit; small enough that benchmarks/gpu_check.sh also runs this file under compute-sanitizer
(memcheck, racecheck, synccheck). Needs a GPU: skipped elsewhere (the same kernels run on the
CPU in test_cuda_emu.py)."""
from __future__ import annotations

import numpy as np
import pytest

import nutrack.ops
from nutrack.ops import (pairwise_affinity, point_voxel_coors, points_in_boxes,
                         points_in_boxes_all, points_in_polygons, voxelize, voxelize_batch)
from tests._helpers import HOST_BACKENDS, random_boxes, requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]
HOST = "cpu" if "cpu" in HOST_BACKENDS else "numba"


@pytest.fixture(params=["torch", "cupy"])
def kit(request):
    """(to_device, to_host) for one array library."""
    if request.param == "torch":
        import torch

        return (lambda a: torch.from_numpy(np.ascontiguousarray(a)).cuda()), (lambda a: a.cpu().numpy())
    cupy = pytest.importorskip("cupy")
    return cupy.asarray, cupy.asnumpy


def _same(got, expected, to_host):
    np.testing.assert_array_equal(to_host(got), expected)


def test_points_ops(kit):
    to_device, to_host = kit
    rng = np.random.default_rng(0)
    points = rng.uniform(-12, 12, (3000, 4)).astype(np.float32)
    boxes = random_boxes(rng, 300, extent=10, size_range=(0.5, 4.0))  # two shared-memory tiles
    p, b = to_device(points), to_device(boxes)
    _same(points_in_boxes(p, b), points_in_boxes(points, boxes, backend=HOST), to_host)
    for sparse in (False, True):
        _same(points_in_boxes_all(p, b, sparse=sparse),
              points_in_boxes_all(points, boxes, sparse=sparse, backend=HOST), to_host)
    square = np.array([[[0, 0], [0, 3], [3, 3], [3, 0]]], np.float32)
    _same(points_in_polygons(p, to_device(square)), points_in_polygons(points, square, backend=HOST),
          to_host)


def test_voxel_ops(kit):
    to_device, to_host = kit
    rng = np.random.default_rng(1)
    points = rng.uniform(-6, 6, (5000, 4)).astype(np.float32)
    points[::50, 0] = np.nan
    args = ([0.5, 0.5, 1.0], [-5, -5, -3, 5, 5, 3], 4, 300)
    got, expected = voxelize(to_device(points), *args), voxelize(points, *args, backend=HOST)
    for a, e in zip(got, expected):
        _same(a, e, to_host)
    assert got.num_dropped == expected.num_dropped
    clouds = [points[:2000], points[:0], points[2000:]]
    got = voxelize_batch([to_device(c) for c in clouds], *args)
    for a, e in zip(got, voxelize_batch(clouds, *args, backend=HOST)):
        _same(a, e, to_host)
    _same(point_voxel_coors(to_device(points), *args[:2]),
          point_voxel_coors(points, *args[:2], backend=HOST), to_host)


@pytest.mark.parametrize("metric", nutrack.ops.AFFINITY_METRICS)
def test_affinity(kit, metric):
    to_device, to_host = kit
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 45, extent=8), random_boxes(rng, 70, extent=8)  # ragged tiles
    ca, cb = rng.integers(0, 3, 45), rng.integers(0, 3, 70)
    _same(pairwise_affinity(to_device(a), to_device(b), metric),
          pairwise_affinity(a, b, metric, backend=HOST), to_host)
    _same(pairwise_affinity(to_device(a), to_device(b), metric, to_device(ca), to_device(cb)),
          pairwise_affinity(a, b, metric, ca, cb, backend=HOST), to_host)


def test_side_stream():
    """Work is enqueued on the caller's current stream, not the default one."""
    import torch

    rng = np.random.default_rng(3)
    points = rng.uniform(-12, 12, (4000, 3)).astype(np.float32)
    boxes = random_boxes(rng, 50, extent=10)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = points_in_boxes(torch.from_numpy(points).cuda(), torch.from_numpy(boxes).cuda())
        voxels = voxelize(torch.from_numpy(points).cuda(), [1, 1, 1], [-10, -10, -10, 10, 10, 10], 3)
    stream.synchronize()
    np.testing.assert_array_equal(got.cpu().numpy(), points_in_boxes(points, boxes, backend=HOST))
    expected = voxelize(points, [1, 1, 1], [-10, -10, -10, 10, 10, 10], 3, backend=HOST)
    np.testing.assert_array_equal(voxels.coors.cpu().numpy(), expected.coors)
