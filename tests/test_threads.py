"""The host kernels' thread policy (csrc/threads.h): decided per call from the work's size,
the CPUs the calling thread may run on now (sched_getaffinity) and OMP_NUM_THREADS; and the
kernels' answers do not depend on how many threads computed them."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from nutrack.ops import _backend, pairwise_affinity, points_in_boxes, points_in_boxes_all, voxelize
from tests._helpers import random_boxes

pytestmark = pytest.mark.skipif(not _backend.has_cpu(), reason="needs the C++ backend")
HAS_AFFINITY = hasattr(os, "sched_setaffinity")


@contextlib.contextmanager
def pinned_to_one_cpu():
    """The calling thread restricted to one of its CPUs for the block (as `taskset -c`)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def host_threads(work: int, per_thread: int) -> int:
    return _backend.native.host_threads(work=work, min_work_per_thread=per_thread)


def test_small_work_stays_on_the_calling_thread():
    assert host_threads(0, 8192) == 1
    assert host_threads(8192 * 2 - 1, 8192) == 1


def test_large_work_uses_the_cpus_it_may_run_on():
    cpus = len(os.sched_getaffinity(0)) if HAS_AFFINITY else os.cpu_count()
    cap = min(cpus, int(os.environ.get("OMP_NUM_THREADS", cpus)))
    assert host_threads(10**9, 8192) == cap
    assert host_threads(8192 * 2, 8192) == min(2, cap)  # at most one thread per 8192 items


@pytest.mark.skipif(not HAS_AFFINITY, reason="no sched_setaffinity on this platform")
def test_affinity_is_read_on_every_call():
    with pinned_to_one_cpu():
        assert host_threads(10**9, 8192) == 1


def test_omp_num_threads_caps_the_team():
    """In a fresh process: the variable as a user sets it before starting Python."""
    code = "import nutrack._C as C; print(C.host_threads(work=10**9, min_work_per_thread=1))"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1"


CGROUP_V1_CPU = "/sys/fs/cgroup/cpu"


@contextlib.contextmanager
def cgroup_with_cpu_quota(cpus: float):
    """A fresh cgroup-v1 cpu group allowed `cpus` CPUs of time (as docker --cpus sets), removed
    after the block; skips where there is none to make (not root, cgroup v2, no cpu mount)."""
    root = CGROUP_V1_CPU
    if not (os.path.isfile(os.path.join(root, "cpu.cfs_quota_us")) and os.access(root, os.W_OK)):
        pytest.skip("needs a writable cgroup-v1 cpu hierarchy (root)")
    group = os.path.join(root, f"nutrack-test-{os.getpid()}")
    os.mkdir(group)
    try:
        with open(os.path.join(group, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(group, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(int(cpus * 100000)))
        yield group
    finally:
        os.rmdir(group)


@pytest.mark.parametrize("quota, expected", [(1.0, 1), (1.5, 2)])
def test_a_cgroup_cpu_quota_caps_the_threads(quota, expected):
    """A container limited to `quota` CPUs (rounded up) gets no more threads than that, however
    many CPUs its affinity mask shows."""
    cpus = len(os.sched_getaffinity(0)) if HAS_AFFINITY else os.cpu_count()
    if cpus < 2:
        pytest.skip("needs two CPUs to show the cap")
    with cgroup_with_cpu_quota(quota) as group:
        procs = os.path.join(group, "cgroup.procs")
        code = (f"import os; open({procs!r}, 'w').write(str(os.getpid())); import nutrack._C as C; "
                "print(C.host_threads(work=10**9, min_work_per_thread=1))")
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "NUTRACK_THREADS")}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)
    assert int(out.stdout) == min(expected, cpus)


def test_nutrack_threads_forces_the_count(monkeypatch):
    monkeypatch.setenv("NUTRACK_THREADS", "3")
    assert host_threads(1, 8192) == 3  # whatever the size
    monkeypatch.setenv("NUTRACK_THREADS", "1")
    assert host_threads(10**9, 1) == 1


def _every_op(points, boxes):
    vox = voxelize(points, [0.2, 0.2, 8.0], [-40, -40, -5, 40, 40, 3], max_points=8,
                   max_voxels=60_000, backend="cpu")
    return [points_in_boxes(points, boxes, backend="cpu"),
            points_in_boxes_all(points, boxes, sparse=True, backend="cpu"),
            pairwise_affinity(boxes, boxes, metric="giou_bev", backend="cpu"),
            vox.voxels, vox.coors, vox.num_points]


@pytest.mark.parametrize("n", [5_000, 200_000])
def test_answers_do_not_depend_on_the_threads(monkeypatch, n):
    """Each op with 1, 2 and 3 threads (NUTRACK_THREADS), small and large problems: the
    chunks, not the threads, decide where each result goes."""
    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 300, extent=40)
    points = rng.uniform(-40, 40, (n, 5)).astype(np.float32)
    points[:, 2] = rng.uniform(-3, 3, len(points))
    monkeypatch.setenv("NUTRACK_THREADS", "1")
    one = _every_op(points, boxes)
    for threads in ("2", "3"):
        monkeypatch.setenv("NUTRACK_THREADS", threads)
        for a, b in zip(one, _every_op(points, boxes)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not HAS_AFFINITY or len(os.sched_getaffinity(0)) < 2,
                    reason="needs sched_setaffinity and two CPUs")
def test_pinned_to_one_cpu_gives_the_same_answers():
    rng = np.random.default_rng(8)
    boxes = random_boxes(rng, 300, extent=40)
    points = rng.uniform(-40, 40, (200_000, 5)).astype(np.float32)
    everywhere = _every_op(points, boxes)
    with pinned_to_one_cpu():
        pinned = _every_op(points, boxes)
    for a, b in zip(everywhere, pinned):
        np.testing.assert_array_equal(a, b)
