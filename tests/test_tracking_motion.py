"""Motion models: Kalman CV and CTRA (EKF), batched."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nutrack.tracking import FilterParams
from nutrack.tracking.motion import (CTRA, CV, MEASUREMENT, MODELS, STATE_DIM, MotionModel, MotionTable, init_states,
                                     measurements, predict, state_boxes, update)
from nutrack.tracking.params import MOTION_MODELS

TABLE = MotionTable(["cv", "ctra"], [0.5, 0.5], [1.0, 1.0], [0.3, 0.3], [2.0, 2.0], [0.5, 0.5], [1.0, 1.0])


def meas(x, y, yaw, vx, vy):
    return np.array([[x, y, yaw, vx, vy]], float)


def test_cv_predicts_constant_velocity():
    x, P = init_states(meas(1.0, 2.0, 0.3, 3.0, -1.0), np.array([CV]), TABLE)
    yaw = np.array([0.3])
    P0 = P.copy()
    predict(x, P, yaw, np.array([CV]), TABLE, 0.5)
    assert x[0, :4] == pytest.approx([2.5, 1.5, 3.0, -1.0])
    assert yaw[0] == 0.3
    assert np.all(np.diag(P[0])[:4] > np.diag(P0[0])[:4])


def test_ctra_initialises_speed_along_heading_and_goes_straight():
    yaw0 = 0.7
    v = 5.0
    x, P = init_states(meas(0, 0, yaw0, v * math.cos(yaw0), v * math.sin(yaw0)), np.array([CTRA]), TABLE)
    assert x[0] == pytest.approx([0, 0, yaw0, v, 0, 0])
    yaw = np.array([yaw0])
    predict(x, P, yaw, np.array([CTRA]), TABLE, 2.0)
    assert x[0, :2] == pytest.approx([10 * math.cos(yaw0), 10 * math.sin(yaw0)])
    assert yaw[0] == pytest.approx(yaw0)


def test_ctra_acceleration_and_turn():
    x = np.array([[0.0, 0.0, 0.0, 4.0, 1.0, 0.0]])
    P = np.eye(6)[None].copy()
    predict(x, P, np.zeros(1), np.array([CTRA]), TABLE, 2.0)
    assert x[0, 0] == pytest.approx(4 * 2 + 0.5 * 1 * 4)  # v t + a t^2 / 2
    assert x[0, 3] == pytest.approx(6.0)
    # constant turn on a circle: radius v / w; many small midpoint steps stay on it
    r, v = 20.0, 8.0
    x = np.array([[r, 0.0, math.pi / 2, v, 0.0, v / r]])
    P = np.eye(6)[None].copy()
    for _ in range(40):
        predict(x, P, np.zeros(1), np.array([CTRA]), TABLE, 0.5)
    assert math.hypot(x[0, 0], x[0, 1]) == pytest.approx(r, abs=0.05)
    assert np.allclose(P[0], P[0].T)


@pytest.mark.parametrize("model", [CV, CTRA])
def test_update_moves_towards_measurement_and_shrinks_covariance(model):
    x, P = init_states(meas(0, 0, 0.0, 2.0, 0.0), np.array([model]), TABLE)
    yaw = np.array([0.0])
    predict(x, P, yaw, np.array([model]), TABLE, 0.5)
    before = x.copy()
    tr0 = np.trace(P[0])
    update(x, P, yaw, np.array([model]), TABLE, np.array([0]), meas(2.0, 0.5, 0.0, 2.0, 0.0))
    assert before[0, 0] < x[0, 0] < 2.0 and 0.0 < x[0, 1] < 0.5
    assert np.trace(P[0]) < tr0
    assert np.allclose(P[0], P[0].T)
    assert np.all(np.linalg.eigvalsh(P[0]) > -1e-9)


def test_ctra_heading_flip_is_the_same_measurement():
    outs = []
    for flip in (0.0, math.pi):
        x, P = init_states(meas(0, 0, 0.2, 5.0, 0.5), np.array([CTRA]), TABLE)
        yaw = np.array([0.2])
        predict(x, P, yaw, np.array([CTRA]), TABLE, 0.5)
        update(x, P, yaw, np.array([CTRA]), TABLE, np.array([0]), meas(2.5, 0.3, 0.25 + flip, 5.0, 0.6))
        outs.append(x.copy())
    assert np.allclose(outs[0], outs[1])


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(0)
    k = 20
    cls = rng.integers(0, 2, k)
    m = np.column_stack([rng.normal(0, 10, (k, 2)), rng.uniform(-3, 3, k), rng.normal(0, 3, (k, 2))])
    x, P = init_states(m, cls, TABLE)
    yaw = m[:, 2].copy()
    xs = [init_states(m[i:i + 1], cls[i:i + 1], TABLE) for i in range(k)]
    predict(x, P, yaw, cls, TABLE, 0.5)
    upd = np.arange(0, k, 2)
    m2 = m[upd] + rng.normal(0, 0.3, (len(upd), 5))
    update(x, P, yaw, cls, TABLE, upd, m2)
    for i, (xi, Pi) in enumerate(xs):
        yi = m[i:i + 1, 2].copy()
        predict(xi, Pi, yi, cls[i:i + 1], TABLE, 0.5)
        if i % 2 == 0:
            update(xi, Pi, yi, cls[i:i + 1], TABLE, np.array([0]), m2[i // 2:i // 2 + 1])
        assert np.allclose(xi[0], x[i]) and np.allclose(Pi[0], P[i])


def test_state_boxes():
    x = np.array([[1.0, 2.0, 3.0, 4.0, 0, 0], [5.0, 6.0, 0.0, 2.0, 0, 0]])
    boxes, vel = state_boxes(x, np.array([0.1, 0.0]), np.array([0.5, 0.7]), np.ones((2, 3)), np.array([CV, CTRA]), TABLE)
    assert boxes.dtype == np.float32 and boxes[0].tolist() == pytest.approx([1, 2, .5, 1, 1, 1, .1])
    assert np.allclose(vel, [[3, 4], [2, 0]])


def test_table_from_params():
    t = MotionTable.from_params(FilterParams())
    assert t.table.shape == (7, 7)
    assert [m.name for m in t.models] == ["cv", "ctra"]
    cv_only = MotionTable.from_params(FilterParams(motion_model=("cv",) * 7))
    assert cv_only.models == (MODELS[CV],)  # a frame runs only the models some class uses


def test_every_model_follows_the_interface():
    for code, model in enumerate(MODELS):
        assert isinstance(model, MotionModel) and model.code == code
        assert model.columns[:2] == ("x", "y") and len(model.columns) <= STATE_DIM
    assert {m.name for m in MODELS} == set(MOTION_MODELS)  # the names FilterParams accepts
    with pytest.raises(ValueError, match="unknown motion model 'cvv'"):
        MotionTable(["cvv"], [0.5], [1.0], [0.3], [2.0], [0.5], [1.0])


def test_named_columns_hold_what_they_name():
    x, _ = init_states(meas(1.0, 2.0, 0.5, 3.0, 4.0), np.array([CV]), TABLE)
    assert dict(zip(MODELS[CV].columns, x[0].tolist())) == {"x": 1.0, "y": 2.0, "vx": 3.0, "vy": 4.0}
    x, _ = init_states(meas(1.0, 2.0, 0.0, 3.0, 0.0), np.array([CTRA]), TABLE)
    assert dict(zip(MODELS[CTRA].columns, x[0].tolist())) == {"x": 1.0, "y": 2.0, "yaw": 0.0, "v": 3.0,
                                                              "a": 0.0, "w": 0.0}


def test_each_model_touches_only_its_own_rows():
    rng = np.random.default_rng(1)
    cls = np.array([CV, CTRA, CV, CTRA, CTRA])
    m = np.column_stack([rng.normal(0, 10, (5, 2)), rng.uniform(-3, 3, 5), rng.normal(0, 3, (5, 2))])
    x0, P0 = init_states(m, cls, TABLE)
    yaw0 = m[:, 2].copy()
    for model in MODELS:
        x, P, yaw = x0.copy(), P0.copy(), yaw0.copy()
        model.predict(x, P, yaw, cls, TABLE.table, 0.5)
        model.update(x, P, yaw, cls, TABLE.table, np.arange(5), m + 0.2)
        mine = cls == model.code
        assert np.array_equal(x[~mine], x0[~mine]) and np.array_equal(P[~mine], P0[~mine])
        assert np.array_equal(yaw[~mine], yaw0[~mine])
        assert not np.any(np.all(x[mine] == x0[mine], axis=1))


def test_measurements_of_boxes_and_velocities():
    boxes = np.arange(14, dtype=np.float32).reshape(2, 7)
    vel = np.array([[0.5, -0.5], [1.5, 2.5]], np.float32)
    got = measurements(boxes, vel)
    assert MEASUREMENT == ("x", "y", "yaw", "vx", "vy") and got.dtype == np.float64
    assert got.tolist() == [[0, 1, 6, 0.5, -0.5], [7, 8, 13, 1.5, 2.5]]
