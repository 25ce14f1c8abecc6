"""The CenterPoint-like detection simulator: detections of any dataset (synthetic or real)
from its ground truth, in the ten nuScenes detection classes, with misses (by points, range
and class, and runs of misses inside tracks), noise, flips, confusions, attributes,
duplicates and false positives (near real objects and in clutter).

Deterministic for a seed: each scene has its own generator, and the draws follow the order
of the code (true positives, duplicates, false positives near objects, random false
positives, persistent sources), so reordering them changes every simulated file.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, fields
from typing import Dict, List, Tuple

import numpy as np

from ..boxes import boxes_from_nuscenes
from ..classes import CLASS_TO_ID, DETECTION_CLASSES
from ..detections import DEFAULT_META, DetectionSet, LabelledDetections
from .config import DetectorNoise, SynthError
from .constants import SIZE_WLH

__all__ = ["simulate_detections", "detection_truth", "DetectionTruth", "ATTRIBUTES_OF"]

_MAX_BOXES_PER_SAMPLE = 500  # the submission format's limit
NUM_DET = len(DETECTION_CLASSES)
_DET_ID = {name: i for i, name in enumerate(DETECTION_CLASSES)}
#: detection class index -> tracking class index, -1 for the detection-only classes
_TRACKING_ID = np.array([CLASS_TO_ID.get(n, -1) for n in DETECTION_CLASSES], dtype=np.int64)

#: The attributes a detection of each class may carry (the devkit's; none for cones and barriers).
ATTRIBUTES_OF: Dict[str, Tuple[str, ...]] = {
    **{c: ("vehicle.moving", "vehicle.stopped", "vehicle.parked")
       for c in ("car", "truck", "bus", "trailer", "construction_vehicle")},
    "pedestrian": ("pedestrian.moving", "pedestrian.sitting_lying_down", "pedestrian.standing"),
    "motorcycle": ("cycle.with_rider", "cycle.without_rider"),
    "bicycle": ("cycle.with_rider", "cycle.without_rider"),
    "traffic_cone": (),
    "barrier": (),
}
# the category of each class whose mean size false positives take (dx=l, dy=w, dz=h)
_SIZE_CATEGORY = ("vehicle.car", "vehicle.truck", "vehicle.bus.rigid", "vehicle.trailer", "vehicle.construction",
                  "human.pedestrian.adult", "vehicle.motorcycle", "vehicle.bicycle", "movable_object.trafficcone",
                  "movable_object.barrier")

# one part of a frame's detections: boxes (n, 7), velocities (n, 2), scores (n,), detection
# classes (n,), attributes (n,)
_Part = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class DetectionTruth:
    """A sample's annotations of the ten detection classes, as the simulator reads them:
    boxes (M, 7), velocities (M, 2) (0 where the devkit cannot estimate one), classes (M,)
    indexing DETECTION_CLASSES, num_pts (M,), attributes (M,) ("" for none), instance_tokens (M,)."""

    boxes: np.ndarray
    velocities: np.ndarray
    classes: np.ndarray
    num_pts: np.ndarray
    attributes: np.ndarray
    instance_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def detection_truth(data, sample_token: str) -> DetectionTruth:
    """The annotations of ``sample_token`` in the ten detection classes (the devkit's
    ``category_to_detection_name``), with their attributes."""
    from nuscenes.eval.detection.utils import category_to_detection_name

    nusc = data.nusc
    recs, classes = [], []
    for tok in nusc.get("sample", sample_token)["anns"]:
        ann = nusc.get("sample_annotation", tok)
        name = category_to_detection_name(ann["category_name"])
        if name is not None:
            recs.append(ann)
            classes.append(_DET_ID[name])
    m = len(recs)
    if not m:
        return DetectionTruth(np.zeros((0, 7)), np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64),
                              np.zeros(0, object), np.zeros(0, object))
    boxes = boxes_from_nuscenes([r["translation"] for r in recs], [r["size"] for r in recs],
                                [r["rotation"] for r in recs]).astype(np.float64)
    vel = np.nan_to_num(np.array([nusc.box_velocity(r["token"])[:2] for r in recs], dtype=np.float64))
    attrs = np.array([nusc.get("attribute", r["attribute_tokens"][0])["name"] if r["attribute_tokens"] else ""
                      for r in recs], dtype=object)
    return DetectionTruth(boxes, vel.reshape(m, 2), np.array(classes, dtype=np.int64),
                          np.array([r["num_lidar_pts"] + r["num_radar_pts"] for r in recs], dtype=np.int64),
                          attrs, np.array([r["instance_token"] for r in recs], dtype=object))


def simulate_detections(data, split: str, noise: DetectorNoise = DetectorNoise(), seed: int = 0,
                        progress: bool = False) -> DetectionSet:
    """CenterPoint-like detections for every sample of ``split`` from its ground truth.

    ``data`` is a :class:`nutrack.data.NuScenesData` (synthetic or real). Each annotated
    object of the ten detection classes is detected with a probability that grows with its
    lidar points and falls with range (and drops out for runs of frames); detected boxes get
    per-class, range-dependent position, size, yaw and heavy-tailed velocity noise, heading
    flips, class confusions and attributes (right with a per-class probability); scores
    separate true from false detections imperfectly; duplicates, false positives of another
    class on real objects, and false positives in clutter (random, and from persistent
    per-scene sources) are mostly low-scored. Deterministic for a seed.

    Returns a :class:`DetectionSet` of :class:`~nutrack.data.LabelledDetections` (the
    detection-only classes with tracking class -1); write it with
    :func:`nutrack.data.write_detections`.
    """
    sim = _Simulator(noise)
    frames: Dict[str, LabelledDetections] = {}
    for scene in data.scenes(split, progress=progress):
        rng = np.random.default_rng([seed, zlib.crc32(scene.name.encode()), 7])
        sources = sim.false_positive_sources(rng, scene)
        memory = _SceneMemory()
        for frame in scene.frames:
            frames[frame.sample_token] = sim.frame(rng, detection_truth(data, frame.sample_token),
                                                   frame.ego_translation, sources, memory)
    return DetectionSet(frames, dict(DEFAULT_META), "")


@dataclass
class _SceneMemory:
    """What the simulated detector carries from frame to frame of a scene, by instance token:
    the frames an object stays missed, and its last (unit-variance) error draws."""

    missing: Dict[str, int] = field(default_factory=dict)
    errors: Dict[str, np.ndarray] = field(default_factory=dict)

    def correlated(self, instances, fresh: np.ndarray, rho: float) -> np.ndarray:
        """Each row of ``fresh`` (unit-variance draws, one row per instance) as the next step
        of that instance's AR(1) error ``rho * last + sqrt(1 - rho^2) * fresh``: the same
        spread in every frame, but errors that persist (a detector errs alike on the same
        object in consecutive frames), which filtering cannot average away."""
        out = fresh.copy()
        keep = math.sqrt(max(1.0 - rho * rho, 0.0))
        for i, inst in enumerate(instances):
            last = self.errors.get(inst)
            if last is not None:
                out[i] = rho * last + keep * fresh[i]
            self.errors[inst] = out[i]
        return out


def _attribute_from_motion(cls: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """The attribute a detector without better evidence gives: moving or not, from the speed
    (not moving: the last of the class's attributes: parked, standing, without rider)."""
    out = np.empty(len(cls), dtype=object)
    for i, (c, v) in enumerate(zip(cls.tolist(), speed.tolist())):
        options = ATTRIBUTES_OF[DETECTION_CLASSES[c]]
        out[i] = (options[0] if v > 0.5 else options[-1]) if options else ""
    return out


class _Simulator:
    """:class:`DetectorNoise` as per-class arrays, and the steps of one frame's detections."""

    def __init__(self, noise: DetectorNoise):
        self.nz = nz = noise
        for f in fields(nz):  # every per-class tuple has one value per detection class
            value = getattr(nz, f.name)
            if f.type.startswith("Tuple[float, ...]") and len(value) != NUM_DET:
                raise SynthError(f"DetectorNoise.{f.name} needs {NUM_DET} values ({', '.join(DETECTION_CLASSES)}), "
                                 f"got {len(value)}", field=f.name)
        confusion = np.zeros((NUM_DET, NUM_DET))
        for a, b, p in nz.confusion:
            if a not in _DET_ID or b not in _DET_ID:
                raise SynthError(f"DetectorNoise.confusion: unknown class in ({a!r}, {b!r})", field="confusion")
            confusion[_DET_ID[a], _DET_ID[b]] = p
        for c in range(NUM_DET):
            confusion[c, c] = 1.0 - confusion[c].sum()
        self.confusion = confusion
        self.mean_size = np.array([[SIZE_WLH[cat][1], SIZE_WLH[cat][0], SIZE_WLH[cat][2]] for cat in _SIZE_CATEGORY])
        arr = lambda name: np.asarray(getattr(nz, name), dtype=np.float64)  # noqa: E731
        self.p_max, self.pts_scale, self.pos_sig = arr("p_max"), arr("pts_scale"), arr("pos_sigma")
        self.size_sig, self.yaw_sig, self.flip_p = arr("size_log_sigma"), arr("yaw_sigma"), arr("heading_flip")
        self.vel_sig, self.attr_err, self.score_bias = arr("vel_sigma"), arr("attr_error"), arr("score_bias")
        self.miss_run_p = arr("miss_run_prob")
        self.fp_prior = arr("fp_class_prior") / np.sum(nz.fp_class_prior)

    def false_positive_sources(self, rng, scene) -> dict:
        """Persistent false-positive sources of a scene: static clutter near the ego path that
        is detected again and again."""
        ego_xy = np.array([f.ego_translation[:2] for f in scene.frames])
        n_src = self.nz.fp_sources_per_scene
        src_idx = rng.integers(0, len(ego_xy), size=n_src)
        xy = ego_xy[src_idx] + rng.normal(0, 15.0, size=(n_src, 2))
        cls = rng.choice(NUM_DET, size=n_src, p=self.fp_prior)
        yaw = rng.uniform(-math.pi, math.pi, size=n_src)
        size = self.mean_size[cls] * np.exp(rng.normal(0, 0.1, size=(n_src, 3)))
        return dict(xy=xy, cls=cls, yaw=yaw, size=size)

    def frame(self, rng, gt: DetectionTruth, ego, sources: dict, memory: _SceneMemory) -> LabelledDetections:
        """One sample's detections, sorted by score, at most 500. ``memory`` carries the runs
        of misses and the correlated errors from frame to frame."""
        tp = self._true_positives(rng, gt, ego, memory)
        parts: List[_Part] = [tp]
        for part in (self._duplicates(rng, tp), self._near_false_positives(rng, gt),
                     self._random_false_positives(rng, ego), self._source_detections(rng, ego, sources)):
            if part is not None:
                parts.append(part)
        B = np.concatenate([p[0] for p in parts])
        V = np.concatenate([p[1] for p in parts])
        Sc = np.clip(np.concatenate([p[2] for p in parts]), 1e-4, 1.0)
        C = np.concatenate([p[3] for p in parts]).astype(np.int64)
        A = np.concatenate([p[4] for p in parts])
        B[:, 6] = (B[:, 6] + math.pi) % (2 * math.pi) - math.pi
        order = np.argsort(-Sc, kind="stable")[:_MAX_BOXES_PER_SAMPLE]
        C = C[order]
        return LabelledDetections(B[order], V[order], Sc[order], _TRACKING_ID[C],
                                  np.array([DETECTION_CLASSES[c] for c in C.tolist()], dtype=object), A[order])

    def _detected(self, rng, gt: DetectionTruth, r: np.ndarray, missing: Dict[str, int]) -> np.ndarray:
        """Which objects are detected: by points, range and class, except those inside a run of misses."""
        nz, c = self.nz, gt.classes
        p_det = self.p_max[c] * (1.0 - np.exp(-(gt.num_pts + nz.pts_bias) / self.pts_scale[c]))
        p_det *= np.exp(-np.maximum(r - nz.range_free, 0.0) / nz.range_decay)
        hit = rng.random(len(gt)) < p_det
        run_start = rng.random(len(gt)) < self.miss_run_p[c]
        run_len = rng.geometric(1.0 / max(nz.miss_run_frames, 1.0), size=len(gt))
        for i, inst in enumerate(gt.instance_tokens.tolist()):
            left = missing.get(inst, 0)
            if left > 0:
                hit[i] = False
                missing[inst] = left - 1
            elif run_start[i] and hit[i]:
                hit[i] = False
                missing[inst] = int(run_len[i]) - 1
        return np.flatnonzero(hit)

    def _true_positives(self, rng, gt: DetectionTruth, ego, memory: _SceneMemory) -> _Part:
        """The detected objects with their noisy boxes, velocities, (possibly confused)
        classes, attributes and scores."""
        nz = self.nz
        r = np.hypot(gt.boxes[:, 0] - ego[0], gt.boxes[:, 1] - ego[1])
        idx = self._detected(rng, gt, r, memory.missing)
        m = len(idx)
        # x, y, yaw, vx, vy errors (unit spread), correlated in time per object
        unit = np.concatenate([rng.normal(0, 1, size=(m, 3)), rng.standard_t(nz.vel_df, size=(m, 2))], axis=1)
        unit = memory.correlated(gt.instance_tokens[idx].tolist(), unit, nz.error_corr)
        boxes = gt.boxes[idx].copy()
        rr, cls, pts = r[idx], gt.classes[idx], gt.num_pts[idx].astype(np.float64)
        sig = self.pos_sig[cls] * (1.0 + nz.pos_sigma_per_m * rr)
        sig = sig * np.where(rng.random(m) < nz.outlier_prob, nz.outlier_scale, 1.0)
        boxes[:, 0:2] += unit[:, 0:2] * sig[:, None]
        boxes[:, 2] += rng.normal(0, nz.z_sigma, size=m)
        boxes[:, 3:6] *= np.exp(rng.normal(0, 1, size=(m, 3)) * self.size_sig[cls][:, None])
        boxes[:, 6] += unit[:, 2] * (self.yaw_sig[cls] + nz.yaw_sigma_per_m * rr)
        boxes[:, 6] += np.where(rng.random(m) < self.flip_p[cls], math.pi, 0.0)
        vel = gt.velocities[idx].copy()
        speed = np.hypot(vel[:, 0], vel[:, 1])
        vs = self.vel_sig[cls] + (nz.vel_sigma_speed * speed + nz.vel_sigma_per_m * rr) * (self.vel_sig[cls] > 0)
        vel += unit[:, 3:5] * vs[:, None]
        new_cls = np.array([rng.choice(NUM_DET, p=self.confusion[k]) for k in cls], dtype=np.int64)
        attrs = self._attributes(rng, gt.attributes[idx], cls, new_cls, speed)
        logit = self.score_bias[cls] + nz.score_pts * np.log1p(pts) - nz.score_range * rr / 50.0
        logit += rng.normal(0, nz.score_noise, size=m)
        scores = 1.0 / (1.0 + np.exp(-logit))
        scores = np.where(new_cls != cls, scores * nz.confused_score_factor, scores)
        return boxes, vel, scores, new_cls, attrs

    def _attributes(self, rng, true_attr: np.ndarray, cls: np.ndarray, new_cls: np.ndarray,
                    speed: np.ndarray) -> np.ndarray:
        """The object's own attribute, except with probability ``attr_error`` another of its
        class's; a confused class gets the attribute its motion suggests."""
        out = _attribute_from_motion(new_cls, speed)
        wrong = rng.random(len(cls)) < self.attr_err[cls]
        pick = rng.random(len(cls))
        for i in np.flatnonzero(new_cls == cls):
            options = ATTRIBUTES_OF[DETECTION_CLASSES[cls[i]]]
            if not options:
                continue
            a = true_attr[i] if true_attr[i] in options else out[i]
            if wrong[i]:
                others = [o for o in options if o != a]
                a = others[int(pick[i] * len(others))]
            out[i] = a
        return out

    def _duplicates(self, rng, tp: _Part):
        """A second, lower-scored box near some true positives (None when there is none)."""
        nz = self.nz
        boxes, vel, scores, cls, attrs = tp
        dup = np.flatnonzero(rng.random(len(boxes)) < nz.duplicate_prob)
        if not len(dup):
            return None
        db = boxes[dup].copy()
        db[:, 0:2] += rng.normal(0, nz.duplicate_sigma, size=(len(dup), 2))
        ds = scores[dup] * rng.uniform(*nz.duplicate_score, size=len(dup))
        return db, vel[dup].copy(), ds, cls[dup].copy(), attrs[dup].copy()

    def _near_false_positives(self, rng, gt: DetectionTruth):
        """Boxes of another class on real objects (a pedestrian on a cyclist, a barrier on a
        cone, a car on a truck), low-scored."""
        nz = self.nz
        on = np.flatnonzero(rng.random(len(gt)) < nz.near_fp_prob)
        if not len(on):
            return None
        fc = rng.choice(NUM_DET, size=len(on), p=self.fp_prior)
        fc = np.where(fc == gt.classes[on], (fc + 1) % NUM_DET, fc)
        fb = gt.boxes[on].copy()
        fb[:, 0:2] += rng.normal(0, 0.5, size=(len(on), 2))
        fb[:, 3:6] = self.mean_size[fc] * np.exp(rng.normal(0, 0.1, size=(len(on), 3)))
        fb[:, 2] = fb[:, 5] / 2
        fv = gt.velocities[on] + rng.normal(0, 0.3, size=(len(on), 2))
        fs = rng.uniform(*nz.near_fp_score, size=len(on))
        return fb, fv, fs, fc, _attribute_from_motion(fc, np.hypot(fv[:, 0], fv[:, 1]))

    def _random_false_positives(self, rng, ego):
        """A Poisson number of boxes anywhere within ``fp_range``, mostly low-scored."""
        nz = self.nz
        n_fp = int(rng.poisson(nz.fp_rate))
        if not n_fp:
            return None
        fc = rng.choice(NUM_DET, size=n_fp, p=self.fp_prior)
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
        return fb, fv, fs, fc, _attribute_from_motion(fc, np.hypot(fv[:, 0], fv[:, 1]))

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
        return sb, sv, ss, src["cls"][on], _attribute_from_motion(src["cls"][on], np.hypot(sv[:, 0], sv[:, 1]))
