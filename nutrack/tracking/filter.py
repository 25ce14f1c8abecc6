"""The filter-based tracker: per-class Kalman motion models, two-stage association on the
affinity kernels, track confirmation, per-class maximum age and score refinement.

A frame (``FilterTracker.step``) is a fixed sequence of named stages, each one method and a
few array operations or numba kernels (:mod:`nutrack.tracking._filter_kernels`), whatever the
number of tracks:

1. **Predict** (``_predict``) every track to the frame's timestamp with its class's motion
   model (:mod:`nutrack.tracking.motion`: one numba call per model in use).
2. **Detections** (``_select``): drop those below ``low_score_threshold`` (per class), then
   same-class NMS (``nms_metric`` > ``nms_threshold``, one affinity kernel call). Those at or
   above ``score_threshold`` are *high*, the rest *low*. The detections and the predicted
   tracks are validated and framed (cos/sin, half extents: ``box_frames``) here, in one call,
   and every affinity of the frame reuses those frames.
3. **Gate** (``_gate``): a track and a detection are candidates when they have the same class
   and the track's predicted centre lies within the class's ``gate_distance`` of the
   detection (the ``center_distance`` kernel's arithmetic, in one numba kernel with the
   comparison). Both association stages match candidates only.
4. **Associate, stage 1** (``_associate_first``): the scorer (default:
   ``pairwise_affinity(metric)``, computed only inside the connected components of the
   candidate graph, which the kernel gets as classes) scores tracks x high detections;
   candidate pairs passing the class's ``match_threshold`` are assigned (``assignment``:
   Hungarian or greedy).
5. **Associate, stage 2** (``_associate_second``): tracks left over x (high detections left
   over + low detections), candidates only, on ``metric2`` with ``match_threshold2``, greedy.
   Low detections can only extend tracks, never start one. Both stages threshold and assign
   through one function (``_assign_passing``).
6. **Update** (``_update``) matched tracks with their detection (position, yaw and the
   detector's velocity as measurements; z and size smoothed) — one numba call per model.
7. **Life cycle** (``_life_cycle``): high detections left over scoring at least
   ``birth_score`` start tracks; a track is confirmed after ``min_hits`` matches
   (immediately in a scene's first ``min_hits`` frames); an unconfirmed track unmatched for
   more than ``tentative_max_age`` frames, or any track unmatched for more than ``max_age``
   frames (per class), is deleted.
8. **Output** (``_output``): tracks matched this frame (confirmed ones; unconfirmed ones with
   their score times ``tentative_score_factor`` when that is > 0), and confirmed tracks
   coasting for at most ``output_max_coast`` frames at their predicted position with the
   score ``last score x score_decay ** frames_unmatched``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from nutrack.data.detections import Detections, Tracks
from nutrack.ops._boxes import box_frames, validate_boxes
from nutrack.ops.affinity import frames_affinity
from nutrack.tracking import _filter_kernels as kernels
from nutrack.tracking import motion
from nutrack.tracking.association import assign, component_labels, nms
from nutrack.tracking.base import Tracker, as_detections, tracking_classes_only
from nutrack.tracking.params import METRICS_DISTANCE, FilterParams
from nutrack.tracking.scorer import AffinityScorer, FrameContext, Scorer, TrackView, affinity, gated_affinity

__all__ = ["FilterTracker", "TrackTable"]


class TrackTable:
    """The live tracks as parallel arrays (no per-track objects).

    The columns live in preallocated buffers that double when full, and each attribute is a
    view of its buffer's first ``len(self)`` rows, so that a frame's deaths and births move
    rows within the buffers (one kernel) instead of building every column anew."""

    COLUMNS = ("ids", "cls", "x", "P", "yaw", "z", "size", "score", "hits", "age", "tsu", "confirmed")
    _LAYOUT = {"ids": ((), np.int64), "cls": ((), np.int64), "x": ((motion.STATE_DIM,), np.float64),
               "P": ((motion.STATE_DIM, motion.STATE_DIM), np.float64), "yaw": ((), np.float64),
               "z": ((), np.float64), "size": ((3,), np.float64), "score": ((), np.float64),
               "hits": ((), np.int64), "age": ((), np.int64), "tsu": ((), np.int64),  # tsu: frames since the last match
               "confirmed": ((), np.bool_)}
    __slots__ = COLUMNS + ("_buffers", "_size")

    def __init__(self, capacity: int = 64):
        self._buffers = {name: np.zeros((capacity,) + shape, dtype) for name, (shape, dtype) in self._LAYOUT.items()}
        self._set_size(0)

    def __len__(self) -> int:
        return self._size

    def _set_size(self, size: int) -> None:
        self._size = size
        for name, buf in self._buffers.items():
            setattr(self, name, buf[:size])

    def keep_and_grow(self, keep: np.ndarray, extra: int) -> int:
        """Keep rows ``keep`` (ascending int index), in that order, then make room for ``extra``
        new rows after them (their contents undefined until written). Returns the first new row."""
        start = len(keep)
        kernels.keep_rows(keep, *(getattr(self, name) for name in self.COLUMNS))
        need = start + extra
        capacity = len(self._buffers["ids"])
        if need > capacity:
            capacity = max(need, 2 * capacity)
            for name, buf in self._buffers.items():
                grown = np.zeros((capacity,) + buf.shape[1:], buf.dtype)
                grown[:start] = buf[:start]
                self._buffers[name] = grown
        self._set_size(need)
        return start


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
        rescore = getattr(self.scorer, "rescore", None)  # the base class's keeps the scores: skip it
        self._rescore = None if getattr(rescore, "__func__", None) is Scorer.rescore else rescore
        thr = getattr(self.scorer, "threshold", None)
        self._thr1 = (np.broadcast_to(np.asarray(thr, np.float64), (len(p.match_threshold),)).copy()
                      if thr is not None else p.arr("match_threshold"))
        self._thr2 = p.arr("match_threshold2")
        self._gate_distance = p.arr("gate_distance").astype(np.float32)
        self._stage2_distance = p.metric2 in METRICS_DISTANCE
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

    # -- scene state -----------------------------------------------------------------------
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
        # copies: the table's columns are views of buffers that later frames overwrite
        return TrackView(ids=t.ids.copy(), classes=t.cls.copy(), boxes=boxes, velocities=velocities,
                         scores=t.score.astype(np.float32), hits=t.hits.copy(), age=t.age.copy(),
                         time_since_update=t.tsu.copy(), confirmed=t.confirmed.copy())

    # -- one frame: the stages, in order ----------------------------------------------------
    def step(self, detections, timestamp: float, context: Optional[FrameContext] = None) -> Tracks:
        """One frame: the stages of the module docstring, in order."""
        det, dt, context = self._start_frame(detections, timestamp, context)
        boxes, vel = self._predict(dt)
        sel = self._select(det, boxes)
        cand = self._gate(boxes, det, sel)
        match = _Matches(len(self.tracks), len(sel.idx))
        shared = self._associate_first(boxes, vel, det, sel, cand, match, context)
        self._associate_second(boxes, det, sel, cand, match, shared)
        self._update(det, sel, match)
        det_of_track = self._life_cycle(det, sel, match)
        out = self._output(det, det_of_track, context)
        self.scorer.observe(self.tracks.ids.copy(), det_of_track, det, context)  # a copy: see view()
        return out

    def _start_frame(self, detections, timestamp: float, context: Optional[FrameContext]):
        """Check the input, advance the clock: ``(detections, dt, context)``."""
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
        return det, dt, context

    def _select(self, det: Detections, track_boxes: np.ndarray) -> "_Selection":
        """Stage "detections": score filter and same-class NMS; the survivors split into high
        and low. Also frames the predicted ``track_boxes`` (with the detections, in one call)
        when the gate will need them, i.e. when some detection passes the score filter."""
        idx = np.flatnonzero(det.scores >= self._lo[det.classes])
        frames = None
        self._track_frames = None
        if len(idx):
            frames, self._track_frames = self._frames_of(det.boxes, track_boxes)
        if self._nms_on and len(idx) > 1:
            b = det.boxes[idx]
            c = det.classes[idx]
            fr = _rows(frames, idx)
            ov = affinity(b, b, self.params.nms_metric, c, c, fill=0.0, backend=self.backend,
                          frames=None if fr is None else (fr, fr))
            idx = idx[nms(det.scores[idx], ov, c, self._nms_thr)]
        cls = det.classes[idx]
        score = det.scores[idx].astype(np.float64)
        return _Selection(idx, cls, score, score >= self._hi[cls], _rows(frames, idx))

    def _frames_of(self, det_boxes: np.ndarray, track_boxes: np.ndarray):
        """``(detection frames, track frames)``: the boxes' validated host frames, computed once
        a frame, both sets in one ``box_frames`` call, and reused by every affinity call of the
        frame (``frames_affinity``); the track frames are None without tracks. Both None on the
        cuda backend (the op frames the boxes itself)."""
        if self.backend == "cuda":
            return None, None
        m = len(det_boxes)
        boxes = np.concatenate([det_boxes, track_boxes]) if len(track_boxes) else det_boxes
        if not kernels.boxes_valid(boxes):  # validate_boxes raises, naming the boxes at fault
            validate_boxes(det_boxes, "detections boxes")
            validate_boxes(track_boxes, "predicted track boxes")
        frames = box_frames(boxes)
        return frames[:m], (frames[m:] if len(track_boxes) else None)

    def _predict(self, dt: float):
        """Stage "predict": every track to this frame; returns its boxes and velocities."""
        t = self.tracks
        if len(t):
            motion.predict(t.x, t.P, t.yaw, t.cls, self.motion_table, dt)
            t.age += 1
            t.tsu += 1
        return motion.state_boxes(t.x, t.yaw, t.z, t.size, t.cls, self.motion_table)

    def _gate(self, boxes: np.ndarray, det: Detections, sel: "_Selection") -> np.ndarray:
        """Stage "gate": the ``(tracks, selected detections)`` candidate pairs, same class and the
        predicted centre within the class's ``gate_distance`` (one kernel call). Both
        association stages match candidates only."""
        t = self.tracks
        if len(t) and len(sel.idx):
            if self._track_frames is not None and sel.frames is not None:
                return kernels.gate_candidates(self._track_frames, t.cls, sel.frames, sel.cls, self._gate_distance)
            dist = affinity(boxes, det.boxes[sel.idx], "center_distance", t.cls, sel.cls, backend=self.backend)
            return dist <= self._gate_distance[t.cls][:, None]
        return np.zeros((len(t), len(sel.idx)), np.bool_)

    def _frame_pair(self, track_rows: Optional[np.ndarray], det_frames: Optional[np.ndarray]):
        """``(track frames[track_rows], det_frames)`` for ``affinity(frames=...)``, None if either
        is missing (then the op validates and frames the boxes itself)."""
        tf = self._track_frames
        if tf is None or det_frames is None:
            return None
        return (tf if track_rows is None else tf[track_rows], det_frames)

    def _associate_first(self, boxes, vel, det: Detections, sel: "_Selection", cand: np.ndarray,
                         match: "_Matches", context: FrameContext) -> Optional[np.ndarray]:
        """Stage 1: tracks x high detections on the scorer's affinity, ``assignment``. Returns the
        default scorer's matrix over all selected detections, for stage 2 to reuse (else None)."""
        hi = sel.high_idx
        if not (len(hi) and cand.any()):
            return None
        tracks = np.arange(len(self.tracks))
        shared = None
        if self._share_affinity:
            shared = self._candidate_affinity(boxes, det, sel, cand)
            pairs = _assign_passing(shared, cand, tracks, hi, self._thr1[self.tracks.cls], self._stage1_distance,
                                    self.params.assignment)
        else:
            cand1 = cand[:, hi]
            aff = self._plugin_affinity(boxes, vel, det, sel.idx[hi], cand1, context)
            pairs = _assign_passing(aff, cand1, tracks, np.arange(len(hi)), self._thr1[self.tracks.cls],
                                    self._stage1_distance, self.params.assignment)
        match.add(pairs[:, 0], hi[pairs[:, 1]])
        return shared

    def _candidate_affinity(self, boxes, det: Detections, sel: "_Selection", cand: np.ndarray) -> np.ndarray:
        """The default scorer's ``(tracks, selected detections)`` matrix, exact on the candidate
        pairs; every reader looks at candidates only, so the other entries are left as the
        kernel gives them. On host frames that is the kernel's float32 matrix itself: the float64
        copy and masking of ``gated_affinity`` cost more than the kernel at 500 boxes a frame."""
        frames = self._frame_pair(None, sel.frames)
        if frames is None:
            return gated_affinity(boxes, det.boxes[sel.idx], self.params.metric, cand, backend=self.backend)
        # the same call as gated_affinity's: classes = connected components of the candidates
        labels_tracks, labels_dets = component_labels(cand)
        return frames_affinity(frames[0], frames[1], self.params.metric, labels_tracks, labels_dets,
                               backend=self.backend)

    def _plugin_affinity(self, boxes, vel, det: Detections, rows: np.ndarray, cand1: np.ndarray,
                         context: FrameContext) -> np.ndarray:
        """A plug-in scorer's ``(tracks, detections rows)`` matrix, on the host, shape checked."""
        dets = det if len(rows) == len(det) else det.select(rows)
        aff = _to_host(self.scorer(self.view(boxes, vel), dets, context, candidates=cand1))
        if aff.shape != cand1.shape:
            raise ValueError(f"scorer returned shape {aff.shape}, expected {cand1.shape}")
        return aff

    def _associate_second(self, boxes, det: Detections, sel: "_Selection", cand: np.ndarray,
                          match: "_Matches", shared: Optional[np.ndarray]) -> None:
        """Stage 2: tracks left over x (high detections left over + low ones) on ``metric2``,
        greedy. Low detections can only extend tracks here, never start one."""
        if not cand.any():
            return
        left_t = np.flatnonzero(match.track_det < 0)
        left_d = np.flatnonzero(~match.det_used)
        if not (len(left_t) and len(left_d)):
            return
        p = self.params
        thr = self._thr2[self.tracks.cls[left_t]]
        if shared is not None and p.metric2 == p.metric:
            # the stage-1 matrix holds these pairs; the kernel reads its rows and columns
            pairs = _assign_passing(shared, cand, left_t, left_d, thr, self._stage2_distance, "greedy")
        else:
            cand2 = cand[left_t][:, left_d]
            if not cand2.any():
                return
            aff = gated_affinity(boxes[left_t], det.boxes[sel.idx[left_d]], p.metric2, cand2, backend=self.backend,
                                 frames=self._frame_pair(left_t, _rows(sel.frames, left_d)))
            pairs = _assign_passing(aff, cand2, np.arange(len(left_t)), np.arange(len(left_d)), thr,
                                    self._stage2_distance, "greedy")
        match.add(left_t[pairs[:, 0]], left_d[pairs[:, 1]])

    def _update(self, det: Detections, sel: "_Selection", match: "_Matches") -> None:
        """Stage "update": Kalman update of the matched tracks; z, size and score smoothed."""
        t = self.tracks
        p = self.params
        matched = np.flatnonzero(match.track_det >= 0)
        if len(matched) == 0:
            return
        di = sel.idx[match.track_det[matched]]
        motion.update(t.x, t.P, t.yaw, t.cls, self.motion_table, matched,
                      kernels.measurements_of(det.boxes, det.velocities, di))
        kernels.smooth_matched(matched, di, det.boxes, det.scores, t.z, t.size, t.score, t.hits, t.tsu, t.confirmed,
                               t.cls, self._min_hits, float(p.size_smoothing), float(p.score_smoothing))

    def _life_cycle(self, det: Detections, sel: "_Selection", match: "_Matches") -> np.ndarray:
        """Stage "life cycle": deaths, then births from high detections left over scoring at least
        ``birth_score``. Returns, for each track kept (new ones last), the index into ``det`` of
        the detection it was updated with or born from (-1: none)."""
        t = self.tracks
        alive, born, det_of_track = kernels.life_cycle_rows(
            t.confirmed, t.tsu, t.cls, self._max_age, int(self.params.tentative_max_age), match.track_det,
            match.det_used, sel.high, sel.idx, sel.score, sel.cls, self._birth)
        start = t.keep_and_grow(alive, len(born))
        self._new_tracks(det, born, start)
        return det_of_track

    def _output(self, det: Detections, det_of_track: np.ndarray, context: FrameContext) -> Tracks:
        """Stage "output": tracks matched this frame and confirmed ones coasting at most
        ``output_max_coast`` frames, with refined scores (or those of the scorer's ``rescore``)."""
        p = self.params
        t = self.tracks
        if len(t) == 0:
            return Tracks.empty()
        sel = kernels.output_rows(t.tsu, t.confirmed, t.cls, self._max_coast, p.tentative_score_factor > 0.0)
        if len(sel) == 0:
            return Tracks.empty()
        boxes, vel = motion.state_boxes(t.x[sel], t.yaw[sel], t.z[sel], t.size[sel], t.cls[sel], self.motion_table)
        if not p.output_filtered:
            from_det = t.tsu[sel] == 0  # updated this frame
            if from_det.any():
                di = det_of_track[sel[from_det]]
                boxes[from_det] = det.boxes[di]
                vel[from_det] = det.velocities[di]
        tsu = t.tsu[sel]
        scores = t.score[sel] * np.power(self._decay[t.cls[sel]], tsu)
        if p.tentative_score_factor < 1.0:
            scores = np.where(t.confirmed[sel], scores, scores * p.tentative_score_factor)
        scores = self._rescored(sel, boxes, vel, scores.astype(np.float32), context)
        return Tracks(boxes, vel, scores, t.cls[sel], t.ids[sel])

    def _rescored(self, sel: np.ndarray, boxes, vel, scores: np.ndarray, context: FrameContext) -> np.ndarray:
        """The scorer's scores for the output rows ``sel`` when it rescores (see
        :mod:`nutrack.scoring`), else ``scores``."""
        rescore = self._rescore
        if rescore is None:
            return scores
        t = self.tracks
        view = TrackView(ids=t.ids[sel], classes=t.cls[sel], boxes=boxes, velocities=vel, scores=scores,
                         hits=t.hits[sel], age=t.age[sel], time_since_update=t.tsu[sel], confirmed=t.confirmed[sel])
        new = rescore(view, context)
        if new is None:
            return scores
        new = np.asarray(_to_host(new), np.float32).reshape(-1)
        if new.shape != scores.shape:
            raise ValueError(f"scorer.rescore returned {new.shape[0]} scores for {len(scores)} tracks")
        return new

    # -- helpers ---------------------------------------------------------------------------
    def _new_tracks(self, det: Detections, born: np.ndarray, start: int) -> None:
        """Tracks born from detections ``born`` into rows ``start ...`` of the table."""
        k = len(born)
        if k == 0:
            return
        t = self.tracks
        kernels.fill_new_tracks(start, self._next_id, born, det.boxes, det.scores, det.classes, self._min_hits,
                                self._frame < self._min_hits, t.ids, t.cls, t.yaw, t.z, t.size, t.score, t.hits,
                                t.age, t.tsu, t.confirmed)
        self._next_id += k
        motion.init_states_into(kernels.measurements_of(det.boxes, det.velocities, born), t.cls[start:],
                                self.motion_table, t.x[start:], t.P[start:])


