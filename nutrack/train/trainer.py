"""Train the learned association network: ``python -m nutrack.train``.

With no arguments it generates (once, cached) the embedded synthetic dataset and its
simulated detections, trains, tracks the val split with the trained model and prints the
devkit's metrics next to the ``filter`` and ``centerpoint`` methods on the same detections.

Multi-GPU: ``torchrun --nproc_per_node N -m nutrack.train ...`` (DistributedDataParallel; NCCL
on GPUs, gloo without them). See docs/training.md for the options and the run directory.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

log = logging.getLogger("nutrack.train")

__all__ = ["main", "build_parser", "TrainingError", "NonFiniteLossError"]

#: what resuming must find unchanged in the saved config
_FROZEN_KEYS = ("dataroot", "version", "train_split", "val_split", "train_detections", "val_detections",
                "batch_size", "lr", "weight_decay", "seed", "nsample_q", "max_gap", "nsweeps", "max_points",
                "normalization", "no_points", "hidden", "alpha", "gamma", "grad_clip")


class TrainingError(RuntimeError):
    """A configuration or data problem that stops training with a message."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite."""


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nutrack.train",
        description="Train nutrack's learned association network (focal loss over (track, detection) pairs), "
                    "then track the val split with it and compare with the filter and centerpoint trackers. "
                    "With no arguments: the embedded synthetic dataset (generated once, cached).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data (default: the embedded synthetic dataset)")
    d.add_argument("--dataroot", help="nuScenes dataroot (real or synthetic)")
    d.add_argument("--version", help="nuScenes version, e.g. v1.0-trainval")
    d.add_argument("--train-split", help="training split (default: train, or mini_train for a mini version)")
    d.add_argument("--val-split", help="validation split (default: val, or mini_val)")
    d.add_argument("--train-detections", help="detection-submission JSON of the training split")
    d.add_argument("--val-detections", help="detection-submission JSON of the val split")
    d.add_argument("--nsweeps", type=int, default=1, help="lidar sweeps per keyframe for the point features")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=6)
    t.add_argument("--batch-size", type=int, default=8, help="frame pairs per step (per process)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine decay)")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--grad-clip", type=float, default=5.0, help="gradient norm clip (0: off)")
    t.add_argument("--nsample-q", type=int, default=24, help="query objects (tracks) sampled per frame pair (>= 2)")
    t.add_argument("--max-gap", type=int, default=3, help="frame pairs span 1..MAX_GAP keyframes")
    t.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (the network's tensors are small: more threads cost "
                        "more than they gain, badly so on a busy machine)")
    t.add_argument("--output", "-o", help="run directory (default: runs/train-<date>-<time>)")
    t.add_argument("--resume", nargs="?", const="", default=None, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="resume from the last checkpoint of --output (or of the given run directory or "
                        "checkpoint file)")
    t.add_argument("--checkpoint-every", type=int, default=50,
                   help="also write the last checkpoint every N steps inside an epoch (0: epoch ends only)")
    t.add_argument("--eval-every", type=int, default=1,
                   help="track the val split and compute AMOTA every N epochs (0: only at the end)")
    m = p.add_argument_group("model")
    m.add_argument("--normalization", choices=("sigmoid", "softmax"), default="sigmoid",
                   help="pair scores: sigmoid per pair, or softmax over each track's candidates + no-match")
    m.add_argument("--no-points", action="store_true", help="ablation: no point-cloud features")
    m.add_argument("--hidden", type=int, default=64, help="feature width")
    m.add_argument("--max-points", type=int, default=32, help="points per object fed to the PointNet")
    m.add_argument("--alpha", type=float, default=0.25, help="focal loss alpha (sigmoid; < 0: off)")
    m.add_argument("--gamma", type=float, default=2.0, help="focal loss gamma")
    o = p.add_argument_group("output")
    o.add_argument("--no-baselines", action="store_true", help="do not run filter / centerpoint for comparison")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    # hidden: a tiny embedded dataset and run (tests); abort after a step (tests of --resume)
    p.add_argument("--tiny", action="store_true", default=os.environ.get("NUTRACK_TRAIN_TINY") == "1",
                   help=argparse.SUPPRESS)
    p.add_argument("--abort-after-step", type=int, default=None, help=argparse.SUPPRESS)
    return p


