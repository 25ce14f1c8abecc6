"""The CenterPoint-like detection simulator: detections of any dataset (synthetic or real)
from its ground truth, with misses, noise, flips, confusions, duplicates and false positives.

Deterministic for a seed: each scene has its own generator, and the draws follow the order
of the code (true positives, duplicates, random false positives, persistent sources), so
reordering them changes every simulated file.
"""

from __future__ import annotations

import math
import zlib
from typing import Dict, List, Tuple

import numpy as np

from ..classes import CLASS_TO_ID, NUM_CLASSES
from ..detections import DEFAULT_META, DetectionSet, Detections
from .config import DetectorNoise
from .constants import SIZE_WLH

__all__ = ["simulate_detections"]

_MAX_BOXES_PER_SAMPLE = 500  # the submission format's limit

# one part of a frame's detections: boxes (n, 7), velocities (n, 2), scores (n,), classes (n,)
_Part = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def simulate_detections(data, split: str, noise: DetectorNoise = DetectorNoise(), seed: int = 0,
                        progress: bool = False) -> DetectionSet:
    """CenterPoint-like detections for every sample of ``split`` from its ground truth.

    ``data`` is a :class:`nutrack.data.NuScenesData` (synthetic or real). Each annotated
    tracking-class object is detected with a probability that grows with its lidar points
    and falls with range; detected boxes get range-dependent position, size, yaw and
    velocity noise, occasional heading flips and class confusions; scores separate true
    from false detections imperfectly; duplicates and false positives (random, and from
    persistent per-scene clutter sources) have low scores. Deterministic for a seed.
    Returns a :class:`DetectionSet`; write it with :func:`nutrack.data.write_detections`.
    """
    sim = _Simulator(noise)
    frames: Dict[str, Detections] = {}
    for scene in data.scenes(split, progress=progress):
        rng = np.random.default_rng([seed, zlib.crc32(scene.name.encode()), 7])
        sources = sim.false_positive_sources(rng, scene)
        for frame in scene.frames:
            frames[frame.sample_token] = sim.frame(rng, data.ground_truth(frame.sample_token),
                                                   frame.ego_translation, sources)
    return DetectionSet(frames, dict(DEFAULT_META), "")


