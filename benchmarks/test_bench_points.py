"""points_in_boxes: each backend beside the obvious alternatives, at nuScenes sizes:
34k points (one LIDAR_TOP sweep) and 300k (ten sweeps), 50 and 500 boxes."""
from __future__ import annotations

import numpy as np
import pytest

try:  # the devkit is not installed on every GPU machine; its row is skipped there
    from nuscenes.utils.data_classes import Box
    from nuscenes.utils.geometry_utils import points_in_box
    from pyquaternion import Quaternion
except ImportError:  # pragma: no cover
    Box = None

from benchmarks.conftest import requires_cuda, synchronize
from nutrack.ops import available_backends, points_in_boxes

SIZES = [(34_000, 50), (34_000, 500), (300_000, 50), (300_000, 500)]
HOST = [b for b in available_backends() if b != "cuda"]


def scene(n: int, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-54, 54, (n, 5)).astype(np.float32)
    points[:, 2] = rng.uniform(-3, 3, n)
    boxes = np.concatenate([rng.uniform(-54, 54, (m, 2)), rng.uniform(-1, 1, (m, 1)),
                            rng.uniform(0.6, 5.0, (m, 3)), rng.uniform(-np.pi, np.pi, (m, 1))],
                           axis=1).astype(np.float32)
    return points, boxes


def numpy_vectorised(points: np.ndarray, boxes: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """The obvious numpy version: broadcast points x boxes (in chunks to bound memory)."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    out = np.empty(len(points), dtype=np.int32)
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk, None, :3] - boxes[None, :, :3]
        lx = p[..., 0] * c + p[..., 1] * s
        ly = p[..., 1] * c - p[..., 0] * s
        inside = (np.abs(lx) <= boxes[:, 3] / 2) & (np.abs(ly) <= boxes[:, 4] / 2) & (np.abs(p[..., 2]) <= boxes[:, 5] / 2)
        out[start:start + chunk] = np.where(inside.any(1), inside.argmax(1), -1)
    return out


def devkit_loop(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """What Python pipelines do today: the devkit's points_in_box, box by box."""
    out = np.full(len(points), -1, dtype=np.int32)
    xyz = points[:, :3].T
    for j in range(len(boxes) - 1, -1, -1):  # reverse, so the lowest index wins
        x, y, z, dx, dy, dz, yaw = boxes[j].astype(np.float64)
        box = Box([x, y, z], [dy, dx, dz], Quaternion(axis=[0, 0, 1], angle=yaw))
        out[points_in_box(box, xyz)] = j
    return out


@pytest.mark.parametrize("n,m", SIZES, ids=[f"{n // 1000}k-{m}" for n, m in SIZES])
@pytest.mark.parametrize("impl", HOST + ["numpy", "devkit"])
def test_points_in_boxes_host(benchmark, impl, n, m):
    if impl == "devkit" and Box is None:
        pytest.skip("nuscenes-devkit is not installed")
    points, boxes = scene(n, m)
    benchmark.group = f"points_in_boxes {n // 1000}k points x {m} boxes"
    benchmark.extra_info["impl"] = impl
    if impl == "numpy":
        result = benchmark.pedantic(numpy_vectorised, (points, boxes), rounds=2, warmup_rounds=0)
    elif impl == "devkit":
        result = benchmark.pedantic(devkit_loop, (points, boxes), rounds=1, warmup_rounds=0)
    else:
        result = benchmark.pedantic(points_in_boxes, (points, boxes), {"backend": impl},
                                    rounds=10, warmup_rounds=1)
    # A benchmark of a wrong answer is worthless: agree away from faces (ties are rare here).
    reference = points_in_boxes(points, boxes, backend="numba")
    assert (result == reference).mean() > 0.9999


@requires_cuda
@pytest.mark.parametrize("n,m", SIZES, ids=[f"{n // 1000}k-{m}" for n, m in SIZES])
@pytest.mark.parametrize("impl", ["cuda", "cuda_naive", "torch"])
def test_points_in_boxes_gpu(benchmark, impl, n, m):
    import torch

    from nutrack.ops import _arrays, _backend

    points_np, boxes_np = scene(n, m)
    points, boxes = torch.from_numpy(points_np).cuda(), torch.from_numpy(boxes_np).cuda()
    benchmark.group = f"points_in_boxes {n // 1000}k points x {m} boxes"
    benchmark.extra_info["impl"] = impl

    if impl == "cuda":
        def run():
            out = points_in_boxes(points, boxes)
            synchronize()
            return out
    elif impl == "cuda_naive":
        def run():
            out = torch.empty(n, dtype=torch.int32, device="cuda")
            _backend.native.points_in_boxes_naive_cuda(
                points=points.data_ptr(), n=n, stride=5, boxes=boxes.data_ptr(), nb=m,
                out=out.data_ptr(), device=points.device.index,
                stream=_arrays.current_stream(points))
            synchronize()
            return out
    else:
        def run():  # the obvious torch version: broadcast, chunked
            c, s = torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])
            outs = []
            for chunk in torch.split(points[:, :3], 100_000):
                p = chunk[:, None, :] - boxes[None, :, :3]
                lx, ly = p[..., 0] * c + p[..., 1] * s, p[..., 1] * c - p[..., 0] * s
                inside = (lx.abs() <= boxes[:, 3] / 2) & (ly.abs() <= boxes[:, 4] / 2) & (p[..., 2].abs() <= boxes[:, 5] / 2)
                outs.append(torch.where(inside.any(1), inside.int().argmax(1), -1))
            out = torch.cat(outs)
            synchronize()
            return out

    result = benchmark.pedantic(run, rounds=50, warmup_rounds=3)
    reference = points_in_boxes(points_np, boxes_np, backend="numba")
    assert (result.cpu().numpy() == reference).mean() > 0.9999
