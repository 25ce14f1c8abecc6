"""The search space of ``python -m nutrack.tune``: which parameters of :class:`FilterParams`
are tuned, over which ranges. Declared here, beside ``params.py``, once; docs/tuning.md lists
it, and a test checks that every name is a real parameter and every range is valid for it.

Per-class parameters are tuned per class (``score_threshold.car``, ...): the filter tracker
associates, suppresses and manages tracks of each class separately, so a class's AMOTA depends
only on its own per-class parameters and on the shared ones. The ranges assume the default
similarity metrics (GIoU): ``match_threshold`` of a distance metric would need other ranges,
so the tuner refuses a distance ``metric`` / ``metric2``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

from nutrack.data.classes import TRACKING_CLASSES

__all__ = ["Range", "PER_CLASS", "SHARED", "sample_overrides", "space_table"]


@dataclass(frozen=True)
class Range:
    """A closed interval; ``integer`` ranges are sampled as integers, ``log`` ones log-uniformly."""

    low: float
    high: float
    integer: bool = False
    log: bool = False
    why: str = ""


PER_CLASS: Dict[str, Range] = {
    "score_threshold": Range(0.05, 0.6, why="high-score detections: start tracks, stage 1"),
    "low_score_threshold": Range(0.0, 0.3, why="clipped to score_threshold; below it: dropped"),
    "birth_score": Range(0.05, 0.7, why="score a detection needs to start a track"),
    "nms_threshold": Range(0.1, 1.0, why="same-class NMS overlap (1 disables it)"),
    "gate_distance": Range(1.0, 10.0, why="centre gate of both stages (m)"),
    "match_threshold": Range(-0.9, 0.3, why="stage-1 GIoU needed to match"),
    "match_threshold2": Range(-0.95, 0.0, why="stage-2 GIoU needed to match"),
    "max_age": Range(1, 12, integer=True, why="frames a track may coast"),
    "output_max_coast": Range(0, 6, integer=True, why="coasting frames still reported"),
    "score_decay": Range(0.05, 1.0, why="reported score decay per coasting frame"),
}

SHARED: Dict[str, Range] = {
    "score_smoothing": Range(0.0, 0.8, why="weight of the previous reported score"),
    "tentative_score_factor": Range(0.0, 1.0, why="score factor of unconfirmed tracks"),
    "size_smoothing": Range(0.1, 1.0, why="smoothing of z and box size"),
}


def _suggest(trial: Any, name: str, r: Range) -> Any:
    if r.integer:
        return trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def sample_overrides(trial: Any, per_class: bool = True) -> Dict[str, Any]:
    """An Optuna trial's parameters as ``with_overrides`` keys (``name`` or ``name.class``).
    With ``per_class=False`` one value per parameter serves every class (fewer dimensions,
    for small budgets)."""
    out: Dict[str, Any] = {}
    for name, r in PER_CLASS.items():
        if per_class:
            for cls in TRACKING_CLASSES:
                out[f"{name}.{cls}"] = _suggest(trial, f"{name}.{cls}", r)
        else:
            out[name] = _suggest(trial, name, r)
    for name, r in SHARED.items():
        out[name] = _suggest(trial, name, r)
    return clip_low_scores(out)


def clip_low_scores(overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """``low_score_threshold`` never above ``score_threshold`` (the tracker requires it)."""
    out = dict(overrides)
    for key, value in overrides.items():
        name, _, cls = key.partition(".")
        if name == "low_score_threshold":
            high = overrides.get(f"score_threshold.{cls}" if cls else "score_threshold")
            if high is not None:
                out[key] = min(value, high)
    return out


def space_table() -> Tuple[Tuple[str, str, str, str], ...]:
    """(parameter, per class or shared, range, what it does) rows, for the docs and --help."""
    def fmt(r: Range) -> str:
        kind = "int" if r.integer else ("log" if r.log else "float")
        return f"[{r.low:g}, {r.high:g}] {kind}"

    return tuple((n, "per class", fmt(r), r.why) for n, r in PER_CLASS.items()) + tuple(
        (n, "shared", fmt(r), r.why) for n, r in SHARED.items())
