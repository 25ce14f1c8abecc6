"""What to generate (:class:`SynthConfig`) and how the simulated detector errs (:class:`DetectorNoise`)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Optional, Sequence, Tuple

from nutrack._cli import UserError

__all__ = ["SynthConfig", "DetectorNoise", "SynthError", "split_scene_names"]


class SynthError(UserError, ValueError):
    """A configuration or output folder the generator cannot use. A :class:`UserError` (the
    command line reports it in one line) and a ValueError (what the Python API has always
    raised for bad settings). ``field`` names the setting at fault, where there is one."""

    def __init__(self, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.field = field


def split_scene_names(version: str) -> Optional[Tuple[Tuple[str, Sequence[str]], Tuple[str, Sequence[str]]]]:
    """``((train split, its scene names), (val split, its scene names))`` of the devkit's named
    splits for ``version``, or None for a version with custom splits (``splits.json``)."""
    from nuscenes.utils import splits as S

    if version.endswith("mini"):
        return ("mini_train", S.mini_train), ("mini_val", S.mini_val)
    if version.endswith("trainval"):
        return ("train", S.train), ("val", S.val)
    return None


# the lowest value of each integer setting the generator can work with
_AT_LEAST = {"train_scenes": 0, "val_scenes": 0, "keyframes": 2, "sweeps_per_keyframe": 0, "beams": 1,
             "azimuth_steps": 8}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. The defaults are the embedded default dataset.

    version: ``v1.0-trainval`` (named splits ``train``/``val``; the default, so that the val
        split can hold more than mini's 2 scenes) or ``v1.0-mini`` (``mini_train``/``mini_val``,
        at most 8 + 2 scenes; :meth:`tiny`); any other version name writes a ``splits.json``
        with custom splits ``synth_train``/``synth_val``.
    train_scenes, val_scenes: number of scenes per split (mini has at most 8 and 2). The
        default's 4 val scenes (160 samples) keep the no-argument ``python -m nutrack.train``
        under 5 minutes on 2 cores; the AMOTA spread over generator seeds is in docs/data.md.
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

    version: str = "v1.0-trainval"
    train_scenes: int = 8
    val_scenes: int = 4
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
        """A few-second dataset for unit tests: v1.0-mini, one scene per split, 6 keyframes, 1 sweep."""
        base = dict(version="v1.0-mini", train_scenes=1, val_scenes=1, keyframes=6, sweeps_per_keyframe=1,
                    azimuth_steps=360, density=0.6)
        base.update(overrides)
        return cls(**base)

    def validate(self) -> None:
        """Raise :class:`SynthError` naming the first setting the generator cannot use."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise SynthError(f"{f.name} must be an integer, got {value!r}", field=f.name)
            if f.type == "float" and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                     or not math.isfinite(value)):
                raise SynthError(f"{f.name} must be a finite number, got {value!r}", field=f.name)
        for name, lowest in _AT_LEAST.items():
            if getattr(self, name) < lowest:
                raise SynthError(f"{name} must be >= {lowest}, got {getattr(self, name)}", field=name)
        if self.train_scenes + self.val_scenes == 0:
            raise SynthError("train_scenes and val_scenes must not both be 0", field="train_scenes")
        for name in ("ground_keep", "clutter_keep"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SynthError(f"{name} must be in [0, 1], got {getattr(self, name)}", field=name)
        for name in ("max_range", "annotation_range", "density"):
            if getattr(self, name) <= 0:
                raise SynthError(f"{name} must be positive, got {getattr(self, name)}", field=name)
        self._check_named_splits()

    def _check_named_splits(self) -> None:
        """The devkit's named splits are fixed lists of scene names: asking for more scenes
        than a list holds must fail (slicing it gave fewer scenes than asked, silently)."""
        names = split_scene_names(self.version)
        if names is None:
            return
        (tr, trn), (va, van) = names
        if self.train_scenes > len(trn) or self.val_scenes > len(van):
            n_trainval = len(split_scene_names("v1.0-trainval")[0][1])
            more = ("a custom version name" if self.version == "v1.0-trainval" else
                    f"version v1.0-trainval ({n_trainval} train scenes) or a custom version name")
            raise SynthError(f"{self.version} has at most {len(trn)} {tr} and {len(van)} {va} scenes "
                             f"(asked for {self.train_scenes} and {self.val_scenes}); for more, use {more}",
                             field="train_scenes" if self.train_scenes > len(trn) else "val_scenes")

    def splits(self) -> Tuple[str, str]:
        names = split_scene_names(self.version)
        if names is None:
            return "synth_train", "synth_val"
        return names[0][0], names[1][0]


@dataclass(frozen=True)
class DetectorNoise:
    """Parameters of the CenterPoint-like detection simulator, calibrated so that the embedded
    val split scores like real CenterPoint on nuScenes val (the table in docs/data.md gives
    each figure, real and synthetic, and the knobs behind it).

    Per-class tuples follow :data:`nutrack.data.classes.DETECTION_CLASSES` (car, truck, bus,
    trailer, construction_vehicle, pedestrian, motorcycle, bicycle, traffic_cone, barrier).
    ``r`` is the BEV distance to the ego in metres, ``pts`` the annotation's lidar point
    count (few when far or occluded), ``v`` the object's speed in m/s."""

    # recall: p_max * (1 - exp(-(pts + pts_bias) / pts_scale)) * exp(-max(r - range_free, 0) / range_decay)
    p_max: Tuple[float, ...] = (0.98, 0.95, 0.97, 0.76, 0.80, 0.98, 0.93, 0.70, 0.97, 0.95)
    pts_scale: Tuple[float, ...] = (2.0, 3.5, 5.0, 7.0, 14.0, 1.0, 2.5, 3.5, 1.5, 2.0)
    pts_bias: float = 0.4
    range_free: float = 25.0
    range_decay: float = 110.0
    # misses inside tracks: a detected object drops out for a run of frames (mean miss_run_frames),
    # starting with probability miss_run_prob[class] in each frame
    miss_run_prob: Tuple[float, ...] = (0.025, 0.05, 0.06, 0.05, 0.05, 0.04, 0.05, 0.06, 0.02, 0.02)
    miss_run_frames: float = 3.0
    # localisation (per axis): sigma = pos_sigma[class] * (1 + pos_sigma_per_m * r), outliers x outlier_scale
    pos_sigma: Tuple[float, ...] = (0.11, 0.22, 0.22, 0.32, 0.45, 0.09, 0.13, 0.13, 0.07, 0.10)
    pos_sigma_per_m: float = 0.012
    z_sigma: float = 0.10
    outlier_prob: float = 0.03
    outlier_scale: float = 4.0
    # size: multiplicative exp(N(0, size_log_sigma[class])) per extent
    size_log_sigma: Tuple[float, ...] = (0.075, 0.095, 0.09, 0.10, 0.23, 0.14, 0.125, 0.13, 0.17, 0.14)
    # heading: N(0, yaw_sigma[class] + yaw_sigma_per_m * r), and 180-degree flips
    yaw_sigma: Tuple[float, ...] = (0.06, 0.08, 0.05, 0.20, 0.45, 0.25, 0.12, 0.28, 0.0, 0.08)
    yaw_sigma_per_m: float = 0.002
    heading_flip: Tuple[float, ...] = (0.03, 0.05, 0.02, 0.10, 0.20, 0.08, 0.04, 0.09, 0.0, 0.0)
    # velocity (per axis), heavy-tailed: (vel_sigma + vel_sigma_speed * v + vel_sigma_per_m * r) * t(vel_df)
    vel_sigma: Tuple[float, ...] = (0.10, 0.10, 0.12, 0.10, 0.06, 0.12, 0.15, 0.10, 0.0, 0.0)
    vel_sigma_speed: float = 0.018
    vel_sigma_per_m: float = 0.001
    vel_df: float = 4.0
    # the position, heading and velocity errors of an object persist from frame to frame:
    # AR(1) with this correlation per keyframe (0: independent draws)
    error_corr: float = 0.0
    # attributes: the probability that a detection's attribute is not the object's
    attr_error: Tuple[float, ...] = (0.19, 0.22, 0.25, 0.14, 0.32, 0.10, 0.28, 0.03, 0.0, 0.0)
    # class confusion: (true, predicted, probability)
    confusion: Tuple[Tuple[str, str, float], ...] = (
        ("car", "truck", 0.03), ("truck", "car", 0.08), ("truck", "construction_vehicle", 0.03),
        ("bus", "truck", 0.06), ("trailer", "truck", 0.08), ("construction_vehicle", "truck", 0.15),
        ("bicycle", "motorcycle", 0.10), ("motorcycle", "bicycle", 0.08), ("barrier", "traffic_cone", 0.01),
    )
    # scores: sigmoid(score_bias[class] + score_pts * log1p(pts) - score_range * r / 50 + N(0, score_noise))
    score_bias: Tuple[float, ...] = (-0.2, -0.8, -0.5, -0.9, -1.4, -0.3, -0.8, -1.5, -0.4, -0.6)
    score_pts: float = 0.65
    score_range: float = 0.8
    score_noise: float = 1.0
    confused_score_factor: float = 0.6
    # duplicates: a second box near a true positive, scored x U(duplicate_score)
    duplicate_prob: float = 0.06
    duplicate_sigma: float = 0.6
    duplicate_score: Tuple[float, float] = (0.1, 0.5)
    # false positives near real objects: another class's box on the object
    near_fp_prob: float = 0.05
    near_fp_score: Tuple[float, float] = (0.05, 0.45)
    # false positives in clutter: Poisson per frame within fp_range, plus persistent sources
    fp_rate: float = 12.5
    fp_range: float = 55.0
    fp_score_beta: Tuple[float, float] = (1.2, 9.0)
    fp_hard_prob: float = 0.06      # FPs scored like true ones: Beta(2, 3)
    fp_sources_per_scene: int = 12  # static clutter detected again and again (ghost tracks)
    fp_source_prob: float = 0.6
    fp_class_prior: Tuple[float, ...] = (0.18, 0.10, 0.02, 0.03, 0.03, 0.13, 0.04, 0.03, 0.08, 0.08)
