"""Tracker speed.

    pytest benchmarks/test_bench_tracking.py --benchmark

``test_tracking_speed``: a val-sized run, 150 scenes x 40 frames, ~100 detections a frame.
The detections are generated in memory (no dataset on disk): per scene ~70 objects in
nuScenes-like class proportions (cars, pedestrians, trucks, ...), moving with constant
velocity or turning, detected with position / velocity / yaw noise, occasional misses, and
~30 low-scoring false positives a frame. Frames per second count only the tracker (the
``reset`` + ``step`` calls), one full pass over all 6000 frames per round. Goal: ``filter``
above 1000 frames/s on a 2-core CPU.

``test_tracking_speed_embedded_val`` (issue 12, item 2): single-threaded (:func:`single_thread`:
OMP_NUM_THREADS=1 while it runs, which caps nutrack's host kernels, OpenMP and numba at one
thread) on the frames of the embedded val split (``default_dataset()``, its
simulated detections, 80 frames), repeated ``VAL_REPEATS`` times a round. Goal: ``filter`` at
>= 3,000 frames/s. Case ``500 boxes``: the same frames made to look like a real CenterPoint
file, whose published nuScenes configs keep up to 500 boxes per sample with score >= 0.1, most
of them low-score false positives (:func:`with_low_score_tail`).
"""
from __future__ import annotations

import contextlib
import os

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


# -- the embedded val split, single-threaded (issue 12, item 2) ------------------------------
VAL_REPEATS = 10  # passes over the 80 val frames a round
BOXES_PER_SAMPLE = 500  # CenterPoint's max_per_img
MIN_SCORE = 0.1  # CenterPoint's score_threshold
DUPLICATE_SHARE = 0.3  # of the added boxes: near a real detection (a second, worse box of it)


@contextlib.contextmanager
def single_thread():
    """One host thread for the duration: OMP_NUM_THREADS=1 in the environment (nutrack's host
    kernels read it at each call to cap their threads), one OpenMP thread through threadpoolctl
    where installed (libraries on OpenMP), one numba thread. Yields whether threadpoolctl was
    there."""
    import numba

    before = numba.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    numba.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield False
            return
        with threadpool_limits(limits=1, user_api="openmp"):
            yield True
    finally:
        numba.set_num_threads(before[0])
        if before[1] is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before[1]


@pytest.fixture(scope="module")
def embedded_val():
    """The embedded val split's scenes: lists of (Detections, timestamp in seconds)."""
    from nutrack.data import NuScenesData, load_detections
    from nutrack.data.synth import default_dataset

    ds = default_dataset()
    data = NuScenesData(ds.dataroot, ds.version)
    dets = load_detections(ds.detections[ds.val_split], data, ds.val_split)
    return [[(f.detections, f.timestamp * 1e-6) for f in scene.frames] for scene in data.scenes(ds.val_split, dets)]


def with_low_score_tail(det: Detections, rng: np.random.Generator, n_boxes: int = BOXES_PER_SAMPLE) -> Detections:
    """A frame as a real CenterPoint file would give it: the frame's detections scoring at least
    MIN_SCORE, then false positives up to ``n_boxes``, sorted by descending score. The added
    boxes score MIN_SCORE + 0.9 * Beta(1, 12) (mean ~0.17, 1 in 12 above 0.3: a long low tail,
    a few above the filter's score_threshold of 0.2, so some start tracks); DUPLICATE_SHARE of
    them lie 0.5-3 m from a real detection, of its class and size (a second box on the same
    object), the rest anywhere within 55 m of the detections' centre, of random classes
    (nuScenes-like prior) at the class's usual size, random heading and velocity."""
    keep = det.scores >= MIN_SCORE
    boxes, vel, scores, classes = det.boxes[keep], det.velocities[keep], det.scores[keep], det.classes[keep]
    k = n_boxes - len(boxes)
    near = rng.random(k) < DUPLICATE_SHARE if len(boxes) else np.zeros(k, np.bool_)
    src = rng.integers(0, max(len(boxes), 1), k)
    cls = np.where(near, classes[src] if len(boxes) else 0, rng.choice(7, size=k, p=CLASS_MIX))
    new = np.empty((k, 7))
    centre = boxes[:, :2].mean(axis=0) if len(boxes) else np.zeros(2)
    offset = rng.uniform(0.5, 3.0, k) * np.exp(1j * rng.uniform(-np.pi, np.pi, k))
    new[:, :2] = np.where(near[:, None], (boxes[src, :2] if len(boxes) else 0.0)
                          + np.stack([offset.real, offset.imag], axis=1), centre + rng.uniform(-55, 55, (k, 2)))
    size = np.where(near[:, None], boxes[src, 3:6] if len(boxes) else 1.0, SIZES[cls])
    new[:, 3:6] = size * np.exp(rng.normal(0, 0.1, (k, 3)))
    new[:, 2] = (boxes[src, 2] if len(boxes) else 0.0) * near + new[:, 5] / 2 * ~near
    new[:, 6] = rng.uniform(-np.pi, np.pi, k)
    new_vel = rng.normal(0, 1.0, (k, 2))
    new_scores = MIN_SCORE + 0.9 * rng.beta(1.0, 12.0, k)
    order = np.argsort(-np.concatenate([scores, new_scores]), kind="stable")
    return Detections(np.concatenate([boxes, new])[order], np.concatenate([vel, new_vel])[order],
                      np.concatenate([scores, new_scores])[order], np.concatenate([classes, cls])[order])


def run_timed_frames(tracker, scenes, repeats: int = 1):
    """``repeats`` passes over scenes of (detections, timestamp); returns the boxes output."""
    boxes = 0
    for _ in range(repeats):
        for frames in scenes:
            tracker.reset()
            for det, ts in frames:
                boxes += len(tracker.step(det, ts))
    return boxes


