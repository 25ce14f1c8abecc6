"""voxelize: each backend beside a vectorised numpy version (np.unique based, same semantics)
and, on the GPU, a vectorised torch version, at nuScenes sizes: 34k points (one LIDAR_TOP
sweep) and 300k (ten sweeps), 0.1 m and 0.075 m voxels, range +-54 m in x/y, -5..3 m in z,
0.2 m in z, max_points 10, max_voxels 120000 (CenterPoint's nuScenes settings)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import requires_cuda, synchronize
from nutrack.ops import available_backends, voxelize

PC_RANGE = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
MAX_POINTS, MAX_VOXELS = 10, 120_000
CASES = [(34_000, 0.1), (34_000, 0.075), (300_000, 0.1), (300_000, 0.075)]
IDS = [f"{n // 1000}k-{voxel}m" for n, voxel in CASES]
HOST = [b for b in available_backends() if b != "cuda"]


def lidar_cloud(n: int, seed: int = 0) -> np.ndarray:
    """nuScenes-like: points around the ego out to ~60 m (density falling with range, a few
    percent beyond +-54 m), 70 % on the ground, five columns (x, y, z, intensity, time lag),
    in random order (not scan order, which would favour caches)."""
    rng = np.random.default_rng(seed)
    azimuth = rng.uniform(0, 2 * np.pi, n)
    radius = np.exp(rng.uniform(np.log(1.5), np.log(60.0), n))
    z = np.where(rng.random(n) < 0.7, rng.normal(-1.8, 0.05, n), rng.uniform(-1.8, 2.5, n))
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), z,
                     rng.uniform(0, 255, n), rng.uniform(0, 0.5, n)], axis=1).astype(np.float32)


def voxel_size(voxel: float) -> list:
    return [voxel, voxel, 0.2]


def numpy_vectorised(points: np.ndarray, size: list, pc_range: list, max_points: int,
                     max_voxels: int):
    """The obvious vectorised numpy version (np.unique on linear cell keys, a stable argsort
    for the order inside each voxel), with exactly nutrack's semantics."""
    size = np.asarray(size, np.float32)
    bounds = np.asarray(pc_range, np.float32)
    lo = bounds[:3]
    grid = np.rint((bounds[3:] - lo) / size).astype(np.int64)
    with np.errstate(invalid="ignore"):
        q = (points[:, :3] - lo) / size
        kept = np.all((q >= 0) & (q < grid), axis=1)
    index = np.flatnonzero(kept)
    cell = q[index].astype(np.int64)
    keys = (cell[:, 2] * grid[1] + cell[:, 1]) * grid[0] + cell[:, 0]
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(unique), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(unique))
    voxel_of = rank[inverse]
    order = np.argsort(voxel_of, kind="stable")
    sorted_voxel = voxel_of[order]
    counts = np.bincount(voxel_of, minlength=len(unique))
    starts = np.cumsum(counts) - counts
    slot = np.arange(len(order)) - starts[sorted_voxel]
    take = (slot < max_points) & (sorted_voxel < max_voxels)
    num_voxels = min(len(unique), max_voxels)
    voxels = np.zeros((num_voxels, max_points, points.shape[1]), np.float32)
    voxels[sorted_voxel[take], slot[take]] = points[index[order[take]]]
    coors = cell[np.sort(first)[:num_voxels]][:, ::-1].astype(np.int32)
    num_points = np.minimum(counts[:num_voxels], max_points).astype(np.int32)
    return voxels, coors, num_points


def torch_vectorised(points, size: list, pc_range: list, max_points: int, max_voxels: int):
    """The same in torch (torch.unique, scatter_reduce amin for first appearance, a stable
    sort), for the GPU."""
    import torch

    device = points.device
    size_t = torch.tensor(size, dtype=torch.float32, device=device)
    bounds = torch.tensor(pc_range, dtype=torch.float32, device=device)
    lo = bounds[:3]
    grid = torch.round((bounds[3:] - lo) / size_t).long()
    q = (points[:, :3] - lo) / size_t
    kept = ((q >= 0) & (q < grid)).all(dim=1)
    index = torch.nonzero(kept).squeeze(1)
    cell = q[index].long()
    keys = (cell[:, 2] * grid[1] + cell[:, 1]) * grid[0] + cell[:, 0]
    unique, inverse = torch.unique(keys, return_inverse=True)
    count = len(unique)
    positions = torch.arange(len(keys), device=device)
    first = torch.full((count,), len(keys), dtype=torch.long, device=device)
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    rank = torch.empty_like(first)
    rank[torch.argsort(first)] = torch.arange(count, device=device)
    voxel_of = rank[inverse]
    sorted_voxel, order = torch.sort(voxel_of, stable=True)
    counts = torch.bincount(voxel_of, minlength=count)
    starts = torch.cumsum(counts, 0) - counts
    slot = positions - starts[sorted_voxel]
    take = (slot < max_points) & (sorted_voxel < max_voxels)
    num_voxels = min(count, max_voxels)
    voxels = torch.zeros((num_voxels, max_points, points.shape[1]), dtype=torch.float32, device=device)
    voxels[sorted_voxel[take], slot[take]] = points[index[order[take]]]
    coors = cell[torch.sort(first).values[:num_voxels]].flip(1).int()
    num_points = torch.clamp(counts[:num_voxels], max=max_points).int()
    return voxels, coors, num_points


def _check(result, points: np.ndarray, voxel: float) -> None:
    """A benchmark of a wrong answer is worthless: every implementation equals numba exactly."""
    expected = voxelize(points, voxel_size(voxel), PC_RANGE, MAX_POINTS, MAX_VOXELS, backend="numba")
    for got, want in zip(result, expected):
        got = got.cpu().numpy() if hasattr(got, "cpu") else np.asarray(got)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n,voxel", CASES, ids=IDS)
@pytest.mark.parametrize("impl", HOST + ["numpy"])
def test_voxelize_host(benchmark, impl, n, voxel):
    points = lidar_cloud(n)
    benchmark.group = f"voxelize {n // 1000}k points, {voxel} m voxels"
    benchmark.extra_info["impl"] = impl
    args = (points, voxel_size(voxel), PC_RANGE, MAX_POINTS, MAX_VOXELS)
    if impl == "numpy":
        result = benchmark.pedantic(numpy_vectorised, args, rounds=3, warmup_rounds=1)
    else:
        rounds = 30 if n < 100_000 else 15
        result = benchmark.pedantic(voxelize, args, {"backend": impl}, rounds=rounds, warmup_rounds=2)
    _check(result, points, voxel)


@requires_cuda
@pytest.mark.parametrize("n,voxel", CASES, ids=IDS)
@pytest.mark.parametrize("impl", ["cuda", "torch"])
def test_voxelize_gpu(benchmark, impl, n, voxel):
    import torch

    points_np = lidar_cloud(n)
    points = torch.from_numpy(points_np).cuda()
    benchmark.group = f"voxelize {n // 1000}k points, {voxel} m voxels"
    benchmark.extra_info["impl"] = impl
    args = (points, voxel_size(voxel), PC_RANGE, MAX_POINTS, MAX_VOXELS)
    fn = voxelize if impl == "cuda" else torch_vectorised

    def run():
        out = fn(*args)
        synchronize()
        return out

    result = benchmark.pedantic(run, rounds=50, warmup_rounds=5)
    _check(result, points_np, voxel)
