"""The plug-in point for association: a :class:`Scorer` returns the (tracks x detections)
affinity matrix; the tracker owns the state and the life cycle.

The filter tracker scores pairs with :class:`AffinityScorer` (``nutrack.ops.pairwise_affinity``
on the predicted track boxes and the detections); the learned tracker with the network of
``nutrack.model``, loaded by :func:`load_learned_scorer`.

The contract a scorer follows (``kind``, ``threshold``, ``__call__``, ``reset``,
``observe``) and the types it receives (:class:`TrackView`, :class:`FrameContext`) live in the
leaf module :mod:`nutrack.scoring`, which :mod:`nutrack.model` imports too; they are
re-exported here. ``nutrack.model`` is imported only by :func:`load_learned_scorer`, when a
learned scorer is asked for: the dependency runs one way, tracking -> model.
"""
from __future__ import annotations

import importlib
from typing import Optional

import numpy as np

from nutrack.scoring import FrameContext, Scorer, TrackView

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


def affinity(boxes_a, boxes_b, metric: str, classes_a=None, classes_b=None, fill: Optional[float] = None,
             backend: str = "auto", frames=None) -> np.ndarray:
    """``nutrack.ops.pairwise_affinity`` as a numpy ``(M, N)`` float32 array. Pairs of
    different classes take ``fill``; by default the op's, worse than any real pair (+inf for
    ``center_distance``, -1 for the IoU metrics; the trackers also compare classes).

    ``frames``: optional ``(frames_a, frames_b)``, the boxes' already validated host frames
    (:func:`nutrack.ops.affinity.frames_affinity`, trusted inputs); used on host backends
    instead of validating and framing the boxes again, with the same result."""
    import nutrack.ops as ops

    if frames is not None and backend != "cuda":
        from nutrack.ops.affinity import frames_affinity

        return frames_affinity(frames[0], frames[1], metric, classes_a, classes_b, fill, backend=backend)

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
    from nutrack.ops._arrays import to_host

    return to_host(out)


def gated_affinity(boxes_a, boxes_b, metric: str, candidates: np.ndarray, backend: str = "auto",
                   frames=None) -> np.ndarray:
    """``pairwise_affinity`` computed only where it can matter: the kernel gets the connected
    components of the ``candidates`` graph as classes, so it evaluates pairs inside a
    component (every candidate pair, and few others) and fills the rest. Returns float64
    ``(M, N)`` with ``-inf`` (similarities) / ``+inf`` (distances) outside ``candidates``.
    ``frames``: as for :func:`affinity`."""
    from nutrack.tracking.association import component_labels

    m, n = candidates.shape
    bad = np.inf if metric == "center_distance" else -np.inf
    if m == 0 or n == 0 or not candidates.any():
        return np.full((m, n), bad)
    la, lb = component_labels(candidates)
    out = affinity(boxes_a, boxes_b, metric, la, lb, backend=backend, frames=frames).astype(np.float64)
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
