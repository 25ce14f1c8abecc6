"""python -m nutrack.tune — fit the filter tracker's parameters to a detector with Optuna.

    python -m nutrack.tune --dataroot D --version V --split S --detections det.json \\
        --trials N --study sqlite:///study.db --out params.json [--workers K]

With no ``--dataroot``: the embedded synthetic dataset's TRAIN split and its simulated
detections. The objective is the devkit's AMOTA (``nutrack.tune.devkit``); see docs/tuning.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from nutrack._cli import UserError, check_writable_file, run_main

PROG = "python -m nutrack.tune"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Tune the filter tracker's parameters on a split you name (never val by default): "
                               "Optuna TPE with pruning, the devkit's AMOTA as the objective, a resumable study.")
    p.add_argument("--dataroot", help="nuScenes folder holding <version>/ (default: the embedded synthetic dataset)")
    p.add_argument("--version", help="dataset version (required with --dataroot)")
    p.add_argument("--split", help="split to tune on: a held-out part of train, or a splits.json split (required "
                                   "with --dataroot; default for the embedded dataset: its train split)")
    p.add_argument("--detections", help="detection-submission JSON covering the split (it may cover more samples)")
    p.add_argument("--trials", type=int, default=40, help="finished trials the study should hold (default: 40)")
    p.add_argument("--study", default="sqlite:///nutrack-tune.db",
                   help="Optuna storage URL; SQLite file by default; postgresql:// or mysql:// URLs share one "
                        "study between machines (default: sqlite:///nutrack-tune.db)")
    p.add_argument("--study-name", default=None, help="study name in the storage (default: from the split)")
    p.add_argument("--out", default="params.json", help="params file to write (default: params.json)")
    p.add_argument("--workers", type=int, default=1, help="processes running trials in parallel (default: 1)")
    p.add_argument("--eval-workers", type=int, default=1,
                   help="processes evaluating one trial's classes in parallel (default: 1; on a machine with "
                        "more cores than --workers, e.g. 16 cores: --workers 4 --eval-workers 4)")
    p.add_argument("--params", help="start from this params file instead of the defaults")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a starting parameter (repeatable); see docs/tracking.md")
    p.add_argument("--shared", action="store_true",
                   help="one value per parameter for all classes (fewer dimensions, for small budgets)")
    p.add_argument("--prune-fraction", type=float, default=0.25,
                   help="share of the scenes a trial is scored on first, to prune hopeless ones (0: no pruning)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (worker k uses seed + 1000 k)")
    return p


def _target(a):
    from nutrack.tune.objective import TuneTarget, warn_if_val

    if a.dataroot is None:
        from nutrack.data.synth import default_dataset

        ds = default_dataset(progress=True)
        split = a.split or ds.train_split
        detections = a.detections or ds.detections.get(split)
        if detections is None:
            raise UserError(f"the embedded dataset has no detections for split {split!r}; pass --detections")
        target = TuneTarget(ds.dataroot, ds.version, split, detections)
    else:
        missing = [f"--{n}" for n in ("version", "split", "detections") if getattr(a, n) is None]
        if missing:
            raise UserError(f"--dataroot needs {', '.join(missing)} as well")
        if not os.path.isdir(a.dataroot):
            raise UserError(f"--dataroot {a.dataroot!r} is not a folder")
        target = TuneTarget(a.dataroot, a.version, a.split, a.detections)
    if not os.path.isfile(target.detections):
        raise UserError(f"detection file {target.detections!r} does not exist")
    warn_if_val(target.split)
    return target


def _check_args(a) -> None:
    if a.trials < 1:
        raise UserError(f"--trials must be >= 1, got {a.trials}")
    if not 1 <= a.workers <= (os.cpu_count() or 1) * 4:
        raise UserError(f"--workers must be in [1, {(os.cpu_count() or 1) * 4}], got {a.workers}")
    if not 1 <= a.eval_workers <= 7:
        raise UserError(f"--eval-workers must be in [1, 7] (one per tracking class at most), got {a.eval_workers}")
    if not 0.0 <= a.prune_fraction < 1.0:
        raise UserError(f"--prune-fraction must be in [0, 1), got {a.prune_fraction}")
    check_writable_file(a.out, "--out")
    if a.study.startswith("sqlite:///"):
        check_writable_file(a.study[len("sqlite:///"):], "--study")


def _base_params(a):
    from nutrack.tracking.params import FilterParams, parse_overrides
    from nutrack.tracking.params_file import read_params_file

    base = read_params_file(a.params, FilterParams()) if a.params else FilterParams()
    try:
        return base.with_overrides(parse_overrides(a.param))
    except ValueError as error:
        raise UserError(str(error)) from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError('nutrack.tune needs Optuna: pip install -e ".[tune]"') from None
    from nutrack.tune import tune

    _check_args(a)
    target = _target(a)
    result = tune(target, storage=a.study, out=a.out, trials=a.trials, workers=a.workers,
                  base_params=_base_params(a), per_class=not a.shared, prune_fraction=a.prune_fraction,
                  seed=a.seed, study_name=a.study_name, eval_workers=a.eval_workers)
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run_main(PROG, main))
