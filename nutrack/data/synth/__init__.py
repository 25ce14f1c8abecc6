"""A synthetic nuScenes dataset in the real on-disk layout, and a detection simulator.

``python -m nutrack.data.synth --out DIR`` writes a complete dataset the devkit opens as it
opens a download: the 13 tables under ``DIR/<version>/``, LIDAR_TOP keyframes and sweeps as
``.pcd.bin`` under ``samples/`` and ``sweeps/``, map masks under ``maps/``, with scene names
from the devkit's splits (``mini_train``/``mini_val`` for ``v1.0-mini``, ``train``/``val``
for ``v1.0-trainval``). It also writes simulated CenterPoint-like detection files for the
train and val splits under ``DIR/detections/<split>.json``.

The world: a road with curves and cross streets, a moving ego (cruising, slowing, stopping),
parked and moving vehicles in lanes, vehicles turning in from and out to cross streets,
trucks towing trailers, pedestrians walking, stopping, standing in groups and crossing,
cyclists, barriers and cones, and unannotated buildings, poles and trees. A ray-cast 32-beam
LIDAR_TOP sees it: points lie on the visible surfaces, objects hide each other, so far and
occluded annotations have few or zero points. ``num_lidar_pts`` is counted from the points
actually inside each box with :func:`nutrack.ops.points_in_boxes_all`.

:func:`simulate_detections` turns the ground truth of any dataset (synthetic or real) into a
detection file with range-dependent noise, misses, false positives, duplicates, class
confusions and imperfect scores; :class:`DetectorNoise` holds its documented defaults.

:func:`default_dataset` generates the embedded default once (cached under
``$NUTRACK_CACHE`` or ``~/.cache/nutrack``) and returns its paths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..boxes import quaternion_from_yaw, transform_boxes, transform_matrix
from ..classes import CLASS_TO_ID, NUM_CLASSES
from ..detections import DEFAULT_META, DetectionSet, Detections, atomic_write_bytes, write_detections

__all__ = [
    "SynthConfig",
    "DetectorNoise",
    "DefaultDataset",
    "generate_dataset",
    "simulate_detections",
    "default_dataset",
    "GENERATOR_VERSION",
    "main",
]

#: Bump when the generator's output changes, so cached default datasets are regenerated.
GENERATOR_VERSION = 1

# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. The defaults are the embedded default dataset.

    version: ``v1.0-mini`` (named splits ``mini_train``/``mini_val``) or ``v1.0-trainval``
        (``train``/``val``); any other version name writes a ``splits.json`` with custom
        splits ``synth_train``/``synth_val``.
    train_scenes, val_scenes: number of scenes per split (mini has at most 8 and 2).
    keyframes: samples per scene (2 Hz; 40 = 20 s, as nuScenes).
    sweeps_per_keyframe: LIDAR_TOP sweeps between two keyframes (4: a 10 Hz lidar); the
        first keyframe also gets that many earlier sweeps.
    beams, azimuth_steps: the lidar's rays per sweep (32 beams from -30.67 to +10.67 deg as
        the nuScenes HDL-32E).
    ground_keep, clutter_keep: fractions of ground and of unannotated-structure
        (buildings, poles, trees) returns kept; thinning them keeps the files small while
        annotated objects keep all their points.
    max_range: lidar range in metres.
    annotation_range: objects are annotated while within this BEV distance of the ego.
    density: scales the number of objects.
    seed: everything is deterministic for a seed.
    """

    version: str = "v1.0-mini"
    train_scenes: int = 8
    val_scenes: int = 2
    keyframes: int = 40
    sweeps_per_keyframe: int = 4
    beams: int = 32
    azimuth_steps: int = 720
    ground_keep: float = 0.10
    clutter_keep: float = 0.35
    max_range: float = 70.0
    annotation_range: float = 60.0
    density: float = 1.0
    seed: int = 0

    @classmethod
    def tiny(cls, **overrides) -> "SynthConfig":
        """A few-second dataset for unit tests: one scene per split, 6 keyframes, 1 sweep."""
        base = dict(train_scenes=1, val_scenes=1, keyframes=6, sweeps_per_keyframe=1, azimuth_steps=360,
                    density=0.6)
        base.update(overrides)
        return cls(**base)

    def validate(self) -> None:
        if self.train_scenes < 0 or self.val_scenes < 0 or self.train_scenes + self.val_scenes == 0:
            raise ValueError("train_scenes and val_scenes must be >= 0 and not both 0")
        if self.keyframes < 2:
            raise ValueError(f"keyframes must be >= 2, got {self.keyframes}")
        if self.sweeps_per_keyframe < 0:
            raise ValueError(f"sweeps_per_keyframe must be >= 0, got {self.sweeps_per_keyframe}")
        if self.beams < 1 or self.azimuth_steps < 8:
            raise ValueError("beams must be >= 1 and azimuth_steps >= 8")
        if not (0.0 <= self.ground_keep <= 1.0 and 0.0 <= self.clutter_keep <= 1.0):
            raise ValueError("ground_keep and clutter_keep must be in [0, 1]")
        if self.max_range <= 0 or self.annotation_range <= 0 or self.density <= 0:
            raise ValueError("max_range, annotation_range and density must be positive")
        names = _split_scene_names(self.version)
        if names is not None:
            (tr, trn), (va, van) = names
            if self.train_scenes > len(trn) or self.val_scenes > len(van):
                raise ValueError(f"{self.version} has at most {len(trn)} {tr} and {len(van)} {va} scenes")

    def splits(self) -> Tuple[str, str]:
        names = _split_scene_names(self.version)
        if names is None:
            return "synth_train", "synth_val"
        return names[0][0], names[1][0]


def _split_scene_names(version: str):
    from nuscenes.utils import splits as S

    if version.endswith("mini"):
        return ("mini_train", S.mini_train), ("mini_val", S.mini_val)
    if version.endswith("trainval"):
        return ("train", S.train), ("val", S.val)
    return None


@dataclass(frozen=True)
class DetectorNoise:
    """Parameters of the CenterPoint-like detection simulator (defaults documented in
    docs/data.md). Per-class tuples follow :data:`nutrack.data.classes.TRACKING_CLASSES`
    (car, truck, bus, trailer, pedestrian, motorcycle, bicycle). ``r`` is the BEV
    distance to the ego in metres, ``pts`` the annotation's lidar point count."""

    # detection probability: p_max * (1 - exp(-(pts + pts_bias) / pts_scale)) * range term
    p_max: Tuple[float, ...] = (0.97, 0.90, 0.95, 0.80, 0.92, 0.85, 0.82)
    pts_scale: Tuple[float, ...] = (4.0, 6.0, 6.0, 8.0, 2.5, 3.0, 3.0)
    pts_bias: float = 0.4
    range_free: float = 30.0        # no range penalty closer than this
    range_decay: float = 90.0       # beyond: * exp(-(r - range_free) / range_decay)
    # localisation noise (Gaussian, per axis): sigma = pos_sigma + pos_sigma_per_m * r
    pos_sigma: float = 0.08
    pos_sigma_per_m: float = 0.005
    z_sigma: float = 0.08
    outlier_prob: float = 0.02      # position error x outlier_scale
    outlier_scale: float = 5.0
    size_log_sigma: float = 0.06    # multiplicative size noise exp(N(0, s))
    yaw_sigma: Tuple[float, ...] = (0.04, 0.05, 0.04, 0.06, 0.30, 0.10, 0.15)
    yaw_sigma_per_m: float = 0.002
    heading_flip: Tuple[float, ...] = (0.03, 0.04, 0.03, 0.05, 0.10, 0.06, 0.08)
    vel_sigma: float = 0.15         # per axis, m/s; + vel_sigma_per_m * r
    vel_sigma_per_m: float = 0.008
    vel_outlier_prob: float = 0.03
    vel_outlier_sigma: float = 1.5
    # class confusion: (true, predicted, probability)
    confusion: Tuple[Tuple[str, str, float], ...] = (
        ("car", "truck", 0.04), ("truck", "car", 0.08), ("bus", "truck", 0.06),
        ("trailer", "truck", 0.08), ("bicycle", "motorcycle", 0.10), ("motorcycle", "bicycle", 0.10),
    )
    # scores: sigmoid(score_bias + score_pts * log1p(pts) - score_range * r / 50 + N(0, score_noise))
    score_bias: float = -0.6
    score_pts: float = 0.75
    score_range: float = 0.8
    score_noise: float = 1.0
    confused_score_factor: float = 0.6
    duplicate_prob: float = 0.04    # a second box near a true positive
    duplicate_sigma: float = 0.6
    duplicate_score: Tuple[float, float] = (0.1, 0.5)  # x the original's score, uniform
    # false positives: Poisson per frame anywhere within fp_range, plus persistent sources
    fp_rate: float = 10.0
    fp_range: float = 55.0
    fp_score_beta: Tuple[float, float] = (1.2, 8.0)
    fp_hard_prob: float = 0.15      # FPs scored like true ones: Beta(2, 3)
    fp_sources_per_scene: int = 5   # static clutter detected again and again
    fp_source_prob: float = 0.4
    fp_class_prior: Tuple[float, ...] = (0.45, 0.12, 0.02, 0.03, 0.28, 0.05, 0.05)


