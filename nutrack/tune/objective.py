"""One tuning trial: parameters -> track the split -> the devkit's AMOTA.

The split's scenes, their detections and the devkit's ground truth are loaded once per
process (:class:`TuningData`); a trial then only tracks (fast: thousands of frames/s) and
evaluates. Cheap early stopping: a trial is first scored on a fixed subset of the split's
scenes and pruned there when the pruner judges it hopeless; only the survivors pay for the
full evaluation.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from nutrack._cli import UserError
from nutrack.data.classes import TRACKING_CLASSES
from nutrack.tracking.params import METRICS_DISTANCE, FilterParams
from nutrack.tracking.search_space import sample_overrides

__all__ = ["TuneTarget", "TuningData", "Objective", "track_and_score"]

VAL_NAMES = ("val", "mini_val")


@dataclass(frozen=True)
class TuneTarget:
    """What a study tunes on: a dataset, one of its splits and a detection file."""

    dataroot: str
    version: str
    split: str
    detections: str


class TuningData:
    """A split's scenes with their detections, and the devkit's session for scoring them."""

    def __init__(self, target: TuneTarget, say=print, eval_workers: int = 1) -> None:
        from nutrack.data import NuScenesData, load_detections
        from nutrack.tune.devkit import DevkitSession

        self.target, self.eval_workers = target, eval_workers
        self.data = NuScenesData(target.dataroot, target.version)
        try:
            self.tokens = self.data.sample_tokens(target.split)
        except ValueError as error:
            raise UserError(str(error)) from None
        # The file may cover more samples than the split (a whole train file for a custom
        # split of train): read it against the whole dataset, then keep the split's samples.
        detections = load_detections(target.detections, self.data)
        missing = [t for t in self.tokens if t not in detections]
        if missing:
            raise UserError(f"{target.detections}: {len(missing)} of the {len(self.tokens)} samples of split "
                            f"{target.split!r} have no entry (e.g. {missing[0]})")
        say(f"nutrack.tune: {len(self.tokens)} samples of split {target.split!r} "
            f"({len(detections)} in the detection file)")
        self.scenes = list(self.data.scenes(target.split, detections))
        self.session = DevkitSession(target.dataroot, target.version, target.split, nusc=self.data.nusc)

    def subset(self, fraction: float) -> List[str]:
        """Every k-th scene's token (spread over the split, the same for every trial)."""
        n = len(self.scenes)
        k = max(1, round(1.0 / fraction)) if fraction > 0 else n + 1
        return [s.token for s in self.scenes[::k]] if k <= n else []


def _amota(summary: Dict[str, Any]) -> float:
    value = summary.get("amota")
    return float(value) if value is not None and math.isfinite(value) else 0.0


def class_amotas(summary: Dict[str, Any]) -> Dict[str, float]:
    per = summary.get("label_metrics", {}).get("amota", {})
    return {c: float(per[c]) for c in TRACKING_CLASSES
            if per.get(c) is not None and math.isfinite(per[c])}


def track_and_score(data: TuningData, params: FilterParams, path: str,
                    scene_tokens: Optional[Sequence[str]] = None,
                    backend: str = "auto") -> Dict[str, Any]:
    """Track the split with ``params``, write the result to ``path``, return the devkit's
    summary over ``scene_tokens`` (default: every scene)."""
    from nutrack.data import write_tracking_results
    from nutrack.tracking import FilterTracker, track_scenes

    run = track_scenes(FilterTracker(params, backend=backend), data.scenes, progress=False)
    write_tracking_results(path, run.results, data.tokens, keep_top=True)
    return data.session.score(path, scene_tokens, workers=data.eval_workers)


class Objective:
    """The Optuna objective: maximise the devkit's AMOTA of ``base.with_overrides(trial)``."""

    def __init__(self, data: TuningData, base: FilterParams, workdir: str, *, per_class: bool = True,
                 prune_fraction: float = 0.25) -> None:
        for name in ("metric", "metric2"):
            if getattr(base, name) in METRICS_DISTANCE:
                raise UserError(f"nutrack.tune's search space is for similarity metrics; {name}="
                                f"{getattr(base, name)} is a distance")
        self.data, self.base, self.workdir, self.per_class = data, base, workdir, per_class
        self.subset = data.subset(prune_fraction) if prune_fraction > 0 else []
        if len(self.subset) >= len(data.scenes):
            self.subset = []  # a one-scene split: nothing cheaper to score first

    def params_of(self, overrides: Dict[str, Any]) -> FilterParams:
        return self.base.with_overrides(overrides)

    def __call__(self, trial) -> float:
        import optuna

        params = self.params_of(sample_overrides(trial, self.per_class))
        path = os.path.join(self.workdir, f"trial-{trial.number}-{os.getpid()}.json")
        try:
            if self.subset:
                early = track_and_score(self.data, params, path, self.subset)
                trial.report(_amota(early), step=0)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            summary = (self.data.session.score(path, workers=self.data.eval_workers) if self.subset
                       else track_and_score(self.data, params, path))
        finally:
            if os.path.exists(path):
                os.unlink(path)
        for cls, value in class_amotas(summary).items():
            trial.set_user_attr(f"amota.{cls}", value)
        trial.set_user_attr("ids", float(summary.get("ids") or 0))
        trial.set_user_attr("pid", os.getpid())
        return _amota(summary)


def warn_if_val(split: str) -> None:
    if split in VAL_NAMES:
        print(f"nutrack.tune: warning: tuning on split {split!r} — parameters tuned on val make val "
              "scores meaningless; tune on (a held-out part of) train", file=sys.stderr)
