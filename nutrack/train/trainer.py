"""The training loop: a :class:`Trainer` stepping a :class:`TrainState` through the epochs.

Everything a step depends on is a function of (seed, epoch, step, rank) or lives in the
state, the model, the optimiser and the RNG states, which every checkpoint holds; so a run
killed at any point and resumed from its last checkpoint ends bit-identical to an
uninterrupted one (on the CPU; tests/test_train.py holds it).

The steps, in order: :meth:`Trainer.fit` runs :meth:`~Trainer.train_epoch` (a
:meth:`~Trainer.train_step` per global batch: :meth:`~Trainer._forward`,
:meth:`~Trainer._reduce`, then :meth:`~Trainer._optimise` or :meth:`~Trainer._skip`, then
:meth:`~Trainer._advance`) and :meth:`~Trainer.end_epoch` (validation, the match threshold,
checkpoints) for every epoch left.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from nutrack.model import AssociationNet, ModelConfig, association_loss
from nutrack.model.checkpoint import CheckpointError
from nutrack.model.training_data import batch_to_device, collate
from nutrack.train.checkpoints import rng_state, save_checkpoint, set_rng_state
from nutrack.train.config import TrainConfig
from nutrack.train.dist import Dist, all_sum, barrier, broadcast_obj
from nutrack.train.errors import NonFiniteLossError
from nutrack.train.evaluation import learned_tracker, track_and_evaluate, val_pass
from nutrack.train.inputs import TrainingInputs
from nutrack.train.rundir import BEST, LAST

__all__ = ["TrainState", "Trainer", "StepHook", "lr_factor"]

log = logging.getLogger("nutrack.train")

#: called after every training step (and its checkpoint, if one is due) with the trainer
StepHook = Callable[["Trainer"], None]


@dataclass
class TrainState:
    """Where a run stands; saved (as a dict) in every checkpoint and restored on resume.

    epoch: epochs completed; step_in_epoch, global_step: steps done in this epoch and in all;
    skipped: steps skipped for want of positive or negative pairs; best: the best epoch so far
    (``epoch``, ``score``, ``amota``, ``val_loss``); history: one record per epoch;
    epoch_loss_sum / epoch_loss_n: this epoch's running train loss; threshold: the match
    threshold, decided by each epoch's val pass (the only place that changes it).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    skipped: int = 0
    best: Optional[Dict[str, Any]] = None
    history: List[Dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    pairs_seen: int = 0
    epoch_loss_sum: float = 0.0
    epoch_loss_n: int = 0
    threshold: float = ModelConfig.threshold

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_checkpoint(cls, ck: Dict[str, Any]) -> "TrainState":
        # checkpoints written before the threshold joined the state keep it in model_config
        saved = {"threshold": ck["model_config"]["threshold"], **ck["train_state"]}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})


def lr_factor(step: int, warm: int, total: int) -> float:
    """Linear warm-up over ``warm`` steps, then cosine decay to 5 %: a pure function of the
    step, so a resumed run follows the same schedule."""
    if step < warm:
        return (step + 1) / warm
    frac = (step - warm) / max(1, total - warm)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))


def _make_writer(run_dir: str, purge_step: Optional[int]):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tensorboard's own import-time deprecation notices
        from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(os.path.join(run_dir, "tensorboard"), purge_step=purge_step)


