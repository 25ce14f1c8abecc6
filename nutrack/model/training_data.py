"""Training data: frames with detections labelled by their ground-truth instance, and
frame-pair batches of (query track, detection) candidate pairs.

A *frame pair* is (frame ``t - gap``, frame ``t``) of one scene, ``gap`` in 1..``max_gap``
keyframes (gaps above one teach re-identification after missed frames). The detections of
the earlier frame play the tracks: ``nsample_q`` of them are drawn as queries, moved to the
later frame with their own velocity (constant velocity), and paired with every detection of
the later frame within the class gate. A pair is positive when both detections were assigned
the same ground-truth instance token (:func:`nutrack.data.assign.assign_frame`, the devkit's
rule: same class, centre distance < 2 m, Hungarian).

The point inputs of each detection (its own points, gathered with
``nutrack.ops.points_in_boxes_all``) are prepared once per frame when the dataset is built;
the PointNet features are computed from them on the fly at every step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from nutrack.model.features import (DEFAULT_GATES, ObjectInputs, candidate_pairs, make_objects, pair_geometry,
                                    predict_boxes)

__all__ = ["FrameRecord", "build_frames", "build_scene_frames", "frame_pairs", "collate", "batch_to_device", "MIN_NSAMPLE_Q"]

#: a frame pair needs at least two queries: one cannot learn to tell tracks apart from one.
MIN_NSAMPLE_Q = 2


@dataclass
class FrameRecord:
    """One keyframe: its detections as :class:`ObjectInputs`, their ground-truth instance ids
    (``-1``: matched to no ground truth) and the timestamp in seconds."""

    scene: str
    index: int
    sample_token: str
    timestamp: float
    objects: ObjectInputs
    gt_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.gt_ids)


def build_frames(data, split: str, detections, nsweeps: int = 1, max_points: int = 32,
                 progress: bool = False, instance_ids: Optional[Dict[str, int]] = None
                 ) -> List[List[FrameRecord]]:
    """Label and prepare every frame of ``split``: a list of scenes, each a list of
    :class:`FrameRecord` in time order (:func:`build_scene_frames` for each scene).

    Args:
        data: :class:`nutrack.data.NuScenesData`; split: split name; detections:
            ``{sample_token: Detections}`` (e.g. :func:`nutrack.data.load_detections`).
        nsweeps: lidar sweeps aggregated per keyframe for the point inputs.
        instance_ids: ``{instance_token: id}`` shared by the scenes (and extended).
    """
    ids = instance_ids if instance_ids is not None else {}
    return [build_scene_frames(data, scene, nsweeps, max_points, ids)
            for scene in data.scenes(split, detections, progress=progress)]


def build_scene_frames(data, scene, nsweeps: int = 1, max_points: int = 32,
                       instance_ids: Optional[Dict[str, int]] = None) -> List[FrameRecord]:
    """The :class:`FrameRecord` of each frame of ``scene`` (a :class:`nutrack.data.Scene` with
    detections): its detections labelled with their ground-truth instance
    (:func:`nutrack.data.assign.assign_frame`) and their point inputs gathered.

    Instance ids number the tokens of ``instance_ids`` (extended in place; a fresh dict: ids
    from 0 within the scene). Only equality within a scene matters to the labels: an instance
    never leaves its scene.
    """
    from nutrack.data.assign import assign_frame

    ids = instance_ids if instance_ids is not None else {}
    recs = []
    for fr in scene.frames:
        det = fr.detections
        a = assign_frame(det, data.ground_truth(fr.sample_token))
        gt_ids = np.array([ids.setdefault(t, len(ids)) if t else -1 for t in a.instance_tokens.tolist()],
                          dtype=np.int64).reshape(-1)
        pts = data.lidar_points(fr, nsweeps=nsweeps) if len(det) else None
        obj = make_objects(det.boxes, det.velocities, det.scores, det.classes, fr.ego_to_global, pts,
                           max_points=max_points)
        recs.append(FrameRecord(scene.name, fr.index, fr.sample_token, fr.timestamp * 1e-6, obj, gt_ids))
    return recs


def frame_pairs(scenes: Sequence[Sequence[FrameRecord]], max_gap: int = 2) -> np.ndarray:
    """``(S, 3)`` int64 ``(scene, earlier frame, later frame)`` of every frame pair with a gap
    of 1..``max_gap`` keyframes and detections in both frames."""
    if max_gap < 1:
        raise ValueError(f"max_gap must be >= 1, got {max_gap}")
    out = []
    for s, frames in enumerate(scenes):
        for t in range(len(frames)):
            for g in range(1, max_gap + 1):
                if t - g >= 0 and len(frames[t - g]) and len(frames[t]):
                    out.append((s, t - g, t))
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


def _choose_queries(gt_ids: np.ndarray, nsample_q: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``nsample_q`` query indices: three quarters (at least) from detections with a
    ground-truth instance, the rest from false positives (which must learn "no match")."""
    n = len(gt_ids)
    if n <= nsample_q:
        return np.arange(n)
    matched = np.flatnonzero(gt_ids >= 0)
    unmatched = np.flatnonzero(gt_ids < 0)
    n_fp = min(len(unmatched), nsample_q // 4)
    n_tp = min(len(matched), nsample_q - n_fp)
    n_fp = min(len(unmatched), nsample_q - n_tp)
    q = np.concatenate([rng.choice(matched, n_tp, replace=False) if n_tp else matched[:0],
                        rng.choice(unmatched, n_fp, replace=False) if n_fp else unmatched[:0]])
    return np.sort(q)


def collate(scenes: Sequence[Sequence[FrameRecord]], pairs: np.ndarray, nsample_q: int,
            rng: np.random.Generator, gates=DEFAULT_GATES) -> Dict[str, object]:
    """A batch of frame pairs as numpy arrays.

    Keys: ``objects`` (:class:`ObjectInputs` of the queries and the paired detections),
    ``pair_t``/``pair_d`` (P,) object indices, ``pair_geo`` (P, PAIR_DIM), ``labels`` (P,)
    float32, ``pair_q`` (P,) query of each pair, ``pair_col`` (P,) its position among its
    query's candidates, ``query_obj`` (Q,) object index of each query, ``query_target`` (Q,)
    the column (1 + ``pair_col``) of the query's positive or 0 (the no-match slot),
    ``num_pairs`` (frame pairs in the batch).
    """
    if nsample_q < MIN_NSAMPLE_Q:
        raise ValueError(f"nsample_q must be >= {MIN_NSAMPLE_Q}, got {nsample_q}")
    objs: List[ObjectInputs] = []
    pt, pd, geo, lab, pq, pcol, qobj, qtgt = [], [], [], [], [], [], [], []
    n_obj = 0
    n_q = 0
    for s, tp, tc in np.asarray(pairs, np.int64).reshape(-1, 3):
        prev, cur = scenes[s][tp], scenes[s][tc]
        q = _choose_queries(prev.gt_ids, nsample_q, rng)
        dt = cur.timestamp - prev.timestamp
        po = prev.objects.select(q)
        pred = predict_boxes(po.boxes, po.velocities, dt)
        ti, di = candidate_pairs(pred, po.classes, cur.objects.boxes, cur.objects.classes, gates)
        ud, di_local = np.unique(di, return_inverse=True)
        co = cur.objects.select(ud)
        g = pair_geometry(pred, po.velocities, np.full(len(q), dt), cur.objects.boxes, cur.objects.velocities,
                          ti, di, time_since_update=np.full(len(q), float(tc - tp)))
        y = (prev.gt_ids[q][ti] == cur.gt_ids[di]) & (prev.gt_ids[q][ti] >= 0)
        # position of each pair among its query's candidates (pairs come sorted by query)
        col = np.zeros(len(ti), np.int64)
        if len(ti):
            first = np.searchsorted(ti, ti, side="left")
            col = np.arange(len(ti)) - first
        tgt = np.zeros(len(q), np.int64)
        tgt[ti[y]] = 1 + col[y]
        objs += [po, co]
        pt.append(n_obj + ti)
        pd.append(n_obj + len(q) + di_local.reshape(-1))
        geo.append(g)
        lab.append(y.astype(np.float32))
        pq.append(n_q + ti)
        pcol.append(col)
        qobj.append(n_obj + np.arange(len(q)))
        qtgt.append(tgt)
        n_obj += len(q) + len(ud)
        n_q += len(q)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return {
        "objects": ObjectInputs.concat(objs) if objs else None,
        "pair_t": cat(pt, np.int64), "pair_d": cat(pd, np.int64),
        "pair_geo": np.concatenate(geo).astype(np.float32) if geo else np.zeros((0, 12), np.float32),
        "labels": cat(lab, np.float32), "pair_q": cat(pq, np.int64), "pair_col": cat(pcol, np.int64),
        "query_obj": cat(qobj, np.int64), "query_target": cat(qtgt, np.int64),
        "num_pairs": int(len(np.asarray(pairs).reshape(-1, 3))),
    }


def batch_to_device(batch: Dict[str, object], device) -> Dict[str, object]:
    """Tensors of a :func:`collate` batch on ``device`` (contiguous)."""
    from nutrack.model.network import object_tensors

    out: Dict[str, object] = {"num_pairs": batch["num_pairs"]}
    out["objects"] = object_tensors(batch["objects"], device) if batch["objects"] is not None else None
    for k in ("pair_t", "pair_d", "pair_geo", "labels", "pair_q", "pair_col", "query_obj", "query_target"):
        out[k] = torch.from_numpy(np.ascontiguousarray(batch[k])).to(device)
    return out
