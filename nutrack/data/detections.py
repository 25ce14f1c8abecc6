"""Detection- and tracking-submission files: read and validate, write atomically.

Detection files are what CenterPoint, mmdet3d, BEVFusion, ... write for the nuScenes
detection challenge::

    {"meta": {...}, "results": {sample_token: [box, ...], ...}}
    box = {"sample_token", "translation" [3], "size" [3] (w, l, h), "rotation" [4] (w, x, y, z),
           "velocity" [2], "detection_name", "detection_score", "attribute_name"}

:func:`load_detections` validates the whole file before returning anything, and a bad
file raises :class:`SubmissionFormatError` (a ``ValueError``) whose message names the
sample token, the box index and the field at fault. :mod:`nutrack.data.writers` writes
detection files and the tracking-submission format the devkit's ``TrackingEval`` reads.

Parsing (orjson when installed, a size cap, repeated sample keys caught) lives in
:mod:`nutrack.data.jsonfile`; files of :data:`PIECEWISE_MIN_BYTES` or more are parsed a sample
at a time, each sample's boxes turned into arrays before the next is parsed, so that memory
holds the arrays rather than the whole file's JSON objects (same results, same errors).
Writing goes through :mod:`nutrack._io`. The limits on values no real box can have are
:data:`MAX_ABS_COORDINATE`, :data:`SIZE_RANGE` and :data:`MAX_ABS_VELOCITY` (see docs/data.md).
"""

from __future__ import annotations

import codecs
import json
import numbers
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from nutrack._cli import UserError
from nutrack._io import atomic_write_bytes, atomic_write_json

from .boxes import boxes_from_nuscenes
from .classes import CLASS_TO_ID, DETECTION_CLASSES, TRACKING_CLASSES
from .jsonfile import (JSONFileError, NotPieceable, checked_size, document_members, gc_paused, loads_piece,
                       may_have_repeated_keys, object_members, parse_json, parse_json_strict, read_json,
                       read_json_bytes, read_range, scan_events)

__all__ = [
    "Detections",
    "LabelledDetections",
    "Tracks",
    "DetectionSet",
    "SubmissionFormatError",
    "MAX_BOXES_PER_SAMPLE",
    "MAX_ABS_COORDINATE",
    "SIZE_RANGE",
    "MAX_ABS_VELOCITY",
    "DEFAULT_META",
    "load_detections",
    "load_tracking_results",
    "read_json",
    "atomic_write_bytes",
    "atomic_write_json",
]

MAX_BOXES_PER_SAMPLE = 500
#: Limits on values no real box can have, far outside anything real so that they catch garbage
#: (1e20, 1e39 = inf in float32, 2**63), not unusual detections. Coordinates are global-frame
#: metres: the largest nuScenes map spans under 3 km, and 100 km keeps float32 positions
#: accurate to 8 mm. Sizes (m): a 1 mm object is below any lidar's resolution, a 1 km one is
#: no vehicle; 1e-300 would be 0 in float32. Velocities (m/s): 1000 m/s is three times the
#: speed of sound.
MAX_ABS_COORDINATE = 1e5
SIZE_RANGE = (1e-3, 1e3)
MAX_ABS_VELOCITY = 1e3
DEFAULT_META = {
    "use_camera": False,
    "use_lidar": True,
    "use_radar": False,
    "use_map": False,
    "use_external": False,
}


class SubmissionFormatError(UserError, ValueError):
    """A detection or tracking file that does not follow the nuScenes submission format
    (a :class:`~nutrack._cli.UserError`: the commands report it in one line)."""


# --------------------------------------------------------------------------------------
# Per-frame arrays
# --------------------------------------------------------------------------------------


def _set_array(obj, name: str, dtype, tail: Tuple[int, ...]) -> None:
    arr = np.asarray(getattr(obj, name), dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0,) + tail)
    if arr.ndim != 1 + len(tail) or arr.shape[1:] != tail:
        raise ValueError(f"{type(obj).__name__}.{name} must have shape (N{''.join(', %d' % t for t in tail)}), "
                         f"got {arr.shape}")
    object.__setattr__(obj, name, np.ascontiguousarray(arr))


