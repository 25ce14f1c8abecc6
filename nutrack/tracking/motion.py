"""Motion models behind one interface: a linear Kalman filter with constant velocity (CV) and
an extended Kalman filter with constant turn rate and acceleration (CTRA), batched over all
tracks.

Every track carries a ``STATE_DIM``-vector state and its covariance (float64) in one table of
arrays, whatever mix of models the classes use; each model names the state columns it uses
(:attr:`MotionModel.columns`, the rest stay unused), and the first two are always the box
centre ``x, y``:

* CV   (``"cv"``):   ``[x, y, vx, vy]``; the box yaw lives beside the state and is the last
  measured one.
* CTRA (``"ctra"``): ``[x, y, yaw, v, a, w]`` (speed along the heading, its rate, yaw rate).

A measurement is the detection's ``[x, y, yaw, vx, vy]`` (:data:`MEASUREMENT`,
:func:`measurements`): the detector's velocity is measured directly (CV: ``H = I`` on ``x,
y, vx, vy``; CTRA: ``h = [x, y, yaw, v cos yaw, v sin yaw]``, linearised). For CTRA a measured
yaw more than 90 degrees from the predicted one is taken as a heading flip and turned by 180
degrees before the update.

The CTRA prediction uses the midpoint rule: with ``yaw_m = yaw + w dt / 2`` and
``v_m = v + a dt / 2``, ``x += v_m dt cos(yaw_m)``, ``y += v_m dt sin(yaw_m)``, then
``yaw += w dt``, ``v += a dt``. It is second-order accurate, smooth at ``w = 0`` (no special
case) and has a closed-form Jacobian.

Process noise (per class): CV takes white-noise acceleration ``accel_noise``; CTRA a diagonal
``Q`` from ``accel_noise`` (position, speed), ``jerk_noise`` (acceleration) and
``yaw_rate_noise`` (yaw, yaw rate). Measurement noise: ``pos_noise``, ``vel_noise``,
``yaw_noise``.

**The interface.** A motion model is a :class:`MotionModel`: a name (the value of
``FilterParams.motion_model``), its named state columns, and four batched numba kernels —
``init`` (measurement -> state), ``predict`` (transition and Jacobian ``F``, process noise
``Q``), ``update`` (measurement model ``h``, ``H``, ``R``, then the shared Kalman correction
:func:`_correct`) and ``velocity`` (state -> box velocity). Each kernel loops over all the
rows it is given and touches only those whose class uses the model, so a frame's predict or
update is one call per model in use, with no per-track Python. The module functions
(:func:`init_states`, :func:`predict`, :func:`update`, :func:`state_boxes`) run every model
of a :class:`MotionTable`. A new model is one more subclass appended to :data:`MODELS`; no
other kernel changes.
"""
from __future__ import annotations

import abc
import math
from typing import Tuple

import numpy as np
from numba import njit

__all__ = [
    "CV",
    "CTRA",
    "STATE_DIM",
    "MEASUREMENT",
    "MODELS",
    "MotionModel",
    "ConstantVelocity",
    "ConstantTurnRateAcceleration",
    "MotionTable",
    "measurements",
    "init_states",
    "init_states_into",
    "predict",
    "update",
    "state_boxes",
]

STATE_DIM = 6  # the widest model's state; narrower models leave the last columns unused
CV = 0  # model codes: the model's index in MODELS
CTRA = 1

#: Columns of a measurement, one row per detection.
MEASUREMENT = ("x", "y", "yaw", "vx", "vy")
_MX, _MY, _MYAW, _MVX, _MVY = range(len(MEASUREMENT))
_MEAS_DIM = len(MEASUREMENT)

# Columns of the per-class motion table: the model code, then the noise parameters.
_MODEL, _POS, _VEL, _YAW, _ACC, _YAWRATE, _JERK = range(7)


