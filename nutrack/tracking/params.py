"""Named parameters of the trackers, with their defaults.

Per-class parameters are tuples in nutrack's class order (``TRACKING_CLASSES``: car, truck,
bus, trailer, pedestrian, motorcycle, bicycle). Every parameter can be overridden by name
(``FilterParams(match_threshold=(...))``, ``params.replace(max_age=4)`` or, from the command
line, ``--param max_age=4``); a scalar given for a per-class parameter applies to every
class, and ``name.class=value`` (``--param match_threshold.pedestrian=-0.3``) sets one class.

The defaults of :class:`FilterParams` were tuned on the synthetic TRAIN split (never on val);
see ``docs/tracking.md`` for how. The defaults of :class:`CenterPointParams` are CenterPoint's
published values and must not be tuned.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Iterable, Tuple

import numpy as np

from nutrack._cli import UserError
from nutrack.data.classes import NUM_CLASSES, TRACKING_CLASSES

__all__ = ["CenterPointParams", "FilterParams", "ParameterError", "parse_overrides"]


class ParameterError(UserError, ValueError):
    """A tracker parameter that is unknown, of the wrong type or outside its range."""

MOTION_MODELS = ("cv", "ctra")
METRICS_SIMILARITY = ("bev_iou", "iou_3d", "giou_bev", "giou_3d")
METRICS_DISTANCE = ("center_distance",)
METRICS = METRICS_DISTANCE + METRICS_SIMILARITY
ASSIGNMENTS = ("greedy", "hungarian")


def _pc(*values) -> Tuple:
    """A per-class tuple in TRACKING_CLASSES order."""
    assert len(values) == NUM_CLASSES
    return tuple(values)


class _Params:
    """Validation, overrides and per-class array access shared by the parameter classes."""

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("per_class"):
                value = _per_class_tuple(f.name, value, f.metadata.get("kind", float))
                object.__setattr__(self, f.name, value)
            # No parameter means anything at nan or +-inf (nan compares false, so
            # `--param nms_threshold=nan` used to switch NMS off without a word).
            self._require(f.name, lambda v: not isinstance(v, float) or math.isfinite(v), "finite")
        self._validate()

    def _validate(self) -> None:  # pragma: no cover - overridden
        pass

    def _require(self, name: str, ok: Callable[[Any], bool], rule: str) -> None:
        """Raise ParameterError naming the parameter (and class) whose value fails ``ok``."""
        value = getattr(self, name)
        for i, v in enumerate(value if isinstance(value, tuple) else (value,)):
            if not ok(v):
                where = f".{TRACKING_CLASSES[i]}" if isinstance(value, tuple) else ""
                raise ParameterError(f"parameter {name}{where} must be {rule}, got {v!r}")

    def _require_unit(self, *names: str) -> None:
        for name in names:
            self._require(name, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")

    def replace(self, **changes) -> "_Params":
        """A copy with some parameters changed (names checked)."""
        names = {f.name for f in fields(self)}
        for k in changes:
            if k not in names:
                raise ParameterError(f"unknown {type(self).__name__} parameter {k!r}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **changes)

    def with_overrides(self, overrides: Dict[str, Any]) -> "_Params":
        """Apply ``{"name": value, "name.class": value}`` overrides (values may be strings)."""
        changes: Dict[str, Any] = {}
        by_name = {f.name: f for f in fields(self)}
        for key, value in overrides.items():
            name, _, cls = key.partition(".")
            if name not in by_name:
                raise ParameterError(
                    f"unknown {type(self).__name__} parameter {name!r}; known: {', '.join(sorted(by_name))}")
            f = by_name[name]
            kind = f.metadata.get("kind", type(getattr(self, name)))
            if f.metadata.get("per_class"):
                current = list(changes.get(name, getattr(self, name)))
                if cls:
                    if cls not in TRACKING_CLASSES:
                        raise ParameterError(f"parameter {key!r}: unknown class {cls!r}; expected one of "
                                         f"{', '.join(TRACKING_CLASSES)}")
                    current[TRACKING_CLASSES.index(cls)] = _convert(key, value, kind)
                    changes[name] = tuple(current)
                else:
                    if isinstance(value, str) and "," in value:
                        parts = [p.strip() for p in value.split(",")]
                        if len(parts) != NUM_CLASSES:
                            raise ParameterError(f"parameter {key!r}: {len(parts)} values, expected {NUM_CLASSES} "
                                             f"({', '.join(TRACKING_CLASSES)})")
                        changes[name] = tuple(_convert(key, p, kind) for p in parts)
                    elif isinstance(value, (list, tuple)):
                        changes[name] = tuple(_convert(key, p, kind) for p in value)
                    else:
                        changes[name] = (_convert(key, value, kind),) * NUM_CLASSES
            else:
                if cls:
                    raise ParameterError(f"parameter {name!r} is not per class; drop '.{cls}'")
                changes[name] = _convert(key, value, kind)
        return dataclasses.replace(self, **changes)

    def arr(self, name: str, dtype=np.float64) -> np.ndarray:
        """A per-class parameter as an array indexed by class."""
        return np.asarray(getattr(self, name), dtype=dtype)

    def to_dict(self) -> Dict[str, Any]:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("per_class"):
                out[f.name] = dict(zip(TRACKING_CLASSES, v))
            else:
                out[f.name] = v
        return out


def _convert(key: str, value: Any, kind) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, (int, np.integer)) and value in (0, 1):
            return bool(value)
        raise ParameterError(f"parameter {key!r}: expected a boolean, got {value!r}")
    try:
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {key!r}: expected {getattr(kind, '__name__', kind)}, got {value!r}") from None


def _per_class_tuple(name: str, value: Any, kind) -> Tuple:
    if isinstance(value, dict):
        unknown = set(value) - set(TRACKING_CLASSES)
        if unknown:
            raise ParameterError(f"parameter {name!r}: unknown classes {sorted(unknown)}")
        missing = [c for c in TRACKING_CLASSES if c not in value]
        if missing:
            raise ParameterError(f"parameter {name!r}: no value for {', '.join(missing)}")
        value = [value[c] for c in TRACKING_CLASSES]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        value = (value,) * NUM_CLASSES
    value = tuple(value)
    if len(value) != NUM_CLASSES:
        raise ParameterError(f"parameter {name!r}: {len(value)} values, expected one per class "
                         f"({', '.join(TRACKING_CLASSES)})")
    return tuple(_convert(name, v, kind) for v in value)


def per_class(default: Tuple, kind=float, doc: str = ""):
    return field(default=default, metadata={"per_class": True, "kind": kind, "doc": doc})


def scalar(default: Any, doc: str = "", kind=None):
    md = {"doc": doc}
    if kind is not None:
        md["kind"] = kind
    return field(default=default, metadata=md)


def parse_overrides(items: Iterable[str]) -> Dict[str, str]:
    """``["a=1", "b.car=2"]`` -> ``{"a": "1", "b.car": "2"}`` (for ``--param``)."""
    out: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--param expects NAME=VALUE or NAME.CLASS=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class CenterPointParams(_Params):
    """CenterPoint's published tracker (``tools/nusc_tracking/pub_tracker.py``)."""

    #: Largest BEV distance (m) between a detection moved back by ``velocity x time lag`` and a
    #: track's position for the pair to match: CenterPoint's ``NUSCENE_CLS_VELOCITY_ERROR``.
    max_distance: Tuple[float, ...] = per_class(_pc(4.0, 4.0, 5.5, 3.0, 1.0, 13.0, 3.0),
                                                doc="matching gate (m) per class")
    #: A matched track has age 1; an unmatched track with age < max_age coasts (age + 1, not
    #: output), otherwise it is deleted. 3 (CenterPoint's default) bridges two missed frames.
    max_age: int = scalar(3, "coasting limit (CenterPoint's --max_age)", int)
    #: Hungarian matching instead of CenterPoint's greedy (``--hungarian``).
    hungarian: bool = scalar(False, "use scipy's linear_sum_assignment", bool)
    #: Detections below this score are dropped before tracking (CenterPoint: none, 0.0).
    score_threshold: float = scalar(0.0, "drop detections scoring below this", float)

    def _validate(self) -> None:
        self._require("max_age", lambda v: v >= 1, ">= 1")
        self._require("max_distance", lambda v: v >= 0, ">= 0 (m)")
        self._require_unit("score_threshold")


