"""The one conversion each way between nuScenes boxes and nutrack's ``(N, 7)`` boxes.

nuScenes describes a box by ``translation`` (x, y, z of the centre), ``size`` as
``(w, l, h)`` and ``rotation``, a unit quaternion ``(w, x, y, z)``. nutrack uses float32
arrays ``(N, 7)``: ``x, y, z, dx, dy, dz, yaw`` with z at the box centre, ``dx`` the extent
along the heading (nuScenes ``l``), ``dy`` across it (nuScenes ``w``), ``dz`` the height and
``yaw`` in radians counter-clockwise from +x. Velocities travel separately as ``(N, 2)``.

Yaw is read from a quaternion the way the devkit's ``quaternion_yaw`` does: the heading of
the rotated x axis projected on the ground plane. Pitch and roll (always ~0 for nuScenes
annotations) are dropped.

Also here: 4x4 rigid transforms (ego pose, sensor calibration) and moving points and boxes
between frames.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "boxes_from_nuscenes",
    "boxes_to_nuscenes",
    "boxes_from_records",
    "yaw_from_quaternion",
    "quaternion_from_yaw",
    "rotation_matrix",
    "transform_matrix",
    "transform_points",
    "transform_boxes",
    "wrap_angle",
]


def _as_2d(name: str, value, width: int, dtype=np.float64, finite: bool = True) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr[None, :]
    if arr.ndim == 1 and arr.shape[0] == 0:
        arr = arr.reshape(0, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {np.shape(value)}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def wrap_angle(angle):
    """Wrap angles to ``[-pi, pi)``."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


def yaw_from_quaternion(rotation) -> np.ndarray:
    """Yaw (radians, ``(-pi, pi]``) of quaternions ``(N, 4)`` or ``(4,)`` in ``w, x, y, z`` order.

    The heading of the rotated +x axis in the ground plane, as the devkit's
    ``quaternion_yaw``. Quaternions need not be normalised.
    """
    q = _as_2d("rotation", rotation, 4)
    norm2 = np.einsum("ij,ij->i", q, q)
    if np.any(norm2 == 0.0):
        raise ValueError("rotation contains a zero quaternion")
    w, x, y, z = (q / np.sqrt(norm2)[:, None]).T
    yaw = np.arctan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))
    return yaw if np.ndim(rotation) == 2 else yaw[0]


def quaternion_from_yaw(yaw) -> np.ndarray:
    """Unit quaternions ``(N, 4)`` (``w, x, y, z``) of rotations by ``yaw`` about +z."""
    yaw = np.asarray(yaw, dtype=np.float64)
    half = 0.5 * yaw
    q = np.zeros(yaw.shape + (4,), dtype=np.float64)
    q[..., 0] = np.cos(half)
    q[..., 3] = np.sin(half)
    return q


def boxes_from_nuscenes(translation, size, rotation) -> np.ndarray:
    """nuScenes ``translation (N,3)``, ``size (N,3)`` as w,l,h, ``rotation (N,4)`` w,x,y,z
    -> nutrack boxes ``(N, 7)`` float32 ``x, y, z, dx=l, dy=w, dz=h, yaw``."""
    t = _as_2d("translation", translation, 3)
    s = _as_2d("size", size, 3)
    q = _as_2d("rotation", rotation, 4)
    if not (len(t) == len(s) == len(q)):
        raise ValueError(
            f"translation, size and rotation disagree in length: {len(t)}, {len(s)}, {len(q)}"
        )
    out = np.empty((len(t), 7), dtype=np.float32)
    out[:, 0:3] = t
    out[:, 3] = s[:, 1]  # l: along the heading
    out[:, 4] = s[:, 0]  # w: across it
    out[:, 5] = s[:, 2]  # h
    out[:, 6] = yaw_from_quaternion(q) if len(q) else np.zeros(0)
    return out


def boxes_to_nuscenes(boxes) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nutrack boxes ``(N, 7)`` -> nuScenes ``(translation (N,3), size (N,3) w,l,h,
    rotation (N,4) w,x,y,z)`` as float64 arrays."""
    b = _as_2d("boxes", boxes, 7)
    translation = b[:, 0:3].copy()
    size = np.stack([b[:, 4], b[:, 3], b[:, 5]], axis=1)
    rotation = quaternion_from_yaw(b[:, 6])
    return translation, size, rotation


def boxes_from_records(records: Sequence[dict]) -> np.ndarray:
    """Boxes ``(N, 7)`` from a list of dicts with ``translation``, ``size``, ``rotation``
    (sample annotations, detection or tracking boxes)."""
    if len(records) == 0:
        return np.zeros((0, 7), dtype=np.float32)
    return boxes_from_nuscenes(
        [r["translation"] for r in records],
        [r["size"] for r in records],
        [r["rotation"] for r in records],
    )


def rotation_matrix(rotation) -> np.ndarray:
    """3x3 rotation matrix of a quaternion ``(4,)`` in ``w, x, y, z`` order (normalised first)."""
    q = np.asarray(rotation, dtype=np.float64)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f"rotation must be 4 finite numbers, got {rotation!r}")
    n = np.sqrt(q @ q)
    if n == 0:
        raise ValueError("rotation is a zero quaternion")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def transform_matrix(translation, rotation, inverse: bool = False) -> np.ndarray:
    """4x4 float64 rigid transform from a translation ``(3,)`` and quaternion ``(4,)`` w,x,y,z.

    With ``inverse=False`` it maps the frame's coordinates to the parent frame (e.g. ego ->
    global for an ego pose); with ``inverse=True`` the other way.
    """
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(f"translation must be 3 finite numbers, got {translation!r}")
    r = rotation_matrix(rotation)
    m = np.eye(4)
    if inverse:
        m[:3, :3] = r.T
        m[:3, 3] = -r.T @ t
    else:
        m[:3, :3] = r
        m[:3, 3] = t
    return m


def transform_points(points, matrix) -> np.ndarray:
    """Apply a 4x4 transform to the first three columns of ``points (N, C)``.

    Other columns are copied. The product is computed in float64 and returned in the
    input's float dtype.
    """
    p = np.asarray(points)
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"points must have shape (N, >=3), got {p.shape}")
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix must be 4x4, got {m.shape}")
    out = p.astype(p.dtype if np.issubdtype(p.dtype, np.floating) else np.float64, copy=True)
    xyz = p[:, :3].astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    out[:, :3] = xyz
    return out


def transform_boxes(
    boxes, matrix, velocities: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Move boxes ``(N, 7)`` (and velocities ``(N, 2)``) by a 4x4 transform.

    The transform must be a rotation about z plus a translation (as between nuScenes'
    global, ego and LIDAR_TOP frames up to the sensor's tiny mounting tilt, which is
    ignored for the yaw). Returns float32 boxes and, when given, float32 velocities.
    """
    b = _as_2d("boxes", boxes, 7)
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix must be 4x4, got {m.shape}")
    out = b.copy()
    out[:, :3] = b[:, :3] @ m[:3, :3].T + m[:3, 3]
    dyaw = np.arctan2(m[1, 0], m[0, 0])
    out[:, 6] = wrap_angle(b[:, 6] + dyaw)
    vel_out = None
    if velocities is not None:
        v = _as_2d("velocities", velocities, 2, finite=False)  # NaN: velocity unknown
        if len(v) != len(b):
            raise ValueError(f"velocities has {len(v)} rows, boxes {len(b)}")
        vel_out = (v @ m[:2, :2].T).astype(np.float32)
    return out.astype(np.float32), vel_out
