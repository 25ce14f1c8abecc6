"""pairwise_affinity: each backend for every metric at 50x50, 500x500 and 2000x2000, beside
the alternatives Python trackers use today:

- numpy: the obvious vectorised version. Exact for center_distance; for the overlap metrics it
  is the axis-aligned approximation (each box replaced by its BEV bounding rectangle, GIoU's
  enclosure by the enclosing rectangle), a different and cheaper quantity, timed as the
  speed reference vectorised trackers settle for.
- shapely: per-pair polygons (intersection, union, convex hull), as SimpleTrack / Poly-MOT
  style trackers compute GIoU: a Python loop at 50x50, and shapely 2's vectorised functions at
  50x50 and 500x500 (one round).
- on the GPU: the CUDA op end to end (validation, box frames, kernel, synchronise), the kernel
  alone on prepared frames, and a vectorised torch version (as numpy above).

The scene is a tracker's: N tracks scattered over +-54 m and N detections, each a noisy copy
of one track (0.3 m, 0.1 rad), in shuffled order, so about N of the N^2 pairs overlap.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import requires_cuda, synchronize
from nutrack.ops import available_backends, pairwise_affinity
from nutrack.ops.affinity import METRICS

SIZES = [50, 500, 2000]
HOST = [b for b in available_backends() if b != "cuda"]
GIOU = ("giou_bev", "giou_3d")


def scene(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tracks = np.concatenate([rng.uniform(-54, 54, (n, 2)), rng.uniform(-1, 1, (n, 1)),
                             rng.uniform(0.6, 5.0, (n, 3)), rng.uniform(-np.pi, np.pi, (n, 1))], axis=1)
    detections = tracks[rng.permutation(n)].copy()
    detections[:, :2] += rng.normal(0, 0.3, (n, 2))
    detections[:, 2] += rng.normal(0, 0.1, n)
    detections[:, 6] += rng.normal(0, 0.1, n)
    return tracks.astype(np.float32), detections.astype(np.float32)


def _rounds(impl: str, metric: str, n: int) -> int:
    """Enough rounds for a stable median, few enough that the slow cases stay bounded."""
    if n == 50:
        return 200 if impl in ("cpu", "numba", "numpy", "cuda", "cuda_kernel", "torch") else 3
    if n == 500:
        return 3 if impl == "numba" and metric in GIOU else 20
    return 2 if impl == "numba" and metric in GIOU else 5


# ----------------------------------------------------------------------------- baselines
def numpy_vectorised(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric == "center_distance":
        return np.hypot(a64[:, None, 0] - b64[None, :, 0], a64[:, None, 1] - b64[None, :, 1]).astype(np.float32)

    def bounds(boxes):
        c, s = np.abs(np.cos(boxes[:, 6])), np.abs(np.sin(boxes[:, 6]))
        half = np.stack([c * boxes[:, 3] + s * boxes[:, 4], s * boxes[:, 3] + c * boxes[:, 4], boxes[:, 5]], 1) / 2
        return boxes[:, :3] - half, boxes[:, :3] + half

    lo_a, hi_a = (x[:, None] for x in bounds(a64))
    lo_b, hi_b = (x[None] for x in bounds(b64))
    dims = 3 if metric in ("iou_3d", "giou_3d") else 2
    inter = np.prod(np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0, None)[..., :dims], -1)
    union = np.prod((hi_a - lo_a)[..., :dims], -1) + np.prod((hi_b - lo_b)[..., :dims], -1) - inter
    iou = inter / union
    if metric not in GIOU:
        return iou.astype(np.float32)
    enclose = np.prod((np.maximum(hi_a, hi_b) - np.minimum(lo_a, lo_b))[..., :dims], -1)
    return (iou - (enclose - union) / enclose).astype(np.float32)


def _shapely_polygons(boxes: np.ndarray):
    import shapely

    b = boxes.astype(np.float64)
    c, s = np.cos(b[:, 6:7]), np.sin(b[:, 6:7])
    lx = np.array([1.0, -1.0, -1.0, 1.0]) * b[:, 3:4] / 2
    ly = np.array([1.0, 1.0, -1.0, -1.0]) * b[:, 4:5] / 2
    return shapely.polygons(np.stack([b[:, :1] + c * lx - s * ly, b[:, 1:2] + s * lx + c * ly], -1))


def _z_terms(a: np.ndarray, b: np.ndarray):
    za, zb = a[:, None, 2].astype(np.float64), b[None, :, 2].astype(np.float64)
    ha, hb = a[:, None, 5].astype(np.float64) / 2, b[None, :, 5].astype(np.float64) / 2
    overlap = np.clip(np.minimum(za + ha, zb + hb) - np.maximum(za - ha, zb - hb), 0, None)
    enclose = np.maximum(za + ha, zb + hb) - np.minimum(za - ha, zb - hb)
    return overlap, enclose, 2 * ha, 2 * hb


def _combine(metric, inter, area_a, area_b, hull, a, b):
    if metric in ("iou_3d", "giou_3d"):
        z_overlap, z_enclose, ha, hb = _z_terms(a, b)
        inter, area_a, area_b, hull = inter * z_overlap, area_a * ha, area_b * hb, hull * z_enclose
    union = area_a + area_b - inter
    iou = inter / union
    return iou if metric in ("bev_iou", "iou_3d") else iou - (hull - union) / hull


def shapely_loop(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """One pair at a time, as Python trackers do."""
    pa, pb = _shapely_polygons(a), _shapely_polygons(b)
    inter = np.empty((len(a), len(b)))
    hull = np.zeros((len(a), len(b)))
    generalized = metric in GIOU
    for i, p in enumerate(pa):
        for j, q in enumerate(pb):
            inter[i, j] = p.intersection(q).area
            if generalized:
                hull[i, j] = p.union(q).convex_hull.area
    areas_a = np.array([p.area for p in pa])[:, None]
    areas_b = np.array([q.area for q in pb])[None, :]
    return _combine(metric, inter, areas_a, areas_b, hull, a, b).astype(np.float32)


def shapely_vectorised(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """shapely 2's vectorised functions over the (M, N) grid of polygon pairs."""
    import shapely

    pa, pb = _shapely_polygons(a)[:, None], _shapely_polygons(b)[None, :]
    inter = shapely.area(shapely.intersection(pa, pb))
    hull = shapely.area(shapely.convex_hull(shapely.union(pa, pb))) if metric in GIOU else inter
    return _combine(metric, inter, shapely.area(pa), shapely.area(pb), hull, a, b).astype(np.float32)