# --------------------------------------------------------------------------------------
# nuScenes constants
# --------------------------------------------------------------------------------------

_CATEGORIES = [
    ("animal", "All animals, e.g. cats, rats, dogs, deer, birds."),
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    ("human.pedestrian.personal_mobility", "A small electric or self-propelled vehicle."),
    ("human.pedestrian.police_officer", "Police officer."),
    ("human.pedestrian.stroller", "Strollers."),
    ("human.pedestrian.wheelchair", "Wheelchairs."),
    ("movable_object.barrier", "Temporary road barrier placed in the scene."),
    ("movable_object.debris", "Movable object that is left on the driveable surface."),
    ("movable_object.pushable_pullable", "Objects that a pedestrian may push or pull."),
    ("movable_object.trafficcone", "All types of traffic cone."),
    ("static_object.bicycle_rack", "Area or device intended to park or secure the bicycles."),
    ("vehicle.bicycle", "Human or electric powered 2-wheeled vehicle."),
    ("vehicle.bus.bendy", "Bendy bus subcategory."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    ("vehicle.car", "Vehicle designed primarily for personal use."),
    ("vehicle.construction", "Vehicles primarily designed for construction."),
    ("vehicle.emergency.ambulance", "All types of ambulances."),
    ("vehicle.emergency.police", "All types of police vehicles."),
    ("vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle."),
    ("vehicle.trailer", "Any vehicle trailer."),
    ("vehicle.truck", "Vehicles primarily designed to haul cargo."),
]
_ATTRIBUTES = [
    ("vehicle.moving", "Vehicle is moving."),
    ("vehicle.stopped", "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move."),
    ("vehicle.parked", "Vehicle is stationary (usually for longer duration) with no immediate intent to move."),
    ("cycle.with_rider", "There is a rider on the bicycle or motorcycle."),
    ("cycle.without_rider", "There is NO rider on the bicycle or motorcycle."),
    ("pedestrian.sitting_lying_down", "The human is sitting or lying down."),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
]
_VISIBILITY = [("1", "v0-40", "visibility of whole object is between 0 and 40%"),
               ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
               ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
               ("4", "v80-100", "visibility of whole object is between 80 and 100%")]
_LOCATIONS = ["singapore-onenorth", "boston-seaport", "singapore-queenstown", "singapore-hollandvillage"]

# mean (w, l, h) in metres, close to nuScenes' per-category means
_SIZE = {
    "vehicle.car": (1.95, 4.62, 1.73),
    "vehicle.truck": (2.51, 6.93, 2.84),
    "vehicle.bus.rigid": (2.94, 11.19, 3.47),
    "vehicle.bus.bendy": (2.95, 17.5, 3.4),
    "vehicle.trailer": (2.90, 10.5, 3.87),
    "human.pedestrian.adult": (0.67, 0.73, 1.77),
    "human.pedestrian.child": (0.52, 0.52, 1.30),
    "human.pedestrian.construction_worker": (0.70, 0.75, 1.78),
    "vehicle.motorcycle": (0.77, 2.11, 1.47),
    "vehicle.bicycle": (0.61, 1.70, 1.29),
    "movable_object.barrier": (2.53, 0.50, 0.98),
    "movable_object.trafficcone": (0.41, 0.41, 1.07),
}
_INTENSITY = {"vehicle": 45.0, "human": 20.0, "movable_object": 70.0, "clutter": 35.0}

# LIDAR_TOP mounting (as nuScenes' Renault Zoe: x forward, yaw -90 deg)
_LIDAR_TRANSLATION = [0.985793, 0.0, 1.84019]
_LIDAR_ROTATION = [math.cos(-math.pi / 4), 0.0, 0.0, math.sin(-math.pi / 4)]
_ELEV_RANGE = (-30.67, 10.67)
_PHYSICAL_INSET = 0.05  # metres: surfaces lie inside the annotated box by this much
_RANGE_NOISE = 0.012    # metres, clipped at 2.5 sigma (< inset)


# --------------------------------------------------------------------------------------
# Lidar ray casting (numba)
# --------------------------------------------------------------------------------------

def _raycast_py(origin, sensor_yaw, az0, n_cols, sin_e, cos_e, boxes, max_range, ground_z,
                depth, hit, total):
    """Cast n_cols x beams rays from ``origin`` against oriented boxes and the ground plane.

    Ray r = col * beams + beam has world azimuth ``sensor_yaw + az0 + col * 2pi / n_cols``
    and elevation ``asin(sin_e[beam])``. Fills ``depth`` (range of the nearest hit, or
    ``max_range``), ``hit`` (box index, -1 ground, -2 nothing) and ``total[m]`` (rays that
    cross box m at all, occluded or not; for visibility).
    """
    nb = sin_e.shape[0]
    daz = 2.0 * math.pi / n_cols
    ox, oy, oz = origin[0], origin[1], origin[2]
    for m in range(boxes.shape[0]):
        cx = boxes[m, 0] - ox
        cy = boxes[m, 1] - oy
        cz = boxes[m, 2] - oz
        hx = 0.5 * boxes[m, 3]
        hy = 0.5 * boxes[m, 4]
        hz = 0.5 * boxes[m, 5]
        c = math.cos(boxes[m, 6])
        s = math.sin(boxes[m, 6])
        # ray origin in the box frame
        olx = -(cx * c + cy * s)
        oly = -(-cx * s + cy * c)
        olz = -cz
        if abs(olx) <= hx and abs(oly) <= hy:
            col_lo = 0
            col_hi = n_cols - 1
        else:
            ac = math.atan2(cy, cx)
            lo = 1e9
            hi = -1e9
            for sx in (-1.0, 1.0):
                for sy in (-1.0, 1.0):
                    px = cx + sx * hx * c - sy * hy * s
                    py = cy + sx * hx * s + sy * hy * c
                    d = math.atan2(py, px) - ac
                    d = (d + math.pi) % (2.0 * math.pi) - math.pi
                    lo = min(lo, d)
                    hi = max(hi, d)
            base = ac - sensor_yaw - az0
            col_lo = int(math.floor((base + lo) / daz))
            col_hi = int(math.ceil((base + hi) / daz))
            if col_hi - col_lo + 1 > n_cols:
                col_lo = 0
                col_hi = n_cols - 1
        for ck in range(col_lo, col_hi + 1):
            col = ck % n_cols
            phi = sensor_yaw + az0 + col * daz
            cphi = math.cos(phi)
            sphi = math.sin(phi)
            # horizontal direction in the box frame
            hdx = cphi * c + sphi * s
            hdy = -cphi * s + sphi * c
            for b in range(nb):
                dx = cos_e[b] * hdx
                dy = cos_e[b] * hdy
                dz = sin_e[b]
                tmin = -1e30
                tmax = 1e30
                miss = False
                # x slab
                if abs(dx) < 1e-12:
                    if abs(olx) > hx:
                        miss = True
                else:
                    t1 = (-hx - olx) / dx
                    t2 = (hx - olx) / dx
                    if t1 > t2:
                        t1, t2 = t2, t1
                    tmin = max(tmin, t1)
                    tmax = min(tmax, t2)
                if not miss:
                    if abs(dy) < 1e-12:
                        if abs(oly) > hy:
                            miss = True
                    else:
                        t1 = (-hy - oly) / dy
                        t2 = (hy - oly) / dy
                        if t1 > t2:
                            t1, t2 = t2, t1
                        tmin = max(tmin, t1)
                        tmax = min(tmax, t2)
                if not miss:
                    if abs(dz) < 1e-12:
                        if abs(olz) > hz:
                            miss = True
                    else:
                        t1 = (-hz - olz) / dz
                        t2 = (hz - olz) / dz
                        if t1 > t2:
                            t1, t2 = t2, t1
                        tmin = max(tmin, t1)
                        tmax = min(tmax, t2)
                if miss or tmax < tmin or tmin <= 0.0 or tmin >= max_range:
                    continue
                total[m] += 1
                r = col * nb + b
                if tmin < depth[r]:
                    depth[r] = tmin
                    hit[r] = m
    # ground plane
    for col in range(n_cols):
        for b in range(nb):
            if sin_e[b] < -1e-9:
                t = (ground_z - oz) / sin_e[b]
                r = col * nb + b
                if 0.0 < t < depth[r]:
                    depth[r] = t
                    hit[r] = -1


_raycast_jit = None


def _raycast(*args):
    global _raycast_jit
    if _raycast_jit is None:
        from numba import njit

        _raycast_jit = njit(cache=True, nogil=True)(_raycast_py)
    return _raycast_jit(*args)


# --------------------------------------------------------------------------------------
# World: road, paths, speed profiles
# --------------------------------------------------------------------------------------

_DS = 0.5  # road sampling step, metres


class _Road:
    """Centreline with curvature; (s, l) road coordinates -> world."""

    def __init__(self, rng, origin_xy, heading0, s_min, s_max):
        n = int(math.ceil((s_max - s_min) / _DS)) + 1
        s = s_min + _DS * np.arange(n)
        kappa = np.zeros(n)
        pos = s_min
        while pos < s_max:
            if rng.random() < 0.55:
                length = rng.uniform(40, 110)
            else:
                length = rng.uniform(18, 40)
                k = rng.uniform(1 / 70, 1 / 28) * rng.choice([-1.0, 1.0])
                kappa[(s >= pos) & (s < pos + length)] = k
            pos += length
        # keep the first stretch around the ego start gentle
        heading = np.cumsum(kappa) * _DS
        i0 = int(np.argmin(np.abs(s)))
        heading = heading - heading[i0] + heading0
        x = np.cumsum(np.cos(heading)) * _DS
        y = np.cumsum(np.sin(heading)) * _DS
        self.s = s
        self.x = x - x[i0] + origin_xy[0]
        self.y = y - y[i0] + origin_xy[1]
        self.heading = heading

    def world(self, s, l):
        s = np.asarray(s, dtype=np.float64)
        l = np.asarray(l, dtype=np.float64)
        x = np.interp(s, self.s, self.x)
        y = np.interp(s, self.s, self.y)
        h = np.interp(s, self.s, self.heading)
        return x - l * np.sin(h), y + l * np.cos(h), h


class _Path:
    """A polyline in the world with arc-length parametrisation."""

    def __init__(self, x, y):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        seg = np.hypot(np.diff(x), np.diff(y))
        keep = np.concatenate([[True], seg > 1e-6])
        self.x, self.y = x[keep], y[keep]
        seg = np.hypot(np.diff(self.x), np.diff(self.y))
        self.arc = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(self.arc[-1])
        if len(self.x) >= 2:
            hx = np.gradient(self.x)
            hy = np.gradient(self.y)
            self.heading = np.unwrap(np.arctan2(hy, hx))
        else:
            self.heading = np.zeros(len(self.x))

    def at(self, sigma):
        sigma = np.clip(sigma, 0.0, self.length)
        x = np.interp(sigma, self.arc, self.x)
        y = np.interp(sigma, self.arc, self.y)
        h = np.interp(sigma, self.arc, self.heading)
        return x, y, h


def _road_path(road: _Road, s0, s1, l_of_s):
    """Path along the road from s0 to s1 (either direction) at lateral offset l(s)."""
    n = max(2, int(abs(s1 - s0) / _DS) + 1)
    s = np.linspace(s0, s1, n)
    l = l_of_s(s) if callable(l_of_s) else np.full(n, float(l_of_s))
    x, y, _ = road.world(s, l)
    return _Path(x, y)


def _sl_path(road: _Road, s, l):
    x, y, _ = road.world(np.asarray(s), np.asarray(l))
    return _Path(x, y)


def _speed_profile(rng, t_fine, v_lo, v_hi, p_stop=0.0, stop_dur=(2.0, 6.0), knot_dt=(3.0, 8.0), v0=None):
    """Piecewise-linear speed with occasional stops; returns speeds at t_fine."""
    knots_t = [t_fine[0] - 1.0]
    knots_v = [rng.uniform(v_lo, v_hi) if v0 is None else v0]
    t = knots_t[0]
    while t < t_fine[-1] + 1.0:
        if rng.random() < p_stop:
            decel = rng.uniform(1.5, 3.0)
            t += max(1.0, knots_v[-1] / decel)
            knots_t.append(t)
            knots_v.append(0.0)
            t += rng.uniform(*stop_dur)
            knots_t.append(t)
            knots_v.append(0.0)
            t += rng.uniform(2.0, 4.0)
            knots_t.append(t)
            knots_v.append(rng.uniform(v_lo, v_hi))
        else:
            t += rng.uniform(*knot_dt)
            knots_t.append(t)
            knots_v.append(rng.uniform(v_lo, v_hi))
    v = np.interp(t_fine, knots_t, knots_v)
    return np.maximum(v, 0.0)


def _integrate(t_fine, v):
    return np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * np.diff(t_fine))])


