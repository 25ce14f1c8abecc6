"""Pairwise affinity of two sets of boxes — the cost the trackers associate on.

Metrics, for boxes a and b (x, y, z centre, dx, dy, dz, yaw):

- ``center_distance``: BEV distance of the centres, sqrt(dx^2 + dy^2), in [0, inf). Lower is
  closer.
- ``bev_iou``: area(A ∩ B) / area(A ∪ B) of the rotated BEV footprints, in [0, 1].
- ``iou_3d``: vol(a ∩ b) / vol(a ∪ b); the intersection is the BEV intersection times the
  z overlap (yaw is about z only), in [0, 1].
- ``giou_bev``: IoU - (C - U) / C with U the union area and C the area of the convex hull of
  both footprints (the smallest convex region holding both; what shapely's
  ``a.union(b).convex_hull`` gives), in [-1, 1] (and never above the IoU).
- ``giou_3d``: the same with volumes: U the union volume, C = hull area x the z extent
  enclosing both boxes, in [-1, 1]. GIoU tends to -1 with distance and rounds to it once the
  union is below ~6e-8 of the enclosing region (1 m boxes 40,000 km apart).

The BEV intersection is exact convex-polygon clipping of the two rotated rectangles
(Sutherland-Hodgman), in float32, relative to one box's centre so that global nuScenes
coordinates lose no precision. The pair is put in a canonical order first, so
``affinity(a, b) == affinity(b, a)`` bit for bit. Identical boxes give exactly 1 (a footprint
inside another is detected and its closed-form area used). Touching boxes give exactly 0 when
their shared face is exact in float32: yaws that are quarter turns (the float32 nearest
k pi/2, such as ``np.float32(np.pi / 2)``, is taken as the exact turn, see
nutrack/ops/_boxes.py) with faces on representable coordinates; at other yaws the rotated
corners round, and touching boxes give 0 up to ~1e-7. All backends run the same operations in
the same order (csrc/include/nutrack/box_overlap.h and its numba twin), so they return
bit-identical matrices.

Range: every valid pair (nutrack/ops/_boxes.py: finite, sizes in [1e-9, 1e9] m, centres within
1e9 m) gives an IoU in [0, 1] and a GIoU in [-1, 1], on every backend, however different the
two boxes' scales; how is argued in box_overlap.h.

Class masking: with ``classes_a`` and ``classes_b`` given, pairs of different classes are not
computed and take ``fill`` (a number or +-inf; NaN is refused). By default ``fill`` is no better
than any value the metric can take on a real pair: +inf for ``center_distance``, -1 for the IoU
and GIoU metrics (IoU >= 0; GIoU reaches -1 only for pairs far beyond any association gate), so
neither a threshold nor an assignment ever picks a masked pair.
"""
from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from nutrack.ops import _arrays, _backend, _numba_affinity
from nutrack.ops._boxes import box_frames, validate_boxes
from nutrack.ops._launch import Launch, launchers

METRICS = ("center_distance", "bev_iou", "iou_3d", "giou_bev", "giou_3d")
_CODES = {name: code for code, name in enumerate(METRICS)}
DEFAULT_FILL = {"center_distance": math.inf, "bev_iou": -1.0, "iou_3d": -1.0, "giou_bev": -1.0,
                "giou_3d": -1.0}
_NO_CLASSES = np.zeros(0, dtype=np.int64)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_LAUNCHERS = launchers(_numba_affinity.pairwise_affinity, "pairwise_affinity")


def _classes(classes: Any, name: str, length: int) -> Any:
    """(length,) integer classes -> contiguous int64 of the caller's kind."""
    kind = _arrays.kind_of(classes)
    if kind == "numpy" and not isinstance(classes, np.ndarray):
        classes = np.asarray(classes)
        if classes.size == 0:
            classes = classes.astype(np.int64)  # np.asarray([]) is float64
    if classes.ndim != 1 or classes.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},), one class per box, got "
                         f"{tuple(classes.shape)}")
    dtype = str(classes.dtype).replace("torch.", "")
    if not dtype.startswith(("int", "uint")):
        raise ValueError(f"{name} has unsupported dtype {dtype}; use an integer dtype")
    if kind == "torch":
        return classes.to(dtype=sys.modules["torch"].int64).contiguous()
    if kind == "cupy":
        return sys.modules["cupy"].ascontiguousarray(classes, dtype="int64")
    return np.ascontiguousarray(classes, dtype=np.int64)


def _fill(fill: Any) -> float:
    """A user's fill as a float32-representable float: finite or +-inf, never NaN (a NaN
    would poison every threshold and assignment it meets) and never a bool."""
    if isinstance(fill, (bool, np.bool_, str, bytes)):
        raise ValueError(f"fill must be a number, got {fill!r}")
    try:
        value = float(fill)
    except (TypeError, ValueError):
        raise ValueError(f"fill must be a number, got {fill!r}") from None
    if math.isnan(value):
        raise ValueError("fill must be a finite number or +-inf, got nan")
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        raise ValueError(f"fill must be within the float32 range (|fill| <= {_FLOAT32_MAX:.4g}) "
                         f"or +-inf, got {value!r}")
    return value


def _concat(first: Any, second: Any) -> Any:
    """Rows of `first` then `second` (same kind and device), C-contiguous."""
    kind = _arrays.kind_of(first)
    if kind == "torch":
        return sys.modules["torch"].cat([first, second])
    if kind == "cupy":
        return sys.modules["cupy"].concatenate([first, second])
    return np.concatenate([first, second])