class Trainer:
    """Trains an :class:`AssociationNet` on ``inputs`` as ``config`` says.

    Args:
        config: the run's complete configuration (data paths resolved, ``output`` the run
            directory); dist, device: this process's place in the job and its device;
            step_hooks: called after every step with the trainer (e.g. a test that kills the
            process at a known step).
    """

    def __init__(self, config: TrainConfig, inputs: TrainingInputs, dist: Dist, device: torch.device,
                 step_hooks: Sequence[StepHook] = ()):
        self.config, self.inputs, self.dist, self.device = config, inputs, dist, device
        self.step_hooks = tuple(step_hooks)
        self.model_config = ModelConfig(hidden=config.hidden, use_points=not config.no_points,
                                        max_points=config.max_points, normalization=config.normalization,
                                        alpha=config.alpha, gamma=config.gamma)
        self.model = AssociationNet(self.model_config).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.global_batch = config.batch_size * dist.world
        self.steps_per_epoch = int(math.ceil(len(inputs.train_pairs) / self.global_batch))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = max(1, min(50, self.total_steps // 20))
        self.state = TrainState()
        self.resumed = False
        self.last_path = os.path.join(config.output, LAST)
        self.best_path = os.path.join(config.output, BEST)
        self.writer = None
        self.ddp = self.model

    # -- set-up --------------------------------------------------------------------------------
    def restore(self, ck: Dict[str, Any], path: str) -> None:
        """Continue from the checkpoint ``ck`` read from ``path``: weights, optimiser, state and
        RNG states."""
        try:
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"--resume {path!r}: the checkpoint does not fit the network of "
                                  f"this run (hidden={self.config.hidden}): {str(e).splitlines()[0]}") from None
        self.state = TrainState.from_checkpoint(ck)
        set_rng_state(ck["rng"])
        self.resumed = True

    def _start(self) -> None:
        """Wrap the model for DDP and open TensorBoard (rank 0), once the state is known."""
        if self.dist.on:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.dist.main:
            self.writer = _make_writer(self.config.output, self.state.global_step if self.resumed else None)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train every epoch left; returns the final state."""
        self._start()
        self.model.train()
        try:
            while self.state.epoch < self.config.epochs:
                pairs, seconds = self.train_epoch()
                self.end_epoch(pairs, seconds)
        finally:
            if self.writer is not None:
                self.writer.close()
        return self.state

    def train_epoch(self) -> Tuple[int, float]:
        """The steps left in this epoch; ``(frame pairs trained on, seconds)``."""
        epoch, cfg = self.state.epoch, self.config
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.inputs.train_pairs))
        bar = tqdm(total=self.steps_per_epoch, initial=self.state.step_in_epoch, unit="step", leave=True,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=cfg.quiet or not self.dist.main,
                   dynamic_ncols=True)
        t0, pairs = time.perf_counter(), 0
        with bar:
            while self.state.step_in_epoch < self.steps_per_epoch:
                pairs += self.train_step(perm)
                bar.update(1)
                rate = pairs / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix_str(f"loss {self._epoch_loss():.4f}  {rate:.1f} pairs/s")
                self._maybe_checkpoint_mid_epoch()
                for hook in self.step_hooks:
                    hook(self)
        return pairs, time.perf_counter() - t0

    def train_step(self, perm: np.ndarray) -> int:
        """One global batch; returns its number of frame pairs (over all processes)."""
        s, epoch = self.state.step_in_epoch, self.state.epoch
        gidx = perm[s * self.global_batch:(s + 1) * self.global_batch]
        mine = gidx[self.dist.rank::self.dist.world]
        rng = np.random.default_rng([self.config.seed, epoch, s, self.dist.rank])
        t0 = time.perf_counter()
        # the last, short step can leave a process without frame pairs: it runs one with
        # weight 0, so that DDP's collectives still match
        idle = len(mine) == 0
        loss, npos, nneg = self._forward(gidx[:1] if idle else mine, rng, idle)
        g_pos, g_neg, g_loss = self._reduce(loss, npos, nneg)
        if g_pos == 0 or g_neg == 0:
            self._skip(g_pos, g_neg)
        else:
            self._optimise(loss, g_loss)
        self._advance(len(gidx), time.perf_counter() - t0)
        return len(gidx)

    def _forward(self, frame_pairs: np.ndarray, rng: np.random.Generator, idle: bool):
        mc = self.model_config
        b = batch_to_device(collate(self.inputs.train_scenes, self.inputs.train_pairs[frame_pairs],
                                    self.config.nsample_q, rng, mc.gates), self.device)
        logits, nm = self.ddp(b)
        loss, npos, nneg = association_loss(logits, nm, b, mc.normalization, mc.alpha, mc.gamma)
        loss = loss + 0.0 * nm.sum()  # the no-match head (unused by the sigmoid loss) joins the graph
        return (loss * 0.0, 0, 0) if idle else (loss, npos, nneg)

    def _reduce(self, loss: torch.Tensor, npos: int, nneg: int) -> Tuple[float, float, float]:
        """Positives, negatives and loss summed over the processes; stops on a non-finite loss
        (on every process at once)."""
        finite = bool(torch.isfinite(loss.detach()).item())
        g_pos, g_neg, g_bad, g_loss = all_sum([npos, nneg, 0.0 if finite else 1.0,
                                               float(loss.detach()) if finite else 0.0], self.dist, self.device)
        if g_bad:
            st = self.state
            last = self.last_path if os.path.exists(self.last_path) else "(none yet)"
            raise NonFiniteLossError(
                f"non-finite loss at epoch {st.epoch + 1}, step {st.step_in_epoch + 1} (global step "
                f"{st.global_step + 1}); training stopped. The last good checkpoint is {last}. Try a lower "
                f"--lr (now {self.config.lr}) or check the detections for extreme values.")
        return g_pos, g_neg, g_loss

    def _skip(self, g_pos: float, g_neg: float) -> None:
        """A batch without positive or without negative pairs teaches nothing: count and log it."""
        st = self.state
        st.skipped += 1
        if self.dist.main:
            log.warning("epoch %d step %d: batch skipped, no %s pairs (%d positives, %d negatives)",
                        st.epoch + 1, st.step_in_epoch + 1, "positive" if g_pos == 0 else "negative",
                        int(g_pos), int(g_neg))
            if self.writer is not None:
                self.writer.add_scalar("train/skipped_batches", st.skipped, st.global_step)
        self.optimizer.zero_grad(set_to_none=True)

    def _optimise(self, loss: torch.Tensor, g_loss: float) -> None:
        st, opt = self.state, self.optimizer
        for group in opt.param_groups:
            group["lr"] = self.config.lr * lr_factor(st.global_step, self.warmup_steps, self.total_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        opt.step()
        st.epoch_loss_sum += g_loss / self.dist.world
        st.epoch_loss_n += 1
        if self.writer is not None:
            self.writer.add_scalar("train/loss", g_loss / self.dist.world, st.global_step)
            self.writer.add_scalar("train/lr", opt.param_groups[0]["lr"], st.global_step)

    def _advance(self, frame_pairs: int, seconds: float) -> None:
        st = self.state
        st.pairs_seen += frame_pairs
        st.train_seconds += seconds
        st.step_in_epoch += 1
        st.global_step += 1

    def _epoch_loss(self) -> float:
        return self.state.epoch_loss_sum / max(self.state.epoch_loss_n, 1)

    # -- end of an epoch -----------------------------------------------------------------------
    def end_epoch(self, pairs: int, seconds: float) -> None:
        """Validate, decide the match threshold, keep the best epoch, write the checkpoints."""
        st = self.state
        rec = self._validate()
        rec["train_loss"] = self._epoch_loss()
        rec["pairs_per_s"] = pairs / max(seconds, 1e-9)  # training steps only (this session)
        rec = broadcast_obj(rec, self.dist)  # rank 0's tracking metrics on every process
        st.threshold = rec["threshold"]
        st.history.append(rec)
        self._log_epoch(rec)
        st.epoch += 1
        st.step_in_epoch, st.epoch_loss_sum, st.epoch_loss_n = 0, 0.0, 0
        score = _epoch_score(rec)
        if st.best is None or tuple(score) > tuple(st.best["score"]):
            st.best = {"epoch": rec["epoch"], "score": list(score), "amota": rec.get("amota"),
                       "val_loss": rec["val_loss"]}
            self.checkpoint(self.best_path)
        self.checkpoint(self.last_path)
        if self.dist.main:
            log.info(_epoch_message(rec))
        barrier(self.dist)

    def _validate(self) -> Dict[str, Any]:
        """This epoch's val loss and threshold; on evaluation epochs (and the last) rank 0 also
        tracks the val split with the network and the new threshold."""
        cfg, st = self.config, self.state
        vm = val_pass(self.model, self.inputs, cfg, self.device, self.model_config, st.threshold)
        rec = {"epoch": st.epoch + 1, "global_step": st.global_step, **vm}
        due = (cfg.eval_every and (st.epoch + 1) % cfg.eval_every == 0) or st.epoch + 1 == cfg.epochs
        if due and self.dist.main:
            tracker = learned_tracker(self.model, self.device, cfg.nsweeps, vm["threshold"], cfg.threads,
                                      cfg.params)
            res = track_and_evaluate(tracker, self.inputs, cfg,
                                     os.path.join(cfg.output, "val", f"learned_epoch{st.epoch + 1:03d}.json"),
                                     not cfg.no_points, False, f"tracking {cfg.val_split}")
            rec.update(amota=res["amota"], mota=res["mota"], ids=res["ids"])
            self.model.train()
        return rec

    def _log_epoch(self, rec: Dict[str, Any]) -> None:
        if self.writer is None:
            return
        e = rec["epoch"]
        self.writer.add_scalar("epoch/train_loss", rec["train_loss"], e)
        self.writer.add_scalar("val/loss", rec["val_loss"], e)
        if rec.get("amota") is not None:
            self.writer.add_scalar("val/amota", rec["amota"], e)
            self.writer.add_scalar("val/mota", rec["mota"], e)
        self.writer.flush()

    # -- checkpoints ---------------------------------------------------------------------------
    def _maybe_checkpoint_mid_epoch(self) -> None:
        every, s = self.config.checkpoint_every, self.state.step_in_epoch
        if every and s % every == 0 and s < self.steps_per_epoch:  # the epoch's end writes its own
            self.checkpoint(self.last_path)

    def checkpoint(self, path: str) -> None:
        """Everything a resume needs, written atomically by rank 0."""
        if not self.dist.main:
            return
        save_checkpoint(path, model=self.model.state_dict(),
                        model_config=dataclasses.replace(self.model_config, threshold=self.state.threshold).to_dict(),
                        optimizer=self.optimizer.state_dict(), train_state=self.state.to_dict(), rng=rng_state(),
                        config=self.config.to_dict(), data={"nsweeps": self.config.nsweeps})


def _epoch_score(rec: Dict[str, Any]) -> Tuple[int, float]:
    """What "best epoch" means: the highest val AMOTA; before any AMOTA, the lowest val loss."""
    if rec.get("amota") is not None:
        return 1, rec["amota"]
    return 0, -rec["val_loss"] if math.isfinite(rec["val_loss"]) else -1e30


def _epoch_message(rec: Dict[str, Any]) -> str:
    msg = f"epoch {rec['epoch']}: train loss {rec['train_loss']:.4f}, val loss {rec['val_loss']:.4f}"
    if rec.get("amota") is not None:
        msg += f", AMOTA {rec['amota']:.3f}, MOTA {rec['mota']:.3f}, IDS {rec['ids']:.0f}"
    return msg
