"""The learned scorer and its per-object inputs as they were before issue 11, item 4 (commit
87e08e6; ``reference_object_geometry``: commit 89ed393): the reference the fast path in
nutrack/model is held to, bit for bit (tests/test_model_scorer_fast.py). Kept verbatim apart
from the names; not used by nutrack."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from nutrack.data.classes import NUM_CLASSES
from nutrack.model.features import (_ENLARGE_ABS, ENLARGE, GEOM_DIM, POINT_DIM, PAIR_DIM, ObjectInputs, candidate_pairs,
                                    pair_metric)
from nutrack.model.network import AssociationNet, ModelConfig, object_tensors, pair_probabilities
from nutrack.model.threads import torch_threads
from nutrack.scoring import Scorer


def _enlarged(boxes: np.ndarray) -> np.ndarray:
    big = boxes.astype(np.float32, copy=True)
    big[:, 3:6] = big[:, 3:6] * ENLARGE + _ENLARGE_ABS
    return big


def reference_gather_object_points(points: Optional[np.ndarray], boxes: np.ndarray, max_points: int = 32
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Each box's own points, as network inputs in the box's local frame.

    Args:
        points: ``(P, >=3)`` global-frame points (column 3, if present, is the intensity), or None.
        boxes: ``(N, 7)`` global-frame boxes.
        max_points: at most this many points per object, chosen deterministically (evenly
            spaced over the object's points in cloud order).

    Returns:
        ``(N, K, POINT_DIM)`` float32 and ``(N, K)`` bool mask, ``K = max_points``.
    """
    boxes = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 7)
    n = len(boxes)
    out = np.zeros((n, max_points, POINT_DIM), np.float32)
    mask = np.zeros((n, max_points), bool)
    if n == 0 or points is None or len(points) == 0 or max_points == 0:
        return out, mask
    import nutrack.ops as ops

    pts = np.ascontiguousarray(points, dtype=np.float32)
    big = _enlarged(boxes)
    pairs = np.asarray(ops.points_in_boxes_all(pts[:, :3], big, sparse=True))
    if len(pairs) == 0:
        return out, mask
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))  # by box, then point
    pi, bi = pairs[order, 0], pairs[order, 1]
    counts = np.bincount(bi, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # rank of each pair within its box; keep evenly spaced ranks when a box has too many
    rank = np.arange(len(bi)) - starts[bi]
    cnt = counts[bi]
    k = max_points
    # objects with more than K points keep the ranks floor(j * cnt / K), j = 0..K-1 (integer maths)
    slot_sub = (rank * k + cnt - 1) // np.maximum(cnt, 1)
    sub = cnt > k
    slot = np.where(sub, slot_sub, rank)
    keep = np.where(sub, (slot_sub * cnt) // k == rank, True) & (slot < k)
    pi, bi, slot = pi[keep], bi[keep], slot[keep]
    d = pts[pi, :3].astype(np.float64) - boxes[bi, :3].astype(np.float64)
    c, s = np.cos(boxes[bi, 6].astype(np.float64)), np.sin(boxes[bi, 6].astype(np.float64))
    lx = c * d[:, 0] + s * d[:, 1]
    ly = -s * d[:, 0] + c * d[:, 1]
    lz = d[:, 2]
    half = big[bi, 3:6].astype(np.float64) / 2.0
    feat = np.stack([lx / half[:, 0], ly / half[:, 1], lz / half[:, 2], lx / 4.0, ly / 4.0, lz / 4.0,
                     np.clip(pts[pi, 3] / 255.0, 0.0, 1.0) if pts.shape[1] > 3 else np.zeros(len(pi))], axis=1)
    out[bi, slot] = feat.astype(np.float32)
    mask[bi, slot] = True
    return out, mask



def reference_make_objects(boxes, velocities, scores, classes, ego_to_global=None, points=None,
                 max_points: int = 32) -> ObjectInputs:
    """:class:`ObjectInputs` of a frame's objects (boxes, velocities global frame)."""
    boxes = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 7)
    vel = np.nan_to_num(np.ascontiguousarray(velocities, dtype=np.float32).reshape(-1, 2))
    scores = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1)
    classes = np.ascontiguousarray(classes, dtype=np.int64).reshape(-1)
    if len(classes) and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
        raise ValueError(f"classes must be in 0..{NUM_CLASSES - 1}")
    pts, mask = reference_gather_object_points(points, boxes, max_points)
    geom = reference_object_geometry(boxes, vel, scores, ego_to_global, mask.sum(axis=1))
    return ObjectInputs(geom, classes, pts, mask, boxes, vel, scores)