@_arrays.on_input_device
def pairwise_affinity(boxes_a: Any, boxes_b: Any, metric: str, classes_a: Any = None,
                      classes_b: Any = None, fill: float | None = None, *,
                      backend: str = "auto") -> Any:
    """The (M, N) affinity of every box of `boxes_a` with every box of `boxes_b`.

    Args:
        boxes_a: (M, 7) float32/float64 x, y, z (centre), dx, dy, dz (> 0), yaw.
        boxes_b: (N, 7), the same; on the same device as boxes_a.
        metric: 'center_distance', 'bev_iou', 'iou_3d', 'giou_bev' or 'giou_3d' (module doc).
        classes_a, classes_b: optional (M,) and (N,) integer classes, both or neither; pairs
            of different classes are set to `fill` without being computed.
        fill: the value of masked pairs; None (default) gives DEFAULT_FILL[metric] (+inf for
            center_distance, -1 otherwise).
        backend: 'auto' (by where the inputs live), 'cuda', 'cpu' or 'numba'.
    Returns:
        (M, N) float32 of the inputs' kind, on their device.
    """
    code = _CODES.get(metric) if isinstance(metric, str) else None
    if code is None:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    boxes_a = _arrays.as_float32(boxes_a, "boxes_a", ndim=2, width=7)
    boxes_b = _arrays.as_float32(boxes_b, "boxes_b", ndim=2, width=7)
    if (classes_a is None) != (classes_b is None):
        raise ValueError("classes_a and classes_b must be given together (or neither), got "
                         + ("classes_a only" if classes_b is None else "classes_b only"))
    m, n = boxes_a.shape[0], boxes_b.shape[0]
    if classes_a is not None:
        classes_a = _classes(classes_a, "classes_a", m)
        classes_b = _classes(classes_b, "classes_b", n)
    fill = DEFAULT_FILL[metric] if fill is None else _fill(fill)
    device = _arrays.same_device(boxes_a=boxes_a, boxes_b=boxes_b, classes_a=classes_a,
                                 classes_b=classes_b)
    # Both sets are validated and framed in one go (one box_frames call, not two: this op is
    # called per frame and per class on small matrices, where the fixed cost is what counts).
    boxes = _concat(boxes_a, boxes_b)
    if m + n:
        try:
            validate_boxes(boxes)
        except ValueError:  # say which argument
            validate_boxes(boxes_a, "boxes_a")
            validate_boxes(boxes_b, "boxes_b")
            raise
    launch = Launch(_backend.resolve(backend, device is not None), boxes_a)
    out = launch.empty((m, n), "float32")
    if m and n:
        frames = launch.input(box_frames(boxes))
        if classes_a is not None:
            classes_a, classes_b = launch.input(classes_a), launch.input(classes_b)
        _run(launch, frames[:m], frames[m:], code, classes_a, classes_b, fill, out)
    return launch.output(out)


def _run(launch: Launch, frames_a: Any, frames_b: Any, code: int, classes_a: Any,
         classes_b: Any, fill: float, out: Any) -> None:
    """The kernel call itself, on inputs already checked and where `launch` reads them."""
    if classes_a is None:  # empty: "no classes" (the null address for native launchers)
        classes_a = classes_b = _NO_CLASSES
    launch.run(_LAUNCHERS, frames_a=frames_a, na=frames_a.shape[0], frames_b=frames_b,
               nb=frames_b.shape[0], metric=code, classes_a=classes_a, classes_b=classes_b,
               fill=fill, out=out)


def frames_affinity(frames_a: np.ndarray, frames_b: np.ndarray, metric: str,
                    classes_a: Any = None, classes_b: Any = None, fill: float | None = None, *,
                    backend: str = "auto") -> np.ndarray:
    """`pairwise_affinity` on box frames, for callers that reuse the frames of one set of
    boxes across calls (the trackers: gate, stage 1 and stage 2 of a frame).

    TRUSTED INPUTS, nothing is checked: `frames_a` / `frames_b` are C-contiguous (M, 10) /
    (N, 10) float32 numpy rows of ``box_frames(validate_boxes(boxes))`` (rows of one call may
    be selected: a frame depends on its own box only), `classes_a` / `classes_b` both None or
    both (M,) / (N,) integer numpy arrays, `backend` a host one ('auto', 'cpu', 'numba').
    Same kernel call as `pairwise_affinity`, so the same matrix bit for bit.
    """
    code = _CODES[metric]
    fill = DEFAULT_FILL[metric] if fill is None else _fill(fill)
    m, n = frames_a.shape[0], frames_b.shape[0]
    out = np.empty((m, n), dtype=np.float32)
    if m and n:
        if classes_a is not None:
            classes_a = np.ascontiguousarray(classes_a, dtype=np.int64)
            classes_b = np.ascontiguousarray(classes_b, dtype=np.int64)
        which = _backend.resolve(backend, False)
        if which == "cpu":
            _run_cpu(frames_a, frames_b, code, classes_a, classes_b, fill, out)
        else:
            _run(Launch(which, frames_a), frames_a, frames_b, code, classes_a, classes_b, fill, out)
    return out


def _run_cpu(frames_a: np.ndarray, frames_b: np.ndarray, code: int, classes_a: Any, classes_b: Any,
             fill: float, out: np.ndarray) -> None:
    """`_run` on the cpu backend for trusted, non-empty numpy inputs: the native launcher called
    with the arrays' addresses (0: no classes), the arguments `Launch.run` hands it, without its
    per-argument dispatch, which cost the trackers more than the kernel on a frame's few boxes."""
    no_classes = classes_a is None
    _backend.module_for("cpu").pairwise_affinity_cpu(
        frames_a=frames_a.ctypes.data, na=frames_a.shape[0], frames_b=frames_b.ctypes.data,
        nb=frames_b.shape[0], metric=code, classes_a=0 if no_classes else classes_a.ctypes.data,
        classes_b=0 if no_classes else classes_b.ctypes.data, fill=fill, out=out.ctypes.data)