# ------------------------------------------------------------------------------------------
# distributed
# ------------------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


def _init_distributed(device_arg: str):
    import torch
    import torch.distributed as tdist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_arg == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_arg)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError(f"--device {device_arg}: CUDA is not available")
        if device.type == "cuda" and world > 1 and device.index is None:
            device = torch.device(f"cuda:{local}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist = Dist(rank, world, local)
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist, device


def _all_sum(values: Sequence[float], dist: Dist, device) -> List[float]:
    if not dist.on:
        return list(values)
    import torch
    import torch.distributed as tdist

    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return t.tolist()


def _barrier(dist: Dist):
    if dist.on:
        import torch.distributed as tdist

        tdist.barrier()


def _broadcast_obj(obj, dist: Dist):
    if not dist.on:
        return obj
    import torch.distributed as tdist

    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------


def _atomic_torch_save(obj, path: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    import tempfile

    import torch

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_json(obj, path: str) -> None:
    from nutrack.data.detections import atomic_write_json

    atomic_write_json(path, obj, indent=True)


def _rng_state() -> Dict[str, Any]:
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: Dict[str, Any]) -> None:
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(st["cuda"])


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def _resolve_data(a, dist: Dist, progress: bool) -> Dict[str, str]:
    """dataroot / version / splits / detection files, from the options or the embedded default."""
    if a.dataroot is None:
        given = [f"--{n.replace('_', '-')}" for n in ("version", "train_detections", "val_detections")
                 if getattr(a, n) is not None]
        if given:
            raise TrainingError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --dataroot "
                                f"(without it the embedded dataset is used)")
        from nutrack.data.synth import SynthConfig, default_dataset

        cfg = SynthConfig.tiny(train_scenes=2) if a.tiny else SynthConfig()
        ds = None
        if dist.main:
            ds = default_dataset(cfg=cfg, progress=progress)
        _barrier(dist)
        if ds is None:
            ds = default_dataset(cfg=cfg, progress=False)
        train_split = a.train_split or ds.train_split
        val_split = a.val_split or ds.val_split
        for s in (train_split, val_split):
            if s not in ds.detections:
                raise TrainingError(f"the embedded dataset has no detections for split {s!r} "
                                    f"(it has {', '.join(sorted(ds.detections))})")
        return dict(dataroot=ds.dataroot, version=ds.version, train_split=train_split, val_split=val_split,
                    train_detections=ds.detections[train_split], val_detections=ds.detections[val_split])
    if a.version is None:
        raise TrainingError("--dataroot needs --version")
    mini = a.version.endswith("mini")
    train_split = a.train_split or ("mini_train" if mini else "train")
    val_split = a.val_split or ("mini_val" if mini else "val")
    missing = [f"--{n.replace('_', '-')}" for n in ("train_detections", "val_detections") if getattr(a, n) is None]
    if missing:
        raise TrainingError(f"--dataroot needs {' and '.join(missing)} (detection-submission JSON files)")
    for n in ("train_detections", "val_detections"):
        if not os.path.isfile(getattr(a, n)):
            raise TrainingError(f"--{n.replace('_', '-')} {getattr(a, n)!r} does not exist")
    return dict(dataroot=os.path.abspath(a.dataroot), version=a.version, train_split=train_split,
                val_split=val_split, train_detections=os.path.abspath(a.train_detections),
                val_detections=os.path.abspath(a.val_detections))


