"""The Optuna study behind ``python -m nutrack.tune``: storage, workers, and the outputs.

- Storage: any Optuna storage URL; SQLite (a file) by default. Trials heartbeat, so a trial
  that was running when its process was killed is marked failed and retried once by the
  next process that opens the study: a killed study resumes where it stopped.
- Workers: ``workers`` processes share one study (Optuna serialises them through the
  database); each has its own sampler seed so that they do not propose the same trials.
- The first trial of a new study is the starting parameters themselves, so the study always
  knows the default AMOTA and the best is never worse than it on the tuning split.
- At the end: the best trial, and its per-class composition (each class's per-class values
  from the trial that scored that class best — the filter tracker keeps classes apart — with
  the shared values of the best trial), scored once more; the better of the two is written.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from nutrack._cli import UserError
from nutrack.data.classes import TRACKING_CLASSES
from nutrack.tracking.search_space import PER_CLASS, SHARED, clip_low_scores

__all__ = ["StudyConfig", "open_study", "run_workers", "compose_per_class", "default_trial"]

# A running trial writes a heartbeat every HEARTBEAT_S; one silent for GRACE_S is taken as
# killed (failed, and retried once). The environment may shorten them (the tests do).
HEARTBEAT_S = int(os.environ.get("NUTRACK_TUNE_HEARTBEAT_S", "10"))
GRACE_S = int(os.environ.get("NUTRACK_TUNE_GRACE_S", "40"))


@dataclass(frozen=True)
class StudyConfig:
    """Everything a worker process needs (picklable)."""

    target: Any  # TuneTarget
    storage: str
    study_name: str
    trials: int
    base_params: Any  # FilterParams
    per_class: bool = True
    prune_fraction: float = 0.25
    seed: int = 0
    eval_workers: int = 1


def _retry_stale() -> Dict[str, Any]:
    """Retry a killed trial's parameters once (the callback's name changed in Optuna 4.9)."""
    from optuna import storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=1)}


def _storage(url: str):
    import optuna
    from optuna.storages import RDBStorage

    if "://" not in url:
        raise UserError(f"--study {url!r} is not a storage URL (e.g. sqlite:///study.db)")
    # Heartbeats and the retry callback are marked experimental; they are what makes a killed
    # study resumable, and this module is their only user: keep their warnings out of the log.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    try:
        return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                          **_retry_stale())
    except Exception as error:  # noqa: BLE001 - a bad URL, a missing driver, an unreadable file
        raise UserError(f"--study {url!r}: cannot open the storage ({type(error).__name__}: "
                        f"{str(error).splitlines()[0][:160]})") from None


def open_study(cfg: StudyConfig, worker: int = 0):
    """The study (created if new, with the starting parameters as its first trial)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=cfg.study_name, storage=_storage(cfg.storage), direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=cfg.seed + 1000 * worker, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0))
    if worker == 0 and not study.trials:
        study.enqueue_trial(default_trial(cfg.base_params, cfg.per_class), user_attrs={"default": True})
    return study


def default_trial(params: Any, per_class: bool) -> Dict[str, Any]:
    """``params`` as values of the search space (clipped into its ranges)."""
    out: Dict[str, Any] = {}
    for name, r in {**PER_CLASS, **SHARED}.items():
        value = getattr(params, name)
        values = dict(zip(TRACKING_CLASSES, value)) if name in PER_CLASS else {"": value}
        if name in PER_CLASS and not per_class:
            values = {"": value[0]}
        for cls, v in values.items():
            v = min(max(v, r.low), r.high)
            out[f"{name}.{cls}" if cls else name] = int(round(v)) if r.integer else float(v)
    return out


