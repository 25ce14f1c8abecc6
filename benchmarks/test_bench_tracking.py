"""Tracker speed over a val-sized run: 150 scenes x 40 frames, ~100 detections a frame.

    pytest benchmarks/test_bench_tracking.py --benchmark

The detections are generated in memory (no dataset on disk): per scene ~70 objects in
nuScenes-like class proportions (cars, pedestrians, trucks, ...), moving with constant
velocity or turning, detected with position / velocity / yaw noise, occasional misses, and
~30 low-scoring false positives a frame. Frames per second count only the tracker (the
``reset`` + ``step`` calls), one full pass over all 6000 frames per round. Goal: ``filter``
above 1000 frames/s on a 2-core CPU.
"""
from __future__ import annotations

import numpy as np
import pytest

from nutrack.data.detections import Detections
from nutrack.tracking import make_tracker

N_SCENES = 150
N_FRAMES = 40
DT = 0.5
# class mix of true objects (car, truck, bus, trailer, pedestrian, motorcycle, bicycle)
CLASS_MIX = np.array([0.50, 0.10, 0.02, 0.03, 0.30, 0.025, 0.025])
SIZES = np.array([[4.6, 1.9, 1.7], [7.0, 2.5, 3.0], [11.0, 2.9, 3.5], [12.0, 2.9, 3.8],
                  [0.7, 0.7, 1.75], [2.1, 0.8, 1.5], [1.7, 0.6, 1.3]])
SPEED = np.array([8.0, 7.0, 6.0, 6.0, 1.3, 8.0, 4.0])


def make_scene(rng: np.random.Generator, n_obj: int = 72, n_fp: int = 30):
    """Frames (list of Detections) and timestamps of one synthetic scene."""
    cls = rng.choice(7, size=n_obj, p=CLASS_MIX)
    pos = rng.uniform(-50, 50, (n_obj, 2))
    heading = rng.uniform(-np.pi, np.pi, n_obj)
    speed = SPEED[cls] * rng.uniform(0.0, 1.3, n_obj) * (rng.random(n_obj) > 0.3)  # 30 % parked
    turn = rng.normal(0, 0.08, n_obj) * (cls < 4)
    size = SIZES[cls] * np.exp(rng.normal(0, 0.05, (n_obj, 3)))
    frames = []
    for _ in range(N_FRAMES):
        vel = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        seen = rng.random(n_obj) > 0.1
        k = int(seen.sum())
        boxes = np.empty((k + n_fp, 7))
        boxes[:k, :2] = pos[seen] + rng.normal(0, 0.15, (k, 2))
        boxes[:k, 2] = size[seen, 2] / 2
        boxes[:k, 3:6] = size[seen] * np.exp(rng.normal(0, 0.04, (k, 3)))
        boxes[:k, 6] = heading[seen] + rng.normal(0, 0.05, k)
        fc = rng.choice(7, size=n_fp, p=CLASS_MIX)
        boxes[k:, :2] = rng.uniform(-55, 55, (n_fp, 2))
        boxes[k:, 2] = SIZES[fc, 2] / 2
        boxes[k:, 3:6] = SIZES[fc]
        boxes[k:, 6] = rng.uniform(-np.pi, np.pi, n_fp)
        v = np.concatenate([vel[seen] + rng.normal(0, 0.3, (k, 2)), rng.normal(0, 1.0, (n_fp, 2))])
        scores = np.concatenate([rng.beta(5, 2, k), rng.beta(1.2, 8, n_fp)])
        classes = np.concatenate([cls[seen], fc])
        order = np.argsort(-scores, kind="stable")
        frames.append(Detections(boxes[order], v[order], scores[order], classes[order]))
        pos = pos + vel * DT
        heading = heading + turn * DT
    return frames


@pytest.fixture(scope="module")
def val_sized_run():
    rng = np.random.default_rng(2024)
    scenes = [make_scene(rng) for _ in range(N_SCENES)]
    n_det = sum(len(d) for s in scenes for d in s)
    return scenes, n_det / (N_SCENES * N_FRAMES)


def run_all(tracker, scenes):
    boxes = 0
    for frames in scenes:
        tracker.reset()
        for i, det in enumerate(frames):
            boxes += len(tracker.step(det, 1e9 + i * DT))
    return boxes


@pytest.mark.parametrize("method", ["centerpoint", "filter"])
def test_tracking_speed(benchmark, val_sized_run, method):
    scenes, dets_per_frame = val_sized_run
    tracker = make_tracker(method)
    benchmark.group = f"tracking {N_SCENES} scenes x {N_FRAMES} frames (whole run)"
    benchmark.extra_info["impl"] = method
    run_all(tracker, scenes[:3])  # warm-up: numba compilation / caches out of the numbers
    boxes = benchmark.pedantic(run_all, args=(tracker, scenes), rounds=3, iterations=1)
    frames = N_SCENES * N_FRAMES
    fps = frames / benchmark.stats.stats.min
    benchmark.extra_info.update({"frames": frames, "detections_per_frame": round(dets_per_frame, 1),
                                 "frames_per_second": round(fps, 1), "boxes_out": boxes})
    print(f"\n{method}: {fps:,.0f} frames/s over {frames} frames, {dets_per_frame:.0f} detections/frame")
    assert boxes > 0
