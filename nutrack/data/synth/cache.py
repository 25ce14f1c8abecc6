"""The embedded default dataset: generated once into the cache, then reused.

Cache layout, under ``$NUTRACK_CACHE`` (else ``~/.cache/nutrack``):

* ``synth-<generator>-<config>/`` — a :func:`.output.build` output. ``<generator>`` is a
  hash of the generator's source (every ``.py`` file of ``nutrack/data/``, this package and
  the data layer it writes through) and of numpy's version (its random streams), so editing
  the generator regenerates the data without anyone bumping a constant; ``<config>`` is a
  hash of the :class:`SynthConfig` and :class:`DetectorNoise`.
* ``synth-<generator>-<config>.lock`` — the (empty) lock file of that folder, kept: it is
  what concurrent processes (torchrun ranks) ``flock`` so that one of them generates.
  Deleting it is harmless while nothing generates.
* ``.synth-<generator>-<config>.partial-XXXXXXXX/`` — a generation in progress. Ones left by
  a killed process are removed by the next generation in the same cache (a folder is stale
  when its target's lock is free).

A cached folder is trusted when its COMPLETE.json lists every file with its size and the
sizes match; otherwise it is regenerated, with a message naming the damaged file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from typing import Iterator, Optional

from .config import DetectorNoise, SynthConfig
from .fingerprint import generator_fingerprint
from .output import PARTIAL, DefaultDataset, build, damage, describe

__all__ = ["default_dataset", "cache_dir", "cache_folder"]

_PREFIX = "synth-"


def cache_dir() -> str:
    """``$NUTRACK_CACHE``, else ``~/.cache/nutrack``."""
    return os.path.abspath(os.path.expanduser(os.environ.get("NUTRACK_CACHE") or "~/.cache/nutrack"))


def cache_folder(root: str, cfg: SynthConfig, noise: DetectorNoise) -> str:
    """Where the dataset of ``cfg`` and ``noise`` lives in the cache ``root``."""
    settings = hashlib.md5(json.dumps([asdict(cfg), asdict(noise)], sort_keys=True).encode()).hexdigest()
    return os.path.join(root, f"{_PREFIX}{generator_fingerprint()[:10]}-{settings[:10]}")


def default_dataset(root: Optional[str] = None, cfg: SynthConfig = SynthConfig(),
                    noise: DetectorNoise = DetectorNoise(), progress: bool = True) -> DefaultDataset:
    """The embedded default: generated on first use (under a file lock, so concurrent
    processes such as torchrun ranks generate it once), then reused.

    Args:
        root: cache folder (default :func:`cache_dir`); the dataset goes to
            ``root/synth-<generator hash>-<settings hash>/``.
        cfg, noise: what to generate; other settings get their own cached folder.
    Returns:
        :class:`DefaultDataset` (dataroot, version, train/val split names, detection files).
    """
    cfg.validate()  # before creating anything in the cache
    root = os.path.abspath(os.path.expanduser(root)) if root else cache_dir()
    os.makedirs(root, exist_ok=True)
    target = cache_folder(root, cfg, noise)
    if damage(target) is None:  # the common case: no lock needed to read a finished folder
        return describe(target)
    with _locked(target + ".lock"):
        _remove_stale_partials(root, own_target=target)
        problem = damage(target)
        if problem is None:  # another process generated it while we waited
            return describe(target)
        if os.path.exists(target):
            print(f"nutrack: the cached dataset {target} is damaged ({problem}); regenerating it", file=sys.stderr)
            _remove_folder(target)
        if progress:
            print(f"nutrack: generating the synthetic dataset in {target} (once)", file=sys.stderr)
        return build(target, cfg, noise, progress=progress)


@contextlib.contextmanager
def _locked(lock_path: str) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _held_if_free(lock_path: str) -> Iterator[bool]:
    """Take ``lock_path`` if nobody holds it (yields True, releases on exit), else yield False.
    A missing lock file: nobody holds it."""
    try:
        lock = open(lock_path, "r")
    except FileNotFoundError:
        yield True
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale_partials(root: str, own_target: str) -> None:
    """Remove the hidden folders that killed generations left in the cache: those of our own
    target (we hold its lock, so nobody is writing them) and those of other targets whose lock
    is free. Also catches the ``.synth-g1-<key>.XXXXXXXX`` folders of older nutrack versions,
    which used the same lock files."""
    own = os.path.basename(own_target)
    for name in os.listdir(root):
        if not name.startswith("." + _PREFIX):
            continue
        path = os.path.join(root, name)
        target_name = name[1:].split(".", 1)[0]  # target names hold no dots
        if not os.path.isdir(path) or name == "." + target_name:
            continue
        if target_name == own:
            shutil.rmtree(path, ignore_errors=True)
            continue
        with _held_if_free(os.path.join(root, target_name + ".lock")) as free:
            if free:
                shutil.rmtree(path, ignore_errors=True)


def _remove_folder(path: str) -> None:
    """Rename ``path`` to a hidden partial name first, so that a crash halfway through the
    removal leaves only a folder the next generation cleans up."""
    doomed = tempfile.mkdtemp(prefix="." + os.path.basename(path) + PARTIAL + "damaged-", dir=os.path.dirname(path))
    os.rename(path, os.path.join(doomed, "old"))
    shutil.rmtree(doomed, ignore_errors=True)
