"""The filter tracker on hand-built sequences: misses, crossings, deletion, score decay."""
from __future__ import annotations

import numpy as np
import pytest

from nutrack.data.classes import CLASS_TO_ID
from nutrack.data.detections import Detections
from nutrack.tracking import FilterParams, FilterTracker, FrameContext, Scorer, make_tracker

CAR = CLASS_TO_ID["car"]
PED = CLASS_TO_ID["pedestrian"]
SIZES = {CAR: (4.5, 1.9, 1.6), PED: (0.7, 0.7, 1.75)}


def dets(rows):
    """rows: (x, y, yaw, vx, vy, class, score)."""
    if not rows:
        return Detections.empty()
    a = np.asarray(rows, dtype=np.float64)
    boxes = np.zeros((len(a), 7))
    boxes[:, :2] = a[:, :2]
    boxes[:, 2] = 1.0
    boxes[:, 3:6] = [SIZES[int(c)] for c in a[:, 5]]
    boxes[:, 6] = a[:, 2]
    return Detections(boxes, a[:, 3:5], a[:, 6], a[:, 5].astype(int))


def straight(x0, y0, vx, vy, cls, k, dt=0.5, score=0.8):
    return (x0 + vx * k * dt, y0 + vy * k * dt, np.arctan2(vy, vx), vx, vy, cls, score)


def test_tracks_through_a_miss_and_reports_the_prediction():
    tr = FilterTracker()
    outs = []
    for k in range(12):
        rows = [] if k in (5, 6) else [straight(0, 0, 8.0, 0.0, CAR, k)]
        rows.append(straight(0, 30, 0.0, 0.0, CAR, k))  # a parked car
        outs.append(tr.step(dets(rows), k * 0.5))
    moving = [o.track_ids[o.boxes[:, 1] < 15].tolist() for o in outs]
    assert all(m == [1] for m in moving[:5]) and all(m == [1] for m in moving[7:])
    # while it is missed the coasting track is reported at its predicted position
    p = tr.params
    for k in (5, 6):
        o = outs[k]
        row = o.boxes[o.track_ids == 1]
        if k - 4 <= p.output_max_coast[CAR]:
            assert len(row) == 1 and abs(row[0, 0] - 8.0 * k * 0.5) < 0.3
        else:
            assert len(row) == 0


def test_scores_decay_while_coasting():
    tr = FilterTracker(score_decay=(0.6,) * 7, output_max_coast=(3,) * 7, max_age=(5,) * 7)
    scores = []
    for k in range(8):
        rows = [straight(0, 0, 5.0, 0.0, CAR, k, score=0.9)] if k < 4 else []
        out = tr.step(dets(rows + [straight(50, 50, 0, 0, PED, k)]), k * 0.5)
        s = out.scores[out.track_ids == 1]
        scores.append(float(s[0]) if len(s) else None)
    assert scores[:4] == pytest.approx([0.9] * 4)
    assert scores[4:7] == pytest.approx([0.9 * 0.6, 0.9 * 0.36, 0.9 * 0.216], rel=1e-5)
    assert scores[7] is None  # past output_max_coast: coasting but not reported


def test_deleted_after_max_age():
    p = FilterParams()
    age = p.max_age[CAR]
    for misses, same in ((age, True), (age + 1, False)):
        tr = FilterTracker()
        seq = [0] + [None] * misses + [misses + 1]
        ids = []
        for k, step in enumerate(seq):
            rows = [] if step is None else [straight(0, 0, 4.0, 0.0, CAR, step)]
            out = tr.step(dets(rows), k * 0.5)
            ids.append(out.track_ids.tolist())
        assert (ids[-1] == [1]) == same, (misses, ids)
    # the track table empties once the age passes
    tr = FilterTracker()
    tr.step(dets([straight(0, 0, 4.0, 0.0, CAR, 0)]), 0.0)
    for k in range(1, age + 1):
        tr.step(Detections.empty(), k * 0.5)
        assert tr.num_tracks == 1
    tr.step(Detections.empty(), (age + 1) * 0.5)
    assert tr.num_tracks == 0


