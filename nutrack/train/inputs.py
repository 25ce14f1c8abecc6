"""What a run trains and validates on: the dataset, its detections labelled with their
ground-truth instances, and the frame pairs of each split (see
:mod:`nutrack.model.training_data`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np

from nutrack.data import NuScenesData, load_detections
from nutrack.model.training_data import FrameRecord, build_frames, frame_pairs
from nutrack.train.config import TrainConfig
from nutrack.train.errors import TrainingError

__all__ = ["TrainingInputs", "load_inputs"]


@dataclass(frozen=True)
class TrainingInputs:
    data: NuScenesData
    val_detections: Dict[str, Any]  # {sample_token: Detections} of the val split, for tracking it
    train_scenes: List[List[FrameRecord]]
    val_scenes: List[List[FrameRecord]]
    train_pairs: np.ndarray  # (S, 3) scene, earlier frame, later frame (gaps 1..max_gap)
    val_pairs: np.ndarray  # the same with gap 1 only


def load_inputs(config: TrainConfig, progress: bool) -> TrainingInputs:
    """Read, label and pair both splits; a :class:`TrainingError` for data that cannot be
    trained on (a malformed detection file, a split without frame pairs)."""
    try:
        data = NuScenesData(config.dataroot, config.version)
        train_dets = load_detections(config.train_detections, data, config.train_split)
        val_dets = load_detections(config.val_detections, data, config.val_split)
        frames = dict(nsweeps=config.nsweeps, max_points=config.max_points)
        train_scenes = build_frames(data, config.train_split, train_dets, progress=progress, **frames)
        val_scenes = build_frames(data, config.val_split, val_dets, **frames)
    except (ValueError, FileNotFoundError) as e:
        raise TrainingError(str(e)) from e
    inputs = TrainingInputs(data, val_dets, train_scenes, val_scenes,
                            frame_pairs(train_scenes, config.max_gap), frame_pairs(val_scenes, 1))
    if len(inputs.train_pairs) == 0:
        raise TrainingError(f"split {config.train_split!r} has no pair of frames with detections to train on")
    return inputs
