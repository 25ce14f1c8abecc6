"""The learned scorer: the association network behind the tracker's ``learned`` method.

It follows the scorer contract of :mod:`nutrack.scoring` (``kind``, ``threshold``,
``__call__``, ``reset``, ``observe``). Each live track is represented, as in training, by the
detection it was last updated with (its box, velocity, score, class and encoded features,
kept per track id in :meth:`LearnedScorer.observe`) moved to the current time with that
detection's velocity (constant velocity, no acceleration).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from nutrack.model.checkpoint import CHECKPOINT_FORMAT, load_model
from nutrack.model.features import candidate_pairs, make_objects, pair_geometry, predict_boxes
from nutrack.model.network import AssociationNet, ModelConfig, object_tensors, pair_probabilities
from nutrack.model.threads import torch_threads
from nutrack.scoring import Scorer

__all__ = ["LearnedScorer", "load_scorer", "load_model", "CHECKPOINT_FORMAT"]


def load_scorer(checkpoint: str, device: str = "cpu", threads: Optional[int] = 1) -> "LearnedScorer":
    """The :class:`LearnedScorer` of a checkpoint (the tracker's ``--method learned`` entry);
    raises :class:`nutrack.model.checkpoint.CheckpointError` for an unusable file.

    ``threads``: torch intra-op threads while the scorer runs (see :class:`LearnedScorer`)."""
    model, ck = load_model(checkpoint, device)
    return LearnedScorer(model, device=device, nsweeps=int(ck.get("data", {}).get("nsweeps", 1)),
                         threads=threads)


class LearnedScorer(Scorer):
    """Scores (track, detection) pairs with an :class:`AssociationNet`.

    Returns normalised scores in 0-1 for the pairs within the class gate and ``-inf`` for
    the others; ``threshold`` is the model's match threshold.

    Args:
        model: the network (eval mode); device: its torch device; nsweeps: lidar sweeps per
            frame the model was trained with (used when the scorer loads points itself).
        threshold: the match threshold (default: the model's).
        threads: torch intra-op threads on the CPU while the scorer runs (default 1), put
            back after each call; ``None`` leaves torch's setting alone. The network's
            per-frame tensors are tiny, and torch's thread pool made the tracker 25x slower on
            a busy 2-core machine (2.7 vs 68 frames/s); scoping the setting to the scorer's
            calls keeps that speed without changing the rest of the process.
    """

    kind = "similarity"

    def __init__(self, model: AssociationNet, device="cpu", nsweeps: int = 1,
                 threshold: Optional[float] = None, threads: Optional[int] = 1):
        self.model = model.eval()
        self.device = torch.device(device)
        self.threads = threads if self.device.type == "cpu" else None
        self.config: ModelConfig = model.config
        self.threshold = float(self.config.threshold if threshold is None else threshold)
        self.nsweeps = nsweeps
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        self._tracks: Dict[int, tuple] = {}  # id -> (box, vel, score, cls, feature, time)
        self._det_cache: Dict[bytes, torch.Tensor] = {}  # this frame's detection features by row
        self._points_key = None
        self._points = None

    def _frame_points(self, context) -> Optional[np.ndarray]:
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
            self._points_key, self._points = key, pts
        return self._points

    @staticmethod
    def _pose(context):
        frame = getattr(context, "frame", None) if context is not None else None
        return getattr(frame, "ego_to_global", None)

    @torch.inference_mode()
    def _encode(self, boxes, vel, scores, classes, context) -> torch.Tensor:
        obj = make_objects(boxes, vel, scores, classes, self._pose(context), self._frame_points(context),
                           max_points=self.config.max_points)
        return self.model.encode(object_tensors(obj, self.device))

    # -- the scorer contract ---------------------------------------------------------------
    def __call__(self, tracks, detections, context, candidates: Optional[np.ndarray] = None) -> np.ndarray:
        """Normalised scores ``(M, N)`` float32 of the pairs inside the model's class gate (and
        inside the tracker's ``candidates`` when given); ``-inf`` elsewhere."""
        with torch_threads(self.threads), torch.inference_mode():
            return self._score(tracks, detections, context, candidates)

    def observe(self, track_ids, detection_index, detections, context) -> None:
        with torch_threads(self.threads), torch.inference_mode():
            self._observe(track_ids, detection_index, detections, context)

    def _score(self, tracks, detections, context, candidates: Optional[np.ndarray]) -> np.ndarray:
        m, n = len(tracks), len(detections)
        out = np.full((m, n), -np.inf, np.float32)
        if m == 0 or n == 0:
            return out
        now = float(context.timestamp)
        boxes = np.array(tracks.boxes, np.float32, copy=True)
        vel = np.nan_to_num(np.array(tracks.velocities, np.float32, copy=True))
        dt = np.zeros(m)
        feats = [None] * m
        unknown = []
        for i, tid in enumerate(np.asarray(tracks.ids).tolist()):
            st = self._tracks.get(int(tid))
            if st is None:
                unknown.append(i)
                continue
            boxes[i], vel[i], feats[i], dt[i] = st[0], st[1], st[4], now - st[5]
        if unknown:  # tracks the scorer never saw updated: their predicted boxes, now
            u = np.asarray(unknown)
            f = self._encode(boxes[u], vel[u], np.asarray(tracks.scores)[u], np.asarray(tracks.classes)[u], context)
            for k, i in enumerate(unknown):
                feats[i] = f[k]
        pred = predict_boxes(boxes, vel, dt)
        ti, di = candidate_pairs(pred, tracks.classes, detections.boxes, detections.classes, self.config.gates)
        if candidates is not None and len(ti):
            # pairs outside the tracker's gate are ignored by it; with softmax they still
            # share their track's normalisation, as in training
            ok = np.asarray(candidates, bool)[ti, di]
            if self.config.normalization == "sigmoid":
                ti, di = ti[ok], di[ok]
            elif not ok.any():
                ti, di = ti[ok], di[ok]
        if len(ti) == 0:
            return out
        fd = self._encode(detections.boxes, detections.velocities, detections.scores, detections.classes, context)
        self._det_cache = {_row_key(detections, j): fd[j] for j in range(n)}
        ft = torch.stack(feats)
        geo = pair_geometry(pred, vel, dt, detections.boxes, detections.velocities, ti, di,
                            time_since_update=np.asarray(tracks.time_since_update, np.float64))
        ti_t = torch.from_numpy(ti).to(self.device)
        logits = self.model.pair_logits(ft[ti_t], fd[torch.from_numpy(di).to(self.device)],
                                        torch.from_numpy(geo).to(self.device))
        nm = self.model.nomatch_logits(ft) if self.config.normalization == "softmax" else None
        prob = pair_probabilities(logits, nm, ti_t, m, self.config.normalization)
        out[ti, di] = prob.float().cpu().numpy()
        return out

    def _observe(self, track_ids, detection_index, detections, context) -> None:
        ids = np.asarray(track_ids).reshape(-1)
        di = np.asarray(detection_index, np.int64).reshape(-1)
        upd = np.flatnonzero(di >= 0)
        keep = {int(t): self._tracks[int(t)] for t in ids.tolist() if int(t) in self._tracks}
        if len(upd):
            d = di[upd]
            # features computed in __call__ this frame are reused; the others are computed now
            cached = [self._det_cache.get(_row_key(detections, j)) for j in d.tolist()]
            miss = [k for k, c in enumerate(cached) if c is None]
            if miss:
                dm = d[miss]
                fm = self._encode(detections.boxes[dm], detections.velocities[dm], detections.scores[dm],
                                  detections.classes[dm], context)
                for r, k in enumerate(miss):
                    cached[k] = fm[r]
            f = cached
            now = float(context.timestamp) if context is not None else 0.0
            for k, (tid, j) in enumerate(zip(ids[upd].tolist(), d.tolist())):
                keep[int(tid)] = (detections.boxes[j].copy(), np.nan_to_num(detections.velocities[j]).copy(),
                                  float(detections.scores[j]), int(detections.classes[j]), f[k], now)
        self._tracks = keep
        self._det_cache = {}


def _row_key(det, j: int) -> bytes:
    return (det.boxes[j].tobytes() + det.velocities[j].tobytes() + det.scores[j].tobytes()
            + det.classes[j].tobytes())
