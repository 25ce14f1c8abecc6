"""Validation during and after training: the val loss and match threshold of the network on
the val frame pairs, tracking the val split with the devkit's metrics, and the final
comparison of ``learned`` with the ``filter`` and ``centerpoint`` trackers."""
from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, Optional

import numpy as np
import torch

from nutrack.model import AssociationNet, ModelConfig, association_loss, pair_probabilities
from nutrack.model.training_data import batch_to_device, collate
from nutrack.train.config import TrainConfig
from nutrack.train.inputs import TrainingInputs

__all__ = ["val_pass", "f1_best_threshold", "track_and_evaluate", "learned_tracker", "final_comparison",
           "format_summary"]

#: the thresholds tried for the best pair F1
THRESHOLDS = np.linspace(0.05, 0.95, 91)
#: fixed query sampling of the val frame pairs, the same at every epoch and after a resume
_VAL_SEED = 987654321


def f1_best_threshold(probs: np.ndarray, labels: np.ndarray):
    """``(threshold, F1)`` of the threshold in :data:`THRESHOLDS` with the best pair F1
    (the first one on ties)."""
    best, thr = -1.0, None
    for t in THRESHOLDS:
        pred = probs > t
        tp = float((pred & labels).sum())
        f1 = 2 * tp / max(float(pred.sum() + labels.sum()), 1.0)
        if f1 > best + 1e-12:
            best, thr = f1, float(t)
    return round(thr, 4), best


def val_pass(model: AssociationNet, inputs: TrainingInputs, config: TrainConfig, device,
             model_config: ModelConfig, threshold: float) -> Dict[str, float]:
    """Loss over the val frame pairs (fixed sampling) and the F1-best match threshold
    (``threshold``, the current one, when val has no candidate pairs at all)."""
    rng = np.random.default_rng([config.seed, _VAL_SEED])
    total, n = 0.0, 0
    probs, labels = [], []
    pairs = inputs.val_pairs
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(pairs), config.batch_size):
            b = batch_to_device(collate(inputs.val_scenes, pairs[i:i + config.batch_size], config.nsample_q, rng,
                                        model_config.gates), device)
            if b["labels"].numel() == 0:
                continue
            logits, nm = model(b)
            loss, npos, nneg = association_loss(logits, nm, b, model_config.normalization, model_config.alpha,
                                                model_config.gamma)
            if npos and nneg:
                total += float(loss)
                n += 1
            probs.append(pair_probabilities(logits, nm, b["pair_q"], nm.shape[0], model_config.normalization).cpu())
            labels.append(b["labels"].cpu())
    model.train()
    out = {"val_loss": total / n if n else float("nan"), "threshold": threshold}
    if probs:
        p = torch.cat(probs).numpy().astype(np.float64)
        y = torch.cat(labels).numpy() > 0.5
        out["threshold"], out["val_pair_f1"] = f1_best_threshold(p, y)
    return out


def learned_tracker(model: AssociationNet, device, nsweeps: int, threshold: float, threads: int,
                    params: Optional[str] = None, confidence=None, history: Optional[int] = None):
    """The ``learned`` tracker around an in-memory network (during training), its network
    calls on ``threads`` torch CPU threads (``--threads``), its life cycle from ``params``
    (a params file; default: the learned tracker's defaults); ``confidence``, ``history``:
    see :class:`nutrack.model.scorer.LearnedScorer`."""
    from nutrack.model.scorer import LearnedScorer
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.run import tracker_params

    scorer = LearnedScorer(model, device=device, nsweeps=nsweeps, threshold=threshold, threads=threads,
                           confidence=confidence, history=history)
    return FilterTracker(tracker_params("learned", params), scorer=scorer)


def _finite(x) -> Optional[float]:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def track_and_evaluate(tracker, inputs: TrainingInputs, config: TrainConfig, out_json: str, use_points: bool,
                       progress: bool, desc: str) -> Dict[str, Any]:
    """Track the val split, write the tracking JSON, evaluate it with the devkit."""
    from nutrack.data import write_tracking_results
    from nutrack.eval import HEADLINE, evaluate_tracking
    from nutrack.tracking.run import track_scenes

    data, split = inputs.data, config.val_split
    points = (lambda f: data.lidar_points(f, nsweeps=config.nsweeps)) if use_points else None
    t0 = time.perf_counter()
    run = track_scenes(tracker, data.scenes(split, inputs.val_detections), progress=progress, points=points,
                       total=len(data.split_scene_names(split)), desc=desc)
    wall = time.perf_counter() - t0
    write_tracking_results(out_json, run.results, data.sample_tokens(split), keep_top=True)
    summary = evaluate_tracking(out_json, config.dataroot, config.version, split,
                                output_dir=os.path.splitext(out_json)[0] + "_eval", data=data,
                                workers=config.eval_workers)
    metrics = {k: _finite(summary.get(k)) for k in HEADLINE}
    return {**metrics, "tracker_fps": run.fps, "end_to_end_fps": run.frames / wall if wall > 0 else None,
            "frames": run.frames, "results": os.path.abspath(out_json)}


def final_comparison(config: TrainConfig, inputs: TrainingInputs, best_path: str, device,
                     progress: bool) -> Dict[str, Any]:
    """Track val with the best checkpoint, filter and centerpoint; devkit metrics of each."""
    from nutrack.model.checkpoint import load_model
    from nutrack.tracking.run import make_tracker

    model, ck = load_model(best_path, device)
    best = ck["train_state"].get("best")
    out = {"best_checkpoint": best_path, "best_epoch": best["epoch"] if best else None,
           "threshold": model.config.threshold}
    # exactly what `python -m nutrack.track --method learned --checkpoint best.pt` runs
    methods = [("learned", lambda: make_tracker("learned", checkpoint=best_path, device=str(device),
                                                params=config.params))]
    if not config.no_baselines:
        methods += [("filter", lambda: make_tracker("filter", params=config.params)),
                    ("centerpoint", lambda: make_tracker("centerpoint"))]
    for name, factory in methods:
        out[name] = track_and_evaluate(factory(), inputs, config,
                                       os.path.join(config.output, "val", f"{name}.json"),
                                       name == "learned" and not config.no_points, progress,
                                       f"{name} {config.val_split}")
    return out


def format_summary(summary: Dict[str, Any]) -> str:
    """The table ``python -m nutrack.train`` prints at the end (from a ``metrics.json`` dict)."""
    comp = summary.get("comparison", {})
    rows = [m for m in ("learned", "filter", "centerpoint") if m in comp]

    def fmt(v, d=3):
        return "   n/a" if v is None else (f"{v:6.{d}f}" if d else f"{v:6.0f}")

    lines = ["", f"val split {summary['config']['val_split']} ({summary['config']['version']}): devkit metrics",
             f"{'method':<12} {'AMOTA':>6} {'AMOTP':>6} {'MOTA':>6} {'IDS':>6} {'recall':>6} {'fps':>8}"]
    for m in rows:
        r = comp[m]
        lines.append(f"{m:<12} {fmt(r['amota'])} {fmt(r['amotp'])} {fmt(r['mota'])} {fmt(r['ids'], 0)} "
                     f"{fmt(r['recall'])} {r['tracker_fps']:8.1f}")
    lines.append(f"training: {summary['train_frame_pairs_per_s']:.1f} frame pairs/s on {summary['device']}"
                 f" x{summary['world_size']}; best epoch {comp.get('best_epoch')}; "
                 f"skipped batches {summary['skipped_batches']}")
    lines.append(f"run directory: {summary['run_dir']}")
    return "\n".join(lines)
