"""Box validation and the box frames every backend reads.

A box is a float32 row `x, y, z, dx, dy, dz, yaw` (z at the centre, dx along the heading).
The kernels read a frame instead: centre, half extents, cos/sin of the yaw and a conservative
BEV bound. This module is the Python side of that layout (csrc/include/nutrack/common.h is the
C++ side; the numba twins import the columns from here) and the ONLY place that evaluates
cos/sin for the ops: in float64, rounded once to float32, on the device holding the boxes. So
every backend reads the same rotation and only + - * / remain in the kernels.

Valid boxes: finite, sizes in [MIN_SIZE, MAX_SIZE] and centres within MAX_COORDINATE of the
origin. The bounds are far past any real object or map (nuScenes maps span ~2 km, UTM
northings ~1e7 m) and keep every area, volume, hull and enclosing volume the kernels form a
finite, nonzero float32 with a factor of >= 1e9 to spare (volumes in [1e-27, 1e27], hulls
times heights below 1e29, FLT_MAX = 3.4e38, FLT_MIN = 1.2e-38). Beyond them IoU could become
0 / 0 or inf / inf: two 1e20 m boxes overflow float32 areas.
"""
from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from numba import njit

from nutrack.ops import _arrays

# The box-frame layout (csrc/include/nutrack/common.h, namespace frame; tests/test_affinity.py
# reads both and checks they agree).
FRAME_COLUMNS = ("cx", "cy", "cz", "hx", "hy", "hz", "c", "s", "rx", "ry")
BOX_FRAME_WIDTH = len(FRAME_COLUMNS)
CX, CY, CZ, HX, HY, HZ, COS, SIN, RX, RY = range(BOX_FRAME_WIDTH)

MIN_SIZE = 1e-9  # metres
MAX_SIZE = 1e9
MAX_COORDINATE = 1e9

# Relative inflation of the BEV prefilter bounds: far above float32 rounding (~1e-7), so the
# prefilter never rejects a point that the exact test would accept.
_PREFILTER_SLACK = 1.001
# Yaws within this many quarter turns of 0 that are the float32 nearest a quarter turn get
# the exact cos/sin of that turn (see _rotation).
_MAX_SNAPPED_QUARTER_TURNS = 4
# the bounds as numpy compares a float32 array with a Python float (rounded to float32)
_F32_MAX_COORDINATE, _F32_MIN_SIZE, _F32_MAX_SIZE = (float(np.float32(v)) for v in (MAX_COORDINATE, MIN_SIZE, MAX_SIZE))


def _all(mask: Any) -> bool:
    return bool(mask.all().item()) if _arrays.kind_of(mask) != "numpy" else bool(mask.all())


@njit(cache=True, nogil=True)
def _host_boxes_valid(boxes, max_coordinate, min_size, max_size):
    """Whether ``validate_boxes`` accepts these C-contiguous (M, 7) float32 numpy boxes, in
    one pass (the bounds come rounded to float32, as numpy compares a float32 array with
    them); the numpy checks run only when this says no, for their error message."""
    for i in range(boxes.shape[0]):
        for k in range(7):
            if not np.isfinite(boxes[i, k]):
                return False
        for k in range(3):
            if not abs(boxes[i, k]) <= max_coordinate:
                return False
        for k in range(3, 6):
            if not (boxes[i, k] > 0 and boxes[i, k] >= min_size and boxes[i, k] <= max_size):
                return False
    return True


def validate_boxes(boxes: Any, name: str = "boxes") -> Any:
    """(M, 7) float32 boxes of the caller's kind; rejects NaN/inf, sizes outside [MIN_SIZE,
    MAX_SIZE] (zero and negative sizes among them) and centres past MAX_COORDINATE."""
    boxes = _arrays.as_float32(boxes, name, ndim=2, width=7)
    # numpy boxes: one numba pass instead of ~8 array checks (~40 us on a frame's few boxes)
    if isinstance(boxes, np.ndarray) and _host_boxes_valid(boxes, _F32_MAX_COORDINATE, _F32_MIN_SIZE, _F32_MAX_SIZE):
        return boxes
    if boxes.shape[0]:
        _arrays.check_finite(boxes, name)
        sizes = boxes[:, 3:6]
        _arrays.check_positive(sizes, f"{name} sizes (columns dx, dy, dz)")
        if not _all((sizes >= MIN_SIZE) & (sizes <= MAX_SIZE)):
            raise ValueError(f"{name} sizes (columns dx, dy, dz) must lie in [{MIN_SIZE:g}, "
                             f"{MAX_SIZE:g}] m; no real box is outside that range")
        if not _all(abs(boxes[:, 0:3]) <= MAX_COORDINATE):
            raise ValueError(f"{name} centres (columns x, y, z) must lie within "
                             f"{MAX_COORDINATE:g} m of the origin")
    return boxes


