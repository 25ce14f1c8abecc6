"""The seven nuScenes tracking classes as small integers, and the category mapping.

The mapping from nuScenes category names to tracking classes is the devkit's
(``nuscenes.eval.tracking.utils.category_to_tracking_name``); a test holds the two equal.
Detection files may also carry the three detection-only classes (``construction_vehicle``,
``traffic_cone``, ``barrier``): they are valid detection names, but not tracking classes.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

#: The tracking classes, in nutrack's integer order: ``TRACKING_CLASSES[k]`` is class ``k``.
TRACKING_CLASSES: Tuple[str, ...] = (
    "car",
    "truck",
    "bus",
    "trailer",
    "pedestrian",
    "motorcycle",
    "bicycle",
)
NUM_CLASSES = len(TRACKING_CLASSES)

#: Name -> integer class.
CLASS_TO_ID: Dict[str, int] = {name: i for i, name in enumerate(TRACKING_CLASSES)}

#: The ten nuScenes detection classes (what a detection-submission file may name).
DETECTION_CLASSES: Tuple[str, ...] = (
    "car",
    "truck",
    "bus",
    "trailer",
    "construction_vehicle",
    "pedestrian",
    "motorcycle",
    "bicycle",
    "traffic_cone",
    "barrier",
)

#: nuScenes category name -> tracking class name (the devkit's mapping, verbatim in content).
CATEGORY_TO_TRACKING: Dict[str, str] = {
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
}

#: Evaluation range per class in metres (ego distance in BEV), as in the devkit's
#: ``tracking_nips_2019`` configuration.
CLASS_RANGE: Dict[str, float] = {
    "car": 50.0,
    "truck": 50.0,
    "bus": 50.0,
    "trailer": 50.0,
    "pedestrian": 40.0,
    "motorcycle": 40.0,
    "bicycle": 40.0,
}

#: ``CLASS_RANGE`` as an array indexed by integer class.
CLASS_RANGE_ARRAY = np.array([CLASS_RANGE[c] for c in TRACKING_CLASSES], dtype=np.float64)


def class_id(name: str) -> int:
    """Integer class of a tracking class name; ``ValueError`` for anything else."""
    try:
        return CLASS_TO_ID[name]
    except KeyError:
        raise ValueError(
            f"unknown tracking class {name!r}; expected one of {', '.join(TRACKING_CLASSES)}"
        ) from None


def class_name(cid: int) -> str:
    """Tracking class name of an integer class; ``ValueError`` when out of range."""
    i = int(cid)
    if not 0 <= i < NUM_CLASSES:
        raise ValueError(f"class id {cid} out of range 0..{NUM_CLASSES - 1}")
    return TRACKING_CLASSES[i]


def category_to_tracking_name(category: str) -> Optional[str]:
    """Tracking class name of a nuScenes category name, or ``None`` if it is not tracked."""
    return CATEGORY_TO_TRACKING.get(category)


def category_to_class(category: str) -> int:
    """Integer tracking class of a nuScenes category name, or -1 if it is not tracked."""
    name = CATEGORY_TO_TRACKING.get(category)
    return -1 if name is None else CLASS_TO_ID[name]
