"""Motion models: a linear Kalman filter with constant velocity (CV) and an extended Kalman
filter with constant turn rate and acceleration (CTRA), batched over all tracks.

Each track carries a 6-vector state and its 6x6 covariance (float64), in the global frame:

* CV   (``model 0``): ``[x, y, vx, vy, 0, 0]``; the yaw lives beside the state and is the
  last measured one.
* CTRA (``model 1``): ``[x, y, yaw, v, a, w]`` (speed along the heading, its rate, yaw rate).

A measurement is the detection's ``[x, y, yaw, vx, vy]``: the detector's velocity is
measured directly (CV: ``H = I`` on ``x, y, vx, vy``; CTRA: ``h = [x, y, yaw, v cos yaw,
v sin yaw]``, linearised). For CTRA a measured yaw more than 90 degrees from the predicted
one is taken as a heading flip and turned by 180 degrees before the update.

The CTRA prediction uses the midpoint rule: with ``yaw_m = yaw + w dt / 2`` and
``v_m = v + a dt / 2``, ``x += v_m dt cos(yaw_m)``, ``y += v_m dt sin(yaw_m)``, then
``yaw += w dt``, ``v += a dt``. It is second-order accurate, smooth at ``w = 0`` (no special
case) and has a closed-form Jacobian.

Process noise (per class): CV takes white-noise acceleration ``accel_noise``; CTRA a diagonal
``Q`` from ``accel_noise`` (position, speed), ``jerk_noise`` (acceleration) and
``yaw_rate_noise`` (yaw, yaw rate). Measurement noise: ``pos_noise``, ``vel_noise``,
``yaw_noise``.

The kernels are numba functions looping over tracks with explicit small-matrix arithmetic
(no per-track Python), so a frame's predict or update is one call.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "CV",
    "CTRA",
    "STATE_DIM",
    "MotionTable",
    "init_states",
    "predict",
    "update",
    "state_boxes",
]

CV = 0
CTRA = 1
STATE_DIM = 6

# Columns of the per-class motion table.
_MODEL, _POS, _VEL, _YAW, _ACC, _YAWRATE, _JERK = range(7)
_TABLE_WIDTH = 7


class MotionTable:
    """Per-class motion parameters packed into one ``(C, 7)`` float64 array for the kernels."""

    def __init__(self, models, pos_noise, vel_noise, yaw_noise, accel_noise, yaw_rate_noise, jerk_noise):
        models = [m if isinstance(m, (int, np.integer)) else {"cv": CV, "ctra": CTRA}[m] for m in models]
        cols = [models, pos_noise, vel_noise, yaw_noise, accel_noise, yaw_rate_noise, jerk_noise]
        self.table = np.ascontiguousarray(np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1))

    @classmethod
    def from_params(cls, p) -> "MotionTable":
        return cls(p.motion_model, p.pos_noise, p.vel_noise, p.yaw_noise, p.accel_noise,
                   p.yaw_rate_noise, p.jerk_noise)


@njit(cache=True, nogil=True, inline="always")
def _wrap(a):
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True, nogil=True)
def _init(meas, cls, table, x, P):
    k = meas.shape[0]
    for i in range(k):
        c = cls[i]
        model = int(table[c, _MODEL])
        for a in range(STATE_DIM):
            x[i, a] = 0.0
            for b in range(STATE_DIM):
                P[i, a, b] = 0.0
        sp = table[c, _POS] ** 2
        sv = table[c, _VEL] ** 2
        x[i, 0] = meas[i, 0]
        x[i, 1] = meas[i, 1]
        P[i, 0, 0] = sp
        P[i, 1, 1] = sp
        if model == CV:
            x[i, 2] = meas[i, 3]
            x[i, 3] = meas[i, 4]
            P[i, 2, 2] = sv
            P[i, 3, 3] = sv
            P[i, 4, 4] = 1.0
            P[i, 5, 5] = 1.0
        else:
            yaw = meas[i, 2]
            x[i, 2] = yaw
            x[i, 3] = meas[i, 3] * math.cos(yaw) + meas[i, 4] * math.sin(yaw)
            P[i, 2, 2] = table[c, _YAW] ** 2
            P[i, 3, 3] = sv
            P[i, 4, 4] = table[c, _ACC] ** 2
            P[i, 5, 5] = table[c, _YAWRATE] ** 2


def init_states(meas: np.ndarray, cls: np.ndarray, table: MotionTable):
    """New tracks from measurements ``(K, 5)`` ``[x, y, yaw, vx, vy]`` of classes ``cls``.
    Returns ``x (K, 6)``, ``P (K, 6, 6)``."""
    k = len(meas)
    x = np.empty((k, STATE_DIM), np.float64)
    P = np.empty((k, STATE_DIM, STATE_DIM), np.float64)
    if k:
        _init(np.ascontiguousarray(meas, dtype=np.float64), np.ascontiguousarray(cls, dtype=np.int64),
              table.table, x, P)
    return x, P


@njit(cache=True, nogil=True)
def _predict(x, P, yaw, cls, table, dt):
    m = x.shape[0]
    F = np.zeros((STATE_DIM, STATE_DIM))
    T = np.zeros((STATE_DIM, STATE_DIM))
    dt2 = dt * dt
    for i in range(m):
        c = cls[i]
        model = int(table[c, _MODEL])
        sa = table[c, _ACC]
        for a in range(STATE_DIM):
            for b in range(STATE_DIM):
                F[a, b] = 1.0 if a == b else 0.0
        if model == CV:
            x[i, 0] += x[i, 2] * dt
            x[i, 1] += x[i, 3] * dt
            F[0, 2] = dt
            F[1, 3] = dt
        else:
            th = x[i, 2]
            v = x[i, 3]
            acc = x[i, 4]
            w = x[i, 5]
            thm = th + 0.5 * w * dt
            vm = v + 0.5 * acc * dt
            cm = math.cos(thm)
            sm = math.sin(thm)
            x[i, 0] += vm * dt * cm
            x[i, 1] += vm * dt * sm
            x[i, 2] = _wrap(th + w * dt)
            x[i, 3] = v + acc * dt
            F[0, 2] = -vm * dt * sm
            F[0, 3] = dt * cm
            F[0, 4] = 0.5 * dt2 * cm
            F[0, 5] = -vm * dt * sm * 0.5 * dt
            F[1, 2] = vm * dt * cm
            F[1, 3] = dt * sm
            F[1, 4] = 0.5 * dt2 * sm
            F[1, 5] = vm * dt * cm * 0.5 * dt
            F[2, 5] = dt
            F[3, 4] = dt
            yaw[i] = x[i, 2]
        # P = F P F^T + Q
        for a in range(STATE_DIM):
            for b in range(STATE_DIM):
                s = 0.0
                for k in range(STATE_DIM):
                    s += F[a, k] * P[i, k, b]
                T[a, b] = s
        for a in range(STATE_DIM):
            for b in range(STATE_DIM):
                s = 0.0
                for k in range(STATE_DIM):
                    s += T[a, k] * F[b, k]
                P[i, a, b] = s
        if model == CV:
            q = sa * sa
            q4 = 0.25 * dt2 * dt2 * q
            q3 = 0.5 * dt2 * dt * q
            q2 = dt2 * q
            P[i, 0, 0] += q4
            P[i, 1, 1] += q4
            P[i, 0, 2] += q3
            P[i, 2, 0] += q3
            P[i, 1, 3] += q3
            P[i, 3, 1] += q3
            P[i, 2, 2] += q2
            P[i, 3, 3] += q2
        else:
            sw = table[c, _YAWRATE]
            sj = table[c, _JERK]
            qp = (0.5 * sa * dt2) ** 2
            P[i, 0, 0] += qp
            P[i, 1, 1] += qp
            P[i, 2, 2] += (0.5 * sw * dt2) ** 2
            P[i, 3, 3] += (sa * dt) ** 2
            P[i, 4, 4] += (sj * dt) ** 2
            P[i, 5, 5] += (sw * dt) ** 2


def predict(x: np.ndarray, P: np.ndarray, yaw: np.ndarray, cls: np.ndarray, table: MotionTable,
            dt: float) -> None:
    """Advance every track by ``dt`` seconds, in place (``yaw`` follows CTRA states)."""
    if len(x):
        _predict(x, P, yaw, cls, table.table, float(dt))


@njit(cache=True, nogil=True)
def _solve_spd(S, B, d, X):
    # X (d x ncols) = S^-1 B via Cholesky (S symmetric positive definite, d <= 5).
    L = np.zeros((5, 5))
    for a in range(d):
        for b in range(a + 1):
            s = S[a, b]
            for k in range(b):
                s -= L[a, k] * L[b, k]
            if a == b:
                L[a, a] = math.sqrt(s if s > 1e-12 else 1e-12)
            else:
                L[a, b] = s / L[b, b]
    ncols = B.shape[1]
    for col in range(ncols):
        y = np.zeros(5)
        for a in range(d):
            s = B[a, col]
            for k in range(a):
                s -= L[a, k] * y[k]
            y[a] = s / L[a, a]
        for a in range(d - 1, -1, -1):
            s = y[a]
            for k in range(a + 1, d):
                s -= L[k, a] * X[k, col]
            X[a, col] = s / L[a, a]


@njit(cache=True, nogil=True)
def _update(x, P, yaw, cls, table, tidx, meas):
    H = np.zeros((5, STATE_DIM))
    PHt = np.zeros((STATE_DIM, 5))
    S = np.zeros((5, 5))
    Kt = np.zeros((5, STATE_DIM))  # K^T = S^-1 (P H^T)^T
    HPt = np.zeros((5, STATE_DIM))
    r = np.zeros(5)
    yv = np.zeros(5)
    newP = np.zeros((STATE_DIM, STATE_DIM))
    for t in range(tidx.shape[0]):
        i = tidx[t]
        c = cls[i]
        model = int(table[c, _MODEL])
        rp = table[c, _POS] ** 2
        rv = table[c, _VEL] ** 2
        for a in range(5):
            for b in range(STATE_DIM):
                H[a, b] = 0.0
        if model == CV:
            d = 4
            H[0, 0] = 1.0
            H[1, 1] = 1.0
            H[2, 2] = 1.0
            H[3, 3] = 1.0
            yv[0] = meas[t, 0] - x[i, 0]
            yv[1] = meas[t, 1] - x[i, 1]
            yv[2] = meas[t, 3] - x[i, 2]
            yv[3] = meas[t, 4] - x[i, 3]
            r[0] = rp
            r[1] = rp
            r[2] = rv
            r[3] = rv
        else:
            d = 5
            th = x[i, 2]
            v = x[i, 3]
            ct = math.cos(th)
            st = math.sin(th)
            dyaw = _wrap(meas[t, 2] - th)
            if abs(dyaw) > 0.5 * math.pi:  # heading flip
                dyaw = _wrap(dyaw + math.pi)
            H[0, 0] = 1.0
            H[1, 1] = 1.0
            H[2, 2] = 1.0
            H[3, 2] = -v * st
            H[3, 3] = ct
            H[4, 2] = v * ct
            H[4, 3] = st
            yv[0] = meas[t, 0] - x[i, 0]
            yv[1] = meas[t, 1] - x[i, 1]
            yv[2] = dyaw
            yv[3] = meas[t, 3] - v * ct
            yv[4] = meas[t, 4] - v * st
            r[0] = rp
            r[1] = rp
            r[2] = table[c, _YAW] ** 2
            r[3] = rv
            r[4] = rv
        # P H^T
        for a in range(STATE_DIM):
            for b in range(d):
                s = 0.0
                for k in range(STATE_DIM):
                    s += P[i, a, k] * H[b, k]
                PHt[a, b] = s
        # S = H P H^T + R
        for a in range(d):
            for b in range(d):
                s = 0.0
                for k in range(STATE_DIM):
                    s += H[a, k] * PHt[k, b]
                S[a, b] = s
            S[a, a] += r[a]
        for a in range(d):
            for b in range(STATE_DIM):
                HPt[a, b] = PHt[b, a]
        _solve_spd(S, HPt, d, Kt)
        # x += K y
        for a in range(STATE_DIM):
            s = 0.0
            for k in range(d):
                s += Kt[k, a] * yv[k]
            x[i, a] += s
        # P = P - K (H P) = P - K S K^T; with H P = (P H^T)^T
        for a in range(STATE_DIM):
            for b in range(STATE_DIM):
                s = 0.0
                for k in range(d):
                    s += Kt[k, a] * PHt[b, k]
                newP[a, b] = P[i, a, b] - s
        for a in range(STATE_DIM):
            for b in range(STATE_DIM):
                P[i, a, b] = 0.5 * (newP[a, b] + newP[b, a])
        if model == CV:
            yaw[i] = meas[t, 2]
        else:
            x[i, 2] = _wrap(x[i, 2])
            yaw[i] = x[i, 2]


def update(x: np.ndarray, P: np.ndarray, yaw: np.ndarray, cls: np.ndarray, table: MotionTable,
           track_index: np.ndarray, meas: np.ndarray) -> None:
    """Kalman update of tracks ``track_index`` with measurements ``(K, 5)``, in place."""
    if len(track_index):
        _update(x, P, yaw, cls, table.table, np.ascontiguousarray(track_index, dtype=np.int64),
                np.ascontiguousarray(meas, dtype=np.float64))


@njit(cache=True, nogil=True)
def _boxes_vel(x, yaw, z, size, cls, table, boxes, vel):
    for i in range(x.shape[0]):
        boxes[i, 0] = x[i, 0]
        boxes[i, 1] = x[i, 1]
        boxes[i, 2] = z[i]
        boxes[i, 3] = size[i, 0]
        boxes[i, 4] = size[i, 1]
        boxes[i, 5] = size[i, 2]
        boxes[i, 6] = yaw[i]
        if int(table[cls[i], _MODEL]) == CV:
            vel[i, 0] = x[i, 2]
            vel[i, 1] = x[i, 3]
        else:
            vel[i, 0] = x[i, 3] * math.cos(x[i, 2])
            vel[i, 1] = x[i, 3] * math.sin(x[i, 2])


def state_boxes(x, yaw, z, size, cls, table: MotionTable):
    """Boxes ``(M, 7)`` float32 and velocities ``(M, 2)`` float32 of the current states."""
    m = len(x)
    boxes = np.empty((m, 7), np.float32)
    vel = np.empty((m, 2), np.float32)
    if m:
        _boxes_vel(x, yaw, z, size, cls, table.table, boxes, vel)
    return boxes, vel
