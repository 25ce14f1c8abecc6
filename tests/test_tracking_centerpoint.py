"""CenterPoint's published tracker, reproduced: hand-built sequences and a reference.

The reference below is a direct, per-track (list of dicts) transcription of the published
algorithm (CenterPoint's ``pub_tracker.py`` + ``greedy_assignment``), written for this test;
the tracker under test is array-based and computes distances with ``nutrack.ops``.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from nutrack.data.classes import CLASS_TO_ID, TRACKING_CLASSES
from nutrack.data.detections import Detections
from nutrack.tracking import CenterPointParams, CenterPointTracker

GATES = {"car": 4.0, "truck": 4.0, "bus": 5.5, "trailer": 3.0, "pedestrian": 1.0, "motorcycle": 13.0,
         "bicycle": 3.0}
CAR = CLASS_TO_ID["car"]
TRUCK = CLASS_TO_ID["truck"]
PED = CLASS_TO_ID["pedestrian"]


def dets(rows):
    """rows: (x, y, vx, vy, class, score)."""
    if not rows:
        return Detections.empty()
    a = np.asarray(rows, dtype=np.float64)
    n = len(a)
    boxes = np.zeros((n, 7))
    boxes[:, :2] = a[:, :2]
    boxes[:, 3:6] = (4.0, 2.0, 1.5)
    return Detections(boxes, a[:, 2:4], a[:, 5] if a.shape[1] > 5 else np.full(n, 0.5), a[:, 4].astype(int))


def run(tracker, frames, t0=0.0, dt=0.5):
    out = []
    tracker.reset()
    for i, d in enumerate(frames):
        out.append(tracker.step(d, t0 + i * dt))
    return out


# --------------------------------------------------------------------------------------
# Reference: the published algorithm, one dict per track.
# --------------------------------------------------------------------------------------
class ReferenceCenterPoint:
    def __init__(self, max_age=3, hungarian=False):
        self.max_age = max_age
        self.hungarian = hungarian
        self.reset()

    def reset(self):
        self.count = 0
        self.tracks = []
        self.last = None

    def step(self, d: Detections, t: float):
        lag = 0.0 if self.last is None else t - self.last
        self.last = t
        if len(d) == 0:
            self.tracks = []
            return []
        items = []
        for i in range(len(d)):
            ct = d.boxes[i, :2].astype(np.float64)
            tracking = d.velocities[i].astype(np.float64) * -1 * lag
            items.append({"ct": ct, "tracking": tracking, "cls": int(d.classes[i]), "det": i})
        n, m = len(items), len(self.tracks)
        det_pos = np.array([it["ct"] + it["tracking"].astype(np.float32) for it in items], np.float32)
        if m:
            trk_pos = np.array([tr["ct"] for tr in self.tracks], np.float32)
            dist = np.sqrt(((trk_pos.reshape(1, -1, 2) - det_pos.reshape(-1, 1, 2)) ** 2).sum(axis=2))
            gate = np.array([GATES[TRACKING_CLASSES[it["cls"]]] for it in items], np.float32)
            bad = (dist > gate[:, None]) | (np.array([it["cls"] for it in items])[:, None]
                                           != np.array([tr["cls"] for tr in self.tracks])[None, :])
            cost = dist + bad * 1e18
            if self.hungarian:
                cost[cost > 1e18] = 1e18
                pairs = np.array(linear_sum_assignment(cost)).T
            else:
                pairs = []
                c = cost.copy()
                for i in range(n):
                    j = int(c[i].argmin())
                    if c[i, j] < 1e16:
                        c[:, j] = 1e18
                        pairs.append((i, j))
                pairs = np.array(pairs, dtype=int).reshape(-1, 2)
        else:
            cost = None
            pairs = np.zeros((0, 2), int)
        free_dets = [i for i in range(n) if i not in pairs[:, 0]]
        free_trks = [j for j in range(m) if j not in pairs[:, 1]]
        if self.hungarian and len(pairs):
            good = []
            for i, j in pairs:
                if cost[i, j] > 1e16:
                    free_dets.append(i)
                else:
                    good.append((i, j))
            pairs = np.array(good, dtype=int).reshape(-1, 2)
        new_list = []
        for i, j in pairs:
            it = dict(items[i])
            it["id"] = self.tracks[j]["id"]
            it["age"] = 1
            it["active"] = self.tracks[j]["active"] + 1
            new_list.append(it)
        for i in free_dets:
            it = dict(items[i])
            self.count += 1
            it["id"] = self.count
            it["age"] = 1
            it["active"] = 1
            new_list.append(it)
        for j in free_trks:
            tr = self.tracks[j]
            if tr["age"] < self.max_age:
                tr = dict(tr)
                tr["age"] += 1
                tr["active"] = 0
                tr["ct"] = tr["ct"] + tr["tracking"] * -1
                new_list.append(tr)
        self.tracks = new_list
        return [(it["det"], it["id"]) for it in new_list if it["active"] > 0]


# --------------------------------------------------------------------------------------
# Hand-built sequences
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(GATES))
def test_gate_boundary_per_class(name):
    c = CLASS_TO_ID[name]
    gate = GATES[name]
    tr = CenterPointTracker()
    # distance exactly at the gate: matched (the original invalidates only dist > gate)
    out = run(tr, [dets([(0.0, 0.0, 0, 0, c)]), dets([(gate, 0.0, 0, 0, c)])])
    assert out[1].track_ids.tolist() == [1]
    # just beyond: a new track
    beyond = float(np.nextafter(np.float32(gate), np.float32(np.inf))) + 1e-4
    out = run(tr, [dets([(0.0, 0.0, 0, 0, c)]), dets([(beyond, 0.0, 0, 0, c)])])
    assert out[1].track_ids.tolist() == [2]


def test_gates_are_the_published_ones():
    p = CenterPointParams()
    assert dict(zip(TRACKING_CLASSES, p.max_distance)) == GATES
    assert p.max_age == 3 and not p.hungarian and p.score_threshold == 0.0


def test_velocity_compensation():
    tr = CenterPointTracker()
    # A pedestrian (1 m gate) walking 3 m/s: the detection 1.5 m ahead is moved back by
    # v * 0.5 s onto the track.
    out = run(tr, [dets([(0.0, 0.0, 3.0, 0.0, PED)]), dets([(1.5, 0.0, 3.0, 0.0, PED)])])
    assert out[1].track_ids.tolist() == [1]
    # Without its velocity the same detection is 1.5 m away: too far.
    out = run(tr, [dets([(0.0, 0.0, 0.0, 0.0, PED)]), dets([(1.5, 0.0, 0.0, 0.0, PED)])])
    assert out[1].track_ids.tolist() == [2]
    # The time lag comes from the timestamps: 1 s between frames doubles the compensation.
    out = run(tr, [dets([(0.0, 0.0, 3.0, 0.0, PED)]), dets([(3.0, 0.0, 3.0, 0.0, PED)])], dt=1.0)
    assert out[1].track_ids.tolist() == [1]


def test_class_mismatch_never_matches():
    tr = CenterPointTracker()
    out = run(tr, [dets([(0.0, 0.0, 0, 0, CAR)]), dets([(0.0, 0.0, 0, 0, TRUCK)]), dets([(0.0, 0.0, 0, 0, CAR)])])
    assert out[1].track_ids.tolist() == [2]
    assert out[2].track_ids.tolist() == [1]  # the car track coasted one frame and matches again
    assert out[1].classes.tolist() == [TRUCK]


def test_greedy_in_detection_order():
    tr = CenterPointTracker()
    # One track at 0; two car detections, the FIRST one farther: it takes the track.
    out = run(tr, [dets([(0.0, 0.0, 0, 0, CAR)]), dets([(3.0, 0.0, 0, 0, CAR), (1.0, 0.0, 0, 0, CAR)])])
    ids = dict(zip(out[1].boxes[:, 0].tolist(), out[1].track_ids.tolist()))
    assert ids == {3.0: 1, 1.0: 2}
    # Hungarian prefers the closer one (lower total cost).
    tr = CenterPointTracker(hungarian=True)
    out = run(tr, [dets([(0.0, 0.0, 0, 0, CAR)]), dets([(3.0, 0.0, 0, 0, CAR), (1.0, 0.0, 0, 0, CAR)])])
    ids = dict(zip(out[1].boxes[:, 0].tolist(), out[1].track_ids.tolist()))
    assert ids[1.0] == 1


def test_greedy_picks_nearest_track_first_on_ties():
    tr = CenterPointTracker()
    out = run(tr, [dets([(-1.0, 0.0, 0, 0, CAR), (1.0, 0.0, 0, 0, CAR)]), dets([(0.0, 0.0, 0, 0, CAR)])])
    assert out[1].track_ids.tolist() == [1]  # equidistant: the first track in order


def test_coasting_up_to_max_age_then_deletion():
    car = dets([(0.0, 0.0, 2.0, 0.0, CAR)])
    other = dets([(40.0, 0.0, 0.0, 0.0, PED)])  # keeps frames non-empty (an empty frame clears all)

    def moved(k):  # the car where it really is k frames later (2 m/s, 0.5 s frames)
        return dets([(1.0 * k, 0.0, 2.0, 0.0, CAR), (40.0, 0.0, 0.0, 0.0, PED)])

    tr = CenterPointTracker()
    # missed twice, seen on the third frame: same id; not output while coasting
    out = run(tr, [car, other, other, moved(3)])
    assert [CAR in o.classes.tolist() for o in out] == [True, False, False, True]
    car_id = out[3].track_ids[out[3].classes == CAR].tolist()
    assert car_id == [1]
    # missed three times: deleted, a new id
    out = run(tr, [car, other, other, other, moved(4)])
    assert out[4].track_ids[out[4].classes == CAR].tolist() != [1]
    # during coasting the track moves with the velocity x time lag of its last detection
    tr.reset()
    tr.step(car, 0.0)
    tr.step(dets([(1.0, 0.0, 2.0, 0.0, CAR)]), 0.5)   # last detection: v * lag = 1 m
    tr.step(other, 1.0)
    assert np.allclose(tr._ct[tr._cls == CAR], [[2.0, 0.0]])
    tr.step(other, 1.5)
    assert np.allclose(tr._ct[tr._cls == CAR], [[3.0, 0.0]])


def test_max_age_parameter():
    car = dets([(0.0, 0.0, 0.0, 0.0, CAR)])
    other = dets([(40.0, 0.0, 0.0, 0.0, PED)])
    for max_age, survives in ((1, 0), (2, 1), (5, 4)):
        for misses in range(0, 6):
            tr = CenterPointTracker(max_age=max_age)
            out = run(tr, [car] + [other] * misses + [dets([(0.0, 0.0, 0, 0, CAR)])])
            same = out[-1].track_ids[out[-1].classes == CAR].tolist() == [1]
            assert same == (misses <= survives), (max_age, misses)


def test_empty_frame_clears_tracks():
    tr = CenterPointTracker()
    out = run(tr, [dets([(0.0, 0.0, 0, 0, CAR)]), Detections.empty(), dets([(0.0, 0.0, 0, 0, CAR)])])
    assert len(out[1]) == 0
    assert out[2].track_ids.tolist() == [2]  # ids keep counting within the scene


def test_scene_reset_restarts_ids_and_forgets_tracks():
    tr = CenterPointTracker()
    run(tr, [dets([(0.0, 0.0, 0, 0, CAR), (5.0, 0.0, 0, 0, CAR)])])
    out = run(tr, [dets([(0.0, 0.0, 0, 0, CAR)]), dets([(0.0, 0.0, 0, 0, CAR)])], t0=100.0)
    assert out[0].track_ids.tolist() == [1] and out[1].track_ids.tolist() == [1]
    assert tr.num_tracks == 1
    # first frame after a reset has no time lag: velocity plays no part
    tr.reset()
    tr.step(dets([(0.0, 0.0, 100.0, 0.0, CAR)]), 50.0)
    assert np.allclose(tr._step, 0.0)


def test_score_threshold_option():
    tr = CenterPointTracker(score_threshold=0.3)
    out = run(tr, [dets([(0.0, 0.0, 0, 0, CAR, 0.2), (9.0, 0.0, 0, 0, CAR, 0.9)])])
    assert out[0].boxes[:, 0].tolist() == [9.0]


def test_outputs_are_the_detections():
    tr = CenterPointTracker()
    d = dets([(1.0, 2.0, 0.5, -0.5, CAR, 0.7), (8.0, 2.0, 0.0, 0.0, PED, 0.4)])
    out = tr.step(d, 0.0)
    assert np.array_equal(out.boxes, d.boxes) and np.array_equal(out.velocities, d.velocities)
    assert np.array_equal(out.scores, d.scores) and np.array_equal(out.classes, d.classes)


# --------------------------------------------------------------------------------------
# Same ids as the reference on random sequences
# --------------------------------------------------------------------------------------
def random_scene(rng, n_frames=25, n_obj=30):
    cls = rng.integers(0, 7, n_obj)
    pos = rng.uniform(-30, 30, (n_obj, 2))
    vel = rng.normal(0, 3, (n_obj, 2))
    frames, times = [], []
    t = rng.uniform(0, 1e4)
    for _ in range(n_frames):
        keep = rng.random(n_obj) > 0.15
        noise = rng.normal(0, 0.6, (n_obj, 2))
        rows = [(p[0], p[1], v[0], v[1], c, s) for p, v, c, s, k in
                zip(pos + noise, vel + rng.normal(0, 0.5, (n_obj, 2)), cls, rng.random(n_obj), keep) if k]
        # false positives, and detections in shuffled order
        for _ in range(rng.integers(0, 6)):
            rows.append((*rng.uniform(-30, 30, 2), *rng.normal(0, 1, 2), rng.integers(0, 7), rng.random() * 0.3))
        rng.shuffle(rows)
        if rng.random() < 0.03:
            rows = []
        frames.append(dets(rows))
        times.append(t)
        lag = rng.choice([0.5, 0.5, 0.45, 0.55, 1.0])
        t += lag
        pos = pos + vel * lag
    return frames, times


@pytest.mark.parametrize("hungarian", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_same_ids_as_reference(seed, hungarian):
    rng = np.random.default_rng(seed)
    tr = CenterPointTracker(hungarian=hungarian)
    ref = ReferenceCenterPoint(hungarian=hungarian)
    for scene in range(3):
        frames, times = random_scene(rng)
        tr.reset()
        ref.reset()
        for d, t in zip(frames, times):
            out = tr.step(d, t)
            expected = ref.step(d, t)
            # map our output rows back to detection indices (boxes are the detections')
            got = []
            for row, tid in zip(out.boxes, out.track_ids):
                i = int(np.flatnonzero((d.boxes == row).all(axis=1))[0])
                got.append((i, int(tid)))
            assert sorted(got) == sorted(expected)


def test_non_tracking_classes_are_dropped():
    tr = CenterPointTracker()
    d = dets([(0.0, 0.0, 0, 0, CAR), (5.0, 0.0, 0, 0, PED)])
    d = Detections(d.boxes, d.velocities, d.scores, np.array([-1, PED]))
    out = tr.step(d, 0.0)
    assert out.classes.tolist() == [PED] and out.track_ids.tolist() == [1]
