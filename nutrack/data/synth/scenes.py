"""A dataset's scenes, one after the other: each scene's world is built, swept by the lidar
frame by frame (the ``.pcd.bin`` files), and recorded in the tables (ego poses, sample_data,
samples, annotations with their lidar point counts, instances, the scene and its log)."""

from __future__ import annotations

import os
import time
import zlib
from typing import Dict

import numpy as np

from ..boxes import quaternion_from_yaw, transform_boxes, transform_matrix
from .config import SynthConfig, split_scene_names
from .constants import INTENSITY, LIDAR_ROTATION, LIDAR_TRANSLATION, LIDAR_YAW_IN_EGO
from .lidar import Lidar, Sweep, physical_boxes
from .tables import Tables, attribute_of, namespace, scene_plan, token, visibility_token, write_splits_json
from .world import World, build_world

__all__ = ["generate_into"]

_BASE_TIME_US = 1_533_000_000_000_000  # 2018-07-31, within nuScenes' recording period
_SCENE_GAP_US = 3_600_000_000          # scenes start an hour apart


def generate_into(root: str, cfg: SynthConfig, progress: bool) -> dict:
    """Write the dataset (clouds, maps, tables) into the dataroot ``root``; returns statistics.
    ``cfg`` must be valid (:meth:`SynthConfig.validate`)."""
    t0 = time.time()
    tables = Tables(namespace(cfg))
    for sub in ("samples/LIDAR_TOP", "sweeps/LIDAR_TOP", "maps"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    plan = scene_plan(cfg)
    stats = {"scenes": len(plan), "clouds": 0, "points": 0, "annotations": 0, "zero_point": 0, "instances": 0}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan) * cfg.keyframes * (cfg.sweeps_per_keyframe + 1), desc="synthetic lidar sweeps",
                   unit="sweep")
    try:
        base_us = _BASE_TIME_US + 1_000_000 * 3600 * cfg.seed
        for i, (name, _split) in enumerate(plan):
            _SceneWriter(cfg, i, name, root, tables, base_us + i * _SCENE_GAP_US, stats).write(bar)
    finally:
        if bar is not None:
            bar.close()
    tables.add_maps(root)
    tables.write(os.path.join(root, cfg.version))
    if split_scene_names(cfg.version) is None:
        write_splits_json(os.path.join(root, cfg.version), plan, cfg.splits())
    stats["seconds"] = round(time.time() - t0, 2)
    return stats


def _frame_times(rng, cfg: SynthConfig):
    """Lidar frame times in seconds (10 Hz for 4 sweeps per keyframe, slightly jittered,
    strictly increasing) and which frames are keyframes (every (S + 1)-th, from the S-th)."""
    S = cfg.sweeps_per_keyframe
    n_frames = cfg.keyframes * (S + 1)
    t = np.arange(n_frames) * (0.5 / (S + 1))
    t = t + np.concatenate([[0.0], rng.normal(0.0, 0.002, size=n_frames - 1)])  # jitter, keeps order
    t = np.maximum.accumulate(t + 1e-4 * np.arange(n_frames))
    is_key = np.zeros(n_frames, dtype=bool)
    is_key[S::S + 1] = True
    return t, is_key


def _object_boxes(world: World, n_frames: int) -> np.ndarray:
    """(objects, frames, 7) annotated boxes: x, y, z (centre, on the ground), l, w, h, yaw."""
    boxes = np.zeros((len(world.objects), n_frames, 7))
    for i, o in enumerate(world.objects):
        w, l, h = o.size
        boxes[i, :, 0] = o.x
        boxes[i, :, 1] = o.y
        boxes[i, :, 2] = h / 2
        boxes[i, :, 3] = l
        boxes[i, :, 4] = w
        boxes[i, :, 5] = h
        boxes[i, :, 6] = o.yaw
    return boxes


