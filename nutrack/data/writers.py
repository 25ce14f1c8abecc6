"""Writing detection- and tracking-submission files, atomically (through :mod:`nutrack._io`),
in the format :mod:`nutrack.data.detections` reads and the devkit's evaluations take.

:func:`write_tracking_results` writes what ``TrackingEval`` reads; :func:`write_detections`
what ``DetectionEval`` and the trackers read. Both refuse non-finite boxes, velocities and
scores, non-positive sizes and unknown classes with a ``ValueError`` naming the sample.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from nutrack._io import atomic_write_json

from .boxes import boxes_to_nuscenes
from .classes import DETECTION_CLASSES, NUM_CLASSES, TRACKING_CLASSES
from .detections import DEFAULT_META, MAX_BOXES_PER_SAMPLE, Detections, LabelledDetections, Tracks

__all__ = ["write_tracking_results", "write_detections"]


def _box_records(token: str, boxes: np.ndarray, velocities: np.ndarray, **fields: list) -> list:
    """Submission records: the geometry every nuScenes result box shares, plus `fields`
    (name -> one value per box) for the detection- or tracking-specific keys."""
    t, s, r = boxes_to_nuscenes(boxes)
    geometry = zip(np.round(t, 4).tolist(), np.round(s, 4).tolist(), np.round(r, 8).tolist(),
                   np.round(velocities.astype(np.float64), 4).tolist())
    names = list(fields)
    return [
        {"sample_token": token, "translation": ti, "size": si, "rotation": ri, "velocity": vi,
         **dict(zip(names, values))}
        for (ti, si, ri, vi), *values in zip(geometry, *fields.values())
    ]


def _check_writable_frame(token: str, arr_obj, kind: str, any_class: bool = False) -> None:
    if not np.all(np.isfinite(arr_obj.boxes)):
        raise ValueError(f"{kind} for sample {token!r}: boxes contain NaN or inf")
    if not np.all(arr_obj.boxes[:, 3:6] > 0):
        raise ValueError(f"{kind} for sample {token!r}: box sizes must be positive")
    if not np.all(np.isfinite(arr_obj.velocities)):
        raise ValueError(f"{kind} for sample {token!r}: velocities contain NaN or inf")
    if not np.all(np.isfinite(arr_obj.scores)):
        raise ValueError(f"{kind} for sample {token!r}: scores contain NaN or inf")
    if any_class:
        return
    if len(arr_obj.classes) and (arr_obj.classes.min() < 0 or arr_obj.classes.max() >= NUM_CLASSES):
        raise ValueError(f"{kind} for sample {token!r}: classes must be in 0..{NUM_CLASSES - 1}")


def _expected_keys(results: Mapping[str, Any], sample_tokens: Optional[Sequence[str]], fill_missing: bool) -> List[str]:
    if sample_tokens is None:
        return list(results)
    tokens = list(sample_tokens)
    known = set(tokens)
    for t in results:
        if t not in known:
            raise ValueError(f"results hold sample {t!r}, which is not among the expected samples")
    if not fill_missing:
        missing = [t for t in tokens if t not in results]
        if missing:
            raise ValueError(f"no results for {len(missing)} expected samples, e.g. {missing[0]!r}")
    return tokens


def write_tracking_results(
    path: Union[str, os.PathLike],
    results: Mapping[str, Tracks],
    sample_tokens: Optional[Sequence[str]] = None,
    *,
    meta: Optional[dict] = None,
    fill_missing: bool = True,
    max_boxes_per_sample: int = MAX_BOXES_PER_SAMPLE,
    keep_top: bool = False,
) -> None:
    """Write a tracking-submission JSON the devkit's ``TrackingEval`` accepts, atomically.

    Args:
        results: ``{sample_token: Tracks}``.
        sample_tokens: the samples the file must hold (e.g. ``data.sample_tokens(split)``);
            keys outside it are an error; samples absent from ``results`` are written with no
            boxes when ``fill_missing`` (else an error). ``None``: write ``results``' keys.
        meta: the ``meta`` block (default: lidar-only).
        max_boxes_per_sample: the devkit's limit; more is an error unless ``keep_top``, which
            keeps the highest-scoring boxes.

    Raises ValueError, before anything is written, for unknown samples, duplicate track ids
    within a sample, non-finite values, bad classes or too many boxes.
    """
    keys = _expected_keys(results, sample_tokens, fill_missing)
    out: Dict[str, list] = {}
    for token in keys:
        tr = results.get(token)
        if tr is None or len(tr) == 0:
            out[token] = []
            continue
        _check_writable_frame(token, tr, "tracks")
        order = np.arange(len(tr))
        if len(tr) > max_boxes_per_sample:
            if not keep_top:
                raise ValueError(
                    f"tracks for sample {token!r}: {len(tr)} boxes, more than the {max_boxes_per_sample} the "
                    f"evaluation allows (pass keep_top=True to keep the highest-scoring ones)")
            order = np.sort(np.argsort(-tr.scores, kind="stable")[:max_boxes_per_sample])
        ids = [str(x) for x in tr.track_ids[order].tolist()]
        if len(set(ids)) != len(ids):
            seen = set()
            dup = next(x for x in ids if x in seen or seen.add(x))
            raise ValueError(f"tracks for sample {token!r}: tracking id {dup!r} appears more than once")
        names = [TRACKING_CLASSES[c] for c in tr.classes[order].tolist()]
        scores = np.round(tr.scores[order].astype(np.float64), 6).tolist()
        out[token] = _box_records(token, tr.boxes[order], tr.velocities[order], tracking_id=ids,
                                  tracking_name=names, tracking_score=scores)
    atomic_write_json(path, {"meta": dict(meta if meta is not None else DEFAULT_META), "results": out})


_DEFAULT_ATTRIBUTE = {
    "car": ("vehicle.moving", "vehicle.parked"),
    "truck": ("vehicle.moving", "vehicle.parked"),
    "bus": ("vehicle.moving", "vehicle.stopped"),
    "trailer": ("vehicle.moving", "vehicle.parked"),
    "pedestrian": ("pedestrian.moving", "pedestrian.standing"),
    "motorcycle": ("cycle.with_rider", "cycle.without_rider"),
    "bicycle": ("cycle.with_rider", "cycle.without_rider"),
}


def write_detections(
    path: Union[str, os.PathLike],
    results: Mapping[str, Detections],
    sample_tokens: Optional[Sequence[str]] = None,
    *,
    meta: Optional[dict] = None,
    fill_missing: bool = True,
    max_boxes_per_sample: int = MAX_BOXES_PER_SAMPLE,
) -> None:
    """Write a detection-submission JSON atomically (used by the detection simulator).

    :class:`LabelledDetections` are written with their own class names (any of the ten
    detection classes) and attributes. For plain :class:`Detections` the attribute of each
    box follows its class and speed (moving above 0.2 m/s, as the CenterPoint exporter does)."""
    keys = _expected_keys(results, sample_tokens, fill_missing)
    out: Dict[str, list] = {}
    for token in keys:
        det = results.get(token)
        if det is None or len(det) == 0:
            out[token] = []
            continue
        labelled = isinstance(det, LabelledDetections)
        _check_writable_frame(token, det, "detections", any_class=labelled)
        if len(det) > max_boxes_per_sample:
            raise ValueError(f"detections for sample {token!r}: {len(det)} boxes, more than {max_boxes_per_sample}")
        if labelled:
            names, attrs = _checked_labels(token, det)
        else:
            names = [TRACKING_CLASSES[c] for c in det.classes.tolist()]
            speed = np.hypot(det.velocities[:, 0], det.velocities[:, 1])
            attrs = [_DEFAULT_ATTRIBUTE[n][0 if sp > 0.2 else 1] for n, sp in zip(names, speed.tolist())]
        scores = np.round(det.scores.astype(np.float64), 6).tolist()
        out[token] = _box_records(token, det.boxes, det.velocities, detection_name=names,
                                  detection_score=scores, attribute_name=attrs)
    atomic_write_json(path, {"meta": dict(meta if meta is not None else DEFAULT_META), "results": out})


def _checked_labels(token: str, det: LabelledDetections) -> Tuple[List[str], List[str]]:
    """The names and attributes of labelled detections as lists, each name a detection class."""
    names = [str(n) for n in det.names.tolist()]
    bad = [n for n in names if n not in DETECTION_CLASSES]
    if bad:
        raise ValueError(f"detections for sample {token!r}: unknown detection class {bad[0]!r}")
    return names, [str(a) for a in det.attributes.tolist()]
