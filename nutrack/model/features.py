"""Per-object and per-pair inputs of the association network, computed on the fly.

Everything here is numpy (plus ``nutrack.ops``) and deterministic; the network
(:mod:`nutrack.model.network`) turns these arrays into features.

* :func:`gather_object_points` — each box's own lidar points (``points_in_boxes_all`` on
  slightly enlarged boxes), at most ``max_points`` per object, as per-point inputs in the
  box's local frame.
* :func:`object_geometry` — box geometry relative to the ego pose: centre, range, log size,
  heading, velocity (ego frame), detection score, log point count.
* :func:`pair_geometry` — for (track, detection) pairs: the track moved to the detection's
  time with its constant velocity (no acceleration), then the motion-compensated BEV centre
  distance, ``giou_bev`` and ``iou_3d`` from ``nutrack.ops.pairwise_affinity``, and size /
  heading / velocity differences.
* :func:`candidate_pairs` — the pairs the head scores: same class and motion-compensated
  centre distance within the class's gate.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from nutrack.data.classes import NUM_CLASSES
from nutrack.model import _feature_kernels as _kernels

__all__ = [
    "POINT_DIM",
    "GEOM_DIM",
    "PAIR_DIM",
    "DEFAULT_GATES",
    "ObjectInputs",
    "PointIndex",
    "gather_object_points",
    "count_object_points",
    "object_geometry",
    "make_objects",
    "predict_boxes",
    "candidate_pairs",
    "pair_geometry",
    "pair_metric",
    "nan_to_num",
]

#: per-point inputs: local x, y, z normalised by the (enlarged) half extents, local x, y, z
#: in metres / 4, intensity / 255 (clipped to 1).
POINT_DIM = 7
#: per-object geometry inputs (see :func:`object_geometry`).
GEOM_DIM = 14
#: per-pair geometry inputs (see :func:`pair_geometry`).
PAIR_DIM = 12
#: candidate gate per class (metres, motion-compensated BEV centre distance):
#: car, truck, bus, trailer, pedestrian, motorcycle, bicycle.
DEFAULT_GATES = (6.0, 6.0, 8.0, 6.0, 3.0, 8.0, 5.0)
#: boxes are enlarged by this factor (and 0.2 m) before gathering their points.
ENLARGE = 1.15
_ENLARGE_ABS = 0.2


def nan_to_num(x: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(x)`` (a new array), its ~20 us of checks skipped in the usual case of
    all-finite input (then a plain copy)."""
    x = np.asarray(x)
    return x.copy() if np.isfinite(x).all() else np.nan_to_num(x)


def pair_metric(boxes_a: np.ndarray, boxes_b: np.ndarray, metric: str) -> np.ndarray:
    """``nutrack.ops.pairwise_affinity`` of every pair, as a float32 ``(M, N)`` numpy array
    (empty sets allowed): the network's pair features."""
    a = np.ascontiguousarray(boxes_a, dtype=np.float32).reshape(-1, 7)
    b = np.ascontiguousarray(boxes_b, dtype=np.float32).reshape(-1, 7)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    import nutrack.ops as ops

    return np.asarray(ops.pairwise_affinity(a, b, metric), dtype=np.float32)


class ObjectInputs:
    """The network inputs of N objects.

    geom (N, GEOM_DIM) float32; classes (N,) int64; points (N, K, POINT_DIM) float32 zero-padded;
    mask (N, K) bool (True: a real point); boxes (N, 7) float32 and velocities (N, 2) float32
    (global frame) for the pair geometry; scores (N,) float32.
    """

    __slots__ = ("geom", "classes", "points", "mask", "boxes", "velocities", "scores")

    def __init__(self, geom, classes, points, mask, boxes, velocities, scores):
        self.geom = geom
        self.classes = classes
        self.points = points
        self.mask = mask
        self.boxes = boxes
        self.velocities = velocities
        self.scores = scores

    def __len__(self) -> int:
        return len(self.geom)

    def select(self, index) -> "ObjectInputs":
        return ObjectInputs(*(getattr(self, k)[index] for k in self.__slots__))

    @staticmethod
    def concat(items) -> "ObjectInputs":
        items = list(items)
        k = max([o.points.shape[1] for o in items] + [1])
        pts, msk = [], []
        for o in items:
            pad = k - o.points.shape[1]
            pts.append(np.pad(o.points, ((0, 0), (0, pad), (0, 0))) if pad else o.points)
            msk.append(np.pad(o.mask, ((0, 0), (0, pad))) if pad else o.mask)
        return ObjectInputs(
            np.concatenate([o.geom for o in items]), np.concatenate([o.classes for o in items]),
            np.concatenate(pts), np.concatenate(msk), np.concatenate([o.boxes for o in items]),
            np.concatenate([o.velocities for o in items]), np.concatenate([o.scores for o in items]))