def _check_arrays(obj, n_fields: Sequence[Tuple[str, Tuple[int, ...]]]) -> None:
    n = len(obj.boxes)
    for name, tail in n_fields:
        arr = getattr(obj, name)
        if arr.shape != (n,) + tail:
            raise ValueError(
                f"{type(obj).__name__}.{name} must have shape {(n,) + tail}, got {arr.shape}"
            )


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Detections:
    """The detections of one frame, as arrays (global frame).

    boxes: ``(N, 7)`` float32 ``x, y, z, dx, dy, dz, yaw`` (see :mod:`nutrack.data.boxes`);
    velocities: ``(N, 2)`` float32 ``vx, vy`` in m/s; scores: ``(N,)`` float32;
    classes: ``(N,)`` int64 indexes into :data:`nutrack.data.classes.TRACKING_CLASSES`.
    Rows keep the order of the file.
    """

    boxes: np.ndarray
    velocities: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self):
        _set_array(self, "boxes", np.float32, (7,))
        _set_array(self, "velocities", np.float32, (2,))
        _set_array(self, "scores", np.float32, ())
        _set_array(self, "classes", np.int64, ())
        _check_arrays(self, [("velocities", (2,)), ("scores", ()), ("classes", ())])

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 7)), np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.int64))

    def select(self, index) -> "Detections":
        """Rows by boolean mask or integer index."""
        if type(self) is not Detections or not isinstance(index, np.ndarray):
            return Detections(self.boxes[index], self.velocities[index], self.scores[index], self.classes[index])
        # rows of checked arrays by an index array are checked arrays: no second validation (a
        # tracker selects from a frame's detections every frame)
        out = object.__new__(Detections)
        for name in ("boxes", "velocities", "scores", "classes"):
            object.__setattr__(out, name, np.ascontiguousarray(getattr(self, name)[index]))
        return out


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class LabelledDetections(Detections):
    """:class:`Detections` with what a detection file says of each box beyond the tracking
    class: ``names (N,)`` its detection-class name (one of the ten
    :data:`~nutrack.data.classes.DETECTION_CLASSES`; ``classes`` is -1 for the three
    detection-only ones) and ``attributes (N,)`` its nuScenes attribute (``""`` for none, as
    for cones and barriers). What the detection simulator writes."""

    names: np.ndarray = None
    attributes: np.ndarray = None

    def __post_init__(self):
        super().__post_init__()
        n = len(self.boxes)
        names = np.asarray([] if self.names is None else self.names, dtype=object).reshape(-1)
        attrs = np.asarray([""] * n if self.attributes is None else self.attributes, dtype=object).reshape(-1)
        if names.shape != (n,) or attrs.shape != (n,):
            raise ValueError(f"LabelledDetections.names and .attributes must have shape ({n},), "
                             f"got {names.shape} and {attrs.shape}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "attributes", attrs)

    def select(self, index) -> "LabelledDetections":
        return LabelledDetections(self.boxes[index], self.velocities[index], self.scores[index], self.classes[index],
                                  self.names[index], self.attributes[index])


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class Tracks:
    """Tracked boxes of one frame: :class:`Detections`' arrays plus ``track_ids (N,)``
    (integers or strings; unique within a frame)."""

    boxes: np.ndarray
    velocities: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    track_ids: np.ndarray

    def __post_init__(self):
        _set_array(self, "boxes", np.float32, (7,))
        _set_array(self, "velocities", np.float32, (2,))
        _set_array(self, "scores", np.float32, ())
        _set_array(self, "classes", np.int64, ())
        _set_array(self, "track_ids", None, ())
        _check_arrays(self, [("velocities", (2,)), ("scores", ()), ("classes", ()), ("track_ids", ())])

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> "Tracks":
        return cls(np.zeros((0, 7)), np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))


class DetectionSet(dict):
    """``{sample_token: Detections}`` read from a detection file, with the file's ``meta``."""

    def __init__(self, frames: Mapping[str, Detections], meta: Optional[dict] = None, path: str = ""):
        super().__init__(frames)
        self.meta = dict(meta or {})
        self.path = path

    @property
    def num_boxes(self) -> int:
        return sum(len(d) for d in self.values())


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

_VECTOR_FIELDS = (("translation", 3), ("size", 3), ("rotation", 4), ("velocity", 2))