def reference_object_geometry(boxes: np.ndarray, velocities: np.ndarray, scores: np.ndarray,
                              ego_to_global: Optional[np.ndarray], num_points: np.ndarray) -> np.ndarray:
    """``(N, GEOM_DIM)`` float32: centre in the ego frame (x, y, z; /50, /50, /5), BEV range /50,
    log size (3), heading relative to the ego (cos, sin), velocity in the ego frame (/10, 2),
    speed /10, detection score, log(1 + points) / 5. (The numpy code before the numba pass.)"""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    n = len(b)
    pose = np.eye(4) if ego_to_global is None else np.asarray(ego_to_global, dtype=np.float64)
    r, t = pose[:3, :3], pose[:3, 3]
    local = (b[:, :3] - t) @ r  # R^T (c - t)
    ego_yaw = np.arctan2(r[1, 0], r[0, 0])
    yaw = b[:, 6] - ego_yaw
    v = np.nan_to_num(np.asarray(velocities, dtype=np.float64).reshape(-1, 2))
    v_ego = v @ r[:2, :2]
    size = np.log(np.maximum(b[:, 3:6], 1e-2))
    g = np.empty((n, GEOM_DIM), np.float64)
    g[:, 0] = local[:, 0] / 50.0
    g[:, 1] = local[:, 1] / 50.0
    g[:, 2] = local[:, 2] / 5.0
    g[:, 3] = np.hypot(local[:, 0], local[:, 1]) / 50.0
    g[:, 4:7] = size
    g[:, 7] = np.cos(yaw)
    g[:, 8] = np.sin(yaw)
    g[:, 9:11] = v_ego / 10.0
    g[:, 11] = np.hypot(v[:, 0], v[:, 1]) / 10.0
    g[:, 12] = np.asarray(scores, dtype=np.float64).reshape(-1)
    g[:, 13] = np.log1p(np.asarray(num_points, dtype=np.float64)) / 5.0
    return g.astype(np.float32)



def reference_pair_geometry(pred_track_boxes: np.ndarray, track_vel: np.ndarray, dt: np.ndarray,
                  det_boxes: np.ndarray, det_vel: np.ndarray, ti: np.ndarray, di: np.ndarray,
                  time_since_update: Optional[np.ndarray] = None) -> np.ndarray:
    """``(P, PAIR_DIM)`` float32 for the pairs ``(ti[k], di[k])``.

    Columns: motion-compensated BEV centre distance /2 (``pairwise_affinity``
    ``center_distance`` of the predicted track boxes), ``giou_bev``, ``iou_3d``, |dz|, log size
    ratios (3), cos and sin of the heading difference, velocity difference /5, the time gap
    ``dt`` (s) of the track, frames since the track's last update /5.
    """
    p = len(ti)
    out = np.zeros((p, PAIR_DIM), np.float32)
    if p == 0:
        return out
    tb = np.asarray(pred_track_boxes, np.float32).reshape(-1, 7)
    db = np.asarray(det_boxes, np.float32).reshape(-1, 7)
    ut, ti_u = np.unique(ti, return_inverse=True)
    ud, di_u = np.unique(di, return_inverse=True)
    a_t, a_d = tb[ut], db[ud]
    out[:, 0] = pair_metric(a_t, a_d, "center_distance")[ti_u, di_u] / 2.0
    out[:, 1] = pair_metric(a_t, a_d, "giou_bev")[ti_u, di_u]
    out[:, 2] = pair_metric(a_t, a_d, "iou_3d")[ti_u, di_u]
    t, d = tb[ti].astype(np.float64), db[di].astype(np.float64)
    out[:, 3] = np.abs(t[:, 2] - d[:, 2])
    out[:, 4:7] = np.log(np.maximum(d[:, 3:6], 1e-2) / np.maximum(t[:, 3:6], 1e-2))
    dyaw = d[:, 6] - t[:, 6]
    out[:, 7] = np.cos(dyaw)
    out[:, 8] = np.sin(dyaw)
    tv = np.nan_to_num(np.asarray(track_vel, np.float64).reshape(-1, 2))[ti]
    dv = np.nan_to_num(np.asarray(det_vel, np.float64).reshape(-1, 2))[di]
    out[:, 9] = np.hypot(*(tv - dv).T) / 5.0
    out[:, 10] = np.broadcast_to(np.asarray(dt, np.float64), (len(tb),))[ti]
    if time_since_update is not None:
        out[:, 11] = np.asarray(time_since_update, np.float64).reshape(-1)[ti] / 5.0
    return out