def _validate(a) -> None:
    from nutrack.model.data import MIN_NSAMPLE_Q

    if a.nsample_q < MIN_NSAMPLE_Q:
        raise TrainingError(f"--nsample-q must be >= {MIN_NSAMPLE_Q} (queries per frame pair), got {a.nsample_q}")
    checks = [("epochs", a.epochs >= 1), ("batch-size", a.batch_size >= 1), ("lr", a.lr > 0 and math.isfinite(a.lr)),
              ("max-gap", a.max_gap >= 1), ("nsweeps", a.nsweeps >= 1), ("max-points", a.max_points >= 1),
              ("hidden", a.hidden >= 1), ("gamma", a.gamma >= 0), ("weight-decay", a.weight_decay >= 0),
              ("checkpoint-every", a.checkpoint_every >= 0), ("eval-every", a.eval_every >= 0),
              ("grad-clip", a.grad_clip >= 0), ("threads", a.threads >= 1)]
    bad = [n for n, ok in checks if not ok]
    if bad:
        raise TrainingError("invalid " + ", ".join(f"--{n} {getattr(a, n.replace('-', '_'))}" for n in bad))


# ------------------------------------------------------------------------------------------
# evaluation: tracking with the trained model, devkit metrics
# ------------------------------------------------------------------------------------------


def _learned_tracker(model, device, nsweeps: int, threshold: Optional[float] = None):
    from nutrack.model.scorer import LearnedScorer
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.run import learned_params

    scorer = LearnedScorer(model, device=device, nsweeps=nsweeps, threshold=threshold)
    return FilterTracker(learned_params(), scorer=scorer)


def _track_and_evaluate(tracker, data, cfg: Dict[str, Any], dets, out_json: str, nsweeps: int, use_points: bool,
                        progress: bool, desc: str) -> Dict[str, Any]:
    """Track the val split, write the tracking JSON, evaluate it with the devkit."""
    from nutrack.data import write_tracking_results
    from nutrack.eval import evaluate_tracking
    from nutrack.tracking.run import track_scenes

    split = cfg["val_split"]
    points = (lambda f: data.lidar_points(f, nsweeps=nsweeps)) if use_points else None
    t0 = time.perf_counter()
    run = track_scenes(tracker, data.scenes(split, dets), progress=progress, points=points,
                       total=len(data.split_scene_names(split)), desc=desc)
    wall = time.perf_counter() - t0
    write_tracking_results(out_json, run.results, data.sample_tokens(split), keep_top=True)
    summary = evaluate_tracking(out_json, cfg["dataroot"], cfg["version"], split,
                                output_dir=os.path.splitext(out_json)[0] + "_eval", data=data)
    return {
        "amota": _f(summary.get("amota")), "amotp": _f(summary.get("amotp")), "mota": _f(summary.get("mota")),
        "ids": _f(summary.get("ids")), "frag": _f(summary.get("frag")), "recall": _f(summary.get("recall")),
        "tracker_fps": run.fps, "end_to_end_fps": run.frames / wall if wall > 0 else None, "frames": run.frames,
        "results": os.path.abspath(out_json),
    }


def _f(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------


def _val_pass(model, scenes, pairs, a, device, cfg_model) -> Dict[str, float]:
    """Loss over the val frame pairs (fixed sampling) and the F1-best match threshold."""
    import torch

    from nutrack.model import association_loss, pair_probabilities
    from nutrack.model.data import batch_to_device, collate

    rng = np.random.default_rng([a.seed, 987654321])
    tot, n = 0.0, 0
    probs, labels = [], []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(pairs), a.batch_size):
            b = batch_to_device(collate(scenes, pairs[i:i + a.batch_size], a.nsample_q, rng, cfg_model.gates), device)
            if b["labels"].numel() == 0:
                continue
            logits, nm = model(b)
            loss, npos, nneg = association_loss(logits, nm, b, cfg_model.normalization, cfg_model.alpha,
                                                cfg_model.gamma)
            if npos and nneg:
                tot += float(loss)
                n += 1
            probs.append(pair_probabilities(logits, nm, b["pair_q"], nm.shape[0], cfg_model.normalization).cpu())
            labels.append(b["labels"].cpu())
    model.train()
    out = {"val_loss": tot / n if n else float("nan"), "threshold": cfg_model.threshold}
    if probs:
        p = torch.cat(probs).numpy().astype(np.float64)
        y = torch.cat(labels).numpy() > 0.5
        best, thr = -1.0, cfg_model.threshold
        for t in np.linspace(0.05, 0.95, 91):
            pred = p > t
            tp = float((pred & y).sum())
            f1 = 2 * tp / max(float(pred.sum() + y.sum()), 1.0)
            if f1 > best + 1e-12:
                best, thr = f1, float(t)
        out.update(threshold=round(thr, 4), val_pair_f1=best)
    return out