def _fmt(value: Any, limit: int = 80) -> str:
    """A value as the file spells it (``true``, ``null``, ``1e+300``), cut to ``limit``."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    except RecursionError:  # a value nested deeper than Python recurses
        text = f"<{type(value).__name__} nested too deeply to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_bool(x: Any) -> bool:
    return x is True or x is False


def _float_or_inf(x: Any) -> float:
    try:
        return float(x)
    except OverflowError:  # an integer beyond float range: as impossible as inf
        return float("inf") if x > 0 else float("-inf")


def _numbers(values: list, shape: Tuple[int, ...]) -> np.ndarray:
    """``values`` as an array of the given shape, any dtype numpy infers (checked by caller)."""
    arr = np.array(values)
    if arr.dtype.kind == "O" and arr.shape == shape and all(_is_number(x) for x in arr.flat):
        # integers beyond int64 make numpy fall back to objects; they are numbers all the same
        arr = np.array([_float_or_inf(x) for x in arr.flat], dtype=np.float64).reshape(shape)
    return arr


# (field, rows that pass, what the rule is): the checks every box's numbers must pass after
# the finiteness check; see the limits at the top of the module.
def _range_rules(arrays: Dict[str, np.ndarray]):
    lo, hi = SIZE_RANGE
    size = arrays["size"]
    yield "size", (size > 0).all(axis=1), "must be positive (w, l, h)"
    yield "size", ((size >= lo) & (size <= hi)).all(axis=1), f"must lie in [{lo:g}, {hi:g}] m (w, l, h)"
    yield ("translation", (np.abs(arrays["translation"]) <= MAX_ABS_COORDINATE).all(axis=1),
           f"coordinates must lie within +-{MAX_ABS_COORDINATE:g} m of the global origin")
    yield ("velocity", (np.abs(arrays["velocity"]) <= MAX_ABS_VELOCITY).all(axis=1),
           f"must lie within +-{MAX_ABS_VELOCITY:g} m/s (vx, vy)")


class _Validator:
    """Validates one file's boxes; raises SubmissionFormatError with token/box/field."""

    def __init__(self, path: str, kind: str, rotation_tol: float, max_boxes: int):
        self.path = path
        self.kind = kind  # "detection" | "tracking"
        self.rotation_tol = rotation_tol
        self.max_boxes = max_boxes
        # numpy reads True as 1.0 in a list of floats, so booleans are looked for box by box
        # -- unless the loader has seen that the file holds none outside 'meta'.
        self.bools_possible = True
        if kind == "detection":
            self.name_field, self.score_field = "detection_name", "detection_score"
            self.names = {n: CLASS_TO_ID.get(n, -1) for n in DETECTION_CLASSES}
        else:
            self.name_field, self.score_field = "tracking_name", "tracking_score"
            self.names = dict(CLASS_TO_ID)

    def fail(self, token: Optional[str], index: Optional[int], fieldname: Optional[str], msg: str):
        where = [f"{self.kind} file {self.path}"]
        if token is not None:
            where.append(f"sample {token!r}")
        if index is not None:
            where.append(f"box {index}")
        if fieldname is not None:
            where.append(f"field {fieldname!r}")
        raise SubmissionFormatError(", ".join(where) + ": " + msg)

    # -- slow path: find the first malformed box precisely -----------------------------
    def diagnose(self, token: str, boxes: list) -> None:
        for i, box in enumerate(boxes):
            if not isinstance(box, dict):
                self.fail(token, i, None, f"a box must be a JSON object, got {_fmt(box)}")
            for fname, n in _VECTOR_FIELDS:
                if fname not in box:
                    self.fail(token, i, fname, "missing")
                v = box[fname]
                if not isinstance(v, (list, tuple)) or len(v) != n or not all(_is_number(x) for x in v):
                    self.fail(token, i, fname, f"must be a list of {n} numbers, got {_fmt(v)}")
            for fname in (self.name_field, self.score_field):
                if fname not in box:
                    self.fail(token, i, fname, "missing")
            if not _is_number(box[self.score_field]):
                self.fail(token, i, self.score_field, f"must be a number, got {_fmt(box[self.score_field])}")
            if not isinstance(box[self.name_field], str):
                self.fail(token, i, self.name_field, f"must be a string, got {_fmt(box[self.name_field])}")
            if self.kind == "tracking":
                if "tracking_id" not in box:
                    self.fail(token, i, "tracking_id", "missing")
                tid = box["tracking_id"]
                if not isinstance(tid, (str, int)) or isinstance(tid, bool):
                    self.fail(token, i, "tracking_id", f"must be a string or an integer, got {_fmt(tid)}")
            if "sample_token" in box and not isinstance(box["sample_token"], str):
                self.fail(token, i, "sample_token", f"must be a string, got {_fmt(box['sample_token'])}")
        # Nothing found: the fast path failed for a reason we do not recognise.
        self.fail(token, None, None, "malformed box list")

    def reject_bools(self, token: str, boxes: list) -> None:
        for i, box in enumerate(boxes):
            for fname, _ in _VECTOR_FIELDS:
                if any(_is_bool(x) for x in box[fname]):
                    self.fail(token, i, fname, f"must hold numbers, not booleans, got {_fmt(box[fname])}")
            if _is_bool(box[self.score_field]):
                self.fail(token, i, self.score_field, f"must be a number, not a boolean, got {_fmt(box[self.score_field])}")

    # -- fast path: vectorised -----------------------------------------------------------
    def gather(self, token: str, boxes: list):
        """(arrays by field as float64, scores, names, ids or None), or diagnose() raises."""
        n = len(boxes)
        arrays = {}
        try:
            for fname, width in _VECTOR_FIELDS:
                # No dtype given: numpy infers one, and anything but plain numbers (strings,
                # nulls, nested lists) shows up as a non-numeric dtype or a wrong shape.
                arr = _numbers([b[fname] for b in boxes], (n, width))
                if arr.shape != (n, width) or arr.dtype.kind not in "fi":
                    raise ValueError
                arrays[fname] = arr.astype(np.float64, copy=False)
            scores = _numbers([b[self.score_field] for b in boxes], (n,))
            names = [b[self.name_field] for b in boxes]
            if scores.shape != (n,) or scores.dtype.kind not in "fi" or not all(type(x) is str for x in names):
                raise ValueError
            ids = None
            if self.kind == "tracking":
                ids = [b["tracking_id"] for b in boxes]
                if not all(type(x) in (str, int) for x in ids):
                    raise ValueError
            tokens = {b.get("sample_token", token) for b in boxes}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
            self.diagnose(token, boxes)
            raise  # unreachable: diagnose always raises
        # The box's own sample_token must agree with the key it is filed under.
        if tokens != {token}:
            for i, b in enumerate(boxes):
                if b.get("sample_token", token) != token:
                    self.fail(token, i, "sample_token",
                              f"{_fmt(b.get('sample_token'))} differs from the sample it is filed under")
        if self.bools_possible:
            self.reject_bools(token, boxes)
        return arrays, scores.astype(np.float64, copy=False), names, ids

    def check_values(self, token: str, boxes: list, arrays: Dict[str, np.ndarray], scores: np.ndarray) -> None:
        def first_bad(ok: np.ndarray, fname: str, rule: str, extra=lambda i: "") -> None:
            if not ok.all():
                i = int(np.argmin(ok))
                self.fail(token, i, fname, f"{rule}, got {_fmt(boxes[i][fname])}{extra(i)}")

        for fname, _ in _VECTOR_FIELDS:
            first_bad(np.isfinite(arrays[fname]).all(axis=1), fname, "must be finite")
        for fname, ok, rule in _range_rules(arrays):
            first_bad(ok, fname, rule)
        with np.errstate(over="ignore"):  # a 1e300 component: norm inf, rejected below without a warning
            qnorm = np.sqrt((arrays["rotation"] ** 2).sum(axis=1))
        first_bad(np.abs(qnorm - 1.0) <= self.rotation_tol, "rotation",
                  f"must be a unit quaternion (w, x, y, z) within {self.rotation_tol:g}",
                  lambda i: f" of norm {qnorm[i]:.6g}")
        first_bad(np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0), self.score_field, "must be a number in [0, 1]")

    def classes_of(self, token: str, names: List[str]) -> np.ndarray:
        classes = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            c = self.names.get(name)
            if c is None:
                valid = DETECTION_CLASSES if self.kind == "detection" else TRACKING_CLASSES
                self.fail(token, i, self.name_field, f"unknown class {name!r}; expected one of {', '.join(valid)}")
            classes[i] = c
        return classes

    def check_ids(self, token: str, ids: list) -> None:
        seen = {}
        for i, tid in enumerate(ids):
            if tid in seen:
                self.fail(token, i, "tracking_id",
                          f"{tid!r} repeats box {seen[tid]}'s id; ids must be unique within a sample")
            seen[tid] = i

    def parse_sample(self, token: str, boxes: Any):
        """Returns (boxes7, velocities, scores, classes(-1 for non-tracking), ids or None)."""
        if not isinstance(boxes, list):
            self.fail(token, None, None, f"the value of a sample must be a list of boxes, got {_fmt(boxes)}")
        n = len(boxes)
        if n > self.max_boxes:
            self.fail(token, None, None, f"{n} boxes, more than the {self.max_boxes} allowed per sample")
        if n == 0:
            return (np.zeros((0, 7), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32),
                    np.zeros(0, np.int64), [] if self.kind == "tracking" else None)
        arrays, scores, names, ids = self.gather(token, boxes)
        self.check_values(token, boxes, arrays, scores)
        classes = self.classes_of(token, names)
        if ids is not None:
            self.check_ids(token, ids)
        boxes7 = boxes_from_nuscenes(arrays["translation"], arrays["size"], arrays["rotation"])
        return boxes7, arrays["velocity"].astype(np.float32), scores.astype(np.float32), classes, ids

    def check_top(self, data: Any) -> Tuple[dict, dict]:
        if not isinstance(data, dict):
            self.fail(None, None, None, f"the top level must be a JSON object, got {type(data).__name__}")
        if "results" not in data:
            self.fail(None, None, None, "no 'results' field (expected {'meta': {...}, 'results': {...}})")
        if "meta" not in data:
            self.fail(None, None, None, "no 'meta' field (expected {'meta': {...}, 'results': {...}})")
        if not isinstance(data["results"], dict):
            self.fail(None, None, None, f"'results' must map sample tokens to lists of boxes, got {type(data['results']).__name__}")
        if not isinstance(data["meta"], dict):
            self.fail(None, None, None, f"'meta' must be a JSON object, got {type(data['meta']).__name__}")
        return data["results"], data["meta"]

    def check_tokens(self, results: dict, expected: Optional[Sequence[str]], allow_missing: bool, what: str) -> None:
        if expected is None:
            return
        expected_set = set(expected)
        for token in results:
            if token not in expected_set:
                self.fail(token, None, None, f"not a sample of {what}")
        if not allow_missing and len(results) != len(expected_set):
            missing = [t for t in expected if t not in results]
            self.fail(missing[0], None, None,
                      f"missing: the file has no entry for it ({len(missing)} of {len(expected_set)} samples of "
                      f"{what} are missing; pass allow_missing=True / --allow-missing to treat them as empty)")