class _SceneWriter:
    """One scene: its world, then frame by frame a sweep, its sample_data, and at keyframes
    the sample with its annotations; the instances and the scene record last."""

    def __init__(self, cfg: SynthConfig, scene_idx: int, scene_name: str, root: str, tables: Tables,
                 start_us: int, stats: dict):
        self.cfg, self.name, self.root, self.tables, self.stats = cfg, scene_name, root, tables, stats
        self.ns = tables.ns
        # every draw of the scene comes from this generator, in the order of the code below
        self.rng = np.random.default_rng([cfg.seed, zlib.crc32(scene_name.encode())])
        t, self.is_key = _frame_times(self.rng, cfg)
        self.world = build_world(self.rng, cfg, t)
        self.n_frames = len(t)
        self.timestamps = start_us + np.round(t * 1e6).astype(np.int64)
        self.log_token, self.logfile = tables.add_log(scene_idx, scene_name)
        self.scene_token = token(self.ns, "scene", scene_name)
        self.lidar = Lidar(cfg)
        self.lidar_to_ego = transform_matrix(LIDAR_TRANSLATION, LIDAR_ROTATION)
        self.obj_boxes = _object_boxes(self.world, self.n_frames)
        self.intensity_obj = np.array([INTENSITY[o.category.split(".")[0]] for o in self.world.objects] or [0.0])
        self.key_idx = np.flatnonzero(self.is_key)
        self._plan_annotations()
        self.sample_tokens = [token(self.ns, "sample", scene_name, k) for k in range(cfg.keyframes)]
        self.sd_tokens = [token(self.ns, "sd", scene_name, f) for f in range(self.n_frames)]

    def _plan_annotations(self) -> None:
        """Each object is annotated on the contiguous span of keyframes from the first to the
        last one where it is within the annotation range."""
        ego, key_idx, boxes = self.world.ego, self.key_idx, self.obj_boxes
        n_obj = len(self.world.objects)
        self.inst_tokens = [token(self.ns, "instance", self.name, i) for i in range(n_obj)]
        self.ann_span: Dict[int, tuple] = {}
        for i in range(n_obj):
            d = np.hypot(boxes[i, key_idx, 0] - ego[key_idx, 0], boxes[i, key_idx, 1] - ego[key_idx, 1])
            inside = np.flatnonzero(d <= self.cfg.annotation_range)
            if len(inside):
                self.ann_span[i] = (int(inside[0]), int(inside[-1]))
        self.ann_tokens = {(i, k): token(self.ns, "ann", self.name, i, k)
                           for i, (a, b) in self.ann_span.items() for k in range(a, b + 1)}

    def write(self, progress=None) -> None:
        for f in range(self.n_frames):
            self._write_frame(f)
            if progress is not None:
                progress.update(1)
        self._write_instances_and_scene()

    def _write_frame(self, f: int) -> None:
        """Frame ``f``: its ego pose, sweep (the cloud file), sample_data; at a keyframe the
        sample and its annotations."""
        ts = int(self.timestamps[f])
        ex, ey, eyaw = self.world.ego[f]
        ego_rot = quaternion_from_yaw(eyaw).tolist()
        ego_tr = [float(ex), float(ey), 0.0]
        ep_token = self.tables.add_ego_pose(self.name, f, ts, ego_tr, ego_rot)
        lidar_to_global = transform_matrix(ego_tr, ego_rot) @ self.lidar_to_ego
        origin = lidar_to_global[:3, 3].copy()
        n_obj = len(self.world.objects)
        boxes_now = self.obj_boxes[:, f, :] if n_obj else np.zeros((0, 7))
        phys = np.concatenate([physical_boxes(boxes_now), self.world.clutter], axis=0)
        sweep = self.lidar.scan(self.rng, origin, float(eyaw) + LIDAR_YAW_IN_EGO, phys, n_obj, self.intensity_obj)
        global_to_lidar = np.linalg.inv(lidar_to_global)
        cloud = _sensor_cloud(sweep, global_to_lidar)
        self.stats["points"] += len(cloud)
        self.stats["clouds"] += 1

        key = bool(self.is_key[f])
        k = min(int(np.searchsorted(self.key_idx, f)), self.cfg.keyframes - 1)  # the next keyframe's sample
        fname = f"{'samples' if key else 'sweeps'}/LIDAR_TOP/{self.logfile}__LIDAR_TOP__{ts}.pcd.bin"
        cloud.tofile(os.path.join(self.root, fname))
        self.tables.sample_data.append({
            "token": self.sd_tokens[f], "sample_token": self.sample_tokens[k], "ego_pose_token": ep_token,
            "calibrated_sensor_token": self.tables.lidar_calibration_token, "timestamp": ts, "fileformat": "pcd",
            "is_key_frame": key, "height": 0, "width": 0, "filename": fname,
            "prev": self.sd_tokens[f - 1] if f > 0 else "",
            "next": self.sd_tokens[f + 1] if f + 1 < self.n_frames else ""})
        if key:
            self._write_sample(f, k, ts, cloud, sweep, global_to_lidar)

    def _write_sample(self, f: int, k: int, ts: int, cloud: np.ndarray, sweep: Sweep,
                      global_to_lidar: np.ndarray) -> None:
        """Keyframe ``k`` (lidar frame ``f``): the sample and the annotations of the objects
        annotated at it, with their lidar points counted from the cloud as stored."""
        from nutrack.ops import points_in_boxes_all

        K, tok = self.cfg.keyframes, self.sample_tokens
        self.tables.sample.append({"token": tok[k], "timestamp": ts, "scene_token": self.scene_token,
                                   "prev": tok[k - 1] if k > 0 else "", "next": tok[k + 1] if k + 1 < K else ""})
        annotated = [i for i, (a, b) in self.ann_span.items() if a <= k <= b]
        if not annotated:
            return
        ann_boxes = self.obj_boxes[annotated, f, :].astype(np.float32)
        # count points in the sensor frame, from the points exactly as stored
        boxes_lidar, _ = transform_boxes(ann_boxes, global_to_lidar)
        pairs = np.asarray(points_in_boxes_all(cloud[:, :3], boxes_lidar, sparse=True))
        counts = (np.bincount(pairs[:, 1], minlength=len(annotated)) if len(pairs)
                  else np.zeros(len(annotated), np.int64))
        for j, i in enumerate(annotated):
            o = self.world.objects[i]
            n_pts = int(counts[j])
            crossing = int(sweep.total[i])
            visible = (np.count_nonzero(sweep.hit == i) / crossing) if crossing else 0.0
            a, b = self.ann_span[i]
            self.tables.add_annotation(
                self.ann_tokens[(i, k)], tok[k], self.inst_tokens[i], o, self.obj_boxes[i, f],
                attribute_of(o, float(o.speed[f])), visibility_token(visible), n_pts,
                prev=self.ann_tokens[(i, k - 1)] if k > a else "", next_=self.ann_tokens[(i, k + 1)] if k < b else "")
            self.stats["annotations"] += 1
            self.stats["zero_point"] += n_pts == 0

    def _write_instances_and_scene(self) -> None:
        cat_token = {o.category: token("category", o.category) for o in self.world.objects}
        for i, (a, b) in self.ann_span.items():
            self.tables.instance.append({
                "token": self.inst_tokens[i], "category_token": cat_token[self.world.objects[i].category],
                "nbr_annotations": b - a + 1, "first_annotation_token": self.ann_tokens[(i, a)],
                "last_annotation_token": self.ann_tokens[(i, b)]})
            self.stats["instances"] += 1
        K = self.cfg.keyframes
        self.tables.scene.append({
            "token": self.scene_token, "log_token": self.log_token, "nbr_samples": K,
            "first_sample_token": self.sample_tokens[0], "last_sample_token": self.sample_tokens[-1],
            "name": self.name, "description": f"synthetic nutrack scene (seed {self.cfg.seed})"})


def _sensor_cloud(sweep: Sweep, global_to_lidar: np.ndarray) -> np.ndarray:
    """The sweep as stored: (P, 5) float32 x, y, z (sensor frame), intensity, beam index."""
    pts_s = sweep.points @ global_to_lidar[:3, :3].T + global_to_lidar[:3, 3]
    cloud = np.empty((len(pts_s), 5), dtype=np.float32)
    cloud[:, :3] = pts_s
    cloud[:, 3] = sweep.intensity
    cloud[:, 4] = sweep.beam
    return cloud
