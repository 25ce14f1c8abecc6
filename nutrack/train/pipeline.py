"""A whole training run: the run directory, the data, the :class:`~nutrack.train.trainer.Trainer`,
then the final comparison and ``metrics.json``."""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Dict, Optional, Sequence

from nutrack._io import atomic_write_json
from nutrack.model.threads import torch_threads
from nutrack.train.checkpoints import seed_everything
from nutrack.train.config import TrainConfig
from nutrack.train.dist import Dist, barrier, init_distributed
from nutrack.train.evaluation import final_comparison, format_summary
from nutrack.train.inputs import TrainingInputs, load_inputs
from nutrack.train.rundir import METRICS, new_run, resumed_run
from nutrack.train.trainer import StepHook, Trainer, TrainState

__all__ = ["train"]

log = logging.getLogger("nutrack.train")


def train(config: TrainConfig, resume: Optional[str] = None, step_hooks: Sequence[StepHook] = ()) -> Dict[str, Any]:
    """Train (or, with ``resume`` a run directory or checkpoint, ``""`` for ``config.output``,
    continue) a run, compare it with the baselines; returns what ``metrics.json`` holds.

    torch's CPU thread count is ``config.threads`` for the run and restored afterwards."""
    config.validate()
    with torch_threads(config.threads):
        dist, device = init_distributed(config.device)
        progress = not config.quiet and dist.main
        resumed = None
        if resume is not None:
            resumed = resumed_run(config, resume, dist)
            config = resumed.config
            done = _completed_summary(config, resumed.checkpoint, dist)
            if done is not None:
                return done
        else:
            config = new_run(config, dist, progress)
        seed_everything(config.seed)
        inputs = _load(config, dist, progress)
        trainer = Trainer(config, inputs, dist, device, step_hooks)
        if resumed is not None:
            trainer.restore(resumed.checkpoint, resumed.path)
            if dist.main and trainer.state.epoch < config.epochs:  # else: the comparison only
                log.info("resumed %s at epoch %d, step %d", config.output, trainer.state.epoch + 1,
                         trainer.state.step_in_epoch)
        trainer.fit()
        return _finish(trainer, progress)


def _load(config: TrainConfig, dist: Dist, progress: bool) -> TrainingInputs:
    t0 = time.perf_counter()
    inputs = load_inputs(config, progress, dist)
    if dist.main:  # the run directory appears once the data is known to be good
        atomic_write_json(os.path.join(config.output, "config.json"), config.to_dict(), indent=True)
        log.info("data: %d train frame pairs (%d scenes), %d val frame pairs, prepared in %.1f s",
                 len(inputs.train_pairs), len(inputs.train_scenes), len(inputs.val_pairs), time.perf_counter() - t0)
    return inputs


def _completed_summary(config: TrainConfig, ck: Dict[str, Any], dist: Dist) -> Optional[Dict[str, Any]]:
    """The saved summary when the run being resumed has nothing left to do (all ``--epochs``
    trained and ``metrics.json`` written): it is printed again, nothing is retrained or
    re-evaluated. None when there is work left, including a final comparison the run was
    killed in."""
    done = TrainState.from_checkpoint(ck).epoch
    if done < config.epochs:
        return None
    path = os.path.join(config.output, METRICS)
    try:
        with open(path, "rb") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        if dist.main:
            log.info("%s: all %d epochs trained, no %s yet: running the final comparison", config.output, done,
                     METRICS)
        return None
    if dist.main:
        log.info("%s is already complete (%d epochs trained, --epochs %d): nothing to do; pass a larger "
                 "--epochs to train further", config.output, done, config.epochs)
        print(format_summary(summary), flush=True)
    return summary


def _confidence_head(trainer: Trainer, progress: bool) -> Optional[Dict[str, Any]]:
    """The track-confidence head of the best checkpoint (:mod:`nutrack.train.confidence`):
    trained on rollouts of its network over the train split and stored in ``best.pt``, once
    (a resumed run whose ``best.pt`` has one keeps it). Returns its statistics, None without
    (``--no-confidence``, or rollouts without real and false boxes)."""
    from nutrack.model.checkpoint import load_model
    from nutrack.model.confidence import ConfidenceConfig
    from nutrack.train.checkpoints import save_checkpoint
    from nutrack.train.confidence import fit_confidence

    cfg = trainer.config
    if cfg.no_confidence:
        return None
    model, ck = load_model(trainer.best_path, trainer.device)
    if ck.get("confidence") is None:
        head = ConfidenceConfig(history=cfg.history, alpha=cfg.alpha, gamma=cfg.gamma)
        entry = fit_confidence(model, cfg, trainer.inputs, trainer.device, cfg.params, progress, head)
        if entry is None:
            return None
        ck["confidence"] = entry
        save_checkpoint(trainer.best_path, **{k: v for k, v in ck.items() if k != "format"})
    return ck["confidence"]["stats"]


def _finish(trainer: Trainer, progress: bool) -> Dict[str, Any]:
    st, cfg, dist = trainer.state, trainer.config, trainer.dist
    summary = {"run_dir": cfg.output, "config": cfg.to_dict(), "history": st.history, "best": st.best,
               "skipped_batches": st.skipped, "train_frame_pairs_per_s": st.pairs_seen / max(st.train_seconds, 1e-9),
               "device": str(trainer.device), "world_size": dist.world}
    if dist.main:
        summary["confidence"] = _confidence_head(trainer, progress)
        summary["comparison"] = final_comparison(cfg, trainer.inputs, trainer.best_path, trainer.device, progress)
        atomic_write_json(os.path.join(cfg.output, METRICS), summary, indent=True)
        print(format_summary(summary), flush=True)
    barrier(dist)
    return summary
