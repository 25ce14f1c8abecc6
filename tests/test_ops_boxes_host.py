"""The numba host path of box_frames / validate_boxes against the array-operation reference."""
import math

import numpy as np
import pytest

from nutrack.ops import _boxes


def _random_boxes(rng, n):
    b = np.empty((n, 7), np.float32)
    b[:, :3] = rng.normal(0, [1e3, 1e3, 5], (n, 3)) * (10.0 ** rng.integers(-3, 6))
    b[:, 3:6] = rng.uniform(0.01, 20, (n, 3)) * (10.0 ** rng.integers(-6, 6))
    yaw = rng.uniform(-20, 20, n)
    turned = rng.random(n) < 0.3  # quarter turns, snapped within 4 turns, not beyond
    yaw[turned] = rng.integers(-10, 11, turned.sum()) * (math.pi / 2)
    b[:, 6] = yaw
    b[rng.random(n) < 0.05, 6] = -0.0
    return b


def test_host_box_frames_match_array_reference_bit_for_bit():
    rng = np.random.default_rng(1)
    for _ in range(100):
        b = _random_boxes(rng, int(rng.integers(1, 200)))
        assert _boxes.box_frames(b).tobytes() == _boxes._array_box_frames(b).tobytes()


def test_host_box_frames_quarter_turn_neighbours():
    # the float32 nearest each quarter turn snaps; its float32 neighbours do not
    turns = np.arange(-6, 7) * (math.pi / 2)
    near = np.float32(turns)
    yaws = np.concatenate([near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))])
    b = np.tile(np.array([1, 2, 3, 4, 2, 1.5, 0], np.float32), (len(yaws), 1))
    b[:, 6] = yaws
    host = _boxes.box_frames(b)
    assert host.tobytes() == _boxes._array_box_frames(b).tobytes()
    # the reference's own check: a snapped quarter turn has an exact 0 / +-1
    snapped = host[:len(near)][np.abs(np.round(turns / (math.pi / 2))) <= 4]
    assert set(np.abs(snapped[:, _boxes.COS]).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("col, value, message", [
    (0, np.nan, "NaN"), (4, 0.0, "> 0"), (5, 2e9, "sizes"), (1, 2e9, "centres"), (6, np.inf, "NaN")])
def test_validate_boxes_host_path_still_raises(col, value, message):
    b = _random_boxes(np.random.default_rng(2), 5)
    b[:, 3:6] = 1.0
    b[:, :3] = 0.0
    b[3, col] = value
    with pytest.raises(ValueError, match=message):
        _boxes.validate_boxes(b)
    assert not _boxes._host_boxes_valid(b, _boxes._F32_MAX_COORDINATE, _boxes._F32_MIN_SIZE, _boxes._F32_MAX_SIZE)
    b[3, col] = 0.5
    assert _boxes.validate_boxes(b) is not None


def test_validate_boxes_bounds_as_numpy_compares_them():
    # the float32 rounding of the bounds: a size equal to float32(MIN_SIZE) passes both
    b = np.tile(np.array([0, 0, 0, 1, 1, 1, 0], np.float32), (2, 1))
    b[0, 3] = np.float32(_boxes.MIN_SIZE)
    b[1, 0] = np.float32(_boxes.MAX_COORDINATE)
    assert _boxes._host_boxes_valid(b, _boxes._F32_MAX_COORDINATE, _boxes._F32_MIN_SIZE, _boxes._F32_MAX_SIZE)
    ref = bool(((b[:, 3:6] >= _boxes.MIN_SIZE) & (b[:, 3:6] <= _boxes.MAX_SIZE)).all()
               and (abs(b[:, 0:3]) <= _boxes.MAX_COORDINATE).all())
    assert ref
