"""Training the track-confidence head (:mod:`nutrack.model.confidence`) on the tracker's own
rollouts: the learned tracker (the trained association network, the head off) tracks the
TRAIN split, every box it outputs is recorded with its confidence inputs and labelled real
when the devkit's rule matches it to a ground-truth box, and a small MLP learns the label with
a sigmoid focal loss.

Boxes the devkit would not evaluate (beyond their class's range from the ego) are left out,
as the devkit filters them from a submission.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from nutrack.data.classes import CLASS_RANGE_ARRAY
from nutrack.model.confidence import ConfidenceConfig, ConfidenceNet
from nutrack.model.focal import sigmoid_focal_loss
from nutrack.model.scorer import RolloutFrame

__all__ = ["record_rollouts", "rollout_labels", "fit_head", "fit_confidence"]

log = logging.getLogger("nutrack.train")

_BATCH = 512


def record_rollouts(tracker, data, split: str, detections, nsweeps: int, progress: bool = False
                    ) -> List[RolloutFrame]:
    """Track ``split`` with ``tracker`` (a FilterTracker around a LearnedScorer), recording
    every frame's output tracks and their confidence inputs."""
    from nutrack.tracking.run import track_scenes

    scorer = tracker.scorer
    scorer.recorder = []
    try:
        track_scenes(tracker, data.scenes(split, detections), progress=progress,
                     points=lambda f: data.lidar_points(f, nsweeps=nsweeps), total=len(data.split_scene_names(split)),
                     desc=f"confidence rollouts ({split})")
        return scorer.recorder
    finally:
        scorer.recorder = None


def rollout_labels(frames: List[RolloutFrame], data) -> Tuple[np.ndarray, np.ndarray]:
    """``(inputs (N, D), labels (N,))`` of the recorded boxes the devkit evaluates: label 1 when
    the devkit's matching rule (:func:`nutrack.data.assign.assign_frame`) gives the box a
    ground-truth box of the frame (the evaluated ones: in range, with points), else 0."""
    from nutrack.data import Detections
    from nutrack.data.assign import assign_frame

    xs, ys = [], []
    for fr in frames:
        if len(fr.boxes) == 0:
            continue
        dist = np.hypot(fr.boxes[:, 0] - fr.ego_xy[0], fr.boxes[:, 1] - fr.ego_xy[1])
        in_range = ~(dist > CLASS_RANGE_ARRAY[fr.classes])  # NaN (no pose): kept
        det = Detections(fr.boxes, np.zeros((len(fr.boxes), 2), np.float32), fr.scores, fr.classes)
        real = assign_frame(det, data.ground_truth(fr.sample_token, eval_filter=True)).gt_index >= 0
        xs.append(fr.inputs[in_range])
        ys.append(real[in_range].astype(np.float32))
    if not xs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return np.concatenate(xs), np.concatenate(ys)


def fit_head(x: np.ndarray, y: np.ndarray, config: ConfidenceConfig, seed: int) -> Tuple[ConfidenceNet, float]:
    """A :class:`ConfidenceNet` trained on ``(x, y)`` (AdamW, cosine decay, minibatches of
    512 in a seeded order, CPU); returns it (eval mode) and the last epoch's mean loss."""
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    net = ConfidenceNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = config.epochs * max(1, -(-len(x) // _BATCH))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * config.lr)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y)
    mean = float("nan")
    for _ in range(config.epochs):
        total, n = 0.0, 0
        for rows in torch.randperm(len(xt), generator=gen).split(_BATCH):
            target = yt[rows]
            loss = sigmoid_focal_loss(net(xt[rows]), target, alpha=config.alpha, gamma=config.gamma,
                                      reduction="sum") / max(float(target.sum()), 1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + loss.item() * len(rows), n + len(rows)
        mean = total / max(n, 1)
    return net.eval(), mean


def fit_confidence(model, config, inputs, device, params: Optional[str], progress: bool,
                   head: ConfidenceConfig) -> Optional[Dict[str, Any]]:
    """The checkpoint entry ``{"config", "state", "stats"}`` of a head trained on rollouts of
    the learned tracker (``model``, its threshold, the run's ``params``) over the train split;
    None when the rollouts hold no box to learn from (or only one kind)."""
    from nutrack.data import load_detections
    from nutrack.train.evaluation import learned_tracker

    t0 = time.perf_counter()
    tracker = learned_tracker(model, device, config.nsweeps, model.config.threshold, config.threads, params,
                              history=head.history)
    dets = load_detections(config.train_detections, inputs.data, config.train_split)
    frames = record_rollouts(tracker, inputs.data, config.train_split, dets, config.nsweeps, progress)
    x, y = rollout_labels(frames, inputs.data)
    if len(y) == 0 or y.min() == y.max():
        log.info("confidence head: the train rollouts hold %d boxes, not both real and false ones; "
                 "the tracker keeps its own scores", len(y))
        return None
    net, loss = fit_head(x, y, head, config.seed)
    stats = {"boxes": int(len(y)), "real_fraction": round(float(y.mean()), 4), "final_loss": round(loss, 5),
             "seconds": round(time.perf_counter() - t0, 1)}
    log.info("confidence head: %d train boxes (%.0f%% real), loss %.4f, %.1f s", stats["boxes"],
             100 * stats["real_fraction"], loss, stats["seconds"])
    return {"config": head.to_dict(), "state": net.state_dict(), "stats": stats}