def test_keeps_ids_through_crossing_pedestrians():
    rng = np.random.default_rng(3)
    # Two pedestrians crossing in an X at walking speed, meeting at frame 10.
    v = 1.4 / np.sqrt(2)
    tr = FilterTracker()
    first = {}
    for k in range(21):
        t = (k - 10) * 0.5
        a = (v * t, v * t)
        b = (v * t, -v * t)
        rows = []
        for (x, y), (vx, vy) in ((a, (v, v)), (b, (v, -v))):
            n = rng.normal(0, 0.08, 2)
            rows.append((x + n[0], y + n[1], np.arctan2(vy, vx), vx + rng.normal(0, 0.2), vy + rng.normal(0, 0.2),
                         PED, 0.7))
        out = tr.step(dets(rows), k * 0.5)
        assert len(out) == 2
        for tid, box in zip(out.track_ids.tolist(), out.boxes):
            first.setdefault(tid, []).append((k, box[0], box[1]))
    assert sorted(first) == [1, 2]
    for tid, rows in first.items():
        rows = np.array(rows)
        # each id stays on one line: y = +x or y = -x
        slope = np.sign(rows[:, 2] * rows[:, 1])[np.abs(rows[:, 1]) > 1.0]
        assert len(set(slope.tolist())) == 1, tid


def test_follows_a_turning_car_with_ctra():
    # A car on a circle of radius 20 m at 8 m/s, detected without noise every other frame
    tr = FilterTracker(max_age=(3,) * 7)
    r, v = 20.0, 8.0
    w = v / r
    ids = set()
    for k in range(30):
        th = w * k * 0.5
        yaw = th + np.pi / 2
        row = (r * np.cos(th), r * np.sin(th), yaw, v * np.cos(yaw), v * np.sin(yaw), CAR, 0.8)
        out = tr.step(dets([row] if k % 2 == 0 or k < 6 else []), k * 0.5)
        ids.update(out.track_ids.tolist())
        if k % 2 == 1 and k > 10 and len(out):
            # predictions on missed frames stay close to the circle
            assert abs(np.hypot(out.boxes[0, 0], out.boxes[0, 1]) - r) < 0.6
    assert ids == {1}


def test_low_score_detections_extend_but_never_start_tracks():
    p = FilterParams()
    lo, hi = p.low_score_threshold[CAR], p.score_threshold[CAR]
    mid = 0.5 * (lo + hi)
    tr = FilterTracker()
    out = tr.step(dets([straight(0, 0, 0, 0, CAR, 0, score=mid)]), 0.0)
    assert len(out) == 0 and tr.num_tracks == 0
    tr.step(dets([straight(0, 0, 0, 0, CAR, 0, score=0.9)]), 0.5)
    out = tr.step(dets([straight(0, 0, 0, 0, CAR, 0, score=mid)]), 1.0)
    assert out.track_ids.tolist() == [1] and out.scores[0] == pytest.approx(mid)
    out = tr.step(dets([straight(0, 0, 0, 0, CAR, 0, score=lo * 0.5)]), 1.5)
    assert tr.num_tracks == 1 and all(out.scores < mid)  # below low: ignored, track coasts


def test_nms_drops_duplicates():
    tr = FilterTracker()
    d = dets([(0, 0, 0, 0, 0, CAR, 0.9), (0.2, 0.1, 0.05, 0, 0, CAR, 0.5), (0.2, 0.1, 0.0, 0, 0, PED, 0.5)])
    out = tr.step(d, 0.0)
    assert sorted(out.classes.tolist()) == [CAR, PED]
    assert out.scores[out.classes == CAR].tolist() == pytest.approx([0.9])


def test_confirmation_hides_tentative_tracks_after_the_first_frames():
    tr = FilterTracker(min_hits=(2,) * 7, tentative_score_factor=0.0)
    outs = [tr.step(dets([straight(0, 0, 4, 0, CAR, k)] + ([straight(0, 20, 4, 0, CAR, k - 3)] if k >= 3 else [])),
                    k * 0.5) for k in range(6)]
    assert outs[0].track_ids.tolist() == [1]  # scene start: shown at once
    assert outs[3].track_ids.tolist() == [1]  # the late car is tentative
    assert sorted(outs[4].track_ids.tolist()) == [1, 2]


def test_reset_between_scenes():
    tr = FilterTracker()
    tr.step(dets([straight(0, 0, 4, 0, CAR, 0)]), 0.0)
    tr.step(dets([straight(0, 0, 4, 0, CAR, 1)]), 0.5)
    tr.reset()
    out = tr.step(dets([straight(0, 0, 4, 0, CAR, 2)]), 100.0)
    assert out.track_ids.tolist() == [1] and tr.num_tracks == 1


