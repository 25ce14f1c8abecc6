"""Tracking-by-detection on nuScenes detections, in the global frame, scene by scene.

Trackers (``reset()`` per scene, ``step(detections, timestamp)`` per frame):

* :class:`CenterPointTracker` — CenterPoint's published greedy tracker, reproduced exactly.
* :class:`FilterTracker` — per-class Kalman CV / CTRA motion, two-stage association on
  ``nutrack.ops.pairwise_affinity``, confirmation, per-class max age, score refinement.
* the learned tracker — :class:`FilterTracker` life cycle with the learned network as its
  :class:`Scorer` (:func:`make_tracker` ``("learned", checkpoint=...)``).

:func:`make_tracker` builds one by name; :func:`track_scenes` runs one over a dataset's scenes.
"""
from nutrack.tracking.association import (
    assign,
    detection_order_greedy_assignment,
    greedy_assignment,
    hungarian_assignment,
    nms,
)
from nutrack.tracking.base import Tracker
from nutrack.tracking.centerpoint import CenterPointTracker
from nutrack.tracking.filter import FilterTracker, TrackTable
from nutrack.tracking.params import CenterPointParams, FilterParams, parse_overrides
from nutrack.tracking.run import METHODS, TrackingRun, make_tracker, track_frames, track_scenes
from nutrack.tracking.scorer import (
    AffinityScorer,
    FrameContext,
    LearnedModelUnavailable,
    Scorer,
    TrackView,
    load_learned_scorer,
)

__all__ = [
    "AffinityScorer",
    "CenterPointParams",
    "CenterPointTracker",
    "FilterParams",
    "FilterTracker",
    "FrameContext",
    "LearnedModelUnavailable",
    "METHODS",
    "Scorer",
    "TrackTable",
    "TrackView",
    "Tracker",
    "TrackingRun",
    "assign",
    "detection_order_greedy_assignment",
    "greedy_assignment",
    "hungarian_assignment",
    "load_learned_scorer",
    "make_tracker",
    "nms",
    "parse_overrides",
    "track_frames",
    "track_scenes",
]
