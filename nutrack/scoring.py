"""The scorer contract: what a tracker asks of whatever scores its (track, detection) pairs.

A leaf module (numpy only, no nutrack imports): the trackers (:mod:`nutrack.tracking`) and the
learned network (:mod:`nutrack.model`) both import it, so neither package imports the other
to agree on the interface.

A scorer provides:

* ``kind``: ``"similarity"`` (larger is better, the default) or ``"distance"`` (smaller is
  better).
* ``threshold`` (optional float or per-class sequence): the gate a pair must pass to match
  (``> threshold`` for similarities, ``< threshold`` for distances). When absent, the
  tracker's ``match_threshold`` parameter applies.
* ``__call__(tracks: TrackView, detections: Detections, context: FrameContext,
  candidates: (M, N) bool or None) -> (M, N)`` float array (numpy, or torch/cupy: it is
  moved to the host). ``candidates`` is the tracker's gate (same class and predicted
  centre within the class's ``gate_distance``); pairs outside it never match whatever
  their score, so a scorer may skip them (any value there is ignored). Pairs the scorer
  rules out may hold ``-inf`` (similarity) / ``+inf`` (distance) or NaN.
* ``reset()``: called at the start of every scene.
* ``observe(track_ids, detection_index, detections, context)``: called at the end of every
  frame with the ids of the live tracks and, for each, the index of the detection it was
  updated with this frame (-1 when it was not), so a scorer can keep per-track features
  (for instance point-cloud embeddings) keyed by track id.
* ``rescore(tracks, context)`` (optional): called in the tracker's output stage with a
  :class:`TrackView` of the tracks it is about to report (``boxes`` as reported, ``scores``
  the scores it would report); returns ``(M,)`` scores in 0-1 to report instead, or None to
  keep the tracker's. The learned tracker's confidence head (:mod:`nutrack.model.confidence`).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

__all__ = ["TrackView", "FrameContext", "Scorer"]


@dataclass(frozen=True)
class TrackView:
    """Read-only arrays of the live tracks at association time (after prediction).

    ids (M,) int64; classes (M,) int64; boxes (M, 7) float32 predicted to this frame;
    velocities (M, 2) float32; scores (M,) float32 last reported score; hits (M,) matches so
    far; age (M,) frames since birth; time_since_update (M,) frames since the last match
    (1 for a track matched in the previous frame); confirmed (M,) bool.
    """

    ids: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray
    velocities: np.ndarray
    scores: np.ndarray
    hits: np.ndarray
    age: np.ndarray
    time_since_update: np.ndarray
    confirmed: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class FrameContext:
    """What a scorer may want to know about the frame besides the detections.

    timestamp: seconds; time_lag: seconds since the previous frame of the scene (0 at its
    start); index: frame index in the scene; sample_token: nuScenes sample token or None;
    frame: the data layer's :class:`nutrack.data.Frame` (ego pose, calibration, lidar path)
    when tracking a dataset, else None; points: a callable returning the frame's LIDAR_TOP
    points in the global frame (loaded on first use), or None.
    """

    timestamp: float
    time_lag: float
    index: int
    sample_token: Optional[str] = None
    frame: Any = None
    points: Optional[Callable[[], np.ndarray]] = None


class Scorer(abc.ABC):
    """Scores every (track, detection) pair; see the module docstring for the contract."""

    kind: str = "similarity"
    threshold: Optional[Union[float, Sequence[float]]] = None

    def reset(self) -> None:
        """A new scene starts."""

    @abc.abstractmethod
    def __call__(self, tracks: TrackView, detections, context: FrameContext,
                 candidates: Optional[np.ndarray] = None) -> np.ndarray:
        """(M, N) affinity of tracks x detections; only ``candidates`` pairs matter."""

    def observe(self, track_ids: np.ndarray, detection_index: np.ndarray, detections,
                context: FrameContext) -> None:
        """End of a frame: live track ids and the detection each was updated with (-1: none)."""

    def rescore(self, tracks: TrackView, context: FrameContext) -> Optional[np.ndarray]:
        """Scores to report for the output ``tracks`` instead of the tracker's; None keeps them."""
        return None