def _make_writer(run_dir: str, purge_step: Optional[int]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tensorboard's own import-time deprecation notices
        from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(os.path.join(run_dir, "tensorboard"), purge_step=purge_step)


def train(a) -> Dict[str, Any]:
    import torch
    import torch.nn as nn

    from nutrack.data import NuScenesData, load_detections
    from nutrack.model import AssociationNet, ModelConfig, association_loss
    from nutrack.model.data import batch_to_device, build_frames, collate, frame_pairs
    from nutrack.model.scorer import CHECKPOINT_FORMAT

    _validate(a)
    torch.set_num_threads(a.threads)
    dist, device = _init_distributed(a.device)
    progress = not a.quiet and dist.main

    # -- run directory and configuration ---------------------------------------------------
    resume_ck = None
    if a.resume is not None:
        target = a.resume or a.output
        if not target:
            raise TrainingError("--resume needs a run directory: --resume RUN_DIR, or --output RUN_DIR --resume")
        ck_path = os.path.join(target, "last.pt") if os.path.isdir(target) else target
        if not os.path.isfile(ck_path):
            raise TrainingError(f"--resume: no checkpoint at {ck_path}")
        resume_ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        if resume_ck.get("format") != CHECKPOINT_FORMAT or "train_state" not in resume_ck:
            raise TrainingError(f"--resume: {ck_path} is not a nutrack.train checkpoint")
        run_dir = os.path.dirname(os.path.abspath(ck_path))
        saved = resume_ck["config"]
        defaults = vars(build_parser().parse_args([]))
        mine = vars(a)
        changed = [k for k in _FROZEN_KEYS if k in saved and mine.get(k) != defaults.get(k)
                   and mine.get(k) != saved[k]]
        if changed:
            raise TrainingError("--resume: these settings differ from the run being resumed: "
                                + ", ".join(f"{k} ({saved[k]!r} -> {mine[k]!r})" for k in changed))
        for k in saved:
            if k in _FROZEN_KEYS or k in ("tiny", "no_points"):
                setattr(a, k, saved[k])
        cfg = {k: saved[k] for k in ("dataroot", "version", "train_split", "val_split", "train_detections",
                                     "val_detections")}
    else:
        cfg = _resolve_data(a, dist, progress)
        run_dir = a.output or os.path.join("runs", time.strftime("train-%Y%m%d-%H%M%S"))
        run_dir = os.path.abspath(run_dir)
        problem = None
        if dist.main:
            if os.path.isfile(os.path.join(run_dir, "last.pt")):
                problem = (f"{run_dir} already holds a run; pass --resume to continue it or choose "
                           f"another --output")
        run_dir, problem = _broadcast_obj((run_dir, problem), dist)  # every process stops, or none
        if problem:
            raise TrainingError(problem)
    config = {**{k: v for k, v in vars(a).items() if k not in ("resume", "abort_after_step")}, **cfg,
              "output": run_dir, "world_size": dist.world}
    for k, v in cfg.items():
        setattr(a, k, v)

    # -- seeds --------------------------------------------------------------------------------
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)

    # -- data ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    try:
        data = NuScenesData(cfg["dataroot"], cfg["version"])
        train_dets = load_detections(cfg["train_detections"], data, cfg["train_split"])
        val_dets = load_detections(cfg["val_detections"], data, cfg["val_split"])
        train_scenes = build_frames(data, cfg["train_split"], train_dets, nsweeps=a.nsweeps,
                                    max_points=a.max_points, progress=progress)
        val_scenes = build_frames(data, cfg["val_split"], val_dets, nsweeps=a.nsweeps, max_points=a.max_points)
    except (ValueError, FileNotFoundError) as e:
        raise TrainingError(str(e)) from e
    train_pairs = frame_pairs(train_scenes, a.max_gap)
    val_pairs = frame_pairs(val_scenes, 1)
    if len(train_pairs) == 0:
        raise TrainingError(f"split {cfg['train_split']!r} has no pair of frames with detections to train on")
    if dist.main:  # the run directory appears once the data is known to be good
        os.makedirs(run_dir, exist_ok=True)
        _atomic_json(config, os.path.join(run_dir, "config.json"))
        log.info("data: %d train frame pairs (%d scenes), %d val frame pairs, prepared in %.1f s",
                 len(train_pairs), len(train_scenes), len(val_pairs), time.perf_counter() - t0)

    # -- model, optimiser, schedule -------------------------------------------------------------
    mcfg = ModelConfig(hidden=a.hidden, use_points=not a.no_points, max_points=a.max_points,
                       normalization=a.normalization, alpha=a.alpha, gamma=a.gamma)
    model = AssociationNet(mcfg).to(device)
    global_bs = a.batch_size * dist.world
    steps_per_epoch = int(math.ceil(len(train_pairs) / global_bs))
    total_steps = steps_per_epoch * a.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    warm = max(1, min(50, total_steps // 20))

    def lr_at(step: int) -> float:  # a pure function of the step: identical after a resume
        if step < warm:
            return (step + 1) / warm
        frac = (step - warm) / max(1, total_steps - warm)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))

    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "skipped": 0, "best": None, "history": [],
             "train_seconds": 0.0, "pairs_seen": 0, "epoch_loss_sum": 0.0, "epoch_loss_n": 0}
    if resume_ck is not None:
        model.load_state_dict(resume_ck["model"])
        opt.load_state_dict(resume_ck["optimizer"])
        state.update(resume_ck["train_state"])
        _set_rng_state(resume_ck["rng"])
        mcfg.threshold = resume_ck["model_config"]["threshold"]
        if dist.main:
            log.info("resumed %s at epoch %d, step %d", run_dir, state["epoch"] + 1, state["step_in_epoch"])
    ddp = model
    if dist.on:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    writer = _make_writer(run_dir, purge_step=state["global_step"] if resume_ck is not None else None) \
        if dist.main else None

    def checkpoint(path: str, extra: Optional[dict] = None) -> None:
        if not dist.main:
            return
        _atomic_torch_save({
            "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "model_config": mcfg.to_dict(),
            "optimizer": opt.state_dict(), "train_state": dict(state), "rng": _rng_state(), "config": config,
            "data": {"nsweeps": a.nsweeps}, **(extra or {})}, path)

    last_path = os.path.join(run_dir, "last.pt")
    best_path = os.path.join(run_dir, "best.pt")

    def evaluate_epoch(epoch: int, final_eval: bool) -> Dict[str, Any]:
        vm = _val_pass(model, val_scenes, val_pairs, a, device, mcfg)
        mcfg.threshold = vm["threshold"]
        rec = {"epoch": epoch + 1, "global_step": state["global_step"], **vm}
        do_track = (a.eval_every and (epoch + 1) % a.eval_every == 0) or final_eval
        if do_track and dist.main:
            res = _track_and_evaluate(
                _learned_tracker(model, device, a.nsweeps), data, cfg, val_dets,
                os.path.join(run_dir, "val", f"learned_epoch{epoch + 1:03d}.json"), a.nsweeps, not a.no_points,
                False, f"tracking {cfg['val_split']}")
            rec.update(amota=res["amota"], mota=res["mota"], ids=res["ids"])
            model.train()
        return rec

    # -- the loop -----------------------------------------------------------------------------
    from tqdm import tqdm

    model.train()
    try:
        while state["epoch"] < a.epochs:
            epoch = state["epoch"]
            perm = np.random.default_rng([a.seed, epoch]).permutation(len(train_pairs))
            bar = tqdm(total=steps_per_epoch, initial=state["step_in_epoch"], desc=f"epoch {epoch + 1}/{a.epochs}",
                       unit="step", disable=not progress, dynamic_ncols=True, leave=True)
            t_epoch = time.perf_counter()
            pairs_epoch = 0
            while state["step_in_epoch"] < steps_per_epoch:
                s = state["step_in_epoch"]
                gidx = perm[s * global_bs:(s + 1) * global_bs]
                mine = gidx[dist.rank::dist.world]
                rng = np.random.default_rng([a.seed, epoch, s, dist.rank])
                t_step = time.perf_counter()
                idle = len(mine) == 0  # the last, short step can leave a process without frame pairs:
                if idle:               # it runs one with weight 0, so that DDP's collectives still match
                    mine = gidx[:1]
                b = batch_to_device(collate(train_scenes, train_pairs[mine], a.nsample_q, rng, mcfg.gates), device)
                logits, nm = ddp(b)
                loss, npos, nneg = association_loss(logits, nm, b, mcfg.normalization, mcfg.alpha, mcfg.gamma)
                loss = loss + 0.0 * nm.sum()  # the no-match head (unused by the sigmoid loss) joins the graph
                if idle:
                    loss, npos, nneg = loss * 0.0, 0, 0
                finite = bool(torch.isfinite(loss.detach()).item())
                g_pos, g_neg, g_bad, g_loss = _all_sum([npos, nneg, 0.0 if finite else 1.0,
                                                        float(loss.detach()) if finite else 0.0], dist, device)
                if g_bad:
                    raise NonFiniteLossError(
                        f"non-finite loss at epoch {epoch + 1}, step {s + 1} (global step {state['global_step'] + 1}); "
                        f"training stopped. The last good checkpoint is {last_path if os.path.exists(last_path) else '(none yet)'}"
                        f". Try a lower --lr (now {a.lr}) or check the detections for extreme values.")
                if g_pos == 0 or g_neg == 0:
                    state["skipped"] += 1
                    msg = (f"epoch {epoch + 1} step {s + 1}: batch skipped, no "
                           f"{'positive' if g_pos == 0 else 'negative'} pairs ({int(g_pos)} positives, "
                           f"{int(g_neg)} negatives)")
                    if dist.main:
                        log.warning(msg)
                        if writer is not None:
                            writer.add_scalar("train/skipped_batches", state["skipped"], state["global_step"])
                    opt.zero_grad(set_to_none=True)
                else:
                    for grp in opt.param_groups:
                        grp["lr"] = a.lr * lr_at(state["global_step"])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if a.grad_clip > 0:
                        nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
                    opt.step()
                    state["epoch_loss_sum"] += g_loss / dist.world
                    state["epoch_loss_n"] += 1
                    if writer is not None:
                        writer.add_scalar("train/loss", g_loss / dist.world, state["global_step"])
                        writer.add_scalar("train/lr", opt.param_groups[0]["lr"], state["global_step"])
                dt = time.perf_counter() - t_step
                n_pairs = len(gidx)
                pairs_epoch += n_pairs
                state["pairs_seen"] += n_pairs
                state["train_seconds"] += dt
                state["step_in_epoch"] += 1
                state["global_step"] += 1
                bar.update(1)
                el = time.perf_counter() - t_epoch
                bar.set_postfix_str(f"loss {state['epoch_loss_sum'] / max(state['epoch_loss_n'], 1):.4f}  {pairs_epoch / max(el, 1e-9):.1f} pairs/s")
                if (a.checkpoint_every and state["step_in_epoch"] % a.checkpoint_every == 0
                        and state["step_in_epoch"] < steps_per_epoch):
                    checkpoint(last_path)
                if a.abort_after_step is not None and state["global_step"] >= a.abort_after_step:
                    bar.close()
                    if writer is not None:
                        writer.flush()
                    _barrier(dist)
                    os._exit(75)  # simulates a killed run (tests of --resume)
            bar.close()
            epoch_s = time.perf_counter() - t_epoch
            # -- end of epoch: validation, checkpoints ------------------------------------------
            final = state["epoch"] + 1 == a.epochs
            rec = evaluate_epoch(epoch, final_eval=final)
            rec["train_loss"] = state["epoch_loss_sum"] / max(state["epoch_loss_n"], 1)
            rec["pairs_per_s"] = pairs_epoch / max(epoch_s, 1e-9)  # training steps only (this session)
            rec = _broadcast_obj(rec, dist)
            mcfg.threshold = rec["threshold"]
            state["history"].append(rec)
            if writer is not None:
                writer.add_scalar("epoch/train_loss", rec["train_loss"], epoch + 1)
                writer.add_scalar("val/loss", rec["val_loss"], epoch + 1)
                if rec.get("amota") is not None:
                    writer.add_scalar("val/amota", rec["amota"], epoch + 1)
                    writer.add_scalar("val/mota", rec["mota"], epoch + 1)
                writer.flush()
            key = rec["amota"] if rec.get("amota") is not None else None
            score = (1, key) if key is not None else (0, -rec["val_loss"] if math.isfinite(rec["val_loss"]) else -1e30)
            state["epoch"] += 1
            state["step_in_epoch"] = 0
            state["epoch_loss_sum"], state["epoch_loss_n"] = 0.0, 0
            if state["best"] is None or tuple(score) > tuple(state["best"]["score"]):
                state["best"] = {"epoch": epoch + 1, "score": list(score), "amota": rec.get("amota"),
                                 "val_loss": rec["val_loss"]}
                checkpoint(best_path)
            checkpoint(last_path)
            if dist.main:
                msg = f"epoch {epoch + 1}: train loss {rec['train_loss']:.4f}, val loss {rec['val_loss']:.4f}"
                if rec.get("amota") is not None:
                    msg += f", AMOTA {rec['amota']:.3f}, MOTA {rec['mota']:.3f}, IDS {rec['ids']:.0f}"
                log.info(msg)
            _barrier(dist)
    finally:
        if writer is not None:
            writer.close()

    summary = {"run_dir": run_dir, "config": config, "history": state["history"], "best": state["best"],
               "skipped_batches": state["skipped"],
               "train_frame_pairs_per_s": state["pairs_seen"] / max(state["train_seconds"], 1e-9),
               "device": str(device), "world_size": dist.world}
    if dist.main:
        summary["comparison"] = _final_comparison(a, cfg, data, val_dets, run_dir, device, progress)
        _atomic_json(summary, os.path.join(run_dir, "metrics.json"))
        _print_summary(summary)
    _barrier(dist)
    return summary


