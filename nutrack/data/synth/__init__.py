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

The modules, one job each:

* :mod:`.config` — :class:`SynthConfig` (what to generate), :class:`DetectorNoise`
* :mod:`.constants` — nuScenes' categories, attributes, sizes; the lidar's mounting
* :mod:`.world` — one scene's road, ego motion, objects and clutter
* :mod:`.raycast` — the numba ray caster; :mod:`.lidar` — one sweep's points from it
* :mod:`.tables` — the nuScenes JSON tables and their tokens
* :mod:`.scenes` — world -> sweeps -> records, scene after scene
* :mod:`.simulator` — :func:`simulate_detections`
* :mod:`.output` — :func:`build` and :func:`generate_dataset` (one write-then-rename,
  COMPLETE.json with every file's size)
* :mod:`.fingerprint` — the hash of the generator's source the cache keys on
* :mod:`.cache` — :func:`default_dataset`: cache folder, lock, stale-folder cleanup, checks
* :mod:`.cli` — ``python -m nutrack.data.synth``
"""

from __future__ import annotations

from .cache import cache_dir, default_dataset
from .cli import main
from .config import DetectorNoise, SynthConfig, SynthError
from .constants import CATEGORIES as _CATEGORIES  # noqa: F401 - imported by tests/test_data_boxes.py
from .fingerprint import generator_fingerprint
from .output import DefaultDataset, build, generate_dataset
from .simulator import simulate_detections

__all__ = [
    "SynthConfig",
    "DetectorNoise",
    "SynthError",
    "DefaultDataset",
    "build",
    "generate_dataset",
    "simulate_detections",
    "default_dataset",
    "cache_dir",
    "generator_fingerprint",
    "main",
]
