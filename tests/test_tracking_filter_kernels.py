"""The filter tracker's numba bookkeeping kernels (nutrack/tracking/_filter_kernels.py, issue 12,
item 2) against the numpy code they replace, which lives on here as their twins: each kernel
must give the twin's result bit for bit, and the tracker its output with every kernel swapped
for its twin."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from nutrack.ops import pairwise_affinity
from nutrack.ops._boxes import box_frames, validate_boxes
from nutrack.tracking import _filter_kernels as kernels
from nutrack.tracking.association import hungarian_assignment
from nutrack.tracking.filter import FilterTracker

from tests.test_tracking_filter_frames import _boxes, _scene


# -- the numpy twins (the tracker's code before the kernels) ---------------------------------
def _boxes_valid_twin(boxes):
    try:
        validate_boxes(boxes)
    except ValueError:
        return False
    return True


def _gate_twin(track_frames, track_cls, det_frames, det_cls, gate_distance, track_boxes, det_boxes):
    dist = pairwise_affinity(track_boxes, det_boxes, "center_distance", track_cls, det_cls)
    return dist <= gate_distance[track_cls][:, None]


def _passing_pairs_twin(aff, candidates, rows, cols, threshold, is_distance):
    aff = aff[rows][:, cols]
    candidates = candidates[rows][:, cols]
    gate = threshold[:, None]
    with np.errstate(invalid="ignore"):
        if is_distance:
            valid = candidates & (aff < gate)
            cost = aff
        else:
            valid = candidates & (aff > gate)
            cost = -aff
    return np.where(valid, cost, 0.0), valid


def _hungarian_twin(cost, valid):
    per_row = valid.sum(axis=1)
    rows = np.flatnonzero(per_row)
    if len(rows) == 0:
        return np.zeros((0, 2), np.int64)
    per_col = valid.sum(axis=0)
    if per_row.max() == 1 and per_col.max() == 1:
        r, c = np.nonzero(valid)
        return np.stack([r, c], axis=1).astype(np.int64)
    cols = np.flatnonzero(per_col)
    sub_valid = valid[np.ix_(rows, cols)]
    sub = cost[np.ix_(rows, cols)]
    finite = sub[sub_valid]
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    big = (span + 1.0) * (min(sub.shape) + 1) + abs(float(finite.max()))
    sub = np.where(sub_valid, sub, big)
    r, c = linear_sum_assignment(sub)
    keep = sub_valid[r, c]
    return np.stack([rows[r[keep]], cols[c[keep]]], axis=1).astype(np.int64)


# -- each kernel against its twin --------------------------------------------------------------
def test_boxes_valid_matches_validate_boxes():
    rng = np.random.default_rng(0)
    good = _boxes(rng, 30)
    assert kernels.boxes_valid(good) and _boxes_valid_twin(good)
    assert kernels.boxes_valid(good[:0])
    bad_values = [(0, np.nan), (1, np.inf), (6, -np.inf), (3, 0.0), (4, -1.0), (5, 1e-10), (3, 2e9),
                  (0, 1.5e9), (2, -1.5e9), (5, np.float32(1e9)), (0, np.float32(-1e9))]
    for col, value in bad_values:
        b = good.copy()
        b[7, col] = value
        assert kernels.boxes_valid(b) == _boxes_valid_twin(b), (col, value)


@pytest.mark.parametrize("seed", range(3))
def test_gate_candidates_matches_center_distance_op(seed):
    rng = np.random.default_rng(seed)
    tb, db = _boxes(rng, 25), _boxes(rng, 40)
    db[:5, :2] = tb[:5, :2] + np.float32(2.0)  # distances right at a gate
    tc, dc = rng.integers(0, 7, 25), rng.integers(0, 7, 40)
    dc[:5] = tc[:5]
    gate = np.array([3.5, 3.5, 6.0, 5.0, 2.0, 6.0, np.sqrt(8.0)], np.float32)
    tf, df = box_frames(tb), box_frames(db)
    got = kernels.gate_candidates(tf, tc, df, dc, gate)
    np.testing.assert_array_equal(got, _gate_twin(tf, tc, df, dc, gate, tb, db))
    assert got.any() and not got.all()


@pytest.mark.parametrize("is_distance", [False, True])
def test_passing_pairs_matches_numpy(is_distance):
    rng = np.random.default_rng(5)
    aff = rng.uniform(-1, 1, (12, 15))
    aff[rng.random(aff.shape) < 0.1] = np.nan  # a scorer's ruled-out pairs
    aff[0, :] = 0.25  # ties with the threshold
    aff[1, 1] = -np.inf
    cand = rng.random(aff.shape) < 0.6
    thr = np.full(12, 0.25)
    thr[5:] = rng.uniform(-0.5, 0.5, 7)
    for rows, cols in [(np.arange(12), np.arange(15)), (np.array([0, 2, 3, 9]), np.array([1, 4, 14])),
                       (np.array([0, 1]), np.zeros(0, np.int64))]:
        got = kernels.passing_pairs(aff, cand, rows, cols, thr[rows], is_distance)
        want = _passing_pairs_twin(aff, cand, rows, cols, thr[rows], is_distance)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.tobytes() == w.tobytes()


def test_hungarian_assignment_matches_numpy_form():
    rng = np.random.default_rng(9)
    for trial in range(300):
        m, n = rng.integers(1, 12, 2)
        cost = np.round(rng.normal(0, 1, (m, n)), 1 if trial % 2 else 6)  # ties on odd trials
        valid = rng.random((m, n)) < rng.uniform(0.05, 0.9)
        np.testing.assert_array_equal(hungarian_assignment(cost, valid), _hungarian_twin(cost, valid))


# -- the tracker with every kernel swapped for its twin ------------------------------------------
@pytest.mark.parametrize("overrides", [{}, {"assignment": "greedy"}, {"metric2": "bev_iou"}])
def test_tracker_output_same_with_numpy_twins(monkeypatch, overrides):
    frames = _scene(np.random.default_rng(21), n_frames=20)

    def run():
        tracker = FilterTracker(**overrides)
        return [tracker.step(d, 0.5 * i) for i, d in enumerate(frames)]

    fast = run()
    monkeypatch.setattr(kernels, "boxes_valid", _boxes_valid_twin)
    monkeypatch.setattr(kernels, "passing_pairs", _passing_pairs_twin)
    real_gate = kernels.gate_candidates
    monkeypatch.setattr(FilterTracker, "_frames_of", lambda self, d, t: (None, None))  # gate through the op
    monkeypatch.setattr(kernels, "gate_candidates", None)
    monkeypatch.setattr("nutrack.tracking.association.hungarian_assignment", _hungarian_twin)
    slow = run()
    assert real_gate is not None and sum(len(t) for t in fast) > 100
    for f, s in zip(fast, slow):
        for name in ("boxes", "velocities", "scores", "classes", "track_ids"):
            a, b = getattr(f, name), getattr(s, name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
