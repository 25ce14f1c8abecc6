"""Fit the filter tracker to a detector: ``python -m nutrack.tune`` (see docs/tuning.md).

:func:`tune` runs (or resumes) an Optuna study whose objective is the devkit's AMOTA on a split
the caller names, and writes a params file that ``nutrack.track --params``,
``nutrack.train --params`` and ``make_tracker(..., params=FILE)`` read.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from nutrack.tune.objective import TuneTarget

__all__ = ["tune", "TuneResult", "TuneTarget"]


@dataclass
class TuneResult:
    out: str
    default_amota: Optional[float]
    best_amota: float
    source: str
    finished: int
    pruned: int
    importances: Dict[str, float] = field(default_factory=dict)
    plot: Optional[str] = None

    def summary(self) -> str:
        default = "n/a" if self.default_amota is None else f"{self.default_amota:.4f}"
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(self.importances.items())[:8])
        lines = [f"tuned on {self.finished} finished trials ({self.pruned} pruned): AMOTA default {default}, "
                 f"best {self.best_amota:.4f} ({self.source})",
                 f"params -> {self.out}"]
        if top:
            lines.append(f"most important parameters: {top}")
        if self.plot:
            lines.append(f"optimization history -> {self.plot}")
        return "\n".join(lines)


def _study_name(target: TuneTarget) -> str:
    stem = os.path.splitext(os.path.basename(target.detections))[0]
    return f"filter-{target.version}-{target.split}-{stem}"


def tune(target: TuneTarget, *, storage: str, out: str, trials: int, workers: int = 1,
         base_params: Any = None, per_class: bool = True, prune_fraction: float = 0.25, seed: int = 0,
         study_name: Optional[str] = None, eval_workers: int = 1) -> TuneResult:
    """Run the study to ``trials`` finished trials (resuming a stored one), then write ``out``."""
    import optuna

    from nutrack.tracking.params import FilterParams
    from nutrack.tune.study import StudyConfig, finished, open_study, run_workers

    cfg = StudyConfig(target=target, storage=storage, study_name=study_name or _study_name(target),
                      trials=trials, base_params=base_params or FilterParams(), per_class=per_class,
                      prune_fraction=prune_fraction, seed=seed, eval_workers=eval_workers)
    run_workers(cfg, workers)
    study = open_study(cfg, 0)
    pruned = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)))
    params, best, source = _best_params(cfg, study)
    default = next((t.value for t in study.trials if t.user_attrs.get("default") and t.value is not None), None)
    importances = _importances(study)
    from nutrack.tracking.params_file import write_params_file

    write_params_file(out, params, tuned_on={**target.__dict__}, amota={"default": default, "best": best},
        source=source, study={"storage": storage, "name": cfg.study_name, "finished": finished(study),
                              "pruned": pruned}, importances=importances)
    plot = _history_plot(study, os.path.splitext(out)[0] + "_history.png")
    return TuneResult(out=out, default_amota=default, best_amota=best, source=source,
                      finished=finished(study), pruned=pruned, importances=importances, plot=plot)


def _best_params(cfg, study):
    """The better of the best trial and its per-class composition (scored here)."""
    from nutrack.tune.objective import TuningData, track_and_score, _amota
    from nutrack.tune.study import compose_per_class

    try:
        best_trial = study.best_trial
    except ValueError:
        raise RuntimeError("the study has no complete trial (all failed or were pruned)") from None
    best = cfg.base_params.with_overrides(best_trial.params)
    data = TuningData(cfg.target, say=lambda *_: None, eval_workers=max(cfg.eval_workers, 1))
    composed, sources = compose_per_class(study, data.session.gt_track_counts())
    if composed is None or composed == best_trial.params:
        return best, best_trial.value, f"trial {best_trial.number}"
    candidate = cfg.base_params.with_overrides(composed)
    with tempfile.TemporaryDirectory(prefix="nutrack-tune-") as tmp:
        amota = _amota(track_and_score(data, candidate, os.path.join(tmp, "composed.json")))
    if amota > best_trial.value:
        return candidate, amota, "per-class composition (" + "; ".join(sources) + ")"
    return best, best_trial.value, f"trial {best_trial.number} (per-class composition scored {amota:.4f})"


def _importances(study) -> Dict[str, float]:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}
    try:
        values = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError):  # e.g. every trial scored the same
        return {}
    return {k: round(float(v), 4) for k, v in values.items()}


def _history_plot(study, path: str) -> Optional[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    from nutrack._io import atomic_write_with

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        ax = optuna.visualization.matplotlib.plot_optimization_history(study)
    except (ValueError, ImportError):
        return None
    ax.set_title(f"{study.study_name}: AMOTA per trial")
    atomic_write_with(path, lambda f: ax.figure.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    plt.close(ax.figure)
    return path