def _as_float64(x: Any) -> Any:
    return x.double() if _arrays.kind_of(x) == "torch" else x.astype(np.float64)


def _namespace(x: Any) -> Any:
    """torch, cupy or numpy: their cos, sin, abs, round, remainder and where agree."""
    kind = _arrays.kind_of(x)
    return sys.modules[kind] if kind != "numpy" else np


def _rotation(yaw: Any) -> tuple[Any, Any]:
    """float64 (cos, sin) of float32 yaws. A yaw that is the float32 nearest a quarter turn
    k pi/2 (how np.float32(np.pi / 2) is stored) gets that turn's exact cos/sin: cos(float32
    (pi/2)) is -4.4e-8, not 0, which tilts a "quarter-turned" box by 4.4e-8 rad, below the
    yaw's own resolution (1.2e-7 rad), and lets two boxes touching at yaw +-pi/2 overlap by a
    sliver. Snapping moves a box by at most half a float32 yaw step (<= 2.4e-7 rad here)."""
    xp = _namespace(yaw)
    yaw64 = _as_float64(yaw)
    turns = xp.round(yaw64 / (math.pi / 2))
    nearest = _arrays.as_float32(turns * (math.pi / 2), "yaw", ndim=1) == yaw
    snap = nearest & (abs(turns) <= _MAX_SNAPPED_QUARTER_TURNS)
    q = xp.remainder(turns, 4.0)  # 0, 1, 2, 3: cos 1, 0, -1, 0 and sin 0, 1, 0, -1
    c = xp.where(snap, ((q + 1.0) % 2.0) * (1.0 - q) + 0.0, xp.cos(yaw64))  # + 0: no -0
    s = xp.where(snap, (q % 2.0) * (2.0 - q), xp.sin(yaw64))
    return c, s


def box_frames(boxes: Any) -> Any:
    """(M, 7) float32 boxes -> (M, BOX_FRAME_WIDTH) float32 frames, same kind and device: the
    one writer of the layout, for numpy, torch and cupy alike."""
    if isinstance(boxes, np.ndarray) and boxes.flags.c_contiguous and boxes.shape[0]:
        return _host_box_frames(boxes)
    return _array_box_frames(boxes)


def _array_box_frames(boxes: Any) -> Any:
    """:func:`box_frames` in array operations of the boxes' own library (the reference of
    :func:`_host_box_frames`)."""
    frames = _arrays.empty(boxes, (boxes.shape[0], BOX_FRAME_WIDTH), "float32")
    frames[:, CX:CZ + 1] = boxes[:, 0:3]
    frames[:, HX:HZ + 1] = boxes[:, 3:6] * 0.5
    if boxes.shape[0] == 0:
        return frames
    frames[:, COS], frames[:, SIN] = _rotation(boxes[:, 6])  # float64 rounded to float32
    abs_c, abs_s = abs(frames[:, COS]), abs(frames[:, SIN])
    frames[:, RX] = (abs_c * frames[:, HX] + abs_s * frames[:, HY]) * _PREFILTER_SLACK
    frames[:, RY] = (abs_s * frames[:, HX] + abs_c * frames[:, HY]) * _PREFILTER_SLACK
    return frames


def _host_box_frames(boxes: np.ndarray) -> np.ndarray:
    """:func:`box_frames` of C-contiguous numpy boxes, bit for bit: cos and sin stay numpy's
    (its SIMD float64 cos/sin need not match the libm ones numba would call), the rest of
    :func:`_rotation` and the layout run in one numba pass instead of ~25 array operations."""
    return host_frames_and_rotation(boxes)[0]