# ----------------------------------------------------------------------------- host
HOST_CASES = [(impl, metric, n) for n in SIZES for metric in METRICS for impl in HOST + ["numpy"]]
HOST_CASES += [("shapely_loop", m, 50) for m in METRICS if m != "center_distance"]
HOST_CASES += [("shapely_vec", m, n) for n in (50, 500) for m in ("bev_iou", "giou_bev", "giou_3d")]


@pytest.mark.parametrize("impl,metric,n", HOST_CASES, ids=[f"{i}-{m}-{n}" for i, m, n in HOST_CASES])
def test_affinity_host(benchmark, impl, metric, n):
    a, b = scene(n)
    benchmark.group = f"pairwise_affinity {metric} {n}x{n}"
    benchmark.extra_info["impl"] = impl
    rounds = _rounds(impl, metric, n)
    if impl == "numpy":
        fn, args = numpy_vectorised, (a, b, metric)
    elif impl == "shapely_loop":
        fn, args = shapely_loop, (a, b, metric)
    elif impl == "shapely_vec":
        fn, args = shapely_vectorised, (a, b, metric)
        rounds = 1 if n == 500 else 3
    else:
        fn, args = (lambda *x: pairwise_affinity(*x, backend=impl)), (a, b, metric)
    result = benchmark.pedantic(fn, args, rounds=rounds, warmup_rounds=1 if rounds > 1 else 0)
    # A benchmark of a wrong answer is worthless.
    if impl in HOST:
        np.testing.assert_array_equal(result, pairwise_affinity(a, b, metric, backend="numba"))
    elif impl.startswith("shapely") or (impl == "numpy" and metric == "center_distance"):
        np.testing.assert_allclose(result, pairwise_affinity(a, b, metric), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- GPU
def torch_vectorised(a, b, metric):
    """The numpy_vectorised above in torch (exact for center_distance, axis-aligned else)."""
    import torch

    if metric == "center_distance":
        return torch.cdist(a[:, :2], b[:, :2])

    def bounds(boxes):
        c, s = torch.cos(boxes[:, 6]).abs(), torch.sin(boxes[:, 6]).abs()
        half = torch.stack([c * boxes[:, 3] + s * boxes[:, 4], s * boxes[:, 3] + c * boxes[:, 4],
                            boxes[:, 5]], 1) / 2
        return boxes[:, :3] - half, boxes[:, :3] + half

    lo_a, hi_a = (x[:, None] for x in bounds(a))
    lo_b, hi_b = (x[None] for x in bounds(b))
    dims = 3 if metric in ("iou_3d", "giou_3d") else 2
    inter = (torch.minimum(hi_a, hi_b) - torch.maximum(lo_a, lo_b)).clamp(min=0)[..., :dims].prod(-1)
    union = (hi_a - lo_a)[..., :dims].prod(-1) + (hi_b - lo_b)[..., :dims].prod(-1) - inter
    iou = inter / union
    if metric not in GIOU:
        return iou
    enclose = (torch.maximum(hi_a, hi_b) - torch.minimum(lo_a, lo_b))[..., :dims].prod(-1)
    return iou - (enclose - union) / enclose


GPU_CASES = [(impl, metric, n) for n in SIZES for metric in METRICS for impl in ("cuda", "cuda_kernel", "torch")]


@requires_cuda
@pytest.mark.parametrize("impl,metric,n", GPU_CASES, ids=[f"gpu-{i}-{m}-{n}" for i, m, n in GPU_CASES])
def test_affinity_gpu(benchmark, impl, metric, n):
    import torch

    from nutrack.ops import _arrays, _backend, box_frames
    from nutrack.ops.affinity import METRICS as CODES

    a_np, b_np = scene(n)
    a, b = torch.from_numpy(a_np).cuda(), torch.from_numpy(b_np).cuda()
    benchmark.group = f"pairwise_affinity {metric} {n}x{n}"
    benchmark.extra_info["impl"] = impl
    if impl == "cuda":
        def run():
            out = pairwise_affinity(a, b, metric)
            synchronize()
            return out
    elif impl == "cuda_kernel":  # the launch alone, on frames made beforehand
        frames_a, frames_b = box_frames(a), box_frames(b)
        out = torch.empty((n, n), dtype=torch.float32, device="cuda")
        stream = _arrays.current_stream(a)

        def run():
            _backend.native.pairwise_affinity_cuda(
                frames_a=frames_a.data_ptr(), na=n, frames_b=frames_b.data_ptr(), nb=n,
                metric=CODES.index(metric), classes_a=0, classes_b=0, fill=-1.0,
                out=out.data_ptr(), device=a.device.index, stream=stream)
            synchronize()
            return out
    else:
        def run():
            out = torch_vectorised(a, b, metric)
            synchronize()
            return out

    result = benchmark.pedantic(run, rounds=20 if n == 2000 else 100, warmup_rounds=3)
    if impl != "torch" or metric == "center_distance":
        reference = pairwise_affinity(a_np, b_np, metric, backend="cpu" if "cpu" in HOST else "numba")
        np.testing.assert_allclose(result.cpu().numpy(), reference, rtol=1e-5, atol=1e-5)