@dataclass
class _Object:
    category: str
    size: Tuple[float, float, float]  # w, l, h
    x: np.ndarray  # (T,) per lidar frame
    y: np.ndarray
    yaw: np.ndarray
    speed: np.ndarray
    parked: bool = False
    rider: bool = True


@dataclass
class _Clutter:
    boxes: np.ndarray  # (K, 7) static, unannotated (buildings, poles, trees)


def _jitter_size(rng, category, scale=0.08):
    w, l, h = _SIZE[category]
    f = np.exp(rng.normal(0.0, scale, size=3))
    return (float(w * f[0]), float(l * f[1]), float(h * f[2]))


def _pick(rng, options):
    names = [o[0] for o in options]
    p = np.array([o[1] for o in options], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


_VEHICLE_MIX = [("vehicle.car", 0.76), ("vehicle.truck", 0.13), ("vehicle.motorcycle", 0.05),
                ("vehicle.bus.rigid", 0.05), ("vehicle.bus.bendy", 0.01)]
_PED_MIX = [("human.pedestrian.adult", 0.88), ("human.pedestrian.child", 0.06),
            ("human.pedestrian.construction_worker", 0.06)]


def _build_world(rng, cfg: SynthConfig, t_frames: np.ndarray):
    """Ego poses and objects for one scene, evaluated at the lidar frame times."""
    dens = cfg.density
    t_fine = np.arange(t_frames[0] - 1.0, t_frames[-1] + 1.05, 0.05)
    # ---- ego ----
    style = rng.choice(["cruise", "urban", "stopgo", "slow"], p=[0.35, 0.35, 0.2, 0.1])
    if style == "cruise":
        v_ego = _speed_profile(rng, t_fine, 7.0, 12.0)
    elif style == "urban":
        v_ego = _speed_profile(rng, t_fine, 3.0, 9.0, p_stop=0.15)
    elif style == "stopgo":
        v_ego = _speed_profile(rng, t_fine, 2.0, 7.0, p_stop=0.5, stop_dur=(2.0, 5.0))
    else:
        v_ego = _speed_profile(rng, t_fine, 0.0, 3.0)
    s_ego_fine = _integrate(t_fine, v_ego)
    s_ego_fine -= np.interp(t_frames[0], t_fine, s_ego_fine)
    travel = float(s_ego_fine[-1])
    margin = 420.0
    origin = rng.uniform(300.0, 1800.0, size=2)
    road = _Road(rng, origin, rng.uniform(-math.pi, math.pi), -margin, travel + margin)
    s_ego = np.interp(t_frames, t_fine, s_ego_fine)
    ex, ey, eh = road.world(s_ego, np.zeros_like(s_ego))
    ego = np.stack([ex, ey, eh], axis=1)

    lo_s, hi_s = -90.0, travel + 90.0  # the stretch the ego can see
    objects: List[_Object] = []

    def add_path_object(category, path: _Path, sigma_frames, speed, parked=False, rider=True, flip=False):
        x, y, h = path.at(sigma_frames)
        if flip:
            h = h + math.pi
        objects.append(_Object(category, _jitter_size(rng, category), x, y, np.asarray(h, dtype=np.float64),
                               np.asarray(speed, dtype=np.float64), parked, rider))

    def along(v):
        """sigma(t) at the frames for a speed profile on t_fine, starting at 0."""
        sig = _integrate(t_fine, v)
        return np.interp(t_frames, t_fine, sig), np.interp(t_frames, t_fine, v)

    def count(rate_per_100m, length):
        return int(rng.poisson(rate_per_100m * dens * length / 100.0))

    # ---- cross streets (gaps in buildings, where turns and crossings happen) ----
    crosses = []
    pos = lo_s + rng.uniform(10, 60)
    while pos < hi_s:
        crosses.append(pos)
        pos += rng.uniform(70, 140)

    # ---- parked vehicles on both kerbs ----
    for side_l, heading_flip in ((-6.6, False), (10.1, True)):
        n = count(6.0, hi_s - lo_s)
        slots = np.sort(rng.uniform(lo_s, hi_s, size=n))
        last = -1e9
        for s in slots:
            if any(abs(s - c) < 9 for c in crosses) or s - last < 7.0:
                continue
            cat = _pick(rng, [("vehicle.car", 0.83), ("vehicle.truck", 0.09), ("vehicle.trailer", 0.05),
                              ("vehicle.motorcycle", 0.03)])
            last = s + (6.0 if cat == "vehicle.trailer" else 0.0)
            l_off = side_l + rng.normal(0, 0.15) + (0.9 if cat == "vehicle.motorcycle" and side_l < 0 else 0)
            path = _sl_path(road, [s - 1.0, s + 1.0], [l_off, l_off])
            sig = np.full(len(t_frames), 1.0) + rng.normal(0, 0.01)
            add_path_object(cat, path, sig, np.zeros(len(t_frames)), parked=True, rider=False,
                            flip=heading_flip ^ (rng.random() < 0.1))
            objects[-1].yaw = objects[-1].yaw + rng.normal(0, 0.04)

    # ---- moving traffic in lanes: platoons sharing a speed profile ----
    lanes = [(-3.5, +1), (0.0, +1), (3.5, -1), (7.0, -1)]
    for l_lane, direction in lanes:
        if l_lane == 0.0:
            # ego lane: a lead vehicle and a follower keep their gap to the ego
            for gap, p in ((rng.uniform(12, 30), 0.7), (-rng.uniform(12, 25), 0.5)):
                if rng.random() < p:
                    cat = _pick(rng, _VEHICLE_MIX)
                    path = _road_path(road, -margin + 1, travel + margin - 1, 0.0)
                    sig = np.interp(s_ego, road.s, road.s) + gap + margin - 1
                    add_path_object(cat, path, sig, np.interp(t_frames, t_fine, v_ego))
            continue
        v_lane = _speed_profile(rng, t_fine, 4.0, 13.0, p_stop=0.1)
        sig_rel, spd = along(v_lane)
        if direction > 0:
            path = _road_path(road, -margin + 1, travel + margin - 1, l_lane)
        else:
            path = _road_path(road, travel + margin - 1, -margin + 1, l_lane)
        reach = float(sig_rel[-1])
        # start positions (arc along the path) such that the vehicle is near the ego at some time
        span_lo, span_hi = 0.0, path.length - reach
        n = count(2.0, span_hi - span_lo)
        starts = np.sort(rng.uniform(span_lo, span_hi, size=n))
        last = -1e9
        for st in starts:
            if st - last < 14.0:
                continue
            last = st
            sig = st + sig_rel
            x, y, _ = path.at(sig)
            d = np.hypot(x - ego[:, 0], y - ego[:, 1])
            if d.min() > cfg.annotation_range + 10:
                continue
            if rng.random() < 0.08:  # a truck towing a trailer
                add_path_object("vehicle.truck", path, sig, spd)
                tl = objects[-1].size[1]
                add_path_object("vehicle.trailer", path, sig - (tl / 2 + _SIZE["vehicle.trailer"][1] / 2 + 1.0), spd)
                last = st + 12.0
                continue
            cat = _pick(rng, _VEHICLE_MIX)
            add_path_object(cat, path, sig, spd)

    # ---- cyclists at the right kerb; parked bicycles on the pavement ----
    path_bike = _road_path(road, -margin + 1, travel + margin - 1, -5.0)
    for _ in range(count(0.5, hi_s - lo_s)):
        v = _speed_profile(rng, t_fine, 2.5, 6.0, p_stop=0.1)
        sig_rel, spd = along(v)
        sig = rng.uniform(margin + lo_s - 60, margin + hi_s) + sig_rel
        add_path_object("vehicle.bicycle", path_bike, sig, spd)
    for _ in range(count(0.4, hi_s - lo_s)):
        s = rng.uniform(lo_s, hi_s)
        path = _sl_path(road, [s, s + 0.5], [-7.7, -7.7])
        add_path_object("vehicle.bicycle", path, np.zeros(len(t_frames)), np.zeros(len(t_frames)),
                        parked=True, rider=False, flip=rng.random() < 0.5)
        objects[-1].yaw = objects[-1].yaw + rng.choice([0.0, math.pi / 2])

    # ---- turning vehicles at cross streets ----
    for c in crosses:
        for _ in range(rng.poisson(1.4 * dens)):
            from_right = rng.random() < 0.5
            l_lane = -3.5 if from_right else rng.choice([3.5, 7.0])
            direction = 1 if from_right else -1
            l_far = -70.0 if from_right else 75.0
            R = rng.uniform(6.0, 10.0)
            sgn = 1.0 if l_lane > l_far else -1.0
            l_knee = l_lane - sgn * R
            seg1_l = np.linspace(l_far, l_knee, 60)
            seg1_s = np.full_like(seg1_l, c)
            th = np.linspace(0, math.pi / 2, 20)
            arc_s = c + direction * R * (1 - np.cos(th))
            arc_l = l_knee + sgn * R * np.sin(th)
            seg2_s = np.linspace(c + direction * R, c + direction * (R + 300.0), 200)
            seg2_l = np.full_like(seg2_s, l_lane)
            s_all = np.concatenate([seg1_s, arc_s[1:], seg2_s[1:]])
            l_all = np.concatenate([seg1_l, arc_l[1:], seg2_l[1:]])
            leaving = rng.random() < 0.4
            if leaving:  # drive the other way: from the road into the cross street
                path = _sl_path(road, s_all[::-1], l_all[::-1])
            else:
                path = _sl_path(road, s_all, l_all)
            v = _speed_profile(rng, t_fine, 3.0, 8.0, p_stop=0.15)
            sig_rel, spd = along(v)
            # time it so that the turn happens while the scene runs
            t_turn = rng.uniform(t_frames[0], t_frames[-1])
            turn_arc = path.length - 300.0 if not leaving else 300.0
            sig = sig_rel - np.interp(t_turn, t_frames, sig_rel) + turn_arc
            add_path_object(_pick(rng, _VEHICLE_MIX[:3]), path, sig, spd)

    # ---- pedestrians: walkers, standing groups, crossers ----
    for side_l in (-8.8, 12.8):
        for _ in range(count(1.5, hi_s - lo_s + 120)):
            d = rng.choice([-1, 1])
            l_off = side_l + rng.uniform(-0.8, 0.8)
            s0, s1 = (-margin + 1, travel + margin - 1) if d > 0 else (travel + margin - 1, -margin + 1)
            path = _road_path(road, s0, s1, lambda s, l0=l_off, ph=rng.uniform(0, 6.28): l0 + 0.3 * np.sin(s / 7.0 + ph))
            v = _speed_profile(rng, t_fine, 0.8, 1.7, p_stop=0.12, stop_dur=(1.5, 6.0), knot_dt=(2.0, 5.0))
            sig_rel, spd = along(v)
            start_s = rng.uniform(lo_s - 60, hi_s + 60)
            sig = (start_s + margin - 1 if d > 0 else travel + margin - 1 - start_s) + sig_rel
            add_path_object(_pick(rng, _PED_MIX), path, sig, spd)
        for _ in range(count(0.35, hi_s - lo_s)):
            s = rng.uniform(lo_s, hi_s)
            for _k in range(rng.integers(2, 5)):
                ds, dl = rng.normal(0, 0.8), rng.normal(0, 0.6)
                path = _sl_path(road, [s + ds, s + ds + 0.3], [side_l + dl, side_l + dl])
                add_path_object(_pick(rng, _PED_MIX), path, np.zeros(len(t_frames)), np.zeros(len(t_frames)))
                objects[-1].yaw = objects[-1].yaw + rng.uniform(-math.pi, math.pi)
    for c in crosses:
        for _ in range(rng.poisson(1.2 * dens)):
            sw = c + rng.choice([-6.0, 6.0]) + rng.normal(0, 0.7)
            start_right = rng.random() < 0.5
            l0, l1 = (-8.8, 12.8) if start_right else (12.8, -8.8)
            turn_dir = rng.choice([-1.0, 1.0])
            l_cross = np.linspace(l0, l1, 60)
            s_cross = np.full_like(l_cross, sw) + rng.normal(0, 0.02, size=60).cumsum()
            tail_s = sw + turn_dir * np.linspace(0.5, 80.0, 100)
            tail_l = np.full_like(tail_s, l1)
            path = _sl_path(road, np.concatenate([s_cross, tail_s]), np.concatenate([l_cross, tail_l]))
            v = _speed_profile(rng, t_fine, 1.0, 1.8, p_stop=0.25, stop_dur=(2.0, 8.0), knot_dt=(2.0, 4.0))
            sig_rel, spd = along(v)
            t_mid = rng.uniform(t_frames[0] - 5, t_frames[-1] + 5)
            sig = sig_rel - np.interp(t_mid, t_frames, sig_rel) + 0.5 * abs(l1 - l0)
            add_path_object(_pick(rng, _PED_MIX), path, sig, spd)

    # ---- barriers and cones (annotated, not tracking classes) ----
    if rng.random() < 0.6:
        s0 = rng.uniform(lo_s, hi_s)
        for k in range(int(rng.integers(4, 10))):
            path = _sl_path(road, [s0 + 3.0 * k, s0 + 3.0 * k + 0.5], [-5.4, -5.4])
            add_path_object("movable_object.trafficcone", path, np.zeros(len(t_frames)), np.zeros(len(t_frames)))
        for k in range(int(rng.integers(0, 4))):
            path = _sl_path(road, [s0 + 2.6 * k - 4, s0 + 2.6 * k - 3.5], [-6.0, -6.0])
            add_path_object("movable_object.barrier", path, np.zeros(len(t_frames)), np.zeros(len(t_frames)))
            objects[-1].yaw = objects[-1].yaw + math.pi / 2  # the long side (w) along the kerb

    # keep objects that come within range of the ego at some frame
    keep = []
    for o in objects:
        d = np.hypot(o.x - ego[:, 0], o.y - ego[:, 1])
        if d.min() <= cfg.annotation_range + 5:
            keep.append(o)
    objects = keep

    # ---- unannotated clutter: buildings, poles, trees ----
    clutter = []
    for side, (l_in, depth) in ((-1, (-13.0, 7.0)), (1, (17.0, 7.0))):
        pos = lo_s - 80
        while pos < hi_s + 80:
            length = rng.uniform(15, 60)
            if not any(pos - 6 < c < pos + length + 6 for c in crosses):
                s_mid = pos + length / 2
                l_mid = l_in + side * depth / 2
                x, y, h = road.world(s_mid, l_mid)
                height = rng.uniform(5, 22)
                clutter.append([x, y, height / 2, length, depth, height, h])
            pos += length + rng.uniform(2, 10)
        for kind, step, l_off, size in (("pole", 22.0, -7.6 if side < 0 else 11.6, (0.3, 0.3, 5.0)),
                                        ("tree", 27.0, -10.6 if side < 0 else 14.6, (1.4, 1.4, 5.5))):
            s = lo_s - 80 + rng.uniform(0, step)
            while s < hi_s + 80:
                x, y, h = road.world(s, l_off)
                clutter.append([x, y, size[2] / 2, size[0], size[1], size[2], h])
                s += step * rng.uniform(0.7, 1.3)
    clutter = np.asarray(clutter, dtype=np.float64).reshape(-1, 7)
    return ego, objects, _Clutter(clutter)


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _token(*parts) -> str:
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


class _Tables:
    NAMES = ["category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
             "scene", "sample", "sample_data", "sample_annotation", "map"]

    def __init__(self):
        for n in self.NAMES:
            setattr(self, n, [])

    def write(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        for n in self.NAMES:
            atomic_write_bytes(os.path.join(folder, n + ".json"), json.dumps(getattr(self, n), indent=0).encode())


def _write_map_png(path: str, rng) -> None:
    """A small semantic-prior mask (placeholder: no drivable-area raster)."""
    from PIL import Image

    img = np.zeros((64, 64), dtype=np.uint8)
    img[24:40, :] = 255
    img[:, 24:40] = 255
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path)


def _attribute_of(o: _Object, speed: float) -> Optional[str]:
    cat = o.category
    if cat.startswith("vehicle.bicycle") or cat.startswith("vehicle.motorcycle"):
        return "cycle.with_rider" if o.rider else "cycle.without_rider"
    if cat.startswith("vehicle."):
        if speed > 0.3:
            return "vehicle.moving"
        return "vehicle.parked" if o.parked else "vehicle.stopped"
    if cat.startswith("human.pedestrian"):
        return "pedestrian.moving" if speed > 0.2 else "pedestrian.standing"
    return None


def _physical(boxes7: np.ndarray) -> np.ndarray:
    """Surfaces the lidar sees: the annotated boxes shrunk by the inset on every side."""
    phys = boxes7.copy()
    for k in (3, 4, 5):
        phys[:, k] = np.maximum(boxes7[:, k] - 2 * _PHYSICAL_INSET, 0.6 * boxes7[:, k])
    return phys


def _scene_plan(cfg: SynthConfig):
    """(scene name, split) pairs."""
    names = _split_scene_names(cfg.version)
    tr, va = cfg.splits()
    if names is None:
        train = [f"scene-{9000 + i:04d}" for i in range(cfg.train_scenes)]
        val = [f"scene-{9500 + i:04d}" for i in range(cfg.val_scenes)]
    else:
        train = list(names[0][1][: cfg.train_scenes])
        val = list(names[1][1][: cfg.val_scenes])
    return [(n, tr) for n in train] + [(n, va) for n in val]


def _generate_scene(cfg: SynthConfig, scene_idx: int, scene_name: str, root: str, tables: _Tables,
                    ns: str, start_us: int, stats: dict, progress=None) -> None:
    from nutrack.ops import points_in_boxes_all

    rng = np.random.default_rng([cfg.seed, zlib.crc32(scene_name.encode())])
    S = cfg.sweeps_per_keyframe
    K = cfg.keyframes
    n_frames = K * (S + 1)
    dt = 0.5 / (S + 1)
    t = np.arange(n_frames) * dt
    t = t + np.concatenate([[0.0], rng.normal(0.0, 0.002, size=n_frames - 1)])  # jitter, keeps order
    t = np.maximum.accumulate(t + 1e-4 * np.arange(n_frames))
    is_key = np.zeros(n_frames, dtype=bool)
    is_key[S::S + 1] = True
    ego, objects, clutter = _build_world(rng, cfg, t)
    timestamps = start_us + np.round(t * 1e6).astype(np.int64)

    location = _LOCATIONS[scene_idx % len(_LOCATIONS)]
    log_token = _token(ns, "log", scene_name)
    date = "2018-%02d-%02d" % (1 + scene_idx % 12, 1 + scene_idx % 28)
    logfile = f"n015-{date}-12-00-00+0800" if location.startswith("singapore") else f"n008-{date}-12-00-00-0400"
    logfile = f"{logfile}-{scene_name}"
    tables.log.append({"token": log_token, "logfile": logfile, "vehicle": "n015" if "singapore" in location else "n008",
                       "date_captured": date, "location": location})
    scene_token = _token(ns, "scene", scene_name)
    cs_token = tables.calibrated_sensor[0]["token"]
    sensor_yaw_calib = -math.pi / 2
    lidar_to_ego = transform_matrix(_LIDAR_TRANSLATION, _LIDAR_ROTATION)

    n_obj = len(objects)
    obj_boxes = np.zeros((n_obj, n_frames, 7))
    for i, o in enumerate(objects):
        w, l, h = o.size
        obj_boxes[i, :, 0] = o.x
        obj_boxes[i, :, 1] = o.y
        obj_boxes[i, :, 2] = h / 2
        obj_boxes[i, :, 3] = l
        obj_boxes[i, :, 4] = w
        obj_boxes[i, :, 5] = h
        obj_boxes[i, :, 6] = o.yaw
    intensity_obj = np.array([_INTENSITY[o.category.split(".")[0]] for o in objects] or [0.0])
    phys_clutter = clutter.boxes

    elev = np.deg2rad(np.linspace(_ELEV_RANGE[0], _ELEV_RANGE[1], cfg.beams))
    sin_e, cos_e = np.sin(elev), np.cos(elev)
    n_cols = cfg.azimuth_steps
    n_rays = n_cols * cfg.beams

    # per-instance annotation window: keyframes within annotation range (contiguous span)
    key_idx = np.flatnonzero(is_key)
    inst_tokens = [_token(ns, "instance", scene_name, i) for i in range(n_obj)]
    ann_span = {}
    for i in range(n_obj):
        d = np.hypot(obj_boxes[i, key_idx, 0] - ego[key_idx, 0], obj_boxes[i, key_idx, 1] - ego[key_idx, 1])
        inside = np.flatnonzero(d <= cfg.annotation_range)
        if len(inside):
            ann_span[i] = (int(inside[0]), int(inside[-1]))
    ann_tokens = {(i, k): _token(ns, "ann", scene_name, i, k) for i, (a, b) in ann_span.items() for k in range(a, b + 1)}

    sample_tokens = [_token(ns, "sample", scene_name, k) for k in range(K)]
    sd_tokens = [_token(ns, "sd", scene_name, f) for f in range(n_frames)]
    prev_sd = ""
    for f in range(n_frames):
        ts = int(timestamps[f])
        ex, ey, eyaw = ego[f]
        ego_rot = quaternion_from_yaw(eyaw).tolist()
        ego_tr = [float(ex), float(ey), 0.0]
        ep_token = _token(ns, "ego_pose", scene_name, f)
        tables.ego_pose.append({"token": ep_token, "timestamp": ts, "rotation": ego_rot, "translation": ego_tr})
        ego_to_global = transform_matrix(ego_tr, ego_rot)
        lidar_to_global = ego_to_global @ lidar_to_ego
        origin = lidar_to_global[:3, 3].copy()
        sensor_yaw = float(eyaw) + sensor_yaw_calib

        boxes_now = obj_boxes[:, f, :] if n_obj else np.zeros((0, 7))
        phys = np.concatenate([_physical(boxes_now), phys_clutter], axis=0)
        depth = np.full(n_rays, cfg.max_range)
        hit = np.full(n_rays, -2, dtype=np.int64)
        total = np.zeros(len(phys), dtype=np.int64)
        az0 = rng.uniform(0.0, 2 * math.pi / n_cols)
        _raycast(origin, sensor_yaw, az0, n_cols, sin_e, cos_e, phys, cfg.max_range, 0.0, depth, hit, total)

        keep = hit != -2
        keep &= rng.random(n_rays) > 0.03  # dropouts
        ground = hit == -1
        u = rng.random(n_rays)
        keep &= ~ground | (u < cfg.ground_keep)
        keep &= (hit < n_obj) | (u < cfg.clutter_keep)
        idx = np.flatnonzero(keep)
        col = idx // cfg.beams
        beam = idx % cfg.beams
        phi = sensor_yaw + az0 + col * (2 * math.pi / n_cols)
        rr = depth[idx] + np.clip(rng.normal(0, _RANGE_NOISE, size=len(idx)), -2.5 * _RANGE_NOISE, 2.5 * _RANGE_NOISE)
        dirs = np.stack([cos_e[beam] * np.cos(phi), cos_e[beam] * np.sin(phi), sin_e[beam]], axis=1)
        pts_world = origin + dirs * rr[:, None]
        h_ids = hit[idx]
        inten = np.where(h_ids == -1, 3.0,
                         np.where(h_ids >= n_obj, _INTENSITY["clutter"],
                                  intensity_obj[np.clip(h_ids, 0, max(n_obj - 1, 0))]))
        inten = np.clip(inten + rng.normal(0, 4.0, size=len(idx)), 0, 255)
        # a few spurious returns (dust, rain): random directions and ranges
        n_spur = int(rng.poisson(0.002 * n_rays))
        if n_spur:
            sp_phi = rng.uniform(-math.pi, math.pi, n_spur)
            sp_b = rng.integers(0, cfg.beams, n_spur)
            sp_r = rng.uniform(2.0, cfg.max_range * 0.8, n_spur)
            sp_dirs = np.stack([cos_e[sp_b] * np.cos(sp_phi), cos_e[sp_b] * np.sin(sp_phi), sin_e[sp_b]], axis=1)
            sp = origin + sp_dirs * sp_r[:, None]
            ok = sp[:, 2] > 0.05
            pts_world = np.concatenate([pts_world, sp[ok]])
            inten = np.concatenate([inten, rng.uniform(0, 10, ok.sum())])
            beam = np.concatenate([beam, sp_b[ok]])
        # to the sensor frame, as stored
        global_to_lidar = np.linalg.inv(lidar_to_global)
        pts_s = pts_world @ global_to_lidar[:3, :3].T + global_to_lidar[:3, 3]
        cloud = np.empty((len(pts_s), 5), dtype=np.float32)
        cloud[:, :3] = pts_s
        cloud[:, 3] = inten
        cloud[:, 4] = beam
        stats["points"] += len(cloud)
        stats["clouds"] += 1

        key = bool(is_key[f])
        k = int(np.searchsorted(key_idx, f))  # keyframe this sample_data belongs to (next keyframe)
        k = min(k, K - 1)
        folder = "samples" if key else "sweeps"
        fname = f"{folder}/LIDAR_TOP/{logfile}__LIDAR_TOP__{ts}.pcd.bin"
        fpath = os.path.join(root, fname)
        cloud.tofile(fpath)
        sd = {"token": sd_tokens[f], "sample_token": sample_tokens[k], "ego_pose_token": ep_token,
              "calibrated_sensor_token": cs_token, "timestamp": ts, "fileformat": "pcd", "is_key_frame": key,
              "height": 0, "width": 0, "filename": fname, "prev": prev_sd,
              "next": sd_tokens[f + 1] if f + 1 < n_frames else ""}
        tables.sample_data.append(sd)
        prev_sd = sd_tokens[f]

        if key:
            tables.sample.append({"token": sample_tokens[k], "timestamp": ts, "scene_token": scene_token,
                                  "prev": sample_tokens[k - 1] if k > 0 else "",
                                  "next": sample_tokens[k + 1] if k + 1 < K else ""})
            annotated = [i for i, (a, b) in ann_span.items() if a <= k <= b]
            if annotated:
                ann_boxes = obj_boxes[annotated, f, :].astype(np.float32)
                # count points in the sensor frame, from the points exactly as stored
                boxes_lidar, _ = transform_boxes(ann_boxes, global_to_lidar)
                pairs = np.asarray(points_in_boxes_all(cloud[:, :3], boxes_lidar, sparse=True))
                counts = np.bincount(pairs[:, 1], minlength=len(annotated)) if len(pairs) else np.zeros(len(annotated), np.int64)
            for j, i in enumerate(annotated):
                o = objects[i]
                w, l, h = o.size
                n_pts = int(counts[j])
                vis_total = int(total[i])
                frac = (np.count_nonzero(hit == i) / vis_total) if vis_total else 0.0
                vis = "1" if frac < 0.4 else "2" if frac < 0.6 else "3" if frac < 0.8 else "4"
                attr = _attribute_of(o, float(o.speed[f]))
                a, b = ann_span[i]
                rec = {"token": ann_tokens[(i, k)], "sample_token": sample_tokens[k], "instance_token": inst_tokens[i],
                       "visibility_token": vis,
                       "attribute_tokens": [_token("attribute", attr)] if attr else [],
                       "translation": [float(obj_boxes[i, f, 0]), float(obj_boxes[i, f, 1]), float(h / 2)],
                       "size": [float(w), float(l), float(h)],
                       "rotation": quaternion_from_yaw(float(obj_boxes[i, f, 6])).tolist(),
                       "prev": ann_tokens[(i, k - 1)] if k > a else "",
                       "next": ann_tokens[(i, k + 1)] if k < b else "",
                       "num_lidar_pts": n_pts, "num_radar_pts": 0}
                tables.sample_annotation.append(rec)
                stats["annotations"] += 1
                stats["zero_point"] += n_pts == 0
        if progress is not None:
            progress.update(1)

    cat_token = {name: _token("category", name) for name, _ in _CATEGORIES}
    for i, (a, b) in ann_span.items():
        tables.instance.append({"token": inst_tokens[i], "category_token": cat_token[objects[i].category],
                                "nbr_annotations": b - a + 1, "first_annotation_token": ann_tokens[(i, a)],
                                "last_annotation_token": ann_tokens[(i, b)]})
        stats["instances"] += 1
    tables.scene.append({"token": scene_token, "log_token": log_token, "nbr_samples": K,
                         "first_sample_token": sample_tokens[0], "last_sample_token": sample_tokens[-1],
                         "name": scene_name, "description": f"synthetic nutrack scene (seed {cfg.seed})"})


def generate_dataset(out: str, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> dict:
    """Write a synthetic dataset under ``out`` (the dataroot). Returns statistics.

    ``out`` must not exist or be empty. Written into a temporary sibling folder first and
    renamed into place at the end, so an interrupted run leaves no half dataset behind.
    """
    cfg.validate()
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"{out} exists and is not an empty folder")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".", dir=parent)
    try:
        stats = _generate_into(tmp, cfg, progress)
        if os.path.isdir(out):
            os.rmdir(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def _generate_into(root: str, cfg: SynthConfig, progress: bool) -> dict:
    t0 = time.time()
    ns = f"nutrack-synth-v{GENERATOR_VERSION}/{cfg.version}/{cfg.seed}"
    tables = _Tables()
    for name, desc in _CATEGORIES:
        tables.category.append({"token": _token("category", name), "name": name, "description": desc})
    for name, desc in _ATTRIBUTES:
        tables.attribute.append({"token": _token("attribute", name), "name": name, "description": desc})
    for tok, level, desc in _VISIBILITY:
        tables.visibility.append({"token": tok, "level": level, "description": desc})
    sensor_token = _token("sensor", "LIDAR_TOP")
    tables.sensor.append({"token": sensor_token, "channel": "LIDAR_TOP", "modality": "lidar"})
    tables.calibrated_sensor.append({"token": _token(ns, "calibrated_sensor", "LIDAR_TOP"), "sensor_token": sensor_token,
                                     "translation": list(_LIDAR_TRANSLATION), "rotation": list(_LIDAR_ROTATION),
                                     "camera_intrinsic": []})
    for sub in ("samples/LIDAR_TOP", "sweeps/LIDAR_TOP", "maps"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    plan = _scene_plan(cfg)
    stats = {"scenes": len(plan), "clouds": 0, "points": 0, "annotations": 0, "zero_point": 0, "instances": 0}
    n_frames = len(plan) * cfg.keyframes * (cfg.sweeps_per_keyframe + 1)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_frames, desc="synthetic lidar sweeps", unit="sweep")
    try:
        base_us = 1_533_000_000_000_000 + 1_000_000 * 3600 * cfg.seed
        for i, (name, _split) in enumerate(plan):
            start_us = base_us + i * 3_600_000_000  # an hour apart
            _generate_scene(cfg, i, name, root, tables, ns, start_us, stats, bar)
    finally:
        if bar is not None:
            bar.close()
    rng = np.random.default_rng(cfg.seed)
    for loc in _LOCATIONS:
        logs = [lg["token"] for lg in tables.log if lg["location"] == loc]
        if not logs:
            continue
        mtoken = _token(ns, "map", loc)
        fname = f"maps/{mtoken}.png"
        _write_map_png(os.path.join(root, fname), rng)
        tables.map.append({"token": mtoken, "log_tokens": logs, "category": "semantic_prior", "filename": fname})
    tables.write(os.path.join(root, cfg.version))
    tr, va = cfg.splits()
    if _split_scene_names(cfg.version) is None:
        splits = {tr: [n for n, s in plan if s == tr], va: [n for n, s in plan if s == va]}
        atomic_write_bytes(os.path.join(root, cfg.version, "splits.json"), json.dumps(splits, indent=1).encode())
    stats["seconds"] = round(time.time() - t0, 2)
    return stats


# --------------------------------------------------------------------------------------
# Detection simulator
# --------------------------------------------------------------------------------------


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
    nz = noise
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES))
    for a, b, p in nz.confusion:
        confusion[CLASS_TO_ID[a], CLASS_TO_ID[b]] = p
    for c in range(NUM_CLASSES):
        confusion[c, c] = 1.0 - confusion[c].sum()
    mean_size = np.array([[_SIZE[cat][1], _SIZE[cat][0], _SIZE[cat][2]] for cat in (
        "vehicle.car", "vehicle.truck", "vehicle.bus.rigid", "vehicle.trailer", "human.pedestrian.adult",
        "vehicle.motorcycle", "vehicle.bicycle")])  # dx=l, dy=w, dz=h
    p_max = np.asarray(nz.p_max)
    pts_scale = np.asarray(nz.pts_scale)
    yaw_sig = np.asarray(nz.yaw_sigma)
    flip_p = np.asarray(nz.heading_flip)
    fp_prior = np.asarray(nz.fp_class_prior) / np.sum(nz.fp_class_prior)
    frames: Dict[str, Detections] = {}
    scenes = data.scenes(split, progress=progress)
    for scene in scenes:
        rng = np.random.default_rng([seed, zlib.crc32(scene.name.encode()), 7])
        # persistent false-positive sources near the ego path
        ego_xy = np.array([f.ego_translation[:2] for f in scene.frames])
        n_src = nz.fp_sources_per_scene
        src_idx = rng.integers(0, len(ego_xy), size=n_src)
        src_xy = ego_xy[src_idx] + rng.normal(0, 15.0, size=(n_src, 2))
        src_cls = rng.choice(NUM_CLASSES, size=n_src, p=fp_prior)
        src_yaw = rng.uniform(-math.pi, math.pi, size=n_src)
        src_size = mean_size[src_cls] * np.exp(rng.normal(0, 0.1, size=(n_src, 3)))
        for frame in scene.frames:
            gt = data.ground_truth(frame.sample_token)
            ego = frame.ego_translation
            n = len(gt)
            r = np.hypot(gt.boxes[:, 0] - ego[0], gt.boxes[:, 1] - ego[1]) if n else np.zeros(0)
            pts = gt.num_pts.astype(np.float64)
            c = gt.classes
            p_det = p_max[c] * (1.0 - np.exp(-(pts + nz.pts_bias) / pts_scale[c]))
            p_det *= np.exp(-np.maximum(r - nz.range_free, 0.0) / nz.range_decay)
            det = rng.random(n) < p_det
            idx = np.flatnonzero(det)
            m = len(idx)
            boxes = gt.boxes[idx].astype(np.float64)
            rr = r[idx]
            sig = nz.pos_sigma + nz.pos_sigma_per_m * rr
            sig = sig * np.where(rng.random(m) < nz.outlier_prob, nz.outlier_scale, 1.0)
            boxes[:, 0:2] += rng.normal(0, 1, size=(m, 2)) * sig[:, None]
            boxes[:, 2] += rng.normal(0, nz.z_sigma, size=m)
            boxes[:, 3:6] *= np.exp(rng.normal(0, nz.size_log_sigma, size=(m, 3)))
            cls = c[idx]
            boxes[:, 6] += rng.normal(0, 1, size=m) * (yaw_sig[cls] + nz.yaw_sigma_per_m * rr)
            boxes[:, 6] += np.where(rng.random(m) < flip_p[cls], math.pi, 0.0)
            vel = np.nan_to_num(gt.velocities[idx].astype(np.float64))
            vs = nz.vel_sigma + nz.vel_sigma_per_m * rr
            vs = np.where(rng.random(m) < nz.vel_outlier_prob, nz.vel_outlier_sigma, vs)
            vel += rng.normal(0, 1, size=(m, 2)) * vs[:, None]
            # class confusion
            new_cls = np.array([rng.choice(NUM_CLASSES, p=confusion[k]) for k in cls], dtype=np.int64)
            logit = nz.score_bias + nz.score_pts * np.log1p(pts[idx]) - nz.score_range * rr / 50.0
            logit += rng.normal(0, nz.score_noise, size=m)
            scores = 1.0 / (1.0 + np.exp(-logit))
            scores = np.where(new_cls != cls, scores * nz.confused_score_factor, scores)
            parts = [(boxes, vel, scores, new_cls)]
            # duplicates
            dup = np.flatnonzero(rng.random(m) < nz.duplicate_prob)
            if len(dup):
                db = boxes[dup].copy()
                db[:, 0:2] += rng.normal(0, nz.duplicate_sigma, size=(len(dup), 2))
                ds = scores[dup] * rng.uniform(*nz.duplicate_score, size=len(dup))
                parts.append((db, vel[dup].copy(), ds, new_cls[dup].copy()))
            # random false positives
            n_fp = int(rng.poisson(nz.fp_rate))
            if n_fp:
                fc = rng.choice(NUM_CLASSES, size=n_fp, p=fp_prior)
                rad = nz.fp_range * np.sqrt(rng.random(n_fp))
                ang = rng.uniform(-math.pi, math.pi, n_fp)
                fb = np.zeros((n_fp, 7))
                fb[:, 0] = ego[0] + rad * np.cos(ang)
                fb[:, 1] = ego[1] + rad * np.sin(ang)
                fb[:, 3:6] = mean_size[fc] * np.exp(rng.normal(0, 0.1, size=(n_fp, 3)))
                fb[:, 2] = fb[:, 5] / 2 + rng.normal(0, 0.2, n_fp)
                fb[:, 6] = rng.uniform(-math.pi, math.pi, n_fp)
                hard = rng.random(n_fp) < nz.fp_hard_prob
                fs = np.where(hard, rng.beta(2.0, 3.0, n_fp), rng.beta(*nz.fp_score_beta, n_fp))
                fv = rng.normal(0, 0.8, size=(n_fp, 2))
                parts.append((fb, fv, fs, fc))
            # persistent sources within range
            d_src = np.hypot(src_xy[:, 0] - ego[0], src_xy[:, 1] - ego[1])
            on = np.flatnonzero((d_src < nz.fp_range) & (rng.random(n_src) < nz.fp_source_prob))
            if len(on):
                sb = np.zeros((len(on), 7))
                sb[:, 0:2] = src_xy[on] + rng.normal(0, 0.15, size=(len(on), 2))
                sb[:, 3:6] = src_size[on]
                sb[:, 2] = sb[:, 5] / 2
                sb[:, 6] = src_yaw[on] + rng.normal(0, 0.1, len(on))
                ss = rng.beta(2.0, 5.0, len(on))
                sv = rng.normal(0, 0.3, size=(len(on), 2))
                parts.append((sb, sv, ss, src_cls[on]))
            B = np.concatenate([p[0] for p in parts])
            V = np.concatenate([p[1] for p in parts])
            Sc = np.clip(np.concatenate([p[2] for p in parts]), 1e-4, 1.0)
            C = np.concatenate([p[3] for p in parts]).astype(np.int64)
            B[:, 6] = (B[:, 6] + math.pi) % (2 * math.pi) - math.pi
            order = np.argsort(-Sc, kind="stable")[:500]
            frames[frame.sample_token] = Detections(B[order], V[order], Sc[order], C[order])
    return DetectionSet(frames, dict(DEFAULT_META), "")


