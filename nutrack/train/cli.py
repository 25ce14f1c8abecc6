"""The command line of ``python -m nutrack.train``: options, the ``[train]`` extra, exit codes.

Importable without torch, so that a missing ``[train]`` extra is one line, not a traceback.
Exit codes: 0 done (or nothing left to do), 2 a user error (one line on stderr, see
:mod:`nutrack._cli`), 3 the loss became non-finite.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Optional, Sequence

from nutrack._cli import ArgumentParser, UserError, run_main
from nutrack.train.config import TrainConfig
from nutrack.train.errors import NonFiniteLossError

__all__ = ["build_parser", "main"]

PROG = "nutrack.train"
#: what the [train] extra of pyproject.toml installs (import names)
TRAIN_EXTRA = ("torch", "tensorboard")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()  # the defaults live in one place
    p = ArgumentParser(  # argparse's errors in one line too
        prog="python -m nutrack.train",
        description="Train nutrack's learned association network (focal loss over (track, detection) pairs), "
                    "then track the val split with it and compare with the filter and centerpoint trackers. "
                    "With no arguments: the embedded synthetic dataset (generated once, cached).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data (default: the embedded synthetic dataset)")
    g.add_argument("--dataroot", help="nuScenes dataroot (real or synthetic)")
    g.add_argument("--version", help="nuScenes version, e.g. v1.0-trainval")
    g.add_argument("--train-split", help="training split (default: train, or mini_train for a mini version)")
    g.add_argument("--val-split", help="validation split (default: val, or mini_val)")
    g.add_argument("--train-detections", help="detection-submission JSON of the training split")
    g.add_argument("--val-detections", help="detection-submission JSON of the val split")
    g.add_argument("--frame-cache", metavar="DIR",
                   help="where the prepared training frames are kept and reused by later runs and every process "
                        "(default: $NUTRACK_CACHE/frames, else ~/.cache/nutrack/frames; 'off': prepare them in memory "
                        "every run)")
    g.add_argument("--nsweeps", type=int, default=d.nsweeps, help="lidar sweeps per keyframe for the point features")
    g.add_argument("--data-seed", type=int, default=d.data_seed,
                   help="generator seed of the embedded dataset (without --dataroot): another seed, another dataset")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="frame pairs per step (per process)")
    t.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, cosine decay)")
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--grad-clip", type=float, default=d.grad_clip, help="gradient norm clip (0: off)")
    t.add_argument("--nsample-q", type=int, default=d.nsample_q,
                   help="query objects (tracks) sampled per frame pair (>= 2)")
    t.add_argument("--max-gap", type=int, default=d.max_gap, help="frame pairs span 1..MAX_GAP keyframes")
    t.add_argument("--device", default=d.device, help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--threads", type=int, default=d.threads,
                   help="torch CPU threads per process (the network's tensors are small: more threads cost "
                        "more than they gain, badly so on a busy machine)")
    t.add_argument("--output", "-o", help="run directory (default: runs/train-<date>-<time>)")
    t.add_argument("--resume", nargs="?", const="", default=None, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="resume from the last checkpoint of --output (or of the given run directory or "
                        "checkpoint file); a run with all its epochs done and evaluated is left as it is")
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="also write the last checkpoint every N steps inside an epoch (0: epoch ends only)")
    t.add_argument("--eval-every", type=int, default=d.eval_every,
                   help="track the val split and compute AMOTA every N epochs (0: only at the end)")
    m = p.add_argument_group("model")
    m.add_argument("--normalization", choices=("sigmoid", "softmax"), default=d.normalization,
                   help="pair scores: sigmoid per pair, or softmax over each track's candidates + no-match")
    m.add_argument("--no-points", action="store_true", help="ablation: no point-cloud features")
    m.add_argument("--hidden", type=int, default=d.hidden, help="feature width")
    m.add_argument("--max-points", type=int, default=d.max_points, help="points per object fed to the PointNet")
    m.add_argument("--alpha", type=float, default=d.alpha, help="focal loss alpha (sigmoid; < 0: off)")
    m.add_argument("--gamma", type=float, default=d.gamma, help="focal loss gamma")
    m.add_argument("--no-confidence", action="store_true",
                   help="ablation: no track-confidence head (the tracker reports its own scores)")
    m.add_argument("--history", type=int, default=d.history,
                   help="output frames of each track the confidence head sees (the current one included)")
    o = p.add_argument_group("output")
    o.add_argument("--no-baselines", action="store_true", help="do not run filter / centerpoint for comparison")
    o.add_argument("--params", metavar="FILE",
                   help="tracker parameters (a params file of python -m nutrack.tune) for the learned tracker's life "
                        "cycle and thresholds, and for the filter baseline, so that both compare on the same footing")
    o.add_argument("--eval-workers", type=int, default=d.eval_workers,
                   help="processes evaluating the devkit's classes in parallel (nutrack.eval --workers)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    # hidden: a tiny embedded dataset and run (tests)
    p.add_argument("--tiny", action="store_true", default=os.environ.get("NUTRACK_TRAIN_TINY") == "1",
                   help=argparse.SUPPRESS)
    return p


def require_train_extra() -> None:
    """Raise a :class:`UserError` saying how to install the ``[train]`` extra when torch or
    tensorboard cannot be imported."""
    for name in TRAIN_EXTRA:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"training needs the [train] extra ({', '.join(TRAIN_EXTRA)}): "
                            f"pip install -e \".[train]\" (cannot import {name}: {e})") from None


def _main(argv: Optional[Sequence[str]], step_hooks=()) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    require_train_extra()
    from nutrack.train.dist import shutdown
    from nutrack.train.pipeline import train

    try:
        train(TrainConfig.from_args(args), resume=args.resume, step_hooks=step_hooks)
    except NonFiniteLossError as e:  # the run went wrong, not its input: its own exit code
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 3
    finally:
        shutdown()
    return 0


def main(argv: Optional[Sequence[str]] = None, step_hooks=()) -> int:
    """``python -m nutrack.train``. ``step_hooks`` (callables taking the
    :class:`~nutrack.train.trainer.Trainer`) run after every training step."""
    return run_main(PROG, lambda a: _main(a, step_hooks), argv)
