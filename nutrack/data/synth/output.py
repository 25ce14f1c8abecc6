"""Writing a generated dataset: one write-then-rename for every output folder, and the
``COMPLETE.json`` manifest (configuration, statistics, each file's size) that marks a
:func:`build` output whole.

The folder is filled under a hidden sibling ``.<name>.partial-XXXXXXXX`` and renamed into
place at the end, so an interrupted run never leaves a half dataset under the target name
(a SIGKILLed one leaves the hidden folder; the cache removes those, see :mod:`.cache`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional, Tuple, TypeVar

from nutrack._cli import UserError, check_writable_dir
from nutrack._io import atomic_write_bytes, fsync_dir

from .config import DetectorNoise, SynthConfig, SynthError
from .fingerprint import generator_fingerprint
from .scenes import generate_into

__all__ = ["DefaultDataset", "build", "generate_dataset", "describe", "damage", "check_output_folder", "write_then_rename",
           "COMPLETE", "PARTIAL"]

COMPLETE = "COMPLETE.json"
PARTIAL = ".partial-"  # in the name of every folder being written: ".<target>.partial-XXXXXXXX"

T = TypeVar("T")


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


def check_output_folder(out: str, what: str = "output folder") -> str:
    """``out`` (absolute) if it can become the output: absent or an empty folder, under a
    folder we may write in. Raises :class:`SynthError` otherwise; creates nothing."""
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise SynthError(f"{out} exists and is not an empty folder")
    try:
        check_writable_dir(os.path.dirname(out), what)
    except UserError as e:  # as a SynthError: API callers catch ValueError, as they always could
        raise SynthError(str(e)) from None
    return out


def write_then_rename(out: str, fill: Callable[[str], T]) -> T:
    """``fill(tmp)`` writes the output into a hidden sibling folder ``tmp``, which is then
    renamed to ``out``; on any error (or Ctrl-C) the sibling is removed and ``out`` untouched.
    ``out`` must not exist or be an empty folder (checked before any work)."""
    out = check_output_folder(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + PARTIAL, dir=parent)
    try:
        result = fill(tmp)
        if os.path.isdir(out):
            os.rmdir(out)  # the empty folder the caller may have made
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(parent)
    return result


def generate_dataset(out: str, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> dict:
    """Write a synthetic dataset under ``out`` (the dataroot). Returns statistics.

    ``out`` must not exist or be empty. Written into a temporary sibling folder first and
    renamed into place at the end, so an interrupted run leaves no half dataset behind.
    """
    cfg.validate()
    return write_then_rename(out, lambda tmp: generate_into(tmp, cfg, progress))


def build(out: str, cfg: SynthConfig = SynthConfig(), noise: DetectorNoise = DetectorNoise(),
          progress: bool = True) -> DefaultDataset:
    """Generate a dataset under ``out/nuscenes`` and its detection files under
    ``out/detections``, then ``out/COMPLETE.json``; returns the paths. ``out`` must not exist
    or be empty."""
    cfg.validate()

    def fill(tmp: str) -> None:
        dataroot = os.path.join(tmp, "nuscenes")
        os.makedirs(dataroot)
        stats = generate_into(dataroot, cfg, progress)
        dets = _write_detection_files(dataroot, cfg, noise, os.path.join(tmp, "detections"), progress)
        info = {"generator": generator_fingerprint(), "config": asdict(cfg), "noise": asdict(noise), "stats": stats,
                "version": cfg.version, "splits": list(cfg.splits()),
                "detections": {k: os.path.relpath(v, tmp) for k, v in dets.items()},
                # sizes, checked when the cache opens the folder: a truncated or lost file is
                # found without reading the 200 MB of clouds
                "files": _file_sizes(tmp)}
        atomic_write_bytes(os.path.join(tmp, COMPLETE), json.dumps(info, indent=1).encode())

    write_then_rename(out, fill)
    return describe(out)


def _write_detection_files(dataroot: str, cfg: SynthConfig, noise: DetectorNoise, det_dir: str,
                           progress: bool) -> Dict[str, str]:
    from ..writers import write_detections
    from ..nuscenes_io import NuScenesData
    from .simulator import simulate_detections

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


def _file_sizes(folder: str) -> Dict[str, int]:
    sizes = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            sizes[os.path.relpath(path, folder)] = os.path.getsize(path)
    return sizes


def describe(out: str) -> DefaultDataset:
    """The paths of a :func:`build` output, from its COMPLETE.json."""
    with open(os.path.join(out, COMPLETE)) as f:
        info = json.load(f)
    tr, va = info["splits"]
    return DefaultDataset(dataroot=os.path.join(out, "nuscenes"), version=info["version"], train_split=tr,
                          val_split=va, detections={k: os.path.join(out, v) for k, v in info["detections"].items()})


def damage(out: str) -> Optional[str]:
    """What is wrong with a :func:`build` output, or None when it is whole: COMPLETE.json
    missing or unreadable, or a file it lists missing or of another size than recorded."""
    try:
        with open(os.path.join(out, COMPLETE)) as f:
            info = json.load(f)
        files = info["files"]
        describe(out)
    except FileNotFoundError:
        return f"{COMPLETE} is missing"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{COMPLETE} is unreadable ({type(e).__name__}: {e})"
    for rel, size in files.items():
        try:
            actual = os.path.getsize(os.path.join(out, rel))
        except OSError:
            return f"{rel} is missing"
        if actual != size:
            return f"{rel} has {actual} bytes, {size} expected"
    return None