@pytest.mark.parametrize("method", ["filter", "centerpoint"])
@pytest.mark.parametrize("case", ["~27 boxes", "500 boxes"])
def test_tracking_speed_embedded_val(benchmark, embedded_val, method, case):
    scenes = embedded_val
    if case == "500 boxes":
        rng = np.random.default_rng(500)
        scenes = [[(with_low_score_tail(det, rng), ts) for det, ts in frames] for frames in scenes]
    n_frames = sum(len(f) for f in scenes)
    per_frame = sum(len(d) for f in scenes for d, _ in f) / n_frames
    benchmark.group = f"tracking, embedded val {case} a frame, single-threaded"
    benchmark.extra_info["impl"] = method
    tracker = make_tracker(method)
    with single_thread() as omp_limited:
        run_timed_frames(tracker, scenes, 2)  # warm-up: numba compilation / caches out of the numbers
        boxes = benchmark.pedantic(run_timed_frames, args=(tracker, scenes, VAL_REPEATS), rounds=5, iterations=1)
    frames = VAL_REPEATS * n_frames
    fps = frames / benchmark.stats.stats.median
    benchmark.extra_info.update({"frames": frames, "detections_per_frame": round(per_frame, 1),
                                 "frames_per_second": round(fps, 1), "boxes_out": boxes,
                                 "threadpoolctl": omp_limited})
    print(f"\n{method}, {case}: {fps:,.0f} frames/s (median of 5 rounds) over {frames} frames, "
          f"{per_frame:.0f} detections/frame")
    assert boxes > 0


# -- the learned tracker on the embedded val, points counted (issue 11, item 4) ---------------
from benchmarks.conftest import cuda_ready  # noqa: E402  (this section's own import)

LEARNED_REPEATS = 5  # passes over the 80 val frames a round


@pytest.fixture(scope="module")
def embedded_val_frames():
    """The embedded val split's dataset and its scenes' frames (detections, poses, lidar paths)."""
    from nutrack.data import NuScenesData, load_detections
    from nutrack.data.synth import default_dataset

    ds = default_dataset()
    data = NuScenesData(ds.dataroot, ds.version)
    dets = load_detections(ds.detections[ds.val_split], data, ds.val_split)
    return data, [list(scene.frames) for scene in data.scenes(ds.val_split, dets)]


def learned_scorer(device: str):
    """The scorer of ``$NUTRACK_BENCH_CHECKPOINT`` (a checkpoint of ``python -m nutrack.train``)
    when set, else the default network and confidence head untrained (seed 0; the network's
    scores pass the default threshold on most candidate pairs, which keeps as many tracks alive
    as a trained one; the head costs what a trained one costs). Returns the scorer and a label."""
    import torch

    from nutrack.model import AssociationNet, LearnedScorer, ModelConfig, load_scorer
    from nutrack.model.confidence import ConfidenceNet

    path = os.environ.get("NUTRACK_BENCH_CHECKPOINT")
    if path:
        return load_scorer(path, device=device), f"checkpoint {path}"
    torch.manual_seed(0)
    return (LearnedScorer(AssociationNet(ModelConfig()).to(device).eval(), device=device,
                          confidence=ConfidenceNet().eval()), "untrained, seed 0, confidence head")


def run_learned(tracker, data, scenes, repeats: int = 1, nsweeps: int = 1):
    """``repeats`` passes over the scenes as ``track_frames`` steps them: each frame's lidar
    points loaded by ``NuScenesData.lidar_points`` when the scorer asks (inside the timed part)."""
    from nutrack.scoring import FrameContext

    boxes = 0
    for _ in range(repeats):
        for frames in scenes:
            tracker.reset()
            prev = None
            for i, f in enumerate(frames):
                ts = f.timestamp * 1e-6
                ctx = FrameContext(timestamp=ts, time_lag=0.0 if prev is None else ts - prev, index=i,
                                   sample_token=f.sample_token, frame=f,
                                   points=lambda f=f: data.lidar_points(f, nsweeps=nsweeps))
                prev = ts
                boxes += len(tracker.step(f.detections, ts, ctx))
    return boxes


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if cuda_ready() else []))
def test_learned_tracking_speed_embedded_val(benchmark, embedded_val_frames, device):
    """The learned tracker (the filter's life cycle, the network as stage-1 scorer) on the
    embedded val, each frame's point loading and encoding counted; single-threaded on the CPU
    (torch: the scorer's 1 thread; nutrack's kernels and numba: single_thread). Goal: >= 1,000
    frames/s on the CPU."""
    from nutrack.tracking.filter import FilterTracker
    from nutrack.tracking.run import learned_params

    data, scenes = embedded_val_frames
    scorer, label = learned_scorer(device)
    tracker = FilterTracker(learned_params(), scorer=scorer)
    n_frames = sum(len(f) for f in scenes)
    benchmark.group = "learned tracking, embedded val, points loaded and encoded, single-threaded"
    benchmark.extra_info["impl"] = f"learned-{device}"
    with single_thread():
        run_learned(tracker, data, scenes, 2)  # warm-up: numba compilation, torch's first calls
        boxes = benchmark.pedantic(run_learned, args=(tracker, data, scenes, LEARNED_REPEATS), rounds=5,
                                   iterations=1)
    frames = LEARNED_REPEATS * n_frames
    fps = frames / benchmark.stats.stats.median
    benchmark.extra_info.update({"frames": frames, "frames_per_second": round(fps, 1), "model": label,
                                 "boxes_out": boxes})
    print(f"\nlearned ({device}, {label}): {fps:,.0f} frames/s (median of 5 rounds) over {frames} frames")
    assert boxes > 0
