"""The dispatch contract (nutrack/ops/_launch.py): each op has one table from backend to
launcher; a numba twin takes exactly its C++ launcher's arguments, by the same names in the
same order; a CUDA launcher takes the C++ one's plus `device` and `stream` (the points-in-boxes
launchers take the box count `nb` where the host ones take the box grid). So one call site
serves every backend, and one generic comparison covers them all."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import nutrack.ops
from nutrack.ops import _backend, affinity, points, voxel
from tests._helpers import HOST_BACKENDS, random_boxes

TABLES = {f"{module.__name__.rsplit('.', 1)[1]}.{name}": table
          for module in (points, voxel, affinity) for name, table in vars(module).items()
          if isinstance(table, dict) and set(table) == {"numba", "cpu", "cuda", "cuda_emu"}}
GRID = ["grid_params", "grid_nx", "grid_ny", "cell_start", "cell_boxes"]
needs_native = pytest.mark.skipif(not nutrack.ops.has_cpu(), reason="needs nutrack._C")


def native_parameters(function) -> list:
    """The argument names pybind11 writes in a function's signature line."""
    line = function.__doc__.splitlines()[0]
    return re.findall(r"(\w+): ", line[line.index("(") + 1:line.rindex(")")])


def twin_parameters(twin) -> list:
    return list(inspect.signature(getattr(twin, "py_func", twin)).parameters)


def test_every_op_has_a_table():
    assert len(TABLES) == 10, sorted(TABLES)
    for name, table in TABLES.items():
        assert table["cuda"] == table["cuda_emu"], name


@needs_native
@pytest.mark.parametrize("name", sorted(TABLES))
def test_numba_twin_takes_the_cpu_launchers_arguments(name):
    table = TABLES[name]
    assert twin_parameters(table["numba"]) == native_parameters(getattr(_backend.native, table["cpu"]))


@pytest.mark.skipif(not nutrack.ops.has_cuda(), reason="needs nutrack._C built with CUDA")
@pytest.mark.parametrize("name", sorted(TABLES))
def test_cuda_launcher_takes_the_cpu_ones_plus_device_and_stream(name):
    table = TABLES[name]
    host = native_parameters(getattr(_backend.native, table["cpu"]))
    device = native_parameters(getattr(_backend.native, table["cuda"]))
    assert device[-2:] == ["device", "stream"]
    if set(GRID) <= set(host):  # the CUDA kernels tile over all `nb` boxes instead
        host = [p for p in host if p not in GRID]
        if "nb" not in host:
            host.insert(host.index("frames") + 1, "nb")
    assert device[:-2] == host


def _op_calls(rng):
    """Every public op on one small adversarial input (corners, NaN points to drop, classes)."""
    pts = rng.uniform(-4, 4, (700, 4)).astype(np.float32)
    boxes = random_boxes(rng, 40, extent=4)
    pts[:40, :3] = boxes[:, :3] + boxes[:, 3:6] / 2  # a corner of each box (unrotated)
    cloud = pts.copy()
    cloud[::70, 1] = np.nan
    square = np.array([[[0, 0], [0, 2], [2, 2], [2, 0]]], np.float32)
    classes = rng.integers(0, 3, 40)
    grid = ([0.5, 0.5, 1.0], [-3, -3, -2, 3, 3, 2])
    yield "points_in_boxes", lambda b: nutrack.ops.points_in_boxes(pts, boxes, backend=b)
    for sparse in (False, True):
        yield f"points_in_boxes_all[{sparse}]", lambda b, s=sparse: nutrack.ops.points_in_boxes_all(
            pts, boxes, sparse=s, backend=b)
    yield "points_in_polygons", lambda b: nutrack.ops.points_in_polygons(pts, square, backend=b)
    yield "voxelize", lambda b: tuple(nutrack.ops.voxelize(cloud, *grid, 3, 50, backend=b))
    yield "voxelize_batch", lambda b: tuple(nutrack.ops.voxelize_batch(
        [cloud[:300], cloud[:0], cloud[300:]], *grid, 3, 20, backend=b))
    yield "point_voxel_coors", lambda b: nutrack.ops.point_voxel_coors(cloud, *grid, backend=b)
    for metric in nutrack.ops.AFFINITY_METRICS:
        yield f"pairwise_affinity[{metric}]", lambda b, m=metric: nutrack.ops.pairwise_affinity(
            boxes, boxes[::-1], m, classes, classes[::-1], backend=b)


@pytest.mark.skipif(len(HOST_BACKENDS) < 2, reason="needs nutrack._C (one host backend only)")
def test_one_generic_comparison_covers_every_backend():
    backends = HOST_BACKENDS + (["cuda_emu"] if _backend.emulated is not None else [])
    for name, call in _op_calls(np.random.default_rng(0)):
        results = {b: call(b) for b in backends}
        reference = results[backends[0]]
        for backend, got in results.items():
            for a, e in zip(got if isinstance(got, tuple) else (got,),
                            reference if isinstance(reference, tuple) else (reference,)):
                np.testing.assert_array_equal(a, e, err_msg=f"{name} on {backend}")
