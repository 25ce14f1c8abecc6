"""Speed with and without a competing process (issue 12, item 1), and the memory floor of the
host kernels (item 6).

    pytest benchmarks/test_bench_load.py --benchmark

Each case runs twice: ``idle``, and ``loaded`` while a process this benchmark starts itself
spins on the CPU (``python -c 'while True: pass'``: on a 2-core machine it takes one core
away). The summary prints, per case, each backend's loaded / idle ratio (target: at most
1.5). ``memory floor`` is the time to merely read the op's inputs and write an output of the
op's size (numpy copies into preallocated arrays): the host kernels are reported as a
multiple of it.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.test_bench_points import scene
from benchmarks.test_bench_tracking import make_scene, run_all
from benchmarks.test_bench_voxelize import MAX_POINTS, MAX_VOXELS, PC_RANGE, lidar_cloud, voxel_size
from nutrack.ops import available_backends, pairwise_affinity, points_in_boxes, voxelize
from nutrack.tracking import make_tracker

HOST = [b for b in available_backends() if b != "cuda"]
STATES = ["idle", "loaded"]


@contextlib.contextmanager
def competing_load(state: str):
    """One process spinning on a core for the duration (nothing when idle)."""
    if state == "idle":
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _measure(benchmark, group, impl, state, fn, args=(), kwargs=None, rounds=7):
    benchmark.group = group
    benchmark.extra_info["impl"] = f"{impl} {state}"
    with competing_load(state):
        return benchmark.pedantic(fn, args, kwargs or {}, rounds=rounds, warmup_rounds=1)


def _copy_floor(inputs, outputs):
    """Read every input once and write every output once."""
    def run():
        for src, dst in zip(inputs, outputs):
            np.copyto(dst, src, casting="unsafe")
    return run


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("impl", HOST + ["memory floor"])
def test_points_in_boxes_load(benchmark, impl, state):
    points, boxes = scene(300_000, 500)
    group = "points_in_boxes 300k x 500 (load)"
    if impl == "memory floor":
        out = np.empty(len(points), np.int32)
        fn = _copy_floor([points, boxes, points[:, 0]], [np.empty_like(points), np.empty_like(boxes), out])
        _measure(benchmark, group, impl, state, fn, rounds=15)
        return
    _measure(benchmark, group, impl, state, points_in_boxes, (points, boxes), {"backend": impl})


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("impl", HOST + ["memory floor"])
def test_voxelize_load(benchmark, impl, state):
    points = lidar_cloud(300_000)
    group = "voxelize 300k, 0.1 m (load)"
    if impl == "memory floor":
        # the outputs at their full size: voxels (V, max_points, C), coordinates (V, 3), counts (V,)
        voxels, _, _ = voxelize(points, voxel_size(0.1), PC_RANGE, MAX_POINTS, MAX_VOXELS, backend="numba")
        v = np.zeros((len(voxels), MAX_POINTS, points.shape[1]), np.float32)
        fn = _copy_floor([points, v, v[:, 0, :3], v[:, 0, 0]],
                         [np.empty_like(points), np.empty_like(v), np.empty((len(v), 3), np.int32),
                          np.empty(len(v), np.int32)])
        _measure(benchmark, group, impl, state, fn, rounds=15)
        return
    args = (points, voxel_size(0.1), PC_RANGE, MAX_POINTS, MAX_VOXELS)
    _measure(benchmark, group, impl, state, voxelize, args, {"backend": impl})


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("impl", HOST)
def test_affinity_load(benchmark, impl, state):
    _, a = scene(1, 500, seed=1)
    _, b = scene(1, 500, seed=2)
    _measure(benchmark, "pairwise_affinity giou_bev 500 x 500 (load)", impl, state, pairwise_affinity,
             (a, b, "giou_bev"), {"backend": impl})


@pytest.fixture(scope="module")
def twenty_scenes():
    rng = np.random.default_rng(2024)
    return [make_scene(rng) for _ in range(20)]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("method", ["filter", "centerpoint"])
def test_tracker_load(benchmark, twenty_scenes, method, state):
    tracker = make_tracker(method)
    _measure(benchmark, "trackers, 20 scenes x 40 frames (load)", method, state, run_all,
             (tracker, twenty_scenes), rounds=3)
