"""Box conversion against the devkit's Box, transforms, and the class mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import transform_matrix as devkit_transform_matrix
from pyquaternion import Quaternion

from nutrack.data import boxes as B
from nutrack.data.classes import (
    CATEGORY_TO_TRACKING,
    CLASS_TO_ID,
    TRACKING_CLASSES,
    category_to_class,
    class_id,
    class_name,
)


def corners_from_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N, 8, 3) corners computed straight from the nutrack convention."""
    out = []
    for x, y, z, dx, dy, dz, yaw in boxes.astype(np.float64):
        c, s = math.cos(yaw), math.sin(yaw)
        pts = []
        for sx in (-1, 1):
            for sy in (-1, 1):
                for sz in (-1, 1):
                    lx, ly, lz = sx * dx / 2, sy * dy / 2, sz * dz / 2
                    pts.append((x + c * lx - s * ly, y + s * lx + c * ly, z + lz))
        out.append(sorted(pts))
    return np.array(out)


def corners_from_devkit(translation, size, rotation) -> np.ndarray:
    out = []
    for t, sz, r in zip(translation, size, rotation):
        box = Box(list(t), list(sz), Quaternion(list(r)))
        out.append(sorted(map(tuple, box.corners().T)))
    return np.array(out)


def random_boxes(rng, n):
    b = np.empty((n, 7))
    b[:, 0:2] = rng.uniform(-2000, 2000, size=(n, 2))
    b[:, 2] = rng.uniform(-5, 5, n)
    b[:, 3:6] = rng.uniform(0.2, 15, size=(n, 3))
    b[:, 6] = rng.uniform(-math.pi, math.pi, n)
    return b.astype(np.float32)


def test_round_trip_against_devkit_box():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 200)
    t, s, r = B.boxes_to_nuscenes(boxes)
    # nuScenes size is (w, l, h): w across the heading = our dy, l along it = our dx
    np.testing.assert_array_equal(s[:, 0], boxes[:, 4].astype(np.float64))
    np.testing.assert_array_equal(s[:, 1], boxes[:, 3].astype(np.float64))
    np.testing.assert_allclose(corners_from_devkit(t, s, r), corners_from_boxes(boxes), atol=2e-3)
    back = B.boxes_from_nuscenes(t, s, r)
    assert back.dtype == np.float32 and back.shape == (200, 7)
    np.testing.assert_array_equal(back[:, :6], boxes[:, :6])
    np.testing.assert_allclose(B.wrap_angle(back[:, 6].astype(np.float64) - boxes[:, 6]), 0, atol=1e-6)


def test_from_devkit_box_orientation_and_wlh():
    # a car 4.5 m long, 1.9 m wide, heading 30 deg: the devkit's orientation_matrix @ [1,0,0]
    # is the heading, and its wlh is (1.9, 4.5, 1.6)
    box = Box([10.0, -3.0, 1.0], [1.9, 4.5, 1.6], Quaternion(axis=[0, 0, 1], angle=math.radians(30)))
    ours = B.boxes_from_nuscenes([box.center], [box.wlh], [box.orientation.elements])[0]
    np.testing.assert_allclose(ours[:6], [10.0, -3.0, 1.0, 4.5, 1.9, 1.6], rtol=1e-6)
    assert ours[6] == pytest.approx(math.radians(30), abs=1e-6)
    heading = box.orientation.rotation_matrix @ np.array([1.0, 0, 0])
    assert math.atan2(heading[1], heading[0]) == pytest.approx(float(ours[6]), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(lambda q: sum(x * x for x in q) > 1e-3))
def test_yaw_matches_devkit_quaternion_yaw(q):
    from nuscenes.eval.common.utils import quaternion_yaw

    quat = Quaternion(q).normalised
    heading = quat.rotation_matrix @ np.array([1.0, 0.0, 0.0])
    assume(math.hypot(heading[0], heading[1]) > 1e-6)  # x axis pointing straight up/down: no yaw
    expected = quaternion_yaw(quat)
    got = B.yaw_from_quaternion(np.array(q))
    assert B.wrap_angle(got - expected) == pytest.approx(0.0, abs=1e-9)


def test_yaw_quaternion_round_trip():
    yaw = np.linspace(-math.pi, math.pi, 101)
    q = B.quaternion_from_yaw(yaw)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0)
    np.testing.assert_allclose(B.wrap_angle(B.yaw_from_quaternion(q) - yaw), 0, atol=1e-12)


def test_conversion_errors():
    with pytest.raises(ValueError, match="translation"):
        B.boxes_from_nuscenes([[0, 0]], [[1, 1, 1]], [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="rotation"):
        B.boxes_from_nuscenes([[0, 0, 0]], [[1, 1, 1]], [[np.nan, 0, 0, 0]])
    with pytest.raises(ValueError, match="disagree"):
        B.boxes_from_nuscenes([[0, 0, 0]] * 2, [[1, 1, 1]], [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="boxes"):
        B.boxes_to_nuscenes(np.zeros((3, 6)))
    assert B.boxes_from_nuscenes(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4))).shape == (0, 7)
    assert B.boxes_from_records([]).shape == (0, 7)


def test_transform_matrix_matches_devkit():
    rng = np.random.default_rng(1)
    for _ in range(10):
        t = rng.normal(size=3) * 100
        q = Quaternion(rng.normal(size=4)).normalised
        for inv in (False, True):
            np.testing.assert_allclose(B.transform_matrix(t, q.elements, inverse=inv),
                                       devkit_transform_matrix(t, q, inverse=inv), atol=1e-9)


def test_transform_boxes_moves_corners_rigidly():
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 50)
    boxes[:, :2] /= 20
    m = B.transform_matrix([3.0, -7.0, 1.5], B.quaternion_from_yaw(0.7))
    vel = rng.normal(size=(50, 2)).astype(np.float32)
    moved, vmoved = B.transform_boxes(boxes, m, vel)
    c0 = corners_from_boxes(boxes).reshape(-1, 3)
    c1 = B.transform_points(c0, m)
    np.testing.assert_allclose(np.sort(c1.reshape(50, 8, 3), axis=1),
                               np.sort(corners_from_boxes(moved), axis=1), atol=1e-3)
    np.testing.assert_allclose(vmoved, vel @ m[:2, :2].T, atol=1e-5)
    back, vback = B.transform_boxes(moved, np.linalg.inv(m), vmoved)
    np.testing.assert_allclose(back[:, :6], boxes[:, :6], atol=1e-4)
    np.testing.assert_allclose(vback, vel, atol=1e-5)


def test_classes_match_the_devkit():
    from nuscenes.eval.tracking.utils import category_to_tracking_name

    from nutrack.data.synth import _CATEGORIES

    for cat, _ in _CATEGORIES:
        name = category_to_tracking_name(cat)
        assert CATEGORY_TO_TRACKING.get(cat) == name
        assert category_to_class(cat) == (-1 if name is None else TRACKING_CLASSES.index(name))
    assert TRACKING_CLASSES == ("car", "truck", "bus", "trailer", "pedestrian", "motorcycle", "bicycle")
    assert [class_id(n) for n in TRACKING_CLASSES] == list(range(7))
    assert class_name(CLASS_TO_ID["bus"]) == "bus"
    with pytest.raises(ValueError, match="unknown tracking class"):
        class_id("barrier")
    with pytest.raises(ValueError, match="out of range"):
        class_name(7)