@dataclass(frozen=True)
class FilterParams(_Params):
    """The filter-based tracker (Kalman CV / CTRA, two-stage GIoU association)."""

    # -- detections -------------------------------------------------------------------------
    #: Detections scoring at least this start tracks and take part in the first association.
    score_threshold: Tuple[float, ...] = per_class(_pc(0.20, 0.20, 0.20, 0.20, 0.20, 0.20, 0.20),
                                                   doc="high-score threshold per class")
    #: Detections between this and ``score_threshold`` only extend existing tracks (second
    #: stage); anything below is dropped.
    low_score_threshold: Tuple[float, ...] = per_class(_pc(0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05),
                                                       doc="low-score threshold per class")
    #: Same-class NMS on detections: a detection overlapping a higher-scoring one by more than
    #: this (``nms_metric``) is dropped. 1.0 disables it for a class.
    nms_threshold: Tuple[float, ...] = per_class(_pc(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5),
                                                 doc="NMS overlap per class")
    nms_metric: str = scalar("bev_iou", "overlap metric of the NMS")

    # -- motion ------------------------------------------------------------------------------
    #: 'ctra' (constant turn rate and acceleration, EKF) or 'cv' (constant velocity, KF).
    motion_model: Tuple[str, ...] = per_class(_pc("ctra", "ctra", "ctra", "ctra", "cv", "cv", "cv"),
                                              kind=str, doc="motion model per class")
    #: Measurement noise (standard deviations): position (m), velocity (m/s), yaw (rad).
    pos_noise: Tuple[float, ...] = per_class(_pc(0.5, 0.6, 0.6, 0.6, 0.3, 0.5, 0.4), doc="sigma of measured x, y (m)")
    vel_noise: Tuple[float, ...] = per_class(_pc(1.0, 1.0, 1.0, 1.0, 0.6, 1.2, 0.8), doc="sigma of measured vx, vy (m/s)")
    yaw_noise: Tuple[float, ...] = per_class(_pc(0.3, 0.3, 0.3, 0.3, 0.5, 0.4, 0.4), doc="sigma of measured yaw (rad)")
    #: Process noise: acceleration (m/s^2), yaw acceleration (rad/s^2), jerk (m/s^3, CTRA).
    accel_noise: Tuple[float, ...] = per_class(_pc(2.0, 1.5, 1.5, 1.5, 1.5, 3.0, 2.0), doc="sigma of acceleration")
    yaw_rate_noise: Tuple[float, ...] = per_class(_pc(0.5, 0.4, 0.4, 0.4, 1.0, 0.8, 0.8), doc="sigma of yaw acceleration")
    jerk_noise: Tuple[float, ...] = per_class(_pc(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), doc="sigma of jerk (CTRA)")
    #: Weight of a new measurement in the running average of z and box size.
    size_smoothing: float = scalar(0.3, "exponential smoothing of z and size", float)
    #: Output the filtered box (True) or the matched detection's box (False).
    output_filtered: bool = scalar(True, "report filtered positions", bool)

    # -- association --------------------------------------------------------------------------
    #: Candidate gate of both stages: a track and a detection of its class can match only
    #: when the track's predicted centre is within this BEV distance (m) of the detection.
    gate_distance: Tuple[float, ...] = per_class(_pc(3.5, 3.5, 6.0, 5.0, 2.0, 6.0, 4.0),
                                                 doc="centre-distance gate per class (m)")
    metric: str = scalar("giou_3d", "first-stage affinity metric")
    #: First stage: a pair matches when its affinity exceeds this (similarities) or its
    #: distance is below it (center_distance).
    match_threshold: Tuple[float, ...] = per_class(_pc(-0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5),
                                                   doc="first-stage gate per class")
    assignment: str = scalar("hungarian", "'greedy' or 'hungarian'")
    #: Second stage (unmatched tracks x leftover and low-score detections).
    metric2: str = scalar("giou_3d", "second-stage affinity metric")
    match_threshold2: Tuple[float, ...] = per_class(_pc(-0.7, -0.7, -0.7, -0.7, -0.7, -0.7, -0.7),
                                                    doc="second-stage gate per class")

    # -- life cycle -------------------------------------------------------------------------
    #: Matches needed to confirm a track (a track born in the first ``min_hits`` frames of a
    #: scene is confirmed as soon as it is matched every frame, as in AB3DMOT).
    min_hits: Tuple[int, ...] = per_class(_pc(1, 1, 1, 1, 1, 1, 1), kind=int, doc="hits to confirm")
    #: A track not matched for more than this many frames is deleted.
    max_age: Tuple[int, ...] = per_class(_pc(6, 6, 6, 6, 4, 6, 6), kind=int, doc="frames a track may coast")
    #: Frames an unconfirmed track may go unmatched before deletion.
    tentative_max_age: int = scalar(0, "frames a tentative track may coast", int)
    #: A detection must score at least this to start a track.
    birth_score: Tuple[float, ...] = per_class(_pc(0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2), doc="birth threshold")

    # -- output -----------------------------------------------------------------------------
    #: Coasting (unmatched) confirmed tracks are output for this many frames.
    output_max_coast: Tuple[int, ...] = per_class(_pc(3, 3, 3, 3, 3, 3, 3), kind=int, doc="frames a coasting track is reported")
    #: A coasting track reports ``last score x score_decay ** frames_unmatched``.
    score_decay: Tuple[float, ...] = per_class(_pc(0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4), doc="score decay per coasting frame")
    #: A matched track reports ``(1 - w) x detection score + w x previous reported score``.
    score_smoothing: float = scalar(0.0, "weight of the track's previous score", float)
    #: Report unconfirmed tracks, with their score times this factor (0 hides them).
    tentative_score_factor: float = scalar(1.0, "score factor of unconfirmed tracks", float)

    def _validate(self) -> None:
        choices = (("motion_model", MOTION_MODELS), ("metric", METRICS), ("metric2", METRICS),
                   ("nms_metric", METRICS_SIMILARITY), ("assignment", ASSIGNMENTS))
        for name, allowed in choices:
            self._require(name, lambda v: v in allowed, f"one of {', '.join(allowed)}")
        self._require("min_hits", lambda v: v >= 1, ">= 1")
        for name in ("max_age", "output_max_coast", "tentative_max_age"):
            self._require(name, lambda v: v >= 0, ">= 0")
        for name in ("gate_distance", "pos_noise", "vel_noise", "yaw_noise", "accel_noise", "yaw_rate_noise",
                     "jerk_noise"):
            self._require(name, lambda v: v > 0, "> 0")
        # Scores and overlaps are fractions: outside [0, 1] a threshold keeps everything or
        # nothing (score_threshold=inf tracked nothing and exited 0).
        self._require_unit("score_threshold", "low_score_threshold", "birth_score", "nms_threshold",
                           "score_decay", "tentative_score_factor")
        self._require("size_smoothing", lambda v: 0.0 < v <= 1.0, "in (0, 1]")
        self._require("score_smoothing", lambda v: 0.0 <= v < 1.0, "in [0, 1)")
        if any(lo > hi for lo, hi in zip(self.low_score_threshold, self.score_threshold)):
            raise ParameterError("parameter low_score_threshold must not exceed score_threshold")