# --------------------------------------------------------------------------------------
# The embedded default
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultDataset:
    """Paths of a generated dataset and its simulated detection files.

    ``detections`` maps split name -> detection JSON path (train and val splits)."""

    dataroot: str
    version: str
    train_split: str
    val_split: str
    detections: Dict[str, str]

    @property
    def splits(self) -> Tuple[str, str]:
        return self.train_split, self.val_split


def _write_detection_files(dataroot: str, cfg: SynthConfig, noise: DetectorNoise, det_dir: str,
                           progress: bool) -> Dict[str, str]:
    from ..nuscenes_io import NuScenesData

    data = NuScenesData(dataroot, cfg.version)
    out = {}
    for split in cfg.splits():
        try:
            tokens = data.sample_tokens(split)
        except ValueError:
            continue  # a split with no scenes
        dets = simulate_detections(data, split, noise, seed=cfg.seed, progress=progress)
        path = os.path.join(det_dir, f"{split}.json")
        write_detections(path, dets, tokens)
        out[split] = path
    return out


def build(out: str, cfg: SynthConfig = SynthConfig(), noise: DetectorNoise = DetectorNoise(),
          progress: bool = True) -> DefaultDataset:
    """Generate a dataset under ``out/nuscenes`` and its detection files under
    ``out/detections``; returns the paths. ``out`` must not exist or be empty."""
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"{out} exists and is not an empty folder")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".", dir=parent)
    try:
        dataroot = os.path.join(tmp, "nuscenes")
        os.makedirs(dataroot)
        stats = _generate_into(dataroot, cfg, progress)
        dets = _write_detection_files(dataroot, cfg, noise, os.path.join(tmp, "detections"), progress)
        info = {"generator_version": GENERATOR_VERSION, "config": asdict(cfg), "noise": asdict(noise),
                "stats": stats, "version": cfg.version, "splits": list(cfg.splits()),
                "detections": {k: os.path.relpath(v, tmp) for k, v in dets.items()}}
        atomic_write_bytes(os.path.join(tmp, "COMPLETE.json"), json.dumps(info, indent=1).encode())
        if os.path.isdir(out):
            os.rmdir(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _describe(out)


def _describe(out: str) -> DefaultDataset:
    with open(os.path.join(out, "COMPLETE.json")) as f:
        info = json.load(f)
    tr, va = info["splits"]
    return DefaultDataset(dataroot=os.path.join(out, "nuscenes"), version=info["version"], train_split=tr,
                          val_split=va, detections={k: os.path.join(out, v) for k, v in info["detections"].items()})


def cache_dir() -> str:
    """``$NUTRACK_CACHE``, else ``~/.cache/nutrack``."""
    return os.path.abspath(os.path.expanduser(os.environ.get("NUTRACK_CACHE") or "~/.cache/nutrack"))


def default_dataset(root: Optional[str] = None, cfg: SynthConfig = SynthConfig(),
                    noise: DetectorNoise = DetectorNoise(), progress: bool = True) -> DefaultDataset:
    """The embedded default: generated on first use (under a file lock, so concurrent
    processes such as torchrun ranks generate it once), then reused.

    Args:
        root: cache folder (default :func:`cache_dir`); the dataset goes to
            ``root/synth-g<GENERATOR_VERSION>-<config hash>/``.
        cfg, noise: what to generate; other settings get their own cached folder.
    Returns:
        :class:`DefaultDataset` (dataroot, version, train/val split names, detection files).
    """
    import fcntl

    root = os.path.abspath(os.path.expanduser(root)) if root else cache_dir()
    os.makedirs(root, exist_ok=True)
    key = hashlib.md5(json.dumps([asdict(cfg), asdict(noise)], sort_keys=True).encode()).hexdigest()[:10]
    target = os.path.join(root, f"synth-g{GENERATOR_VERSION}-{key}")
    if os.path.isfile(os.path.join(target, "COMPLETE.json")):
        return _describe(target)
    with open(target + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if os.path.isfile(os.path.join(target, "COMPLETE.json")):
                return _describe(target)
            if os.path.exists(target):  # a leftover without its completion marker
                shutil.rmtree(target)
            if progress:
                print(f"nutrack: generating the synthetic dataset in {target} (once)", file=sys.stderr)
            return build(target, cfg, noise, progress=progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m nutrack.data.synth",
        description="Generate a synthetic nuScenes dataset (tables, LIDAR_TOP sweeps, maps) and simulated "
                    "CenterPoint-like detection files; or, with --simulate, simulate detections for an existing "
                    "dataset.")
    p.add_argument("--out", required=True,
                   help="output folder (must not exist or be empty); with --simulate, the detection JSON to write")
    d = SynthConfig()
    p.add_argument("--version", default=d.version, help="v1.0-mini (mini_train/mini_val), v1.0-trainval (train/val) "
                   "or another name (custom splits synth_train/synth_val in splits.json)")
    p.add_argument("--train-scenes", type=int, default=None, help="scenes in the train split (default 8)")
    p.add_argument("--val-scenes", type=int, default=None, help="scenes in the val split (default 2)")
    p.add_argument("--keyframes", type=int, default=d.keyframes, help="samples per scene (2 Hz)")
    p.add_argument("--sweeps", type=int, default=d.sweeps_per_keyframe, help="lidar sweeps between keyframes")
    p.add_argument("--azimuth-steps", type=int, default=d.azimuth_steps)
    p.add_argument("--density", type=float, default=d.density, help="scales the number of objects")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--tiny", action="store_true", help="a tiny dataset for tests (1+1 scenes, 6 keyframes)")
    p.add_argument("--no-detections", action="store_true", help="do not simulate detection files")
    p.add_argument("--simulate", action="store_true", help="only simulate detections for --dataroot/--split")
    p.add_argument("--dataroot", help="with --simulate: the dataset")
    p.add_argument("--split", help="with --simulate: the split")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    try:
        if a.simulate:
            if not a.dataroot or not a.split:
                p.error("--simulate needs --dataroot, --version and --split")
            from ..nuscenes_io import NuScenesData

            data = NuScenesData(a.dataroot, a.version)
            dets = simulate_detections(data, a.split, seed=a.seed, progress=not a.quiet)
            write_detections(a.out, dets, data.sample_tokens(a.split))
            print(f"wrote {dets.num_boxes} detections for {len(dets)} samples to {a.out}")
            return 0
        base = SynthConfig.tiny() if a.tiny else SynthConfig()
        cfg = replace(base, version=a.version, keyframes=a.keyframes if not a.tiny else base.keyframes,
                      sweeps_per_keyframe=a.sweeps if not a.tiny else base.sweeps_per_keyframe,
                      azimuth_steps=a.azimuth_steps if not a.tiny else base.azimuth_steps,
                      density=a.density if not a.tiny else base.density, seed=a.seed)
        if a.train_scenes is not None:
            cfg = replace(cfg, train_scenes=a.train_scenes)
        if a.val_scenes is not None:
            cfg = replace(cfg, val_scenes=a.val_scenes)
        t0 = time.time()
        if a.no_detections:
            stats = generate_dataset(a.out, cfg, progress=not a.quiet)
            print(json.dumps(stats))
            print(f"dataroot {os.path.abspath(a.out)}  version {cfg.version}  splits {' '.join(cfg.splits())}")
        else:
            ds = build(a.out, cfg, progress=not a.quiet)
            print(f"dataroot {ds.dataroot}  version {ds.version}  splits {ds.train_split} {ds.val_split}")
            for split, path in ds.detections.items():
                print(f"detections[{split}] {path}")
        print(f"done in {time.time() - t0:.1f} s")
        return 0
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