class PointIndex:
    """A frame's points binned into a BEV grid of ``cell`` metres (a counting sort by cell,
    cloud order kept inside a cell), built once a frame and reused by every
    :func:`gather_object_points` call on that frame's points.

    Raises ValueError when a point's x, y or z is NaN or infinite (as ``points_in_boxes_all``)."""

    __slots__ = ("points", "params", "nx", "ny", "cell_start", "order")

    def __init__(self, points: np.ndarray, cell: float = 2.0):
        pts = np.ascontiguousarray(points, dtype=np.float32)
        if pts.ndim != 2 or pts.shape[1] < 3:
            raise ValueError(f"points must have shape (N, >=3), got {pts.shape}")
        self.points = pts
        if len(pts):
            finite, self.params, self.nx, self.ny, self.cell_start, self.order = _kernels.bin_points(pts, float(cell))
            if not finite:
                raise ValueError("points coordinates contain NaN or infinite values")
        else:
            self.params, self.nx, self.ny = np.array([0.0, 0.0, 1.0 / cell]), 1, 1
            self.cell_start, self.order = np.zeros(2, np.int64), np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.points)


def gather_object_points(points, boxes: np.ndarray, max_points: int = 32) -> Tuple[np.ndarray, np.ndarray]:
    """Each box's own points, as network inputs in the box's local frame.

    Args:
        points: ``(P, >=3)`` global-frame points (column 3, if present, is the intensity), a
            :class:`PointIndex` of them (reused across calls on one frame), or None.
        boxes: ``(N, 7)`` global-frame boxes.
        max_points: at most this many points per object, chosen deterministically (evenly
            spaced over the object's points in cloud order).

    Returns:
        ``(N, K, POINT_DIM)`` float32 and ``(N, K)`` bool mask, ``K = max_points``.

    A point belongs to a box when ``nutrack.ops.points_in_boxes_all`` says it lies in the box
    enlarged by ``ENLARGE`` and 0.2 m: the same containment test (the ops' numba twin of the
    C++ kernel, bit for bit), run in one numba pass over the boxes on the frame's
    :class:`PointIndex`, which also writes the features (the numpy arithmetic of the
    reference, operation for operation: float64, then rounded to float32).
    """
    return _gather(points, np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 7), max_points)[:2]


def _gather(points, boxes: np.ndarray, max_points: int):
    """:func:`gather_object_points` of C-contiguous float32 boxes, with the number of points
    each box got (its mask's row sums)."""
    n = len(boxes)
    out = np.zeros((n, max_points, POINT_DIM), np.float32)
    mask = np.zeros((n, max_points), bool)
    counts = np.zeros(n, np.int64)
    if n == 0 or points is None or len(points) == 0 or max_points == 0:
        return out, mask, counts
    index, big, frames, cos, sin = _indexed_and_framed(points, boxes)
    _kernels.gather_points(index.points, index.points.shape[1] > 3, index.params, index.nx, index.ny,
                           index.cell_start, index.order, frames, boxes, big, cos, sin, max_points, out, mask, counts)
    return out, mask, counts


def count_object_points(points, boxes: np.ndarray, max_points: int = 32) -> np.ndarray:
    """``(N,)`` int64: how many points :func:`gather_object_points` gives each box (at most
    ``max_points``), i.e. its ``mask.sum(axis=1)``, without computing the features (the
    confidence head's point counts of the output boxes)."""
    boxes = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 7)
    counts = np.zeros(len(boxes), np.int64)
    if len(boxes) == 0 or points is None or len(points) == 0 or max_points == 0:
        return counts
    index, _, frames, _, _ = _indexed_and_framed(points, boxes)
    _kernels.count_points(index.points, index.params, index.nx, index.ny, index.cell_start, index.order, frames,
                          max_points, counts)
    return counts


def _indexed_and_framed(points, boxes: np.ndarray):
    """``(PointIndex, enlarged boxes, their frames, cos, sin)``: the points binned (unless they
    are a :class:`PointIndex` already), the boxes enlarged, validated and framed, with numpy's
    cos / sin of their yaws (the boxes' own)."""
    index = points if isinstance(points, PointIndex) else PointIndex(points)
    from nutrack.ops._boxes import enlarged_host_frames

    return (index,) + enlarged_host_frames(boxes, ENLARGE, _ENLARGE_ABS)


