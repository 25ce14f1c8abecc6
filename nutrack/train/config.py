"""The configuration of a training run: parsed once, checked once, never mutated.

:class:`TrainConfig` is frozen. The steps that complete it (the resolved data paths, the run
directory, the number of processes, the settings a resumed run keeps) each return a new
config with :func:`dataclasses.replace`; what is written to ``config.json`` and into every
checkpoint is :meth:`TrainConfig.to_dict`.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

from nutrack.train.errors import TrainingError

__all__ = ["TrainConfig", "FROZEN_KEYS", "DATA_KEYS", "resolve_data"]

#: what resuming must find unchanged in the saved config
FROZEN_KEYS = ("dataroot", "version", "train_split", "val_split", "train_detections", "val_detections",
               "batch_size", "lr", "weight_decay", "seed", "nsample_q", "max_gap", "nsweeps", "max_points",
               "normalization", "no_points", "hidden", "alpha", "gamma", "grad_clip", "data_seed", "no_confidence",
               "history")
#: the dataset of a run, resolved from the options or the embedded default
DATA_KEYS = ("dataroot", "version", "train_split", "val_split", "train_detections", "val_detections")


@dataclass(frozen=True)
class TrainConfig:
    """Every option of ``python -m nutrack.train`` (see :func:`nutrack.train.cli.build_parser`
    and docs/training.md), plus the number of processes."""

    # data
    dataroot: Optional[str] = None
    version: Optional[str] = None
    train_split: Optional[str] = None
    val_split: Optional[str] = None
    train_detections: Optional[str] = None
    val_detections: Optional[str] = None
    nsweeps: int = 1
    data_seed: int = 0
    frame_cache: Optional[str] = None  # folder of prepared frames; None: $NUTRACK_CACHE/frames; "off"
    # training
    epochs: int = 6
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    nsample_q: int = 24
    max_gap: int = 3
    device: str = "auto"
    seed: int = 0
    threads: int = 1
    output: Optional[str] = None
    checkpoint_every: int = 50
    eval_every: int = 1
    # model
    normalization: str = "sigmoid"
    no_points: bool = False
    hidden: int = 64
    max_points: int = 32
    alpha: float = 0.25
    gamma: float = 2.0
    no_confidence: bool = False
    history: int = 4
    # output
    no_baselines: bool = False
    params: Optional[str] = None
    eval_workers: int = 1
    quiet: bool = False
    tiny: bool = False
    world_size: int = 1

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raise :class:`TrainingError` naming every option out of range."""
        from nutrack.model.training_data import MIN_NSAMPLE_Q

        if self.nsample_q < MIN_NSAMPLE_Q:
            raise TrainingError(f"--nsample-q must be >= {MIN_NSAMPLE_Q} (queries per frame pair), "
                                f"got {self.nsample_q}")
        checks = [("epochs", self.epochs >= 1), ("batch-size", self.batch_size >= 1),
                  ("lr", self.lr > 0 and math.isfinite(self.lr)), ("max-gap", self.max_gap >= 1),
                  ("nsweeps", self.nsweeps >= 1), ("max-points", self.max_points >= 1),
                  ("hidden", self.hidden >= 1), ("gamma", self.gamma >= 0 and math.isfinite(self.gamma)),
                  ("alpha", math.isfinite(self.alpha)),
                  ("weight-decay", self.weight_decay >= 0 and math.isfinite(self.weight_decay)),
                  ("checkpoint-every", self.checkpoint_every >= 0), ("eval-every", self.eval_every >= 0),
                  ("grad-clip", self.grad_clip >= 0 and math.isfinite(self.grad_clip)),
                  ("threads", self.threads >= 1), ("history", self.history >= 1), ("eval-workers", 1 <= self.eval_workers <= 64)]
        bad = [n for n, ok in checks if not ok]
        if bad:
            raise TrainingError("invalid " + ", ".join(f"--{n} {getattr(self, n.replace('-', '_'))}" for n in bad))
        if self.params is not None:
            from nutrack.tracking.run import tracker_params

            tracker_params("learned", self.params)  # a UserError naming the file when it is unusable


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_data(config: TrainConfig, generate_default) -> Dict[str, str]:
    """dataroot / version / splits / detection files, from the options or, without
    ``--dataroot``, the embedded dataset that ``generate_default()`` returns."""
    if config.dataroot is None:
        given = [_option(n) for n in ("version", "train_detections", "val_detections") if getattr(config, n)]
        if given:
            raise TrainingError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --dataroot "
                                f"(without it the embedded dataset is used)")
        ds = generate_default()
        train_split = config.train_split or ds.train_split
        val_split = config.val_split or ds.val_split
        for s in (train_split, val_split):
            if s not in ds.detections:
                raise TrainingError(f"the embedded dataset has no detections for split {s!r} "
                                    f"(it has {', '.join(sorted(ds.detections))})")
        return dict(dataroot=ds.dataroot, version=ds.version, train_split=train_split, val_split=val_split,
                    train_detections=ds.detections[train_split], val_detections=ds.detections[val_split])
    if config.data_seed != 0:
        raise TrainingError("--data-seed picks the embedded dataset's generator seed; it has no meaning with --dataroot")
    if config.version is None:
        raise TrainingError("--dataroot needs --version")
    mini = config.version.endswith("mini")
    missing = [_option(n) for n in ("train_detections", "val_detections") if getattr(config, n) is None]
    if missing:
        raise TrainingError(f"--dataroot needs {' and '.join(missing)} (detection-submission JSON files)")
    for n in ("train_detections", "val_detections"):
        if not os.path.isfile(getattr(config, n)):
            raise TrainingError(f"{_option(n)} {getattr(config, n)!r} does not exist")
    return dict(dataroot=os.path.abspath(config.dataroot), version=config.version,
                train_split=config.train_split or ("mini_train" if mini else "train"),
                val_split=config.val_split or ("mini_val" if mini else "val"),
                train_detections=os.path.abspath(config.train_detections),
                val_detections=os.path.abspath(config.val_detections))