def _rows(frames: Optional[np.ndarray], rows: np.ndarray) -> Optional[np.ndarray]:
    return None if frames is None else frames[rows]


def _to_host(x) -> np.ndarray:
    """A scorer's output (numpy, torch or cupy) as a float64 host array."""
    from nutrack.ops._arrays import to_host

    return to_host(x).astype(np.float64, copy=False)


class _Selection:
    """The frame's detections that survived the score filter and NMS: ``idx`` into the frame's
    detections, their classes, float64 scores and whether each is *high* (>= the class's
    ``score_threshold``)."""

    __slots__ = ("idx", "cls", "score", "high", "high_idx", "frames")

    def __init__(self, idx: np.ndarray, cls: np.ndarray, score: np.ndarray, high: np.ndarray,
                 frames: Optional[np.ndarray] = None):
        self.idx = idx
        self.frames = frames  # host box frames of the selected detections (None: cuda backend)
        self.cls = cls
        self.score = score
        self.high = high
        self.high_idx = np.flatnonzero(high)


class _Matches:
    """The association's result so far: for each track the selected detection it matched
    (an index into ``_Selection.idx``, -1: none), and which selected detections are taken."""

    __slots__ = ("track_det", "det_used")

    def __init__(self, num_tracks: int, num_detections: int):
        self.track_det = np.full(num_tracks, -1, np.int64)
        self.det_used = np.zeros(num_detections, np.bool_)

    def add(self, tracks: np.ndarray, detections: np.ndarray) -> None:
        self.track_det[tracks] = detections
        self.det_used[detections] = True


def _assign_passing(aff: np.ndarray, candidates: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    threshold: np.ndarray, is_distance: bool, method: str) -> np.ndarray:
    """``(track, detection)`` pairs, indices into ``rows`` and ``cols``, assigned (``method``)
    among the candidate pairs of ``aff[rows][:, cols]`` whose affinity passes the row's
    ``threshold``: below it for a distance, above it for a similarity. NaN (a scorer's
    ruled-out pair) never passes. One kernel builds the assignment's matrices
    (``passing_pairs``), without copying the sub-matrices out first, on the rows and columns
    that have a valid pair only. ``aff``: float32 or float64, read on candidate pairs only."""
    r, c, cost, valid = kernels.passing_pairs(aff, np.asarray(candidates, np.bool_), np.asarray(rows, np.int64),
                                              np.asarray(cols, np.int64), np.asarray(threshold, np.float64),
                                              bool(is_distance))
    pairs = assign(cost, valid, method)  # a fresh array: map it back in place
    pairs[:, 0] = r[pairs[:, 0]]
    pairs[:, 1] = c[pairs[:, 1]]
    return pairs