class ReferenceLearnedScorer(Scorer):
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
        obj = reference_make_objects(boxes, vel, scores, classes, self._pose(context), self._frame_points(context),
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
            feats[i], dt[i] = st[4], now - st[5]  # the tracker's predicted box and velocity stay
        if unknown:  # tracks the scorer never saw updated: their predicted boxes, now
            u = np.asarray(unknown)
            f = self._encode(boxes[u], vel[u], np.asarray(tracks.scores)[u], np.asarray(tracks.classes)[u], context)
            for k, i in enumerate(unknown):
                feats[i] = f[k]
        pred = boxes
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
        geo = reference_pair_geometry(pred, vel, dt, detections.boxes, detections.velocities, ti, di,
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


def reference_confidence_inputs(tracks, geom: np.ndarray, history) -> np.ndarray:
    """``confidence_inputs`` as numpy array operations (the code before its numba pass, commit
    fa72e8a), on a history object with ``push`` (the reference ``ReferenceTrackHistory``)."""
    tsu = np.asarray(tracks.time_since_update, np.float64)
    hits = np.asarray(tracks.hits, np.float64)
    age = np.asarray(tracks.age, np.float64)
    matched = (tsu == 0).astype(np.float32)
    scores = np.asarray(tracks.scores, np.float32)
    entries = np.stack([scores, matched, geom[:, 13], np.ones_like(scores)], axis=1)
    window, count, mean_score = history.push(tracks.ids, entries)
    m = len(tsu)
    stats = np.stack([np.minimum(tsu, 8.0) / 4.0, np.log1p(hits) / 3.0, np.log1p(age) / 3.0, hits / (age + 1.0),
                      matched, mean_score, np.log1p(count) / 3.0], axis=1)
    onehot = np.zeros((m, NUM_CLASSES), np.float32)
    onehot[np.arange(m), np.asarray(tracks.classes, np.int64)] = 1.0
    return np.concatenate([geom, onehot, stats.astype(np.float32), window.reshape(m, -1)], axis=1).astype(np.float32)


class ReferenceTrackHistory:
    """``TrackHistory`` as numpy array operations (before its numba pass, commit fa72e8a)."""

    def __init__(self, length: int):
        from nutrack.model.confidence import HISTORY_FIELDS

        self.length, self.fields = int(length), HISTORY_FIELDS
        self.ids = np.zeros(0, np.int64)
        self.window = np.zeros((0, self.length, HISTORY_FIELDS), np.float32)
        self.count = np.zeros(0, np.int64)
        self.score_sum = np.zeros(0, np.float64)

    def push(self, ids, entries):
        ids = np.asarray(ids, np.int64).reshape(-1)
        pos = np.searchsorted(self.ids, ids) if len(self.ids) else np.zeros(len(ids), np.int64)
        pos = np.minimum(pos, max(len(self.ids) - 1, 0))
        known = (self.ids[pos] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        window = np.zeros((len(ids), self.length, self.fields), np.float32)
        window[:, 0] = entries
        count = np.ones(len(ids), np.int64)
        score_sum = entries[:, 0].astype(np.float64)
        rows = pos[known]
        window[known, 1:] = self.window[rows, :-1]
        count[known] += self.count[rows]
        score_sum[known] += self.score_sum[rows]
        order = np.argsort(ids, kind="stable")
        self.ids, self.window, self.count, self.score_sum = ids[order], window[order], count[order], score_sum[order]
        return window, count, score_sum / count
