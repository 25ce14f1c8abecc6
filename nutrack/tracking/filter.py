"""The filter-based tracker: per-class Kalman motion models, two-stage association on the
affinity kernels, track confirmation, per-class maximum age and score refinement.

A frame (``FilterTracker.step``) is a fixed sequence of array operations, whatever the number
of tracks:

1. **Detections**: drop those below ``low_score_threshold`` (per class), then same-class NMS
   (``nms_metric`` > ``nms_threshold``, one ``pairwise_affinity`` call). Those at or above
   ``score_threshold`` are *high*, the rest *low*.
2. **Predict** every track to the frame's timestamp (:mod:`nutrack.tracking.motion`: CV or
   CTRA per class) — one numba call.
3. **Gate**: a track and a detection are candidates when they have the same class and the
   track's predicted centre lies within the class's ``gate_distance`` of the detection (one
   ``pairwise_affinity(center_distance)`` call for all pairs).
4. **Stage 1**: the scorer (default: ``pairwise_affinity(metric)``, computed only inside the
   connected components of the candidate graph, which the kernel gets as classes) scores
   tracks x high detections; candidate pairs passing the class's ``match_threshold`` are
   assigned (``assignment``: Hungarian or greedy).
5. **Stage 2**: tracks left over x (high detections left over + low detections), candidates
   only, on ``metric2`` with ``match_threshold2``, greedy. Low detections can only extend
   tracks, never start one.
6. **Update** matched tracks with their detection (position, yaw and the detector's velocity
   as measurements; z and size smoothed) — one numba call.
7. **Life cycle**: high detections left over scoring at least ``birth_score`` start tracks;
   a track is confirmed after ``min_hits`` matches (immediately in a scene's first
   ``min_hits`` frames); an unconfirmed track unmatched for more than ``tentative_max_age``
   frames, or any track unmatched for more than ``max_age`` frames (per class), is deleted.
8. **Output**: tracks matched this frame (confirmed ones; unconfirmed ones with their score
   times ``tentative_score_factor`` when that is > 0), and confirmed tracks coasting for at
   most ``output_max_coast`` frames at their predicted position with the score
   ``last score x score_decay ** frames_unmatched``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from nutrack.data.detections import Detections, Tracks
from nutrack.tracking import motion
from nutrack.tracking.association import assign, greedy_assignment, nms
from nutrack.tracking.base import Tracker, as_detections, empty_tracks, tracking_classes_only
from nutrack.tracking.params import FilterParams
from nutrack.tracking.scorer import AffinityScorer, FrameContext, Scorer, TrackView, affinity, gated_affinity

__all__ = ["FilterTracker", "TrackTable"]


class TrackTable:
    """The live tracks as parallel arrays (no per-track objects)."""

    __slots__ = ("ids", "cls", "x", "P", "yaw", "z", "size", "score", "hits", "age", "tsu", "confirmed")

    def __init__(self):
        self.ids = np.zeros(0, np.int64)
        self.cls = np.zeros(0, np.int64)
        self.x = np.zeros((0, motion.STATE_DIM), np.float64)
        self.P = np.zeros((0, motion.STATE_DIM, motion.STATE_DIM), np.float64)
        self.yaw = np.zeros(0, np.float64)
        self.z = np.zeros(0, np.float64)
        self.size = np.zeros((0, 3), np.float64)
        self.score = np.zeros(0, np.float64)
        self.hits = np.zeros(0, np.int64)
        self.age = np.zeros(0, np.int64)
        self.tsu = np.zeros(0, np.int64)  # frames since the last match
        self.confirmed = np.zeros(0, np.bool_)

    def __len__(self) -> int:
        return len(self.ids)

    def keep_and_append(self, keep: np.ndarray, new: dict) -> None:
        """Keep rows ``keep`` (int index) and append the rows of ``new`` (same keys)."""
        for name in self.__slots__:
            cur = getattr(self, name)[keep]
            add = new[name]
            setattr(self, name, np.concatenate([cur, add]) if len(add) else cur)


class FilterTracker(Tracker):
    """The filter-based tracker (see the module docstring).

    Args:
        params: :class:`FilterParams` (defaults tuned on the synthetic train split).
        scorer: the stage-1 :class:`Scorer`; default ``AffinityScorer(params.metric)``.
            A scorer's own ``threshold`` replaces ``match_threshold``.
        backend: backend of ``nutrack.ops.pairwise_affinity`` (NMS, stage 2, default scorer).
        **overrides: parameter overrides.
    """

    name = "filter"

    def __init__(self, params: Optional[FilterParams] = None, scorer: Optional[Scorer] = None,
                 backend: str = "auto", **overrides):
        params = params or FilterParams()
        if overrides:
            params = params.replace(**overrides)
        self.params = p = params
        self.backend = backend
        self.scorer = scorer if scorer is not None else AffinityScorer(p.metric, backend=backend)
        # The built-in scorer's stage-1 matrix is computed over all selected detections at once,
        # so that stage 2 can reuse it when it uses the same metric (one kernel call less).
        self._share_affinity = scorer is None
        self.motion_table = motion.MotionTable.from_params(p)
        kind = getattr(self.scorer, "kind", "similarity")
        if kind not in ("similarity", "distance"):
            raise ValueError(f"scorer.kind must be 'similarity' or 'distance', got {kind!r}")
        self._stage1_distance = kind == "distance"
        thr = getattr(self.scorer, "threshold", None)
        self._thr1 = (np.broadcast_to(np.asarray(thr, np.float64), (len(p.match_threshold),)).copy()
                      if thr is not None else p.arr("match_threshold"))
        self._thr2 = p.arr("match_threshold2")
        self._gate = p.arr("gate_distance").astype(np.float32)
        self._stage2_distance = p.metric2 == "center_distance"
        self._hi = p.arr("score_threshold")
        self._lo = p.arr("low_score_threshold")
        self._birth = p.arr("birth_score")
        self._nms_thr = p.arr("nms_threshold")
        self._nms_on = bool(np.any(self._nms_thr < 1.0))
        self._min_hits = p.arr("min_hits", np.int64)
        self._max_age = p.arr("max_age", np.int64)
        self._max_coast = p.arr("output_max_coast", np.int64)
        self._decay = p.arr("score_decay")
        self.reset()

    # -- life cycle ------------------------------------------------------------------------
    def reset(self) -> None:
        self.tracks = TrackTable()
        self._next_id = 1
        self._last_time: Optional[float] = None
        self._frame = -1
        self.scorer.reset()

    @property
    def num_tracks(self) -> int:
        return len(self.tracks)

    def warm_up(self) -> None:
        """See :meth:`Tracker.warm_up`; skipped with a plug-in scorer (it may need real frames)."""
        if self._share_affinity:
            super().warm_up()

    def view(self, boxes: Optional[np.ndarray] = None, velocities: Optional[np.ndarray] = None) -> TrackView:
        """The live tracks as a :class:`TrackView` (boxes at their current state)."""
        t = self.tracks
        if boxes is None:
            boxes, velocities = motion.state_boxes(t.x, t.yaw, t.z, t.size, t.cls, self.motion_table)
        return TrackView(ids=t.ids, classes=t.cls, boxes=boxes, velocities=velocities,
                         scores=t.score.astype(np.float32), hits=t.hits, age=t.age, time_since_update=t.tsu,
                         confirmed=t.confirmed)

    # -- one frame -------------------------------------------------------------------------
    def step(self, detections, timestamp: float, context: Optional[FrameContext] = None) -> Tracks:
        p = self.params
        det = tracking_classes_only(as_detections(detections))
        if len(det) and not np.isfinite(det.velocities).all():
            raise ValueError("detections: velocities contain NaN or infinite values (the filter measures them)")
        dt = 0.0 if self._last_time is None else float(timestamp - self._last_time)
        if dt < 0.0:
            raise ValueError(f"timestamp {timestamp} is before the previous frame's {self._last_time}: frames must "
                             "come in time order (call reset() at each scene start)")
        self._last_time = timestamp
        self._frame += 1
        if context is None:
            context = FrameContext(timestamp=timestamp, time_lag=dt, index=self._frame)
        t = self.tracks
        table = self.motion_table

        # 1. detections: score filter + NMS
        idx = self._select_detections(det)
        d_cls = det.classes[idx]
        d_score = det.scores[idx].astype(np.float64)
        high = d_score >= self._hi[d_cls]
        hi_idx = np.flatnonzero(high)

        # 2. predict
        m = len(t)
        if m:
            motion.predict(t.x, t.P, t.yaw, t.cls, table, dt)
            t.age += 1
            t.tsu += 1
        boxes, vel = motion.state_boxes(t.x, t.yaw, t.z, t.size, t.cls, table)

        # 3. candidate gate: predicted centres x detections, same class (one kernel call)
        trk_match = np.full(m, -1, np.int64)   # index into idx
        det_used = np.zeros(len(idx), np.bool_)
        if m and len(idx):
            dist = affinity(boxes, det.boxes[idx], "center_distance", t.cls, d_cls, backend=self.backend)
            cand = dist <= self._gate[t.cls][:, None]
        else:
            cand = np.zeros((m, len(idx)), np.bool_)

        # 4. stage 1: tracks x high detections, on the scorer's affinity
        shared = None  # the default scorer's metric over all candidates, reused by stage 2
        if m and len(hi_idx) and cand.any():
            cand1 = cand[:, hi_idx]
            if self._share_affinity:
                shared = gated_affinity(boxes, det.boxes[idx], p.metric, cand, backend=self.backend)
                aff = shared[:, hi_idx]
            else:
                sel = idx[hi_idx]
                dets_hi = det if len(sel) == len(det) else det.select(sel)
                aff = _to_host(self.scorer(self.view(boxes, vel), dets_hi, context, candidates=cand1))
                if aff.shape != (m, len(sel)):
                    raise ValueError(f"scorer returned shape {aff.shape}, expected {(m, len(sel))}")
            gate = self._thr1[t.cls][:, None]
            with np.errstate(invalid="ignore"):
                if self._stage1_distance:
                    valid = cand1 & (aff < gate)
                    cost = aff
                else:
                    valid = cand1 & (aff > gate)
                    cost = -aff
            pairs = assign(np.where(valid, cost, 0.0), valid, p.assignment)
            trk_match[pairs[:, 0]] = hi_idx[pairs[:, 1]]
            det_used[hi_idx[pairs[:, 1]]] = True

        # 5. stage 2: leftover tracks x (leftover high + low detections), greedy
        if m and len(idx) and cand.any():
            left_t = np.flatnonzero(trk_match < 0)
            left_d = np.flatnonzero(~det_used)
            if len(left_t) and len(left_d):
                cand2 = cand[left_t][:, left_d]
                if cand2.any():
                    if shared is not None and p.metric2 == p.metric:
                        a2 = shared[left_t][:, left_d]
                    else:
                        a2 = gated_affinity(boxes[left_t], det.boxes[idx[left_d]], p.metric2, cand2,
                                            backend=self.backend)
                    gate2 = self._thr2[t.cls[left_t]][:, None]
                    if self._stage2_distance:
                        valid2 = cand2 & (a2 < gate2)
                        cost2 = a2
                    else:
                        valid2 = cand2 & (a2 > gate2)
                        cost2 = -a2
                    pairs2 = greedy_assignment(np.where(valid2, cost2, 0.0), valid2)
                    trk_match[left_t[pairs2[:, 0]]] = left_d[pairs2[:, 1]]
                    det_used[left_d[pairs2[:, 1]]] = True

        # 6. update matched tracks
        matched = np.flatnonzero(trk_match >= 0)
        if len(matched):
            di = idx[trk_match[matched]]
            meas = _measurements(det, di)
            motion.update(t.x, t.P, t.yaw, t.cls, table, matched, meas)
            a = p.size_smoothing
            t.z[matched] = (1.0 - a) * t.z[matched] + a * det.boxes[di, 2]
            t.size[matched] = (1.0 - a) * t.size[matched] + a * det.boxes[di, 3:6]
            s_det = det.scores[di].astype(np.float64)
            if p.score_smoothing > 0.0:
                s_det = (1.0 - p.score_smoothing) * s_det + p.score_smoothing * t.score[matched]
            t.score[matched] = s_det
            t.hits[matched] += 1
            t.tsu[matched] = 0
            t.confirmed[matched] |= t.hits[matched] >= self._min_hits[t.cls[matched]]

        # 7. life cycle: deaths, births
        alive = np.flatnonzero(np.where(t.confirmed, t.tsu <= self._max_age[t.cls], t.tsu <= p.tentative_max_age))
        born = np.flatnonzero(~det_used & high)
        if len(born):
            born = born[d_score[born] >= self._birth[d_cls[born]]]
        bi = idx[born]
        new = self._new_tracks(det, bi)
        tm = trk_match[alive]
        det_of_track = np.concatenate([idx[tm] if len(idx) else tm, bi])
        if len(idx):
            det_of_track[: len(tm)][tm < 0] = -1
        t.keep_and_append(alive, new)

        # 8. output
        out = self._output(det, det_of_track)
        self.scorer.observe(t.ids, det_of_track, det, context)
        return out

    # -- helpers ---------------------------------------------------------------------------
    def _select_detections(self, det: Detections) -> np.ndarray:
        n = len(det)
        if n == 0:
            return np.zeros(0, np.int64)
        idx = np.flatnonzero(det.scores >= self._lo[det.classes])
        if self._nms_on and len(idx) > 1:
            b = det.boxes[idx]
            c = det.classes[idx]
            ov = affinity(b, b, self.params.nms_metric, c, c, fill=0.0, backend=self.backend)
            idx = idx[nms(det.scores[idx], ov, c, self._nms_thr)]
        return idx

    def _new_tracks(self, det: Detections, bi: np.ndarray) -> dict:
        k = len(bi)
        cls = det.classes[bi]
        x, P = motion.init_states(_measurements(det, bi), cls, self.motion_table)
        ids = self._next_id + np.arange(k, dtype=np.int64)
        self._next_id += k
        first_frames = self._frame < self._min_hits[cls]
        return {
            "ids": ids,
            "cls": cls,
            "x": x,
            "P": P,
            "yaw": det.boxes[bi, 6].astype(np.float64),
            "z": det.boxes[bi, 2].astype(np.float64),
            "size": det.boxes[bi, 3:6].astype(np.float64),
            "score": det.scores[bi].astype(np.float64),
            "hits": np.ones(k, np.int64),
            "age": np.zeros(k, np.int64),
            "tsu": np.zeros(k, np.int64),
            "confirmed": (self._min_hits[cls] <= 1) | first_frames,
        }

    def _output(self, det: Detections, det_of_track: np.ndarray) -> Tracks:
        p = self.params
        t = self.tracks
        if len(t) == 0:
            return empty_tracks()
        updated = t.tsu == 0
        coasting = t.confirmed & (t.tsu > 0) & (t.tsu <= self._max_coast[t.cls])
        if p.tentative_score_factor > 0.0:
            show = updated | coasting
        else:
            show = (updated & t.confirmed) | coasting
        sel = np.flatnonzero(show)
        if len(sel) == 0:
            return empty_tracks()
        boxes, vel = motion.state_boxes(t.x[sel], t.yaw[sel], t.z[sel], t.size[sel], t.cls[sel], self.motion_table)
        if not p.output_filtered:
            from_det = updated[sel]
            if from_det.any():
                di = det_of_track[sel[from_det]]
                boxes[from_det] = det.boxes[di]
                vel[from_det] = det.velocities[di]
        tsu = t.tsu[sel]
        scores = t.score[sel] * np.power(self._decay[t.cls[sel]], tsu)
        if p.tentative_score_factor < 1.0:
            scores = np.where(t.confirmed[sel], scores, scores * p.tentative_score_factor)
        return Tracks(boxes, vel, scores.astype(np.float32), t.cls[sel], t.ids[sel])


def _to_host(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64, copy=False)
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    elif hasattr(x, "get"):  # cupy
        x = x.get()
    return np.asarray(x, dtype=np.float64)


def _measurements(det: Detections, index: np.ndarray) -> np.ndarray:
    """``(K, 5)`` float64 ``[x, y, yaw, vx, vy]`` of detections ``index``."""
    meas = np.empty((len(index), 5), np.float64)
    meas[:, 0:2] = det.boxes[index, 0:2]
    meas[:, 2] = det.boxes[index, 6]
    meas[:, 3:5] = det.velocities[index]
    return meas