def object_geometry(boxes: np.ndarray, velocities: np.ndarray, scores: np.ndarray,
                    ego_to_global: Optional[np.ndarray], num_points: np.ndarray) -> np.ndarray:
    """``(N, GEOM_DIM)`` float32: centre in the ego frame (x, y, z; /50, /50, /5), BEV range /50,
    log size (3), heading relative to the ego (cos, sin), velocity in the ego frame (/10, 2),
    speed /10, detection score, log(1 + points) / 5."""
    return _geometry(_float_rows(boxes, 7), nan_to_num(_float_rows(velocities, 2)), _float_rows(scores, 0),
                     ego_to_global, _float_rows(num_points, 0))


def _float_rows(x, width: int) -> np.ndarray:
    """``x`` as C-contiguous ``(N, width)`` (``(N,)`` for width 0) float32, when it is float32,
    else float64 (exact for either: the kernels compute in float64)."""
    x = np.asarray(x)
    x = np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    return x.reshape(-1, width) if width else x.reshape(-1)


def _geometry(boxes, vel, scores, ego_to_global, counts) -> np.ndarray:
    """:func:`object_geometry` of C-contiguous arrays (finite velocities)."""
    pose = np.eye(4) if ego_to_global is None else np.asarray(ego_to_global, dtype=np.float64)
    rot, trans = np.ascontiguousarray(pose[:3, :3]), np.ascontiguousarray(pose[:3, 3])
    out = np.empty((len(boxes), GEOM_DIM), np.float32)
    # one numba pass instead of ~25 array operations: the numpy formulas, operation for
    # operation, with numba's log / cos / hypot (the same float32 values on 1.4M random rows)
    _kernels.geometry_rows(boxes, vel, scores, rot, trans, float(np.arctan2(rot[1, 0], rot[0, 0])), counts, out)
    return out


def make_objects(boxes, velocities, scores, classes, ego_to_global=None, points=None,
                 max_points: int = 32) -> ObjectInputs:
    """:class:`ObjectInputs` of a frame's objects (boxes, velocities global frame)."""
    boxes = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 7)
    vel = nan_to_num(np.ascontiguousarray(velocities, dtype=np.float32).reshape(-1, 2))
    scores = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1)
    classes = np.ascontiguousarray(classes, dtype=np.int64).reshape(-1)
    if len(classes) and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
        raise ValueError(f"classes must be in 0..{NUM_CLASSES - 1}")
    pts, mask, counts = _gather(points, boxes, max_points)
    geom = _geometry(boxes, vel, scores, ego_to_global, counts)
    return ObjectInputs(geom, classes, pts, mask, boxes, vel, scores)


def predict_boxes(boxes: np.ndarray, velocities: np.ndarray, dt) -> np.ndarray:
    """Constant-velocity prediction: centres moved by ``velocity * dt`` (no acceleration);
    ``dt`` a scalar or ``(N,)`` seconds."""
    out = np.array(boxes, dtype=np.float32, copy=True).reshape(-1, 7)
    dt = np.broadcast_to(np.asarray(dt, dtype=np.float64), (len(out),))
    v = nan_to_num(np.asarray(velocities, dtype=np.float64).reshape(-1, 2))
    out[:, 0] = (out[:, 0] + v[:, 0] * dt).astype(np.float32)
    out[:, 1] = (out[:, 1] + v[:, 1] * dt).astype(np.float32)
    return out


def candidate_pairs(pred_track_boxes: np.ndarray, track_classes: np.ndarray, det_boxes: np.ndarray,
                    det_classes: np.ndarray, gates=DEFAULT_GATES) -> Tuple[np.ndarray, np.ndarray]:
    """(track index, detection index) int64 arrays of the pairs within the class gate: same
    class and motion-compensated BEV centre distance < the class's gate."""
    tc = np.ascontiguousarray(track_classes, np.int64).reshape(-1)
    dc = np.ascontiguousarray(det_classes, np.int64).reshape(-1)
    if len(tc) == 0 or len(dc) == 0:
        e = np.zeros(0, np.int64)
        return e, e.copy()
    a = np.ascontiguousarray(pred_track_boxes, np.float64).reshape(-1, 7)
    b = np.ascontiguousarray(det_boxes, np.float64).reshape(-1, 7)
    g = np.asarray(gates, np.float64)[tc]  # each track's gate (numpy's indexing errors kept)
    # numba keeps the pairs that can pass; the decisive test stays numpy's hypot (numba's
    # libm hypot need not round as numpy's does) on those few pairs
    ti, di = _kernels.gated_pairs(a, tc, b, dc, g)
    ok = np.hypot(a[ti, 0] - b[di, 0], a[ti, 1] - b[di, 1]) < g[ti]
    return ti[ok], di[ok]