class _Simulator:
    """:class:`DetectorNoise` as per-class arrays, and the steps of one frame's detections."""

    def __init__(self, noise: DetectorNoise):
        nz = self.nz = noise
        confusion = np.zeros((NUM_CLASSES, NUM_CLASSES))
        for a, b, p in nz.confusion:
            confusion[CLASS_TO_ID[a], CLASS_TO_ID[b]] = p
        for c in range(NUM_CLASSES):
            confusion[c, c] = 1.0 - confusion[c].sum()
        self.confusion = confusion
        self.mean_size = np.array([[SIZE_WLH[cat][1], SIZE_WLH[cat][0], SIZE_WLH[cat][2]] for cat in (
            "vehicle.car", "vehicle.truck", "vehicle.bus.rigid", "vehicle.trailer", "human.pedestrian.adult",
            "vehicle.motorcycle", "vehicle.bicycle")])  # dx=l, dy=w, dz=h
        self.p_max = np.asarray(nz.p_max)
        self.pts_scale = np.asarray(nz.pts_scale)
        self.yaw_sig = np.asarray(nz.yaw_sigma)
        self.flip_p = np.asarray(nz.heading_flip)
        self.fp_prior = np.asarray(nz.fp_class_prior) / np.sum(nz.fp_class_prior)

    def false_positive_sources(self, rng, scene) -> dict:
        """Persistent false-positive sources of a scene: static clutter near the ego path that
        is detected again and again."""
        ego_xy = np.array([f.ego_translation[:2] for f in scene.frames])
        n_src = self.nz.fp_sources_per_scene
        src_idx = rng.integers(0, len(ego_xy), size=n_src)
        xy = ego_xy[src_idx] + rng.normal(0, 15.0, size=(n_src, 2))
        cls = rng.choice(NUM_CLASSES, size=n_src, p=self.fp_prior)
        yaw = rng.uniform(-math.pi, math.pi, size=n_src)
        size = self.mean_size[cls] * np.exp(rng.normal(0, 0.1, size=(n_src, 3)))
        return dict(xy=xy, cls=cls, yaw=yaw, size=size)

    def frame(self, rng, gt, ego, sources: dict) -> Detections:
        """One sample's detections, sorted by score, at most 500."""
        tp = self._true_positives(rng, gt, ego)
        parts: List[_Part] = [tp]
        dup = self._duplicates(rng, tp)
        if dup is not None:
            parts.append(dup)
        for part in (self._random_false_positives(rng, ego), self._source_detections(rng, ego, sources)):
            if part is not None:
                parts.append(part)
        B = np.concatenate([p[0] for p in parts])
        V = np.concatenate([p[1] for p in parts])
        Sc = np.clip(np.concatenate([p[2] for p in parts]), 1e-4, 1.0)
        C = np.concatenate([p[3] for p in parts]).astype(np.int64)
        B[:, 6] = (B[:, 6] + math.pi) % (2 * math.pi) - math.pi
        order = np.argsort(-Sc, kind="stable")[:_MAX_BOXES_PER_SAMPLE]
        return Detections(B[order], V[order], Sc[order], C[order])

    def _true_positives(self, rng, gt, ego) -> _Part:
        """The detected ground-truth objects with their noisy boxes, velocities, (possibly
        confused) classes and scores."""
        nz = self.nz
        n = len(gt)
        r = np.hypot(gt.boxes[:, 0] - ego[0], gt.boxes[:, 1] - ego[1]) if n else np.zeros(0)
        pts = gt.num_pts.astype(np.float64)
        c = gt.classes
        p_det = self.p_max[c] * (1.0 - np.exp(-(pts + nz.pts_bias) / self.pts_scale[c]))
        p_det *= np.exp(-np.maximum(r - nz.range_free, 0.0) / nz.range_decay)
        idx = np.flatnonzero(rng.random(n) < p_det)
        m = len(idx)
        boxes = gt.boxes[idx].astype(np.float64)
        rr = r[idx]
        sig = nz.pos_sigma + nz.pos_sigma_per_m * rr
        sig = sig * np.where(rng.random(m) < nz.outlier_prob, nz.outlier_scale, 1.0)
        boxes[:, 0:2] += rng.normal(0, 1, size=(m, 2)) * sig[:, None]
        boxes[:, 2] += rng.normal(0, nz.z_sigma, size=m)
        boxes[:, 3:6] *= np.exp(rng.normal(0, nz.size_log_sigma, size=(m, 3)))
        cls = c[idx]
        boxes[:, 6] += rng.normal(0, 1, size=m) * (self.yaw_sig[cls] + nz.yaw_sigma_per_m * rr)
        boxes[:, 6] += np.where(rng.random(m) < self.flip_p[cls], math.pi, 0.0)
        vel = np.nan_to_num(gt.velocities[idx].astype(np.float64))
        vs = nz.vel_sigma + nz.vel_sigma_per_m * rr
        vs = np.where(rng.random(m) < nz.vel_outlier_prob, nz.vel_outlier_sigma, vs)
        vel += rng.normal(0, 1, size=(m, 2)) * vs[:, None]
        new_cls = np.array([rng.choice(NUM_CLASSES, p=self.confusion[k]) for k in cls], dtype=np.int64)
        logit = nz.score_bias + nz.score_pts * np.log1p(pts[idx]) - nz.score_range * rr / 50.0
        logit += rng.normal(0, nz.score_noise, size=m)
        scores = 1.0 / (1.0 + np.exp(-logit))
        scores = np.where(new_cls != cls, scores * nz.confused_score_factor, scores)
        return boxes, vel, scores, new_cls

    def _duplicates(self, rng, tp: _Part):
        """A second, lower-scored box near some true positives (None when there is none)."""
        nz = self.nz
        boxes, vel, scores, cls = tp
        dup = np.flatnonzero(rng.random(len(boxes)) < nz.duplicate_prob)
        if not len(dup):
            return None
        db = boxes[dup].copy()
        db[:, 0:2] += rng.normal(0, nz.duplicate_sigma, size=(len(dup), 2))
        ds = scores[dup] * rng.uniform(*nz.duplicate_score, size=len(dup))
        return db, vel[dup].copy(), ds, cls[dup].copy()

    def _random_false_positives(self, rng, ego):
        """A Poisson number of boxes anywhere within ``fp_range``, mostly low-scored."""
        nz = self.nz
        n_fp = int(rng.poisson(nz.fp_rate))
        if not n_fp:
            return None
        fc = rng.choice(NUM_CLASSES, size=n_fp, p=self.fp_prior)
        rad = nz.fp_range * np.sqrt(rng.random(n_fp))
        ang = rng.uniform(-math.pi, math.pi, n_fp)
        fb = np.zeros((n_fp, 7))
        fb[:, 0] = ego[0] + rad * np.cos(ang)
        fb[:, 1] = ego[1] + rad * np.sin(ang)
        fb[:, 3:6] = self.mean_size[fc] * np.exp(rng.normal(0, 0.1, size=(n_fp, 3)))
        fb[:, 2] = fb[:, 5] / 2 + rng.normal(0, 0.2, n_fp)
        fb[:, 6] = rng.uniform(-math.pi, math.pi, n_fp)
        hard = rng.random(n_fp) < nz.fp_hard_prob
        fs = np.where(hard, rng.beta(2.0, 3.0, n_fp), rng.beta(*nz.fp_score_beta, n_fp))
        fv = rng.normal(0, 0.8, size=(n_fp, 2))
        return fb, fv, fs, fc

    def _source_detections(self, rng, ego, src: dict):
        """The persistent sources within range that fire in this frame."""
        nz = self.nz
        d_src = np.hypot(src["xy"][:, 0] - ego[0], src["xy"][:, 1] - ego[1])
        on = np.flatnonzero((d_src < nz.fp_range) & (rng.random(len(d_src)) < nz.fp_source_prob))
        if not len(on):
            return None
        sb = np.zeros((len(on), 7))
        sb[:, 0:2] = src["xy"][on] + rng.normal(0, 0.15, size=(len(on), 2))
        sb[:, 3:6] = src["size"][on]
        sb[:, 2] = sb[:, 5] / 2
        sb[:, 6] = src["yaw"][on] + rng.normal(0, 0.1, len(on))
        ss = rng.beta(2.0, 5.0, len(on))
        sv = rng.normal(0, 0.3, size=(len(on), 2))
        return sb, sv, ss, src["cls"][on]