def _count_bools(obj: Any) -> int:
    """JSON booleans anywhere in ``obj`` (iterative: orjson parses 1024 levels, more than
    Python's recursion limit)."""
    count, stack = 0, [obj]
    while stack:
        x = stack.pop()
        if _is_bool(x):
            count += 1
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return count


_REPEATED_SAMPLE = ("listed more than once in 'results'; a JSON parser keeps only the last entry, so the "
                    "other's boxes would be lost")


def _read_submission(v: _Validator, max_bytes: Optional[int]) -> Tuple[dict, dict]:
    """Parse and check the top level of a submission file: ``(results, meta)``. A sample key
    or a top-level key listed twice is an error (a JSON parser keeps the last, and the other's
    boxes would vanish). Repeated keys inside a box or in meta are not looked for: they lose no
    box, and the kept value is validated like any other."""
    try:
        raw = read_json_bytes(v.path, max_bytes)
        data, repeated = parse_json(raw, v.path)
        results = data.get("results") if isinstance(data, dict) else None
        if repeated is None and isinstance(results, dict) and may_have_repeated_keys(raw, results):
            data = results = None  # free the first parse before the second
            data, repeated = parse_json_strict(raw, v.path)
    except JSONFileError as e:
        v.fail(None, None, None, e.reason)
    results, meta = v.check_top(data)
    for key, obj in repeated or ():
        if obj is results:
            v.fail(key, None, None, _REPEATED_SAMPLE)
        if obj is data:
            v.fail(None, None, None, f"the top-level key {key!r} appears more than once; a JSON parser keeps "
                                     f"only the last")
    # Booleans inside 'results' need a box-by-box look; skip it when there are none (the usual case).
    v.bools_possible = raw.count(b"true") + raw.count(b"false") > _count_bools(meta)
    return results, meta