def pair_geometry(pred_track_boxes: np.ndarray, track_vel: np.ndarray, dt: np.ndarray,
                  det_boxes: np.ndarray, det_vel: np.ndarray, ti: np.ndarray, di: np.ndarray,
                  time_since_update: Optional[np.ndarray] = None, track_classes: Optional[np.ndarray] = None,
                  det_classes: Optional[np.ndarray] = None, frames=None) -> np.ndarray:
    """``(P, PAIR_DIM)`` float32 for the pairs ``(ti[k], di[k])``.

    Columns: motion-compensated BEV centre distance /2 (``pairwise_affinity``
    ``center_distance`` of the predicted track boxes), ``giou_bev``, ``iou_3d``, |dz|, log size
    ratios (3), cos and sin of the heading difference, velocity difference /5, the time gap
    ``dt`` (s) of the track, frames since the track's last update /5.

    ``track_classes`` / ``det_classes`` (optional, both or neither): the boxes' classes, when
    every pair is of one class (as :func:`candidate_pairs` gives them; a ValueError otherwise).
    With them every box is validated and framed; without them only the boxes taking part (the
    affinities are evaluated for the given pairs only in both cases).

    ``frames`` (optional): ``(track frames, detection frames)``, the boxes'
    ``box_frames(validate_boxes(boxes))`` rows already computed by the caller (the tracker
    frames its boxes once a frame), trusted as ``nutrack.ops.affinity.frames_affinity``
    trusts them; without them the boxes taking part are validated and framed here.
    """
    p = len(ti)
    out = np.zeros((p, PAIR_DIM), np.float32)
    if p == 0:
        return out
    tb = np.asarray(pred_track_boxes, np.float32).reshape(-1, 7)
    db = np.asarray(det_boxes, np.float32).reshape(-1, 7)
    ti = np.ascontiguousarray(ti, np.int64).reshape(-1)
    di = np.ascontiguousarray(di, np.int64).reshape(-1)
    if track_classes is not None:
        ca = np.asarray(track_classes, np.int64).reshape(-1)
        cb = np.asarray(det_classes, np.int64).reshape(-1)
        if (ca[ti] != cb[di]).any():
            raise ValueError("pair_geometry: with classes given, every pair must be of one class")
    if frames is not None:
        f_t, f_d, rows, cols = np.ascontiguousarray(frames[0]), np.ascontiguousarray(frames[1]), ti, di
    elif track_classes is not None:  # all the boxes validated and framed, as before
        from nutrack.ops._boxes import validated_host_frames

        both = validated_host_frames(np.concatenate([tb, db]))
        f_t, f_d, rows, cols = both[:len(tb)], both[len(tb):], ti, di
    else:
        f_t, f_d, rows, cols = _pair_frames(tb, db, ti, di)
    # the three affinities of each pair, as pairwise_affinity's kernel computes them
    _kernels.pair_affinities(f_t, f_d, rows, cols, out)
    # the other columns in one numba pass (velocities as np.nan_to_num gives them, in it)
    tsu = None if time_since_update is None else np.ascontiguousarray(time_since_update, np.float64).reshape(-1)
    _kernels.pair_columns(tb, db, _float_rows(track_vel, 2), _float_rows(det_vel, 2),
                          np.ascontiguousarray(np.broadcast_to(np.asarray(dt, np.float64), (len(tb),))),
                          tsu, ti, di, out)
    return out


def _pair_frames(tb: np.ndarray, db: np.ndarray, ti: np.ndarray, di: np.ndarray):
    """``(track frames, detection frames, rows, cols)``: the frames of the boxes taking part in
    the pairs (validated as ``pairwise_affinity`` validates them, one ``box_frames`` call) and
    each pair's rows in them."""
    from nutrack.ops._boxes import box_frames, validate_boxes

    ut, rows = np.unique(ti, return_inverse=True)
    ud, cols = np.unique(di, return_inverse=True)
    frames = box_frames(validate_boxes(np.concatenate([tb[ut], db[ud]])))
    return frames[:len(ut)], frames[len(ut):], rows.astype(np.int64), cols.astype(np.int64)