def finished(study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _report(trial_started: Dict[int, float], total: int):
    def callback(study, trial) -> None:
        seconds = time.perf_counter() - trial_started.pop(trial.number, time.perf_counter())
        state = trial.state.name.lower()
        value = f"AMOTA {trial.value:.4f}" if trial.value is not None else state
        try:
            best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        print(f"trial {trial.number:>4}: {value:<13} {seconds:6.1f} s   {best}   "
              f"[{finished(study)}/{total} finished, pid {os.getpid()}]", flush=True)
    return callback


def work(cfg: StudyConfig, worker: int = 0) -> None:
    """One worker: run trials until the study holds ``cfg.trials`` finished ones."""
    import optuna

    from nutrack.tune.objective import Objective, TuningData

    study = open_study(cfg, worker)
    study.set_user_attr(f"worker.{os.getpid()}", worker)  # who worked on the study (a record)
    data = TuningData(cfg.target, say=print if worker == 0 else (lambda *_: None), eval_workers=cfg.eval_workers)
    started: Dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="nutrack-tune-") as workdir:
        objective = Objective(data, cfg.base_params, workdir, per_class=cfg.per_class,
                              prune_fraction=cfg.prune_fraction)

        def timed(trial):
            started[trial.number] = time.perf_counter()
            return objective(trial)

        # A trial whose process was killed is failed (and its parameters queued again) now, even
        # when no trial is left to run: Optuna itself only looks before starting a trial.
        optuna.storages.fail_stale_trials(study)
        _fail_trials_killed_before_a_heartbeat(study)
        remaining = cfg.trials - finished(study)
        if remaining > 0:
            study.optimize(timed, n_trials=remaining, gc_after_trial=False, catch=(),
                           callbacks=[optuna.study.MaxTrialsCallback(
                               cfg.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                   optuna.trial.TrialState.PRUNED)), _report(started, cfg.trials)])


def _fail_trials_killed_before_a_heartbeat(study) -> None:
    """Fails the RUNNING trials that never wrote a heartbeat and started more than GRACE_S ago.

    Optuna finds killed trials by their stale heartbeat; a process killed between creating a
    trial and its first heartbeat leaves it RUNNING with none, forever (seen in
    tests/test_tune.py's kill test about one run in four). Optuna has no public query for
    heartbeats: this reads its RDB tables, and does nothing when they are not there."""
    import datetime

    import optuna
    try:
        from optuna.storages._rdb import models
        storage = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
        now = datetime.datetime.now()  # the clock Optuna stamps datetime_start with
        with storage.scoped_session() as session:
            silent = [t.trial_id for t in session.query(models.TrialModel)
                      .filter(models.TrialModel.state == optuna.trial.TrialState.RUNNING)
                      .filter(models.TrialModel.study_id == study._study_id).all()
                      if not t.heartbeats and t.datetime_start is not None
                      and now - t.datetime_start > datetime.timedelta(seconds=GRACE_S)]
    except Exception:  # noqa: BLE001 - another storage, or Optuna's tables changed: skip
        return
    for trial_id in silent:
        try:
            study._storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        except Exception:  # noqa: BLE001 - finished meanwhile by its own process
            continue


def _work_entry(cfg: StudyConfig, worker: int) -> None:  # a spawned process
    work(cfg, worker)


def run_workers(cfg: StudyConfig, workers: int) -> None:
    """``workers`` processes on the study (this one included); raises if any of them failed."""
    open_study(cfg, 0)  # create it (and the default trial) before anyone samples
    if workers <= 1:
        work(cfg, 0)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_work_entry, args=(cfg, w), daemon=False) for w in range(1, workers)]
    for p in procs:
        p.start()
    try:
        work(cfg, 0)
    finally:
        for p in procs:
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers - 1} worker processes failed (exit codes {failed})")


#: A class is composed from another trial than the best only when the tuning split holds at
#: least this many of its objects: with fewer, its AMOTA moves by 0.1 with one object, and the
#: trial that scores it best is picked by noise (measured: the embedded train split's buses
#: took another trial's values and lost 0.1 AMOTA on val).
MIN_TRACKS_TO_COMPOSE = 30


def compose_per_class(study, gt_tracks: Dict[str, int]) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """Per class with at least MIN_TRACKS_TO_COMPOSE ground-truth objects (``gt_tracks``),
    that class's per-class values from the trial scoring it best; everything else from the
    best trial. (None, []) when the study is not per class or has no complete trial."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None, []
    best = study.best_trial
    if not any("." in name for name in best.params):
        return None, []
    composed = {k: v for k, v in best.params.items() if "." not in k}
    sources = []
    for cls in TRACKING_CLASSES:
        scored = [t for t in complete if f"amota.{cls}" in t.user_attrs]
        if not scored or gt_tracks.get(cls, 0) < MIN_TRACKS_TO_COMPOSE:
            scored = [best]
        source = max(scored, key=lambda t: t.user_attrs.get(f"amota.{cls}", 0.0))
        composed.update({k: v for k, v in source.params.items() if k.endswith("." + cls)})
        sources.append(f"{cls}: trial {source.number}")
    return clip_low_scores(composed), sources
