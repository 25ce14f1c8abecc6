"""The filter tracker's frames-once affinity path (issue 12, item 2): ``frames_affinity`` on
reused box frames gives the public op's matrix bit for bit, and the tracker's output is the
same as with every affinity going through ``pairwise_affinity``."""
from __future__ import annotations

import numpy as np
import pytest

from nutrack.data.detections import Detections
from nutrack.ops import pairwise_affinity
from nutrack.ops._boxes import box_frames, validate_boxes
from nutrack.ops.affinity import METRICS, frames_affinity
from nutrack.tracking import make_tracker
from nutrack.tracking.filter import FilterTracker


def _boxes(rng, n):
    b = np.empty((n, 7), np.float32)
    b[:, :2] = rng.uniform(-20, 20, (n, 2))
    b[:, 2] = rng.uniform(0, 2, n)
    b[:, 3:6] = rng.uniform(0.5, 5, (n, 3))
    b[:, 6] = rng.uniform(-np.pi, np.pi, n)
    b[:3, 6] = np.float32(np.pi / 2)  # snapped quarter turns
    return b


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("backend", ["auto", "numba"])
def test_frames_affinity_matches_pairwise_affinity(metric, backend):
    rng = np.random.default_rng(3)
    a, b = _boxes(rng, 40), _boxes(rng, 55)
    ca, cb = rng.integers(0, 3, 40), rng.integers(0, 3, 55)
    fa, fb = box_frames(validate_boxes(a)), box_frames(validate_boxes(b))
    ra, rb = np.array([5, 0, 7, 7, 39]), np.arange(0, 55, 3)
    for fill in (None, 0.0):
        want = pairwise_affinity(a, b, metric, ca, cb, fill, backend=backend)
        got = frames_affinity(fa, fb, metric, ca, cb, fill, backend=backend)
        np.testing.assert_array_equal(got, want)
        want = pairwise_affinity(a[ra], b[rb], metric, ca[ra], cb[rb], fill, backend=backend)
        got = frames_affinity(fa[ra], fb[rb], metric, ca[ra], cb[rb], fill, backend=backend)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(frames_affinity(fa, fb, metric, backend=backend),
                                  pairwise_affinity(a, b, metric, backend=backend))
    assert frames_affinity(fa[:0], fb, metric).shape == (0, 55)


def _scene(rng, n_frames=15, n_obj=30):
    pos = rng.uniform(-30, 30, (n_obj, 2))
    vel = rng.normal(0, 3, (n_obj, 2))
    cls = rng.integers(0, 7, n_obj)
    size = rng.uniform(0.6, 5, (n_obj, 3))
    yaw = rng.uniform(-np.pi, np.pi, n_obj)
    frames = []
    for i in range(n_frames):
        k = n_obj + 10
        boxes = np.empty((k, 7))
        boxes[:n_obj, :2] = pos + vel * 0.5 * i + rng.normal(0, 0.2, (n_obj, 2))
        boxes[n_obj:, :2] = rng.uniform(-35, 35, (10, 2))
        boxes[:, 2] = 1.0
        boxes[:n_obj, 3:6] = size
        boxes[n_obj:, 3:6] = 2.0
        boxes[:n_obj, 6] = yaw
        boxes[n_obj:, 6] = rng.uniform(-np.pi, np.pi, 10)
        v = np.concatenate([vel, rng.normal(0, 1, (10, 2))])
        scores = np.concatenate([rng.beta(5, 2, n_obj), rng.beta(1.2, 8, 10)])
        frames.append(Detections(boxes, v, scores, np.concatenate([cls, rng.integers(0, 7, 10)])))
    return frames


def test_filter_tracking_frames_path_same_output(monkeypatch):
    frames = _scene(np.random.default_rng(11))

    def run():
        tracker = make_tracker("filter")
        return [tracker.step(d, 0.5 * i) for i, d in enumerate(frames)]

    fast = run()
    monkeypatch.setattr(FilterTracker, "_frames_of", lambda self, det_boxes, track_boxes: (None, None))
    slow = run()
    assert sum(len(t.track_ids) for t in fast) > 0
    for f, s in zip(fast, slow):
        for name in ("boxes", "velocities", "scores", "classes", "track_ids"):
            np.testing.assert_array_equal(getattr(f, name), getattr(s, name))
