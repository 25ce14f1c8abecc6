"""The learned track confidence: is this output track a real object?

AMOTA thresholds the reported score, so what it rewards is the ORDER of the boxes by score:
a false track that reports a detector score of 0.6 costs as much as a real one reported at
0.3 gains. The filter reports the last detection's score, decayed while a track coasts. The
confidence head replaces it with a probability learned from what the tracker knows about the
track and what the lidar shows in its box:

* the output box's geometry relative to the ego (:func:`nutrack.model.features.object_geometry`:
  centre, range, size, heading, velocity, score, and the number of lidar points in the
  enlarged box -- a coasting track whose box still holds points is probably a missed object,
  a confident detection in an empty box probably a false one);
* the track's statistics: frames since its last match, hits, age, the mean of its reported
  scores, how many frames it has been output;
* its recent history: for each of its last ``history`` output frames, the score, whether it
  was matched, and the points in its box (a fixed window, most recent first, zero-padded: a
  small temporal encoder over the track's own observations).

It is trained on the tracker's own rollouts (:func:`nutrack.train.confidence.fit_confidence`):
every box the learned tracker outputs on the train split, labelled real when the devkit's
matching rule gives it a ground-truth box (same class, centre within 2 m, Hungarian), with
a sigmoid focal loss.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nutrack.data.classes import NUM_CLASSES
from nutrack.model import _feature_kernels as _kernels
from nutrack.model.features import GEOM_DIM

__all__ = ["ConfidenceConfig", "ConfidenceNet", "TrackHistory", "confidence_inputs", "HISTORY_FIELDS",
           "TRACK_DIM"]

#: per output frame of a track: its score, matched (1/0), log(1 + points in the box) / 5, present (1/0)
HISTORY_FIELDS = 4
#: track statistics (see :func:`confidence_inputs`)
TRACK_DIM = 7


@dataclass
class ConfidenceConfig:
    """history: output frames of each track the head sees (>= 1, the current one included);
    hidden: MLP width; alpha, gamma: its focal loss; epochs, lr: its training."""

    history: int = 4
    hidden: int = 64
    alpha: float = 0.25
    gamma: float = 2.0
    epochs: int = 30
    lr: float = 3e-3

    def __post_init__(self):
        if int(self.history) < 1 or int(self.hidden) < 1 or int(self.epochs) < 1:
            raise ValueError(f"confidence history, hidden and epochs must be >= 1, got {self}")

    @property
    def input_dim(self) -> int:
        return GEOM_DIM + NUM_CLASSES + TRACK_DIM + HISTORY_FIELDS * int(self.history)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ConfidenceConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class ConfidenceNet(nn.Module):
    """An MLP over :func:`confidence_inputs` -> one logit per track."""

    def __init__(self, config: Optional[ConfidenceConfig] = None):
        super().__init__()
        self.config = c = config or ConfidenceConfig()
        self.layers = nn.ModuleList([nn.Linear(c.input_dim, c.hidden), nn.Linear(c.hidden, c.hidden),
                                     nn.Linear(c.hidden, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the functional calls: a module call costs more than the layer on tens of tracks
        first, second, last = self.layers
        x = torch.relu(F.linear(x, first.weight, first.bias))
        x = torch.relu(F.linear(x, second.weight, second.bias))
        return F.linear(x, last.weight, last.bias).squeeze(1)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """float32 ``(N,)`` confidences of the rows of ``x`` (inference, on the CPU)."""
        with torch.inference_mode():
            return torch.sigmoid(self(torch.from_numpy(x))).numpy()


class TrackHistory:
    """The last ``length`` output frames of each track (:data:`HISTORY_FIELDS` each), the number
    of frames it has been output and the sum of its reported scores, kept for the tracks output
    in the latest frame as arrays sorted by id (a track not output for a frame starts again)."""

    def __init__(self, length: int):
        self.length = int(length)
        self.reset()

    def reset(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.window = np.zeros((0, self.length, HISTORY_FIELDS), np.float32)
        self.count = np.zeros(0, np.int64)
        self.score_sum = np.zeros(0, np.float64)

    def push(self, ids: np.ndarray, entries: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add this frame's ``entries (M, HISTORY_FIELDS)`` of tracks ``ids``; returns their
        windows ``(M, length, HISTORY_FIELDS)`` (this frame first), output counts and mean scores."""
        ids = np.ascontiguousarray(ids, np.int64).reshape(-1)
        window, count, score_sum, self.ids, self.window, self.count, self.score_sum = _kernels.history_push(
            self.ids, self.window, self.count, self.score_sum, ids, np.ascontiguousarray(entries, np.float32))
        return window, count, score_sum / count


def confidence_inputs(tracks, geom: np.ndarray, history: TrackHistory) -> np.ndarray:
    """``(M, input_dim)`` float32 inputs of the output tracks (pushing this frame into ``history``).

    ``tracks``: a :class:`nutrack.scoring.TrackView` of the output tracks (``scores``: the score
    the tracker reports, ``time_since_update`` 0 for a track matched this frame); ``geom``:
    their output boxes' :func:`object_geometry` rows (points counted in the frame's cloud)."""
    geom = np.ascontiguousarray(geom, np.float32)
    out = np.empty((len(geom), GEOM_DIM + NUM_CLASSES + TRACK_DIM + history.length * HISTORY_FIELDS), np.float32)
    # one numba call instead of ~35 array operations
    history.ids, history.window, history.count, history.score_sum = _kernels.confidence_frame(
        history.ids, history.window, history.count, history.score_sum, *(
            np.ascontiguousarray(getattr(tracks, name), np.int64).reshape(-1)
            for name in ("ids", "classes", "time_since_update", "hits", "age")),
        np.ascontiguousarray(tracks.scores, np.float32).reshape(-1), geom, NUM_CLASSES, out)
    return out
