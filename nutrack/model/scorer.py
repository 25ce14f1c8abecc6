"""The learned scorer: the association network behind the tracker's ``learned`` method.

It follows the scorer contract of :mod:`nutrack.scoring` (``kind``, ``threshold``,
``__call__``, ``reset``, ``observe``, ``rescore``). Each live track is represented by the
encoded features of the detection it was last updated with (kept per track id in
:meth:`LearnedScorer.observe`) and by the box and velocity the tracker's motion models predict
for it now; the pair geometry compares that predicted box with each detection. With a
confidence head (:mod:`nutrack.model.confidence`), :meth:`LearnedScorer.rescore` gives the
scores the tracker reports.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nutrack.model import _feature_kernels as _kernels
from nutrack.model.checkpoint import CHECKPOINT_FORMAT, confidence_from_checkpoint, load_model
from nutrack.model.confidence import ConfidenceNet, TrackHistory, confidence_inputs
from nutrack.model.features import (ObjectInputs, PointIndex, candidate_pairs, count_object_points, make_objects,
                                    nan_to_num, object_geometry, pair_geometry)
from nutrack.model.network import AssociationNet, ModelConfig, object_tensors, pair_probabilities
from nutrack.model.numba_net import NumbaAssociationNet, NumbaConfidenceNet, supported
from nutrack.model.threads import blas_threads, torch_threads
from nutrack.scoring import Scorer

__all__ = ["LearnedScorer", "RolloutFrame", "load_scorer", "load_model", "CHECKPOINT_FORMAT"]


@dataclass
class RolloutFrame:
    """One frame of a recorded rollout (:attr:`LearnedScorer.recorder`): the confidence
    inputs of the output tracks, their boxes, classes and tracker scores, and the ego's BEV
    position (NaN when the frame had no pose)."""

    sample_token: Optional[str]
    ego_xy: np.ndarray
    inputs: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray


def load_scorer(checkpoint: str, device: str = "cpu", threads: Optional[int] = 1,
                engine: Optional[str] = None) -> "LearnedScorer":
    """The :class:`LearnedScorer` of a checkpoint (the tracker's ``--method learned`` entry);
    raises :class:`nutrack.model.checkpoint.CheckpointError` for an unusable file.

    ``threads``, ``engine``: see :class:`LearnedScorer`."""
    model, ck = load_model(checkpoint, device)
    return LearnedScorer(model, device=device, nsweeps=int(ck.get("data", {}).get("nsweeps", 1)),
                         threads=threads, confidence=confidence_from_checkpoint(ck, checkpoint), engine=engine)


class LearnedScorer(Scorer):
    """Scores (track, detection) pairs with an :class:`AssociationNet`.

    Returns normalised scores in 0-1 for the pairs within the class gate and ``-inf`` for
    the others; ``threshold`` is the model's match threshold.

    Args:
        model: the network (eval mode); device: its torch device; nsweeps: lidar sweeps per
            frame the model was trained with (used when the scorer loads points itself).
        threshold: the match threshold (default: the model's).
        threads: CPU threads of the networks while the scorer runs (default 1): torch's
            intra-op threads, or with the numba engine those of SciPy's BLAS; put back after
            each call; ``None`` leaves the settings alone. The network's
            per-frame tensors are tiny, and torch's thread pool made the tracker 25x slower on
            a busy 2-core machine (2.7 vs 68 frames/s); scoping the setting to the scorer's
            calls keeps that speed without changing the rest of the process.
        confidence: the track-confidence head (:class:`ConfidenceNet`, on the CPU) whose
            probabilities the tracker reports as scores (:meth:`rescore`); None: the tracker's.
        history: output frames per track the confidence inputs hold (default: the head's).
        engine: how the networks run: ``"numba"`` (:mod:`nutrack.model.numba_net`: one compiled
            call per network and frame, ~4x faster than torch on the tracker's tiny batches,
            equal to torch's results up to float32 rounding) or ``"torch"`` (the model as it is,
            on ``device``: the tensors stay there). Default: numba on the CPU when the model has
            only the standard layers, else torch.

    ``recorder``: set it to a list to record every frame's confidence inputs as
    :class:`RolloutFrame` (the training rollouts of the head), with or without a head.
    """

    kind = "similarity"

    def __init__(self, model: AssociationNet, device="cpu", nsweeps: int = 1,
                 threshold: Optional[float] = None, threads: Optional[int] = 1,
                 confidence: Optional[ConfidenceNet] = None, history: Optional[int] = None,
                 engine: Optional[str] = None):
        self.confidence = None if confidence is None else confidence.eval()
        self.history = TrackHistory(history if history is not None else
                                    (confidence.config.history if confidence is not None else 1))
        self.recorder: Optional[list] = None
        self.model = model.eval()
        self.device = torch.device(device)
        self.threads = threads if self.device.type == "cpu" else None
        self.config: ModelConfig = model.config
        self.threshold = float(self.config.threshold if threshold is None else threshold)
        self.nsweeps = nsweeps
        if engine is None:
            engine = "numba" if self.device.type == "cpu" and supported(model) else "torch"
        if engine not in ("numba", "torch"):
            raise ValueError(f"engine must be 'numba' or 'torch', got {engine!r}")
        if engine == "numba" and self.device.type != "cpu":
            raise ValueError(f"the numba engine runs on the CPU, the model is on {self.device}")
        self.engine = engine
        self._net = _NumbaEngine(model) if engine == "numba" else _TorchEngine(model, self.device)
        self._confidence_net = (None if confidence is None else
                                NumbaConfidenceNet(self.confidence) if engine == "numba" else None)
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        # the tracks the scorer saw updated, as parallel arrays sorted by id: the time of the
        # detection each was last updated with, and that detection's encoded features (rows
        # of one array: a tensor on the model's device with the torch engine)
        self.history.reset()
        self._ids = np.zeros(0, np.int64)
        self._time = np.zeros(0, np.float64)
        self._feat = None  # (tracks, hidden): a torch tensor or a numpy array (the engine's)
        # the inputs of the detections observe() could not take from __call__ (ObjectInputs) and
        # the ids of their tracks: encoded in the next frame's network call
        self._pending: Optional[ObjectInputs] = None
        self._pending_ids: Optional[np.ndarray] = None
        # this frame's encoded detections (from __call__), found again in observe by their bits
        self._det_rows = None
        self._det_feat = None
        self._points_key = None
        self._points = None

    def _frame_points(self, context) -> Optional[PointIndex]:
        """The frame's points, loaded once a frame and binned once (:class:`PointIndex`)."""
        if not self.config.use_points or context is None:
            return None
        key = (context.sample_token, context.index, context.timestamp)
        if key != self._points_key:
            pts = None
            if getattr(context, "points", None) is not None:
                pts = context.points()
            elif getattr(context, "frame", None) is not None and getattr(context.frame, "lidar_path", None):
                from nutrack.data.boxes import transform_points
                from nutrack.data.nuscenes_io import load_pcd_bin

                raw = load_pcd_bin(context.frame.lidar_path)
                pts = transform_points(raw[:, :4], context.frame.lidar_to_global).astype(np.float32)
            self._points_key = key
            self._points = None if pts is None else PointIndex(pts)
        return self._points

    @staticmethod
    def _pose(context):
        frame = getattr(context, "frame", None) if context is not None else None
        return getattr(frame, "ego_to_global", None)

    def _objects(self, boxes, vel, scores, classes, context) -> ObjectInputs:
        return make_objects(boxes, vel, scores, classes, self._pose(context), self._frame_points(context),
                            max_points=self.config.max_points)

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id in the state arrays, -1 for ids the scorer has not seen updated."""
        if len(self._ids) == 0:
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return np.where(self._ids[pos] == ids, pos, -1)

    # -- the scorer contract ---------------------------------------------------------------
    def __call__(self, tracks, detections, context, candidates: Optional[np.ndarray] = None) -> np.ndarray:
        """Normalised scores ``(M, N)`` float32 of the pairs inside the model's class gate (and
        inside the tracker's ``candidates`` when given); ``-inf`` elsewhere."""
        with self._net.running(self.threads):
            return self._score(tracks, detections, context, candidates)

    def observe(self, track_ids, detection_index, detections, context) -> None:
        with self._net.running(self.threads):
            self._observe(track_ids, detection_index, detections, context)

    def _score(self, tracks, detections, context, candidates: Optional[np.ndarray]) -> np.ndarray:
        m, n = len(tracks), len(detections)
        out = np.full((m, n), -np.inf, np.float32)
        if m == 0 or n == 0:
            return out
        # the tracks as the tracker presents them: its motion models' predicted boxes and
        # velocities; the features are those of each track's last detection
        pred = np.ascontiguousarray(tracks.boxes, np.float32)
        vel = nan_to_num(np.asarray(tracks.velocities, np.float32))
        pos = self._lookup(np.asarray(tracks.ids, np.int64))
        known = pos >= 0
        dt = np.zeros(m)
        dt[known] = float(context.timestamp) - self._time[pos[known]]
        ti, di = candidate_pairs(pred, tracks.classes, detections.boxes, detections.classes, self.config.gates)
        if candidates is not None and len(ti):
            # pairs outside the tracker's gate are ignored by it; with softmax they still
            # share their track's normalisation, as in training
            ok = np.asarray(candidates, bool)[ti, di]
            if self.config.normalization == "sigmoid" or not ok.any():
                ti, di = ti[ok], di[ok]
        if len(ti) == 0:
            return out
        ft, fd = self._features(tracks, pred, vel, pos, detections, context)
        self._det_rows = _row_bits(detections)
        self._det_feat = fd
        geo = pair_geometry(pred, vel, dt, detections.boxes, detections.velocities, ti, di,
                            time_since_update=np.asarray(tracks.time_since_update, np.float64),
                            track_classes=tracks.classes, det_classes=detections.classes)
        out[ti, di] = self._net.pair_scores(ft, fd, ti, di, geo)
        return out

    def _features(self, tracks, pred, vel, pos, detections, context):
        """``(track features, detection features)`` from one network call: this frame's
        detections, the tracks the scorer never saw updated (their predicted boxes, now) and the
        detections :meth:`observe` left to encode (:attr:`_pending`), in one batch."""
        net, n = self._net, len(detections)
        unknown = np.flatnonzero(pos < 0)
        parts = [self._objects(detections.boxes, detections.velocities, detections.scores, detections.classes,
                               context)]
        if len(unknown):
            parts.append(self._objects(pred[unknown], vel[unknown], np.asarray(tracks.scores)[unknown],
                                       np.asarray(tracks.classes)[unknown], context))
        if self._pending is not None:
            parts.append(self._pending)
        f = net.encode(parts[0] if len(parts) == 1 else ObjectInputs.concat(parts))
        if self._pending is not None:  # every pending id is in the state (observe keeps them so)
            net.put(self._feat, self._lookup(self._pending_ids), f[n + len(unknown):])
            self._pending, self._pending_ids = None, None
        if len(unknown) == 0:
            return net.take(self._feat, pos), f[:n]
        state = net.zeros(0) if self._feat is None else self._feat
        rows = np.where(pos >= 0, pos, len(state) + np.cumsum(pos < 0) - 1)  # unknown ones: their new rows
        return net.take(net.cat([state, f[n:n + len(unknown)]]), rows), f[:n]

    def rescore(self, tracks, context) -> Optional[np.ndarray]:
        """The confidence head's scores of the output ``tracks`` (None without a head). With a
        ``recorder`` list set, each frame's inputs are appended to it as well (training rollouts)."""
        if self.confidence is None and self.recorder is None:
            return None
        boxes = np.ascontiguousarray(tracks.boxes, np.float32)
        counts = count_object_points(self._frame_points(context), boxes, self.config.max_points)
        pose = self._pose(context)
        geom = object_geometry(boxes, tracks.velocities, tracks.scores, pose, counts)
        x = confidence_inputs(tracks, geom, self.history)
        if self.recorder is not None:
            ego = np.full(2, np.nan) if pose is None else np.asarray(pose, np.float64)[:2, 3].copy()
            self.recorder.append(RolloutFrame(getattr(context, "sample_token", None), ego, x, boxes,
                                              np.asarray(tracks.classes, np.int64).copy(),
                                              np.asarray(tracks.scores, np.float32).copy()))
        if self.confidence is None:
            return None
        if self._confidence_net is not None:
            with blas_threads(self.threads):
                return self._confidence_net.probabilities(x)
        with torch_threads(self.threads):
            return self.confidence.probabilities(x)

    def _observe(self, track_ids, detection_index, detections, context) -> None:
        ids = np.ascontiguousarray(track_ids, np.int64).reshape(-1)
        di = np.ascontiguousarray(detection_index, np.int64).reshape(-1)
        d = di[di >= 0]
        # features computed in __call__ this frame are reused; the others (detections that only
        # stage 2 matched, births of a frame without scoring) wait for the next frame's network
        # call, with this frame's points: their rows hold zeros until then
        cached = (np.full(len(d), -1, np.int64) if self._det_rows is None else
                  _kernels.same_rows(*self._det_rows, *_row_bits(detections), d))
        net = self._net
        old = net.zeros(0) if self._feat is None else self._feat
        fresh = net.zeros(0) if self._det_feat is None else self._det_feat
        now = float(context.timestamp) if context is not None else 0.0
        self._ids, self._time, src, stay_ids, miss_ids, miss_det = _kernels.observed_state(
            self._ids, self._time, ids, di, cached, now, len(old), len(fresh))
        self._feat = net.take(net.cat([old, fresh, net.zeros(1)]), src)
        pending = self._kept_pending(stay_ids)
        if len(miss_det):
            pending.append((miss_ids, self._objects(detections.boxes[miss_det], detections.velocities[miss_det],
                                                    detections.scores[miss_det], detections.classes[miss_det],
                                                    context)))
        self._pending_ids = np.concatenate([p[0] for p in pending]) if pending else None
        self._pending = (pending[0][1] if len(pending) == 1 else ObjectInputs.concat([p[1] for p in pending])
                         if pending else None)
        self._det_rows, self._det_feat = None, None

    def _kept_pending(self, stay_ids: np.ndarray) -> list:
        """``[(ids, ObjectInputs)]``: the pending inputs of the tracks that keep their state."""
        if self._pending is None:
            return []
        keep = np.isin(self._pending_ids, stay_ids)
        if not keep.any():
            return []
        return [(self._pending_ids[keep], self._pending if keep.all() else self._pending.select(keep))]


class _TorchEngine:
    """The networks through torch on the model's device: features are tensors there."""

    def __init__(self, model: AssociationNet, device: torch.device):
        self.model, self.device = model, device
        self.hidden = int(model.config.hidden)

    @contextlib.contextmanager
    def running(self, threads: Optional[int]):
        with torch_threads(threads), torch.inference_mode():
            yield

    def _index(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rows, np.int64)).to(self.device)

    def encode(self, obj) -> torch.Tensor:
        return self.model.encode(object_tensors(obj, self.device))

    def take(self, feat: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return feat[self._index(rows)]

    def put(self, feat: torch.Tensor, rows: np.ndarray, values: torch.Tensor) -> None:
        feat[self._index(rows)] = values

    def zeros(self, n: int) -> torch.Tensor:
        return torch.zeros((n, self.hidden), device=self.device)

    @staticmethod
    def cat(parts) -> torch.Tensor:
        return torch.cat(parts)

    def pair_scores(self, ft, fd, ti: np.ndarray, di: np.ndarray, geo: np.ndarray) -> np.ndarray:
        """Normalised float32 scores of the pairs ``(ti, di)``, on the host."""
        ti_t = self._index(ti)
        logits = self.model.pair_logits(ft[ti_t], fd[self._index(di)], torch.from_numpy(geo).to(self.device))
        normalization = self.model.config.normalization
        nm = self.model.nomatch_logits(ft) if normalization == "softmax" else None
        return pair_probabilities(logits, nm, ti_t, len(ft), normalization).float().cpu().numpy()


class _NumbaEngine(NumbaAssociationNet):
    """The networks in numba (:mod:`nutrack.model.numba_net`): features are numpy arrays."""

    def __init__(self, model: AssociationNet):
        super().__init__(model)
        self.hidden = int(model.config.hidden)

    @staticmethod
    def running(threads: Optional[int]):
        return blas_threads(threads)

    @staticmethod
    def take(feat: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return feat[rows]

    @staticmethod
    def put(feat: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        feat[rows] = values

    def zeros(self, n: int) -> np.ndarray:
        return np.zeros((n, self.hidden), np.float32)

    @staticmethod
    def cat(parts) -> np.ndarray:
        return np.concatenate(parts)


def _row_bits(det):
    """The bits of the detections' rows (box, velocity, score as uint32, class): a detection's
    identity between ``__call__`` (the tracker's high detections) and ``observe`` (all of
    them), for :func:`nutrack.model._feature_kernels.same_rows`."""
    return (np.ascontiguousarray(det.boxes, np.float32).view(np.uint32),
            np.ascontiguousarray(det.velocities, np.float32).view(np.uint32),
            np.ascontiguousarray(det.scores, np.float32).view(np.uint32),
            np.ascontiguousarray(det.classes, np.int64))