#: Files at least this large are read a sample at a time (:func:`_read_frames_piecewise`); smaller
#: ones whole, as fast and without numba's start-up (the scan's kernel compiles or loads on first use).
PIECEWISE_MIN_BYTES = 8 * 2 ** 20


def _read_frames(v: _Validator, max_bytes: Optional[int], expected: Optional[List[str]], allow_missing: bool,
                 what: str, convert) -> Tuple[dict, dict]:
    """``({token: convert(token, boxes)}, meta)`` for the file's samples in file order, after
    the checks of the top level and of the tokens against ``expected``."""
    try:
        size, _ = checked_size(v.path, max_bytes)
    except JSONFileError as e:
        v.fail(None, None, None, e.reason)
    if size >= PIECEWISE_MIN_BYTES:
        try:
            return _read_frames_piecewise(v, size, expected, allow_missing, what, convert)
        except NotPieceable:
            pass  # not a file the piecewise reader vouches for: the whole-file path gives the error, if any
    results, meta = _read_submission(v, max_bytes)
    v.check_tokens(results, expected, allow_missing, what)
    frames = {}
    with gc_paused():  # millions of live JSON objects: collections would only cost time
        for token, boxes in results.items():
            frames[token] = convert(token, boxes)
    return frames, meta


def _read_skeleton(f, size: int) -> Tuple[dict, list, list]:
    """``(top-level values but 'results', sample tokens, their members)`` of an open file, from
    its scan (see :mod:`nutrack.data.jsonfile`); the samples' boxes are not read.
    NotPieceable for what the whole-file path must judge: a repeated top-level key, no
    'results' or one that is not an object, anything but whitespace after the top object."""
    start = len(codecs.BOM_UTF8) if read_range(f, 0, 3) == codecs.BOM_UTF8 else 0  # tolerated, as there
    events = scan_events(f, size, start)
    top = document_members(events)
    keys = [loads_piece(read_range(f, m[0], m[1])) for m in top]
    if len(set(keys)) != len(keys) or "results" not in keys:
        raise NotPieceable("a repeated top-level key, or no 'results'")
    others, samples = {}, []
    for key, m in zip(keys, top):
        if key == "results":
            samples = object_members(events, m[4])[0]
        else:
            others[key] = loads_piece(read_range(f, m[2], m[3]))
    tokens = [loads_piece(read_range(f, m[0], m[1])) for m in samples]
    return others, tokens, samples


