"""What a run trains and validates on: the dataset, its detections labelled with their
ground-truth instances, and the frame pairs of each split (see
:mod:`nutrack.model.training_data`)."""
from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from nutrack._cli import check_writable_dir
from nutrack.data import NuScenesData, load_detections
from nutrack.data.synth.cache import cache_dir
from nutrack.model.frame_cache import FrameCache, cache_key
from nutrack.model.training_data import FrameRecord, build_scene_frames, frame_pairs
from nutrack.train.config import TrainConfig
from nutrack.train.dist import Dist, any_process
from nutrack.train.errors import TrainingError

__all__ = ["TrainingInputs", "load_inputs", "frame_cache_for"]


@dataclass(frozen=True)
class TrainingInputs:
    data: NuScenesData
    val_detections: Dict[str, Any]  # {sample_token: Detections} of the val split, for tracking it
    train_scenes: List[List[FrameRecord]]
    val_scenes: List[List[FrameRecord]]
    train_pairs: np.ndarray  # (S, 3) scene, earlier frame, later frame (gaps 1..max_gap)
    val_pairs: np.ndarray  # the same with gap 1 only


def load_inputs(config: TrainConfig, progress: bool, dist: Dist = Dist()) -> TrainingInputs:
    """Read, label and pair both splits; a :class:`TrainingError` for data that cannot be
    trained on (a malformed detection file, a split without frame pairs).

    The prepared frames come from the frame cache (:mod:`nutrack.model.frame_cache`) where it
    holds them; the scenes it lacks are prepared once, shared out over the processes of a
    distributed run, and written to it."""
    try:
        data = NuScenesData(config.dataroot, config.version)
        train_scenes, _ = _prepared_split(config, data, "train", dist, progress)
        val_scenes, val_dets = _prepared_split(config, data, "val", dist, progress)
    except (ValueError, FileNotFoundError) as e:
        raise TrainingError(str(e)) from e
    inputs = TrainingInputs(data, val_dets, train_scenes, val_scenes,
                            frame_pairs(train_scenes, config.max_gap), frame_pairs(val_scenes, 1))
    if len(inputs.train_pairs) == 0:
        raise TrainingError(f"split {config.train_split!r} has no pair of frames with detections to train on")
    return inputs


def frame_cache_for(config: TrainConfig, detections: str) -> Optional[FrameCache]:
    """The frame cache of ``detections`` under the run's settings; None with ``--frame-cache off``."""
    if config.frame_cache == "off":
        return None
    root = check_writable_dir(config.frame_cache or os.path.join(cache_dir(), "frames"), "--frame-cache")
    key = cache_key(config.dataroot, config.version, detections, config.nsweeps, config.max_points)
    return FrameCache(os.path.join(root, key))


def _prepared_split(config: TrainConfig, data: NuScenesData, which: str, dist: Dist, progress: bool
                    ) -> Tuple[List[List[FrameRecord]], Optional[Dict[str, Any]]]:
    """The prepared frames of the train or val split, and its detections when they were read
    (always for val, which is tracked; train's only when some scene had to be prepared)."""
    split, path = getattr(config, which + "_split"), getattr(config, which + "_detections")
    names = data.split_scene_names(split)
    cache = frame_cache_for(config, path)
    dets = load_detections(path, data, split) if cache is None or which == "val" else None
    if cache is None:
        return [_prepare(data, name, dets, config) for name in names], dets
    missing = [n for n in names if not cache.has(n)]
    if missing and dets is None:  # every rank reads the file, so a malformed one fails them all alike
        dets = load_detections(path, data, split)
    mine = missing[dist.rank::dist.world]
    failure = None
    try:
        for name in tqdm(mine, desc=f"preparing frames ({split})", unit="scene", disable=not progress or not mine):
            cache.write(name, _prepare(data, name, dets, config))
    except (ValueError, FileNotFoundError, OSError) as e:
        failure = e
    _raise_if_any_failed(failure, dist)
    scenes = []
    for name in names:
        recs = cache.read(name)
        if recs is None:  # damaged, or gone since: prepare it here
            dets = dets if dets is not None else load_detections(path, data, split)
            recs = _prepare(data, name, dets, config)
            cache.write(name, recs)
        scenes.append(recs)
    return scenes, dets


def _prepare(data: NuScenesData, name: str, dets, config: TrainConfig) -> List[FrameRecord]:
    return build_scene_frames(data, data.scene(name, dets), config.nsweeps, config.max_points)


def _raise_if_any_failed(failure: Optional[BaseException], dist: Dist) -> None:
    """After each process prepared its share: its own error, or one saying another process
    failed (rather than waiting forever for it)."""
    failed = any_process(failure is not None, dist)
    if failure is not None:
        raise failure
    if failed:
        raise TrainingError("another process of this run failed preparing the training frames (see its error)")
