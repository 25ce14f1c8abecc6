"""The run directory of a training run: a new one, checked before any work, or the one of the
checkpoint being resumed, with the settings that run was started with."""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Dict, NamedTuple, Optional

from nutrack._cli import UserError, check_writable_dir
from nutrack.train.config import DATA_KEYS, FROZEN_KEYS, TrainConfig, resolve_data
from nutrack.train.dist import Dist, barrier, broadcast_obj
from nutrack.train.errors import TrainingError

__all__ = ["new_run", "resumed_run", "Resumed", "LAST", "BEST", "METRICS"]

LAST, BEST, METRICS = "last.pt", "best.pt", "metrics.json"


class Resumed(NamedTuple):
    """A run being resumed: its config (the saved settings that define it), the checkpoint
    and the file it was read from."""

    config: TrainConfig
    checkpoint: Dict[str, Any]
    path: str


def _embedded_dataset(config: TrainConfig, dist: Dist, progress: bool):
    """The embedded synthetic dataset, generated (once, cached) by rank 0 while the others wait."""
    from nutrack.data.synth import SynthConfig, default_dataset

    cfg = SynthConfig.tiny(train_scenes=2) if config.tiny else SynthConfig()
    cfg = dataclasses.replace(cfg, seed=config.data_seed)
    ds = default_dataset(cfg=cfg, progress=progress) if dist.main else None
    barrier(dist)
    return ds if ds is not None else default_dataset(cfg=cfg, progress=False)


def _new_run_problem(run_dir: str) -> Optional[str]:
    try:
        check_writable_dir(run_dir, "--output")
    except UserError as e:
        return str(e)
    if os.path.isfile(os.path.join(run_dir, LAST)):
        return f"{run_dir} already holds a run; pass --resume to continue it or choose another --output"
    return None


def new_run(config: TrainConfig, dist: Dist, progress: bool) -> TrainConfig:
    """The config of a new run: its run directory (checked writable and free before the data
    is touched) and its dataset resolved."""
    run_dir = os.path.abspath(config.output or os.path.join("runs", time.strftime("train-%Y%m%d-%H%M%S")))
    problem = _new_run_problem(run_dir) if dist.main else None
    run_dir, problem = broadcast_obj((run_dir, problem), dist)  # every process stops, or none
    if problem:
        raise TrainingError(problem)
    data = resolve_data(config, lambda: _embedded_dataset(config, dist, progress))
    return config.replace(**data, output=run_dir, world_size=dist.world)


def resumed_run(config: TrainConfig, target: str, dist: Dist) -> Resumed:
    """The run being resumed from ``target`` (a run directory or a checkpoint file). Settings that define the run come from its saved config; giving one
    of them a new value on the command line is an error."""
    from nutrack.model.checkpoint import model_from_checkpoint
    from nutrack.train.checkpoints import read_training_checkpoint

    target = target or config.output
    if not target:
        raise TrainingError("--resume needs a run directory: --resume RUN_DIR, or --output RUN_DIR --resume")
    ck_path = os.path.join(target, LAST) if os.path.isdir(target) else target
    if not os.path.isfile(ck_path):
        raise TrainingError(f"--resume: no checkpoint at {ck_path}")
    ck = read_training_checkpoint(ck_path)
    model_from_checkpoint(ck, ck_path, "--resume")  # weights that fit their network, before any work
    run_dir = check_writable_dir(os.path.dirname(os.path.abspath(ck_path)), "--resume")
    saved = ck["config"]
    if not isinstance(saved, dict) or any(k not in saved for k in DATA_KEYS):
        raise TrainingError(f"--resume {ck_path!r}: the checkpoint's saved config lacks the dataset")
    defaults = TrainConfig()
    changed = [k for k in FROZEN_KEYS if k in saved and getattr(config, k) != getattr(defaults, k)
               and getattr(config, k) != saved[k]]
    if changed:
        raise TrainingError("--resume: these settings differ from the run being resumed: "
                            + ", ".join(f"{k} ({saved[k]!r} -> {getattr(config, k)!r})" for k in changed))
    kept = {k: saved[k] for k in (*FROZEN_KEYS, "tiny") if k in saved}
    return Resumed(config.replace(**kept, output=run_dir, world_size=dist.world), ck, ck_path)