def _read_frames_piecewise(v: _Validator, size: int, expected, allow_missing: bool, what: str, convert):
    """:func:`_read_frames` for a large file, holding one sample's JSON objects at a time: a
    5 GB file parsed whole takes 5.7-7.7x its size, more than a 24 GB machine has. The same
    checks in the same order, and the same messages, as the whole-file path (which misses a
    repeated sample whose first value is not a list; this catches it)."""
    with open(v.path, "rb") as f:
        others, tokens, samples = _read_skeleton(f, size)
        done = 0
        try:
            _, meta = v.check_top({**others, "results": {}})  # 'results' is an object (_read_skeleton)
            seen: Dict[str, None] = {}  # a dict: check_tokens names the first unknown one in file order
            for token in tokens:
                if token in seen:
                    v.fail(token, None, None, _REPEATED_SAMPLE)
                seen[token] = None
            v.check_tokens(seen, expected, allow_missing, what)
            frames = {}
            with gc_paused():
                for done, (token, m) in enumerate(zip(tokens, samples)):
                    raw = read_range(f, m[2], m[3])
                    # booleans need a box-by-box look (see _Validator); skip it when there are none
                    v.bools_possible = b"true" in raw or b"false" in raw
                    frames[token] = convert(token, loads_piece(raw))
            return frames, meta
        except SubmissionFormatError:
            # The whole-file path reports a file that is not JSON before anything else: raise
            # this error only if the samples not yet parsed are JSON (NotPieceable otherwise).
            for m in samples[done:]:
                loads_piece(read_range(f, m[2], m[3]))
            raise


