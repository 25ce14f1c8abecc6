"""The 13 nuScenes JSON tables of a synthetic dataset: their records, tokens and files.

Tokens are md5 hashes of names (``token(namespace, "sample", scene, k)``), so the same
configuration and seed always give the same tokens. :data:`TOKEN_NAMESPACE` is part of every
scene-dependent token: changing it changes every generated file.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from nutrack._io import atomic_write_bytes

from ..boxes import quaternion_from_yaw
from .config import SynthConfig, split_scene_names
from .constants import ATTRIBUTES, CATEGORIES, LIDAR_ROTATION, LIDAR_TRANSLATION, LOCATIONS, VISIBILITY
from .world import WorldObject

__all__ = ["TOKEN_NAMESPACE", "Tables", "token", "namespace", "scene_plan", "attribute_of", "visibility_token",
           "write_splits_json"]

#: The prefix of every scene-dependent token. Fixed: it is not a cache key (the cache keys
#: on the generator's source, see :mod:`.cache`), only a name space for the md5 tokens.
TOKEN_NAMESPACE = "nutrack-synth-v1"


def token(*parts) -> str:
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def namespace(cfg: SynthConfig) -> str:
    """The token namespace of a dataset: the generator, the version and the seed."""
    return f"{TOKEN_NAMESPACE}/{cfg.version}/{cfg.seed}"


def scene_plan(cfg: SynthConfig) -> List[Tuple[str, str]]:
    """(scene name, split) pairs: the devkit's split scene names for a named version, else
    ``scene-9000...`` (train) and ``scene-9500...`` (val)."""
    names = split_scene_names(cfg.version)
    tr, va = cfg.splits()
    if names is None:
        train = [f"scene-{9000 + i:04d}" for i in range(cfg.train_scenes)]
        val = [f"scene-{9500 + i:04d}" for i in range(cfg.val_scenes)]
    else:
        train = list(names[0][1][: cfg.train_scenes])
        val = list(names[1][1][: cfg.val_scenes])
    return [(n, tr) for n in train] + [(n, va) for n in val]


def attribute_of(o: WorldObject, speed: float) -> Optional[str]:
    """The nuScenes attribute of an object moving at ``speed`` (None for cones and barriers)."""
    cat = o.category
    if cat.startswith("vehicle.bicycle") or cat.startswith("vehicle.motorcycle"):
        return "cycle.with_rider" if o.rider else "cycle.without_rider"
    if cat.startswith("vehicle."):
        if speed > 0.3:
            return "vehicle.moving"
        return "vehicle.parked" if o.parked else "vehicle.stopped"
    if cat.startswith("human.pedestrian"):
        if o.sitting:
            return "pedestrian.sitting_lying_down"
        return "pedestrian.moving" if speed > 0.2 else "pedestrian.standing"
    return None


def visibility_token(visible_fraction: float) -> str:
    """The nuScenes visibility level ("1" = 0-40 % ... "4" = 80-100 %)."""
    f = visible_fraction
    return "1" if f < 0.4 else "2" if f < 0.6 else "3" if f < 0.8 else "4"


class Tables:
    """The tables as lists of records, filled scene by scene, written once at the end."""

    NAMES = ["category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
             "scene", "sample", "sample_data", "sample_annotation", "map"]

    def __init__(self, ns: str):
        self.ns = ns
        for n in self.NAMES:
            setattr(self, n, [])
        self._add_vocabulary()

    def _add_vocabulary(self) -> None:
        """The records every dataset shares: categories, attributes, visibility levels and the
        one LIDAR_TOP sensor with its calibration."""
        for name, desc in CATEGORIES:
            self.category.append({"token": token("category", name), "name": name, "description": desc})
        for name, desc in ATTRIBUTES:
            self.attribute.append({"token": token("attribute", name), "name": name, "description": desc})
        for tok, level, desc in VISIBILITY:
            self.visibility.append({"token": tok, "level": level, "description": desc})
        sensor_token = token("sensor", "LIDAR_TOP")
        self.sensor.append({"token": sensor_token, "channel": "LIDAR_TOP", "modality": "lidar"})
        self.calibrated_sensor.append({"token": token(self.ns, "calibrated_sensor", "LIDAR_TOP"),
                                       "sensor_token": sensor_token, "translation": list(LIDAR_TRANSLATION),
                                       "rotation": list(LIDAR_ROTATION), "camera_intrinsic": []})

    @property
    def lidar_calibration_token(self) -> str:
        return self.calibrated_sensor[0]["token"]

    # ---- per scene ---------------------------------------------------------------------------

    def add_log(self, scene_idx: int, scene_name: str) -> Tuple[str, str]:
        """The scene's log (locations in turn, a date from the index); (log token, logfile)."""
        location = LOCATIONS[scene_idx % len(LOCATIONS)]
        log_token = token(self.ns, "log", scene_name)
        date = "2018-%02d-%02d" % (1 + scene_idx % 12, 1 + scene_idx % 28)
        logfile = f"n015-{date}-12-00-00+0800" if location.startswith("singapore") else f"n008-{date}-12-00-00-0400"
        logfile = f"{logfile}-{scene_name}"
        self.log.append({"token": log_token, "logfile": logfile,
                         "vehicle": "n015" if "singapore" in location else "n008",
                         "date_captured": date, "location": location})
        return log_token, logfile

    def add_ego_pose(self, scene_name: str, frame: int, timestamp: int, translation: Sequence[float],
                     rotation: Sequence[float]) -> str:
        ep_token = token(self.ns, "ego_pose", scene_name, frame)
        self.ego_pose.append({"token": ep_token, "timestamp": timestamp, "rotation": rotation,
                              "translation": translation})
        return ep_token

    def add_annotation(self, ann_token: str, sample_token: str, instance_token: str, o: WorldObject,
                       box: np.ndarray, attribute: Optional[str], visibility: str, n_pts: int, prev: str,
                       next_: str) -> None:
        """One sample_annotation; ``box`` is the object's (x, y, z, l, w, h, yaw) at the keyframe."""
        w, l, h = o.size
        self.sample_annotation.append({
            "token": ann_token, "sample_token": sample_token, "instance_token": instance_token,
            "visibility_token": visibility,
            "attribute_tokens": [token("attribute", attribute)] if attribute else [],
            "translation": [float(box[0]), float(box[1]), float(h / 2)],
            "size": [float(w), float(l), float(h)],
            "rotation": quaternion_from_yaw(float(box[6])).tolist(),
            "prev": prev, "next": next_, "num_lidar_pts": n_pts, "num_radar_pts": 0})

    # ---- per dataset -------------------------------------------------------------------------

    def add_maps(self, root: str) -> None:
        """One placeholder map mask per location that has a log (the devkit needs them to exist)."""
        for loc in LOCATIONS:
            logs = [lg["token"] for lg in self.log if lg["location"] == loc]
            if not logs:
                continue
            mtoken = token(self.ns, "map", loc)
            fname = f"maps/{mtoken}.png"
            _write_map_png(os.path.join(root, fname))
            self.map.append({"token": mtoken, "log_tokens": logs, "category": "semantic_prior", "filename": fname})

    def write(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        for n in self.NAMES:
            atomic_write_bytes(os.path.join(folder, n + ".json"), json.dumps(getattr(self, n), indent=0).encode())


def write_splits_json(folder: str, plan: List[Tuple[str, str]], splits: Tuple[str, str]) -> None:
    """``splits.json`` (devkit 1.2's custom splits) for a version without named splits."""
    tr, va = splits
    content: Dict[str, List[str]] = {tr: [n for n, s in plan if s == tr], va: [n for n, s in plan if s == va]}
    atomic_write_bytes(os.path.join(folder, "splits.json"), json.dumps(content, indent=1).encode())


def _write_map_png(path: str) -> None:
    """A small semantic-prior mask (placeholder: no drivable-area raster)."""
    from PIL import Image

    img = np.zeros((64, 64), dtype=np.uint8)
    img[24:40, :] = 255
    img[:, 24:40] = 255
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path)