def _final_comparison(a, cfg, data, val_dets, run_dir, device, progress) -> Dict[str, Any]:
    """Track val with the best model, filter and centerpoint; devkit metrics of each."""
    from nutrack.model.scorer import load_model
    from nutrack.tracking.run import make_tracker

    best = os.path.join(run_dir, "best.pt")
    model, ck = load_model(best, device)
    out = {"best_checkpoint": best, "best_epoch": ck["train_state"]["best"]["epoch"] if ck["train_state"].get("best")
           else None, "threshold": model.config.threshold}
    # exactly what `python -m nutrack.track --method learned --checkpoint best.pt` runs
    methods = [("learned", lambda: make_tracker("learned", checkpoint=best, device=str(device)))]
    if not a.no_baselines:
        methods += [("filter", lambda: make_tracker("filter")), ("centerpoint", lambda: make_tracker("centerpoint"))]
    for name, factory in methods:
        res = _track_and_evaluate(factory(), data, cfg, val_dets, os.path.join(run_dir, "val", f"{name}.json"),
                                  a.nsweeps, name == "learned" and not a.no_points, progress,
                                  f"{name} {cfg['val_split']}")
        out[name] = res
    return out


def _print_summary(summary: Dict[str, Any]) -> None:
    comp = summary.get("comparison", {})
    rows = [m for m in ("learned", "filter", "centerpoint") if m in comp]
    fmt = lambda v, d=3: "   n/a" if v is None else (f"{v:6.{d}f}" if d else f"{v:6.0f}")
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
    print("\n".join(lines), flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        train(a)
    except NonFiniteLossError as e:
        print(f"nutrack.train: error: {e}", file=sys.stderr)
        return 3
    except TrainingError as e:
        print(f"nutrack.train: error: {e}", file=sys.stderr)
        return 2
    finally:
        try:
            import torch.distributed as tdist

            if tdist.is_available() and tdist.is_initialized():
                tdist.destroy_process_group()
        except Exception:  # pragma: no cover
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