def _resolve_expected(data, split, sample_tokens) -> Tuple[Optional[List[str]], str, bool]:
    """(expected tokens or None, description, whether the file must hold all of them)."""
    if sample_tokens is not None:
        return list(sample_tokens), "the given sample list", True
    if data is not None and split is not None:
        return data.sample_tokens(split), f"split {split!r} of {data.version}", True
    if data is not None:
        return [s["token"] for s in data.nusc.sample], f"{data.version}", False
    if split is not None:
        raise ValueError("split given without data: pass data=NuScenesData(...) as well")
    return None, "", False


def load_detections(
    path: Union[str, os.PathLike],
    data=None,
    split: Optional[str] = None,
    *,
    sample_tokens: Optional[Sequence[str]] = None,
    allow_missing: bool = False,
    max_boxes_per_sample: int = MAX_BOXES_PER_SAMPLE,
    rotation_tol: float = 1e-3,
    tracking_only: bool = True,
    max_bytes: Optional[int] = None,
) -> DetectionSet:
    """Read and validate a nuScenes detection-submission file.

    Args:
        path: the JSON file.
        data: a :class:`nutrack.data.NuScenesData`; with ``split`` the file must hold exactly
            the split's samples; with no split, any subset of the dataset's samples.
        split: a split name (devkit's named splits or ``splits.json``).
        sample_tokens: an explicit list of expected samples instead of ``data``/``split``.
        allow_missing: treat expected samples absent from the file as having no detections
            (otherwise an error).
        max_boxes_per_sample: the nuScenes limit, 500.
        rotation_tol: allowed ``| |q| - 1 |`` of the rotation quaternions.
        tracking_only: drop boxes of the detection-only classes (construction_vehicle,
            traffic_cone, barrier) after validating them. With ``False`` they are kept
            with class -1.
        max_bytes: refuse larger files (default: ``NUTRACK_MAX_JSON_BYTES`` from the
            environment, else 8 GiB; see :mod:`nutrack.data.jsonfile`).

    Returns:
        a :class:`DetectionSet` ``{sample_token: Detections}`` with every expected sample
        (empty :class:`Detections` for allowed missing ones) and the file's ``meta``.

    Raises:
        SubmissionFormatError (a ValueError and a :class:`~nutrack._cli.UserError`) naming
        the sample token, box index and field, before anything is returned -- also for a file
        over the size cap, not UTF-8, not JSON, nested too deeply, or listing a sample twice;
        FileNotFoundError if the file does not exist.
    """
    path = os.fspath(path)
    v = _Validator(path, "detection", rotation_tol, max_boxes_per_sample)
    expected, what, complete = _resolve_expected(data, split, sample_tokens)

    def convert(token: str, boxes: Any) -> Detections:
        b, vel, s, c, _ = v.parse_sample(token, boxes)
        if tracking_only:
            keep = c >= 0
            if not keep.all():
                b, vel, s, c = b[keep], vel[keep], s[keep], c[keep]
        return Detections(b, vel, s, c)

    frames, meta = _read_frames(v, max_bytes, expected, allow_missing or not complete, what, convert)
    if expected is not None and complete:
        frames = {t: frames[t] if t in frames else Detections.empty() for t in expected}
    return DetectionSet(frames, meta, path)


def load_tracking_results(
    path: Union[str, os.PathLike],
    data=None,
    split: Optional[str] = None,
    *,
    sample_tokens: Optional[Sequence[str]] = None,
    max_boxes_per_sample: int = MAX_BOXES_PER_SAMPLE,
    rotation_tol: float = 1e-3,
    max_bytes: Optional[int] = None,
) -> Tuple[Dict[str, Tracks], dict]:
    """Read and validate a tracking-submission file as the devkit's evaluation needs it:
    exactly the expected samples, known tracking names, unique ``tracking_id`` per sample,
    at most 500 boxes per sample. Returns ``({sample_token: Tracks}, meta)``; track ids keep
    their JSON type (strings or integers)."""
    path = os.fspath(path)
    v = _Validator(path, "tracking", rotation_tol, max_boxes_per_sample)
    expected, what, complete = _resolve_expected(data, split, sample_tokens)

    def convert(token: str, boxes: Any) -> Tracks:
        b, vel, s, c, ids = v.parse_sample(token, boxes)
        return Tracks(b, vel, s, c, np.array(ids, dtype=object))

    return _read_frames(v, max_bytes, expected, not complete, what, convert)