def test_outputs_are_finite_and_unique_per_frame():
    rng = np.random.default_rng(0)
    tr = make_tracker("filter")
    for k in range(30):
        n = int(rng.integers(0, 40))
        rows = [(*rng.uniform(-40, 40, 2), rng.uniform(-3, 3), *rng.normal(0, 5, 2), int(rng.choice([CAR, PED])),
                 rng.random()) for _ in range(n)]
        out = tr.step(dets(rows), k * 0.5)
        assert np.isfinite(out.boxes).all() and np.isfinite(out.velocities).all()
        assert len(set(out.track_ids.tolist())) == len(out)
        assert ((out.scores >= 0) & (out.scores <= 1)).all()


class RecordingScorer(Scorer):
    """A plug-in scorer: negative centre distance, recording what the tracker hands it."""

    threshold = -2.0

    def __init__(self):
        self.calls = []
        self.observed = []
        self.resets = 0

    def reset(self):
        self.resets += 1

    def __call__(self, tracks, detections, context, candidates=None):
        self.calls.append((len(tracks), len(detections), context.index))
        assert candidates.shape == (len(tracks), len(detections)) and candidates.dtype == bool
        d = tracks.boxes[:, None, :2] - detections.boxes[None, :, :2]
        return -np.sqrt((d ** 2).sum(-1))

    def observe(self, track_ids, detection_index, detections, context):
        self.observed.append((track_ids.tolist(), detection_index.tolist()))


def test_scorer_plugin_interface():
    s = RecordingScorer()
    tr = FilterTracker(scorer=s)
    assert s.resets == 1
    for k in range(3):
        rows = [straight(0, 0, 4, 0, CAR, k), straight(0, 10, 0, 0, PED, k)]
        ctx = FrameContext(timestamp=k * 0.5, time_lag=0.5 if k else 0.0, index=k, sample_token=f"s{k}")
        out = tr.step(dets(rows), k * 0.5, ctx)
        assert sorted(out.track_ids.tolist()) == [1, 2]
    assert s.calls == [(2, 2, 1), (2, 2, 2)]  # not called without tracks (frame 0)
    assert s.observed[0] == ([1, 2], [0, 1]) and s.observed[-1] == ([1, 2], [0, 1])


def test_bad_scorer_shape_is_an_error():
    class Bad(Scorer):
        def __call__(self, tracks, detections, context, candidates=None):
            return np.zeros((1, 1))

    tr = FilterTracker(scorer=Bad())
    row = [straight(0, 0, 4, 0, CAR, 0), straight(5, 5, 4, 0, CAR, 0)]
    tr.step(dets(row), 0.0)
    with pytest.raises(ValueError, match="scorer returned shape"):
        tr.step(dets(row), 0.5)


def test_input_errors_and_non_tracking_classes():
    tr = FilterTracker()
    d = dets([straight(0, 0, 4, 0, CAR, 0), straight(5, 5, 0, 0, PED, 0)])
    other = Detections(d.boxes, d.velocities, d.scores, np.array([-1, PED]))  # a detection-only class
    out = tr.step(other, 0.0)
    assert out.classes.tolist() == [PED]
    with pytest.raises(ValueError, match="time order"):
        tr.step(d, -1.0)
    bad = Detections(d.boxes, np.array([[np.nan, 0.0], [0.0, 0.0]]), d.scores, d.classes)
    with pytest.raises(ValueError, match="velocities"):
        FilterTracker().step(bad, 0.0)


def test_warm_up_leaves_a_fresh_tracker():
    for tr in (make_tracker("filter"), make_tracker("centerpoint")):
        tr.warm_up()
        assert tr.num_tracks == 0
        out = tr.step(dets([straight(0, 0, 4, 0, CAR, 0)]), 0.0)
        assert out.track_ids.tolist() == [1]


def test_warm_up_after_tracking_forgets_the_clock():
    # A tracker reused for a second run (track_scenes warms it up again): its clock stood at the
    # last real frame, and the made-up warm-up frames at t = 0 used to fail the time-order check.
    for tr in (make_tracker("filter"), make_tracker("centerpoint")):
        tr.step(dets([straight(0, 0, 4, 0, CAR, 0)]), 1.5e9)
        tr.warm_up()
        assert tr.num_tracks == 0
        assert tr.step(dets([straight(0, 0, 4, 0, CAR, 0)]), 1.6e9).track_ids.tolist() == [1]