def host_frames_and_rotation(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(box_frames(boxes), cos, sin)`` of (M, 7) C-contiguous float32 numpy boxes, ``cos`` /
    ``sin`` the float64 ``np.cos`` / ``np.sin`` of the yaws (not snapped to quarter turns),
    for callers that need those too (the learned tracker's point features)."""
    yaw64 = boxes[:, 6].astype(np.float64)
    cos, sin = np.cos(yaw64), np.sin(yaw64)
    frames = np.empty((boxes.shape[0], BOX_FRAME_WIDTH), np.float32)
    _fill_frames(boxes, cos, sin, _MAX_SNAPPED_QUARTER_TURNS, _PREFILTER_SLACK, frames)
    return frames, cos, sin


def enlarged_host_frames(boxes: np.ndarray, scale: float, margin: float, name: str = "boxes"
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(big, box_frames(big), cos, sin)`` of (M, 7) C-contiguous float32 numpy ``boxes`` whose
    sizes are enlarged to ``size * scale + margin`` (float32 arithmetic, as numpy's on a float32
    array): ``validate_boxes(big)`` and :func:`host_frames_and_rotation` in one numba pass
    (the learned tracker's point gathering, on every box it looks into)."""
    yaw64 = boxes[:, 6].astype(np.float64)
    cos, sin = np.cos(yaw64), np.sin(yaw64)
    big = np.empty_like(boxes)
    frames = np.empty((boxes.shape[0], BOX_FRAME_WIDTH), np.float32)
    if not _enlarge_and_frame(boxes, np.float32(scale), np.float32(margin), cos, sin, _MAX_SNAPPED_QUARTER_TURNS,
                              _PREFILTER_SLACK, _F32_MAX_COORDINATE, _F32_MIN_SIZE, _F32_MAX_SIZE, big, frames):
        validate_boxes(big, name)  # raises, naming the fault
    return big, frames, cos, sin


def validated_host_frames(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """``box_frames(validate_boxes(boxes))`` of (M, 7) C-contiguous float32 numpy boxes in one
    numba pass (:func:`enlarged_host_frames` with the sizes kept: ``size * 1 + 0``)."""
    return enlarged_host_frames(boxes, 1.0, 0.0, name)[1]


@njit(cache=True, nogil=True)
def _enlarge_and_frame(boxes, scale, margin, cos, sin, max_turns, slack, max_coordinate, min_size, max_size, big,
                       frames):
    for i in range(boxes.shape[0]):
        for k in range(7):
            big[i, k] = boxes[i, k] * scale + margin if 3 <= k < 6 else boxes[i, k]
    if not _host_boxes_valid(big, max_coordinate, min_size, max_size):
        return False
    _fill_frames(big, cos, sin, max_turns, slack, frames)
    return True


# cos and sin of the quarter turns q = 0, 1, 2, 3 (the values _rotation's formulas give)
_TURN_COS = np.array([1.0, 0.0, -1.0, 0.0])
_TURN_SIN = np.array([0.0, 1.0, 0.0, -1.0])


@njit(cache=True, nogil=True)
def _fill_frames(boxes, cos, sin, max_turns, slack, frames):
    """The frames of ``boxes`` given numpy's float64 cos / sin of their yaws: _rotation's
    quarter-turn snap and box_frames' float32 arithmetic, operation for operation (float32
    products and sums, no fastmath: no contracted multiply-adds)."""
    half, slack32 = np.float32(0.5), np.float32(slack)
    quarter = np.pi / 2
    for i in range(boxes.shape[0]):
        yaw = boxes[i, 6]
        turns = np.rint(np.float64(yaw) / quarter)  # np.round: half to even, as rint
        c, s = cos[i], sin[i]
        if np.float32(turns * quarter) == yaw and abs(turns) <= max_turns:
            q = int(turns % 4.0)
            c, s = _TURN_COS[q], _TURN_SIN[q]
        for k in range(3):
            frames[i, CX + k] = boxes[i, k]
            frames[i, HX + k] = boxes[i, 3 + k] * half
        fc, fs = np.float32(c), np.float32(s)
        frames[i, COS], frames[i, SIN] = fc, fs
        ac, as_ = abs(fc), abs(fs)
        hx, hy = frames[i, HX], frames[i, HY]
        frames[i, RX] = (ac * hx + as_ * hy) * slack32
        frames[i, RY] = (as_ * hx + ac * hy) * slack32
