"""``python -m nutrack.data.synth``: generate a dataset (and its detection files), or simulate
detections for an existing dataset. Every setting and the output path are checked before
any work; a mistake ends in one line on stderr and exit code 2 (:func:`nutrack._cli.run_main`)."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from typing import Optional, Sequence

from nutrack._cli import UserError, check_writable_file, run_main

from .config import SynthConfig, SynthError
from .output import build, check_output_folder, generate_dataset

__all__ = ["main", "build_parser"]

PROG = "python -m nutrack.data.synth"

# option -> SynthConfig field, for the options that override the (default or --tiny) base
_CONFIG_OPTIONS = {"train_scenes": "train_scenes", "val_scenes": "val_scenes", "keyframes": "keyframes",
                   "sweeps": "sweeps_per_keyframe", "azimuth_steps": "azimuth_steps", "density": "density",
                   "seed": "seed", "version": "version"}


def build_parser() -> argparse.ArgumentParser:
    d, t = SynthConfig(), SynthConfig.tiny()
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Generate a synthetic nuScenes dataset (tables, LIDAR_TOP sweeps, maps) and simulated "
                    "CenterPoint-like detection files; or, with --simulate, simulate detections for an existing "
                    "dataset.")
    p.add_argument("--out", required=True,
                   help="output folder (must not exist or be empty); with --simulate, the detection JSON to write")
    p.add_argument("--version", default=None, help=f"{d.version} (default: train/val), v1.0-mini (--tiny's; "
                   "mini_train/mini_val, at most 8 + 2 scenes) or another name (custom splits synth_train/synth_val "
                   "in splits.json)")
    # None = not given: the base configuration's value (the default's, or --tiny's)
    p.add_argument("--train-scenes", type=int, help=f"scenes in the train split (default {d.train_scenes})")
    p.add_argument("--val-scenes", type=int, help=f"scenes in the val split (default {d.val_scenes})")
    p.add_argument("--keyframes", type=int, help=f"samples per scene, 2 Hz (default {d.keyframes}; --tiny: "
                                                 f"{t.keyframes})")
    p.add_argument("--sweeps", type=int, help=f"lidar sweeps between keyframes (default {d.sweeps_per_keyframe}; "
                                              f"--tiny: {t.sweeps_per_keyframe})")
    p.add_argument("--azimuth-steps", type=int, help=f"lidar rays per beam and sweep (default {d.azimuth_steps}; "
                                                     f"--tiny: {t.azimuth_steps})")
    p.add_argument("--density", type=float, help=f"scales the number of objects (default {d.density}; --tiny: "
                                                 f"{t.density})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--tiny", action="store_true",
                   help="a tiny dataset for tests (1+1 scenes, 6 keyframes, 1 sweep); the options above override it")
    p.add_argument("--no-detections", action="store_true", help="do not simulate detection files")
    p.add_argument("--simulate", action="store_true", help="only simulate detections for --dataroot/--split")
    p.add_argument("--dataroot", help="with --simulate: the dataset")
    p.add_argument("--split", help="with --simulate: the split")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def config_from_args(a: argparse.Namespace) -> SynthConfig:
    """The base configuration (default or --tiny) with every option given on the command
    line applied, validated."""
    base = SynthConfig.tiny() if a.tiny else SynthConfig()
    given = {field: getattr(a, opt) for opt, field in _CONFIG_OPTIONS.items() if getattr(a, opt) is not None}
    cfg = replace(base, **given)
    try:
        cfg.validate()
    except SynthError as e:
        option = next((opt for opt, field in _CONFIG_OPTIONS.items() if field == e.field), None)
        if option is None:
            raise
        raise SynthError(f"--{option.replace('_', '-')}: {e}", field=e.field) from None
    return cfg


def _simulate(a: argparse.Namespace) -> int:
    from ..writers import write_detections
    from ..nuscenes_io import NuScenesData
    from .simulator import simulate_detections

    if not a.dataroot or not a.split:
        raise UserError("--simulate needs --dataroot, --version and --split")
    out = check_writable_file(a.out, "--out")
    try:
        data = NuScenesData(a.dataroot, a.version or SynthConfig().version)
        tokens = data.sample_tokens(a.split)
    except ValueError as e:  # the dataset or split the user named cannot be opened
        raise UserError(str(e)) from None
    dets = simulate_detections(data, a.split, seed=a.seed, progress=not a.quiet)
    write_detections(out, dets, tokens)
    print(f"wrote {dets.num_boxes} detections for {len(dets)} samples to {out}")
    return 0


def _generate(a: argparse.Namespace) -> int:
    cfg = config_from_args(a)
    out = check_output_folder(a.out, "--out")
    t0 = time.time()
    if a.no_detections:
        stats = generate_dataset(out, cfg, progress=not a.quiet)
        print(json.dumps(stats))
        print(f"dataroot {os.path.abspath(out)}  version {cfg.version}  splits {' '.join(cfg.splits())}")
    else:
        ds = build(out, cfg, progress=not a.quiet)
        print(f"dataroot {ds.dataroot}  version {ds.version}  splits {ds.train_split} {ds.val_split}")
        for split, path in ds.detections.items():
            print(f"detections[{split}] {path}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


def _main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    return _simulate(a) if a.simulate else _generate(a)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns the exit code (2, with one line on stderr, for a user error)."""
    return run_main(PROG, _main, argv)
