"""CenterPoint's published tracker, reproduced on arrays.

The algorithm of ``tools/nusc_tracking/pub_tracker.py`` (Yin, Zhou, Krähenbühl, "Center-based
3D Object Detection and Tracking", CVPR 2021), step by step, with the same arithmetic:

1. A frame with no detections deletes every track (and outputs nothing).
2. Each detection is moved back to the previous frame: ``c' = c - v * time_lag`` (float64,
   then float32), ``time_lag`` the difference of the frames' timestamps in seconds (0 at the
   scene start).
3. Cost: BEV distance between ``c'`` and each track's position (float32); a pair is invalid
   when the distance exceeds the detection class's gate (car 4, truck 4, bus 5.5, trailer 3,
   pedestrian 1, motorcycle 13, bicycle 3 m; a distance equal to the gate is valid) or the
   classes differ.
4. Greedy matching in detection order: each detection takes the nearest free valid track
   (the first in track order on ties). With ``hungarian=True``, scipy's
   ``linear_sum_assignment`` on the cost with invalid pairs at 1e18 instead; a solved pair
   that is invalid makes its detection start a new track and — as in the original — drops
   its track.
5. A matched detection continues its track's id; every unmatched detection starts a track
   with the next id (ids restart at 1 each scene). A track's position becomes its
   detection's centre; it remembers ``v * time_lag`` of that detection.
6. Unmatched tracks with ``age < max_age`` coast: age + 1, position moved forward by the
   remembered ``v * time_lag``, not output. Others are deleted. Matched and new tracks have
   age 1. With ``max_age = 3`` a track survives two missed frames and can be matched again
   up to the third.
7. Output: the matched and new tracks, with their detection's box, velocity and score.

Track order (which decides ties) is kept as in the original: matched tracks in matching
order, then new tracks, then coasting ones.

One difference is inherent to nutrack's inputs: detection boxes and velocities arrive as
float32 (the original reads float64 from the JSON), so a distance within ~1e-4 m of a gate
could be decided differently on real files. The same float32 inputs give the same ids.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from nutrack.data.detections import Tracks
from nutrack.tracking.association import detection_order_greedy_assignment
from nutrack.tracking.base import Tracker, as_detections, tracking_classes_only
from nutrack.tracking.params import CenterPointParams
from nutrack.tracking.scorer import FrameContext, affinity

__all__ = ["CenterPointTracker"]


class CenterPointTracker(Tracker):
    """CenterPoint's greedy, velocity-compensated centre tracker (see the module docstring).

    Args:
        params: :class:`CenterPointParams` (defaults: the published values).
        backend: backend of ``nutrack.ops.pairwise_affinity``.
        **overrides: parameter overrides (``max_age=4``, ``hungarian=True``, ...).
    """

    name = "centerpoint"

    def __init__(self, params: Optional[CenterPointParams] = None, backend: str = "auto", **overrides):
        params = params or CenterPointParams()
        if overrides:
            params = params.replace(**overrides)
        self.params = params
        self.backend = backend
        self._gate = np.asarray(params.max_distance, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._last_time: Optional[float] = None
        self._id_count = 0
        self._ct = np.zeros((0, 2), np.float64)        # positions
        self._step = np.zeros((0, 2), np.float64)      # velocity x time lag of the last detection
        self._cls = np.zeros(0, np.int64)
        self._ids = np.zeros(0, np.int64)
        self._age = np.zeros(0, np.int64)

    @property
    def num_tracks(self) -> int:
        return len(self._ids)

    def _clear(self) -> None:
        self._ct = self._ct[:0]
        self._step = self._step[:0]
        self._cls = self._cls[:0]
        self._ids = self._ids[:0]
        self._age = self._age[:0]

    def step(self, detections, timestamp: float, context: Optional[FrameContext] = None) -> Tracks:
        det = tracking_classes_only(as_detections(detections))
        p = self.params
        time_lag = 0.0 if self._last_time is None else timestamp - self._last_time
        self._last_time = timestamp
        if p.score_threshold > 0.0 and len(det):
            det = det.select(det.scores >= p.score_threshold)
        n = len(det)
        if n == 0:  # the original empties its track list on a frame without detections
            self._clear()
            return Tracks.empty()

        ct = det.boxes[:, :2].astype(np.float64)
        step = det.velocities.astype(np.float64) * time_lag          # v * time_lag
        back = (ct + (-step).astype(np.float32)).astype(np.float32)  # c - v * lag, as the original
        m = len(self._ids)
        if m:
            dist = self._distance(back, det)  # (N detections, M tracks) float32, as the original
            valid = dist <= self._gate[det.classes][:, None]
            valid &= det.classes[:, None] == self._cls[None, :]
            if p.hungarian:
                matches, extra_new, lost = self._hungarian(dist, valid)
            else:
                matches = detection_order_greedy_assignment(dist.T, valid.T)
                extra_new = np.zeros(0, np.int64)
                lost = np.zeros(0, np.int64)
        else:
            matches = np.zeros((0, 2), np.int64)
            extra_new = np.zeros(0, np.int64)
            lost = np.zeros(0, np.int64)

        mt, md = matches[:, 0], matches[:, 1]  # (track, detection) pairs in detection order
        det_free = np.ones(n, bool)
        det_free[md] = False
        det_free[extra_new] = False
        new = np.concatenate([np.flatnonzero(det_free), extra_new])
        trk_free = np.ones(m, bool)
        trk_free[mt] = False
        trk_free[lost] = False
        coast = np.flatnonzero(trk_free & (self._age < p.max_age))

        new_ids = self._id_count + 1 + np.arange(len(new), dtype=np.int64)
        self._id_count += len(new)
        out_det = np.concatenate([md, new])
        out_ids = np.concatenate([self._ids[mt], new_ids])

        self._ct = np.concatenate([ct[out_det], self._ct[coast] + self._step[coast]])
        self._step = np.concatenate([step[out_det], self._step[coast]])
        self._cls = np.concatenate([det.classes[out_det], self._cls[coast]])
        self._ids = np.concatenate([out_ids, self._ids[coast]])
        self._age = np.concatenate([np.ones(len(out_det), np.int64), self._age[coast] + 1])

        return Tracks(det.boxes[out_det], det.velocities[out_det], det.scores[out_det], det.classes[out_det],
                      out_ids)

    def _distance(self, back: np.ndarray, det) -> np.ndarray:
        """(N, M) BEV distances between moved-back detections and tracks, with
        ``nutrack.ops.pairwise_affinity`` (different classes get a huge fill)."""
        a = det.boxes.copy()
        a[:, :2] = back
        b = np.empty((len(self._ids), 7), np.float32)
        b[:, :2] = self._ct.astype(np.float32)
        b[:, 2] = 0.0
        b[:, 3:6] = 1.0  # sizes play no part in the centre distance
        b[:, 6] = 0.0
        return affinity(a, b, "center_distance", det.classes, self._cls, backend=self.backend)

    @staticmethod
    def _hungarian(dist: np.ndarray, valid: np.ndarray):
        # The original: float64 costs, invalid pairs exactly 1e18, scipy's solver on all of it.
        cost = np.where(valid, dist.astype(np.float64), 1e18)
        rows, cols = linear_sum_assignment(cost)
        ok = valid[rows, cols]
        matches = np.stack([cols[ok], rows[ok]], axis=1).astype(np.int64)  # (track, detection)
        # An invalid solved pair: the detection starts a track, the track is dropped.
        return matches, rows[~ok].astype(np.int64), cols[~ok].astype(np.int64)
