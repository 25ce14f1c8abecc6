"""The tracker interface: ``reset()`` at each scene start, then ``step()`` frame by frame."""
from __future__ import annotations

import abc
from typing import Optional

import numpy as np

from nutrack.data.classes import NUM_CLASSES
from nutrack.data.detections import Detections, Tracks
from nutrack.tracking.scorer import FrameContext

__all__ = ["Tracker", "as_detections", "tracking_classes_only"]


def as_detections(detections) -> Detections:
    """Accept a :class:`nutrack.data.Detections` or any object with ``boxes``,
    ``velocities``, ``scores`` and ``classes`` arrays (or a dict with those keys)."""
    if isinstance(detections, Detections):
        return detections
    if isinstance(detections, dict):
        return Detections(detections["boxes"], detections["velocities"], detections["scores"],
                          detections["classes"])
    return Detections(detections.boxes, detections.velocities, detections.scores, detections.classes)


def tracking_classes_only(det: Detections) -> Detections:
    """Drop detections whose class is not one of the seven tracking classes (e.g. the -1 that
    ``load_detections(..., tracking_only=False)`` gives detection-only classes), as CenterPoint
    drops classes not evaluated for tracking."""
    c = det.classes
    if len(c) and (c.min() < 0 or c.max() >= NUM_CLASSES):
        return det.select((c >= 0) & (c < NUM_CLASSES))
    return det


class Tracker(abc.ABC):
    """Tracking-by-detection in the global frame, one scene at a time.

    ``step(detections, timestamp)`` takes the frame's detections (global frame; see
    :class:`nutrack.data.Detections`) and its timestamp in seconds, and returns the frame's
    :class:`nutrack.data.Tracks` (boxes, velocities, scores, classes, integer ``track_ids``
    unique within the scene). Call ``reset()`` before each scene.
    """

    name: str = ""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget every track (a new scene starts); track ids restart."""

    @abc.abstractmethod
    def step(self, detections, timestamp: float, context: Optional[FrameContext] = None) -> Tracks:
        """Process one frame."""

    @property
    @abc.abstractmethod
    def num_tracks(self) -> int:
        """Live tracks held (output or coasting)."""

    def warm_up(self) -> None:
        """Run three small made-up frames through every code path (numba kernels load or
        compile, the ops' first calls), then reset, so that timing starts warm. Whatever the
        tracker held is forgotten first: its clock would put the made-up frames in the past."""
        self.reset()
        rng = np.random.default_rng(0)
        k = 2 * NUM_CLASSES
        boxes = np.zeros((k, 7), np.float32)
        boxes[:, 0] = np.arange(k) * 20.0
        boxes[:, 3:6] = 1.0
        classes = np.arange(k) % NUM_CLASSES
        vel = np.zeros((k, 2), np.float32)
        scores = np.linspace(0.05, 0.95, k).astype(np.float32)
        for i in range(3):
            jitter = rng.normal(0, 0.05, (k, 2)).astype(np.float32)
            b = boxes.copy()
            b[:, :2] += jitter
            keep = np.arange(k) % 5 != i  # some misses
            self.step(Detections(b[keep], vel[keep], scores[keep], classes[keep]), 0.5 * i)
        self.reset()
