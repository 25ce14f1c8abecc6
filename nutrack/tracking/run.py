"""Build a tracker by name and run it over scenes."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

import numpy as np

from nutrack.data.classes import NUM_CLASSES
from nutrack.data.detections import Tracks
from nutrack.tracking.base import Tracker
from nutrack.tracking.centerpoint import CenterPointTracker
from nutrack.tracking.filter import FilterTracker
from nutrack.tracking.params import CenterPointParams, FilterParams
from nutrack.tracking.scorer import FrameContext, load_learned_scorer

__all__ = ["METHODS", "make_tracker", "learned_params", "tracker_params", "track_frames", "track_scenes", "TrackingRun"]

METHODS = ("centerpoint", "filter", "learned")
#: frames a learned track may coast (reported all the while). Chosen on the TRAIN splits of
#: generator seeds 0 and 1 among 6 (filter's), 10 and 14: mean AMOTA 0.840 / 0.840 / 0.846,
#: ID switches 69 / 38 / 33 (docs/training.md, "Tracking").
LEARNED_MAX_AGE = 14


def learned_params() -> FilterParams:
    """Defaults of the learned tracker: the filter's (its per-class motion models predict the
    tracks the network scores), except that tracks live and are reported for up to
    ``LEARNED_MAX_AGE`` frames without a match: the confidence head ranks coasting boxes by
    the lidar points still in them, so long coasting costs little and saves the identity of
    an object through a run of missed detections. Stage 1 gates on the scorer's own threshold."""
    age = (LEARNED_MAX_AGE,) * NUM_CLASSES
    return FilterParams(max_age=age, output_max_coast=age)


def make_tracker(method: str, *, overrides: Optional[Mapping[str, Any]] = None,
                 score_threshold: Optional[float] = None, checkpoint: Optional[str] = None,
                 device: str = "cpu", backend: str = "auto", params=None) -> Tracker:
    """A tracker by name: ``"centerpoint"``, ``"filter"`` or ``"learned"``.

    Args:
        overrides: parameter overrides ``{"name": value, "name.class": value}`` (see
            :mod:`nutrack.tracking.params`).
        score_threshold: ``centerpoint``: drop detections below it. ``filter`` / ``learned``:
            detections below it neither start tracks nor take part in the first association
            stage (sets ``score_threshold`` and ``birth_score`` of every class; lowers
            ``low_score_threshold`` to it where higher).
        checkpoint, device: the learned model's checkpoint and torch device (``learned``).
        backend: backend of ``nutrack.ops.pairwise_affinity``.
        params: start from these parameters instead of the method's defaults: a parameter
            object, or the path of a params file (``python -m nutrack.tune`` writes them;
            ``filter`` and ``learned`` only). ``overrides`` apply on top.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if score_threshold is not None and not 0.0 <= float(score_threshold) <= 1.0:
        raise ValueError(f"score threshold must be in [0, 1], got {score_threshold}")
    if isinstance(params, (str, os.PathLike)):
        params = _params_from_file(method, os.fspath(params))
    if method == "centerpoint":
        p = params or CenterPointParams()
        if score_threshold is not None:
            p = p.replace(score_threshold=float(score_threshold))
        if overrides:
            p = p.with_overrides(dict(overrides))
        return CenterPointTracker(p, backend=backend)
    p = params or (FilterParams() if method == "filter" else learned_params())
    if score_threshold is not None:
        s = float(score_threshold)
        p = p.replace(score_threshold=(s,) * 7, birth_score=(s,) * 7,
                      low_score_threshold=tuple(min(lo, s) for lo in p.low_score_threshold))
    if overrides:
        p = p.with_overrides(dict(overrides))
    if method == "filter":
        return FilterTracker(p, backend=backend)
    scorer = load_learned_scorer(checkpoint, device=device)
    return FilterTracker(p, scorer=scorer, backend=backend)


def tracker_params(method: str, path: Optional[str] = None) -> FilterParams:
    """The starting parameters of ``filter`` or ``learned``: the method's defaults, or with
    ``path`` a params file's values on top of them."""
    if path is None:
        return FilterParams() if method == "filter" else learned_params()
    return _params_from_file(method, os.fspath(path))


def _params_from_file(method: str, path: str) -> FilterParams:
    from nutrack.tracking.params_file import read_params_file

    if method == "centerpoint":
        raise ValueError("a params file holds filter-tracker parameters (filter and learned); centerpoint keeps "
                         "CenterPoint's published values")
    if method == "filter":
        return read_params_file(path, FilterParams())
    return read_params_file(path, learned_params())


@dataclass
class TrackingRun:
    """Results of a run: ``{sample_token: Tracks}`` and the time spent in the tracker."""

    results: Dict[str, Tracks] = field(default_factory=dict)
    frames: int = 0
    scenes: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def track_frames(tracker: Tracker, frames: Iterable[Any], run: Optional[TrackingRun] = None,
                 points: Optional[Callable[[Any], np.ndarray]] = None) -> TrackingRun:
    """Track one scene: ``frames`` in time order, each with ``sample_token``, ``timestamp``
    (microseconds, as nuScenes) and ``detections`` (:class:`Detections`). Resets the tracker
    first. ``points(frame)`` (optional) loads a frame's lidar points for the scorer."""
    run = run if run is not None else TrackingRun()
    clock = time.perf_counter
    t0 = clock()
    tracker.reset()
    elapsed = clock() - t0
    prev = None
    for i, frame in enumerate(frames):
        det = frame.detections
        if det is None:
            raise ValueError(f"frame {frame.sample_token} has no detections attached")
        ts = frame.timestamp * 1e-6  # seconds, as CenterPoint computes them
        ctx = FrameContext(timestamp=ts, time_lag=0.0 if prev is None else ts - prev, index=i,
                           sample_token=frame.sample_token, frame=frame,
                           points=(lambda f=frame: points(f)) if points is not None else None)
        prev = ts
        t0 = clock()
        out = tracker.step(det, ts, ctx)
        elapsed += clock() - t0
        run.results[frame.sample_token] = out
        run.frames += 1
    run.seconds += elapsed
    run.scenes += 1
    return run


def track_scenes(tracker: Tracker, scenes: Iterable[Any], progress: bool = True,
                 points: Optional[Callable[[Any], np.ndarray]] = None, total: Optional[int] = None,
                 desc: str = "tracking", warm_up: bool = True) -> TrackingRun:
    """Track every scene (objects with ``frames``, e.g. :meth:`nutrack.data.NuScenesData.scenes`),
    with a progress bar over scenes showing the tracker's frames per second. With ``warm_up``,
    :meth:`Tracker.warm_up` runs first, outside the timed part."""
    if warm_up:
        tracker.warm_up()
    run = TrackingRun()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="scene", dynamic_ncols=True)
    try:
        for scene in scenes:
            track_frames(tracker, scene.frames, run, points=points)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{run.fps:,.0f} frames/s")
    finally:
        if bar is not None:
            bar.close()
    return run
