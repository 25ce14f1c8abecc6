"""Train the learned association network: ``python -m nutrack.train``.

With no arguments it generates (once, cached) the embedded synthetic dataset and its
simulated detections, trains, tracks the val split with the trained model and prints the
devkit's metrics next to the ``filter`` and ``centerpoint`` methods on the same detections.

Multi-GPU: ``torchrun --nproc_per_node N -m nutrack.train ...`` (DistributedDataParallel; NCCL
on GPUs, gloo without them). See docs/training.md for the options and the run directory.

Modules, in the order a run uses them:

* :mod:`~nutrack.train.cli` — the options, the ``[train]`` extra check, exit codes (no torch);
* :mod:`~nutrack.train.config` — :class:`TrainConfig`, frozen once parsed;
* :mod:`~nutrack.train.dist` — torch.distributed: rank, device, collectives;
* :mod:`~nutrack.train.rundir` — a new run directory, or the one being resumed;
* :mod:`~nutrack.train.inputs` — the labelled frames and frame pairs of both splits;
* :mod:`~nutrack.train.trainer` — :class:`~nutrack.train.trainer.Trainer` over a
  :class:`~nutrack.train.trainer.TrainState`;
* :mod:`~nutrack.train.checkpoints` — atomic checkpoints, RNG states;
* :mod:`~nutrack.train.evaluation` — val loss and threshold, tracking val, the comparison;
* :mod:`~nutrack.train.pipeline` — :func:`~nutrack.train.pipeline.train`, a whole run.
"""
from nutrack.train.cli import build_parser, main
from nutrack.train.config import TrainConfig
from nutrack.train.errors import NonFiniteLossError, TrainingError

__all__ = ["main", "build_parser", "TrainConfig", "TrainingError", "NonFiniteLossError"]
