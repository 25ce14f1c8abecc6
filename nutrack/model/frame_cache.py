"""Prepared training frames cached on disk: one ``.npz`` file a scene, reused by every epoch,
every later run and every process of a ``torchrun`` job.

Preparing a frame (labelling its detections with the devkit's matching rule, reading its lidar
sweeps, gathering each detection's points) costs far more than a training step spends on it,
and it gives the same arrays every time. So it is done once per scene: the first run writes
``<scene>.npz`` into a folder named by everything the arrays depend on (:func:`cache_key`), and
every later run, and every other rank of a distributed run, reads it back instead.

What the key covers: the dataset (its folder, version and the size and modification time of
the tables the frames are read from), the detection file (path, size, modification time), the
preparation settings (``nsweeps``, ``max_points``) and the source of the code that prepares
the frames. Rewriting lidar files in place without touching the tables is not detected:
``--frame-cache off`` (or deleting the folder) forces a rebuild.

A file is written atomically (:mod:`nutrack._io`), so a killed run leaves no half-written
scene; one that fails to read back (damaged disk, a foreign file) counts as missing and is
prepared again. Instance ids are numbered from 0 in each scene: the labels only compare ids
of the same scene (an instance never leaves its scene).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from typing import Dict, List, Optional

import numpy as np

from nutrack._io import atomic_write_with
from nutrack.data.synth.fingerprint import source_fingerprint
from nutrack.model.features import ObjectInputs
from nutrack.model.training_data import FrameRecord

__all__ = ["FrameCache", "cache_key", "FORMAT"]

#: bump when the file layout changes
FORMAT = "nutrack-frames/1"

#: the tables a frame's labels, poses and lidar paths come from
_TABLES = ("scene", "sample", "sample_data", "sample_annotation", "instance", "category", "ego_pose",
           "calibrated_sensor")
_OBJECT_FIELDS = ObjectInputs.__slots__


def _identity(path: str) -> list:
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


@functools.lru_cache(maxsize=None)
def _code_digest() -> str:
    """The source of the code that decides a prepared frame's arrays: nutrack/data (labels,
    poses, lidar, detection reading) and nutrack/model (features, this layout)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return "".join(source_fingerprint(os.path.join(package, d)) for d in ("data", "model"))


def cache_key(dataroot: str, version: str, detections: str, nsweeps: int, max_points: int) -> str:
    """The folder name of the prepared frames of ``detections`` (a detection file) on the
    dataset ``dataroot``/``version`` with these settings."""
    tables = [os.path.join(dataroot, version, t + ".json") for t in _TABLES]
    ident = {"format": FORMAT, "dataroot": os.path.realpath(dataroot), "version": version,
             "tables": [_identity(t) for t in tables if os.path.exists(t)],
             "detections": _identity(detections), "nsweeps": int(nsweeps), "max_points": int(max_points),
             "code": _code_digest()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def _pack(records: List[FrameRecord]) -> Dict[str, np.ndarray]:
    arrays = {f: np.concatenate([getattr(r.objects, f) for r in records]) for f in _OBJECT_FIELDS}
    arrays.update(
        counts=np.array([len(r) for r in records], np.int64),
        gt_ids=np.concatenate([r.gt_ids for r in records]).astype(np.int64),
        index=np.array([r.index for r in records], np.int64),
        timestamp=np.array([r.timestamp for r in records], np.float64),
        sample_token=np.array([r.sample_token for r in records], dtype=str),
        scene=np.array(records[0].scene if records else "", dtype=str),
        format=np.array(FORMAT))
    return arrays


def _unpack(z) -> List[FrameRecord]:
    if str(z["format"]) != FORMAT:
        raise ValueError("another format")
    counts = z["counts"]
    cuts = np.cumsum(counts)[:-1]
    fields = [np.split(z[f], cuts) for f in _OBJECT_FIELDS]
    gt_ids = np.split(z["gt_ids"], cuts)
    if any(len(a) != len(counts) for a in fields) or sum(map(len, gt_ids)) != counts.sum():
        raise ValueError("inconsistent arrays")
    scene, index, timestamp, tokens = str(z["scene"]), z["index"], z["timestamp"], z["sample_token"]
    return [FrameRecord(scene, int(index[i]), str(tokens[i]), float(timestamp[i]),
                        ObjectInputs(*(f[i] for f in fields)), gt_ids[i]) for i in range(len(counts))]


class FrameCache:
    """The prepared frames of one detection file (one :func:`cache_key`), a file a scene."""

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)

    def path(self, scene: str) -> str:
        return os.path.join(self.folder, scene + ".npz")

    def has(self, scene: str) -> bool:
        return os.path.isfile(self.path(scene))

    def write(self, scene: str, records: List[FrameRecord]) -> None:
        if not records:  # a scene without samples: nothing to prepare, nothing to keep
            return
        arrays = _pack(records)
        atomic_write_with(self.path(scene), lambda f: np.savez(f, **arrays))

    def read(self, scene: str) -> Optional[List[FrameRecord]]:
        """The scene's frames, or None when its file is missing or cannot be read back."""
        try:
            with np.load(self.path(scene), allow_pickle=False) as z:
                records = _unpack(z)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        return records if all(r.scene == scene for r in records) else None
