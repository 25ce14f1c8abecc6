"""Arguments of the points and voxel ops that used to pass silently or fail with a raw error
(issue 10, reliability 8), and VoxelizeResult's tuple methods (house 8)."""
from __future__ import annotations

import numpy as np
import pytest

from nutrack.ops import (VoxelizeResult, _arrays, points_in_boxes_all, points_in_polygons, voxelize,
                         voxelize_batch)
from tests._helpers import HOST_BACKENDS, random_boxes

POINTS = np.random.default_rng(0).uniform(-3, 3, (50, 4)).astype(np.float32)
BOXES = random_boxes(np.random.default_rng(1), 5, extent=3)
SQUARE = np.array([[[-1, -1], [-1, 1], [1, 1], [1, -1]]], np.float32)  # clockwise


@pytest.mark.parametrize("sparse", ["yes", "no", 1, 0, np.array([True]), 1.0])
def test_sparse_must_be_a_bool(sparse):
    with pytest.raises(ValueError, match=r"sparse must be True or False or None, got"):
        points_in_boxes_all(POINTS, BOXES, sparse=sparse)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_sparse_accepts_bools_and_none(backend):
    dense = points_in_boxes_all(POINTS, BOXES, sparse=np.bool_(False), backend=backend)
    pairs = points_in_boxes_all(POINTS, BOXES, sparse=True, backend=backend)
    np.testing.assert_array_equal(np.argwhere(dense), pairs)
    np.testing.assert_array_equal(points_in_boxes_all(POINTS, BOXES, sparse=None, backend=backend), dense)


@pytest.mark.parametrize("clockwise", ["no", "yes", 0, None, 1.0])
def test_clockwise_must_be_a_bool(clockwise):
    with pytest.raises(ValueError, match=r"clockwise must be True or False, got"):
        points_in_polygons(POINTS, SQUARE, clockwise=clockwise)


def test_clockwise_accepts_numpy_bools():
    inside = points_in_polygons(POINTS, SQUARE, clockwise=np.bool_(True))
    np.testing.assert_array_equal(points_in_polygons(POINTS, SQUARE[:, ::-1], clockwise=False), inside)
    assert inside.any()


def test_max_points_past_memory_is_a_clear_error(monkeypatch):
    """Before the (V, max_points, C) output is allocated, not a MemoryError from it."""
    with pytest.raises(ValueError, match=r"max_points=1000000000 needs a \(\d+, 1000000000, 4\) "
                                         r"float32 output of .* GiB, more than the .* GiB free"):
        voxelize(POINTS, [0.5, 0.5, 0.5], [-3, -3, -3, 3, 3, 3], max_points=10**9)
    with pytest.raises(ValueError, match="max_points=1000000000 needs"):
        voxelize_batch([POINTS, POINTS], [0.5, 0.5, 0.5], [-3, -3, -3, 3, 3, 3], max_points=10**9)
    # The check compares with what is free: with 1 KiB free, even a modest cap is refused.
    monkeypatch.setattr(_arrays, "free_bytes", lambda like: 1024)
    with pytest.raises(ValueError, match="max_points=64 needs"):
        voxelize(POINTS, [0.5, 0.5, 0.5], [-3, -3, -3, 3, 3, 3], max_points=64)
    monkeypatch.setattr(_arrays, "free_bytes", lambda like: None)  # unknown: no check
    assert len(voxelize(POINTS, [0.5, 0.5, 0.5], [-3, -3, -3, 3, 3, 3], max_points=64).voxels)


def test_free_bytes_of_host_memory():
    free = _arrays.free_bytes(POINTS)
    assert free is None or free > 0


def test_voxelize_result_replace_and_make_keep_num_dropped():
    points = np.array([[0.5, 0.5, 0.5], [100.0, 0, 0], [np.nan, 0, 0]], np.float32)
    result = voxelize(points, [1, 1, 1], [0, 0, 0, 4, 4, 4], max_points=2)
    assert result.num_dropped == 2
    replaced = result._replace(num_points=result.num_points * 2)
    assert isinstance(replaced, VoxelizeResult) and replaced.num_dropped == 2
    np.testing.assert_array_equal(replaced.num_points, result.num_points * 2)
    assert result._replace(num_dropped=7).num_dropped == 7
    assert VoxelizeResult._make(result).num_dropped == 0
    assert VoxelizeResult._make(result, num_dropped=3).num_dropped == 3
    voxels, coors, num_points = replaced  # still a 3-tuple
    assert voxels is result.voxels and coors is result.coors
