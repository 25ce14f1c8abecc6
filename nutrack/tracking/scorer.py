"""The plug-in point for association: a :class:`Scorer` returns the (tracks x detections)
affinity matrix; the tracker owns the state and the life cycle.

The filter tracker scores pairs with :class:`AffinityScorer` (``nutrack.ops.pairwise_affinity``
on the predicted track boxes and the detections); the learned tracker with the network of
``nutrack.model``, loaded by :func:`load_learned_scorer`.

Contract for a scorer (what ``nutrack.model.load_scorer(checkpoint, device)`` must return):

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
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

__all__ = [
    "TrackView",
    "FrameContext",
    "Scorer",
    "AffinityScorer",
    "LearnedModelUnavailable",
    "load_learned_scorer",
    "affinity",
    "gated_affinity",
]


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


def affinity(boxes_a, boxes_b, metric: str, classes_a=None, classes_b=None, fill: Optional[float] = None,
             backend: str = "auto") -> np.ndarray:
    """``nutrack.ops.pairwise_affinity`` as a numpy ``(M, N)`` float32 array. Pairs of
    different classes take ``fill``; by default the op's, worse than any real pair (+inf for
    ``center_distance``, -1 for the IoU metrics; the trackers also compare classes)."""
    import nutrack.ops as ops

    if backend == "cuda" and isinstance(boxes_a, np.ndarray):
        # host arrays, CUDA kernels asked for: upload through torch, bring the matrix back
        import torch

        dev = torch.device("cuda")
        boxes_a = torch.from_numpy(np.ascontiguousarray(boxes_a, np.float32)).to(dev)
        boxes_b = torch.from_numpy(np.ascontiguousarray(boxes_b, np.float32)).to(dev)
        if classes_a is not None:
            classes_a = torch.from_numpy(np.ascontiguousarray(classes_a, np.int64)).to(dev)
            classes_b = torch.from_numpy(np.ascontiguousarray(classes_b, np.int64)).to(dev)
    out = ops.pairwise_affinity(boxes_a, boxes_b, metric, classes_a=classes_a, classes_b=classes_b,
                                fill=fill, backend=backend)
    return np.asarray(out) if isinstance(out, np.ndarray) else _to_numpy(out)


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def gated_affinity(boxes_a, boxes_b, metric: str, candidates: np.ndarray, backend: str = "auto") -> np.ndarray:
    """``pairwise_affinity`` computed only where it can matter: the kernel gets the connected
    components of the ``candidates`` graph as classes, so it evaluates pairs inside a
    component (every candidate pair, and few others) and fills the rest. Returns float64
    ``(M, N)`` with ``-inf`` (similarities) / ``+inf`` (distances) outside ``candidates``."""
    from nutrack.tracking.association import component_labels

    m, n = candidates.shape
    bad = np.inf if metric == "center_distance" else -np.inf
    if m == 0 or n == 0 or not candidates.any():
        return np.full((m, n), bad)
    la, lb = component_labels(candidates)
    out = affinity(boxes_a, boxes_b, metric, la, lb, backend=backend).astype(np.float64)
    out[~candidates] = bad
    return out


class AffinityScorer(Scorer):
    """Geometric affinity of the predicted track boxes and the detections, same class only,
    from ``nutrack.ops.pairwise_affinity`` (one call per frame for all classes; with the
    tracker's candidate gate, only gated pairs are computed: :func:`gated_affinity`)."""

    def __init__(self, metric: str = "giou_3d", backend: str = "auto"):
        from nutrack.tracking.params import METRICS

        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.kind = "distance" if metric == "center_distance" else "similarity"
        self.backend = backend

    def __call__(self, tracks: TrackView, detections, context: FrameContext,
                 candidates: Optional[np.ndarray] = None) -> np.ndarray:
        if candidates is not None:
            return gated_affinity(tracks.boxes, detections.boxes, self.metric, candidates, backend=self.backend)
        return affinity(tracks.boxes, detections.boxes, self.metric, tracks.classes, detections.classes,
                        backend=self.backend)


class LearnedModelUnavailable(RuntimeError):
    """``--method learned`` was asked for but the learned model cannot be loaded."""


def load_learned_scorer(checkpoint: Optional[str], device: str = "cpu") -> Scorer:
    """The learned association network of ``nutrack.model`` as a :class:`Scorer`.

    ``nutrack.model`` must provide ``load_scorer(checkpoint: str, device: str) -> Scorer``.
    Raises :class:`LearnedModelUnavailable` with an explanation when the package is not
    there (it is built by the learned-tracker work) or lacks ``load_scorer``, and
    ``ValueError`` when no checkpoint is given or it does not exist.
    """
    import os

    if not checkpoint:
        raise ValueError("--method learned needs --checkpoint PATH (a checkpoint written by python -m nutrack.train)")
    if not os.path.exists(checkpoint):
        raise ValueError(f"checkpoint {checkpoint!r} does not exist")
    try:
        module = importlib.import_module("nutrack.model")
    except ModuleNotFoundError as e:
        if e.name in ("nutrack.model",):
            raise LearnedModelUnavailable(
                "--method learned needs the learned association model (package nutrack.model), which is not "
                "part of this installation yet; use --method filter or --method centerpoint") from None
        raise LearnedModelUnavailable(
            f"the learned model package nutrack.model could not be imported: missing module {e.name!r} "
            "(install nutrack with its 'train' extra: pip install 'nutrack[train]')") from e
    factory = getattr(module, "load_scorer", None)
    if factory is None:
        raise LearnedModelUnavailable(
            "nutrack.model has no load_scorer(checkpoint, device) function, the interface the tracker loads "
            "the learned scorer through")
    scorer = factory(checkpoint, device=device)
    if not callable(scorer):
        raise LearnedModelUnavailable(f"nutrack.model.load_scorer returned {type(scorer).__name__}, not a scorer")
    return scorer