class MotionModel(abc.ABC):
    """The interface every motion model implements (see the module docstring).

    ``name`` is the model's value of ``FilterParams.motion_model``; ``columns`` names its state
    columns (the first two are ``x, y``, the box centre); ``code`` is its index in
    :data:`MODELS`, written into the motion table's model column. Every method runs one
    batched kernel, in place, over the rows whose class's model is this one:

    * ``init(meas, cls, table, x, P)``: states and covariances of new tracks from their
      measurements ``(K, 5)`` (:data:`MEASUREMENT`);
    * ``predict(x, P, yaw, cls, table, dt)``: advance by ``dt`` seconds (``yaw``, the box yaw
      beside the state, follows where the model carries a yaw);
    * ``update(x, P, yaw, cls, table, rows, meas)``: Kalman update of tracks ``rows`` with
      ``meas[k]`` for track ``rows[k]``;
    * ``velocity(x, cls, table, vel)``: the box velocity ``(M, 2)`` of each state.

    ``table`` is :attr:`MotionTable.table`; ``cls`` the tracks' classes (int64).
    """

    name: str = ""
    columns: Tuple[str, ...] = ()

    def __init__(self, code: int):
        self.code = code

    @abc.abstractmethod
    def init(self, meas, cls, table, x, P) -> None:
        """Measurement -> state and covariance of new tracks."""

    @abc.abstractmethod
    def predict(self, x, P, yaw, cls, table, dt: float) -> None:
        """Transition, its Jacobian and the process noise."""

    @abc.abstractmethod
    def update(self, x, P, yaw, cls, table, rows, meas) -> None:
        """Measurement model, then the shared Kalman correction."""

    @abc.abstractmethod
    def velocity(self, x, cls, table, vel) -> None:
        """State -> box velocity."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code})"


# -- shared kernels ------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _wrap(a):
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True, nogil=True, inline="always")
def _uses(table, c, code):
    return int(table[c, _MODEL]) == code


@njit(cache=True, nogil=True)
def _clear(x, P, i):
    for a in range(STATE_DIM):
        x[i, a] = 0.0
        for b in range(STATE_DIM):
            P[i, a, b] = 0.0


@njit(cache=True, nogil=True)
def _set_identity(F):
    for a in range(STATE_DIM):
        for b in range(STATE_DIM):
            F[a, b] = 1.0 if a == b else 0.0


@njit(cache=True, nogil=True)
def _propagate(P, i, F, T):
    """``P[i] = F P[i] F^T`` (``T`` is scratch)."""
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


@njit(cache=True, nogil=True)
def _solve_spd(S, B, d, X, L, y):
    # X (d x ncols) = S^-1 B via Cholesky (S symmetric positive definite, d <= 5). L (5 x 5) and
    # y (5) are scratch; every entry read is written first in this call, so they need no clearing.
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
def _kalman_workspace():
    """Scratch of a measurement model and :func:`_correct`, allocated once per kernel call (not
    per track): H (d x n), residual y (d), R diagonal r (d), then P H^T, S, K^T, H P, the new P,
    and the Cholesky factor and vector of :func:`_solve_spd`."""
    return (np.zeros((_MEAS_DIM, STATE_DIM)), np.zeros(_MEAS_DIM), np.zeros(_MEAS_DIM),
            np.zeros((STATE_DIM, _MEAS_DIM)), np.zeros((_MEAS_DIM, _MEAS_DIM)),
            np.zeros((_MEAS_DIM, STATE_DIM)), np.zeros((_MEAS_DIM, STATE_DIM)),
            np.zeros((STATE_DIM, STATE_DIM)), np.zeros((_MEAS_DIM, _MEAS_DIM)), np.zeros(_MEAS_DIM))


@njit(cache=True, nogil=True)
def _correct(x, P, i, d, ws):
    """The Kalman correction of track ``i`` from the first ``d`` rows of the measurement
    model in ``ws`` (``H``, residual ``y``, noise diagonal ``r``): ``x += K y``,
    ``P -= K H P``, kept symmetric."""
    H, yv, r, PHt, S, Kt, HPt, newP, L, ychol = ws
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
    _solve_spd(S, HPt, d, Kt, L, ychol)  # K^T = S^-1 (P H^T)^T
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


# -- CV: constant velocity, linear Kalman filter ---------------------------------------------
_CV_COLUMNS = ("x", "y", "vx", "vy")
_CV_VX = _CV_COLUMNS.index("vx")
_CV_VY = _CV_COLUMNS.index("vy")


@njit(cache=True, nogil=True)
def _cv_init(meas, cls, table, x, P, code):
    for i in range(meas.shape[0]):
        c = cls[i]
        if not _uses(table, c, code):
            continue
        _clear(x, P, i)
        sp = table[c, _POS] ** 2
        sv = table[c, _VEL] ** 2
        x[i, 0] = meas[i, _MX]
        x[i, 1] = meas[i, _MY]
        x[i, _CV_VX] = meas[i, _MVX]
        x[i, _CV_VY] = meas[i, _MVY]
        P[i, 0, 0] = sp
        P[i, 1, 1] = sp
        P[i, _CV_VX, _CV_VX] = sv
        P[i, _CV_VY, _CV_VY] = sv
        P[i, 4, 4] = 1.0  # the unused columns: unit variance, never coupled to the rest
        P[i, 5, 5] = 1.0


@njit(cache=True, nogil=True)
def _cv_predict(x, P, cls, table, dt, code):
    F = np.zeros((STATE_DIM, STATE_DIM))
    T = np.zeros((STATE_DIM, STATE_DIM))
    dt2 = dt * dt
    for i in range(x.shape[0]):
        c = cls[i]
        if not _uses(table, c, code):
            continue
        _set_identity(F)
        x[i, 0] += x[i, _CV_VX] * dt
        x[i, 1] += x[i, _CV_VY] * dt
        F[0, _CV_VX] = dt
        F[1, _CV_VY] = dt
        _propagate(P, i, F, T)
        # white-noise acceleration
        sa = table[c, _ACC]
        q = sa * sa
        q4 = 0.25 * dt2 * dt2 * q
        q3 = 0.5 * dt2 * dt * q
        q2 = dt2 * q
        P[i, 0, 0] += q4
        P[i, 1, 1] += q4
        P[i, 0, _CV_VX] += q3
        P[i, _CV_VX, 0] += q3
        P[i, 1, _CV_VY] += q3
        P[i, _CV_VY, 1] += q3
        P[i, _CV_VX, _CV_VX] += q2
        P[i, _CV_VY, _CV_VY] += q2


@njit(cache=True, nogil=True)
def _cv_update(x, P, yaw, cls, table, rows, meas, code):
    ws = _kalman_workspace()
    H, yv, r = ws[0], ws[1], ws[2]
    for t in range(rows.shape[0]):
        i = rows[t]
        c = cls[i]
        if not _uses(table, c, code):
            continue
        # h(x) = [x, y, vx, vy]: linear
        H[:, :] = 0.0
        H[0, 0] = 1.0
        H[1, 1] = 1.0
        H[2, _CV_VX] = 1.0
        H[3, _CV_VY] = 1.0
        yv[0] = meas[t, _MX] - x[i, 0]
        yv[1] = meas[t, _MY] - x[i, 1]
        yv[2] = meas[t, _MVX] - x[i, _CV_VX]
        yv[3] = meas[t, _MVY] - x[i, _CV_VY]
        rp = table[c, _POS] ** 2
        rv = table[c, _VEL] ** 2
        r[0] = rp
        r[1] = rp
        r[2] = rv
        r[3] = rv
        _correct(x, P, i, 4, ws)
        yaw[i] = meas[t, _MYAW]  # CV does not filter the heading: the box keeps the measured one


@njit(cache=True, nogil=True)
def _cv_velocity(x, cls, table, vel, code):
    for i in range(x.shape[0]):
        if _uses(table, cls[i], code):
            vel[i, 0] = x[i, _CV_VX]
            vel[i, 1] = x[i, _CV_VY]


class ConstantVelocity(MotionModel):
    """CV: ``[x, y, vx, vy]``, white-noise acceleration, linear measurement of ``x, y, vx, vy``."""

    name = "cv"
    columns = _CV_COLUMNS

    def init(self, meas, cls, table, x, P) -> None:
        _cv_init(meas, cls, table, x, P, self.code)

    def predict(self, x, P, yaw, cls, table, dt: float) -> None:
        _cv_predict(x, P, cls, table, dt, self.code)

    def update(self, x, P, yaw, cls, table, rows, meas) -> None:
        _cv_update(x, P, yaw, cls, table, rows, meas, self.code)

    def velocity(self, x, cls, table, vel) -> None:
        _cv_velocity(x, cls, table, vel, self.code)


# -- CTRA: constant turn rate and acceleration, extended Kalman filter -----------------------
_CTRA_COLUMNS = ("x", "y", "yaw", "v", "a", "w")
_CT_YAW = _CTRA_COLUMNS.index("yaw")
_CT_V = _CTRA_COLUMNS.index("v")
_CT_A = _CTRA_COLUMNS.index("a")
_CT_W = _CTRA_COLUMNS.index("w")


@njit(cache=True, nogil=True)
def _ctra_init(meas, cls, table, x, P, code):
    for i in range(meas.shape[0]):
        c = cls[i]
        if not _uses(table, c, code):
            continue
        _clear(x, P, i)
        sp = table[c, _POS] ** 2
        yaw = meas[i, _MYAW]
        x[i, 0] = meas[i, _MX]
        x[i, 1] = meas[i, _MY]
        x[i, _CT_YAW] = yaw
        # the speed is the measured velocity's component along the heading
        x[i, _CT_V] = meas[i, _MVX] * math.cos(yaw) + meas[i, _MVY] * math.sin(yaw)
        P[i, 0, 0] = sp
        P[i, 1, 1] = sp
        P[i, _CT_YAW, _CT_YAW] = table[c, _YAW] ** 2
        P[i, _CT_V, _CT_V] = table[c, _VEL] ** 2
        P[i, _CT_A, _CT_A] = table[c, _ACC] ** 2
        P[i, _CT_W, _CT_W] = table[c, _YAWRATE] ** 2


@njit(cache=True, nogil=True)
def _ctra_predict(x, P, yaw, cls, table, dt, code):
    F = np.zeros((STATE_DIM, STATE_DIM))
    T = np.zeros((STATE_DIM, STATE_DIM))
    dt2 = dt * dt
    for i in range(x.shape[0]):
        c = cls[i]
        if not _uses(table, c, code):
            continue
        _set_identity(F)
        th = x[i, _CT_YAW]
        v = x[i, _CT_V]
        acc = x[i, _CT_A]
        w = x[i, _CT_W]
        # the midpoint rule (module docstring) and its Jacobian
        thm = th + 0.5 * w * dt
        vm = v + 0.5 * acc * dt
        cm = math.cos(thm)
        sm = math.sin(thm)
        x[i, 0] += vm * dt * cm
        x[i, 1] += vm * dt * sm
        x[i, _CT_YAW] = _wrap(th + w * dt)
        x[i, _CT_V] = v + acc * dt
        F[0, _CT_YAW] = -vm * dt * sm
        F[0, _CT_V] = dt * cm
        F[0, _CT_A] = 0.5 * dt2 * cm
        F[0, _CT_W] = -vm * dt * sm * 0.5 * dt
        F[1, _CT_YAW] = vm * dt * cm
        F[1, _CT_V] = dt * sm
        F[1, _CT_A] = 0.5 * dt2 * sm
        F[1, _CT_W] = vm * dt * cm * 0.5 * dt
        F[_CT_YAW, _CT_W] = dt
        F[_CT_V, _CT_A] = dt
        yaw[i] = x[i, _CT_YAW]
        _propagate(P, i, F, T)
        # diagonal process noise
        sa = table[c, _ACC]
        sw = table[c, _YAWRATE]
        sj = table[c, _JERK]
        qp = (0.5 * sa * dt2) ** 2
        P[i, 0, 0] += qp
        P[i, 1, 1] += qp
        P[i, _CT_YAW, _CT_YAW] += (0.5 * sw * dt2) ** 2
        P[i, _CT_V, _CT_V] += (sa * dt) ** 2
        P[i, _CT_A, _CT_A] += (sj * dt) ** 2
        P[i, _CT_W, _CT_W] += (sw * dt) ** 2


@njit(cache=True, nogil=True)
def _ctra_update(x, P, yaw, cls, table, rows, meas, code):
    ws = _kalman_workspace()
    H, yv, r = ws[0], ws[1], ws[2]
    for t in range(rows.shape[0]):
        i = rows[t]
        c = cls[i]
        if not _uses(table, c, code):
            continue
        # h(x) = [x, y, yaw, v cos yaw, v sin yaw], linearised at the prediction
        th = x[i, _CT_YAW]
        v = x[i, _CT_V]
        ct = math.cos(th)
        st = math.sin(th)
        dyaw = _wrap(meas[t, _MYAW] - th)
        if abs(dyaw) > 0.5 * math.pi:  # heading flip
            dyaw = _wrap(dyaw + math.pi)
        H[:, :] = 0.0
        H[0, 0] = 1.0
        H[1, 1] = 1.0
        H[2, _CT_YAW] = 1.0
        H[3, _CT_YAW] = -v * st
        H[3, _CT_V] = ct
        H[4, _CT_YAW] = v * ct
        H[4, _CT_V] = st
        yv[0] = meas[t, _MX] - x[i, 0]
        yv[1] = meas[t, _MY] - x[i, 1]
        yv[2] = dyaw
        yv[3] = meas[t, _MVX] - v * ct
        yv[4] = meas[t, _MVY] - v * st
        rp = table[c, _POS] ** 2
        rv = table[c, _VEL] ** 2
        r[0] = rp
        r[1] = rp
        r[2] = table[c, _YAW] ** 2
        r[3] = rv
        r[4] = rv
        _correct(x, P, i, 5, ws)
        x[i, _CT_YAW] = _wrap(x[i, _CT_YAW])
        yaw[i] = x[i, _CT_YAW]


@njit(cache=True, nogil=True)
def _ctra_velocity(x, cls, table, vel, code):
    for i in range(x.shape[0]):
        if _uses(table, cls[i], code):
            vel[i, 0] = x[i, _CT_V] * math.cos(x[i, _CT_YAW])
            vel[i, 1] = x[i, _CT_V] * math.sin(x[i, _CT_YAW])


class ConstantTurnRateAcceleration(MotionModel):
    """CTRA: ``[x, y, yaw, v, a, w]``, midpoint-rule EKF, measurement ``[x, y, yaw, v cos yaw,
    v sin yaw]`` with heading-flip handling."""

    name = "ctra"
    columns = _CTRA_COLUMNS

    def init(self, meas, cls, table, x, P) -> None:
        _ctra_init(meas, cls, table, x, P, self.code)

    def predict(self, x, P, yaw, cls, table, dt: float) -> None:
        _ctra_predict(x, P, yaw, cls, table, dt, self.code)

    def update(self, x, P, yaw, cls, table, rows, meas) -> None:
        _ctra_update(x, P, yaw, cls, table, rows, meas, self.code)

    def velocity(self, x, cls, table, vel) -> None:
        _ctra_velocity(x, cls, table, vel, self.code)


#: Every motion model, at the index of its code.
MODELS: Tuple[MotionModel, ...] = (ConstantVelocity(CV), ConstantTurnRateAcceleration(CTRA))
_BY_NAME = {m.name: m for m in MODELS}
assert all(m.code == i and len(m.columns) <= STATE_DIM and m.columns[:2] == ("x", "y")
           for i, m in enumerate(MODELS))


# -- the per-class table and the batched entry points -----------------------------------------
class MotionTable:
    """Per-class motion parameters packed into one ``(C, 7)`` float64 array for the kernels
    (the model code, then the noise parameters), and the models the classes use."""

    def __init__(self, models, pos_noise, vel_noise, yaw_noise, accel_noise, yaw_rate_noise, jerk_noise):
        codes = [m if isinstance(m, (int, np.integer)) else _model_named(m).code for m in models]
        cols = [codes, pos_noise, vel_noise, yaw_noise, accel_noise, yaw_rate_noise, jerk_noise]
        self.table = np.ascontiguousarray(np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1))
        #: The models in use, in code order: each batched step runs these only.
        self.models: Tuple[MotionModel, ...] = tuple(MODELS[c] for c in sorted(set(int(c) for c in codes)))

    @classmethod
    def from_params(cls, p) -> "MotionTable":
        return cls(p.motion_model, p.pos_noise, p.vel_noise, p.yaw_noise, p.accel_noise,
                   p.yaw_rate_noise, p.jerk_noise)


def _model_named(name: str) -> MotionModel:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown motion model {name!r}; expected one of {', '.join(_BY_NAME)}") from None


def measurements(boxes: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """``(K, 5)`` float64 measurements (:data:`MEASUREMENT`) of boxes ``(K, 7)`` and their
    velocities ``(K, 2)``."""
    meas = np.empty((len(boxes), _MEAS_DIM), np.float64)
    meas[:, _MX:_MY + 1] = boxes[:, 0:2]
    meas[:, _MYAW] = boxes[:, 6]
    meas[:, _MVX:_MVY + 1] = velocities
    return meas


def init_states(meas: np.ndarray, cls: np.ndarray, table: MotionTable):
    """New tracks from measurements ``(K, 5)`` ``[x, y, yaw, vx, vy]`` of classes ``cls``.
    Returns ``x (K, 6)``, ``P (K, 6, 6)``."""
    k = len(meas)
    x = np.empty((k, STATE_DIM), np.float64)
    P = np.empty((k, STATE_DIM, STATE_DIM), np.float64)
    init_states_into(meas, cls, table, x, P)
    return x, P


def init_states_into(meas: np.ndarray, cls: np.ndarray, table: MotionTable, x: np.ndarray, P: np.ndarray) -> None:
    """:func:`init_states` into the first ``len(meas)`` rows of ``x`` and ``P`` (C-contiguous
    float64, e.g. rows of a track table)."""
    if len(meas):
        meas = np.ascontiguousarray(meas, dtype=np.float64)
        cls = np.ascontiguousarray(cls, dtype=np.int64)
        for model in table.models:
            model.init(meas, cls, table.table, x, P)


def predict(x: np.ndarray, P: np.ndarray, yaw: np.ndarray, cls: np.ndarray, table: MotionTable,
            dt: float) -> None:
    """Advance every track by ``dt`` seconds, in place (``yaw`` follows CTRA states)."""
    if len(x):
        for model in table.models:
            model.predict(x, P, yaw, cls, table.table, float(dt))


def update(x: np.ndarray, P: np.ndarray, yaw: np.ndarray, cls: np.ndarray, table: MotionTable,
           track_index: np.ndarray, meas: np.ndarray) -> None:
    """Kalman update of tracks ``track_index`` with measurements ``(K, 5)``, in place."""
    if len(track_index):
        rows = np.ascontiguousarray(track_index, dtype=np.int64)
        meas = np.ascontiguousarray(meas, dtype=np.float64)
        for model in table.models:
            model.update(x, P, yaw, cls, table.table, rows, meas)


@njit(cache=True, nogil=True)
def _boxes(x, yaw, z, size, boxes):
    for i in range(x.shape[0]):
        boxes[i, 0] = x[i, 0]
        boxes[i, 1] = x[i, 1]
        boxes[i, 2] = z[i]
        boxes[i, 3] = size[i, 0]
        boxes[i, 4] = size[i, 1]
        boxes[i, 5] = size[i, 2]
        boxes[i, 6] = yaw[i]


def state_boxes(x, yaw, z, size, cls, table: MotionTable):
    """Boxes ``(M, 7)`` float32 and velocities ``(M, 2)`` float32 of the current states."""
    m = len(x)
    boxes = np.empty((m, 7), np.float32)
    vel = np.empty((m, 2), np.float32)
    if m:
        _boxes(x, yaw, z, size, boxes)
        for model in table.models:
            model.velocity(x, cls, table.table, vel)
    return boxes, vel
